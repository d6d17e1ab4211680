//! What brokers ask of the active controller over the controller listener,
//! one type per request, each naming its reply ([`ControllerCall::Reply`]).
//!
//! On the wire a request is the JSON of one [`ControllerRequest`] (the
//! enum every controller decodes), and its reply is the JSON of
//! `Result<Reply, Refusal>`: the answer the request's type names, or why
//! the controller did not give one. The client
//! (`node::ControllerClient::call`) decodes the reply as the type its call
//! names and the controller (`Quorum::handle`) encodes each answer through
//! [`encode_reply`] with the call it answers, so neither side can pair a
//! request with another request's reply.
//!
//! What a caller sees of a failure is a [`ControllerError`]: a reason
//! written for operators, which the Kafka handlers turn into error codes.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::elections::ElectionOutcome;
use super::records::{MetadataRecord, Rejected};
use super::transport::{self, Kind};
use crate::metadata::{BrokerRecord, Catalog};

/// Every request the controller listener serves, as it travels (JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// A broker's periodic heartbeat; registers it on first contact.
    Heartbeat {
        id: i32,
        broker: BrokerRecord,
        /// Controlled shutdown: fence me now and move my leaderships away.
        shutting_down: bool,
        /// The newest metadata log index the broker has applied (KRaft's
        /// observer fetch offset), shown for brokers that are not voters.
        #[serde(default)]
        metadata_offset: u64,
    },
    /// A metadata change to commit (admin requests from any broker).
    Propose(MetadataRecord),
    /// DescribeQuorum's figures.
    Status,
    /// The image, if newer than `since` (brokers that are not controllers).
    Image { since: u64 },
    /// Preferred-leader election (ElectLeaders) of the named partitions, or all.
    ElectPreferred(Option<Vec<(String, i32)>>),
}

/// One request to the active controller and the reply it gets.
pub trait ControllerCall {
    /// What the active controller answers.
    type Reply: Serialize + DeserializeOwned;

    /// The request as it travels.
    fn into_request(self) -> ControllerRequest;
}

/// A broker's heartbeat (see [`ControllerRequest::Heartbeat`]).
pub struct Heartbeat {
    pub id: i32,
    pub broker: BrokerRecord,
    pub shutting_down: bool,
    pub metadata_offset: u64,
}

/// The active controller took a heartbeat.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The broker is fenced (after a controlled shutdown).
    pub fenced: bool,
}

impl ControllerCall for Heartbeat {
    type Reply = HeartbeatAck;
    fn into_request(self) -> ControllerRequest {
        ControllerRequest::Heartbeat {
            id: self.id,
            broker: self.broker,
            shutting_down: self.shutting_down,
            metadata_offset: self.metadata_offset,
        }
    }
}

/// Commits a metadata record; answers the log index it was applied at.
pub struct Propose(pub MetadataRecord);

impl ControllerCall for Propose {
    type Reply = u64;
    fn into_request(self) -> ControllerRequest {
        ControllerRequest::Propose(self.0)
    }
}

/// The quorum's state, for DescribeQuorum.
pub struct Status;

impl ControllerCall for Status {
    type Reply = QuorumStatus;
    fn into_request(self) -> ControllerRequest {
        ControllerRequest::Status
    }
}

/// The metadata image if it is newer than `since`.
pub struct Image {
    pub since: u64,
}

impl ControllerCall for Image {
    type Reply = Option<Box<Catalog>>;
    fn into_request(self) -> ControllerRequest {
        ControllerRequest::Image { since: self.since }
    }
}

/// Preferred-leader election of the named partitions (all when `None`):
/// each partition's outcome, once the elections are committed.
pub struct ElectPreferred(pub Option<Vec<(String, i32)>>);

impl ControllerCall for ElectPreferred {
    type Reply = Vec<(String, i32, ElectionOutcome)>;
    fn into_request(self) -> ControllerRequest {
        ControllerRequest::ElectPreferred(self.0)
    }
}

/// Why a controller answered a request without its reply.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// Ask that node instead (`None`: no leader known right now).
    #[error("not the active controller")]
    NotLeader { leader: Option<i32> },
    /// The metadata change was refused when it was applied.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The change was proposed but not committed within the controller's
    /// proposal timeout (ten election timeouts).
    #[error("the metadata change was not committed in time")]
    TimedOut,
    /// The request's bytes were not a request this controller knows (a
    /// process that is not a corelog node of this version).
    #[error("the request could not be read: {0}")]
    Malformed(String),
}

/// The reply frame to a request of type `C`: the one place a controller
/// turns an answer into bytes, typed by the call it answers.
pub fn encode_reply<C: ControllerCall>(answer: &Result<C::Reply, Refusal>) -> Vec<u8> {
    transport::encode_json(Kind::Reply, answer)
}

/// The reply frame to bytes that were not a request.
pub fn encode_malformed(reason: String) -> Vec<u8> {
    let refused: Result<(), Refusal> = Err(Refusal::Malformed(reason));
    transport::encode_json(Kind::Reply, &refused)
}

/// Why a call to the active controller failed, for the operator who reads
/// it in a log line or an admin tool's error message.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// No controller answered as the active one before the call's deadline.
    #[error("no active controller answered within {deadline_s} s; the last attempt: {last}")]
    Unavailable { deadline_s: u64, last: Attempt },
    /// The active controller refused the metadata change.
    #[error(transparent)]
    Rejected(Rejected),
    /// The active controller did not commit the change in time.
    #[error("controller {id} did not commit the metadata change in time")]
    TimedOut { id: i32 },
    /// The active controller could not read the request: the nodes run
    /// versions that do not speak the same controller protocol.
    #[error("controller {id} could not read the request ({reason}); are all nodes on the same corelog version?")]
    Malformed { id: i32, reason: String },
    /// This broker is stopping: the call was not made, or given up.
    #[error("this broker is shutting down")]
    ShuttingDown,
}

/// The last failed attempt of a call that found no active controller.
#[derive(Debug, thiserror::Error)]
pub enum Attempt {
    /// The call's deadline passed before any controller was asked.
    #[error("no controller was asked")]
    None,
    #[error("controller {id} is not the active controller and knows of none")]
    NoLeader { id: i32 },
    #[error("controller {id} named controller {leader} as the active one")]
    Redirected { id: i32, leader: i32 },
    #[error("controller {id} at {addr} did not answer: {source}")]
    Unreachable {
        id: i32,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The quorum's state, as DescribeQuorum reports it (the `Status` reply).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub leader_id: i32,
    /// The Raft term (KRaft's leader epoch).
    pub leader_epoch: u64,
    /// The commit index (KRaft's high watermark).
    pub high_watermark: u64,
    pub voters: Vec<ReplicaProgress>,
    /// Registered brokers that are not voters, as their heartbeats report.
    #[serde(default)]
    pub observers: Vec<ReplicaProgress>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaProgress {
    pub id: i32,
    pub log_end_offset: u64,
    /// Unix ms of the last message from it (-1 unknown).
    pub last_fetch_ms: i64,
    /// Unix ms when it last matched the leader's log (-1 unknown).
    pub last_caught_up_ms: i64,
    /// Its log directory's id (None: unknown, Kafka's zero Uuid).
    #[serde(default)]
    pub directory_id: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of a reply frame, as the client reads it.
    fn body(frame: &[u8]) -> Vec<u8> {
        let (kind, body, _) = transport::decode_frame(frame).unwrap().unwrap();
        assert_eq!(kind, Kind::Reply);
        body
    }

    #[test]
    fn a_reply_decodes_as_the_type_its_call_names() {
        let frame = encode_reply::<Propose>(&Ok(7));
        let reply: Result<<Propose as ControllerCall>::Reply, Refusal> =
            transport::decode_json(&body(&frame)).unwrap();
        assert_eq!(reply.unwrap(), 7);

        let frame = encode_reply::<Heartbeat>(&Err(Refusal::NotLeader { leader: Some(2) }));
        let reply: Result<HeartbeatAck, Refusal> = transport::decode_json(&body(&frame)).unwrap();
        assert!(matches!(reply, Err(Refusal::NotLeader { leader: Some(2) })));
    }

    #[test]
    fn a_malformed_request_is_refused_in_any_call_reply_type() {
        let frame = encode_malformed("expected value at line 1".into());
        let reply: Result<QuorumStatus, Refusal> = transport::decode_json(&body(&frame)).unwrap();
        assert!(matches!(reply, Err(Refusal::Malformed(_))));
    }

    #[test]
    fn errors_read_as_sentences_for_operators() {
        let unavailable = ControllerError::Unavailable {
            deadline_s: 15,
            last: Attempt::NoLeader { id: 1 },
        };
        assert_eq!(
            unavailable.to_string(),
            "no active controller answered within 15 s; the last attempt: controller 1 is not \
             the active controller and knows of none"
        );
        let rejected = ControllerError::Rejected(Rejected::Conflict("epoch moved".into()));
        assert_eq!(
            rejected.to_string(),
            "conflicting metadata change: epoch moved"
        );
    }
}
