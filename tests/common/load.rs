//! A steady acks=all load on a cluster and the checks around it: every
//! acknowledged message is read back once (the replication and upgrade
//! tests).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::cluster::{create_topic, eventually, Cluster};

/// Delivery reports with the time each arrived: (partition, seq) -> outcome.
#[derive(Default)]
pub struct Reports {
    pub acked: Mutex<Vec<(i32, u64, Instant)>>,
    pub failed: Mutex<Vec<(i32, u64, String)>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<(i32, u64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Box<(i32, u64)>) {
        let (partition, seq) = *id;
        match result {
            Ok(_) => self
                .acked
                .lock()
                .unwrap()
                .push((partition, seq, Instant::now())),
            Err((e, _)) => self
                .failed
                .lock()
                .unwrap()
                .push((partition, seq, e.to_string())),
        }
    }
}

pub fn durable_producer(bootstrap: &str) -> ThreadedProducer<Reports> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        // Retry through failovers instead of giving up.
        .set("message.timeout.ms", "120000")
        .set("request.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create_with_context(Reports::default())
        .expect("producer")
}

/// Sends message `n` of a numbered stream: round robin over `partitions`,
/// payload and opaque `partition:seq`; waits while the producer's queue is
/// full.
pub fn send_numbered(producer: &ThreadedProducer<Reports>, topic: &str, partitions: i32, n: u64) {
    let partition = (n % partitions as u64) as i32;
    let seq = n / partitions as u64;
    let payload = format!("{partition}:{seq}");
    let mut record = BaseRecord::<(), String, _>::with_opaque_to(topic, Box::new((partition, seq)))
        .partition(partition)
        .payload(&payload);
    while let Err((_, back)) = producer.send(record) {
        record = back;
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for every delivery report and asserts none failed.
pub fn flush_without_failures(producer: &ThreadedProducer<Reports>, timeout: Duration) {
    producer.flush(timeout).expect("every message acknowledged");
    let failed = producer.context().failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "failed deliveries: {:?}",
        &failed[..failed.len().min(5)]
    );
}

/// Every ISR on every running node lists all `replicas`.
pub fn fully_in_sync(cluster: &Cluster, topic: &str, replicas: usize) -> bool {
    (0..cluster.nodes.len())
        .filter(|i| cluster.is_running(*i))
        .all(|i| {
            let parts = cluster.partitions(i, topic);
            !parts.is_empty()
                && parts
                    .iter()
                    .all(|p| p.isr.len() == replicas && p.leader > 0)
        })
}

/// Reads every partition of `topic` from the start through a bootstrap
/// list until `expected` messages or the deadline.
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(i32, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "replication-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
            out.push((m.partition(), value));
        }
    }
    // Anything beyond `expected` would be a duplicate: give it a moment.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
            out.push((m.partition(), value));
        }
    }
    out
}

/// About 1,000 numbered messages a second (see [`send_numbered`]) from a
/// thread, until stopped.
pub struct SteadyLoad {
    pub producer: Arc<ThreadedProducer<Reports>>,
    sending: Arc<AtomicBool>,
    sender: thread::JoinHandle<u64>,
}

impl SteadyLoad {
    pub fn start(bootstrap: &str, topic: &'static str, partitions: i32) -> SteadyLoad {
        let producer = Arc::new(durable_producer(bootstrap));
        let sending = Arc::new(AtomicBool::new(true));
        let sender = {
            let (producer, sending) = (producer.clone(), sending.clone());
            thread::spawn(move || {
                let start = Instant::now();
                let mut n: u64 = 0;
                while sending.load(Ordering::SeqCst) {
                    send_numbered(&producer, topic, partitions, n);
                    n += 1;
                    let due = start + Duration::from_millis(n);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
                n
            })
        };
        SteadyLoad {
            producer,
            sending,
            sender,
        }
    }

    /// Stops sending: how many messages were sent.
    pub fn stop(self) -> (Arc<ThreadedProducer<Reports>>, u64) {
        self.sending.store(false, Ordering::SeqCst);
        let total = self.sender.join().expect("the sending thread");
        (self.producer, total)
    }
}

/// Creates `topic` with replication factor 3 and min.insync.replicas 2 (an
/// acks=all write needs two copies) and waits until every replica is in
/// every ISR.
pub fn create_durable_topic(cluster: &Cluster, topic: &str, partitions: i32) {
    create_topic(
        &cluster.bootstrap(0),
        topic,
        partitions,
        3,
        &[("min.insync.replicas", "2")],
    )
    .unwrap_or_else(|e| panic!("create {topic}: {e}"));
    eventually(
        &format!("every replica of {topic} in sync"),
        Duration::from_secs(60),
        || fully_in_sync(cluster, topic, 3),
    );
}
