//! The records of `__consumer_offsets`, in Kafka's own formats so the topic
//! reads like Kafka's (`kafka-console-consumer --formatter
//! OffsetsMessageFormatter` decodes them):
//!
//! - OffsetCommitKey v1 (group, topic, partition) -> OffsetCommitValue v3
//!   (offset, leader epoch, metadata, commit timestamp); reads v0-v3.
//! - GroupMetadataKey v2 (group) -> GroupMetadataValue v3 (protocol type,
//!   generation, protocol, leader, state timestamp, members); reads v0-v3.
//! - KIP-848 consumer groups, as Kafka 3.7-4.0 write them (keys are the
//!   record type as version, values are flexible v0 with tagged fields):
//!   ConsumerGroupMetadata (3: group epoch), ConsumerGroupPartitionMetadata
//!   (4: subscribed topics' ids and partition counts),
//!   ConsumerGroupMemberMetadata (5: a member's subscription),
//!   ConsumerGroupTargetAssignmentMetadata (6: assignment epoch),
//!   ConsumerGroupTargetAssignmentMember (7: a member's target partitions),
//!   ConsumerGroupCurrentMemberAssignment (8: a member's epochs, state,
//!   assigned and pending-revocation partitions).
//!
//! A null value is a tombstone. Pure codec: no I/O, no shard state.
//!
//! Reading trusts nothing: batches go through the bounded stored-batch
//! parser (`protocol::records`) before any record is decoded, and every
//! field decoder checks lengths against the bytes that remain.
//!
//! This file holds the keys' and values' codecs; `batches` the batches they
//! travel in (appending, and the group load's decoding of what a partition
//! read returns).

mod batches;

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

pub use batches::{batch, decode_batches, Decoded};

const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_VALUE_VERSION: i16 = 3;
/// The offset value version that carries an expire timestamp (and no leader
/// epoch): what Kafka writes for a commit with its own retention time.
const OFFSET_VALUE_VERSION_EXPIRING: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const GROUP_VALUE_VERSION: i16 = 3;
/// KIP-848 record types (the key's version field) and their value version.
const CONSUMER_METADATA_KEY: i16 = 3;
const CONSUMER_PARTITION_METADATA_KEY: i16 = 4;
const CONSUMER_MEMBER_KEY: i16 = 5;
const CONSUMER_TARGET_METADATA_KEY: i16 = 6;
const CONSUMER_TARGET_MEMBER_KEY: i16 = 7;
const CONSUMER_CURRENT_ASSIGNMENT_KEY: i16 = 8;
const CONSUMER_VALUE_VERSION: i16 = 0;

/// Partitions by topic id, as KIP-848 assignments name them.
pub type Partitions = BTreeMap<Uuid, BTreeSet<i32>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// When the commit named its own retention (OffsetCommit v2-v4): the
    /// time it expires, stored as Kafka does in a version 1 value.
    pub expire_timestamp_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

/// ConsumerGroupMemberMetadataValue: what a KIP-848 member subscribes to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberSubscription {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignmentValue: where a member's
/// reconciliation stands.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's MemberState: 0 stable, 1 unrevoked, 2 unreleased partitions.
    pub state: i8,
    pub assigned: Partitions,
    pub pending_revocation: Partitions,
}

/// One subscribed topic in ConsumerGroupPartitionMetadataValue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMetadata {
    pub id: Uuid,
    pub name: String,
    pub partitions: i32,
}

/// One KIP-848 record; `None` values are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerRecord {
    Epoch(Option<i32>),
    PartitionMetadata(Option<Vec<TopicMetadata>>),
    Member {
        member: String,
        value: Option<MemberSubscription>,
    },
    TargetEpoch(Option<i32>),
    Target {
        member: String,
        value: Option<Partitions>,
    },
    Current {
        member: String,
        value: Option<CurrentAssignment>,
    },
}

/// One decoded record of the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        value: Option<GroupValue>,
    },
    Consumer {
        group: String,
        record: ConsumerRecord,
    },
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_KEY_VERSION);
    put_str(&mut buf, group);
    put_str(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

pub fn offset_value(v: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::new();
    if let Some(expire) = v.expire_timestamp_ms {
        // Version 1, the only one with an expire timestamp (and without a
        // leader epoch), as Kafka writes such a commit.
        buf.put_i16(OFFSET_VALUE_VERSION_EXPIRING);
        buf.put_i64(v.offset);
        put_str(&mut buf, &v.metadata);
        buf.put_i64(v.commit_timestamp_ms);
        buf.put_i64(expire);
        return buf.freeze();
    }
    buf.put_i16(OFFSET_VALUE_VERSION);
    buf.put_i64(v.offset);
    buf.put_i32(v.leader_epoch);
    put_str(&mut buf, &v.metadata);
    buf.put_i64(v.commit_timestamp_ms);
    buf.freeze()
}

pub fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_KEY_VERSION);
    put_str(&mut buf, group);
    buf.freeze()
}

pub fn group_value(v: &GroupValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut buf, &v.protocol_type);
    buf.put_i32(v.generation);
    put_nullable_str(&mut buf, v.protocol.as_deref());
    put_nullable_str(&mut buf, v.leader.as_deref());
    buf.put_i64(v.state_timestamp_ms);
    buf.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut buf, &m.member_id);
        put_nullable_str(&mut buf, m.group_instance_id.as_deref());
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// The key and value of one KIP-848 record (`None` value: a tombstone).
pub fn consumer_entry(group: &str, record: &ConsumerRecord) -> (Bytes, Option<Bytes>) {
    let mut key = BytesMut::new();
    let value = match record {
        ConsumerRecord::Epoch(epoch) => {
            key.put_i16(CONSUMER_METADATA_KEY);
            put_str(&mut key, group);
            epoch.map(|e| flexible_value(|b| b.put_i32(e)))
        }
        ConsumerRecord::PartitionMetadata(topics) => {
            key.put_i16(CONSUMER_PARTITION_METADATA_KEY);
            put_str(&mut key, group);
            topics.as_ref().map(|topics| {
                flexible_value(|b| {
                    put_compact_len(b, topics.len());
                    for t in topics {
                        b.put_slice(t.id.as_bytes());
                        put_compact_str(b, Some(&t.name));
                        b.put_i32(t.partitions);
                        // PartitionMetadata (racks): none known.
                        put_compact_len(b, 0);
                        b.put_u8(0);
                    }
                })
            })
        }
        ConsumerRecord::Member { member, value } => {
            key.put_i16(CONSUMER_MEMBER_KEY);
            put_str(&mut key, group);
            put_str(&mut key, member);
            value.as_ref().map(|m| {
                flexible_value(|b| {
                    put_compact_str(b, m.instance_id.as_deref());
                    put_compact_str(b, m.rack_id.as_deref());
                    put_compact_str(b, Some(&m.client_id));
                    put_compact_str(b, Some(&m.client_host));
                    put_compact_len(b, m.topic_names.len());
                    for t in &m.topic_names {
                        put_compact_str(b, Some(t));
                    }
                    put_compact_str(b, m.topic_regex.as_deref());
                    b.put_i32(m.rebalance_timeout_ms);
                    put_compact_str(b, m.server_assignor.as_deref());
                })
            })
        }
        ConsumerRecord::TargetEpoch(epoch) => {
            key.put_i16(CONSUMER_TARGET_METADATA_KEY);
            put_str(&mut key, group);
            epoch.map(|e| flexible_value(|b| b.put_i32(e)))
        }
        ConsumerRecord::Target { member, value } => {
            key.put_i16(CONSUMER_TARGET_MEMBER_KEY);
            put_str(&mut key, group);
            put_str(&mut key, member);
            value
                .as_ref()
                .map(|p| flexible_value(|b| put_partitions(b, p)))
        }
        ConsumerRecord::Current { member, value } => {
            key.put_i16(CONSUMER_CURRENT_ASSIGNMENT_KEY);
            put_str(&mut key, group);
            put_str(&mut key, member);
            value.as_ref().map(|c| {
                flexible_value(|b| {
                    b.put_i32(c.member_epoch);
                    b.put_i32(c.previous_member_epoch);
                    b.put_i8(c.state);
                    put_partitions(b, &c.assigned);
                    put_partitions(b, &c.pending_revocation);
                })
            })
        }
    };
    (key.freeze(), value)
}

/// A flexible v0 value: version, the fields, no tagged fields.
fn flexible_value(fields: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_VALUE_VERSION);
    fields(&mut buf);
    buf.put_u8(0);
    buf.freeze()
}

/// `[]TopicPartitions` (topic id, `[]int32`), each struct with no tagged fields.
fn put_partitions(buf: &mut BytesMut, partitions: &Partitions) {
    put_compact_len(buf, partitions.len());
    for (id, set) in partitions {
        buf.put_slice(id.as_bytes());
        put_compact_len(buf, set.len());
        for p in set {
            buf.put_i32(*p);
        }
        buf.put_u8(0);
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_compact_len(buf: &mut BytesMut, len: usize) {
    put_uvarint(buf, len as u64 + 1);
}

fn put_compact_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            put_compact_len(buf, s.len());
            buf.put_slice(s.as_bytes());
        }
        None => put_uvarint(buf, 0),
    }
}

fn decode_consumer(
    version: i16,
    key: &mut Bytes,
    value: Option<&Bytes>,
) -> Result<Entry, RecordError> {
    let group = get_str(key)?;
    let mut member = || get_str(key);
    let mut v = match value {
        Some(v) => {
            let mut v = v.clone();
            let value_version = get_i16(&mut v)?;
            if value_version != CONSUMER_VALUE_VERSION {
                return Err(RecordError::ConsumerValueVersion {
                    key_version: version,
                    value_version,
                });
            }
            Some(v)
        }
        None => None,
    };
    let record = match version {
        CONSUMER_METADATA_KEY => ConsumerRecord::Epoch(v.as_mut().map(get_i32).transpose()?),
        CONSUMER_PARTITION_METADATA_KEY => {
            ConsumerRecord::PartitionMetadata(v.as_mut().map(get_topic_metadata).transpose()?)
        }
        CONSUMER_MEMBER_KEY => ConsumerRecord::Member {
            member: member()?,
            value: v.as_mut().map(get_member_subscription).transpose()?,
        },
        CONSUMER_TARGET_METADATA_KEY => {
            ConsumerRecord::TargetEpoch(v.as_mut().map(get_i32).transpose()?)
        }
        CONSUMER_TARGET_MEMBER_KEY => ConsumerRecord::Target {
            member: member()?,
            value: v.as_mut().map(get_partitions).transpose()?,
        },
        _ => ConsumerRecord::Current {
            member: member()?,
            value: v.as_mut().map(get_current_assignment).transpose()?,
        },
    };
    Ok(Entry::Consumer { group, record })
}

fn get_topic_metadata(b: &mut Bytes) -> Result<Vec<TopicMetadata>, RecordError> {
    let count = get_compact_len(b)?.unwrap_or(0);
    let mut topics = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let id = get_uuid(b)?;
        let name = get_compact_str(b)?.unwrap_or_default();
        let partitions = get_i32(b)?;
        for _ in 0..get_compact_len(b)?.unwrap_or(0) {
            get_i32(b)?;
            for _ in 0..get_compact_len(b)?.unwrap_or(0) {
                get_compact_str(b)?;
            }
            skip_tagged_fields(b)?;
        }
        skip_tagged_fields(b)?;
        topics.push(TopicMetadata {
            id,
            name,
            partitions,
        });
    }
    Ok(topics)
}

fn get_member_subscription(b: &mut Bytes) -> Result<MemberSubscription, RecordError> {
    let instance_id = get_compact_str(b)?;
    let rack_id = get_compact_str(b)?;
    let client_id = get_compact_str(b)?.unwrap_or_default();
    let client_host = get_compact_str(b)?.unwrap_or_default();
    let count = get_compact_len(b)?.unwrap_or(0);
    let mut topic_names = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        topic_names.push(get_compact_str(b)?.unwrap_or_default());
    }
    Ok(MemberSubscription {
        instance_id,
        rack_id,
        client_id,
        client_host,
        topic_names,
        topic_regex: get_compact_str(b)?,
        rebalance_timeout_ms: get_i32(b)?,
        server_assignor: get_compact_str(b)?,
    })
}

fn get_current_assignment(b: &mut Bytes) -> Result<CurrentAssignment, RecordError> {
    let member_epoch = get_i32(b)?;
    let previous_member_epoch = get_i32(b)?;
    if b.remaining() < 1 {
        return Err(short("i8"));
    }
    let state = b.get_i8();
    Ok(CurrentAssignment {
        member_epoch,
        previous_member_epoch,
        state,
        assigned: get_partitions(b)?,
        pending_revocation: get_partitions(b)?,
    })
}

fn get_partitions(b: &mut Bytes) -> Result<Partitions, RecordError> {
    let mut out = Partitions::new();
    for _ in 0..get_compact_len(b)?.unwrap_or(0) {
        let id = get_uuid(b)?;
        let set = out.entry(id).or_default();
        for _ in 0..get_compact_len(b)?.unwrap_or(0) {
            set.insert(get_i32(b)?);
        }
        skip_tagged_fields(b)?;
    }
    Ok(out)
}

fn get_uvarint(b: &mut Bytes) -> Result<u64, RecordError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if b.remaining() < 1 {
            return Err(short("varint"));
        }
        let byte = b.get_u8();
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordError::VarintTooLong)
}

/// A compact array or string length; `None` for null.
fn get_compact_len(b: &mut Bytes) -> Result<Option<usize>, RecordError> {
    let n = get_uvarint(b)?;
    if n == 0 {
        return Ok(None);
    }
    let len = (n - 1) as usize;
    // Every element takes at least a byte: a length past the data is corrupt.
    if len > b.remaining() {
        return Err(short("compact array"));
    }
    Ok(Some(len))
}

fn get_compact_str(b: &mut Bytes) -> Result<Option<String>, RecordError> {
    let Some(len) = get_compact_len(b)? else {
        return Ok(None);
    };
    let raw = b.split_to(len);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| RecordError::NotUtf8)
}

fn get_uuid(b: &mut Bytes) -> Result<Uuid, RecordError> {
    if b.remaining() < 16 {
        return Err(short("uuid"));
    }
    let raw = b.split_to(16);
    Ok(Uuid::from_slice(&raw).expect("16 bytes"))
}

fn skip_tagged_fields(b: &mut Bytes) -> Result<(), RecordError> {
    for _ in 0..get_uvarint(b)? {
        get_uvarint(b)?;
        let size = get_uvarint(b)? as usize;
        if b.remaining() < size {
            return Err(short("tagged field"));
        }
        b.advance(size);
    }
    Ok(())
}

/// Decodes one record; `None` for a key this version does not know (for
/// example share or streams group records written by a newer Kafka), which
/// replay skips.
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<Option<Entry>, RecordError> {
    let mut k = key.clone();
    let version = get_i16(&mut k)?;
    match version {
        0 | 1 => {
            let group = get_str(&mut k)?;
            let topic = get_str(&mut k)?;
            let partition = get_i32(&mut k)?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(Some(Entry::Offset {
                group,
                topic,
                partition,
                value,
            }))
        }
        2 => {
            let group = get_str(&mut k)?;
            let value = value.map(decode_group_value).transpose()?;
            Ok(Some(Entry::Group { group, value }))
        }
        CONSUMER_METADATA_KEY..=CONSUMER_CURRENT_ASSIGNMENT_KEY => {
            decode_consumer(version, &mut k, value).map(Some)
        }
        _ => Ok(None),
    }
}

fn decode_offset_value(value: &Bytes) -> Result<OffsetValue, RecordError> {
    let mut v = value.clone();
    let version = get_i16(&mut v)?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::OffsetValueVersion(version));
    }
    let offset = get_i64(&mut v)?;
    let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
    let metadata = get_str(&mut v)?;
    let commit_timestamp_ms = get_i64(&mut v)?;
    let expire_timestamp_ms = if version == OFFSET_VALUE_VERSION_EXPIRING {
        Some(get_i64(&mut v)?)
    } else {
        None
    };
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn decode_group_value(value: &Bytes) -> Result<GroupValue, RecordError> {
    let mut v = value.clone();
    let version = get_i16(&mut v)?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::GroupValueVersion(version));
    }
    let protocol_type = get_str(&mut v)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_nullable_str(&mut v)?;
    let leader = get_nullable_str(&mut v)?;
    let state_timestamp_ms = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let count = get_i32(&mut v)?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_str(&mut v)?;
        let group_instance_id = if version >= 3 {
            get_nullable_str(&mut v)?
        } else {
            None
        };
        let client_id = get_str(&mut v)?;
        let client_host = get_str(&mut v)?;
        let session_timeout_ms;
        let rebalance_timeout_ms;
        if version >= 1 {
            rebalance_timeout_ms = get_i32(&mut v)?;
            session_timeout_ms = get_i32(&mut v)?;
        } else {
            session_timeout_ms = get_i32(&mut v)?;
            rebalance_timeout_ms = session_timeout_ms;
        }
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn short(what: &'static str) -> RecordError {
    RecordError::Short(what)
}

/// Why the key or value of a `__consumer_offsets` record could not be
/// decoded (a damaged record, or one of a format this version does not
/// read).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end before the named field.
    #[error("record too short for {0}")]
    Short(&'static str),
    #[error("varint longer than 64 bits")]
    VarintTooLong,
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("null where a string is required")]
    NullString,
    #[error("offset commit value version {0}")]
    OffsetValueVersion(i16),
    #[error("group metadata value version {0}")]
    GroupValueVersion(i16),
    #[error("consumer group record {key_version}: value version {value_version}")]
    ConsumerValueVersion {
        key_version: i16,
        value_version: i16,
    },
}

fn get_i16(b: &mut Bytes) -> Result<i16, RecordError> {
    if b.remaining() < 2 {
        return Err(short("i16"));
    }
    Ok(b.get_i16())
}

fn get_i32(b: &mut Bytes) -> Result<i32, RecordError> {
    if b.remaining() < 4 {
        return Err(short("i32"));
    }
    Ok(b.get_i32())
}

fn get_i64(b: &mut Bytes) -> Result<i64, RecordError> {
    if b.remaining() < 8 {
        return Err(short("i64"));
    }
    Ok(b.get_i64())
}

fn get_nullable_str(b: &mut Bytes) -> Result<Option<String>, RecordError> {
    let len = get_i16(b)?;
    if len < 0 {
        return Ok(None);
    }
    if b.remaining() < len as usize {
        return Err(short("string"));
    }
    let raw = b.split_to(len as usize);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| RecordError::NotUtf8)
}

fn get_str(b: &mut Bytes) -> Result<String, RecordError> {
    get_nullable_str(b)?.ok_or(RecordError::NullString)
}

fn get_bytes(b: &mut Bytes) -> Result<Bytes, RecordError> {
    let len = get_i32(b)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    if b.remaining() < len as usize {
        return Err(short("bytes"));
    }
    Ok(b.split_to(len as usize))
}

#[cfg(test)]
mod tests;
