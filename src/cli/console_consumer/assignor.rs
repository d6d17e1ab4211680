//! The consumer protocol as group members speak it to each other through
//! the coordinator: a member's subscription (JoinGroup metadata) and
//! assignment (SyncGroup), each a big-endian i16 version followed by
//! Kafka's `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`,
//! and the `range` assignor the group leader runs over them, as Kafka's
//! `RangeAssignor` does, so Kafka's and librdkafka's members can share a
//! group with the console consumer.

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
pub fn encode_assignment(version: i16, partitions: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let body = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(topic, indexes)| {
                AssignedPartitions::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(indexes.clone())
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

/// Kafka's `RangeAssignor`: per topic, its subscribers in order (static
/// members by instance id first, then by member id) each get a contiguous
/// range, the first `partitions % subscribers` one partition more.
/// `partitions` gives each known topic's partition count; topics missing
/// from it are not assigned. Every member gets an entry, maybe empty.
pub fn range(
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
        .iter()
        .map(|m| (m.id.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&&Member> =
            sorted.iter().filter(|m| m.topics.contains(topic)).collect();
        let n = subscribers.len() as i32;
        if n == 0 || count <= 0 {
            continue;
        }
        let (quota, extra) = (count / n, count % n);
        for (i, m) in subscribers.iter().enumerate() {
            let i = i as i32;
            let start = i * quota + i.min(extra);
            let len = quota + i32::from(i < extra);
            if len > 0 {
                out.entry(m.id.clone())
                    .or_default()
                    .insert(topic.clone(), (start..start + len).collect());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, instance: Option<&str>, topics: &[&str]) -> Member {
        Member {
            id: id.to_string(),
            instance_id: instance.map(str::to_string),
            version: 0,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let members = [member("b", None, &["t"]), member("a", None, &["t"])];
        let counts = BTreeMap::from([("t".to_string(), 5)]);
        let plan = range(&members, &counts);
        assert_eq!(plan["a"]["t"], vec![0, 1, 2]);
        assert_eq!(plan["b"]["t"], vec![3, 4]);
    }

    #[test]
    fn range_puts_static_members_first_and_skips_unsubscribed_topics() {
        let members = [
            member("a", None, &["t", "u"]),
            member("z", Some("i1"), &["t"]),
            member("c", None, &["t"]),
        ];
        let counts = BTreeMap::from([("t".to_string(), 4), ("u".to_string(), 2)]);
        let plan = range(&members, &counts);
        assert_eq!(plan["z"]["t"], vec![0, 1]);
        assert_eq!(plan["a"]["t"], vec![2]);
        assert_eq!(plan["c"]["t"], vec![3]);
        assert_eq!(plan["a"]["u"], vec![0, 1]);
        assert!(!plan["c"].contains_key("u"));
    }

    #[test]
    fn more_members_than_partitions_leaves_some_with_nothing() {
        let members = [
            member("a", None, &["t"]),
            member("b", None, &["t"]),
            member("c", None, &["t"]),
        ];
        let plan = range(&members, &BTreeMap::from([("t".to_string(), 2)]));
        assert_eq!(plan["a"]["t"], vec![0]);
        assert_eq!(plan["b"]["t"], vec![1]);
        assert!(plan["c"].is_empty());
    }

    #[test]
    fn subscription_and_assignment_round_trip_in_every_version() {
        let (version, topics) = decode_subscription(&subscription("orders")).expect("decodes");
        assert_eq!(version, SUBSCRIPTION_VERSION);
        assert_eq!(topics, BTreeSet::from(["orders".to_string()]));
        let plan = BTreeMap::from([
            ("orders".to_string(), vec![2, 0]),
            ("other".to_string(), vec![1]),
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
