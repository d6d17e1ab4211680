//! Fetch: read each partition on its owner shard; if fewer than `min_bytes`
//! came back, park on every partition until one of them gets data or
//! `max_wait_ms` passes, then read once more (Kafka's long poll).
//!
//! Sessions (KIP-227) are not kept: the response's session id is 0, which
//! tells clients to send full fetch requests, as Kafka does when its session
//! cache is full.

use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{join_all, select_all};
use futures::Future;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use uuid::Uuid;

use crate::limits;
use crate::partition::PartitionError;
use crate::protocol::topic_name;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::{PartitionAddr, PartitionClient};

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

/// Reads every partition concurrently, then keeps records in request order
/// until the response's byte budget is spent (the first non-empty partition
/// is always kept whole, so a large batch can never stall a consumer).
async fn read_all(
    broker: &Rc<Broker>,
    wanted: &[Wanted],
    response_max: usize,
    replica: Option<i32>,
) -> Vec<Read> {
    let reads = wanted.iter().map(|w| async move {
        let at = match &w.at {
            Ok(at) => at,
            Err(code) => return failed(*code),
        };
        let follower = replica.map(|id| (id, w.current_leader_epoch));
        let fetched = PartitionClient::new(broker)
            .fetch(at, w.offset, w.max_bytes, follower)
            .await;
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
    });
    let mut reads = join_all(reads).await;
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
    let waits: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = wanted
        .iter()
        .filter_map(|w| {
            let at = w.at.as_ref().ok()?;
            Some(Box::pin(async move {
                PartitionClient::new(broker)
                    .wait_for_data(at, w.offset, wait_ms, replica)
                    .await;
            }) as Pin<Box<dyn Future<Output = ()> + '_>>)
        })
        .take(limits::FETCH_WAITERS_PER_SHARD_MAX)
        .collect();
    if waits.is_empty() {
        return;
    }
    let timeout = glommio::timer::sleep(Duration::from_millis(wait_ms));
    futures_lite::future::or(async { drop(select_all(waits).await) }, timeout).await;
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
