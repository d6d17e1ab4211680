//! `corelog console-consumer`: Kafka's `kafka-console-consumer.sh`. Prints a
//! topic's records to stdout with Kafka's `DefaultMessageFormatter`
//! properties (`print.key`, `print.timestamp`, `print.offset`,
//! `print.partition`, `print.headers`, `print.value`, `key.separator`,
//! `line.separator`, `headers.separator`, `null.literal`), then
//! `Processed a total of N messages` on stderr.
//!
//! Partitions are assigned, not subscribed: every partition of the topic
//! (or `--partition`), from ListOffsets' earliest (`--from-beginning`),
//! latest (the default), or `--offset`. Fetch goes to each partition's
//! leader, by topic id from v13.
//!
//! With `--group`, the consumer is a standalone member of the group in
//! Kafka's sense (like `assign()` plus `commitSync()`): it starts from the
//! group's committed offsets (OffsetFetch; else earliest with
//! `--from-beginning`, latest otherwise) and commits its position
//! (OffsetCommit with generation -1) every second and on exit. It does not
//! join the group, so it takes part in no rebalance and must not run beside
//! other members of the same group.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest,
};

use super::client::{fail, CliError, CliResult, KafkaClient};
use super::output::{
    error_text, find_coordinator, find_topic, flag, is_retriable, parse_key_values, str_bytes,
    topic_name, Cluster, COORDINATOR_ATTEMPTS_MAX,
};
use crate::protocol::batch::{
    verify_crc, BatchError, BatchHeader, RecordsError, BATCH_HEADER_BYTES,
    BATCH_LENGTH_PREFIX_BYTES, MAGIC_V2,
};
use crate::protocol::records::{parse_records, records_section};

/// Fetch v13+ names topics by id; v16 is the newest this tool was tested with.
const FETCH_VERSION_MAX: i16 = 16;
const FETCH_WAIT_MS_MAX: i32 = 500;
const FETCH_BYTES_MAX: i32 = 50 << 20;
const FETCH_PARTITION_BYTES_MAX: i32 = 1 << 20;
const LIST_OFFSETS_EARLIEST: i64 = -2;
const LIST_OFFSETS_LATEST: i64 = -1;
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Where a batch's length and magic byte are, to split a fetched records
/// section into batches and skip old message sets before parsing.
const BATCH_LENGTH_AT: usize = 8;
const BATCH_MAGIC_AT: usize = 16;

#[derive(clap::Args)]
pub struct ConsoleConsumerArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    /// The topic to consume.
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// Start at the earliest offset when there is no committed one (default: the latest).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Consume only this partition.
    #[arg(long, value_name = "P")]
    partition: Option<i32>,
    /// Where to start in --partition: earliest, latest or an offset.
    #[arg(long, value_name = "OFFSET", requires = "partition")]
    offset: Option<String>,
    /// A consumer group to start from and commit to (see the module docs: no rebalancing).
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Exit after this many messages.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Exit when no message arrived for this long (ms).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// A formatter property: print.key, print.timestamp, print.offset,
    /// print.partition, print.headers, print.value, key.separator,
    /// line.separator, headers.separator, null.literal. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    property: Vec<String>,
}

/// Kafka's `DefaultMessageFormatter`.
struct Formatter {
    print_timestamp: bool,
    print_partition: bool,
    print_offset: bool,
    print_headers: bool,
    print_key: bool,
    print_value: bool,
    key_separator: Vec<u8>,
    line_separator: Vec<u8>,
    headers_separator: Vec<u8>,
    null_literal: Vec<u8>,
}

impl Formatter {
    fn new(properties: &[String]) -> CliResult<Formatter> {
        let props = parse_key_values(properties, "--property")?;
        let text = |key: &str, default: &str| {
            props
                .get(key)
                .map_or(default.as_bytes().to_vec(), |v| unescape(v).into_bytes())
        };
        Ok(Formatter {
            print_timestamp: flag(&props, "print.timestamp")?,
            print_partition: flag(&props, "print.partition")?,
            print_offset: flag(&props, "print.offset")?,
            print_headers: flag(&props, "print.headers")?,
            print_key: flag(&props, "print.key")?,
            print_value: !props.contains_key("print.value") || flag(&props, "print.value")?,
            key_separator: text("key.separator", "\t"),
            line_separator: text("line.separator", "\n"),
            headers_separator: text("headers.separator", ","),
            null_literal: text("null.literal", "null"),
        })
    }

    fn bytes<'a>(&'a self, value: Option<&'a [u8]>) -> &'a [u8] {
        value.unwrap_or(&self.null_literal)
    }

    /// Writes one record; each field is followed by the key separator when a
    /// later field is printed, and the value by the line separator.
    fn write(
        &self,
        out: &mut impl Write,
        partition: i32,
        record: &Printed,
        log_append: bool,
    ) -> io::Result<()> {
        let fields = [
            self.print_timestamp,
            self.print_partition,
            self.print_offset,
            self.print_headers,
            self.print_key,
            self.print_value,
        ];
        let more_after = |i: usize| fields[i + 1..].iter().any(|f| *f);
        if self.print_timestamp {
            let kind = if log_append {
                "LogAppendTime"
            } else {
                "CreateTime"
            };
            write!(out, "{kind}:{}", record.timestamp)?;
            self.separator(out, more_after(0))?;
        }
        if self.print_partition {
            write!(out, "Partition:{partition}")?;
            self.separator(out, more_after(1))?;
        }
        if self.print_offset {
            write!(out, "Offset:{}", record.offset)?;
            self.separator(out, more_after(2))?;
        }
        if self.print_headers {
            if record.headers.is_empty() {
                out.write_all(b"NO_HEADERS")?;
            }
            for (i, (name, value)) in record.headers.iter().enumerate() {
                if i > 0 {
                    out.write_all(&self.headers_separator)?;
                }
                // Header keys are strings to Kafka's formatter: bytes that
                // are not UTF-8 print as U+FFFD, as Java decodes them.
                write!(out, "{}:", String::from_utf8_lossy(name))?;
                out.write_all(self.bytes(*value))?;
            }
            self.separator(out, more_after(3))?;
        }
        if self.print_key {
            out.write_all(self.bytes(record.key))?;
            self.separator(out, more_after(4))?;
        }
        if self.print_value {
            out.write_all(self.bytes(record.value))?;
            out.write_all(&self.line_separator)?;
        }
        Ok(())
    }

    fn separator(&self, out: &mut impl Write, more: bool) -> io::Result<()> {
        if more {
            out.write_all(&self.key_separator)?;
        }
        Ok(())
    }
}

/// One record as the formatter prints it, borrowed from its batch.
struct Printed<'a> {
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    /// In order, duplicate keys kept.
    headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// A fetched batch's header, once its CRC and header fields check out.
fn checked_header(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    verify_crc(batch, &header)?;
    header.check_consistent()?;
    Ok(header)
}

/// `\t`, `\n` and `\r` in a separator property mean the control characters.
fn unescape(text: &str) -> String {
    text.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
}

/// Where consumption starts when no committed offset says.
#[derive(Clone, Copy)]
enum Start {
    Earliest,
    Latest,
    At(i64),
}

struct Partition {
    index: i32,
    leader: i32,
    /// The next offset to print.
    position: i64,
    /// The position last committed to the group.
    committed: i64,
}

struct Consumer {
    cluster: Cluster,
    topic: String,
    topic_id: uuid::Uuid,
    partitions: Vec<Partition>,
    reset: Start,
    group: Option<Group>,
    formatter: Formatter,
    printed: u64,
}

pub fn run(args: ConsoleConsumerArgs) -> CliResult<()> {
    let formatter = Formatter::new(&args.property)?;
    let start = match args.offset.as_deref() {
        None if args.from_beginning => Start::Earliest,
        None => Start::Latest,
        Some("earliest") => Start::Earliest,
        Some("latest") => Start::Latest,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Start::At(n),
            _ => {
                return fail(format!(
                    "--offset must be earliest, latest or an offset, not {n:?}"
                ))
            }
        },
    };
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    let group = match &args.group {
        Some(id) => Some(Group::find(&mut cluster.bootstrap, id)?),
        None => None,
    };
    let mut consumer = Consumer {
        cluster,
        topic: args.topic.clone(),
        topic_id: uuid::Uuid::nil(),
        partitions: Vec::new(),
        reset: if args.from_beginning {
            Start::Earliest
        } else {
            Start::Latest
        },
        group,
        formatter,
        printed: 0,
    };
    consumer.assign(args.partition)?;
    consumer.seek(start)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .map_err(|e| CliError(format!("cannot handle signals: {e}")))?;
    }
    let outcome = consumer.consume(&args, &interrupted);
    let committed = consumer.commit();
    eprintln!("Processed a total of {} messages", consumer.printed);
    outcome.and(committed)
}

impl Consumer {
    /// Learns the topic's id, partitions and leaders; keeps positions of
    /// partitions already assigned.
    fn assign(&mut self, only: Option<i32>) -> CliResult<()> {
        let metadata = self
            .cluster
            .metadata(Some(std::slice::from_ref(&self.topic)))?;
        let Some(topic) = find_topic(&metadata, &self.topic) else {
            return fail(format!(
                "the broker returned no metadata for topic {}",
                self.topic
            ));
        };
        if topic.error_code != 0 {
            return fail(format!(
                "Topic '{}': {}",
                self.topic,
                error_text(topic.error_code, None)
            ));
        }
        self.topic_id = topic.topic_id;
        let mut next = Vec::new();
        for p in &topic.partitions {
            if only.is_some_and(|o| o != p.partition_index) {
                continue;
            }
            let old = self
                .partitions
                .iter()
                .find(|o| o.index == p.partition_index);
            next.push(Partition {
                index: p.partition_index,
                leader: p.leader_id.0,
                position: old.map_or(-1, |o| o.position),
                committed: old.map_or(-1, |o| o.committed),
            });
        }
        if let Some(only) = only {
            if next.is_empty() {
                return fail(format!("topic {} has no partition {only}", self.topic));
            }
        }
        next.sort_by_key(|p| p.index);
        self.partitions = next;
        Ok(())
    }

    /// Sets every partition's starting position: the group's committed
    /// offset if there is one, else `start`.
    fn seek(&mut self, start: Start) -> CliResult<()> {
        let committed = match &mut self.group {
            Some(group) => {
                let indexes: Vec<i32> = self.partitions.iter().map(|p| p.index).collect();
                group.committed(&mut self.cluster.bootstrap, &self.topic, &indexes)?
            }
            None => HashMap::new(),
        };
        let mut earliest = Vec::new();
        let mut latest = Vec::new();
        for p in &mut self.partitions {
            if let Some(&offset) = committed.get(&p.index) {
                p.position = offset;
                p.committed = offset;
                continue;
            }
            match start {
                Start::At(offset) => p.position = offset,
                Start::Earliest => earliest.push(p.index),
                Start::Latest => latest.push(p.index),
            }
        }
        self.list_offsets(&earliest, LIST_OFFSETS_EARLIEST)?;
        self.list_offsets(&latest, LIST_OFFSETS_LATEST)
    }

    /// Moves the given partitions to ListOffsets' answer for `timestamp`.
    /// Moves the partitions' positions to ListOffsets' answer at
    /// `timestamp`, each asked of its leader (re-reading Metadata, bounded,
    /// when a leader moved).
    fn list_offsets(&mut self, indexes: &[i32], timestamp: i64) -> CliResult<()> {
        let wanted: BTreeSet<(String, i32)> = indexes
            .iter()
            .map(|&index| (self.topic.clone(), index))
            .collect();
        for ((topic, index), result) in self.cluster.list_offsets(&wanted, timestamp)? {
            let offset = result.or_else(|code| {
                fail(format!(
                    "ListOffsets for {topic}-{index}: {}",
                    error_text(code, None)
                ))
            })?;
            if let Some(p) = self.partitions.iter_mut().find(|p| p.index == index) {
                p.position = offset;
            }
        }
        Ok(())
    }

    fn consume(&mut self, args: &ConsoleConsumerArgs, interrupted: &AtomicBool) -> CliResult<()> {
        let idle_max = args.timeout_ms.map(Duration::from_millis);
        let mut last_message_at = Instant::now();
        let mut last_commit_at = Instant::now();
        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        loop {
            if interrupted.load(Ordering::Relaxed) {
                return Ok(());
            }
            if args.max_messages.is_some_and(|max| self.printed >= max) {
                return Ok(());
            }
            let idle_left = idle_max.map(|max| max.saturating_sub(last_message_at.elapsed()));
            if idle_left == Some(Duration::ZERO) {
                return Ok(());
            }
            let wait_ms = idle_left.map_or(FETCH_WAIT_MS_MAX, |left| {
                (left.as_millis() as i32).clamp(1, FETCH_WAIT_MS_MAX)
            });
            let before = self.printed;
            match self.fetch_once(wait_ms, args.max_messages, &mut out) {
                Ok(()) => {}
                Err(e) if is_broken_pipe(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
            if self.printed > before {
                last_message_at = Instant::now();
            }
            if last_commit_at.elapsed() >= COMMIT_INTERVAL {
                self.commit()?;
                last_commit_at = Instant::now();
            }
        }
    }

    /// One Fetch per leader; prints what came back and advances positions.
    fn fetch_once(
        &mut self,
        wait_ms: i32,
        max: Option<u64>,
        out: &mut impl Write,
    ) -> CliResult<()> {
        let mut leaders: Vec<i32> = self.partitions.iter().map(|p| p.leader).collect();
        leaders.sort_unstable();
        leaders.dedup();
        // With several leaders, one long poll would starve the others.
        let wait_ms = if leaders.len() > 1 {
            wait_ms.min(100)
        } else {
            wait_ms
        };
        let mut stale = false;
        for leader in leaders {
            stale |= self.fetch_from(leader, wait_ms, max, out)?;
            out.flush().map_err(|e| CliError(format!("stdout: {e}")))?;
        }
        if stale {
            thread::sleep(RETRY_BACKOFF);
            self.cluster.drop_connections();
            let only = (self.partitions.len() == 1).then(|| self.partitions[0].index);
            self.assign(only)?;
        }
        Ok(())
    }

    /// Returns true when the metadata needs a refresh (leader moved).
    fn fetch_from(
        &mut self,
        leader: i32,
        wait_ms: i32,
        max: Option<u64>,
        out: &mut impl Write,
    ) -> CliResult<bool> {
        let version = self
            .cluster
            .node(leader)?
            .version(ApiKey::Fetch, FETCH_VERSION_MAX)?;
        let partitions = self
            .partitions
            .iter()
            .filter(|p| p.leader == leader)
            .map(|p| {
                FetchPartition::default()
                    .with_partition(p.index)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(p.position)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(FETCH_PARTITION_BYTES_MAX)
            })
            .collect();
        let mut topic = FetchTopic::default().with_partitions(partitions);
        if version >= 13 {
            topic.topic_id = self.topic_id;
        } else {
            topic.topic = topic_name(&self.topic);
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_BYTES_MAX)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![topic]);
        let response = match self.cluster.node(leader)?.call(version, &request) {
            Ok(response) => response,
            Err(_) => return Ok(true),
        };
        if response.error_code != 0 {
            return fail(format!("Fetch: {}", error_text(response.error_code, None)));
        }
        let mut stale = false;
        for data in response.responses.into_iter().flat_map(|t| t.partitions) {
            match ResponseError::try_from_code(data.error_code) {
                None => {
                    let records = data.records.unwrap_or_default();
                    self.print(data.partition_index, records, max, out)?;
                }
                Some(ResponseError::OffsetOutOfRange) => {
                    let timestamp = match self.reset {
                        Start::Earliest => LIST_OFFSETS_EARLIEST,
                        _ => LIST_OFFSETS_LATEST,
                    };
                    self.list_offsets(&[data.partition_index], timestamp)?;
                }
                Some(e) if e.is_retriable() => stale = true,
                Some(_) => {
                    return fail(format!(
                        "Fetch from {}-{}: {}",
                        self.topic,
                        data.partition_index,
                        error_text(data.error_code, None)
                    ))
                }
            }
        }
        Ok(stale)
    }

    /// Prints the complete batches in `records` from the partition's
    /// position on (a fetch may end in a partial batch, and a compressed
    /// batch may start before the position).
    fn print(
        &mut self,
        index: i32,
        mut records: Bytes,
        max: Option<u64>,
        out: &mut impl Write,
    ) -> CliResult<()> {
        let Some(at) = self.partitions.iter().position(|p| p.index == index) else {
            return Ok(());
        };
        while records.len() >= BATCH_LENGTH_PREFIX_BYTES {
            let length = i32::from_be_bytes(
                records[BATCH_LENGTH_AT..BATCH_LENGTH_PREFIX_BYTES]
                    .try_into()
                    .expect("4 bytes"),
            );
            let total = BATCH_LENGTH_PREFIX_BYTES + length.max(0) as usize;
            if length < 0 || records.len() < total {
                break;
            }
            let batch = records.split_to(total);
            if total < BATCH_HEADER_BYTES || batch[BATCH_MAGIC_AT] as i8 != MAGIC_V2 {
                continue; // an old message set: Kafka 4 and corelog store none
            }
            // Bytes from a broker are checked as the broker checks stored
            // batches (CRC, header, every record) and decompressed within
            // the same bound, so a hostile broker cannot make the CLI
            // allocate beyond it.
            let header = checked_header(&batch).map_err(|e| {
                CliError(format!("a batch of {}-{index} is corrupt: {e}", self.topic))
            })?;
            // Saturating, never wrapping to a position behind the consumer's.
            let next_offset = header.last_offset().saturating_add(1);
            if next_offset <= self.partitions[at].position {
                continue;
            }
            if header.is_control() {
                self.partitions[at].position = next_offset;
                continue;
            }
            let decode_error = |e: RecordsError| {
                CliError(format!(
                    "cannot decode a batch of {}-{index} at {}: {e}",
                    self.topic, header.base_offset
                ))
            };
            let section = records_section(&batch, &header).map_err(decode_error)?;
            let records = parse_records(&section, &header).map_err(decode_error)?;
            let log_append = header.is_log_append_time();
            for view in &records {
                let offset = header
                    .base_offset
                    .saturating_add(i64::from(view.offset_delta));
                if offset < self.partitions[at].position {
                    continue;
                }
                if max.is_some_and(|max| self.printed >= max) {
                    return Ok(());
                }
                let record = Printed {
                    offset,
                    timestamp: if log_append {
                        header.max_timestamp
                    } else {
                        header.base_timestamp.saturating_add(view.timestamp_delta)
                    },
                    key: view.key,
                    value: view.value,
                    headers: view.headers(),
                };
                self.formatter
                    .write(out, index, &record, log_append)
                    .map_err(|e| CliError(format!("stdout: {e}")))?;
                self.printed += 1;
                self.partitions[at].position = offset.saturating_add(1);
            }
            self.partitions[at].position = self.partitions[at].position.max(next_offset);
        }
        Ok(())
    }

    /// Commits positions that moved since the last commit (group mode only).
    fn commit(&mut self) -> CliResult<()> {
        let Some(group) = &mut self.group else {
            return Ok(());
        };
        let moved: Vec<(i32, i64)> = self
            .partitions
            .iter()
            .filter(|p| p.position >= 0 && p.position != p.committed)
            .map(|p| (p.index, p.position))
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        group.commit(&self.topic, &moved)?;
        for p in &mut self.partitions {
            if let Some(&(_, offset)) = moved.iter().find(|(i, _)| *i == p.index) {
                p.committed = offset;
            }
        }
        Ok(())
    }
}

fn is_broken_pipe(e: &CliError) -> bool {
    e.0.starts_with("stdout:") && e.0.contains("Broken pipe")
}

/// The group's coordinator connection.
struct Group {
    id: String,
    coordinator: KafkaClient,
}

impl Group {
    /// Finds the coordinator (retrying while it loads); a broker that does
    /// not serve committed offsets is a one-line error.
    fn find(bootstrap: &mut KafkaClient, id: &str) -> CliResult<Group> {
        for api in [
            ApiKey::FindCoordinator,
            ApiKey::OffsetFetch,
            ApiKey::OffsetCommit,
        ] {
            if bootstrap.served(api).is_none() {
                return fail(format!(
                    "--group: the broker at {} does not serve consumer groups (no {api:?})",
                    bootstrap.address()
                ));
            }
        }
        Ok(Group {
            id: id.to_string(),
            coordinator: find_coordinator(bootstrap, id)?,
        })
    }

    /// Committed offsets of the topic's partitions, by partition. A
    /// coordinator that moved or is loading (a retriable error) is found
    /// again through `bootstrap` and asked again, bounded, as Kafka's
    /// consumer does.
    fn committed(
        &mut self,
        bootstrap: &mut KafkaClient,
        topic: &str,
        partitions: &[i32],
    ) -> CliResult<HashMap<i32, i64>> {
        for attempt in 1..=COORDINATOR_ATTEMPTS_MAX {
            match self.offset_fetch(topic, partitions)? {
                Ok(out) => return Ok(out),
                Err(code) if is_retriable(code) && attempt < COORDINATOR_ATTEMPTS_MAX => {
                    thread::sleep(RETRY_BACKOFF);
                    self.coordinator = find_coordinator(bootstrap, &self.id)?;
                }
                Err(code) => {
                    return fail(format!(
                        "cannot read the committed offsets of group {}: {}",
                        self.id,
                        error_text(code, None)
                    ))
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// One OffsetFetch: the offsets, or the first error code answered.
    fn offset_fetch(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> CliResult<Result<HashMap<i32, i64>, i16>> {
        let client = &mut self.coordinator;
        let version = client.version(ApiKey::OffsetFetch, 9)?;
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            request.groups = vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(str_bytes(&self.id)))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions.to_vec())]))];
        } else {
            request.group_id = GroupId(str_bytes(&self.id));
            request.topics = Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]);
        }
        let response = client.call(version, &request)?;
        let mut out = HashMap::new();
        if version >= 8 {
            for group in response.groups {
                if group.error_code != 0 {
                    return Ok(Err(group.error_code));
                }
                for p in group.topics.into_iter().flat_map(|t| t.partitions) {
                    if p.error_code != 0 {
                        return Ok(Err(p.error_code));
                    }
                    if p.committed_offset >= 0 {
                        out.insert(p.partition_index, p.committed_offset);
                    }
                }
            }
        } else {
            if response.error_code != 0 {
                return Ok(Err(response.error_code));
            }
            for p in response.topics.into_iter().flat_map(|t| t.partitions) {
                if p.error_code != 0 {
                    return Ok(Err(p.error_code));
                }
                if p.committed_offset >= 0 {
                    out.insert(p.partition_index, p.committed_offset);
                }
            }
        }
        Ok(Ok(out))
    }

    /// OffsetCommit as a standalone consumer (generation -1, no member id).
    fn commit(&mut self, topic: &str, offsets: &[(i32, i64)]) -> CliResult<()> {
        let client = &mut self.coordinator;
        let version = client.version(ApiKey::OffsetCommit, 9)?;
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(&self.id)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(str_bytes(""))
            .with_retention_time_ms(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|&(index, offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(str_bytes("")))
                        })
                        .collect(),
                )]);
        let response = client.call(version, &request)?;
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            if p.error_code != 0 {
                return fail(format!(
                    "cannot commit offsets of group {} for {topic}-{}: {}",
                    self.id,
                    p.partition_index,
                    error_text(p.error_code, None)
                ));
            }
        }
        Ok(())
    }
}
