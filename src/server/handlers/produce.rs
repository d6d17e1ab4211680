//! Produce: each partition's batch goes to the shard that owns the partition
//! (a direct call when local, the mesh otherwise); all parts run
//! concurrently and the response keeps the request's order. acks=0 gets no
//! response at all, as in Kafka.
//!
//! Produce v0-v2 may carry old message sets (magic 0 or 1, Sarama's and
//! kafka-go's defaults): they are up-converted here to one v2 batch
//! (`protocol::legacy`) and then go the same way as any batch; one that
//! does not convert is refused with the Kafka code of its fault. From v3 on
//! an old message set is INVALID_RECORD, as in Kafka.
//!
//! Refused here, before any routing: writes to internal topics
//! (INVALID_TOPIC_EXCEPTION, as Kafka's `appendToLocalLog`; the group
//! coordinator writes `__consumer_offsets` through the partition, not
//! through this handler) and zstd batches in requests older than v7
//! (UNSUPPORTED_COMPRESSION_TYPE, KIP-110). The owner validates the rest
//! (`protocol::records::validate_produce`); a refused batch's response
//! carries the reason in `error_message` and, when one record is at fault,
//! its index in `record_errors` (v8+), as Kafka's does.

use std::rc::Rc;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, TOPIC_DENIED, TRANSACTIONAL_ID_DENIED};
use crate::acl::Operation;
use crate::partition::PartitionError;
use crate::protocol::batch::{BatchHeader, Codec, ProduceBatchError};
use crate::protocol::internal::is_internal;
use crate::protocol::legacy;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::{PartitionAddr, PartitionClient};

/// The last Produce version that may carry old message sets (magic 0 or 1).
const LEGACY_PRODUCE_VERSION_MAX: i16 = 2;

/// The first Produce version that may carry zstd batches (KIP-110).
const ZSTD_PRODUCE_VERSION_MIN: i16 = 7;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout_ms = request.timeout_ms.max(0) as u64;
    let catalog = broker.catalog();
    let access = Access::new(broker, session);
    // A transactional producer needs Write on its transactional id, as
    // in Kafka; each topic needs Write (no data is written otherwise).
    let id_allowed = request
        .transactional_id
        .as_ref()
        .is_none_or(|id| access.transactional_id(Operation::Write, id));
    let topics = request.topic_data.into_iter().map(|topic| {
        let meta = catalog.topics.get(topic.name.0.as_str());
        let denied = if !id_allowed {
            Some(TRANSACTIONAL_ID_DENIED)
        } else if !access.topic(Operation::Write, topic.name.0.as_str()) {
            Some(TOPIC_DENIED)
        } else {
            None
        };
        let parts: Vec<_> = topic
            .partition_data
            .into_iter()
            .map(|data| {
                let at = meta.and_then(|m| PartitionAddr::locate(m, data.index));
                async move {
                    match denied {
                        Some(code) => PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_base_offset(-1)
                            .with_error_code(code),
                        None => {
                            produce_partition(broker, version, at, data, acks, timeout_ms).await
                        }
                    }
                }
            })
            .collect();
        async move {
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(join_all(parts).await)
        }
    });
    let waited = std::time::Instant::now();
    let topics = join_all(topics).await;
    if acks != 0 {
        // What the request waited for its owners' acknowledgements, for
        // the shard's load figures (`ShardLoad`).
        let stats = &broker.stats;
        let us = crate::server::broker::micros(waited.elapsed());
        stats.produce_waits.bump();
        stats.produce_wait_us.add(us);
        if acks == -1 {
            stats.produce_acks_all_wait_us.add(us);
        }
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(topics))
}

fn refused(
    response: PartitionProduceResponse,
    code: i16,
    message: String,
) -> PartitionProduceResponse {
    response
        .with_base_offset(-1)
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
}

async fn produce_partition(
    broker: &Rc<Broker>,
    version: i16,
    at: Option<PartitionAddr>,
    data: PartitionProduceData,
    acks: i16,
    timeout_ms: u64,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(data.index);
    let Some(at) = at else {
        return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    if is_internal(&at.topic) {
        return refused(
            response,
            ResponseError::InvalidTopicException.code(),
            format!("Cannot append to internal topic {}", at.topic),
        );
    }
    let Some(mut records) = data.records else {
        return response.with_error_code(ResponseError::InvalidRecord.code());
    };
    if legacy::is_legacy(&records) {
        if version > LEGACY_PRODUCE_VERSION_MAX {
            // Kafka's `ProduceRequest.validateRecords`: INVALID_RECORD.
            return refused(
                response,
                ResponseError::InvalidRecord.code(),
                format!(
                    "Produce requests with version {version} are only allowed to contain \
                     record batches with magic version 2"
                ),
            );
        }
        match legacy::up_convert(&records) {
            Ok(batch) => records = Bytes::from(batch),
            Err(e) => return refused(response, errors::fault_code(e.fault()), e.to_string()),
        }
    }
    let zstd = BatchHeader::parse(&records).is_ok_and(|h| h.compression() == Codec::Zstd as u8);
    if zstd && version < ZSTD_PRODUCE_VERSION_MIN {
        let e = ProduceBatchError::ZstdNeedsV7;
        return refused(response, errors::batch_error(&e), e.to_string());
    }
    let produced = PartitionClient::new(broker)
        .produce(&at, records, acks, timeout_ms)
        .await;
    match produced {
        Ok(appended) => response
            .with_base_offset(appended.base_offset)
            .with_log_append_time_ms(appended.log_append_time_ms)
            .with_log_start_offset(appended.log_start_offset),
        Err(e) => {
            let record_errors = match &e {
                PartitionError::Batch(b) => b
                    .record_index()
                    .map(|index| {
                        vec![BatchIndexAndErrorMessage::default()
                            .with_batch_index(index)
                            .with_batch_index_error_message(Some(StrBytes::from_string(
                                b.to_string(),
                            )))]
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            refused(response, errors::partition_error(&e), e.to_string())
                .with_record_errors(record_errors)
        }
    }
}
