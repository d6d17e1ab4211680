//! `corelog leader-election`: Kafka's `kafka-leader-election.sh`. Asks the
//! cluster (ElectLeaders, which the broker hands to the controller) to
//! elect leaders: `--election-type PREFERRED` gives partitions back to
//! their first replica where it is alive and in sync, `UNCLEAN` elects a
//! replica outside the ISR where no in-sync one is left. The partitions are
//! one (`--topic T --partition P`), a JSON file in Kafka's format
//! (`--path-to-json-file`, `{"partitions":[{"topic":"t","partition":0}]}`),
//! or all of them (`--all-topic-partitions`, for which the broker answers
//! only the partitions it elected or could not).
//!
//! Output as Kafka's tool prints it: `Successfully completed leader
//! election (PREFERRED) for partitions t-0, t-1`, `Valid replica already
//! elected for partitions t-2`, and one `Error completing leader election
//! ...` line per failed partition, after which the command fails.

use std::collections::BTreeSet;
use std::thread;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse};

use super::client::{fail, CliError, CliResult};
use super::output::{error_text, topic_name, Cluster, LEADER_ATTEMPTS_MAX, RETRY_BACKOFF};

/// How long the controller may take to elect (Kafka's tool waits 30 s).
const TIMEOUT_MS: i32 = 30_000;
/// Bound on the partitions a JSON file may name.
const JSON_PARTITIONS_MAX: usize = 1_000_000;

#[derive(clap::Args)]
pub struct LeaderElectionArgs {
    /// The broker(s) to connect to: host:port[,host:port...]. Required.
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: Option<String>,
    /// PREFERRED (the first replica, where alive and in sync) or UNCLEAN
    /// (any live replica, where no in-sync one is left). Required.
    #[arg(long, value_name = "TYPE")]
    election_type: Option<String>,
    /// The topic of the one partition to elect for (with --partition).
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// The partition to elect for (with --topic).
    #[arg(long, value_name = "P")]
    partition: Option<i32>,
    /// Elect for every partition the election type applies to.
    #[arg(long)]
    all_topic_partitions: bool,
    /// A JSON file naming the partitions: {"partitions":[{"topic":"t","partition":0}]}.
    #[arg(long, value_name = "FILE")]
    path_to_json_file: Option<String>,
}

/// Kafka's `ElectionType`.
#[derive(Clone, Copy)]
enum ElectionType {
    Preferred,
    Unclean,
}

impl ElectionType {
    fn parse(text: &str) -> CliResult<ElectionType> {
        match text.to_ascii_uppercase().as_str() {
            "PREFERRED" => Ok(ElectionType::Preferred),
            "UNCLEAN" => Ok(ElectionType::Unclean),
            _ => fail(format!(
                "--election-type must be PREFERRED or UNCLEAN, not {text:?}"
            )),
        }
    }

    fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ElectionType::Preferred => "PREFERRED",
            ElectionType::Unclean => "UNCLEAN",
        }
    }
}

type TopicPartition = (String, i32);

pub fn run(args: LeaderElectionArgs) -> CliResult<()> {
    let mut missing = Vec::new();
    if args.bootstrap_server.is_none() {
        missing.push("bootstrap-server");
    }
    if args.election_type.is_none() {
        missing.push("election-type");
    }
    if !missing.is_empty() {
        return fail(format!(
            "Missing required option(s): {}",
            missing.join(", ")
        ));
    }
    let scopes = [
        args.topic.is_some(),
        args.all_topic_partitions,
        args.path_to_json_file.is_some(),
    ];
    if scopes.iter().filter(|s| **s).count() != 1 {
        return fail(
            "One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file",
        );
    }
    if args.topic.is_some() && args.partition.is_none() {
        return fail("Missing required option(s): partition");
    }
    if args.topic.is_none() && args.partition.is_some() {
        return fail("Option partition is only allowed if topic is used");
    }
    let election = ElectionType::parse(args.election_type.as_deref().unwrap_or_default())?;
    let partitions: Option<BTreeSet<TopicPartition>> = match (&args.topic, &args.path_to_json_file)
    {
        (Some(topic), _) => Some(BTreeSet::from([(
            topic.clone(),
            args.partition.unwrap_or_default(),
        )])),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError(format!("--path-to-json-file {path}: {e}")))?;
            Some(parse_json(&text)?)
        }
        (None, None) => None,
    };
    let mut cluster = Cluster::connect(args.bootstrap_server.as_deref().unwrap_or_default())?;
    let response = elect(&mut cluster, election, partitions.as_ref())?;
    report(election, response)
}

/// Kafka's replica election file: `{"partitions": [{"topic": .., "partition": ..}]}`,
/// no partition twice.
fn parse_json(text: &str) -> CliResult<BTreeSet<TopicPartition>> {
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| CliError(format!("Replica election data is not JSON: {e}")))?;
    let Some(list) = json.get("partitions") else {
        return fail("Replica election data is missing \"partitions\" field");
    };
    let Some(list) = list.as_array() else {
        return fail("Replica election data: \"partitions\" is not an array");
    };
    if list.len() > JSON_PARTITIONS_MAX {
        return fail(format!(
            "Replica election data names more than {JSON_PARTITIONS_MAX} partitions"
        ));
    }
    let mut out = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    for entry in list {
        let topic = entry.get("topic").and_then(|t| t.as_str());
        let partition = entry
            .get("partition")
            .and_then(|p| p.as_i64())
            .and_then(|p| i32::try_from(p).ok());
        let (Some(topic), Some(partition)) = (topic, partition) else {
            return fail(format!(
                "Replica election data: {entry} is not {{\"topic\": string, \"partition\": int}}"
            ));
        };
        if !out.insert((topic.to_string(), partition)) {
            duplicates.insert(format!("{topic}-{partition}"));
        }
    }
    if !duplicates.is_empty() {
        return fail(format!(
            "Replica election data contains duplicate partitions: {}",
            duplicates.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    Ok(out)
}

/// ElectLeaders through the bootstrap broker; asked again (bounded) while
/// the controller moves or times out, as Kafka's admin client does.
fn elect(
    cluster: &mut Cluster,
    election: ElectionType,
    partitions: Option<&BTreeSet<TopicPartition>>,
) -> CliResult<ElectLeadersResponse> {
    let client = &mut cluster.bootstrap;
    let version = client.version(ApiKey::ElectLeaders, 2)?;
    if version == 0 && matches!(election, ElectionType::Unclean) {
        return fail("the broker serves only preferred leader elections (ElectLeaders v0)");
    }
    let topics = partitions.map(|set| {
        let mut by_topic: Vec<TopicPartitions> = Vec::new();
        for (topic, partition) in set {
            match by_topic.last_mut() {
                Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*partition),
                _ => by_topic.push(
                    TopicPartitions::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![*partition]),
                ),
            }
        }
        by_topic
    });
    let request = ElectLeadersRequest::default()
        .with_election_type(election.code())
        .with_topic_partitions(topics)
        .with_timeout_ms(TIMEOUT_MS);
    for attempt in 1..=LEADER_ATTEMPTS_MAX {
        let response = client.call(version, &request)?;
        let retriable = std::iter::once(response.error_code)
            .chain(
                response
                    .replica_election_results
                    .iter()
                    .flat_map(|t| t.partition_result.iter().map(|p| p.error_code)),
            )
            .any(|code| {
                code == ResponseError::NotController.code()
                    || code == ResponseError::RequestTimedOut.code()
            });
        if !retriable || attempt == LEADER_ATTEMPTS_MAX {
            return Ok(response);
        }
        thread::sleep(RETRY_BACKOFF);
    }
    unreachable!("the last attempt returns")
}

/// Prints the outcome Kafka's way; partitions that could not be elected
/// make the command fail.
fn report(election: ElectionType, response: ElectLeadersResponse) -> CliResult<()> {
    if response.error_code != 0 {
        return fail(format!(
            "leader election ({}) failed: {}",
            election.name(),
            error_text(response.error_code, None)
        ));
    }
    let mut elected = BTreeSet::new();
    let mut not_needed = BTreeSet::new();
    let mut failed = Vec::new();
    for topic in &response.replica_election_results {
        for p in &topic.partition_result {
            let key = (topic.topic.0.to_string(), p.partition_id);
            match ResponseError::try_from_code(p.error_code) {
                None => {
                    elected.insert(key);
                }
                Some(ResponseError::ElectionNotNeeded) => {
                    not_needed.insert(key);
                }
                Some(error) => failed.push((key, error, p.error_message.clone())),
            }
        }
    }
    let names = |set: &BTreeSet<TopicPartition>| {
        set.iter()
            .map(|(t, p)| format!("{t}-{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !elected.is_empty() {
        println!(
            "Successfully completed leader election ({}) for partitions {}",
            election.name(),
            names(&elected)
        );
    }
    if !not_needed.is_empty() {
        println!(
            "Valid replica already elected for partitions {}",
            names(&not_needed)
        );
    }
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    for ((topic, partition), error, message) in &failed {
        let text = message
            .as_ref()
            .filter(|m| !m.is_empty())
            .map_or_else(|| error.to_string(), |m| m.to_string());
        println!(
            "Error completing leader election ({}) for partition: {topic}-{partition}: {error:?}Exception: {text}",
            election.name()
        );
    }
    fail(format!("{} replica(s) could not be elected", failed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_files_read_as_kafka_reads_them() {
        let parsed = parse_json(
            r#"{"partitions": [{"topic": "foo", "partition": 1}, {"topic": "bar", "partition": 0}]}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            BTreeSet::from([("bar".to_string(), 0), ("foo".to_string(), 1)])
        );
        let duplicate = parse_json(
            r#"{"partitions": [{"topic": "foo", "partition": 1}, {"topic": "foo", "partition": 1}]}"#,
        );
        assert_eq!(
            duplicate.unwrap_err().0,
            "Replica election data contains duplicate partitions: foo-1"
        );
        assert!(parse_json(r#"{"partition": []}"#)
            .unwrap_err()
            .0
            .contains("missing \"partitions\""));
        assert!(parse_json(r#"{"partitions": [{"topic": "foo"}]}"#).is_err());
        assert!(parse_json("not json").is_err());
    }
}
