//! The messages the simulated network carries between brokers, voters and
//! the client.

use super::*;

/// One message of the simulated network.
pub(super) enum Message {
    Fetch {
        request: u64,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
    },
    FetchReply {
        request: u64,
        partition: i32,
        leader_epoch: i32,
        result: Result<(Bytes, i64), PartitionError>,
    },
    EpochQuery {
        request: u64,
        partition: i32,
        current_epoch: i32,
        epoch: i32,
    },
    EpochReply {
        request: u64,
        partition: i32,
        current_epoch: i32,
        result: Result<(i32, i64), PartitionError>,
    },
    AlterIsr {
        partition: i32,
        change: IsrChange,
        /// The proposing process (`records::Proposer`).
        incarnation: u64,
    },
    AlterIsrDone {
        partition: i32,
        change: IsrChange,
        applied: bool,
    },
    Heartbeat {
        incarnation: u64,
        image_version: u64,
    },
    /// The active controller's answer, with its image when the broker's is
    /// older.
    HeartbeatAck(Option<Rc<Catalog>>),
    /// A voter that does not lead refuses a heartbeat or an ISR change,
    /// naming the leader it knows.
    NotController {
        leader: Option<i32>,
    },
    Raft(Box<raft::prelude::Message>),
    Image(Rc<Catalog>),
    Produce {
        request: u64,
        partition: i32,
        batch: Bytes,
    },
    ProduceReply {
        request: u64,
        result: Result<i64, PartitionError>,
    },
}

impl Message {
    pub(super) fn describe(&self) -> String {
        match self {
            Message::Fetch {
                partition,
                offset,
                leader_epoch,
                ..
            } => format!("fetch p{partition} from {offset} epoch {leader_epoch}"),
            Message::FetchReply {
                partition,
                leader_epoch,
                result,
                ..
            } => match result {
                Ok((records, hw)) => format!(
                    "fetched p{partition} epoch {leader_epoch}: {} bytes, hw {hw}",
                    records.len()
                ),
                Err(e) => format!("fetch p{partition} epoch {leader_epoch} failed: {e}"),
            },
            Message::EpochQuery {
                partition,
                current_epoch,
                epoch,
                ..
            } => format!("end of epoch {epoch} of p{partition}? (current {current_epoch})"),
            Message::EpochReply {
                partition, result, ..
            } => format!("p{partition} epoch end: {result:?}"),
            Message::AlterIsr {
                partition, change, ..
            } => {
                format!("alter ISR of p{partition}: {change:?}")
            }
            Message::AlterIsrDone {
                partition, applied, ..
            } => format!("ISR change of p{partition} applied: {applied}"),
            Message::Heartbeat { image_version, .. } => {
                format!("heartbeat (image v{image_version})")
            }
            Message::Image(image) => format!("image v{}", image.version),
            Message::HeartbeatAck(image) => {
                format!(
                    "heartbeat ack (image {:?})",
                    image.as_ref().map(|i| i.version)
                )
            }
            Message::NotController { leader } => format!("not the controller (leader {leader:?})"),
            Message::Raft(m) => format!(
                "raft {:?} term {} index {} commit {} entries {}{}",
                m.get_msg_type(),
                m.term,
                m.index,
                m.commit,
                m.entries.len(),
                if m.reject { " rejected" } else { "" }
            ),
            Message::Produce {
                request, partition, ..
            } => format!("produce #{request} to p{partition}"),
            Message::ProduceReply { request, result } => {
                format!("produce #{request}: {result:?}")
            }
        }
    }
}
