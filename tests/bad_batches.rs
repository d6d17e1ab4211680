//! Produce validates every batch as Kafka's LogValidator does, before
//! anything is stored: each hostile batch below gets Kafka's error code for
//! its partition, nothing of it is stored (the log end does not move), the
//! other partition of the same request is stored, and the broker still
//! answers ListOffsets by timestamp and Fetch afterwards.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::raw::{code, now_ms, simple_batch, topic_name, Conn};
use common::{Broker, BrokerOptions};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::records::Compression;

const INVALID_TIMESTAMP: i16 = 32;
const INVALID_TXN_STATE: i16 = 48;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// One v2 record: offset delta, key, value, headers (key may be None to
/// write a null header key, which no client can).
fn record(
    offset_delta: i64,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[(Option<&[u8]>, &[u8])],
) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    put_varint(&mut body, offset_delta); // timestamp delta = offset delta
    put_varint(&mut body, offset_delta);
    match key {
        Some(k) => {
            put_varint(&mut body, k.len() as i64);
            body.extend_from_slice(k);
        }
        None => put_varint(&mut body, -1),
    }
    put_varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    put_varint(&mut body, headers.len() as i64);
    for (k, v) in headers {
        match k {
            Some(k) => {
                put_varint(&mut body, k.len() as i64);
                body.extend_from_slice(k);
            }
            None => put_varint(&mut body, -1),
        }
        put_varint(&mut body, v.len() as i64);
        body.extend_from_slice(v);
    }
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// Header fields of a hand-built batch.
#[derive(Clone, Copy)]
struct Head {
    attributes: i16,
    last_offset_delta: i32,
    records_count: i32,
    base_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

impl Head {
    fn plain(count: i32) -> Head {
        Head {
            attributes: 0,
            last_offset_delta: count - 1,
            records_count: count,
            base_timestamp: now_ms(),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// A CRC-valid v2 batch around `records` (already compressed if the
/// attributes say so).
fn seal(head: Head, records: &[u8]) -> Bytes {
    let mut b = vec![0u8; 61];
    b.extend_from_slice(records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    b[16] = 2;
    b[21..23].copy_from_slice(&head.attributes.to_be_bytes());
    b[23..27].copy_from_slice(&head.last_offset_delta.to_be_bytes());
    b[27..35].copy_from_slice(&head.base_timestamp.to_be_bytes());
    let max_ts = head.base_timestamp + i64::from(head.last_offset_delta.max(0));
    b[35..43].copy_from_slice(&max_ts.to_be_bytes());
    b[43..51].copy_from_slice(&head.producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&head.producer_epoch.to_be_bytes());
    b[53..57].copy_from_slice(&head.base_sequence.to_be_bytes());
    b[57..61].copy_from_slice(&head.records_count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn records(n: i64) -> Vec<u8> {
    (0..n)
        .flat_map(|i| record(i, Some(b"k"), format!("v{i}").as_bytes(), &[]))
        .collect()
}

/// Produces `bad` to partition 0 and a good 3-record batch to partition 1
/// in one request (acks=all); returns both partitions' responses.
fn produce_pair(
    conn: &mut Conn,
    version: i16,
    topic: &str,
    bad: Bytes,
) -> (PartitionProduceResponse, PartitionProduceResponse) {
    let good = simple_batch("ok", 3, 20, now_ms());
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bad)),
                PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(good)),
            ])]);
    let response: ProduceResponse = conn.call(version, &request);
    let parts = &response.responses[0].partition_responses;
    assert_eq!(parts.len(), 2);
    let p0 = parts
        .iter()
        .find(|p| p.index == 0)
        .expect("partition 0")
        .clone();
    let p1 = parts
        .iter()
        .find(|p| p.index == 1)
        .expect("partition 1")
        .clone();
    (p0, p1)
}

#[test]
fn hostile_batches_get_kafkas_codes_and_nothing_is_stored() {
    let mut broker = Broker::start();
    broker.create_topic("hostile", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    assert!(produce >= 8, "record_errors need Produce v8");
    let list = versions.pick(ApiKey::ListOffsets, 7);
    let fetch = versions.pick(ApiKey::Fetch, 12).min(12);

    // One good batch first, so partition 0 has something to list by time.
    let first_ts = now_ms();
    assert_eq!(
        conn.produce(
            produce,
            "hostile",
            0,
            simple_batch("first", 2, 10, first_ts)
        ),
        (code::NONE, 0)
    );

    let one = record(0, Some(b"k"), b"v", &[]);
    let mut bad_varint = vec![0xffu8; 6];
    bad_varint.extend_from_slice(&one[1..]);
    let mut past_end = one.clone();
    past_end[0] = 0x7e; // length 63, far past the batch
    let mut delta_one = Vec::new();
    delta_one.extend(record(1, Some(b"k"), b"v", &[]));
    let null_header = record(0, Some(b"k"), b"v", &[(None, b"x")]);
    let future = Head {
        base_timestamp: now_ms() + 2 * 3_600_000,
        ..Head::plain(1)
    };
    let cases: Vec<(&str, Bytes, i16, Option<i32>)> = vec![
        (
            "recordsCount 2^31-1 with one record",
            seal(
                Head {
                    last_offset_delta: i32::MAX - 1,
                    records_count: i32::MAX,
                    ..Head::plain(1)
                },
                &one,
            ),
            INVALID_RECORD,
            Some(1),
        ),
        (
            "recordsCount lower than the records present",
            seal(Head::plain(2), &records(3)),
            INVALID_RECORD,
            Some(2),
        ),
        (
            "a varint of six bytes",
            seal(Head::plain(1), &bad_varint),
            INVALID_RECORD,
            Some(0),
        ),
        (
            "a record length past the batch",
            seal(Head::plain(1), &past_end),
            INVALID_RECORD,
            Some(0),
        ),
        (
            "offset delta 1 for the first record",
            seal(Head::plain(1), &delta_one),
            INVALID_RECORD,
            Some(0),
        ),
        (
            "a null header key",
            seal(Head::plain(1), &null_header),
            INVALID_RECORD,
            Some(0),
        ),
        (
            "a control batch",
            seal(
                Head {
                    attributes: 0x20,
                    ..Head::plain(1)
                },
                &one,
            ),
            INVALID_RECORD,
            None,
        ),
        (
            "a transactional batch",
            seal(
                Head {
                    attributes: 0x10,
                    producer_id: 7,
                    producer_epoch: 0,
                    base_sequence: 0,
                    ..Head::plain(1)
                },
                &one,
            ),
            INVALID_TXN_STATE,
            None,
        ),
        (
            "an unknown codec",
            seal(
                Head {
                    attributes: 5,
                    ..Head::plain(1)
                },
                &one,
            ),
            UNSUPPORTED_COMPRESSION_TYPE,
            None,
        ),
        (
            "LogAppendTime set by the producer",
            seal(
                Head {
                    attributes: 0x08,
                    ..Head::plain(1)
                },
                &one,
            ),
            INVALID_TIMESTAMP,
            None,
        ),
        (
            "a timestamp two hours ahead",
            seal(future, &one),
            INVALID_TIMESTAMP,
            Some(0),
        ),
        (
            "a producer id with epoch -1",
            seal(
                Head {
                    producer_id: 7,
                    producer_epoch: -1,
                    base_sequence: 0,
                    ..Head::plain(1)
                },
                &one,
            ),
            INVALID_RECORD,
            None,
        ),
        (
            "a producer id with sequence -1",
            seal(
                Head {
                    producer_id: 7,
                    producer_epoch: 0,
                    base_sequence: -1,
                    ..Head::plain(1)
                },
                &one,
            ),
            INVALID_RECORD,
            None,
        ),
    ];
    let mut good_stored = 0;
    for (what, bad, expected, index) in cases {
        let (p0, p1) = produce_pair(&mut conn, produce, "hostile", bad);
        assert_eq!(p0.error_code, expected, "{what}: {p0:?}");
        assert_eq!(p0.base_offset, -1, "{what}");
        assert!(
            p0.error_message.as_ref().is_some_and(|m| !m.is_empty()),
            "{what}: the reason is in error_message"
        );
        match index {
            Some(i) => {
                assert_eq!(p0.record_errors.len(), 1, "{what}: {p0:?}");
                assert_eq!(p0.record_errors[0].batch_index, i, "{what}");
            }
            None => assert!(p0.record_errors.is_empty(), "{what}: {p0:?}"),
        }
        assert_eq!(p1.error_code, code::NONE, "{what}: the other partition");
        assert_eq!(p1.base_offset, good_stored * 3, "{what}");
        good_stored += 1;
        assert_eq!(
            conn.list_offset(list, "hostile", 0, -1),
            (code::NONE, 2),
            "{what}: nothing of it was stored"
        );
    }

    // zstd needs Produce v7 (KIP-110); the same batch at v9 is fine.
    let zstd = common::raw::encode_batch(
        &[common::raw::record(None, b"z", now_ms())],
        Compression::Zstd,
    );
    let (p0, _) = produce_pair(&mut conn, 5, "hostile", zstd.clone());
    assert_eq!(p0.error_code, UNSUPPORTED_COMPRESSION_TYPE);
    let (p0, _) = produce_pair(&mut conn, produce, "hostile", zstd);
    assert_eq!((p0.error_code, p0.base_offset), (code::NONE, 2));
    good_stored += 2;

    // The broker still answers by timestamp and fetch on both partitions.
    assert_eq!(
        conn.list_offset(list, "hostile", 0, first_ts),
        (code::NONE, 0)
    );
    assert_eq!(conn.list_offset(list, "hostile", 1, 0), (code::NONE, 0));
    assert_eq!(conn.fetch_all(fetch, "hostile", 0, 0).len(), 3);
    assert_eq!(
        conn.fetch_all(fetch, "hostile", 1, 0).len() as i64,
        good_stored * 3
    );
    broker.assert_running();
}

/// A compressed batch whose records section is one record holding
/// `value_len` zero bytes, streamed through `encoder` (never held whole).
fn bomb_section(value_len: usize, mut write: impl FnMut(&[u8])) {
    let mut prefix = vec![0u8]; // attributes
    put_varint(&mut prefix, 0);
    put_varint(&mut prefix, 0);
    put_varint(&mut prefix, -1);
    put_varint(&mut prefix, value_len as i64);
    let mut head = Vec::new();
    put_varint(&mut head, (prefix.len() + value_len + 1) as i64);
    head.extend_from_slice(&prefix);
    write(&head);
    let zeros = vec![0u8; 1 << 20];
    let mut left = value_len;
    while left > 0 {
        let n = left.min(zeros.len());
        write(&zeros[..n]);
        left -= n;
    }
    write(&[0]); // no headers
}

fn bombs(value_len: usize) -> Vec<(&'static str, i16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    bomb_section(value_len, |b| gz.write_all(b).unwrap());
    out.push(("gzip", 1, gz.finish().unwrap()));
    // xerial framing, as Kafka's Java client writes snappy.
    let mut snappy = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    let mut encoder = snap::raw::Encoder::new();
    bomb_section(value_len, |b| {
        for chunk in b.chunks(64 * 1024) {
            let block = encoder.compress_vec(chunk).unwrap();
            snappy.extend_from_slice(&(block.len() as u32).to_be_bytes());
            snappy.extend_from_slice(&block);
        }
    });
    out.push(("snappy", 2, snappy));
    let mut lz4 = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
    bomb_section(value_len, |b| lz4.write_all(b).unwrap());
    let (lz4, done) = lz4.finish();
    done.unwrap();
    out.push(("lz4", 3, lz4));
    let mut zstd = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    bomb_section(value_len, |b| zstd.write_all(b).unwrap());
    out.push(("zstd", 4, zstd.finish().unwrap()));
    out
}

#[test]
fn decompression_bombs_of_every_codec_are_refused() {
    let mut broker = Broker::start_with(
        // Room for the snappy bomb (snappy expands at most ~21 times).
        BrokerOptions::default().override_config("message.max.bytes", "33554432"),
    );
    broker.create_topic("bombs", 2, &[]);
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce = versions.pick(ApiKey::Produce, 9);
    let list = versions.pick(ApiKey::ListOffsets, 7);
    // Past the 256 MiB the broker inflates at most.
    let value_len = corelog::limits::RECORDS_DECOMPRESSED_BYTES_MAX + (1 << 20);
    for (codec, id, section) in bombs(value_len) {
        assert!(section.len() < 32 << 20, "{codec}: {} bytes", section.len());
        let bomb = seal(
            Head {
                attributes: id,
                ..Head::plain(1)
            },
            &section,
        );
        let (p0, p1) = produce_pair(&mut conn, produce, "bombs", bomb);
        assert_eq!(p0.error_code, code::MESSAGE_TOO_LARGE, "{codec}: {p0:?}");
        assert_eq!(p1.error_code, code::NONE, "{codec}");
        assert_eq!(
            conn.list_offset(list, "bombs", 0, -1),
            (code::NONE, 0),
            "{codec}"
        );
    }
    // A well-formed record of the same codecs still goes in.
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = common::raw::encode_batch(
            &[common::raw::record(Some(b"k"), b"fine", now_ms())],
            compression,
        );
        assert_eq!(conn.produce(produce, "bombs", 0, batch).0, code::NONE);
    }
    assert_eq!(conn.list_offset(list, "bombs", 0, -1), (code::NONE, 4));
    broker.assert_running();
}

#[test]
fn librdkafka_producer_batches_pass_validation() {
    // Real clients' batches of every codec, keys, headers and idempotence
    // pass the validator (no false refusals).
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
    use std::time::Duration;
    let broker = Broker::start();
    broker.create_topic("real", 1, &[("cleanup.policy", "compact")]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let producer: ThreadedProducer<DefaultProducerContext> = broker
            .producer_config()
            .set("compression.codec", codec)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        for i in 0..200 {
            let key = format!("key-{i}");
            let value = format!("value-{codec}-{i}");
            let headers = OwnedHeaders::new().insert(Header {
                key: "h",
                value: Some("x"),
            });
            producer
                .send(
                    BaseRecord::to("real")
                        .key(&key)
                        .payload(&value)
                        .headers(headers),
                )
                .map_err(|(e, _)| e)
                .expect("queue");
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).expect("flush");
    }
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let list = versions.pick(ApiKey::ListOffsets, 7);
    assert_eq!(conn.list_offset(list, "real", 0, -1), (code::NONE, 1000));
}
