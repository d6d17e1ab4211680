//! Every compression codec round-trips byte-exact through the broker, and the
//! broker stores (and serves) the batches compressed as they came.

mod common;

use std::time::Duration;

use common::raw::{batch_attributes, Conn};
use common::{consume, flush, logged_producer, send_record, Broker};
use kafka_protocol::messages::ApiKey;
use rdkafka::producer::{BaseRecord, Producer};

const MESSAGES: usize = 3_000;
const PARTITIONS: i32 = 2;

/// (librdkafka `compression.type`, Kafka attribute codec id)
const CODECS: [(&str, i16); 5] = [
    ("none", 0),
    ("gzip", 1),
    ("snappy", 2),
    ("lz4", 3),
    ("zstd", 4),
];

fn value(codec: &str, i: usize) -> Vec<u8> {
    // Compressible text with a varying tail, so every codec has work to do.
    let mut v = format!("{codec} message {i} ")
        .repeat(1 + i % 7)
        .into_bytes();
    v.extend((0..i % 50).map(|j| (i * 13 + j) as u8));
    v
}

#[test]
fn every_codec_round_trips() {
    let mut broker = Broker::start();
    let mut conn = Conn::connect(broker.addr());
    let versions = conn.api_versions();
    let fetch_version = versions.pick(ApiKey::Fetch, 12).min(12);

    for (codec, codec_id) in CODECS {
        let topic = format!("compression-{codec}");
        broker.create_topic(&topic, PARTITIONS, &[]);

        let mut config = broker.producer_config();
        config.set("compression.type", codec);
        let producer = logged_producer(&config);
        for i in 0..MESSAGES {
            let key = format!("k{i}");
            let payload = value(codec, i);
            let record = BaseRecord::with_opaque_to(&topic, i)
                .partition((i % PARTITIONS as usize) as i32)
                .key(&key)
                .payload(&payload)
                .timestamp(1_600_000_000_000 + i as i64);
            send_record(&producer, record);
        }
        flush(&producer, Duration::from_secs(60));
        let failed = producer
            .context()
            .results
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.is_err())
            .count();
        assert_eq!(failed, 0, "{codec}: undelivered messages");

        let consumed = consume(
            &broker,
            &topic,
            PARTITIONS,
            MESSAGES,
            Duration::from_secs(60),
        );
        assert_eq!(consumed.len(), MESSAGES, "{codec}: messages consumed");
        let mut next = [0usize; PARTITIONS as usize];
        for message in &consumed {
            let p = message.partition as usize;
            // Partition p holds messages p, p + 2, p + 4, ... in order.
            let i = next[p] * PARTITIONS as usize + p;
            next[p] += 1;
            assert_eq!(
                message.key.as_deref(),
                Some(format!("k{i}").as_bytes()),
                "{codec}: key of message {i}"
            );
            assert_eq!(
                message.value.as_deref(),
                Some(&value(codec, i)[..]),
                "{codec}: value of message {i}"
            );
            assert_eq!(
                message.timestamp,
                Some(1_600_000_000_000 + i as i64),
                "{codec}: timestamp of message {i}"
            );
        }

        // Stored as produced: the fetched batches carry the codec. librdkafka
        // sends a batch uncompressed when compressing would make it larger
        // (a small tail batch), so codec 0 is allowed beside the codec, but
        // most batches must carry it.
        let response = conn.fetch(fetch_version, &topic, 0, 0, 0);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "{codec}: fetch error");
        let records = data.records.clone().unwrap_or_default();
        let batches = batch_attributes(&records);
        assert!(!batches.is_empty(), "{codec}: fetch returned no batches");
        let mut with_codec = 0;
        for &(attributes, base_offset) in &batches {
            let stored = attributes & 0x7;
            assert!(
                stored == codec_id || stored == 0,
                "{codec}: batch at {base_offset} has attributes {attributes:#x}"
            );
            with_codec += usize::from(stored == codec_id);
        }
        assert!(
            with_codec * 2 >= batches.len(),
            "{codec}: only {with_codec} of {} batches are stored with the codec: {batches:?}",
            batches.len()
        );
        broker.assert_running();
    }
}
