use super::*;
use crate::protocol::batch::patch_base_offset;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A leader's stored batch of `count` records at `base`.
fn batch(base: i64, count: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 3,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // Increasing sequences keep the records in one batch.
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    let mut out = buf.to_vec();
    patch_base_offset(&mut out, base);
    out
}

fn refused(records: &[u8]) -> String {
    match FetchedBatches::check(records) {
        Err(PartitionError::InvalidRecord(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn fetched_batches_are_checked_whole_before_anything_is_appended() {
    let mut set = [batch(10, 2), batch(12, 3)].concat();
    let fetched = FetchedBatches::check(&set).unwrap();
    let offsets: Vec<_> = fetched
        .headers()
        .iter()
        .map(|h| (h.base_offset, h.last_offset()))
        .collect();
    assert_eq!(offsets, [(10, 11), (12, 14)]);
    // A fetch cut by its size limit: the partial batch waits.
    let whole = set.len();
    set.extend_from_slice(&batch(15, 1)[..30]);
    let fetched = FetchedBatches::check(&set).unwrap();
    assert_eq!((fetched.headers().len(), fetched.bytes.len()), (2, whole));
    assert!(FetchedBatches::check(&[]).unwrap().is_empty());
}

#[test]
fn a_bad_fetched_batch_refuses_the_set() {
    let good = batch(0, 2);
    // A record the stored-batch parser refuses, under a valid CRC.
    let mut bad = batch(2, 2);
    let n = bad.len();
    bad[n - 1] = 0x7f; // the last record's header count
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(refused(&[good.clone(), bad].concat()).contains("offset 2"));
    // lastOffsetDelta negative (the replica_append fuzz finding).
    let mut negative = batch(2, 1);
    negative[23..27].copy_from_slice(&(-43_752_072i32).to_be_bytes());
    let crc = crc32c::crc32c(&negative[21..]);
    negative[17..21].copy_from_slice(&crc.to_be_bytes());
    refused(&[good.clone(), negative].concat());
    // A flipped byte: the CRC no longer matches.
    let mut flipped = batch(2, 1);
    let n = flipped.len();
    flipped[n - 3] ^= 1;
    assert!(refused(&[good.clone(), flipped].concat()).contains("offset 2"));
    // Bytes that are not a batch header at all.
    let mut garbage = batch(2, 1);
    garbage[16] = 7; // magic
    assert!(refused(&[good.clone(), garbage].concat()).contains("not a record batch"));
    // Offsets that go back, or pass i64::MAX.
    refused(&[good.clone(), batch(1, 1)].concat());
    refused(&batch(i64::MAX - 1, 2));
    refused(&batch(-5, 1));
}
