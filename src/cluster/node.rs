//! This node's membership in a cluster, on shard 0: the controller quorum
//! when the node is a controller, the broker's registration and heartbeats,
//! the metadata image followed into the local catalog, and the client that
//! reaches the active controller wherever it is.
//!
//! It gets what it needs from the node's [`Config`] at start and applies
//! committed images through an [`ImageSink`] it is given: it never sees the
//! broker that serves clients, which implements the sink.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use uuid::Uuid;

use super::calls::{self, Attempt, ControllerCall, ControllerError, ControllerRequest, Refusal};
use super::quorum::{ElectionOutcome, Quorum, QuorumError, QuorumSettings, QuorumStatus};
use super::records::{MetadataRecord, Rejected};
use super::transport;
use crate::config::Config;
use crate::metadata::{BrokerRecord, Catalog};

/// How long a metadata change or a status call may look for the active
/// controller before it fails (an election takes about one election timeout).
const CONTROLLER_CALL_DEADLINE: Duration = Duration::from_secs(15);

/// How long a stopping broker tries to reach the controller for its
/// controlled shutdown (Kafka retries `controlled.shutdown.max.retries`
/// times); past it the broker stops as after a crash, and the controller
/// fences it when its heartbeats stop.
const CONTROLLED_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
const _: () = assert!(
    5_000
        + crate::limits::LEADERSHIP_HANDOVER_WAIT_MS
        + crate::limits::LEADERSHIP_HANDOVER_GRACE_MS
        < crate::limits::CONTROLLED_SHUTDOWN_MS_MAX
);

/// Bounds of one attempt at one controller (see `attempt_timeout`): never
/// so short that a loaded controller's commit round trip cannot make it,
/// never longer than the 5 s it always was.
const CONTROLLER_ATTEMPT_MS_MIN: u64 = 1_000;
const CONTROLLER_ATTEMPT_MS_MAX: u64 = 5_000;

/// Reaches the active controller: follows NotLeader hints, else tries the
/// voters in turn.
pub struct ControllerClient {
    voters: Vec<(i32, SocketAddr)>,
    /// How long one attempt waits for one controller's answer. A
    /// controller that stopped answering (stalled, partitioned) has lost
    /// its leadership to another voter after about one election timeout;
    /// waiting much longer on it only delays the change (an ISR shrink
    /// that acks=all producers wait for), so an attempt gives up after
    /// two election timeouts and the next one follows the new leader.
    attempt_timeout: Duration,
    leader_hint: Cell<Option<i32>>,
    next_voter: Cell<usize>,
    /// The active controller that last answered, to log when it changes:
    /// on a node that is no voter (a voter's quorum logs its elections).
    answered_by: Cell<Option<i32>>,
    log_controller_changes: bool,
}

impl ControllerClient {
    /// `log_controller_changes`: log at INFO when another controller
    /// starts answering (a node that runs no voter of its own).
    pub fn new(
        voters: Vec<(i32, SocketAddr)>,
        election_timeout: Duration,
        log_controller_changes: bool,
    ) -> ControllerClient {
        assert!(!voters.is_empty(), "a cluster has controllers");
        ControllerClient {
            answered_by: Cell::new(None),
            log_controller_changes,
            voters,
            attempt_timeout: (election_timeout * 2).clamp(
                Duration::from_millis(CONTROLLER_ATTEMPT_MS_MIN),
                Duration::from_millis(CONTROLLER_ATTEMPT_MS_MAX),
            ),
            leader_hint: Cell::new(None),
            next_voter: Cell::new(0),
        }
    }

    fn target(&self) -> (i32, SocketAddr) {
        if let Some(hint) = self.leader_hint.get() {
            if let Some(v) = self.voters.iter().find(|(id, _)| *id == hint) {
                return *v;
            }
        }
        let i = self.next_voter.get() % self.voters.len();
        self.next_voter.set(i + 1);
        self.voters[i]
    }

    /// Sends `call` to the active controller and returns its reply; gives
    /// up when this process is stopping.
    pub async fn call<C: ControllerCall>(&self, call: C) -> Result<C::Reply, ControllerError> {
        self.call_within(call, CONTROLLER_CALL_DEADLINE).await
    }

    async fn call_within<C: ControllerCall>(
        &self,
        call: C,
        within: Duration,
    ) -> Result<C::Reply, ControllerError> {
        let request: ControllerRequest = call.into_request();
        let deadline = Instant::now() + within;
        let mut last = Attempt::None;
        while Instant::now() < deadline {
            if crate::shard::shutdown::requested() {
                return Err(ControllerError::ShuttingDown);
            }
            let (id, addr) = self.target();
            let reply = transport::call::<_, Result<C::Reply, Refusal>>(
                addr,
                &request,
                self.attempt_timeout,
            )
            .await;
            match reply {
                Ok(Ok(reply)) => {
                    self.leader_hint.set(Some(id));
                    if self.answered_by.replace(Some(id)) != Some(id) && self.log_controller_changes
                    {
                        log::info!("controller: node {id} is the active controller");
                    }
                    return Ok(reply);
                }
                Ok(Err(Refusal::NotLeader { leader })) => match leader {
                    Some(leader) if leader != id => {
                        self.leader_hint.set(Some(leader));
                        last = Attempt::Redirected { id, leader };
                    }
                    _ => {
                        self.leader_hint.set(None);
                        last = Attempt::NoLeader { id };
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                    }
                },
                Ok(Err(Refusal::Rejected(rejected))) => {
                    return Err(ControllerError::Rejected(rejected))
                }
                Ok(Err(Refusal::TimedOut)) => return Err(ControllerError::TimedOut { id }),
                Ok(Err(Refusal::Malformed(reason))) => {
                    return Err(ControllerError::Malformed { id, reason })
                }
                Err(source) => {
                    self.leader_hint.set(None);
                    last = Attempt::Unreachable { id, addr, source };
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Err(ControllerError::Unavailable {
            deadline_s: within.as_secs(),
            last,
        })
    }
}

/// Where the node puts each committed metadata image: the local catalog of
/// the broker (implemented by the server). One per node, on shard 0.
pub trait ImageSink {
    /// Makes the local catalog match `image`; resolves once it does.
    fn apply_image(
        self: Rc<Self>,
        image: Rc<Catalog>,
    ) -> LocalBoxFuture<'static, Result<(), ImageNotApplied>>;
}

/// Why the local catalog did not take a committed image, in the words of
/// the sink (the layer above, whose error type this module cannot name).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ImageNotApplied {
    pub reason: String,
}

/// Why this node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("controller.quorum.voters: {0}")]
    Voter(std::io::Error),
    #[error("a controller needs a CONTROLLER listener (listeners, controller.listener.names)")]
    NoControllerListener,
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    #[error("stopped before registering: {0}")]
    StoppedBeforeRegistering(ControllerError),
}

pub struct ClusterNode {
    pub node_id: i32,
    /// New on every start, so the controller tells a restart from a heartbeat.
    pub incarnation: Uuid,
    pub quorum: Option<Rc<Quorum>>,
    pub client: ControllerClient,
    /// Log index of the newest image synced into the local catalog.
    synced: Cell<u64>,
    /// Where committed images go.
    sink: Rc<dyn ImageSink>,
    /// The address this broker registers, for clients to reach it.
    advertised_host: String,
    advertised_port: u16,
    /// Every client listener's advertised endpoint, for the registration.
    endpoints: Vec<crate::metadata::BrokerEndpoint>,
    heartbeat_interval: Duration,
    /// This node's log directory id, registered with the controller.
    directory_id: Option<Uuid>,
}

impl ClusterNode {
    /// Starts the quorum (controllers), then registration and image
    /// following. Returns once the node is registered and has taken an
    /// image with that registration in it (or that wait's bound passed),
    /// so the broker can serve.
    pub async fn start(
        config: &Config,
        sink: Rc<dyn ImageSink>,
    ) -> Result<Rc<ClusterNode>, JoinError> {
        let mut voters = Vec::new();
        for v in &config.cluster.voters {
            let addr = transport::resolve(&v.host, v.port).map_err(JoinError::Voter)?;
            voters.push((v.id, addr));
        }
        let election_timeout = Duration::from_millis(
            config.broker.controller_quorum_election_timeout_ms.max(300) as u64,
        );
        let quorum = if config.cluster.controller_role {
            let listen = config
                .cluster
                .controller_listen
                .ok_or(JoinError::NoControllerListener)?;
            let b = &config.broker;
            Some(
                Quorum::start(QuorumSettings {
                    node_id: b.node_id,
                    voters: voters.clone(),
                    listen,
                    data_dir: config.data_dir.clone(),
                    tick: Duration::from_millis(100),
                    election_timeout,
                    session_timeout: Duration::from_millis(
                        b.broker_session_timeout_ms.max(500) as u64
                    ),
                    unclean_leader_election: b.unclean_leader_election_enable,
                    probe_after: Duration::from_millis(
                        (b.broker_heartbeat_interval_ms.max(100) as u64) * 3 / 2,
                    ),
                    directory_id: config.directory_id,
                })
                .await?,
            )
        } else {
            None
        };
        let node = Rc::new(ClusterNode {
            node_id: config.broker.node_id,
            incarnation: Uuid::new_v4(),
            quorum,
            client: ControllerClient::new(
                voters,
                election_timeout,
                !config.cluster.controller_role,
            ),
            synced: Cell::new(0),
            sink,
            advertised_host: config.cluster.advertised.host.clone(),
            advertised_port: config.cluster.advertised.port,
            endpoints: config
                .client_listeners()
                .into_iter()
                .map(|l| crate::metadata::BrokerEndpoint {
                    name: l.name,
                    host: l.advertised_host,
                    port: l.advertised_port,
                    protocol: l.protocol.name().to_string(),
                })
                .collect(),
            heartbeat_interval: Duration::from_millis(
                config.broker.broker_heartbeat_interval_ms.max(100) as u64,
            ),
            directory_id: config.directory_id,
        });
        if let Some(quorum) = &node.quorum {
            let n = node.clone();
            quorum.subscribe(Rc::new(move |image: Rc<Catalog>| {
                let n = n.clone();
                glommio::spawn_local(async move { n.follow(image).await }).detach();
            }));
        } else {
            glommio::spawn_local(poll_image(node.clone())).detach();
        }
        // Register before serving, so Metadata lists this broker at once.
        // The quorum may still be electing (or waiting for its peers to
        // start): keep trying until registered or told to stop.
        while let Err(e) = node.heartbeat().await {
            if crate::shard::shutdown::requested() {
                return Err(JoinError::StoppedBeforeRegistering(e));
            }
            log::warn!("waiting for the controller quorum: {e}");
        }
        log::info!(
            "broker {}: registered with the controller quorum (process {})",
            node.node_id,
            node.incarnation
        );
        glommio::spawn_local(heartbeat_loop(node.clone())).detach();
        // Serve with an image that holds this registration (roles come only
        // from such an image, see `follow`), as a Kafka broker stays fenced
        // until it has caught up with the metadata log; clients then never
        // see this broker's stored, possibly stale, leaderships. Bounded:
        // past it the broker serves without roles until the image comes.
        let deadline = Instant::now() + CONTROLLER_CALL_DEADLINE;
        while node.synced.get() == 0 && !crate::shard::shutdown::requested() {
            if Instant::now() > deadline {
                log::warn!(
                    "no metadata image with this broker's registration after {} s; serving \
                     without partition roles until it comes",
                    CONTROLLER_CALL_DEADLINE.as_secs()
                );
                break;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        Ok(node)
    }

    /// Log index of the newest metadata image applied to this node's
    /// catalog; 0 until the first (readiness: `server::http`).
    pub fn image_offset(&self) -> u64 {
        self.synced.get()
    }

    fn record(&self) -> BrokerRecord {
        BrokerRecord {
            host: self.advertised_host.clone(),
            port: self.advertised_port,
            incarnation: self.incarnation,
            fenced: false,
            in_controlled_shutdown: false,
            directory_id: self.directory_id,
            max_metadata_version: crate::features::METADATA_VERSION_MAX,
            endpoints: self.endpoints.clone(),
        }
    }

    fn heartbeat_call(&self, shutting_down: bool) -> calls::Heartbeat {
        calls::Heartbeat {
            id: self.node_id,
            broker: self.record(),
            shutting_down,
            metadata_offset: self.synced.get(),
        }
    }

    async fn heartbeat(&self) -> Result<(), ControllerError> {
        self.client
            .call(self.heartbeat_call(false))
            .await
            .map(|_ack| ())
    }

    /// Controlled shutdown: the controller fences this broker and moves its
    /// leaderships (and takes it out of every ISR) before the process stops
    /// serving; bounded by `CONTROLLED_SHUTDOWN_DEADLINE`. Whether the
    /// controller took it.
    pub async fn shut_down(&self) -> bool {
        let call = self.heartbeat_call(true);
        match self
            .client
            .call_within(call, CONTROLLED_SHUTDOWN_DEADLINE)
            .await
        {
            Ok(_ack) => {
                log::info!(
                    "controlled shutdown: the controller fenced this broker and moves its \
                     leaderships"
                );
                true
            }
            Err(e) => {
                log::warn!("controlled shutdown: {e}; stopping without it");
                false
            }
        }
    }

    /// Commits a metadata record through the active controller and waits
    /// until this node's catalog shows it.
    pub async fn submit(&self, record: MetadataRecord) -> Result<(), SubmitError> {
        let index = match self.client.call(calls::Propose(record)).await {
            Ok(index) => index,
            Err(ControllerError::Rejected(rejected)) => {
                return Err(SubmitError::Rejected(rejected))
            }
            Err(e) => return Err(SubmitError::Unavailable(e)),
        };
        let deadline = Instant::now() + CONTROLLER_CALL_DEADLINE;
        while self.synced.get() < index {
            if Instant::now() > deadline {
                return Err(SubmitError::NotCaughtUp { index });
            }
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Preferred-leader election of the named partitions (all when None).
    pub async fn elect_preferred(
        &self,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, ElectionOutcome)>, ControllerError> {
        self.client.call(calls::ElectPreferred(wanted)).await
    }

    pub async fn status(&self) -> Result<QuorumStatus, ControllerError> {
        self.client.call(calls::Status).await
    }

    /// Brings the local catalog up to `image` (newest wins; one at a time).
    /// Only an image that holds this process's own registration is taken:
    /// it was committed after the registration, so it shows every ISR
    /// change the previous process of this broker got committed (later
    /// ones are refused as stale, see `records::apply`). An older image
    /// (a restarted controller replaying its log, or one sent before the
    /// registration committed) could make this broker lead from a stale
    /// ISR.
    async fn follow(&self, image: Rc<Catalog>) {
        let version = image.version;
        if version <= self.synced.get() {
            return;
        }
        let registered = image
            .brokers
            .get(&self.node_id)
            .is_some_and(|b| b.incarnation == self.incarnation);
        if !registered {
            log::debug!("metadata image {version} predates this broker's registration: not taken");
            return;
        }
        match self.sink.clone().apply_image(image).await {
            Ok(()) => self.synced.set(self.synced.get().max(version)),
            Err(e) => log::error!("cannot apply metadata image {version}: {e}"),
        }
    }
}

/// Why a metadata change did not reach this node's catalog.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// No active controller took the change.
    #[error("the controller is not available: {0}")]
    Unavailable(ControllerError),
    /// A conflicting change committed first, or the change breaks a rule.
    #[error(transparent)]
    Rejected(Rejected),
    /// The change committed, but this node's catalog did not follow in time.
    #[error("the change committed at metadata index {index} but this broker has not caught up with it yet")]
    NotCaughtUp { index: u64 },
}

async fn heartbeat_loop(node: Rc<ClusterNode>) {
    // Once a stop is asked, the controlled shutdown is this node's last
    // heartbeat.
    while !crate::shard::shutdown::asked() {
        glommio::timer::sleep(node.heartbeat_interval).await;
        if let Err(e) = node.heartbeat().await {
            log::warn!("broker heartbeat: {e}");
        }
    }
}

/// Brokers that are not controllers pull the image from the active one.
async fn poll_image(node: Rc<ClusterNode>) {
    while !crate::shard::shutdown::requested() {
        let since = node.synced.get();
        match node.client.call(calls::Image { since }).await {
            Ok(Some(image)) => node.follow(Rc::new(*image)).await,
            Ok(None) => {}
            Err(e) => log::warn!("metadata image: {e}"),
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}
