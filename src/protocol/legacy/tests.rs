use std::io::Write as _;

use super::down::put_message;
use super::*;
use crate::protocol::batch::{BatchHeader, Codec};
use crate::protocol::records::{
    parse_records, records_section, validate_produce, ProduceRules, NO_TIMESTAMP,
};

type Rec = (Option<&'static [u8]>, Option<&'static [u8]>, i64);
/// (key, value, timestamp) of a record, owned.
type Owned = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

const RECORDS: &[Rec] = &[
    (Some(b"k0"), Some(b"value zero"), 1_700_000_000_000),
    (None, Some(b"value one"), 1_700_000_000_005),
    (Some(b"k2"), None, 1_699_999_999_990),
];

fn message_set(magic: i8, records: &[Rec]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (key, value, ts)) in records.iter().enumerate() {
        put_message(&mut out, magic, 0, i as i64, *ts, *key, *value);
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A compressed wrapper around `inner`, with Kafka's offsets: relative
/// inner offsets on magic 1, the last inner offset on the wrapper.
fn wrapper(magic: i8, codec: u8, compressed: &[u8], last_offset: i64) -> Vec<u8> {
    let mut out = Vec::new();
    put_message(
        &mut out,
        magic,
        codec,
        last_offset,
        1_700_000_000_005,
        None,
        Some(compressed),
    );
    out
}

fn rules() -> ProduceRules {
    ProduceRules {
        max_message_bytes: 1 << 20,
        now_ms: 1_700_000_000_000,
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        require_keys: false,
        zstd_allowed: false,
    }
}

/// (key, value, timestamp) of every record of one v2 batch.
fn records_of(batch: &[u8]) -> Vec<Owned> {
    let header = BatchHeader::parse(batch).unwrap();
    let section = records_section(batch, &header).unwrap();
    parse_records(&section, &header)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.offset_delta, i as i32);
            assert_eq!(r.header_count, 0);
            (
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                header.base_timestamp + r.timestamp_delta,
            )
        })
        .collect()
}

fn expected(records: &[Rec], timestamps: bool) -> Vec<Owned> {
    records
        .iter()
        .map(|(k, v, ts)| {
            (
                k.map(<[u8]>::to_vec),
                v.map(<[u8]>::to_vec),
                if timestamps { *ts } else { NO_TIMESTAMP },
            )
        })
        .collect()
}

#[test]
fn magic_0_and_1_sets_become_one_valid_batch_with_the_same_records() {
    for magic in [0, 1] {
        let set = message_set(magic, RECORDS);
        assert!(is_legacy(&set));
        let batch = up_convert(&set).unwrap();
        assert!(!is_legacy(&batch));
        let valid = validate_produce(&batch, &rules()).unwrap();
        assert_eq!(valid.header.records_count, 3);
        assert_eq!(valid.header.producer_id, -1);
        assert_eq!(valid.header.compression(), Codec::None as u8);
        assert_eq!(records_of(&batch), expected(RECORDS, magic == 1));
        let max = if magic == 1 {
            1_700_000_000_005
        } else {
            NO_TIMESTAMP
        };
        assert_eq!(valid.max_timestamp, max);
    }
}

#[test]
fn a_compressed_wrapper_keeps_its_codec_and_its_inner_records() {
    for magic in [0, 1] {
        let inner = message_set(magic, RECORDS);
        let mut set = wrapper(magic, Codec::Gzip as u8, &gzip(&inner), 2);
        // A second, uncompressed message after the wrapper.
        put_message(
            &mut set,
            magic,
            0,
            3,
            1_700_000_000_009,
            Some(b"k3"),
            Some(b"v3"),
        );
        let batch = up_convert(&set).unwrap();
        let header = validate_produce(&batch, &rules()).unwrap().header;
        assert_eq!(header.compression(), Codec::Gzip as u8);
        let mut want = RECORDS.to_vec();
        want.push((Some(b"k3"), Some(b"v3"), 1_700_000_000_009));
        assert_eq!(records_of(&batch), expected(&want, magic == 1));
    }
}

#[test]
fn an_up_converted_set_down_converts_to_the_same_bytes() {
    for magic in [0, 1] {
        let set = message_set(magic, RECORDS);
        let batch = up_convert(&set).unwrap();
        let mut out = Vec::new();
        let done = down_convert(&batch, magic, 0, usize::MAX, &mut out).unwrap();
        assert_eq!(done.messages, 3);
        assert_eq!(done.batches_bytes, batch.len());
        assert_eq!(out, set, "magic {magic}");
    }
}

#[test]
fn down_conversion_skips_offsets_before_the_fetch_and_stops_at_the_limit() {
    let mut batch = up_convert(&message_set(1, RECORDS)).unwrap();
    crate::protocol::batch::patch_base_offset(&mut batch, 100);
    let mut out = Vec::new();
    down_convert(&batch, 1, 101, usize::MAX, &mut out).unwrap();
    let mut want = Vec::new();
    for (i, (k, v, ts)) in RECORDS.iter().enumerate().skip(1) {
        put_message(&mut want, 1, 0, 100 + i as i64, *ts, *k, *v);
    }
    assert_eq!(out, want);

    // A limit below one message still returns the first; a limit of one
    // message and a bit returns exactly one.
    for limit in [1, want.len() / 2 + 1] {
        let mut out = Vec::new();
        let done = down_convert(&batch, 1, 101, limit, &mut out).unwrap();
        assert_eq!(done.messages, 1, "limit {limit}");
    }
    // A batch cut short ends the conversion without an error.
    let mut out = Vec::new();
    let done = down_convert(&batch[..batch.len() - 1], 1, 0, usize::MAX, &mut out).unwrap();
    assert_eq!(done.messages, 0);
}

#[test]
fn broken_message_sets_are_refused_with_their_kafka_class() {
    let set = message_set(1, RECORDS);
    let mut crc = set.clone();
    *crc.last_mut().unwrap() ^= 1;
    let mut huge = set.clone();
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut tiny = set.clone();
    tiny[8..12].copy_from_slice(&3i32.to_be_bytes());
    let mut mixed = message_set(0, &RECORDS[..1]);
    mixed.extend_from_slice(&message_set(1, &RECORDS[1..]));
    let mut log_append = Vec::new();
    put_message(
        &mut log_append,
        1,
        LOG_APPEND_TIME_BIT,
        0,
        5,
        None,
        Some(b"v"),
    );
    let inner_compressed = wrapper(1, Codec::Gzip as u8, b"x", 0);
    let nested = wrapper(1, Codec::Gzip as u8, &gzip(&inner_compressed), 0);
    let empty_wrapper = wrapper(1, Codec::Gzip as u8, &gzip(&[]), 0);
    let corrupt_gzip = wrapper(1, Codec::Gzip as u8, b"not gzip at all", 0);
    let zstd = wrapper(1, Codec::Zstd as u8, b"z", 0);
    let codec_7 = wrapper(1, 7, b"z", 0);
    let cases: Vec<(&str, Vec<u8>, BatchFault)> = vec![
        ("empty", Vec::new(), BatchFault::InvalidRecord),
        ("crc", crc, BatchFault::Corrupt),
        ("cut", set[..set.len() - 1].to_vec(), BatchFault::Corrupt),
        ("huge size", huge, BatchFault::Corrupt),
        ("tiny size", tiny, BatchFault::Corrupt),
        ("mixed magic", mixed, BatchFault::InvalidRecord),
        ("log append time", log_append, BatchFault::InvalidTimestamp),
        ("nested", nested, BatchFault::InvalidRecord),
        ("empty wrapper", empty_wrapper, BatchFault::InvalidRecord),
        ("corrupt gzip", corrupt_gzip, BatchFault::Corrupt),
        ("zstd", zstd, BatchFault::UnsupportedCompression),
        ("codec 7", codec_7, BatchFault::UnsupportedCompression),
    ];
    for (name, set, fault) in cases {
        let e = up_convert(&set).expect_err(name);
        assert_eq!(e.fault(), fault, "{name}: {e}");
    }
}

#[test]
fn a_key_length_past_the_message_is_corrupt() {
    let mut set = message_set(0, &RECORDS[..1]);
    // The key length field of the only message: offset 12 + crc 4 + magic
    // and attributes 2.
    set[18..22].copy_from_slice(&1000i32.to_be_bytes());
    let crc = crc32fast::hash(&set[16..]);
    set[12..16].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        up_convert(&set).unwrap_err(),
        LegacyError::BadLength { index: 0 }
    );
}
