//! `corelog topics`: Kafka's `kafka-topics.sh`. Create, list, describe,
//! delete and add partitions over the wire (Metadata, CreateTopics,
//! DeleteTopics, CreatePartitions, and DescribeConfigs for the `Configs:`
//! column), with Kafka's output and its one-line errors
//! (`Error while executing topic command : ...`).
//!
//! `--describe` takes Kafka's report filters: `--under-replicated-partitions`
//! (fewer in-sync replicas than replicas), `--unavailable-partitions` (no
//! leader, or a leader the cluster does not list), `--under-min-isr-partitions`
//! (no leader, or fewer in-sync replicas than the topic's
//! `min.insync.replicas`), `--at-min-isr-partitions` (exactly that many);
//! with any of them only the matching partition lines are printed, no topic
//! lines. `--topics-with-overrides` prints only the topic lines of topics
//! with configs that are not defaults.
//!
//! `--topic` names one topic exactly; Kafka's tool also takes a regular
//! expression there, which this one does not.

use std::process::ExitCode;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_response::{
    MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};

use super::client::{fail, CliResult};
use super::configs::{describe_resource, RESOURCE_TOPIC, SOURCE_DEFAULT};
use super::output::{error_text, parse_key_values, str_bytes, topic_name, Cluster};

/// How long the broker may take to create, delete or grow a topic.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TOPIC_ALREADY_EXISTS: i16 = 36;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true)
    .args(["create", "list", "describe", "delete", "alter"])))]
pub struct TopicsArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    /// Create a new topic.
    #[arg(long, requires = "topic")]
    create: bool,
    /// List all topics.
    #[arg(long)]
    list: bool,
    /// Describe the topic (all topics when --topic is omitted).
    #[arg(long)]
    describe: bool,
    /// Delete the topic.
    #[arg(long, requires = "topic")]
    delete: bool,
    /// Raise the topic's partition count to --partitions.
    #[arg(long, requires_all = ["topic", "partitions"])]
    alter: bool,
    /// The topic to create, describe, alter or delete.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Partitions of a new topic, or the new count with --alter (the broker's default when omitted).
    #[arg(long, value_name = "N")]
    partitions: Option<i32>,
    /// Replicas of each partition of a new topic (the broker's default when omitted).
    #[arg(long, value_name = "N")]
    replication_factor: Option<i16>,
    /// A topic config for --create, key=value. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// With --create: succeed if the topic already exists.
    #[arg(long)]
    if_not_exists: bool,
    /// With --alter, --delete or --describe: succeed if the topic does not exist.
    #[arg(long)]
    if_exists: bool,
    /// Leave internal topics out of --list and --describe.
    #[arg(long)]
    exclude_internal: bool,
    /// With --describe: only partitions with fewer in-sync replicas than replicas.
    #[arg(long, requires = "describe")]
    under_replicated_partitions: bool,
    /// With --describe: only partitions whose leader is not available.
    #[arg(long, requires = "describe")]
    unavailable_partitions: bool,
    /// With --describe: only partitions with fewer in-sync replicas than min.insync.replicas.
    #[arg(long, requires = "describe")]
    under_min_isr_partitions: bool,
    /// With --describe: only partitions with exactly min.insync.replicas in-sync replicas.
    #[arg(long, requires = "describe")]
    at_min_isr_partitions: bool,
    /// With --describe: only topics that have configs other than the defaults.
    #[arg(long, requires = "describe", conflicts_with_all = [
        "under_replicated_partitions",
        "unavailable_partitions",
        "under_min_isr_partitions",
        "at_min_isr_partitions",
    ])]
    topics_with_overrides: bool,
}

impl TopicsArgs {
    /// Whether a partition filter is on: then only matching partition
    /// lines are printed.
    fn filters_partitions(&self) -> bool {
        self.under_replicated_partitions
            || self.unavailable_partitions
            || self.under_min_isr_partitions
            || self.at_min_isr_partitions
    }

    /// Whether the partition is one a filter asks for.
    fn wants(&self, p: &MetadataResponsePartition, min_isr: usize, live: &[i32]) -> bool {
        let has_leader = p.leader_id.0 >= 0;
        let isr = p.isr_nodes.len();
        (self.under_replicated_partitions && isr < p.replica_nodes.len())
            || (self.unavailable_partitions && !(has_leader && live.contains(&p.leader_id.0)))
            || (self.under_min_isr_partitions && (!has_leader || isr < min_isr))
            || (self.at_min_isr_partitions && isr == min_isr)
    }
}

/// Runs the command and prints a failure the way Kafka's tool does.
pub fn main(args: TopicsArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error while executing topic command : {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(args: TopicsArgs) -> CliResult<()> {
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    if args.create {
        create(&mut cluster, &args)
    } else if args.list {
        list(&mut cluster, &args)
    } else if args.describe {
        describe(&mut cluster, &args)
    } else if args.delete {
        delete(&mut cluster, &args)
    } else {
        alter(&mut cluster, &args)
    }
}

fn topic_arg(args: &TopicsArgs) -> &str {
    args.topic.as_deref().expect("clap requires --topic here")
}

fn create(cluster: &mut Cluster, args: &TopicsArgs) -> CliResult<()> {
    let topic = topic_arg(args);
    let configs = parse_key_values(&args.config, "--config")?
        .into_iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(str_bytes(&k))
                .with_value(Some(str_bytes(&v)))
        })
        .collect();
    let client = &mut cluster.bootstrap;
    let version = client.version(ApiKey::CreateTopics, 7)?;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(args.partitions.unwrap_or(-1))
            .with_replication_factor(args.replication_factor.unwrap_or(-1))
            .with_configs(configs)])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = client.call(version, &request)?;
    let Some(result) = response.topics.first() else {
        return fail("CreateTopics returned no result");
    };
    if result.error_code == TOPIC_ALREADY_EXISTS && args.if_not_exists {
        return Ok(());
    }
    if result.error_code != 0 {
        return fail(error_text(result.error_code, result.error_message.as_ref()));
    }
    if topic.contains('.') || topic.contains('_') {
        println!("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.");
    }
    println!("Created topic {topic}.");
    Ok(())
}

/// Metadata for `--topic` (or every topic), sorted by name, with internal
/// topics left out on request. A named topic that does not exist is an
/// error unless `--if-exists`.
fn topics_of(cluster: &mut Cluster, args: &TopicsArgs) -> CliResult<Vec<MetadataResponseTopic>> {
    let named = args.topic.as_ref().map(|t| vec![t.clone()]);
    let metadata = cluster.metadata(named.as_deref())?;
    let mut topics = Vec::new();
    for topic in metadata.topics {
        match topic.error_code {
            0 => {}
            UNKNOWN_TOPIC_OR_PARTITION => continue,
            code => {
                let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
                return fail(format!("Topic '{name}': {}", error_text(code, None)));
            }
        }
        if args.exclude_internal && topic.is_internal {
            continue;
        }
        topics.push(topic);
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(name) = &args.topic {
        if topics.is_empty() && !args.if_exists {
            return fail(format!("Topic '{name}' does not exist as expected"));
        }
    }
    Ok(topics)
}

fn list(cluster: &mut Cluster, args: &TopicsArgs) -> CliResult<()> {
    for topic in topics_of(cluster, args)? {
        if let Some(name) = &topic.name {
            println!("{}", name.0.as_str());
        }
    }
    Ok(())
}

fn describe(cluster: &mut Cluster, args: &TopicsArgs) -> CliResult<()> {
    let topics = topics_of(cluster, args)?;
    // The brokers the last Metadata listed: the live ones.
    let live: Vec<i32> = cluster.nodes().map(|(id, _, _)| id).collect();
    let with_configs = cluster.bootstrap.served(ApiKey::DescribeConfigs).is_some();
    for topic in &topics {
        let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
        let configs = if with_configs {
            topic_configs(cluster, name)?
        } else {
            TopicConfigs::default()
        };
        let mut partitions: Vec<&MetadataResponsePartition> = topic.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition_index);
        // Partition filters print partitions only; --topics-with-overrides
        // only the topics that have overrides.
        let skip_header = args.filters_partitions()
            || (args.topics_with_overrides && configs.overrides.is_empty());
        if !skip_header {
            print!("{}", header_text(topic, &configs.overrides));
        }
        if args.topics_with_overrides {
            continue;
        }
        for p in partitions {
            if !args.filters_partitions() || args.wants(p, configs.min_isr, &live) {
                print!("{}", partition_text(name, p));
            }
        }
    }
    Ok(())
}

/// What `--describe` needs of a topic's configs.
struct TopicConfigs {
    /// `k=v,k=v` of the configs that are not Kafka defaults.
    overrides: String,
    /// `min.insync.replicas` in effect.
    min_isr: usize,
}

impl Default for TopicConfigs {
    fn default() -> Self {
        TopicConfigs {
            overrides: String::new(),
            min_isr: 1,
        }
    }
}

fn topic_configs(cluster: &mut Cluster, topic: &str) -> CliResult<TopicConfigs> {
    let result = describe_resource(&mut cluster.bootstrap, RESOURCE_TOPIC, topic)?;
    let overrides: Vec<String> = result
        .configs
        .iter()
        .filter(|c| c.config_source != SOURCE_DEFAULT)
        .map(|c| {
            let value = if c.is_sensitive {
                "null"
            } else {
                c.value.as_ref().map_or("null", |v| v.as_str())
            };
            format!("{}={}", c.name.as_str(), value)
        })
        .collect();
    let min_isr = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == "min.insync.replicas")
        .and_then(|c| c.value.as_ref())
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(1);
    Ok(TopicConfigs {
        overrides: overrides.join(","),
        min_isr,
    })
}

/// The topic line of `--describe`.
fn header_text(topic: &MetadataResponseTopic, configs: &str) -> String {
    let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
    let replication_factor = topic
        .partitions
        .iter()
        .min_by_key(|p| p.partition_index)
        .map_or(0, |p| p.replica_nodes.len());
    let mut out = format!("Topic: {name}");
    if !topic.topic_id.is_nil() {
        out.push_str(&format!("\tTopicId: {}", kafka_uuid(&topic.topic_id)));
    }
    out.push_str(&format!(
        "\tPartitionCount: {}\tReplicationFactor: {replication_factor}\tConfigs: {configs}\n",
        topic.partitions.len()
    ));
    out
}

/// A partition line of `--describe`.
fn partition_text(topic: &str, p: &MetadataResponsePartition) -> String {
    let ids = |nodes: &[kafka_protocol::messages::BrokerId]| {
        nodes
            .iter()
            .map(|n| n.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let leader = if p.leader_id.0 < 0 {
        "none".to_string()
    } else {
        p.leader_id.0.to_string()
    };
    format!(
        "\tTopic: {topic}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}\n",
        p.partition_index,
        ids(&p.replica_nodes),
        ids(&p.isr_nodes)
    )
}

/// Kafka prints a topic id as URL-safe base64 without padding (22 chars).
pub fn kafka_uuid(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let mut word = [0u8; 3];
        word[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(word[0]) << 16) | (u32::from(word[1]) << 8) | u32::from(word[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn delete(cluster: &mut Cluster, args: &TopicsArgs) -> CliResult<()> {
    if topics_of(cluster, args)?.is_empty() {
        return Ok(()); // --if-exists and absent
    }
    let topic = topic_arg(args);
    let client = &mut cluster.bootstrap;
    let version = client.version(ApiKey::DeleteTopics, 6)?;
    let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
    if version >= 6 {
        request.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(topic)))];
    } else {
        request.topic_names = vec![topic_name(topic)];
    }
    let response = client.call(version, &request)?;
    for result in &response.responses {
        if result.error_code == UNKNOWN_TOPIC_OR_PARTITION && args.if_exists {
            continue;
        }
        if result.error_code != 0 {
            return fail(error_text(result.error_code, result.error_message.as_ref()));
        }
    }
    Ok(())
}

fn alter(cluster: &mut Cluster, args: &TopicsArgs) -> CliResult<()> {
    if topics_of(cluster, args)?.is_empty() {
        return Ok(()); // --if-exists and absent
    }
    let topic = topic_arg(args);
    let count = args
        .partitions
        .expect("clap requires --partitions with --alter");
    let client = &mut cluster.bootstrap;
    let version = client.version(ApiKey::CreatePartitions, 3)?;
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(topic))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = client.call(version, &request)?;
    for result in &response.results {
        if result.error_code != 0 {
            return fail(error_text(result.error_code, result.error_message.as_ref()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_as_kafka_does() {
        // Kafka's Uuid.toString of (mostSigBits=0, leastSigBits=1).
        let id = uuid::Uuid::from_u128(1);
        assert_eq!(kafka_uuid(&id), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(kafka_uuid(&uuid::Uuid::from_u128(u128::MAX)).len(), 22);
    }
}
