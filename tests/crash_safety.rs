//! An idempotent acks=all producer writes continuously while the broker is
//! killed with SIGKILL and restarted on the same port and data dir. Every
//! message the producer saw acknowledged is afterwards present exactly once,
//! at the offset it was acknowledged with, in order per partition.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{consume, logged_producer, Broker, BrokerOptions, LoggedProducer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};

const TOPIC: &str = "crash-safety";
const PARTITIONS: i32 = 4;
/// Upper bound on messages, so a fast machine does not write forever.
const MESSAGES_MAX: usize = 400_000;
/// Acknowledged messages to see before the kill, and again after the restart.
const ACKED_PER_PHASE: usize = 5_000;

fn value(seq: usize) -> Vec<u8> {
    format!("seq={seq:010};").repeat(4).into_bytes()
}

fn seq_of(value: &[u8]) -> usize {
    let text = std::str::from_utf8(value).expect("utf-8 value");
    text["seq=".len().."seq=".len() + 10]
        .parse()
        .expect("sequence number")
}

/// Produces `seq` 0, 1, 2, ... (partition `seq % PARTITIONS`) at a bounded
/// rate until told to stop; returns how many it enqueued.
fn produce_until(producer: &LoggedProducer, stop: &AtomicBool, sent: &AtomicUsize) -> usize {
    let mut seq = 0;
    while !stop.load(Ordering::SeqCst) && seq < MESSAGES_MAX {
        // About 200 messages every 5 ms: steady, and far below what a
        // healthy broker takes, so the interesting part is the crash.
        for _ in 0..200 {
            let payload = value(seq);
            let key = format!("{}", seq % 97);
            let record = BaseRecord::with_opaque_to(TOPIC, seq)
                .partition((seq % PARTITIONS as usize) as i32)
                .key(&key)
                .payload(&payload);
            match producer.send(record) {
                Ok(()) => seq += 1,
                // Queue full while the broker is down: wait and try again.
                Err(_) => break,
            }
            sent.store(seq, Ordering::SeqCst);
        }
        producer.poll(Duration::from_millis(5));
    }
    seq
}

fn wait_for_acks(producer_acked: &AtomicUsize, target: usize, what: &str, broker: &Broker) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while producer_acked.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "{what}: only {} of {target} acknowledged after 60 s; broker output:\n{}",
            producer_acked.load(Ordering::SeqCst),
            broker.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let mut broker = Broker::start_with(BrokerOptions::default().shards(2));
    broker.create_topic(TOPIC, PARTITIONS, &[]);

    let mut config = broker.producer_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "60000")
        .set("retry.backoff.ms", "100")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("queue.buffering.max.messages", "50000");
    let producer = Arc::new(logged_producer(&config));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));

    let writer = {
        let (producer, stop, sent) = (producer.clone(), stop.clone(), sent.clone());
        thread::spawn(move || produce_until(&producer, &stop, &sent))
    };
    let acked_counter: &AtomicUsize = &producer.context().acked;

    wait_for_acks(acked_counter, ACKED_PER_PHASE, "before the kill", &broker);
    broker.kill9();
    let sent_at_kill = sent.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(300));
    broker.restart();
    let sent_at_restart = sent.load(Ordering::SeqCst);
    let acked_at_restart = acked_counter.load(Ordering::SeqCst);
    wait_for_acks(
        acked_counter,
        acked_at_restart + ACKED_PER_PHASE,
        "after the restart",
        &broker,
    );
    stop.store(true, Ordering::SeqCst);
    let total = writer.join().expect("producer thread");
    if let Err(err) = producer.flush(Duration::from_secs(90)) {
        panic!(
            "flush after restart: {err}; {} in flight; broker output:\n{}",
            producer.in_flight_count(),
            broker.stderr()
        );
    }

    let results = producer.context().results.lock().unwrap().clone();
    assert_eq!(results.len(), total, "every message has a delivery report");
    let acked: HashMap<usize, (i32, i64)> = results
        .iter()
        .filter_map(|(seq, r)| r.as_ref().ok().map(|&po| (*seq, po)))
        .collect();
    let failed: Vec<(&usize, &String)> = results
        .iter()
        .filter_map(|(seq, r)| r.as_ref().err().map(|e| (seq, e)))
        .collect();
    eprintln!(
        "sent {total}, acknowledged {}, failed {}, sent at kill {sent_at_kill}, at restart {sent_at_restart}",
        acked.len(),
        failed.len()
    );
    if let Some((seq, err)) = failed.first() {
        eprintln!("first failure: message {seq}: {err}");
    }
    assert!(
        acked.keys().any(|&seq| seq >= sent_at_restart),
        "no message enqueued after the restart was acknowledged"
    );

    // Read everything up to each partition's end.
    let consumer: BaseConsumer = broker.consumer_config().create().expect("consumer");
    let mut end_total = 0usize;
    for partition in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(low, 0, "partition {partition}: log start");
        end_total += high as usize;
    }
    drop(consumer);
    let consumed = consume(
        &broker,
        TOPIC,
        PARTITIONS,
        end_total,
        Duration::from_secs(90),
    );
    assert_eq!(consumed.len(), end_total, "read up to the high watermarks");

    let mut last_seq: HashMap<i32, usize> = HashMap::new();
    let mut found: HashMap<usize, (i32, i64)> = HashMap::new();
    for message in &consumed {
        let seq = seq_of(message.value.as_deref().expect("value"));
        assert_eq!(
            message.value.as_deref(),
            Some(&value(seq)[..]),
            "message {seq} bytes"
        );
        assert_eq!(
            seq % PARTITIONS as usize,
            message.partition as usize,
            "message {seq} in the wrong partition"
        );
        if let Some(&previous) = last_seq.get(&message.partition) {
            assert!(
                seq > previous,
                "partition {}: message {seq} at offset {} after message {previous} (duplicate or reordered)",
                message.partition,
                message.offset
            );
        }
        last_seq.insert(message.partition, seq);
        found.insert(seq, (message.partition, message.offset));
    }
    let mut missing: Vec<usize> = acked
        .keys()
        .filter(|seq| !found.contains_key(seq))
        .copied()
        .collect();
    missing.sort_unstable();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    for (seq, position) in &acked {
        assert_eq!(
            found[seq], *position,
            "message {seq}: acknowledged at (partition, offset) {position:?}, stored at {:?}",
            found[seq]
        );
    }
    broker.assert_running();
}
