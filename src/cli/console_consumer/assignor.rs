//! The consumer protocol as group members speak it to each other through
//! the coordinator: a member's subscription (JoinGroup metadata) and
//! assignment (SyncGroup), each a big-endian i16 version followed by
//! Kafka's `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`,
//! so Kafka's and librdkafka's members can share a group with the console
//! consumer. The leader assigns with the broker's own `range` assignor
//! (`group::assignor::range`), Kafka's `RangeAssignor`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::super::output::{str_bytes, topic_name};

/// The assignor's name in JoinGroup, as every Kafka client names it.
pub const RANGE: &str = "range";
/// The newest consumer protocol version whose fields this file knows; a
/// newer one is read as this one (later versions only add trailing fields).
const PROTOCOL_VERSION_MAX: i16 = 3;
/// The version this consumer subscribes with: topics only, which every
/// Kafka client since 0.9 reads (an eager member owns nothing across a
/// rebalance, so the later versions' owned partitions would be empty).
const SUBSCRIPTION_VERSION: i16 = 0;

/// One member as the leader sees it in the JoinGroup response.
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    /// The consumer protocol version it subscribed with; its assignment is
    /// written in the same version, so it can read it.
    pub version: i16,
    pub topics: BTreeSet<String>,
}

/// The JoinGroup metadata of a member subscribed to `topic`.
pub fn subscription(topic: &str) -> Bytes {
    let body = ConsumerProtocolSubscription::default().with_topics(vec![str_bytes(topic)]);
    versioned(SUBSCRIPTION_VERSION, &body)
}

/// A member's subscription: its version and topics; `None` when it does
/// not decode (a member of another protocol, or garbage).
pub fn decode_subscription(metadata: &Bytes) -> Option<(i16, BTreeSet<String>)> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let body =
        ConsumerProtocolSubscription::decode(&mut buf, version.min(PROTOCOL_VERSION_MAX)).ok()?;
    Some((version, body.topics.iter().map(|t| t.to_string()).collect()))
}

/// An assignment in `version` (clamped to what the codec writes).
pub fn encode_assignment(version: i16, partitions: &BTreeMap<String, BTreeSet<i32>>) -> Bytes {
    let body = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(topic, indexes)| {
                AssignedPartitions::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(indexes.iter().copied().collect())
            })
            .collect(),
    );
    versioned(version.clamp(0, PROTOCOL_VERSION_MAX), &body)
}

/// The partitions of `topic` in an assignment; an empty assignment (a
/// member given nothing) is none. Bytes that do not decode are an error.
pub fn decode_assignment(bytes: &Bytes, topic: &str) -> Result<Vec<i32>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Err("an assignment shorter than its version".into());
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("an assignment of version {version}"));
    }
    let body = ConsumerProtocolAssignment::decode(&mut buf, version.min(PROTOCOL_VERSION_MAX))
        .map_err(|e| format!("an assignment that does not decode: {e}"))?;
    let mut out: Vec<i32> = body
        .assigned_partitions
        .into_iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions)
        .collect();
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn versioned<T: Encodable>(version: i16, body: &T) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    body.encode(&mut buf, version)
        .expect("a consumer protocol message in a version it has");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_assignment_round_trip_in_every_version() {
        let (version, topics) = decode_subscription(&subscription("orders")).expect("decodes");
        assert_eq!(version, SUBSCRIPTION_VERSION);
        assert_eq!(topics, BTreeSet::from(["orders".to_string()]));
        let plan = BTreeMap::from([
            ("orders".to_string(), BTreeSet::from([2, 0])),
            ("other".to_string(), BTreeSet::from([1])),
        ]);
        for version in 0..=PROTOCOL_VERSION_MAX + 1 {
            let bytes = encode_assignment(version, &plan);
            assert_eq!(decode_assignment(&bytes, "orders"), Ok(vec![0, 2]));
        }
        assert_eq!(decode_assignment(&Bytes::new(), "orders"), Ok(vec![]));
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 9]), "orders").is_err());
    }

    #[test]
    fn a_newer_subscription_is_read_as_the_newest_known() {
        let body = ConsumerProtocolSubscription::default()
            .with_topics(vec![str_bytes("t")])
            .with_generation_id(7);
        let mut bytes = BytesMut::new();
        bytes.put_i16(9);
        body.encode(&mut bytes, PROTOCOL_VERSION_MAX)
            .expect("encodes");
        bytes.put_slice(b"fields of a later version");
        let (version, topics) = decode_subscription(&bytes.freeze()).expect("decodes");
        assert_eq!(version, 9);
        assert_eq!(topics, BTreeSet::from(["t".to_string()]));
    }
}
