//! Fetch: read each partition on its owner shard (one cross-shard call per
//! owner, which reads its partitions in request order within the response
//! budget, so memory follows the budget, not the partition count); if
//! fewer than `min_bytes` came back, park on every partition (one call per
//! owner) until one of them gets data or `max_wait_ms` passes, then read
//! once more (Kafka's long poll).
//!
//! Sessions (KIP-227) are not kept: the response's session id is 0, which
//! tells clients to send full fetch requests, as Kafka does when its session
//! cache is full.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use uuid::Uuid;

use crate::limits;
use crate::partition::{Fetched, PartitionError};
use crate::protocol::topic_name;
use crate::server::broker::Broker;
use crate::server::errors;
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

struct Read {
    error_code: i16,
    high_watermark: i64,
    log_start_offset: i64,
    records: Bytes,
}

pub async fn handle(broker: &Rc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    let wanted = resolve(broker, version, &request);
    // A follower names itself (replica id >= 0); consumers send -1.
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let replica = (replica_id >= 0).then_some(replica_id);
    let response_max = (request.max_bytes.max(0) as usize).min(limits::FETCH_RESPONSE_BYTES_MAX);
    let mut reads = read_all(broker, &wanted, response_max, replica).await;
    let wait_ms = (request.max_wait_ms.max(0) as u64).min(limits::FETCH_WAIT_MS_MAX);
    let bytes: usize = reads.iter().map(|r| r.records.len()).sum();
    let any_error = reads.iter().any(|r| r.error_code != errors::NONE);
    if bytes < request.min_bytes.max(0) as usize && wait_ms > 0 && !any_error && !wanted.is_empty()
    {
        wait_for_any(broker, &wanted, wait_ms, replica.is_some()).await;
        reads = read_all(broker, &wanted, response_max, replica).await;
    }
    respond(wanted, reads)
}

fn resolve(broker: &Rc<Broker>, version: i16, request: &FetchRequest) -> Vec<Wanted> {
    let catalog = broker.catalog();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let meta = if version >= 13 {
            catalog.topic_by_id(topic.topic_id)
        } else {
            catalog.topics.get(topic.topic.0.as_str())
        };
        let missing = if version >= 13 {
            ResponseError::UnknownTopicId.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        };
        for p in &topic.partitions {
            let at = meta
                .and_then(|m| PartitionAddr::locate(m, p.partition))
                .ok_or(missing);
            wanted.push(Wanted {
                topic: meta
                    .map(|m| m.name.clone())
                    .unwrap_or_else(|| topic.topic.0.to_string()),
                topic_id: meta.map(|m| m.id).unwrap_or(topic.topic_id),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: (p.partition_max_bytes.max(0) as usize)
                    .min(limits::FETCH_RESPONSE_BYTES_MAX),
                current_leader_epoch: p.current_leader_epoch,
                at,
            });
        }
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
    for _ in 0..limits::FETCH_READ_ROUNDS_MAX {
        if pending.is_empty() || left == 0 {
            break;
        }
        let parts: Vec<(&PartitionAddr, FetchPosition)> = pending
            .iter()
            .filter_map(|&i| {
                let w = &wanted[i];
                let position = FetchPosition {
                    offset: w.offset,
                    max_bytes: w.max_bytes,
                    current_leader_epoch: w.current_leader_epoch,
                };
                Some((w.at.as_ref().ok()?, position))
            })
            .collect();
        let results = client.fetch_many(&parts, left, replica).await;
        let mut next = Vec::new();
        for (&i, result) in pending.iter().zip(results) {
            let read = to_read(result);
            left = left.saturating_sub(read.records.len());
            // Left without records while it has data (a follower's end
            // may lie past the high watermark): its owner's part of the
            // budget ran out; next round.
            let has_data = replica.is_some() || read.high_watermark > wanted[i].offset;
            if read.records.is_empty() && read.error_code == errors::NONE && has_data {
                next.push(i);
            }
            reads[i] = Some(read);
        }
        pending = next;
    }
    let mut reads: Vec<Read> = reads
        .into_iter()
        .map(|r| r.expect("every partition answered"))
        .collect();
    let mut budget = response_max;
    let mut first = true;
    for read in reads.iter_mut() {
        let len = read.records.len();
        if len == 0 {
            continue;
        }
        if len <= budget || first {
            budget = budget.saturating_sub(len);
            first = false;
        } else {
            read.records = Bytes::new();
        }
    }
    reads
}

fn to_read(fetched: Result<Fetched, PartitionError>) -> Read {
    match fetched {
        Ok(fetched) => Read {
            error_code: errors::NONE,
            high_watermark: fetched.high_watermark,
            log_start_offset: fetched.log_start_offset,
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
    }
}

/// Parks on every partition's owner until one has data past the fetch
/// offset, or `wait_ms` passes.
async fn wait_for_any(broker: &Rc<Broker>, wanted: &[Wanted], wait_ms: u64, replica: bool) {
    let parts: Vec<(&PartitionAddr, i64)> = wanted
        .iter()
        .filter_map(|w| Some((w.at.as_ref().ok()?, w.offset)))
        .collect();
    if parts.is_empty() {
        return;
    }
    let timeout = glommio::timer::sleep(Duration::from_millis(wait_ms));
    let client = PartitionClient::new(broker);
    futures_lite::future::or(client.wait_for_any(&parts, wait_ms, replica), timeout).await;
}

fn respond(wanted: Vec<Wanted>, reads: Vec<Read>) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (w, read) in wanted.into_iter().zip(reads) {
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
        .with_session_id(0)
        .with_responses(topics)
}
