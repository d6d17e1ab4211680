//! Produce validation (Kafka's `LogValidator` rules) and recompression to
//! a topic's `compression.type`, built on the record walk.

use super::{malformed, parse_records, records_section, walk, Origin, NO_TIMESTAMP};
use crate::protocol::batch::{
    build_batch, BatchError, BatchHeader, Codec, ProduceBatchError, RecordsError,
};

/// What a topic (and the request) asks of a produced batch.
#[derive(Clone, Copy, Debug)]
pub struct ProduceRules {
    /// max.message.bytes: the whole batch, as sent.
    pub max_message_bytes: usize,
    /// The broker's clock, for the timestamp bounds.
    pub now_ms: i64,
    /// message.timestamp.type is LogAppendTime: record timestamps are
    /// replaced, so not judged.
    pub log_append_time: bool,
    /// message.timestamp.before.max.ms / after.max.ms (CreateTime only).
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// cleanup.policy has compact: every record needs a key.
    pub require_keys: bool,
    /// The request is Produce v7 or later (KIP-110: zstd needs it).
    pub zstd_allowed: bool,
}

/// A batch that passed [`validate_produce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidBatch {
    pub header: BatchHeader,
    /// The largest record timestamp (-1 when none has one), which Kafka
    /// makes the batch's maxTimestamp whatever the producer wrote there.
    pub max_timestamp: i64,
}

/// Validates the `records` of one partition in a produce request as
/// Kafka's LogValidator does, before anything is stored: one whole v2
/// batch within max.message.bytes, CRC, attributes (codec, timestamp type,
/// no control batch, no transactional batch), producer id/epoch/sequence,
/// recordsCount equal to the records present and to lastOffsetDelta + 1,
/// offset deltas 0..n-1, every record's length, varints and headers,
/// timestamps within the topic's bounds, keys on compacted topics; a
/// compressed batch is inflated in bounded chunks. One pass over the
/// records; no allocation when uncompressed.
pub fn validate_produce(
    records: &[u8],
    rules: &ProduceRules,
) -> Result<ValidBatch, ProduceBatchError> {
    let header =
        crate::protocol::batch::validate_produce_records(records, rules.max_message_bytes)?;
    let codec = header.compression();
    match Codec::from_id(codec) {
        None => return Err(ProduceBatchError::UnknownCodec(codec)),
        Some(Codec::Zstd) if !rules.zstd_allowed => return Err(ProduceBatchError::ZstdNeedsV7),
        Some(_) => {}
    }
    if header.is_control() {
        return Err(ProduceBatchError::ControlBatch);
    }
    if header.is_transactional() {
        return Err(ProduceBatchError::Transactional);
    }
    if header.is_log_append_time() {
        return Err(ProduceBatchError::LogAppendTime);
    }
    if header.has_producer_id() {
        if header.producer_epoch < 0 {
            return Err(ProduceBatchError::InvalidProducer(
                "a batch with a producer id has a negative producer epoch",
            ));
        }
        if header.base_sequence < 0 {
            return Err(ProduceBatchError::InvalidProducer(
                "a batch with a producer id has a negative base sequence",
            ));
        }
    }
    let min_ts = rules.now_ms.saturating_sub(rules.timestamp_before_max_ms);
    let max_ts = rules.now_ms.saturating_add(rules.timestamp_after_max_ms);
    let mut max_timestamp = NO_TIMESTAMP;
    walk(records, &header, Origin::Client, |r| {
        let ts = r.timestamp(&header).ok_or_else(|| {
            ProduceBatchError::Records(malformed(r.index, "record timestamp overflows"))
        })?;
        if !rules.log_append_time && ts != NO_TIMESTAMP && (ts < min_ts || ts > max_ts) {
            return Err(ProduceBatchError::Timestamp {
                index: r.index,
                timestamp: ts,
                min: min_ts,
                max: max_ts,
            });
        }
        if rules.require_keys && r.key.is_none() {
            return Err(ProduceBatchError::NullKey { index: r.index });
        }
        max_timestamp = max_timestamp.max(ts);
        Ok(())
    })?;
    Ok(ValidBatch {
        header,
        max_timestamp,
    })
}

/// The same batch with its records compressed by `codec` instead (a topic's
/// `compression.type`): every record byte-identical once decompressed, and
/// offsets, timestamps, producer id, epoch and sequence unchanged. Pure.
pub fn recompress(batch: &[u8], codec: Codec) -> Result<Vec<u8>, RecordsError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_bytes() != batch.len() {
        return Err(BatchError::Truncated.into());
    }
    let section = records_section(batch, &header)?;
    // Parsing checks the section holds exactly recordsCount records, so a
    // malformed batch is refused rather than re-wrapped.
    parse_records(&section, &header)?;
    build_batch(&header, codec, header.records_count, &section)
}
