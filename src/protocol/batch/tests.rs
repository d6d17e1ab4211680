//! Tests of the batch view, and the batch builders `protocol::records` tests reuse.

use super::*;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub(crate) fn record(offset: i64, ts: i64, value: &[u8]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: 42,
        producer_epoch: 1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32,
        timestamp: ts,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

pub(crate) fn encode(n: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..n).map(|i| record(i, 1_000 + i, b"hello")).collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

#[test]
fn parse_and_validate_uncompressed_and_compressed() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let batch = encode(3, compression);
        let h = validate_produce_records(&batch, 1 << 20).unwrap();
        assert_eq!(h.total_bytes(), batch.len());
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 2);
        assert_eq!(h.compression(), compression as u8);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.producer_id, 42);
        assert!(h.has_producer_id());
        assert_eq!(h.last_sequence(), 2);
        assert!(!h.is_transactional() && !h.is_control() && !h.is_log_append_time());
    }
}

#[test]
fn corrupt_truncated_multiple_too_large() {
    let batch = encode(2, Compression::None);
    let mut bad = batch.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(
        validate_produce_records(&bad, 1 << 20),
        Err(ProduceBatchError::Batch(BatchError::CorruptCrc))
    );
    assert_eq!(
        validate_produce_records(&batch[..batch.len() - 1], 1 << 20),
        Err(ProduceBatchError::Batch(BatchError::Truncated))
    );
    assert_eq!(
        validate_produce_records(&batch[..20], 1 << 20),
        Err(ProduceBatchError::Batch(BatchError::Truncated))
    );
    let mut two = batch.clone();
    two.extend_from_slice(&batch);
    assert_eq!(
        validate_produce_records(&two, 1 << 20),
        Err(ProduceBatchError::MultipleBatches)
    );
    assert!(matches!(
        validate_produce_records(&batch, batch.len() - 1),
        Err(ProduceBatchError::TooLarge { .. })
    ));
    let mut old = batch.clone();
    old[MAGIC_AT] = 1;
    assert_eq!(
        validate_produce_records(&old, 1 << 20),
        Err(ProduceBatchError::Batch(BatchError::UnsupportedMagic(1)))
    );
    let mut short = batch.clone();
    short[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(
        validate_produce_records(&short, 1 << 20),
        Err(ProduceBatchError::Batch(BatchError::InvalidLength))
    );
    assert_eq!(
        validate_produce_records(&[], 1 << 20),
        Err(ProduceBatchError::Empty)
    );
}

#[test]
fn inconsistent_count_is_rejected() {
    let mut batch = encode(2, Compression::None);
    batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&5i32.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_produce_records(&batch, 1 << 20),
        Err(ProduceBatchError::InvalidRecordCount { .. })
    ));
}

/// fuzz target `consumer_offsets`: a stored batch at base offset
/// i64::MAX - 1 made `last_offset() + 1` overflow in the group load.
/// Offsets that do not fit are inconsistent, and `last_offset`
/// saturates on a header not checked yet.
#[test]
fn offsets_past_i64_max_are_inconsistent() {
    let mut batch = encode(2, Compression::None);
    let mut at = |base: i64| {
        patch_base_offset(&mut batch, base);
        BatchHeader::parse(&batch).unwrap()
    };
    assert!(at(i64::MAX - 2).check_consistent().is_ok());
    let h = at(i64::MAX - 1);
    assert_eq!(h.last_offset(), i64::MAX);
    assert!(h.check_consistent().is_err());
    let h = at(i64::MAX);
    assert_eq!(h.last_offset(), i64::MAX);
    assert!(h.check_consistent().is_err());
    assert!(at(-1).check_consistent().is_err());
}

#[test]
fn patches_keep_crc_valid_and_decodable() {
    let mut batch = encode(4, Compression::None);
    patch_base_offset(&mut batch, 1_000);
    patch_partition_leader_epoch(&mut batch, 7);
    let h = validate_produce_records(&batch, 1 << 20).unwrap();
    assert_eq!(h.base_offset, 1_000);
    assert_eq!(h.last_offset(), 1_003);
    assert_eq!(h.partition_leader_epoch, 7);

    set_log_append_time(&mut batch, 99_999);
    let h = validate_produce_records(&batch, 1 << 20).unwrap();
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 99_999);
    let mut bytes = Bytes::from(batch);
    let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
    assert_eq!(set.records.len(), 4);
    assert_eq!(set.records[0].offset, 1_000);
    assert_eq!(set.records[0].timestamp_type, TimestampType::LogAppend);
    // kafka-protocol reports per-record timestamps even for LogAppendTime;
    // the batch's maxTimestamp (checked above) is what Kafka clients use.
}

#[test]
fn iter_walks_batches_and_stops_with_reason() {
    let a = encode(2, Compression::None);
    let b = encode(3, Compression::Snappy);
    let mut buf = a.clone();
    buf.extend_from_slice(&b);
    let mut it = BatchIter::new(&buf, true);
    let got: Vec<_> = it.by_ref().map(|(p, h)| (p, h.records_count)).collect();
    assert_eq!(got, vec![(0, 2), (a.len(), 3)]);
    assert_eq!(it.stop(), Some(IterStop::End));
    assert_eq!(it.position(), buf.len());

    let mut it = BatchIter::new(&buf[..buf.len() - 3], true);
    assert_eq!(it.by_ref().count(), 1);
    assert_eq!(
        it.stop(),
        Some(IterStop::Incomplete {
            needed: Some(b.len())
        })
    );
    assert_eq!(it.position(), a.len());

    let mut zeros = a.clone();
    zeros.extend_from_slice(&[0u8; 100]);
    let mut it = BatchIter::new(&zeros, true);
    assert_eq!(it.by_ref().count(), 1);
    assert_eq!(
        it.stop(),
        Some(IterStop::Invalid(BatchError::UnsupportedMagic(0)))
    );

    let mut flipped = buf.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut it = BatchIter::new(&flipped, true);
    assert_eq!(it.by_ref().count(), 1);
    assert_eq!(it.stop(), Some(IterStop::Invalid(BatchError::CorruptCrc)));
    assert_eq!(BatchIter::new(&flipped, false).count(), 2);
}

#[test]
fn inconsistent_headers_stop_a_verifying_iterator() {
    let good = encode(2, Compression::None);
    let reseal = |b: &mut Vec<u8>| {
        let crc = compute_crc(b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    };
    for (at, value, what) in [
        (LAST_OFFSET_DELTA_AT, -1i32, "lastOffsetDelta is negative"),
        (RECORDS_COUNT_AT, -1, "recordsCount is negative"),
        (
            RECORDS_COUNT_AT,
            3,
            "recordsCount is larger than lastOffsetDelta + 1",
        ),
    ] {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&value.to_be_bytes());
        reseal(&mut b);
        let mut it = BatchIter::new(&b, true);
        assert_eq!(it.by_ref().count(), 0, "{what}");
        assert_eq!(
            it.stop(),
            Some(IterStop::Invalid(BatchError::Inconsistent(what)))
        );
        // Without verification the header still parses (fetch serves bytes as stored).
        assert_eq!(BatchIter::new(&b, false).count(), 1);
    }
    let mut b = good.clone();
    b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    b[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    reseal(&mut b);
    assert_eq!(
        BatchHeader::parse(&b).unwrap().check_consistent(),
        Err(BatchError::Inconsistent(
            "recordsCount is larger than the records bytes can hold"
        ))
    );
}

#[test]
fn sequence_wraps_like_kafka() {
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    assert_eq!(increment_sequence(5, 2), 7);
}
