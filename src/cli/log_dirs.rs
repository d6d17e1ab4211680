//! `corelog log-dirs`: Kafka's `kafka-log-dirs.sh --describe`. Sends
//! DescribeLogDirs for all partitions to each broker (all of them, or
//! `--broker-list`), keeps the `--topic-list` topics, and prints Kafka's JSON:
//! `{"brokers":[{"broker":1,"logDirs":[{"error":null,"logDir":"/d",
//! "partitions":[{"isFuture":false,"offsetLag":0,"partition":"t-0","size":0}]}]}],"version":1}`.

use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest};
use serde_json::{json, Value};

use super::client::{fail, CliResult};
use super::output::{error_name, Cluster};

#[derive(clap::Args)]
pub struct LogDirsArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    /// Describe the log directories (the only action).
    #[arg(long, required = true)]
    describe: bool,
    /// Only these topics: t1,t2 (all when omitted).
    #[arg(long, value_name = "TOPICS")]
    topic_list: Option<String>,
    /// Only these brokers: 1,2 (all when omitted).
    #[arg(long, value_name = "IDS")]
    broker_list: Option<String>,
}

pub fn run(args: LogDirsArgs) -> CliResult<()> {
    let topics: Vec<String> = split_list(args.topic_list.as_deref());
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    cluster.metadata(Some(&[]))?;
    let brokers: Vec<i32> = match args.broker_list.as_deref() {
        Some(list) => split_list(Some(list))
            .iter()
            .map(|id| {
                id.parse::<i32>()
                    .or_else(|_| fail(format!("--broker-list: {id:?} is not a broker id")))
            })
            .collect::<CliResult<_>>()?,
        None => cluster.nodes().map(|(id, _, _)| id).collect(),
    };
    println!("Querying brokers for log directories information");
    let mut described = Vec::new();
    for &broker in &brokers {
        described.push(describe_broker(&mut cluster, broker, &topics)?);
    }
    let ids: Vec<String> = brokers.iter().map(i32::to_string).collect();
    println!(
        "Received log directory information from brokers {}",
        ids.join(",")
    );
    println!("{}", json!({ "version": 1, "brokers": described }));
    Ok(())
}

fn split_list(list: Option<&str>) -> Vec<String> {
    list.map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// One broker's entry of the JSON: every log dir with the partitions of the
/// wanted topics (Kafka asks for all partitions and filters client-side).
fn describe_broker(cluster: &mut Cluster, broker: i32, topics: &[String]) -> CliResult<Value> {
    let client = cluster.node(broker)?;
    let version = client.version(ApiKey::DescribeLogDirs, 4)?;
    let response = client.call(
        version,
        &DescribeLogDirsRequest::default().with_topics(None),
    )?;
    if response.error_code != 0 {
        return fail(format!(
            "DescribeLogDirs on broker {broker}: {}",
            error_name(response.error_code)
        ));
    }
    let mut dirs = Vec::new();
    for dir in &response.results {
        let mut partitions = Vec::new();
        for topic in &dir.topics {
            let name = topic.name.0.as_str();
            if !topics.is_empty() && !topics.iter().any(|t| t == name) {
                continue;
            }
            for p in &topic.partitions {
                partitions.push(json!({
                    "partition": format!("{name}-{}", p.partition_index),
                    "size": p.partition_size,
                    "offsetLag": p.offset_lag,
                    "isFuture": p.is_future_key,
                }));
            }
        }
        let error = (dir.error_code != 0).then(|| error_name(dir.error_code));
        dirs.push(json!({
            "logDir": dir.log_dir.as_str(),
            "error": error,
            "partitions": partitions,
        }));
    }
    Ok(json!({ "broker": broker, "logDirs": dirs }))
}
