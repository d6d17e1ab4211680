//! The load generator: librdkafka producers and consumers driven by a
//! [`Workload`], measuring throughput, produce-ack latency and end-to-end
//! latency into hdrhistograms.
//!
//! Threads: one sender thread per producer (plus librdkafka's own threads and
//! the `ThreadedProducer` poll thread that runs delivery callbacks), one
//! thread per consumer, and the caller's thread, which prints a progress line
//! each second and decides when the run ends. Every loop has a deadline.
//!
//! Measurement: time runs from one `Instant` (`t0`). A message's send time is
//! when `send` was called, as kafka-producer-perf-test measures. At a fixed
//! rate, sends are scheduled, and how late each one went out against its
//! schedule is recorded as `send_lag` (a stalled broker fills librdkafka's
//! queue, sends block, and the lag shows it: the generator's own health and a
//! guard against coordinated omission). Produce-ack latency = delivery callback time − send time.
//! End-to-end latency = consumer receive time − send time, where the send time
//! travels in the payload's first 8 bytes as ns since the Unix epoch (producer
//! and consumer share this machine's clock). Only messages sent inside the
//! measurement window (after warm-up) are counted in rates and histograms;
//! totals count everything, so they can be checked against what was consumed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::cpu::{rss_bytes, CpuSample};
use super::report::{
    CatchUpReport, ConsumeReport, CpuReport, Percentiles, ProduceReport, RunReport,
};
use super::workload::{parse_kv, ConsumerStart, Keys, Mode, Workload, PAYLOAD_HEADER_BYTES};

/// Latencies are recorded in microseconds, 1 us .. 10 min, 3 significant digits.
const LATENCY_US_MAX: u64 = 600_000_000;
/// librdkafka's local queue bound per producer: bounds the generator's memory.
const PRODUCER_QUEUE_KBYTES: u64 = 64 * 1024;
const PRODUCER_QUEUE_MESSAGES: u64 = 200_000;
/// How long topic creation and metadata propagation may take.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How the topic for a run is created.
pub enum TopicSetup<'a> {
    /// CreateTopics through the Kafka admin API (real brokers).
    Admin,
    /// An existing topic: consumers starting at the tail use its watermarks.
    Existing(String),
    /// librdkafka's mock cluster: create it through the mock API.
    Mock(&'a rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
}

/// Everything `run` needs besides the workload.
pub struct RunOptions<'a> {
    pub bootstrap: String,
    /// Label of the broker in the report.
    pub broker: String,
    pub topic: TopicSetup<'a>,
    /// Print a progress line each second on stderr.
    pub progress: bool,
    /// Broker process to sample CPU and RSS from (None: in-process or unknown).
    pub broker_pid: Option<u32>,
}

/// Counters shared by all threads of a run.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    acked: AtomicU64,
    acked_bytes: AtomicU64,
    failed: AtomicU64,
    window_acked: AtomicU64,
    window_acked_bytes: AtomicU64,
    consumed: AtomicU64,
    consumed_bytes: AtomicU64,
    consume_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn note_error(&self, e: impl ToString) {
        let mut slot = self.last_error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e.to_string());
        }
    }
}

/// Clock of a run: `t0` and the measurement window in ns since `t0`.
#[derive(Clone, Copy)]
struct Clock {
    t0: Instant,
    t0_epoch_ns: u64,
    window_from_ns: u64,
    window_to_ns: u64,
}

impl Clock {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
    fn in_window(&self, ns: u64) -> bool {
        ns >= self.window_from_ns && ns < self.window_to_ns
    }
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// Delivery callbacks run on the producer's poll thread.
struct DeliveryContext {
    clock: Clock,
    shared: Arc<Shared>,
    hist: Mutex<Histogram<u64>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = self.clock.now_ns();
        match result {
            Ok(m) => {
                let bytes = (m.payload_len() + m.key_len()) as u64;
                self.shared.acked.fetch_add(1, Ordering::Relaxed);
                self.shared.acked_bytes.fetch_add(bytes, Ordering::Relaxed);
                let sent_ns = sent_ns as u64;
                if self.clock.in_window(sent_ns) {
                    self.shared.window_acked.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .window_acked_bytes
                        .fetch_add(bytes, Ordering::Relaxed);
                    let us = now.saturating_sub(sent_ns) / 1000;
                    self.hist
                        .lock()
                        .unwrap()
                        .saturating_record(us.clamp(1, LATENCY_US_MAX));
                }
            }
            Err((e, _)) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                self.shared.note_error(format!("delivery: {e}"));
            }
        }
    }
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        .set_log_level(RDKafkaLogLevel::Error);
    c
}

fn producer_config(w: &Workload, bootstrap: &str) -> Result<ClientConfig> {
    let mut c = base_config(bootstrap);
    c.set("acks", &w.acks)
        .set("compression.type", &w.compression)
        .set("linger.ms", w.linger_ms.to_string())
        .set("batch.size", w.batch_bytes.to_string())
        .set("message.timeout.ms", "60000")
        .set("enable.idempotence", "false")
        .set(
            "queue.buffering.max.kbytes",
            PRODUCER_QUEUE_KBYTES.to_string(),
        )
        .set(
            "queue.buffering.max.messages",
            PRODUCER_QUEUE_MESSAGES.to_string(),
        );
    for kv in &w.producer_config {
        let (k, v) = parse_kv(kv)?;
        c.set(k, v);
    }
    Ok(c)
}

fn consumer_config(w: &Workload, bootstrap: &str) -> Result<ClientConfig> {
    let mut c = base_config(bootstrap);
    // librdkafka's assign() needs a group.id even though no group is joined
    // and nothing is committed (consumers measure fetching, not group
    // coordination, and work the same against every broker).
    c.set("group.id", format!("bench-{}", unix_ns()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        // Bounds what each consumer buffers ahead of the application.
        .set("queued.max.messages.kbytes", "65536")
        // When the application falls behind a fast broker, the local queue
        // passes queued.min.messages (or the kbytes bound) and librdkafka
        // stops fetching for fetch.queue.backoff.ms, 1 s by default
        // (librdkafka issue #2879): the consumer then idles most of each
        // second and the figure measures that pause, not the broker (100 B
        // from memory: 33 MB/s at 1000 ms, 92 MB/s at 10 ms, same broker).
        // The same short pause for every broker.
        .set("fetch.queue.backoff.ms", "10");
    for kv in &w.consumer_config {
        let (k, v) = parse_kv(kv)?;
        c.set(k, v);
    }
    Ok(c)
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Creates the run's topic and waits until metadata shows all its partitions.
fn setup_topic(w: &Workload, opts: &RunOptions) -> Result<String> {
    let name = match &opts.topic {
        TopicSetup::Existing(t) => return Ok(t.clone()),
        _ => format!(
            "bench-{}-{}",
            w.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            unix_ns() / 1_000_000
        ),
    };
    match &opts.topic {
        TopicSetup::Mock(mock) => mock
            .create_topic(&name, w.partitions, 1)
            .map_err(|e| anyhow!("mock create_topic: {e}"))?,
        _ => {
            let admin: AdminClient<DefaultClientContext> = base_config(&opts.bootstrap)
                .create()
                .context("admin client")?;
            let topic = NewTopic::new(
                &name,
                w.partitions,
                TopicReplication::Fixed(w.replication_factor),
            );
            let options = AdminOptions::new().operation_timeout(Some(TOPIC_READY_TIMEOUT));
            let results = futures::executor::block_on(admin.create_topics([&topic], &options))
                .context("CreateTopics")?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => bail!("CreateTopics {t}: {code}"),
                }
            }
        }
    }
    wait_topic_ready(&opts.bootstrap, &name, w.partitions)?;
    Ok(name)
}

fn wait_topic_ready(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let consumer: BaseConsumer = base_config(bootstrap).create()?;
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                let leaders = t.partitions().iter().filter(|p| p.leader() >= 0).count();
                if t.error().is_none() && leaders == partitions as usize {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("topic {topic} not ready with {partitions} partitions after {TOPIC_READY_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Start offsets for consumers: a fresh topic starts at 0 either way; an
/// existing one is asked for its watermarks.
fn start_offsets(
    w: &Workload,
    opts: &RunOptions,
    topic: &str,
    start: &ConsumerStart,
) -> Result<Vec<Offset>> {
    let existing = matches!(opts.topic, TopicSetup::Existing(_));
    if !existing || *start == ConsumerStart::Beginning {
        return Ok(vec![Offset::Beginning; w.partitions as usize]);
    }
    // The consumers' extra properties (security.protocol...) reach the
    // broker the same way.
    let mut config = base_config(&opts.bootstrap);
    for kv in &w.consumer_config {
        let (k, v) = parse_kv(kv)?;
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create()?;
    (0..w.partitions)
        .map(|p| {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            Ok(Offset::Offset(high))
        })
        .collect()
}

/// One producer's sending loop; returns its ack-latency histogram and, at a
/// fixed rate, how late each send was against its schedule.
#[allow(clippy::too_many_arguments)]
fn produce_loop(
    index: usize,
    w: Workload,
    bootstrap: String,
    topic: String,
    clock: Clock,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    bytes_budget: Option<u64>,
    end_ns: u64,
) -> Result<(Histogram<u64>, Histogram<u64>)> {
    let context = DeliveryContext {
        clock,
        shared: shared.clone(),
        hist: Mutex::new(new_hist()),
    };
    let producer: ThreadedProducer<DeliveryContext> = producer_config(&w, &bootstrap)?
        .create_with_context(context)
        .context("create producer")?;
    let mut payload = fill_payload(w.message_bytes, index as u64);
    let rate = w.rate as f64 / w.producers as f64;
    let interval_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
    // Stagger producers so fixed-rate sends do not all fall on one instant.
    let first_ns = clock.now_ns() + (interval_ns * index as f64 / w.producers as f64) as u64;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1));
    let per_message = w.record_bytes() as u64;
    let mut sent: u64 = 0;
    let mut lag = new_hist();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(budget) = bytes_budget {
            if sent * per_message * w.producers as u64 >= budget {
                break;
            }
        }
        let now = clock.now_ns();
        if now >= end_ns {
            break;
        }
        if interval_ns > 0.0 {
            let due = first_ns + (sent as f64 * interval_ns) as u64;
            if due > now {
                thread::sleep(Duration::from_nanos((due - now).min(10_000_000)));
                continue;
            }
            if clock.in_window(due) {
                lag.saturating_record(((now - due) / 1000).clamp(1, LATENCY_US_MAX));
            }
        }
        let send_ns = now;
        payload[0..8].copy_from_slice(&(clock.t0_epoch_ns + send_ns).to_le_bytes());
        payload[8..16].copy_from_slice(&((index as u64) << 48 | sent).to_le_bytes());
        let key: Option<[u8; 8]> = match w.keys {
            Keys::None => None,
            Keys::Fixed => Some(*b"fixedkey"),
            Keys::Uniform => Some((rng.next() % w.key_space).to_be_bytes()),
        };
        let mut record = BaseRecord::with_opaque_to(&topic, send_ns as usize).payload(&payload[..]);
        if let Some(k) = key.as_ref() {
            record = record.key(&k[..]);
        }
        match producer.send(record) {
            Ok(()) => {
                sent += 1;
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format!("send: {e}"));
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let drain = Duration::from_secs_f64(w.drain_s.max(1.0));
    if let Err(e) = producer.flush(drain) {
        shared.note_error(format!("flush: {e}"));
        producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }
    let hist = producer.context().hist.lock().unwrap().clone();
    Ok((hist, lag))
}

/// A consumer's wait longer than this is reported on stderr as it happens,
/// so it can be matched with the broker's log.
const GAP_REPORT_NS: u64 = 200_000_000;

/// Result of one consumer thread.
struct ConsumerOut {
    consumed: u64,
    e2e: Histogram<u64>,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    /// Longest time between two messages this consumer received: in a
    /// catch-up read, where data is always available, the longest wait.
    max_gap_ns: u64,
}

#[allow(clippy::too_many_arguments)]
fn consume_loop(
    w: Workload,
    bootstrap: String,
    topic: String,
    offsets: Vec<Offset>,
    clock: Clock,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    ready: Arc<AtomicU64>,
) -> Result<ConsumerOut> {
    let consumer: BaseConsumer = consumer_config(&w, &bootstrap)?
        .create()
        .context("create consumer")?;
    let mut tpl = TopicPartitionList::new();
    for (p, off) in offsets.iter().enumerate() {
        tpl.add_partition_offset(&topic, p as i32, *off)?;
    }
    consumer.assign(&tpl).context("assign")?;
    ready.fetch_add(1, Ordering::Relaxed);
    let mut out = ConsumerOut {
        consumed: 0,
        e2e: new_hist(),
        first_ns: None,
        last_ns: None,
        max_gap_ns: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now_epoch = unix_ns();
                let now = clock.now_ns();
                let payload = m.payload().unwrap_or(&[]);
                let bytes = (payload.len() + m.key_len()) as u64;
                out.consumed += 1;
                out.first_ns.get_or_insert(now);
                if let Some(last) = out.last_ns {
                    let gap = now.saturating_sub(last);
                    out.max_gap_ns = out.max_gap_ns.max(gap);
                    if gap > GAP_REPORT_NS {
                        eprintln!(
                            "consumer gap: {} ms ending at unix {} ms ({}[{}] offset {})",
                            gap / 1_000_000,
                            now_epoch / 1_000_000,
                            m.topic(),
                            m.partition(),
                            m.offset()
                        );
                    }
                }
                out.last_ns = Some(now);
                counter.fetch_add(1, Ordering::Relaxed);
                shared.consumed.fetch_add(1, Ordering::Relaxed);
                shared.consumed_bytes.fetch_add(bytes, Ordering::Relaxed);
                if payload.len() >= PAYLOAD_HEADER_BYTES {
                    let sent_epoch = u64::from_le_bytes(payload[0..8].try_into().unwrap());
                    let sent_ns = sent_epoch.saturating_sub(clock.t0_epoch_ns);
                    if clock.in_window(sent_ns) {
                        let us = now_epoch.saturating_sub(sent_epoch) / 1000;
                        out.e2e.saturating_record(us.clamp(1, LATENCY_US_MAX));
                    }
                }
            }
            Some(Err(e)) => {
                shared.consume_errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format!("consume: {e}"));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Deterministic payload filler: 16 distinct letters, so compression finds
/// about 2x, neither all-zero nor incompressible.
fn fill_payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    (0..len).map(|_| b'a' + (rng.next() % 16) as u8).collect()
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Prints one progress line per second until `done` is set.
fn progress_line(shared: &Shared, clock: &Clock, phase: &str, last: &mut (u64, u64, u64, Instant)) {
    let now = Instant::now();
    let dt = now.duration_since(last.3).as_secs_f64().max(1e-3);
    let acked = shared.acked.load(Ordering::Relaxed);
    let bytes = shared.acked_bytes.load(Ordering::Relaxed);
    let consumed = shared.consumed.load(Ordering::Relaxed);
    let sent = shared.sent.load(Ordering::Relaxed);
    eprintln!(
        "[{:6.1}s {:8}] acked {:>10.0} msg/s {:>8.1} MB/s | consumed {:>10.0} msg/s | in flight {:>7} | failed {}",
        clock.t0.elapsed().as_secs_f64(),
        phase,
        (acked - last.0) as f64 / dt,
        (bytes - last.1) as f64 / dt / 1e6,
        (consumed - last.2) as f64 / dt,
        sent.saturating_sub(acked + shared.failed.load(Ordering::Relaxed)),
        shared.failed.load(Ordering::Relaxed),
    );
    *last = (acked, bytes, consumed, now);
}

/// A CPU sample of the broker process, or an empty one when it has no pid
/// of its own (the in-process mock broker).
fn broker_sample(pid: Option<u32>) -> CpuSample {
    match pid {
        Some(p) => CpuSample::take(Some(p)),
        None => CpuSample::none(),
    }
}

/// Runs one workload against one broker. Bounded in time: producing stops at
/// warm-up + duration (catch-up: when the byte budget is written or the
/// duration passes), draining at most `drain_s` after that.
pub fn run(w: &Workload, opts: &RunOptions) -> Result<RunReport> {
    w.validate()?;
    let topic = setup_topic(w, opts)?;
    let shared = Arc::new(Shared::default());
    let stop_producers = Arc::new(AtomicBool::new(false));
    let stop_consumers = Arc::new(AtomicBool::new(false));
    let catch_up = w.mode == Mode::CatchUp;

    let t0 = Instant::now();
    let warmup_ns = if catch_up {
        0
    } else {
        (w.warmup_s * 1e9) as u64
    };
    let produce_end_ns = warmup_ns + (w.duration_s * 1e9) as u64;
    let clock = Clock {
        t0,
        t0_epoch_ns: unix_ns(),
        window_from_ns: warmup_ns,
        window_to_ns: produce_end_ns,
    };

    // Live consumers start before producing, at the tail of a fresh topic.
    let offsets = start_offsets(w, opts, &topic, &w.consumer_start)?;
    let mut consumer_handles = Vec::new();
    let mut counters = Vec::new();
    let ready = Arc::new(AtomicU64::new(0));
    let mut spawn_consumers = |clock: Clock| {
        for i in 0..w.consumers {
            let counter = Arc::new(AtomicU64::new(0));
            counters.push(counter.clone());
            let (w2, b, t, o, s, st, r) = (
                w.clone(),
                opts.bootstrap.clone(),
                topic.clone(),
                offsets.clone(),
                shared.clone(),
                stop_consumers.clone(),
                ready.clone(),
            );
            consumer_handles.push(
                thread::Builder::new()
                    .name(format!("bench-consumer-{i}"))
                    .spawn(move || consume_loop(w2, b, t, o, clock, s, st, counter, r))
                    .expect("spawn consumer"),
            );
        }
    };
    if !catch_up {
        spawn_consumers(clock);
        let deadline = Instant::now() + Duration::from_secs(10);
        while (ready.load(Ordering::Relaxed) as usize) < w.consumers && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }

    let budget = catch_up.then_some(w.catchup_bytes);
    let mut producer_handles = Vec::new();
    for i in 0..w.producers {
        let (w2, b, t, s, st) = (
            w.clone(),
            opts.bootstrap.clone(),
            topic.clone(),
            shared.clone(),
            stop_producers.clone(),
        );
        producer_handles.push(
            thread::Builder::new()
                .name(format!("bench-producer-{i}"))
                .spawn(move || produce_loop(i, w2, b, t, clock, s, st, budget, produce_end_ns))
                .expect("spawn producer"),
        );
    }

    // Supervise: progress each second, CPU samples at the window's edges.
    let mut last = (0, 0, 0, Instant::now());
    let mut cpu_from: Option<(CpuSample, CpuSample)> = None;
    let mut cpu_to: Option<(CpuSample, CpuSample)> = None;
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    let sample = || (broker_sample(opts.broker_pid), CpuSample::take(None));
    if warmup_ns == 0 {
        cpu_from = Some(sample());
    }
    while producer_handles.iter().any(|h| !h.is_finished()) {
        let ns = clock.now_ns();
        if cpu_from.is_none() && ns >= warmup_ns {
            cpu_from = Some(sample());
        }
        if cpu_to.is_none() && ns >= produce_end_ns {
            cpu_to = Some(sample());
        }
        if opts.progress && Instant::now() >= next_tick {
            let phase = if ns < warmup_ns {
                "warm-up"
            } else if ns < produce_end_ns {
                if catch_up {
                    "write"
                } else {
                    "measure"
                }
            } else {
                "drain"
            };
            progress_line(&shared, &clock, phase, &mut last);
            next_tick += Duration::from_secs(1);
        }
        thread::sleep(Duration::from_millis(5));
    }
    let produce_done_ns = clock.now_ns();
    let cpu_to = cpu_to.unwrap_or_else(sample);
    let cpu_from = cpu_from.unwrap_or(cpu_to);
    let mut ack_hist = new_hist();
    let mut lag_hist = new_hist();
    for h in producer_handles {
        let (hist, lag) = h
            .join()
            .map_err(|_| anyhow!("producer thread panicked"))??;
        ack_hist.add(&hist).expect("same histogram bounds");
        lag_hist.add(&lag).expect("same histogram bounds");
    }
    let acked_total = shared.acked.load(Ordering::Relaxed);

    // Catch-up: now read everything from the beginning and time it.
    let mut read_from: Option<(Instant, CpuSample, CpuSample)> = None;
    if catch_up {
        let read_clock = Clock {
            window_from_ns: 0,
            window_to_ns: u64::MAX,
            ..clock
        };
        read_from = Some((
            Instant::now(),
            broker_sample(opts.broker_pid),
            CpuSample::take(None),
        ));
        spawn_consumers(read_clock);
    }

    // Drain: wait until every consumer has read every acknowledged message.
    let drain_deadline = Instant::now()
        + Duration::from_secs_f64(if catch_up {
            w.duration_s.max(w.drain_s)
        } else {
            w.drain_s
        });
    while !counters.is_empty()
        && counters
            .iter()
            .any(|c| c.load(Ordering::Relaxed) < acked_total)
        && Instant::now() < drain_deadline
    {
        if opts.progress && Instant::now() >= next_tick {
            progress_line(
                &shared,
                &clock,
                if catch_up { "read" } else { "drain" },
                &mut last,
            );
            next_tick += Duration::from_secs(1);
        }
        thread::sleep(Duration::from_millis(5));
    }
    let read_done = Instant::now();
    let read_cpu = (broker_sample(opts.broker_pid), CpuSample::take(None));
    stop_consumers.store(true, Ordering::Relaxed);
    let mut consumer_outs = Vec::new();
    for h in consumer_handles {
        consumer_outs.push(
            h.join()
                .map_err(|_| anyhow!("consumer thread panicked"))??,
        );
    }

    let window_s = (produce_end_ns.min(produce_done_ns) - warmup_ns) as f64 / 1e9;
    let window_acked = shared.window_acked.load(Ordering::Relaxed);
    let window_bytes = shared.window_acked_bytes.load(Ordering::Relaxed);
    let produce = ProduceReport {
        sent_msgs_total: shared.sent.load(Ordering::Relaxed),
        acked_msgs_total: acked_total,
        acked_bytes_total: shared.acked_bytes.load(Ordering::Relaxed),
        failed_msgs_total: shared.failed.load(Ordering::Relaxed),
        window_s,
        msgs_per_s: window_acked as f64 / window_s.max(1e-9),
        mb_per_s: window_bytes as f64 / window_s.max(1e-9) / 1e6,
        ack_latency_us: Percentiles::of(&ack_hist),
        send_lag_us: Percentiles::of(&lag_hist),
    };
    let mut e2e = new_hist();
    for c in &consumer_outs {
        e2e.add(&c.e2e).expect("same histogram bounds");
    }
    let consumed: Vec<u64> = consumer_outs.iter().map(|c| c.consumed).collect();
    let consume = ConsumeReport {
        consumers: w.consumers,
        consumed_msgs: consumed.clone(),
        errors: shared.consume_errors.load(Ordering::Relaxed),
        all_acked_consumed: consumed.iter().all(|&c| c >= acked_total),
        e2e_latency_us: Percentiles::of(&e2e),
        max_gap_ms: consumer_outs
            .iter()
            .map(|c| c.max_gap_ns as f64 / 1e6)
            .fold(0.0, f64::max),
    };
    let catchup = read_from.map(|(from, b0, g0)| {
        let seconds = read_done.duration_since(from).as_secs_f64();
        let bytes = shared.consumed_bytes.load(Ordering::Relaxed);
        CatchUpReport {
            bytes_read_total: bytes,
            msgs_read_total: consumed.iter().sum(),
            seconds,
            mb_per_s: bytes as f64 / seconds.max(1e-9) / 1e6,
            broker_cores: b0.cores_until(&read_cpu.0),
            loadgen_cores: g0.cores_until(&read_cpu.1),
        }
    });
    let cpu = CpuReport {
        broker_cores: cpu_from.0.cores_until(&cpu_to.0),
        loadgen_cores: cpu_from.1.cores_until(&cpu_to.1),
        broker_rss_bytes: opts.broker_pid.and_then(|p| rss_bytes(Some(p))),
        loadgen_cpus: super::cpu::allowed_cpus(),
        broker_cpus: Vec::new(),
    };
    let last_error = shared.last_error.lock().unwrap().clone();
    Ok(RunReport {
        workload: w.clone(),
        broker: opts.broker.clone(),
        bootstrap: opts.bootstrap.clone(),
        topic,
        started_unix_ms: clock.t0_epoch_ns / 1_000_000,
        produce,
        consume,
        catchup,
        cpu,
        last_error,
    })
}
