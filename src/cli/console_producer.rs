//! `corelog console-producer`: Kafka's `kafka-console-producer.sh`. Each
//! line of stdin becomes one record, parsed as Kafka's `LineMessageReader`
//! does (`parse.key`, `key.separator`, `parse.headers`, `null.marker`,
//! `ignore.error`).
//!
//! Records are partitioned like Kafka's default partitioner (murmur2 of the
//! key when there is one, else a sticky partition that moves on after each
//! batch), collected per partition until `--batch-size` bytes or `--timeout`
//! ms (linger) pass, and sent as one v2 batch per partition per Produce
//! request, one request per leader at a time, acks=all by default.
//! Retriable errors refresh the metadata and retry a bounded number of
//! times; a batch that still fails is reported on stderr, one line each, and
//! the exit code is non-zero.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::client::{fail, CliError, CliResult};
use super::output::{
    error_text, find_topic, flag, parse_key_values, str_bytes, topic_name, Cluster, Progress,
};

/// Lines read ahead of the producer; bounds memory when stdin is a big file.
const LINES_QUEUED_MAX: usize = 4096;
/// Produce v12 is the last version that names topics (v13 uses ids).
const PRODUCE_VERSION_MAX: i16 = 12;
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Bytes one record adds to a batch beyond its key, value and headers
/// (varint lengths and deltas, generously).
const RECORD_OVERHEAD_BYTES: usize = 24;
/// How many times metadata is re-read while a new topic's leaders appear.
const METADATA_ATTEMPTS_MAX: u32 = 20;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How often the wait for input looks for Ctrl-C.
const INTERRUPT_POLL: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
pub struct ConsoleProducerArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, visible_alias = "broker-list", value_name = "SERVER")]
    bootstrap_server: String,
    /// The topic to produce to.
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// A line-reader property: parse.key, key.separator (default tab),
    /// parse.headers, headers.delimiter, headers.separator,
    /// headers.key.separator, null.marker, ignore.error. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    property: Vec<String>,
    /// A producer config: acks, linger.ms, batch.size, compression.type. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    producer_property: Vec<String>,
    /// acks: -1 (all) or 1 [default: -1].
    #[arg(long, value_name = "ACKS")]
    request_required_acks: Option<String>,
    /// none, gzip (when given without a value), snappy, lz4 or zstd.
    #[arg(long, value_name = "CODEC", num_args = 0..=1, default_missing_value = "gzip")]
    compression_codec: Option<String>,
    /// Bytes collected per partition before a batch is sent [default: 16384].
    #[arg(long, value_name = "BYTES")]
    batch_size: Option<usize>,
    /// Longest a record waits for its batch to fill, in ms (linger.ms) [default: 1000].
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// Send each line on its own as it arrives.
    #[arg(long)]
    sync: bool,
    /// Retries of a batch that failed with a retriable error.
    #[arg(long, value_name = "N", default_value_t = 3)]
    message_send_max_retries: u32,
}

struct Settings {
    acks: i16,
    linger: Duration,
    batch_bytes: usize,
    compression: Compression,
    retries: u32,
}

fn settings(args: &ConsoleProducerArgs) -> CliResult<Settings> {
    let props = parse_key_values(&args.producer_property, "--producer-property")?;
    let acks = args
        .request_required_acks
        .clone()
        .or_else(|| props.get("acks").cloned())
        .unwrap_or_else(|| "-1".to_string());
    let acks = match acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => return fail("acks=0 is not supported: this producer reports every failed batch"),
        other => return fail(format!("acks must be all, -1 or 1, not {other:?}")),
    };
    let number = |key: &str| -> CliResult<Option<u64>> {
        props
            .get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| CliError(format!("{key} must be a number, not {v:?}")))
            })
            .transpose()
    };
    let linger_ms = args.timeout.or(number("linger.ms")?).unwrap_or(1000);
    let batch_bytes = args
        .batch_size
        .or(number("batch.size")?.map(|b| b as usize))
        .unwrap_or(16_384)
        .max(1);
    let codec = args
        .compression_codec
        .clone()
        .or_else(|| props.get("compression.type").cloned())
        .unwrap_or_else(|| "none".to_string());
    let compression = match codec.as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => return fail(format!("unknown compression codec {other:?}")),
    };
    Ok(Settings {
        acks,
        linger: Duration::from_millis(linger_ms),
        batch_bytes: if args.sync { 1 } else { batch_bytes },
        compression,
        retries: args.message_send_max_retries,
    })
}

/// Kafka's `LineMessageReader`: how a line becomes a key, value and headers.
struct LineReader {
    parse_key: bool,
    key_separator: String,
    ignore_error: bool,
    null_marker: Option<String>,
    parse_headers: bool,
    headers_delimiter: String,
    headers_separator: String,
    headers_key_separator: String,
}

struct Line {
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: IndexMap<StrBytes, Option<Bytes>>,
}

impl LineReader {
    fn new(properties: &[String]) -> CliResult<LineReader> {
        let props = parse_key_values(properties, "--property")?;
        let get = |key: &str, default: &str| props.get(key).cloned().unwrap_or(default.into());
        let reader = LineReader {
            parse_key: flag(&props, "parse.key")?,
            key_separator: get("key.separator", "\t"),
            ignore_error: flag(&props, "ignore.error")?,
            null_marker: props.get("null.marker").cloned(),
            parse_headers: flag(&props, "parse.headers")?,
            headers_delimiter: get("headers.delimiter", "\t"),
            headers_separator: get("headers.separator", ","),
            headers_key_separator: get("headers.key.separator", ":"),
        };
        if reader.key_separator.is_empty() || reader.headers_delimiter.is_empty() {
            return fail("key.separator and headers.delimiter must not be empty");
        }
        Ok(reader)
    }

    fn nullable(&self, text: &str) -> Option<Bytes> {
        if self.null_marker.as_deref() == Some(text) {
            None
        } else {
            Some(Bytes::copy_from_slice(text.as_bytes()))
        }
    }

    fn parse(&self, line: &str, number: u64) -> CliResult<Line> {
        let mut rest = line;
        let mut headers = IndexMap::new();
        if self.parse_headers {
            let Some((head, tail)) = rest.split_once(self.headers_delimiter.as_str()) else {
                return fail(format!(
                    "No headers delimiter found on line number {number}: '{line}'"
                ));
            };
            rest = tail;
            for header in head.split(self.headers_separator.as_str()) {
                if header.is_empty() {
                    continue;
                }
                let (name, value) = match header.split_once(self.headers_key_separator.as_str()) {
                    Some((name, value)) => (name, self.nullable(value)),
                    None => (header, None),
                };
                headers.insert(str_bytes(name), value);
            }
        }
        let (key, value) = if self.parse_key {
            match rest.split_once(self.key_separator.as_str()) {
                Some((key, value)) => (self.nullable(key), self.nullable(value)),
                None if self.ignore_error => (None, self.nullable(rest)),
                None => {
                    return fail(format!(
                        "No key separator found on line number {number}: '{line}'"
                    ))
                }
            }
        } else {
            (None, self.nullable(rest))
        };
        Ok(Line {
            key,
            value,
            headers,
        })
    }
}

/// Kafka's `Utils.murmur2`, the default partitioner's hash of a key.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a keyed record.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions) as i32
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    bytes: usize,
}

/// A batch that failed with a retriable error, kept for the next attempt.
struct Unsent {
    partition: i32,
    records: Vec<Record>,
    error: String,
}

struct Producer {
    cluster: Cluster,
    topic: String,
    settings: Settings,
    version: i16,
    /// Leader node of each partition, by partition index.
    leaders: Vec<i32>,
    pending: BTreeMap<i32, Pending>,
    oldest_pending_at: Option<Instant>,
    sticky: Option<i32>,
    sticky_next: usize,
    acked: u64,
    failed: u64,
    progress: Progress,
}

impl Producer {
    /// Re-reads the topic's partitions and leaders (auto-creating the topic
    /// where the broker allows it, as Kafka's producer does).
    fn refresh(&mut self) -> CliResult<()> {
        for attempt in 1..=METADATA_ATTEMPTS_MAX {
            let topics = std::slice::from_ref(&self.topic);
            let metadata = self.cluster.metadata_with(Some(topics), true)?;
            let Some(topic) = find_topic(&metadata, &self.topic) else {
                return fail(format!(
                    "the broker returned no metadata for topic {}",
                    self.topic
                ));
            };
            let retriable = ResponseError::try_from_code(topic.error_code)
                .is_some_and(|e| e.is_retriable() && e != ResponseError::UnknownTopicOrPartition);
            let leaders_known =
                !topic.partitions.is_empty() && topic.partitions.iter().all(|p| p.leader_id.0 >= 0);
            if topic.error_code == 0 && leaders_known {
                let mut partitions: Vec<_> = topic.partitions.iter().collect();
                partitions.sort_by_key(|p| p.partition_index);
                self.leaders = partitions.iter().map(|p| p.leader_id.0).collect();
                return Ok(());
            }
            if topic.error_code != 0 && !retriable {
                return fail(format!(
                    "Topic '{}': {}",
                    self.topic,
                    error_text(topic.error_code, None)
                ));
            }
            if attempt < METADATA_ATTEMPTS_MAX {
                thread::sleep(RETRY_BACKOFF);
            }
        }
        fail(format!(
            "topic {} has partitions without a leader",
            self.topic
        ))
    }

    fn partition_of(&mut self, key: Option<&Bytes>) -> i32 {
        let count = self.leaders.len();
        if let Some(key) = key {
            return partition_for_key(key, count);
        }
        *self.sticky.get_or_insert_with(|| {
            let p = (self.sticky_next % count) as i32;
            self.sticky_next = self.sticky_next.wrapping_add(1);
            p
        })
    }

    fn push(&mut self, line: Line) -> CliResult<()> {
        let partition = self.partition_of(line.key.as_ref());
        let bytes = RECORD_OVERHEAD_BYTES
            + line.key.as_ref().map_or(0, Bytes::len)
            + line.value.as_ref().map_or(0, Bytes::len)
            + line
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 8)
                .sum::<usize>();
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: now_ms(),
            key: line.key,
            value: line.value,
            headers: line.headers,
        };
        let pending = self.pending.entry(partition).or_default();
        pending.records.push(record);
        pending.bytes += bytes;
        let full = pending.bytes >= self.settings.batch_bytes;
        self.oldest_pending_at.get_or_insert_with(Instant::now);
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends everything pending, retrying retriable failures.
    fn flush(&mut self) -> CliResult<()> {
        let mut batches: Vec<(i32, Vec<Record>)> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(p, pending)| (p, pending.records))
            .collect();
        self.oldest_pending_at = None;
        self.sticky = None;
        let mut attempt = 0;
        while !batches.is_empty() {
            let unsent = self.send_once(batches)?;
            if unsent.is_empty() {
                break;
            }
            attempt += 1;
            if attempt > self.settings.retries {
                for batch in &unsent {
                    self.report_failure(batch.partition, batch.records.len(), &batch.error);
                }
                break;
            }
            thread::sleep(RETRY_BACKOFF * attempt);
            self.cluster.drop_connections();
            self.refresh()?;
            batches = unsent
                .into_iter()
                .map(|u| (u.partition, u.records))
                .collect();
        }
        let (acked, failed) = (self.acked, self.failed);
        self.progress
            .update(|| format!("{acked} records written, {failed} failed"));
        Ok(())
    }

    fn report_failure(&mut self, partition: i32, records: usize, error: &str) {
        self.progress.finish();
        eprintln!(
            "Error when sending {records} record(s) to topic {} partition {partition}: {error}",
            self.topic
        );
        self.failed += records as u64;
    }

    /// One Produce request per leader; returns the batches worth retrying.
    fn send_once(&mut self, batches: Vec<(i32, Vec<Record>)>) -> CliResult<Vec<Unsent>> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, Vec<Record>)>> = BTreeMap::new();
        let mut unsent = Vec::new();
        for (partition, records) in batches {
            match self.leaders.get(partition as usize) {
                Some(&leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, records)),
                None => unsent.push(Unsent {
                    partition,
                    records,
                    error: "the partition is not in the topic's metadata".into(),
                }),
            }
        }
        for (leader, batches) in by_leader {
            self.send_to(leader, batches, &mut unsent)?;
        }
        Ok(unsent)
    }

    fn send_to(
        &mut self,
        leader: i32,
        batches: Vec<(i32, Vec<Record>)>,
        unsent: &mut Vec<Unsent>,
    ) -> CliResult<()> {
        let mut partition_data = Vec::with_capacity(batches.len());
        for (partition, records) in &batches {
            partition_data.push(
                PartitionProduceData::default()
                    .with_index(*partition)
                    .with_records(Some(encode_batch(records, self.settings.compression)?)),
            );
        }
        let request = ProduceRequest::default()
            .with_acks(self.settings.acks)
            .with_timeout_ms(PRODUCE_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&self.topic))
                .with_partition_data(partition_data)]);
        let version = self.version;
        let response = match self
            .cluster
            .node(leader)
            .and_then(|client| client.call(version, &request))
        {
            Ok(response) => response,
            Err(e) => {
                // The connection is gone or the broker unreachable: every
                // batch in the request is retried after a metadata refresh.
                unsent.extend(batches.into_iter().map(|(partition, records)| Unsent {
                    partition,
                    records,
                    error: e.to_string(),
                }));
                return Ok(());
            }
        };
        let mut results: BTreeMap<i32, (i16, Option<StrBytes>)> = BTreeMap::new();
        for topic in response.responses {
            for p in topic.partition_responses {
                let message = p.error_message.or_else(|| {
                    p.record_errors
                        .into_iter()
                        .find_map(|r| r.batch_index_error_message)
                });
                results.insert(p.index, (p.error_code, message));
            }
        }
        for (partition, records) in batches {
            let Some((code, message)) = results.remove(&partition) else {
                self.report_failure(
                    partition,
                    records.len(),
                    "no result in the Produce response",
                );
                continue;
            };
            if code == 0 {
                self.acked += records.len() as u64;
                continue;
            }
            let error = error_text(code, message.as_ref());
            if ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable()) {
                unsent.push(Unsent {
                    partition,
                    records,
                    error,
                });
            } else {
                self.report_failure(partition, records.len(), &error);
            }
        }
        Ok(())
    }
}

/// One v2 batch. The encoder splits a batch wherever `offset - sequence`
/// changes, so sequences advance with offsets from -1 (no sequence).
fn encode_batch(records: &[Record], compression: Compression) -> CliResult<Bytes> {
    let numbered: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: i as i64,
            sequence: (i as i32).wrapping_sub(1),
            ..r.clone()
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &numbered,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| CliError(format!("cannot encode a record batch: {e}")))?;
    Ok(buf.freeze())
}

/// Reads stdin on its own thread so the linger timer can fire while no
/// line arrives; lines travel through a bounded channel.
fn spawn_reader() -> mpsc::Receiver<io::Result<String>> {
    let (tx, rx) = mpsc::sync_channel(LINES_QUEUED_MAX);
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            // Kafka's prompt, only for a person at a terminal.
            let prompt = stdin.is_terminal();
            loop {
                if prompt {
                    let mut out = io::stdout().lock();
                    let _ = out.write_all(b">");
                    let _ = out.flush();
                }
                let mut line = Vec::new();
                let item = match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                            if line.last() == Some(&b'\r') {
                                line.pop();
                            }
                        }
                        Ok(String::from_utf8_lossy(&line).into_owned())
                    }
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if tx.send(item).is_err() || stop {
                    return;
                }
            }
        })
        .expect("stdin reader thread starts");
    rx
}

pub fn run(args: ConsoleProducerArgs) -> CliResult<()> {
    let settings = settings(&args)?;
    let reader = LineReader::new(&args.property)?;
    let cluster = Cluster::connect(&args.bootstrap_server)?;
    let version = cluster
        .bootstrap
        .version(ApiKey::Produce, PRODUCE_VERSION_MAX)?;
    let mut producer = Producer {
        cluster,
        topic: args.topic.clone(),
        settings,
        version,
        leaders: Vec::new(),
        pending: BTreeMap::new(),
        oldest_pending_at: None,
        sticky: None,
        sticky_next: 0,
        acked: 0,
        failed: 0,
        progress: Progress::new(),
    };
    producer.refresh()?;
    // Ctrl-C and SIGTERM end the input like EOF: what was read is sent.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .map_err(|e| CliError(format!("cannot handle signals: {e}")))?;
    }
    let lines = spawn_reader();
    let mut number = 0u64;
    while !interrupted.load(Ordering::Relaxed) {
        let wait = match producer.oldest_pending_at {
            None => INTERRUPT_POLL,
            Some(at) => producer
                .settings
                .linger
                .saturating_sub(at.elapsed())
                .min(INTERRUPT_POLL),
        };
        match lines.recv_timeout(wait) {
            Ok(Ok(line)) => {
                number += 1;
                match reader.parse(&line, number) {
                    Ok(line) => producer.push(line)?,
                    Err(e) => {
                        producer.flush()?;
                        return Err(e);
                    }
                }
            }
            Ok(Err(e)) => {
                producer.flush()?;
                return fail(format!("cannot read stdin: {e}"));
            }
            Err(RecvTimeoutError::Timeout) => {
                let lingered = producer
                    .oldest_pending_at
                    .is_some_and(|at| at.elapsed() >= producer.settings.linger);
                if lingered {
                    producer.flush()?;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    producer.flush()?;
    producer.progress.finish();
    if producer.failed > 0 {
        return fail(format!(
            "{} of {} records were not written",
            producer.failed,
            producer.failed + producer.acked
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn lines_parse_like_kafkas_reader() {
        let reader = LineReader::new(&[
            "parse.key=true".into(),
            "key.separator=:".into(),
            "null.marker=NULL".into(),
        ])
        .unwrap();
        let line = reader.parse("k1:v:1", 1).unwrap();
        assert_eq!(line.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(line.value.as_deref(), Some(&b"v:1"[..]));
        let line = reader.parse("NULL:x", 2).unwrap();
        assert!(line.key.is_none());
        assert!(reader.parse("nokey", 3).is_err());
        let headers = LineReader::new(&["parse.headers=true".into()]).unwrap();
        let line = headers.parse("h1:a,h2\tvalue", 1).unwrap();
        assert_eq!(line.headers.len(), 2);
        assert_eq!(line.value.as_deref(), Some(&b"value"[..]));
    }
}
