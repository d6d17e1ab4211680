//! A broker on a fresh data directory reads back what it wrote through the
//! DMA path (the guard for the first-DMA-file probe, docs/architecture.md section 8: an empty first file breaks
//! every DMA read), and a restart, graceful or SIGKILL, keeps topics (name,
//! partition count, topic id) and data.

mod common;

use std::time::Duration;

use common::raw::Conn;
use common::{consume, flush, logged_producer, send_record, Broker, BrokerOptions};
use kafka_protocol::messages::{ApiKey, MetadataResponse};
use rdkafka::producer::{BaseRecord, Producer};

const TOPIC: &str = "fresh";
const PARTITIONS: i32 = 3;

fn value(i: usize) -> Vec<u8> {
    format!("fresh value {i} ").repeat(1 + i % 5).into_bytes()
}

fn produce_range(broker: &Broker, topic: &str, range: std::ops::Range<usize>) {
    let producer = logged_producer(&broker.producer_config());
    for i in range.clone() {
        let payload = value(i);
        let key = format!("key{i}");
        send_record(
            &producer,
            BaseRecord::with_opaque_to(topic, i)
                .partition((i % PARTITIONS as usize) as i32)
                .key(&key)
                .payload(&payload),
        );
    }
    flush(&producer, Duration::from_secs(30));
    let results = producer.context().results.lock().unwrap().clone();
    for i in range {
        if let Some(Err(err)) = results.get(&i) {
            panic!("message {i} not delivered: {err}");
        }
    }
}

/// Consumes `count` messages and checks each partition holds its messages
/// in order.
fn assert_messages(broker: &Broker, count: usize) {
    let consumed = consume(broker, TOPIC, PARTITIONS, count, Duration::from_secs(30));
    assert_eq!(consumed.len(), count, "messages read back");
    let mut next = [0usize; PARTITIONS as usize];
    for message in consumed {
        let p = message.partition as usize;
        let i = next[p] * PARTITIONS as usize + p;
        assert_eq!(message.offset, next[p] as i64, "offset in partition {p}");
        next[p] += 1;
        assert_eq!(message.value.as_deref(), Some(&value(i)[..]), "message {i}");
        assert_eq!(message.key.as_deref(), Some(format!("key{i}").as_bytes()));
    }
}

/// (partition count, topic id) from Metadata v12.
fn describe(broker: &Broker) -> (usize, uuid::Uuid) {
    let mut conn = Conn::connect(broker.addr());
    let (_, max) = conn.api_versions().range(ApiKey::Metadata);
    assert!(
        max >= 12,
        "Metadata v12 (topic ids) is not advertised (max v{max})"
    );
    let metadata: MetadataResponse = conn.metadata(12, &[TOPIC]);
    assert_eq!(metadata.topics.len(), 1);
    let topic = &metadata.topics[0];
    assert_eq!(topic.error_code, 0, "metadata error for {TOPIC}");
    assert!(!topic.topic_id.is_nil(), "topic id is nil");
    let broker_port = i32::from(broker.port);
    assert!(
        metadata.brokers.iter().any(|b| b.port == broker_port),
        "metadata does not list the broker's own port {broker_port}: {:?}",
        metadata.brokers
    );
    (topic.partitions.len(), topic.topic_id)
}

#[test]
fn fresh_dir_reads_back_and_restarts_keep_topics_and_data() {
    // The harness hands the broker a new, empty data dir.
    let mut broker = Broker::start();
    broker.create_topic(TOPIC, PARTITIONS, &[]);
    produce_range(&broker, TOPIC, 0..300);
    assert_messages(&broker, 300);
    let (partitions, topic_id) = describe(&broker);
    assert_eq!(partitions, PARTITIONS as usize);

    broker.graceful_restart();
    assert_eq!(
        describe(&broker),
        (partitions, topic_id),
        "after SIGTERM and restart"
    );
    assert_messages(&broker, 300);
    produce_range(&broker, TOPIC, 300..330);
    assert_messages(&broker, 330);

    broker.restart(); // SIGKILL
    assert_eq!(
        describe(&broker),
        (partitions, topic_id),
        "after SIGKILL and restart"
    );
    assert_messages(&broker, 330);
}

#[test]
fn missing_data_dir_is_created_and_topics_auto_created() {
    let broker = Broker::start_with(BrokerOptions::default().create_data_dir(false));
    assert!(
        broker.data_dir().is_dir(),
        "the broker did not create its data dir"
    );
    // No CreateTopics: the producer's Metadata request creates it.
    let producer = logged_producer(&broker.producer_config());
    for i in 0..10usize {
        let payload = value(i);
        send_record(
            &producer,
            BaseRecord::<(), _, usize>::with_opaque_to("auto-created", i).payload(&payload),
        );
    }
    flush(&producer, Duration::from_secs(30));
    assert_eq!(
        producer
            .context()
            .acked
            .load(std::sync::atomic::Ordering::SeqCst),
        10,
        "delivered to an auto-created topic: {:?}",
        producer.context().results.lock().unwrap()
    );
    let consumed = consume(&broker, "auto-created", 1, 10, Duration::from_secs(30));
    let values: Vec<Vec<u8>> = consumed.into_iter().filter_map(|m| m.value).collect();
    let expected: Vec<Vec<u8>> = (0..10).map(value).collect();
    assert_eq!(values, expected);
}
