//! Tests of the record walk, the stored-batch parser and produce validation.

use super::*;
use crate::protocol::batch::tests::{encode as encode_batch, record as batch_record};
use crate::protocol::batch::{build_batch, ProduceBatchError};
use crate::protocol::batch::{patch_base_offset, BatchHeader};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const NOW: i64 = 1_700_000_000_000;

fn record(i: i64, key: Option<&'static [u8]>, value: &[u8]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence: i as i32 - 1,
        timestamp: NOW + i,
        key: key.map(Bytes::from_static),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
    buf.to_vec()
}

fn batch(n: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..n).map(|i| record(i, Some(b"k"), b"hello")).collect();
    encode(&records, compression)
}

fn rules() -> ProduceRules {
    ProduceRules {
        max_message_bytes: 1 << 20,
        now_ms: NOW,
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        require_keys: false,
        zstd_allowed: true,
    }
}

/// Rewrites the CRC after a test edited the batch.
fn reseal(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn set_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn index_of(e: ProduceBatchError) -> Option<i32> {
    e.record_index()
}

#[test]
fn good_batches_of_every_codec_pass() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = batch(5, c);
        let v = validate_produce(&b, &rules()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(v.header.records_count, 5);
        assert_eq!(v.max_timestamp, NOW + 4);
        let mut n = 0;
        walk(&b, &v.header, Origin::Stored, |r| {
            assert_eq!(r.offset_delta, n);
            n += 1;
            Ok::<(), RecordsError>(())
        })
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(check_stored_batch(&b).unwrap(), v.header);
    }
}

#[test]
fn huge_record_count_is_refused_without_allocating() {
    let mut b = batch(1, Compression::None);
    set_i32(&mut b, 57, i32::MAX);
    set_i32(&mut b, 23, i32::MAX - 1);
    reseal(&mut b);
    let e = validate_produce(&b, &rules()).unwrap_err();
    assert!(matches!(e, ProduceBatchError::Records(_)), "{e:?}");
    assert!(check_stored_batch(&b).is_err());
    assert!(find_record(&b, |_| true).is_err());
    // The same claim inside a compressed batch is refused by the walk.
    let mut z = batch(1, Compression::Zstd);
    set_i32(&mut z, 57, i32::MAX);
    set_i32(&mut z, 23, i32::MAX - 1);
    reseal(&mut z);
    let e = validate_produce(&z, &rules()).unwrap_err();
    assert_eq!(index_of(e), Some(1), "{e:?}");
}

#[test]
fn count_lower_than_present_is_refused() {
    let mut b = batch(3, Compression::None);
    set_i32(&mut b, 57, 2);
    set_i32(&mut b, 23, 1);
    reseal(&mut b);
    let e = validate_produce(&b, &rules()).unwrap_err();
    assert_eq!(
        e,
        ProduceBatchError::Records(RecordsError::Malformed {
            index: 2,
            what: "the batch holds more records than recordsCount"
        })
    );
}

#[test]
fn count_and_last_offset_delta_must_agree() {
    let mut b = batch(3, Compression::None);
    set_i32(&mut b, 23, 5);
    reseal(&mut b);
    assert!(matches!(
        validate_produce(&b, &rules()),
        Err(ProduceBatchError::InvalidRecordCount { .. })
    ));
}

/// The records section of `b` (uncompressed) with one byte changed.
fn edit_record_byte(b: &mut [u8], at: usize, v: u8) {
    b[BATCH_HEADER_BYTES + at] = v;
    reseal(b);
}

#[test]
fn bad_varints_lengths_and_offsets_are_refused() {
    // Record 0 layout: len, attributes, ts delta, offset delta, key len...
    let good = batch(2, Compression::None);
    // A varint of six continuation bytes where the length should be.
    let mut b = good.clone();
    for i in 0..6 {
        b[BATCH_HEADER_BYTES + i] = 0xff;
    }
    reseal(&mut b);
    assert_eq!(
        index_of(validate_produce(&b, &rules()).unwrap_err()),
        Some(0)
    );
    // A record length past the batch's end.
    let mut b = good.clone();
    edit_record_byte(&mut b, 0, 0x7e); // zigzag 63
    let e = validate_produce(&b, &rules()).unwrap_err();
    assert!(matches!(e, ProduceBatchError::Records(_)), "{e:?}");
    // A negative record length.
    let mut b = good.clone();
    edit_record_byte(&mut b, 0, 0x01);
    assert!(validate_produce(&b, &rules()).is_err());
    // Offset delta 1 for record 0.
    let mut b = good.clone();
    edit_record_byte(&mut b, 3, 0x02);
    assert_eq!(
        validate_produce(&b, &rules()).unwrap_err(),
        ProduceBatchError::Records(RecordsError::Malformed {
            index: 0,
            what: "record offset delta is out of order"
        })
    );
}

#[test]
fn null_header_key_is_refused() {
    let mut r = record(0, Some(b"k"), b"v");
    r.headers.insert("h".into(), Some(Bytes::from_static(b"x")));
    let mut b = encode(&[r], Compression::None);
    // Headers sit at the record's end: count, key len (1 -> zigzag 2), key, value len, value.
    let at = b.len() - 4;
    assert_eq!(b[at], 2, "header key length");
    b[at] = 1; // zigzag -1: a null key
    reseal(&mut b);
    let e = validate_produce(&b, &rules()).unwrap_err();
    assert_eq!(
        e,
        ProduceBatchError::Records(RecordsError::Malformed {
            index: 0,
            what: "record header key is null"
        })
    );
}

#[test]
fn attributes_and_producer_fields_are_judged() {
    let good = batch(2, Compression::None);
    let with_attr = |bits: i16| {
        let mut b = good.clone();
        let a = i16::from_be_bytes([b[21], b[22]]) | bits;
        b[21..23].copy_from_slice(&a.to_be_bytes());
        reseal(&mut b);
        b
    };
    assert_eq!(
        validate_produce(&with_attr(0x20), &rules()),
        Err(ProduceBatchError::ControlBatch)
    );
    assert_eq!(
        validate_produce(&with_attr(0x10), &rules()),
        Err(ProduceBatchError::Transactional)
    );
    assert_eq!(
        validate_produce(&with_attr(0x08), &rules()),
        Err(ProduceBatchError::LogAppendTime)
    );
    assert_eq!(
        validate_produce(&with_attr(0x06), &rules()),
        Err(ProduceBatchError::UnknownCodec(6))
    );
    let z = batch(2, Compression::Zstd);
    let old = ProduceRules {
        zstd_allowed: false,
        ..rules()
    };
    assert_eq!(
        validate_produce(&z, &old),
        Err(ProduceBatchError::ZstdNeedsV7)
    );
    // Producer id 7, epoch -1.
    let mut b = good.clone();
    b[43..51].copy_from_slice(&7i64.to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&0i32.to_be_bytes());
    reseal(&mut b);
    assert!(matches!(
        validate_produce(&b, &rules()),
        Err(ProduceBatchError::InvalidProducer(_))
    ));
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&(-3i32).to_be_bytes());
    reseal(&mut b);
    assert!(matches!(
        validate_produce(&b, &rules()),
        Err(ProduceBatchError::InvalidProducer(_))
    ));
    b[53..57].copy_from_slice(&0i32.to_be_bytes());
    reseal(&mut b);
    assert!(validate_produce(&b, &rules()).is_ok());
}

#[test]
fn timestamps_and_keys_follow_the_topic() {
    let b = batch(3, Compression::Lz4);
    let strict = ProduceRules {
        now_ms: NOW - 3_600_001,
        ..rules()
    };
    let e = validate_produce(&b, &strict).unwrap_err();
    assert!(
        matches!(e, ProduceBatchError::Timestamp { index: 0, .. }),
        "{e:?}"
    );
    let past = ProduceRules {
        now_ms: NOW + 10_000,
        timestamp_before_max_ms: 9_999,
        ..rules()
    };
    assert!(matches!(
        validate_produce(&b, &past),
        Err(ProduceBatchError::Timestamp { index: 0, .. })
    ));
    let append_time = ProduceRules {
        log_append_time: true,
        ..strict
    };
    assert!(validate_produce(&b, &append_time).is_ok());
    let keyless = encode(
        &[record(0, Some(b"a"), b"1"), record(1, None, b"2")],
        Compression::Gzip,
    );
    let compacted = ProduceRules {
        require_keys: true,
        ..rules()
    };
    assert_eq!(
        validate_produce(&keyless, &compacted),
        Err(ProduceBatchError::NullKey { index: 1 })
    );
    assert!(validate_produce(&keyless, &rules()).is_ok());
}

#[test]
fn a_wrong_max_timestamp_is_reported_for_correction() {
    let mut b = batch(3, Compression::None);
    b[35..43].copy_from_slice(&(NOW + 99).to_be_bytes());
    reseal(&mut b);
    let v = validate_produce(&b, &rules()).unwrap();
    assert_eq!(v.header.max_timestamp, NOW + 99);
    assert_eq!(v.max_timestamp, NOW + 2);
}

/// A batch whose records section is `section` compressed with `codec`,
/// claiming `count` records.
fn bomb(codec: Codec, section: &[u8], count: i32) -> Vec<u8> {
    let template = BatchHeader::parse(&batch(1, Compression::None)).unwrap();
    let template = BatchHeader {
        last_offset_delta: count - 1,
        ..template
    };
    build_batch(&template, codec, count, section).unwrap()
}

/// One uncompressed record (no key) whose value is `value_len` zeros.
fn zeros_record(value_len: usize) -> Vec<u8> {
    let put = |out: &mut Vec<u8>, v: i64| {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (u & 0x7f) as u8;
            u >>= 7;
            if u == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    };
    let mut body = vec![0u8]; // attributes
    put(&mut body, 0); // timestamp delta
    put(&mut body, 0); // offset delta
    put(&mut body, -1); // null key
    put(&mut body, value_len as i64);
    let mut record = Vec::with_capacity(value_len + 16);
    put(&mut record, (body.len() + value_len + 1) as i64);
    record.extend_from_slice(&body);
    record.resize(record.len() + value_len, 0);
    record.push(0); // no headers
    record
}

#[test]
fn decompression_bombs_are_refused_within_the_budget() {
    // The real budget is 256 MiB; the same code with a 1 MiB budget
    // keeps the test small. tests/bad_batches.rs sends real bombs.
    const BUDGET: usize = 1 << 20;
    let section = zeros_record(BUDGET + 1024);
    for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd, Codec::Snappy] {
        let b = bomb(codec, &section, 1);
        assert!(b.len() < BUDGET / 8, "{codec:?} bomb is {} bytes", b.len());
        let h = BatchHeader::parse(&b).unwrap();
        let walked = walk_within(&b, &h, Origin::Client, BUDGET as u64, |_| {
            Ok::<(), RecordsError>(())
        });
        assert_eq!(walked, Err(RecordsError::TooLarge), "{codec:?}");
        assert_eq!(
            section_within(&b, &h, BUDGET),
            Err(RecordsError::TooLarge),
            "{codec:?}"
        );
        // Under a budget that fits, the same batch is a valid one.
        let fits = walk_within(&b, &h, Origin::Client, 4 * BUDGET as u64, |_| {
            Ok::<(), RecordsError>(())
        });
        assert_eq!(fits, Ok(()), "{codec:?}");
    }
    // A raw snappy block that claims more than the budget is refused
    // before anything is allocated for it.
    let mut claim = Vec::new();
    let mut n = (BUDGET as u64) * 64;
    while n >= 0x80 {
        claim.push((n as u8) | 0x80);
        n >>= 7;
    }
    claim.push(n as u8);
    claim.extend_from_slice(&[0u8; 8]);
    let b = bomb(Codec::None, &claim, 1);
    let mut b = b;
    b[22] |= Codec::Snappy as u8;
    reseal(&mut b);
    let h = BatchHeader::parse(&b).unwrap();
    assert_eq!(section_within(&b, &h, BUDGET), Err(RecordsError::TooLarge));
    // ... and one that claims more than its bytes can expand to is corrupt.
    assert_eq!(
        section_within(&b, &h, usize::MAX),
        Err(RecordsError::Codec(Codec::Snappy))
    );
}

#[test]
fn corrupt_compressed_streams_are_codec_errors() {
    for (c, codec) in [
        (Compression::Gzip, Codec::Gzip),
        (Compression::Snappy, Codec::Snappy),
        (Compression::Lz4, Codec::Lz4),
        (Compression::Zstd, Codec::Zstd),
    ] {
        let mut b = batch(20, c);
        let mid = BATCH_HEADER_BYTES + (b.len() - BATCH_HEADER_BYTES) / 2;
        for i in 0..4 {
            b[mid + i] ^= 0xa5;
        }
        reseal(&mut b);
        let e = validate_produce(&b, &rules()).unwrap_err();
        assert!(
            matches!(
                e,
                ProduceBatchError::Records(RecordsError::Codec(x)) if x == codec
            ) || matches!(
                e,
                ProduceBatchError::Records(RecordsError::Malformed { .. })
            ),
            "{c:?}: {e:?}"
        );
    }
}

#[test]
fn stored_rules_accept_cleaned_batches() {
    // A cleaned batch keeps records 1 and 3 of 0..4 (offset gaps).
    let original = batch(5, Compression::None);
    let h = BatchHeader::parse(&original).unwrap();
    let section = records_section(&original, &h).unwrap();
    let records = parse_records(&section, &h).unwrap();
    let mut raw = Vec::new();
    raw.extend_from_slice(records[1].raw);
    raw.extend_from_slice(records[3].raw);
    let cleaned = build_batch(&h, Codec::None, 2, &raw).unwrap();
    let ch = check_stored_batch(&cleaned).unwrap();
    let kept = parse_records(&records_section(&cleaned, &ch).unwrap(), &ch)
        .unwrap()
        .iter()
        .map(|r| r.offset_delta)
        .collect::<Vec<_>>();
    assert_eq!(kept, vec![1, 3]);
    // ... which a client may not send.
    assert!(validate_produce(&cleaned, &rules()).is_err());
    // An empty batch (the cleaner keeps one at a segment's end) is fine stored.
    let empty = build_batch(&h, Codec::None, 0, &[]).unwrap();
    assert_eq!(check_stored_batch(&empty).unwrap().records_count, 0);
}

#[test]
fn find_record_reads_timestamps() {
    let mut b = batch(4, Compression::Snappy);
    patch_base_offset(&mut b, 100);
    assert_eq!(
        find_record(&b, |ts| ts >= NOW + 2).unwrap(),
        Some((102, NOW + 2))
    );
    assert_eq!(find_record(&b, |ts| ts > NOW + 10).unwrap(), None);
    let recompressed = recompress(&b, Codec::Zstd).unwrap();
    assert_eq!(
        find_record(&recompressed, |ts| ts == NOW + 3).unwrap(),
        Some((103, NOW + 3))
    );
}

#[test]
fn header_keys_are_read_back() {
    let mut r = record(0, Some(b"k"), b"v");
    r.headers.insert("a".into(), Some(Bytes::from_static(b"x")));
    r.headers.insert("bb".into(), None);
    let b = encode(&[r], Compression::None);
    let h = BatchHeader::parse(&b).unwrap();
    let section = records_section(&b, &h).unwrap();
    let records = parse_records(&section, &h).unwrap();
    assert_eq!(records[0].header_keys(), vec![&b"a"[..], &b"bb"[..]]);
    assert_eq!(
        records[0].headers(),
        vec![(&b"a"[..], Some(&b"x"[..])), (&b"bb"[..], None)]
    );
    assert_eq!(records[0].key, Some(&b"k"[..]));
    assert_eq!(records[0].value, Some(&b"v"[..]));
}

#[test]
fn recompress_keeps_every_record_and_header_field() {
    use kafka_protocol::records::Compression as C;
    let codecs = [
        (C::None, Codec::None),
        (C::Gzip, Codec::Gzip),
        (C::Snappy, Codec::Snappy),
        (C::Lz4, Codec::Lz4),
        (C::Zstd, Codec::Zstd),
    ];
    for (from, _) in codecs {
        let mut records: Vec<Record> = (0..5)
            .map(|i| batch_record(i, 7_000 + i * 3, b"v"))
            .collect();
        records[1].value = None;
        records[2].key = None;
        records[3]
            .headers
            .insert("h1".into(), Some(Bytes::from_static(b"x")));
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: from,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        let mut original = buf.to_vec();
        patch_base_offset(&mut original, 40);
        let before = BatchHeader::parse(&original).unwrap();
        for (_, to) in codecs {
            let out = recompress(&original, to).unwrap();
            let after = crate::protocol::batch::validate_produce_records(&out, usize::MAX).unwrap();
            assert_eq!(after.compression(), to as u8);
            assert_eq!(
                (
                    after.base_offset,
                    after.last_offset_delta,
                    after.base_timestamp
                ),
                (
                    before.base_offset,
                    before.last_offset_delta,
                    before.base_timestamp
                )
            );
            assert_eq!(
                (after.max_timestamp, after.producer_id, after.producer_epoch),
                (
                    before.max_timestamp,
                    before.producer_id,
                    before.producer_epoch
                )
            );
            assert_eq!(
                (after.base_sequence, after.records_count),
                (before.base_sequence, before.records_count)
            );
            let decoded = RecordBatchDecoder::decode(&mut Bytes::from(out)).unwrap();
            let expected = RecordBatchDecoder::decode(&mut Bytes::from(original.clone()))
                .unwrap()
                .records;
            assert_eq!(decoded.records, expected, "{from:?} -> {to:?}");
        }
        let h = BatchHeader::parse(&original).unwrap();
        let section = records_section(&original, &h).unwrap();
        assert!(parse_records(&section, &h).unwrap()[2].key.is_none());
    }
}

#[test]
fn record_view_parses_fields_and_refuses_garbage() {
    let batch = encode_batch(3, Compression::Lz4);
    let h = BatchHeader::parse(&batch).unwrap();
    let section = records_section(&batch, &h).unwrap();
    let records = parse_records(&section, &h).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].offset_delta, 2);
    assert_eq!(records[2].timestamp_delta, 2);
    assert_eq!(records[0].key, Some(&b"k"[..]));
    assert_eq!(records[0].value, Some(&b"hello"[..]));
    assert!(records[0].header_keys().is_empty());
    let claims = |n: i32| BatchHeader {
        records_count: n,
        last_offset_delta: 3,
        ..h
    };
    assert!(parse_records(&section, &claims(4)).is_err());
    assert!(parse_records(&section, &claims(2)).is_err());
    assert!(records.iter().all(|r| r.key.is_some()));
    let mut bad = encode_batch(3, Compression::Zstd);
    let last = bad.len() - 2;
    bad[last] ^= 0xff;
    assert!(recompress(&bad, Codec::None).is_err());
}
