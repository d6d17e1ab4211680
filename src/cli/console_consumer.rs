//! `corelog console-consumer`: Kafka's `kafka-console-consumer.sh`. Prints a
//! topic's records to stdout with Kafka's `DefaultMessageFormatter`
//! properties (`format.rs`), then `Processed a total of N messages` on
//! stderr.
//!
//! Without `--group`, partitions are assigned, not subscribed: every
//! partition of the topic (or `--partition`), from ListOffsets' earliest
//! (`--from-beginning`), latest (the default), or `--offset`, and nothing
//! is committed.
//!
//! With `--group`, the consumer is a member of the group
//! (`membership.rs`): it reads only the partitions the group assigns it,
//! each from the group's committed offset (`offsets.rs`; else earliest
//! with `--from-beginning`, latest otherwise, as `auto.offset.reset`),
//! commits its positions every second, before each rebalance and on exit
//! (`--max-messages`, `--timeout-ms`, SIGINT, SIGTERM), and leaves the
//! group on exit. `--group` and `--partition` exclude each other, as in
//! Kafka's tool.
//!
//! Fetch goes to each partition's leader, by topic id from v13.

mod assignor;
mod format;
mod membership;
mod offsets;

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest};

use super::client::{fail, CliError, CliResult};
use super::output::{error_text, find_topic, topic_name, Cluster};
use crate::protocol::batch::{
    verify_crc, BatchError, BatchHeader, RecordsError, BATCH_HEADER_BYTES,
    BATCH_LENGTH_PREFIX_BYTES, MAGIC_V2,
};
use crate::protocol::records::{parse_records, records_section};
use format::{Formatter, Printed};
use membership::Membership;
use offsets::GroupOffsets;

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
    /// Join this consumer group: read the partitions it assigns, from its
    /// committed offsets, and commit.
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

/// A fetched batch's header, once its CRC and header fields check out.
fn checked_header(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    verify_crc(batch, &header)?;
    header.check_consistent()?;
    Ok(header)
}

/// Where consumption starts when no committed offset says.
#[derive(Clone, Copy)]
enum Start {
    Earliest,
    Latest,
    At(i64),
}

/// The partitions of the topic this consumer reads.
enum Selection {
    All,
    One(i32),
    /// The group's assignment to this member.
    Assigned(BTreeSet<i32>),
}

impl Selection {
    fn contains(&self, index: i32) -> bool {
        match self {
            Selection::All => true,
            Selection::One(only) => *only == index,
            Selection::Assigned(set) => set.contains(&index),
        }
    }
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
    selection: Selection,
    partitions: Vec<Partition>,
    reset: Start,
    group: Option<Membership>,
    formatter: Formatter,
    printed: u64,
}

pub fn run(args: ConsoleConsumerArgs) -> CliResult<()> {
    if args.group.is_some() && args.partition.is_some() {
        return fail("Options group and partition cannot be specified together.");
    }
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
        Some(id) => {
            let group_apis = [
                ApiKey::JoinGroup,
                ApiKey::SyncGroup,
                ApiKey::Heartbeat,
                ApiKey::LeaveGroup,
            ];
            let offsets = GroupOffsets::find(&mut cluster.bootstrap, id, &group_apis)?;
            Some(Membership::new(offsets, &args.topic))
        }
        None => None,
    };
    let mut consumer = Consumer {
        cluster,
        topic: args.topic.clone(),
        topic_id: uuid::Uuid::nil(),
        selection: args.partition.map_or(Selection::All, Selection::One),
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
    // Fail early on a topic that does not exist, member or not.
    consumer.assign()?;
    if consumer.group.is_none() {
        consumer.seek(start)?;
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .map_err(|e| CliError(format!("cannot handle signals: {e}")))?;
    }
    let outcome = consumer.consume(&args, &interrupted);
    let committed = consumer.commit();
    if let Some(membership) = &mut consumer.group {
        membership.leave();
    }
    eprintln!("Processed a total of {} messages", consumer.printed);
    outcome.and(committed)
}

impl Consumer {
    /// Learns the topic's id, and the leaders of the selected partitions;
    /// keeps the positions of partitions already read.
    fn assign(&mut self) -> CliResult<()> {
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
            if !self.selection.contains(p.partition_index) {
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
        if let Selection::One(only) = self.selection {
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
            Some(membership) => {
                let indexes: Vec<i32> = self.partitions.iter().map(|p| p.index).collect();
                membership
                    .offsets
                    .committed(&mut self.cluster.bootstrap, &self.topic, &indexes)?
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

    /// A member that must (re)join commits what it read (while its
    /// generation still may), gives up its partitions, joins, and starts
    /// its new ones from their committed offsets. False when `stop` ended
    /// the wait for the group.
    fn rejoin(&mut self, stop: &dyn Fn() -> bool) -> CliResult<bool> {
        self.commit()?;
        let Some(membership) = &mut self.group else {
            return Ok(true);
        };
        self.partitions.clear();
        let Some(assigned) = membership.join(&mut self.cluster, stop)? else {
            return Ok(false);
        };
        self.selection = Selection::Assigned(assigned.into_iter().collect());
        self.assign()?;
        self.seek(self.reset)?;
        Ok(true)
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
            if self.group.as_ref().is_some_and(Membership::must_join) {
                let idle_until = idle_left.map(|left| Instant::now() + left);
                let stop = || {
                    interrupted.load(Ordering::Relaxed)
                        || idle_until.is_some_and(|until| Instant::now() >= until)
                };
                if !self.rejoin(&stop)? {
                    return Ok(());
                }
                continue;
            }
            let wait_ms = idle_left.map_or(FETCH_WAIT_MS_MAX, |left| {
                (left.as_millis() as i32).clamp(1, FETCH_WAIT_MS_MAX)
            });
            let before = self.printed;
            if self.partitions.is_empty() {
                // A member the group gave nothing: it waits for a rebalance.
                thread::sleep(Duration::from_millis(wait_ms as u64));
            } else {
                match self.fetch_once(wait_ms, args.max_messages, &mut out) {
                    Ok(()) => {}
                    Err(e) if is_broken_pipe(&e) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            if self.printed > before {
                last_message_at = Instant::now();
            }
            if let Some(membership) = &mut self.group {
                membership.heartbeat_if_due(&mut self.cluster.bootstrap)?;
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
            self.assign()?;
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

    /// Commits positions that moved since the last commit, as a member
    /// in its current generation. A commit refused because the group
    /// moved on makes the member join again (what it read since its last
    /// commit is read again by the partition's next owner).
    fn commit(&mut self) -> CliResult<()> {
        let Some(membership) = &mut self.group else {
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
        let Some(committer) = membership.committer() else {
            return Ok(());
        };
        let refused = membership.offsets.commit(
            &mut self.cluster.bootstrap,
            &self.topic,
            &moved,
            &committer,
        )?;
        match refused {
            None => {
                for p in &mut self.partitions {
                    if let Some(&(_, offset)) = moved.iter().find(|(i, _)| *i == p.index) {
                        p.committed = offset;
                    }
                }
                Ok(())
            }
            Some(code) if membership.commit_refused(code) => {
                log::warn!(
                    "group {}: offsets not committed, the group rebalanced: {}",
                    membership.offsets.id,
                    error_text(code, None)
                );
                Ok(())
            }
            Some(code) => fail(format!(
                "cannot commit offsets of group {} for {}: {}",
                membership.offsets.id,
                self.topic,
                error_text(code, None)
            )),
        }
    }
}

fn is_broken_pipe(e: &CliError) -> bool {
    e.0.starts_with("stdout:") && e.0.contains("Broken pipe")
}
