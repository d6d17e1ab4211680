//! Topic configs that change what the broker stores: `cleanup.policy=compact`
//! (the log cleaner keeps the newest record per key, drops tombstones after
//! `delete.retention.ms`, refuses records without a key) and a named
//! `compression.type` (batches stored in that codec, read back byte-exact).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::raw::{batch_attributes, decode_records, encode_batch, record, Conn};
use common::{consume, flush, logged_producer, send_record, Broker, BrokerOptions};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::records::Compression;
use rdkafka::producer::{BaseRecord, Producer};

const KEYS: usize = 100;
const RECORDS: usize = 10_000;
const DEAD_KEYS: usize = 10;

fn key(k: usize) -> String {
    format!("key-{k:03}")
}

fn value(i: usize) -> String {
    format!("value-{i}-{}", "v".repeat(i % 50))
}

/// Every record from offset 0 to the high watermark. A cleaned log may
/// answer a fetch with only an empty batch (all its records compacted away,
/// kept so offsets stay put): the next fetch starts after its last offset,
/// as Kafka clients do.
fn fetch_everything(
    conn: &mut Conn,
    version: i16,
    topic: &str,
) -> Vec<kafka_protocol::records::Record> {
    let mut out = Vec::new();
    let mut next = 0i64;
    for _ in 0..100_000 {
        let response = conn.fetch(version, topic, 0, next, 0);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch at {next}");
        if next >= data.high_watermark {
            return out;
        }
        let bytes = data.records.clone().unwrap_or_default();
        let mut last = None;
        let mut pos = 0;
        while bytes.len() - pos >= 61 {
            let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
            let length = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
            let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap());
            if length <= 0 || pos + 12 + length as usize > bytes.len() {
                break;
            }
            last = Some(base + i64::from(delta));
            pos += 12 + length as usize;
        }
        let last = last.unwrap_or_else(|| panic!("fetch at {next} returned no whole batch"));
        out.extend(
            decode_records(bytes)
                .into_iter()
                .filter(|r| r.offset >= next),
        );
        next = last + 1;
    }
    panic!("never reached the high watermark");
}

#[test]
fn compaction_keeps_the_newest_value_of_each_live_key() {
    let broker = Broker::start_with(
        BrokerOptions::default().override_config("log.retention.check.interval.ms", "200"),
    );
    let topic = "compacted";
    broker.create_topic(
        topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "16384"),
            // Idle partitions roll, so the last records get cleaned too.
            ("segment.ms", "500"),
            ("delete.retention.ms", "0"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let produce_version = versions.pick(ApiKey::Produce, 9);
    let fetch_version = versions.pick(ApiKey::Fetch, 12).min(12);

    // Kafka refuses a record without a key on a compacted topic.
    let keyless = encode_batch(&[record(None, b"no key", 1)], Compression::None);
    let (code, _) = conn.produce(produce_version, topic, 0, keyless);
    assert_eq!(code, 87, "INVALID_RECORD for a null key");

    let producer = logged_producer(&broker.producer_config());
    for i in 0..RECORDS {
        let k = key(i % KEYS);
        let v = value(i);
        send_record(
            &producer,
            BaseRecord::with_opaque_to(topic, i).key(&k).payload(&v),
        );
    }
    for d in 0..DEAD_KEYS {
        let k = key(d);
        // A tombstone: a key and no value.
        let tombstone = BaseRecord::<str, (), usize>::with_opaque_to(topic, RECORDS + d);
        send_record(&producer, tombstone.key(k.as_str()));
    }
    flush(&producer, Duration::from_secs(60));
    assert_eq!(
        producer
            .context()
            .failed
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "every record was delivered"
    );
    let end = RECORDS + DEAD_KEYS;

    let expected: BTreeMap<String, String> = (DEAD_KEYS..KEYS)
        .map(|k| (key(k), value(RECORDS - KEYS + k)))
        .collect();

    // Poll (bounded) until the cleaner has rewritten everything.
    let deadline = Instant::now() + Duration::from_secs(90);
    let records = loop {
        let records = fetch_everything(&mut conn, fetch_version, topic);
        if records.len() == expected.len() || Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        records.len(),
        expected.len(),
        "after cleaning, one record per live key"
    );
    for pair in records.windows(2) {
        assert!(pair[0].offset < pair[1].offset, "offsets increase");
    }
    let mut got = BTreeMap::new();
    for r in &records {
        let k = String::from_utf8(r.key.clone().expect("keys kept").to_vec()).unwrap();
        let v = String::from_utf8(r.value.clone().expect("live values").to_vec()).unwrap();
        assert!(r.offset < end as i64);
        assert!(got.insert(k, v).is_none(), "each key once");
    }
    assert_eq!(got, expected);
    // Offsets did not move: the newest record of key k was the (9900 + k)th.
    for r in &records {
        let k: usize = std::str::from_utf8(&r.key.as_ref().unwrap()[4..])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(r.offset, (RECORDS - KEYS + k) as i64);
    }

    // librdkafka reads the cleaned log (gaps, rewritten batches) the same.
    let consumed = consume(&broker, topic, 1, expected.len(), Duration::from_secs(30));
    let consumed: BTreeMap<String, String> = consumed
        .iter()
        .map(|m| {
            (
                String::from_utf8(m.key.clone().unwrap()).unwrap(),
                String::from_utf8(m.value.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(consumed, expected);
    let (_, earliest) = conn.list_offset(versions.pick(ApiKey::ListOffsets, 5), topic, 0, -2);
    assert_eq!(earliest, 0, "compaction never moves the log start");
}

#[test]
fn compression_type_zstd_stores_zstd_and_reads_back_byte_exact() {
    let broker = Broker::start();
    let topic = "zstd-stored";
    broker.create_topic(topic, 1, &[("compression.type", "zstd")]);
    let mut config = broker.producer_config();
    config.set("compression.type", "none");
    let producer = logged_producer(&config);
    let payload = |i: usize| -> Vec<u8> {
        let mut v = format!("payload {i} ").repeat(1 + i % 9).into_bytes();
        v.extend((0..i % 31).map(|j| (i * 31 + j) as u8));
        v
    };
    const N: usize = 2_000;
    for i in 0..N {
        let k = format!("k{i}");
        let p = payload(i);
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "h",
            value: Some(&k),
        });
        send_record(
            &producer,
            BaseRecord::with_opaque_to(topic, i)
                .key(&k)
                .payload(&p)
                .headers(headers)
                .timestamp(1_700_000_000_000 + i as i64),
        );
    }
    flush(&producer, Duration::from_secs(60));

    let mut conn = Conn::connect(broker.addr());
    let fetch_version = conn.api_versions().pick(ApiKey::Fetch, 12).min(12);
    let response = conn.fetch(fetch_version, topic, 0, 0, 0);
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    let batches = batch_attributes(&data.records.clone().unwrap_or_default());
    assert!(!batches.is_empty());
    for (attributes, base) in batches {
        assert_eq!(attributes & 0x7, 4, "batch at {base} is stored zstd");
    }

    let consumed = consume(&broker, topic, 1, N, Duration::from_secs(60));
    assert_eq!(consumed.len(), N);
    for (i, m) in consumed.iter().enumerate() {
        assert_eq!(m.offset, i as i64);
        assert_eq!(m.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(m.value.as_deref(), Some(&payload(i)[..]));
        assert_eq!(m.timestamp, Some(1_700_000_000_000 + i as i64));
        assert_eq!(
            m.headers,
            vec![("h".to_string(), Some(format!("k{i}").into_bytes()))]
        );
    }
}
