//! Asking the other brokers of a cluster what only they know: the API's
//! (and the scrape's) one way to another broker. A partition's offsets,
//! records and size are its leader's; a group's members and offsets are
//! its coordinator's; a group list is every broker's. [`Peers`] sends such
//! a Kafka request to the broker that holds the answer, over a
//! broker-to-broker connection (`replication::client::BrokerConnection`
//! over `net::Tcp`, on shard 0's executor), or runs it through this node's
//! own handler when the answer is here.
//!
//! Bounds: one `Peers` lives for one API call (or one scrape); it opens at
//! most one connection per broker and sends that broker's requests one at
//! a time over it, while different brokers are asked concurrently. Each
//! request (with its connect) has a deadline; a broker that fails once is
//! not asked again within the same `Peers` (so a dead broker costs at most
//! one deadline per call) and is listed by [`Peers::unavailable`], which
//! the API answers as `"unavailable": [ids]` beside what the others said.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::lock::Mutex;
use hyper::StatusCode;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeLogDirsRequest, FetchRequest, ListGroupsRequest,
    ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::Request;

use super::ApiError;
use crate::net::Tcp;
use crate::replication::client::BrokerConnection;
use crate::server::broker::Broker;
use crate::server::handlers;

/// How long one API call waits for another broker's answer (connect and
/// request together).
pub const API_DEADLINE: Duration = Duration::from_secs(3);

type Link = BrokerConnection<glommio::net::TcpStream>;

/// Why another broker gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    #[error("broker {0} is not registered")]
    Unknown(i32),
    #[error("broker {id}: no answer within {deadline:?}")]
    Deadline { id: i32, deadline: Duration },
    #[error("broker {id}: {cause}")]
    Failed { id: i32, cause: String },
}

impl PeerError {
    /// The API's answer when the one broker that holds it did not give it:
    /// 503, so the console says which broker to look at.
    pub fn api_error(&self, what: &str) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "BROKER_NOT_AVAILABLE",
            format!("{what}: {self}"),
        )
    }
}

/// A Kafka request the API sends to whichever broker holds the answer:
/// this node's own handler, or another broker over the wire, at the same
/// version either way.
pub trait Ask: Request + Sized + 'static {
    const VERSION: i16;
    /// Runs the request through this node's handler (on shard 0).
    fn here(self, broker: &Rc<Broker>) -> LocalBoxFuture<'_, Self::Response>;
}

macro_rules! ask {
    ($request:ty, $version:expr, $handler:path) => {
        impl Ask for $request {
            const VERSION: i16 = $version;
            fn here(self, broker: &Rc<Broker>) -> LocalBoxFuture<'_, Self::Response> {
                Box::pin(async move {
                    let session = super::console_session();
                    $handler(broker, &session, $version, self).await
                })
            }
        }
    };
}

// The versions the API has always sent its own handlers: the newest that
// still name topics (rather than only topic ids) where that matters.
ask!(ListOffsetsRequest, 7, handlers::list_offsets::handle);
ask!(
    DescribeLogDirsRequest,
    4,
    handlers::describe_log_dirs::handle
);
ask!(FetchRequest, 12, handlers::fetch::handle);
ask!(ListGroupsRequest, 5, handlers::list_groups::handle);
ask!(DescribeGroupsRequest, 5, handlers::describe_groups::handle);
ask!(OffsetFetchRequest, 8, handlers::offset_fetch::handle);
ask!(OffsetCommitRequest, 8, handlers::offset_commit::handle);

/// The other brokers one API call (or one scrape) asks.
pub struct Peers {
    broker: Rc<Broker>,
    deadline: Duration,
    /// One connection per broker asked, made on its first request; the
    /// lock keeps that broker's requests one at a time.
    links: RefCell<BTreeMap<i32, Rc<Mutex<Option<Link>>>>>,
    /// Brokers that did not answer, with why: not asked again.
    failed: RefCell<BTreeMap<i32, PeerError>>,
}

impl Peers {
    pub fn new(broker: &Rc<Broker>, deadline: Duration) -> Peers {
        Peers {
            broker: broker.clone(),
            deadline,
            links: RefCell::default(),
            failed: RefCell::default(),
        }
    }

    pub fn broker(&self) -> &Rc<Broker> {
        &self.broker
    }

    /// Whether broker `id`'s answers are this node's: it is this node, or
    /// this node is not in a cluster (it holds everything).
    pub fn is_here(&self, id: i32) -> bool {
        !self.broker.cluster_mode() || id == self.broker.config.broker.node_id
    }

    /// The brokers to ask for what every broker holds (ListGroups): the
    /// registered ones not fenced, this node among them; this node alone
    /// outside a cluster.
    pub fn live(&self) -> Vec<i32> {
        let me = self.broker.config.broker.node_id;
        if !self.broker.cluster_mode() {
            return vec![me];
        }
        let catalog = self.broker.catalog();
        let mut live: Vec<i32> = catalog
            .brokers
            .iter()
            .filter(|(id, b)| !b.fenced || **id == me)
            .map(|(id, _)| *id)
            .collect();
        if !live.contains(&me) {
            live.push(me);
        }
        live
    }

    /// The brokers that did not answer, by id.
    pub fn unavailable(&self) -> Vec<i32> {
        self.failed.borrow().keys().copied().collect()
    }

    /// Marks broker `id` unavailable for what it answered (a Kafka error
    /// for a whole request): it is listed, and not asked again.
    pub fn mark_unavailable(&self, id: i32, cause: String) {
        self.failed
            .borrow_mut()
            .insert(id, PeerError::Failed { id, cause });
    }

    /// `request`'s answer from broker `id`: this node's handler when the
    /// answer is here, else that broker's over its connection.
    pub async fn ask<R: Ask>(&self, id: i32, request: R) -> Result<R::Response, PeerError> {
        if self.is_here(id) {
            return Ok(request.here(&self.broker).await);
        }
        self.call(id, R::VERSION, &request).await
    }

    /// Sends `request` to broker `id` (never this node) within the
    /// deadline. A failure drops the connection and marks the broker
    /// unavailable for the rest of this `Peers`' life.
    async fn call<R: Request>(
        &self,
        id: i32,
        version: i16,
        request: &R,
    ) -> Result<R::Response, PeerError> {
        if let Some(e) = self.failed.borrow().get(&id) {
            return Err(e.clone());
        }
        let link = self.links.borrow_mut().entry(id).or_default().clone();
        let mut link = link.lock().await;
        // Another request to this broker failed while this one waited.
        if let Some(e) = self.failed.borrow().get(&id) {
            return Err(e.clone());
        }
        let deadline = self.deadline;
        let work = async {
            if link.is_none() {
                let addr = self.address(id).await?;
                let client_id = format!("corelog-console-{}", self.broker.config.broker.node_id);
                let connected = BrokerConnection::connect(&Tcp, addr, client_id)
                    .await
                    .map_err(|e| PeerError::Failed {
                        id,
                        cause: e.to_string(),
                    })?;
                *link = Some(connected);
            }
            let conn = link.as_mut().expect("connected above");
            conn.call(version, request)
                .await
                .map_err(|e| PeerError::Failed {
                    id,
                    cause: e.to_string(),
                })
        };
        let late = async {
            glommio::timer::sleep(deadline).await;
            Err(PeerError::Deadline { id, deadline })
        };
        let answer = futures_lite::future::or(work, late).await;
        if let Err(e) = &answer {
            // A connection left inside an exchange cannot carry another.
            *link = None;
            log::warn!("console: {e}");
            self.failed.borrow_mut().insert(id, e.clone());
        }
        answer
    }

    /// Broker `id`'s registered address. A host name (not an address) is
    /// resolved on a blocking thread, never on the executor.
    async fn address(&self, id: i32) -> Result<SocketAddr, PeerError> {
        let catalog = self.broker.catalog();
        let record = catalog.brokers.get(&id).ok_or(PeerError::Unknown(id))?;
        if let Ok(ip) = record.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, record.port));
        }
        let (host, port) = (record.host.clone(), record.port);
        glommio::executor()
            .spawn_blocking(move || crate::cluster::transport::resolve(&host, port))
            .await
            .map_err(|e| PeerError::Failed {
                id,
                cause: e.to_string(),
            })
    }
}
