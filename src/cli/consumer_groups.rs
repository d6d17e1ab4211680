//! `corelog consumer-groups` (kafka-consumer-groups.sh): `--list` the groups,
//! or `--describe --group G` one group's committed offsets, log end offsets,
//! lag and owning member per partition, in Kafka's columns.
//!
//! A Kafka client: FindCoordinator, DescribeGroups (the consumer protocol's
//! assignment bytes map partitions to members), OffsetFetch and ListOffsets.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolAssignment, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::client::{fail, CliResult, KafkaClient};

#[derive(clap::Args)]
pub struct ConsumerGroupsArgs {
    /// The broker(s) to connect to, host:port[,host:port...].
    #[arg(long = "bootstrap-server", required = true)]
    bootstrap_server: String,
    /// List all consumer groups.
    #[arg(long, conflicts_with = "describe")]
    list: bool,
    /// Describe a group: committed offset, log end offset and lag per partition.
    #[arg(long, requires = "group")]
    describe: bool,
    /// The group to describe.
    #[arg(long)]
    group: Option<String>,
}

pub fn run(args: ConsumerGroupsArgs) -> CliResult<()> {
    let mut client = KafkaClient::connect(&args.bootstrap_server)?;
    if args.list {
        return list(&mut client);
    }
    match (args.describe, args.group) {
        (true, Some(group)) => describe(&mut client, &group),
        _ => fail("one of --list or --describe --group G is required"),
    }
}

fn error_text(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}: {e}"),
        None => format!("error code {code}"),
    }
}

fn list(client: &mut KafkaClient) -> CliResult<()> {
    let version = client.version(ApiKey::ListGroups, 4)?;
    let response = client.call(version, &ListGroupsRequest::default())?;
    if response.error_code != 0 {
        return fail(format!(
            "ListGroups failed: {}",
            error_text(response.error_code)
        ));
    }
    let mut names: Vec<String> = response
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect();
    names.sort();
    for name in names {
        println!("{name}");
    }
    Ok(())
}

struct Owner {
    member_id: String,
    host: String,
    client_id: String,
}

fn describe(client: &mut KafkaClient, group: &str) -> CliResult<()> {
    find_coordinator(client, group)?;
    let version = client.version(ApiKey::DescribeGroups, 5)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
    let response = client.call(version, &request)?;
    let Some(described) = response.groups.into_iter().next() else {
        return fail("DescribeGroups answered no group");
    };
    if described.error_code == ResponseError::GroupIdNotFound.code()
        || (described.error_code == 0 && described.group_state.as_str() == "Dead")
    {
        return fail(format!("Consumer group '{group}' does not exist."));
    }
    if described.error_code != 0 {
        return fail(format!(
            "cannot describe group '{group}': {}",
            error_text(described.error_code)
        ));
    }
    let mut owners: BTreeMap<(String, i32), Owner> = BTreeMap::new();
    if described.protocol_type.as_str() == "consumer" {
        for m in &described.members {
            for (topic, partition) in decode_assignment(&m.member_assignment) {
                owners.insert(
                    (topic, partition),
                    Owner {
                        member_id: m.member_id.to_string(),
                        host: or_dash(m.client_host.as_str()),
                        client_id: or_dash(m.client_id.as_str()),
                    },
                );
            }
        }
    }
    let committed = committed_offsets(client, group)?;
    let partitions: BTreeSet<(String, i32)> = committed
        .keys()
        .cloned()
        .chain(owners.keys().cloned())
        .collect();
    let ends = log_end_offsets(client, &partitions)?;
    if described.members.is_empty() {
        println!("\nConsumer group '{group}' has no active members.");
    }
    let mut rows = vec![[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    .map(String::from)];
    let dash = || "-".to_string();
    for key in &partitions {
        let current = committed.get(key).copied().filter(|o| *o >= 0);
        let end = ends.get(key).copied().filter(|o| *o >= 0);
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        let owner = owners.get(key);
        rows.push([
            group.to_string(),
            key.0.clone(),
            key.1.to_string(),
            current.map_or_else(dash, |v| v.to_string()),
            end.map_or_else(dash, |v| v.to_string()),
            lag.map_or_else(dash, |v| v.to_string()),
            owner.map_or_else(dash, |o| o.member_id.clone()),
            owner.map_or_else(dash, |o| o.host.clone()),
            owner.map_or_else(dash, |o| o.client_id.clone()),
        ]);
    }
    print_table(&rows);
    Ok(())
}

fn find_coordinator(client: &mut KafkaClient, group: &str) -> CliResult<()> {
    let version = client.version(ApiKey::FindCoordinator, 3)?;
    let request = FindCoordinatorRequest::default().with_key(str_bytes(group));
    let response = client.call(version, &request)?;
    if response.error_code != 0 {
        return fail(format!(
            "cannot find the coordinator of group '{group}': {}",
            error_text(response.error_code)
        ));
    }
    Ok(())
}

/// Every committed offset of the group (OffsetFetch with null topics).
fn committed_offsets(
    client: &mut KafkaClient,
    group: &str,
) -> CliResult<BTreeMap<(String, i32), i64>> {
    let version = client.version(ApiKey::OffsetFetch, 7)?;
    if version < 2 {
        return fail("the broker's OffsetFetch cannot list all offsets of a group");
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_topics(None);
    let response = client.call(version, &request)?;
    if response.error_code != 0 {
        return fail(format!(
            "cannot fetch the offsets of group '{group}': {}",
            error_text(response.error_code)
        ));
    }
    let mut out = BTreeMap::new();
    for t in response.topics {
        for p in t.partitions {
            if p.error_code == 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

fn log_end_offsets(
    client: &mut KafkaClient,
    partitions: &BTreeSet<(String, i32)>,
) -> CliResult<BTreeMap<(String, i32), i64>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in partitions {
        by_topic.entry(topic).or_default().push(*p);
    }
    let version = client.version(ApiKey::ListOffsets, 7)?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = client.call(version, &request)?;
    let mut out = BTreeMap::new();
    for t in response.topics {
        for p in t.partitions {
            if p.error_code == 0 {
                out.insert((t.name.0.to_string(), p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}

/// The partitions in a consumer protocol assignment (version prefix, then
/// ConsumerProtocolAssignment); nothing if it does not decode.
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<(String, i32)> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(a) => a
            .assigned_partitions
            .into_iter()
            .flat_map(|tp| {
                let topic = tp.topic.0.to_string();
                tp.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn print_table(rows: &[[String; 9]]) {
    let mut widths = [0usize; 9];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    println!();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join(" ").trim_end());
    }
}

/// An empty cell would shift the columns: Kafka prints "-" for unknowns.
fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
