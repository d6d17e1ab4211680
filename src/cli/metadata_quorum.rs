//! `corelog metadata-quorum`: Kafka's `kafka-metadata-quorum.sh describe`.
//! `--status` prints the controller quorum's summary (cluster id, leader,
//! epoch, high watermark, the slowest voter's lag, voters and observers);
//! `--replication` prints one row per voter and observer with its log end
//! offset, lag behind the leader and fetch times. Both come from one
//! DescribeQuorum request (any broker answers it for the active controller)
//! plus Metadata for the cluster id; the output follows Kafka 3.9's
//! `MetadataQuorumCommand`.

use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::{self, ReplicaState};
use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest};

use super::client::{fail, CliResult};
use super::output::{error_text, topic_name, Cluster};
use super::topics::kafka_uuid;

/// KRaft's metadata log, the one partition DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";

#[derive(clap::Args)]
pub struct MetadataQuorumArgs {
    /// A broker to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    #[command(subcommand)]
    command: QuorumCommand,
}

#[derive(clap::Subcommand)]
enum QuorumCommand {
    /// Describe the metadata quorum.
    Describe(DescribeArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["status", "replication"])))]
struct DescribeArgs {
    /// The quorum's leader, epoch, high watermark, lag, voters and observers.
    #[arg(long)]
    status: bool,
    /// One row per voter and observer: log end offset, lag and fetch times.
    #[arg(long)]
    replication: bool,
    /// With --replication: fetch times as "N ms ago".
    #[arg(long)]
    human_readable: bool,
}

/// The quorum as one DescribeQuorum response describes it.
struct Quorum {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<ReplicaState>,
    observers: Vec<ReplicaState>,
    /// `CONTROLLER://host:port` of each voter (DescribeQuorum v2 and later).
    endpoints: Vec<(i32, Vec<String>)>,
}

impl Quorum {
    fn leader(&self) -> CliResult<&ReplicaState> {
        match self
            .voters
            .iter()
            .find(|v| v.replica_id.0 == self.leader_id)
        {
            Some(leader) => Ok(leader),
            None => fail(format!(
                "the quorum has no leader among its voters (leader id {})",
                self.leader_id
            )),
        }
    }
}

pub fn run(args: MetadataQuorumArgs) -> CliResult<()> {
    let QuorumCommand::Describe(describe) = args.command;
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    let quorum = describe_quorum(&mut cluster)?;
    if describe.status {
        let metadata = cluster.metadata(Some(&[]))?;
        let cluster_id = metadata
            .cluster_id
            .map(|id| id.to_string())
            .unwrap_or_else(|| "null".into());
        print_status(&cluster_id, &quorum)
    } else {
        print_replication(&quorum, describe.human_readable)
    }
}

fn describe_quorum(cluster: &mut Cluster) -> CliResult<Quorum> {
    let client = &mut cluster.bootstrap;
    let version = client.version(ApiKey::DescribeQuorum, 2)?;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name(METADATA_TOPIC))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = client.call(version, &request)?;
    if response.error_code != 0 {
        return fail(error_text(
            response.error_code,
            response.error_message.as_ref(),
        ));
    }
    let Some(partition) = response
        .topics
        .iter()
        .filter(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == 0)
    else {
        return fail("the DescribeQuorum response has no __cluster_metadata-0");
    };
    if partition.error_code != 0 {
        return fail(error_text(
            partition.error_code,
            partition.error_message.as_ref(),
        ));
    }
    Ok(Quorum {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters.clone(),
        observers: partition.observers.clone(),
        endpoints: response.nodes.iter().map(endpoints).collect(),
    })
}

fn endpoints(node: &describe_quorum_response::Node) -> (i32, Vec<String>) {
    let listeners = node
        .listeners
        .iter()
        .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
        .collect();
    (node.node_id.0, listeners)
}

fn print_status(cluster_id: &str, quorum: &Quorum) -> CliResult<()> {
    let leader = quorum.leader()?;
    let slowest = quorum
        .voters
        .iter()
        .min_by_key(|v| v.log_end_offset)
        .unwrap_or(leader);
    let lag = leader.log_end_offset - slowest.log_end_offset;
    // As Kafka: 0 when the leader is the slowest, -1 when a time is unknown.
    let lag_ms = if slowest.replica_id == leader.replica_id {
        0
    } else if leader.last_caught_up_timestamp >= 0 && slowest.last_caught_up_timestamp >= 0 {
        leader.last_caught_up_timestamp - slowest.last_caught_up_timestamp
    } else {
        -1
    };
    println!("ClusterId:              {cluster_id}");
    println!("LeaderId:               {}", quorum.leader_id);
    println!("LeaderEpoch:            {}", quorum.leader_epoch);
    println!("HighWatermark:          {}", quorum.high_watermark);
    println!("MaxFollowerLag:         {lag}");
    println!("MaxFollowerLagTimeMs:   {lag_ms}");
    println!(
        "CurrentVoters:          {}",
        replicas_text(quorum, &quorum.voters)
    );
    println!(
        "CurrentObservers:       {}",
        replicas_text(quorum, &quorum.observers)
    );
    Ok(())
}

/// `[{"id": 1, "directoryId": "...", "endpoints": ["CONTROLLER://h:p"]}, ...]`
fn replicas_text(quorum: &Quorum, replicas: &[ReplicaState]) -> String {
    let items: Vec<String> = replicas
        .iter()
        .map(|r| {
            let id = r.replica_id.0;
            let mut text = format!(
                "{{\"id\": {id}, \"directoryId\": \"{}\"",
                kafka_uuid(&r.replica_directory_id)
            );
            let endpoints = quorum
                .endpoints
                .iter()
                .find(|(node, _)| *node == id)
                .map(|(_, e)| e.as_slice())
                .unwrap_or_default();
            if !endpoints.is_empty() {
                let quoted: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
                text.push_str(&format!(", \"endpoints\": [{}]", quoted.join(", ")));
            }
            text.push('}');
            text
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn print_replication(quorum: &Quorum, human_readable: bool) -> CliResult<()> {
    let leader = quorum.leader()?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let time = |ms: i64| {
        if ms < 0 {
            "-1".to_string()
        } else if human_readable {
            format!("{} ms ago", (now_ms - ms).max(0))
        } else {
            ms.to_string()
        }
    };
    let row = |r: &ReplicaState, status: &str| {
        vec![
            r.replica_id.0.to_string(),
            kafka_uuid(&r.replica_directory_id),
            r.log_end_offset.to_string(),
            (leader.log_end_offset - r.log_end_offset).to_string(),
            time(r.last_fetch_timestamp),
            time(r.last_caught_up_timestamp),
            status.to_string(),
        ]
    };
    let mut rows = vec![row(leader, "Leader")];
    for voter in quorum
        .voters
        .iter()
        .filter(|v| v.replica_id != leader.replica_id)
    {
        rows.push(row(voter, "Follower"));
    }
    for observer in &quorum.observers {
        rows.push(row(observer, "Observer"));
    }
    let headers = [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ];
    print_table(&headers, &rows);
    Ok(())
}

/// Left-aligned columns as wide as their widest cell, as Kafka's
/// `ToolsUtils.prettyPrintTable`.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
