//! `corelog delete-records`: Kafka's `kafka-delete-records.sh`. Moves the
//! log start offset of partitions forward with DeleteRecords, sent to each
//! partition's leader. The partitions come from `--topic --partition
//! --before-offset`, or from Kafka's JSON file (`--offset-json-file`):
//! `{"partitions":[{"topic":"t","partition":0,"offset":5}],"version":1}`,
//! where offset -1 means the high watermark (delete everything). A leader
//! that moved (NOT_LEADER_OR_FOLLOWER) means fresh Metadata and a retry.

use std::collections::BTreeMap;
use std::thread;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest};
use serde::Deserialize;

use super::client::{fail, CliError, CliResult};
use super::output::{
    error_text, find_topic, is_retriable, topic_name, Cluster, Progress, LEADER_ATTEMPTS_MAX,
    RETRY_BACKOFF,
};

const DELETE_TIMEOUT_MS: i32 = 30_000;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["topic", "offset_json_file"])))]
pub struct DeleteRecordsArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    /// The topic whose partition is trimmed.
    #[arg(long, value_name = "TOPIC", requires_all = ["partition", "before_offset"])]
    topic: Option<String>,
    /// The partition to trim.
    #[arg(long, value_name = "P")]
    partition: Option<i32>,
    /// Records before this offset are deleted (-1: all of them).
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    before_offset: Option<i64>,
    /// Kafka's JSON file of partitions and offsets.
    #[arg(long, value_name = "FILE")]
    offset_json_file: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
struct OffsetFile {
    partitions: Vec<OffsetEntry>,
}

#[derive(Deserialize)]
struct OffsetEntry {
    topic: String,
    partition: i32,
    offset: i64,
}

/// (topic, partition) -> offset, in order.
type Wanted = BTreeMap<(String, i32), i64>;

fn wanted(args: &DeleteRecordsArgs) -> CliResult<Wanted> {
    if let Some(path) = &args.offset_json_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
        let file: OffsetFile = serde_json::from_str(&text).map_err(|e| {
            CliError(format!(
                "{} is not a valid offset JSON file: {e}",
                path.display()
            ))
        })?;
        let mut out = Wanted::new();
        for entry in file.partitions {
            if out
                .insert((entry.topic.clone(), entry.partition), entry.offset)
                .is_some()
            {
                return fail(format!(
                    "Offset json file contains duplicate topic partitions: {}-{}",
                    entry.topic, entry.partition
                ));
            }
        }
        return Ok(out);
    }
    let topic = args
        .topic
        .clone()
        .expect("clap requires --topic or --offset-json-file");
    let partition = args
        .partition
        .expect("clap requires --partition with --topic");
    let offset = args
        .before_offset
        .expect("clap requires --before-offset with --topic");
    Ok(Wanted::from([((topic, partition), offset)]))
}

/// Each partition's outcome: its new low watermark, or a Kafka error code.
type Results = BTreeMap<(String, i32), Result<i64, i16>>;

pub fn run(args: DeleteRecordsArgs) -> CliResult<()> {
    let wanted = wanted(&args)?;
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    println!("Executing records delete operation");
    let mut progress = Progress::new();
    let mut results = Results::new();
    let mut pending = wanted.clone();
    // A leader that moved (NOT_LEADER_OR_FOLLOWER and other retriable
    // errors) or went away means fresh Metadata and another try, bounded.
    for attempt in 1..=LEADER_ATTEMPTS_MAX {
        if attempt > 1 {
            thread::sleep(RETRY_BACKOFF);
            cluster.drop_connections();
        }
        let last = attempt == LEADER_ATTEMPTS_MAX;
        for (leader, partitions) in by_leader(&mut cluster, &pending, &mut results)? {
            match delete_on(&mut cluster, leader, &partitions, &mut results) {
                Ok(()) => {}
                Err(_) if !last => {}
                Err(e) => return Err(e),
            }
        }
        let done = results
            .iter()
            .filter(|(_, r)| r.is_ok() || r.is_err_and(|code| !is_retriable(code)))
            .count();
        progress.update(|| format!("{done}/{} partitions", wanted.len()));
        pending = wanted
            .iter()
            .filter(|(key, _)| results.get(*key).is_none_or(|r| r.is_err_and(is_retriable)))
            .map(|(key, offset)| (key.clone(), *offset))
            .collect();
        if pending.is_empty() {
            break;
        }
    }
    progress.finish();
    println!("Records delete operation completed:");
    let mut failed = 0;
    for (topic, partition) in wanted.keys() {
        let key = (topic.clone(), *partition);
        match results.get(&key) {
            Some(Ok(low)) => println!("partition: {topic}-{partition}\tlow_watermark: {low}"),
            outcome => {
                failed += 1;
                let e = match outcome {
                    Some(Err(code)) => error_text(*code, None),
                    _ => "no result in the DeleteRecords response".to_string(),
                };
                println!("partition: {topic}-{partition}\terror: {e}");
            }
        }
    }
    if failed > 0 {
        return fail(format!(
            "{failed} of {} partitions were not trimmed",
            wanted.len()
        ));
    }
    Ok(())
}

/// Groups the partitions by their leader in fresh Metadata; a partition
/// with no leader (LEADER_NOT_AVAILABLE) or of an unknown topic
/// (UNKNOWN_TOPIC_OR_PARTITION) gets that error instead.
fn by_leader(
    cluster: &mut Cluster,
    pending: &Wanted,
    results: &mut Results,
) -> CliResult<BTreeMap<i32, Wanted>> {
    let topics: Vec<String> = pending.keys().map(|(t, _)| t.clone()).collect();
    let metadata = cluster.metadata(Some(&topics))?;
    let mut by_leader: BTreeMap<i32, Wanted> = BTreeMap::new();
    for ((topic, partition), offset) in pending {
        let leader = find_topic(&metadata, topic)
            .filter(|t| t.error_code == 0)
            .and_then(|t| {
                t.partitions
                    .iter()
                    .find(|p| p.partition_index == *partition)
            })
            .map(|p| p.leader_id.0);
        match leader {
            Some(leader) if leader >= 0 => {
                by_leader
                    .entry(leader)
                    .or_default()
                    .insert((topic.clone(), *partition), *offset);
            }
            Some(_) => {
                results.insert((topic.clone(), *partition), Err(5));
            }
            None => {
                results.insert((topic.clone(), *partition), Err(3));
            }
        }
    }
    Ok(by_leader)
}

fn delete_on(
    cluster: &mut Cluster,
    leader: i32,
    partitions: &Wanted,
    results: &mut Results,
) -> CliResult<()> {
    let mut topics: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in partitions {
        topics.entry(topic).or_default().push(
            DeleteRecordsPartition::default()
                .with_partition_index(*partition)
                .with_offset(*offset),
        );
    }
    let request = DeleteRecordsRequest::default()
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    DeleteRecordsTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_timeout_ms(DELETE_TIMEOUT_MS);
    let client = cluster.node(leader)?;
    let version = client.version(ApiKey::DeleteRecords, 2)?;
    let response = client.call(version, &request)?;
    for topic in response.topics {
        for p in topic.partitions {
            let key = (topic.name.0.to_string(), p.partition_index);
            let result = if p.error_code == 0 {
                Ok(p.low_watermark)
            } else {
                Err(p.error_code)
            };
            results.insert(key, result);
        }
    }
    Ok(())
}
