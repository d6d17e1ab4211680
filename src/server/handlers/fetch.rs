//! Fetch: read each partition on its owner shard (one cross-shard call per
//! owner, which reads its partitions in request order within the response
//! budget, so memory follows the budget, not the partition count); if
//! fewer than `min_bytes` came back, park on every partition (one call per
//! owner) until one of them gets data or `max_wait_ms` passes, then read
//! once more (Kafka's long poll).
//!
//! From v7 a fetch may belong to an incremental fetch session (KIP-227,
//! `server::fetch_session`): `handle` first asks the shard's session cache
//! which partitions to read (the request's, or all of its session's), and
//! `respond` asks it which of them the response carries (all, or those
//! that changed) and which session id it names.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use uuid::Uuid;

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::limits;
use crate::metadata::TopicMeta;
use crate::partition::{Fetched, PartitionError};
use crate::protocol::batch::count_records;
use crate::protocol::legacy;
use crate::protocol::topic_name;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::fetch_session::{
    Context, FetchParams, Opened, PartitionKey, ReadSummary, SessionError, SessionRequest,
    TopicKey, INVALID_SESSION_ID,
};
use crate::server::routing::{FetchPosition, PartitionAddr, PartitionClient};

/// One partition of the request, resolved against the catalog.
struct Wanted {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// The leader epoch a follower's fetch names (-1: none).
    current_leader_epoch: i32,
    /// Err: the topic or partition does not exist (the code says which).
    at: Result<PartitionAddr, i16>,
}

impl Wanted {
    /// Where its owner reads it; None when it does not exist.
    fn position(&self) -> Option<(&PartitionAddr, FetchPosition)> {
        let position = FetchPosition {
            offset: self.offset,
            max_bytes: self.max_bytes,
            current_leader_epoch: self.current_leader_epoch,
        };
        Some((self.at.as_ref().ok()?, position))
    }
}

struct Read {
    error_code: i16,
    high_watermark: i64,
    log_start_offset: i64,
    records: Bytes,
    /// Records in `records`, counted for consumers only (0 for followers,
    /// which have no record budget).
    record_count: usize,
}

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: FetchRequest,
) -> FetchResponse {
    // A follower names itself (replica id >= 0); consumers send -1.
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let replica = (replica_id >= 0).then_some(replica_id);
    let opened = match open_session(broker, version, &request, replica.is_some()) {
        Ok(opened) => opened,
        Err(e) => return refused(e),
    };
    let mut wanted = resolve(broker, &opened.partitions);
    authorize(broker, session, replica.is_some(), &mut wanted);
    // Consumers' responses are capped by `fetch.max.bytes` (KIP-541);
    // followers size theirs with `replica.fetch.response.max.bytes`.
    let broker_max = match replica {
        Some(_) => limits::FETCH_RESPONSE_BYTES_MAX,
        None => broker.config.broker.fetch_max_bytes as usize,
    };
    let response_max = (request.max_bytes.max(0) as usize)
        .min(broker_max)
        .min(limits::FETCH_RESPONSE_BYTES_MAX);
    let started = crate::clock::now();
    let mut reads = read_all(broker, &wanted, response_max, replica).await;
    let read_us = started.elapsed().as_micros() as u64;
    let wait_ms = (request.max_wait_ms.max(0) as u64).min(limits::FETCH_WAIT_MS_MAX);
    let bytes: usize = reads.iter().map(|r| r.records.len()).sum();
    let any_error = reads.iter().any(|r| r.error_code != errors::NONE);
    if bytes < request.min_bytes.max(0) as usize && wait_ms > 0 && !any_error && !wanted.is_empty()
    {
        match wait_then_read(broker, &wanted, wait_ms, response_max, replica).await {
            Some(fresh) => {
                for (i, read) in fresh {
                    reads[i] = read;
                }
                keep_within(&mut reads, response_max, replica);
            }
            // Nothing came: read again for current high watermarks.
            None => reads = read_all(broker, &wanted, response_max, replica).await,
        }
    }
    tracing::debug!(
        partitions = wanted.len(),
        first_read_bytes = bytes,
        bytes = reads.iter().map(|r| r.records.len()).sum::<usize>(),
        with_records = reads.iter().filter(|r| !r.records.is_empty()).count(),
        read_us,
        total_us = started.elapsed().as_micros() as u64,
        "fetch answered"
    );
    if version <= LEGACY_FETCH_VERSION_MAX {
        down_convert_reads(version, &wanted, &mut reads);
    }
    respond(broker, opened, wanted, reads)
}

/// The last Fetch version that reads old message sets (magic 0 or 1).
const LEGACY_FETCH_VERSION_MAX: i16 = 3;

/// Fetch v0-v3: each partition's v2 batches become the message set its
/// version reads (`protocol::legacy`), from the fetch offset and within the
/// partition's `max_bytes`. Done on the shard that answers the request,
/// after the reads, so the owners' read path is the same for every version.
fn down_convert_reads(version: i16, wanted: &[Wanted], reads: &mut [Read]) {
    let magic = legacy::fetch_magic(version);
    for (w, read) in wanted.iter().zip(reads.iter_mut()) {
        if read.records.is_empty() {
            continue;
        }
        let mut out = Vec::with_capacity(read.records.len());
        match legacy::down_convert(&read.records, magic, w.offset, w.max_bytes, &mut out) {
            Ok(_) => read.records = Bytes::from(out),
            Err(e) => {
                tracing::warn!(
                    topic = %w.topic,
                    partition = w.partition,
                    offset = w.offset,
                    error = %e,
                    "stored records could not be converted for an old consumer"
                );
                *read = failed(errors::code(ResponseError::CorruptMessage));
            }
        }
    }
}

/// Which partitions this fetch reads, and how it is answered: the
/// request's partitions, or (an incremental fetch) all of its session's.
/// Before v7 a fetch has no session fields and is always sessionless.
fn open_session(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
    follower: bool,
) -> Result<Opened, SessionError> {
    let requested = requested(version, request);
    if version < 7 {
        return Ok(Opened {
            context: Context::Sessionless,
            partitions: requested,
        });
    }
    let forgotten = forgotten(version, request);
    let session = SessionRequest {
        session_id: request.session_id,
        epoch: request.session_epoch,
        uses_topic_ids: version >= 13,
        follower,
    };
    broker
        .fetch_sessions
        .borrow_mut()
        .open(&session, requested, &forgotten)
}

/// The request's partitions, named by topic id from v13 and by name before.
fn requested(version: i16, request: &FetchRequest) -> Vec<(PartitionKey, FetchParams)> {
    let mut requested = Vec::new();
    for topic in &request.topics {
        let key = topic_key(version, topic.topic_id, &topic.topic.0);
        for p in &topic.partitions {
            let params = FetchParams {
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                log_start_offset: p.log_start_offset,
                current_leader_epoch: p.current_leader_epoch,
            };
            let partition = PartitionKey {
                topic: key.clone(),
                partition: p.partition,
            };
            requested.push((partition, params));
        }
    }
    requested
}

/// The partitions an incremental fetch removes from its session.
fn forgotten(version: i16, request: &FetchRequest) -> Vec<PartitionKey> {
    let mut forgotten = Vec::new();
    for topic in &request.forgotten_topics_data {
        let key = topic_key(version, topic.topic_id, &topic.topic.0);
        forgotten.extend(topic.partitions.iter().map(|&partition| PartitionKey {
            topic: key.clone(),
            partition,
        }));
    }
    forgotten
}

fn topic_key(version: i16, id: Uuid, name: &str) -> TopicKey {
    if version >= 13 {
        TopicKey::Id(id)
    } else {
        TopicKey::Name(Rc::from(name))
    }
}

/// A fetch its session refuses: the error, no partitions, no session.
fn refused(e: SessionError) -> FetchResponse {
    FetchResponse::default()
        .with_error_code(errors::fetch_session_error(e))
        .with_session_id(INVALID_SESSION_ID)
}

/// As Kafka: a consumer needs Read on each topic, a follower ClusterAction
/// on the cluster; a partition refused answers TOPIC_AUTHORIZATION_FAILED
/// and is not read.
fn authorize(broker: &Rc<Broker>, session: &Session, follower: bool, wanted: &mut [Wanted]) {
    let access = Access::new(broker, session);
    if !access.enabled() {
        return;
    }
    let follower_allowed = follower && access.cluster(Operation::ClusterAction);
    for w in wanted.iter_mut() {
        let allowed = if follower {
            follower_allowed
        } else {
            access.topic(Operation::Read, &w.topic)
        };
        if !allowed {
            w.at = Err(TOPIC_DENIED);
        }
    }
}

fn resolve(broker: &Rc<Broker>, partitions: &[(PartitionKey, FetchParams)]) -> Vec<Wanted> {
    let catalog = broker.catalog();
    let mut wanted = Vec::with_capacity(partitions.len());
    // A topic's partitions come one after another: look it up once.
    let mut last: Option<(&TopicKey, Option<&TopicMeta>)> = None;
    for (key, params) in partitions {
        let meta = match last {
            Some((topic, meta)) if *topic == key.topic => meta,
            _ => {
                let meta = match &key.topic {
                    TopicKey::Id(id) => catalog.topic_by_id(*id),
                    TopicKey::Name(name) => catalog.topics.get(&**name),
                };
                last = Some((&key.topic, meta));
                meta
            }
        };
        let (missing, asked_name, asked_id) = match &key.topic {
            TopicKey::Id(id) => (ResponseError::UnknownTopicId.code(), "", *id),
            TopicKey::Name(name) => (
                ResponseError::UnknownTopicOrPartition.code(),
                &**name,
                Uuid::nil(),
            ),
        };
        let at = meta
            .and_then(|m| PartitionAddr::locate(m, key.partition))
            .ok_or(missing);
        wanted.push(Wanted {
            topic: meta
                .map(|m| m.name.clone())
                .unwrap_or_else(|| asked_name.to_string()),
            topic_id: meta.map(|m| m.id).unwrap_or(asked_id),
            partition: key.partition,
            offset: params.fetch_offset,
            max_bytes: (params.max_bytes.max(0) as usize).min(limits::FETCH_RESPONSE_BYTES_MAX),
            current_leader_epoch: params.current_leader_epoch,
            at,
        });
    }
    wanted
}

/// Reads every partition on its owner shard (one call per owner shard and
/// round, each owner with an equal part of what is left of the response
/// budget, which it spends on its partitions in request order as Kafka
/// fills its responses; partitions past it get what the caches hold). What
/// an owner leaves unspent goes, in a next round (at most
/// `FETCH_READ_ROUNDS_MAX`), to the partitions left without records that
/// have data, on any owner. So a fetch reads about its budget into memory
/// however many partitions it names or shards it spans. Then records are
/// kept in request order until the budget is spent; the first non-empty
/// partition is always kept whole, so a large batch can never stall a
/// consumer (KIP-74).
async fn read_all(
    broker: &Rc<Broker>,
    wanted: &[Wanted],
    response_max: usize,
    replica: Option<i32>,
) -> Vec<Read> {
    let client = PartitionClient::new(broker);
    let mut reads: Vec<Option<Read>> = wanted
        .iter()
        .map(|w| w.at.as_ref().err().map(|code| failed(*code)))
        .collect();
    let mut pending: Vec<usize> = (0..wanted.len()).filter(|&i| reads[i].is_none()).collect();
    let mut left = response_max;
    let mut records_sent = 0;
    let started = crate::clock::now();
    for round in 0..limits::FETCH_READ_ROUNDS_MAX {
        if pending.is_empty() || left == 0 {
            break;
        }
        let parts: Vec<(&PartitionAddr, FetchPosition)> = pending
            .iter()
            .filter_map(|&i| wanted[i].position())
            .collect();
        let records = match replica {
            Some(_) => usize::MAX,
            None => limits::FETCH_RESPONSE_RECORDS_MAX.saturating_sub(records_sent),
        };
        let results = client
            .fetch_many(&parts, left, records, round == 0, replica)
            .await;
        let mut next = Vec::new();
        let before = left;
        for (&i, result) in pending.iter().zip(results) {
            let read = to_read(result, replica);
            left = left.saturating_sub(read.records.len());
            records_sent += read.record_count;
            // Left without records while it has data (a follower's end
            // may lie past the high watermark): its owner's part of the
            // budget ran out; next round.
            let has_data = replica.is_some() || read.high_watermark > wanted[i].offset;
            if read.records.is_empty() && read.error_code == errors::NONE && has_data {
                next.push(i);
            }
            reads[i] = Some(read);
        }
        if replica.is_none() && records_sent >= limits::FETCH_RESPONSE_RECORDS_MAX {
            break;
        }
        if round > 0 && left == before {
            // Nothing more fits what is left: another round would read
            // the same nothing.
            break;
        }
        if left < response_max
            && started.elapsed() >= Duration::from_millis(limits::FETCH_DISK_READ_MS)
        {
            // It holds records and its time for disk reads is over.
            break;
        }
        pending = next;
    }
    let mut reads: Vec<Read> = reads
        .into_iter()
        .map(|r| r.expect("every partition answered"))
        .collect();
    keep_within(&mut reads, response_max, replica);
    reads
}

/// Keeps records in request order while they fit the response's bytes and
/// (a consumer's) records; the first non-empty partition is always kept
/// whole, so a large batch can never stall a consumer (KIP-74).
fn keep_within(reads: &mut [Read], response_max: usize, replica: Option<i32>) {
    let mut budget = response_max;
    let mut records_left = match replica {
        Some(_) => usize::MAX,
        None => limits::FETCH_RESPONSE_RECORDS_MAX,
    };
    let mut first = true;
    for read in reads.iter_mut() {
        let len = read.records.len();
        if len == 0 {
            continue;
        }
        if (len <= budget && read.record_count <= records_left) || first {
            budget = budget.saturating_sub(len);
            records_left = records_left.saturating_sub(read.record_count);
            first = false;
        } else {
            read.records = Bytes::new();
        }
    }
}

/// A partition's read as the response gives it; a consumer's records are
/// counted (for its record bound), a follower's need not be.
fn to_read(fetched: Result<Fetched, PartitionError>, replica: Option<i32>) -> Read {
    match fetched {
        Ok(fetched) => Read {
            error_code: errors::NONE,
            high_watermark: fetched.high_watermark,
            log_start_offset: fetched.log_start_offset,
            record_count: match replica {
                Some(_) => 0,
                None => count_records(&fetched.records),
            },
            records: fetched.records,
        },
        Err(e) => {
            let mut read = failed(errors::partition_error(&e));
            if let PartitionError::OffsetOutOfRange { start, end, .. } = e {
                read.log_start_offset = start;
                read.high_watermark = end;
            }
            read
        }
    }
}

fn failed(error_code: i16) -> Read {
    Read {
        error_code,
        high_watermark: -1,
        log_start_offset: -1,
        records: Bytes::new(),
        record_count: 0,
    }
}

/// The long poll: parks on every partition's owner until one has data
/// past the fetch offset, or `wait_ms` passes; the owner that wakes reads
/// at once and its reads come back with the wake-up (`wait_then_read`), as
/// (index in `wanted`, read). None: the wait ran out with nothing new.
async fn wait_then_read(
    broker: &Rc<Broker>,
    wanted: &[Wanted],
    wait_ms: u64,
    response_max: usize,
    replica: Option<i32>,
) -> Option<Vec<(usize, Read)>> {
    let (indices, parts): (Vec<usize>, Vec<(&PartitionAddr, FetchPosition)>) = wanted
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((i, w.position()?)))
        .unzip();
    if parts.is_empty() {
        return None;
    }
    let records = match replica {
        Some(_) => usize::MAX,
        None => limits::FETCH_RESPONSE_RECORDS_MAX,
    };
    let client = PartitionClient::new(broker);
    let parked = std::time::Instant::now();
    let fresh = client
        .wait_then_read(&parts, wait_ms, response_max, records, replica)
        .await;
    broker.stats.fetch_waits.bump();
    broker.stats.fetch_wait_us.add_elapsed_us(parked);
    Some(
        fresh?
            .into_iter()
            .map(|(j, result)| (indices[j], to_read(result, replica)))
            .collect(),
    )
}

fn respond(
    broker: &Broker,
    opened: Opened,
    wanted: Vec<Wanted>,
    reads: Vec<Read>,
) -> FetchResponse {
    let (session_id, carried) = close_session_round(broker, &opened, &reads);
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (i, (w, read)) in wanted.into_iter().zip(reads).enumerate() {
        if carried.as_ref().is_some_and(|carried| !carried[i]) {
            continue;
        }
        let partition = PartitionData::default()
            .with_partition_index(w.partition)
            .with_error_code(read.error_code)
            .with_high_watermark(read.high_watermark)
            .with_last_stable_offset(read.high_watermark)
            .with_log_start_offset(read.log_start_offset)
            .with_records(Some(read.records));
        match topics.last_mut() {
            Some(t) if t.topic_id == w.topic_id && t.topic.0.as_str() == w.topic => {
                t.partitions.push(partition)
            }
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(topic_name(&w.topic))
                    .with_topic_id(w.topic_id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics)
}

/// Tells the session cache what was read: a full fetch at epoch 0 may open
/// a session, an incremental one learns which partitions changed. Answers
/// the session id the response names and, for an incremental fetch, which
/// partitions it carries (None: all of them).
fn close_session_round(
    broker: &Broker,
    opened: &Opened,
    reads: &[Read],
) -> (i32, Option<Vec<bool>>) {
    let summaries = || -> Vec<ReadSummary> {
        reads
            .iter()
            .map(|r| ReadSummary {
                has_records: !r.records.is_empty(),
                error_code: r.error_code,
                high_watermark: r.high_watermark,
                log_start_offset: r.log_start_offset,
            })
            .collect()
    };
    let mut sessions = broker.fetch_sessions.borrow_mut();
    match opened.context {
        Context::Sessionless => (INVALID_SESSION_ID, None),
        Context::Full {
            follower,
            uses_topic_ids,
        } => {
            let id = sessions.create(follower, uses_topic_ids, &opened.partitions, &summaries());
            (id, None)
        }
        Context::Incremental { session_id } => {
            let carried = sessions.select(session_id, &opened.partitions, &summaries());
            (session_id, Some(carried))
        }
    }
}
