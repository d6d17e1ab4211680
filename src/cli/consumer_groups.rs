//! `corelog consumer-groups` (kafka-consumer-groups.sh): `--list` the groups,
//! or `--describe --group G` one group's committed offsets, log end offsets,
//! lag and owning member per partition, in Kafka's columns.
//!
//! `--reset-offsets --group G --topic T --to-earliest|--to-latest|--to-offset N|--to-datetime ISO
//! [--execute]` moves an inactive group's committed offsets; `--delete --group G` deletes it.
//!
//! In a cluster, group requests go to the group's coordinator (from
//! FindCoordinator), ListOffsets to each partition's leader, and `--list`
//! asks every broker, as Kafka's admin client does.
//!
//! A Kafka client: FindCoordinator, ConsumerGroupDescribe for KIP-848
//! groups (falling back, as Kafka's admin client does, to DescribeGroups,
//! whose consumer protocol assignment bytes map partitions to members),
//! OffsetFetch, ListOffsets, OffsetCommit and DeleteGroups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    consumer_group_describe_response, ApiKey, ConsumerGroupDescribeRequest,
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::client::{fail, CliError, CliResult, KafkaClient};
use super::output::{find_coordinator, Cluster};

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
    /// The group to describe, reset or delete.
    #[arg(long)]
    group: Option<String>,
    /// Reset the group's committed offsets (the group must be inactive);
    /// shows the plan unless --execute is given.
    #[arg(long = "reset-offsets", requires = "group")]
    reset_offsets: bool,
    /// With --reset-offsets: the topic, or topic:partition[,partition...].
    #[arg(long)]
    topic: Option<String>,
    /// Reset to the earliest offset.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// Reset to the latest offset.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// Reset to this offset.
    #[arg(long = "to-offset")]
    to_offset: Option<i64>,
    /// Reset to the first offset at or after this time (YYYY-MM-DDTHH:mm:SS[.sss], UTC).
    #[arg(long = "to-datetime")]
    to_datetime: Option<String>,
    /// Carry out the reset (without it, only print the new offsets).
    #[arg(long)]
    execute: bool,
    /// Print the new offsets without changing anything (the default).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Delete the group and its committed offsets (it must be empty).
    #[arg(long, requires = "group")]
    delete: bool,
}

pub fn run(args: ConsumerGroupsArgs) -> CliResult<()> {
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    if args.list {
        return list(&mut cluster);
    }
    let Some(group) = args.group.clone() else {
        return fail(
            "one of --list, or --group G with --describe, --reset-offsets or --delete, is required",
        );
    };
    if !(args.describe || args.reset_offsets || args.delete) {
        return fail("--group needs one of --describe, --reset-offsets or --delete");
    }
    let mut coordinator = find_coordinator(&mut cluster.bootstrap, &group)?;
    if args.describe {
        describe(&mut coordinator, &mut cluster, &group)
    } else if args.reset_offsets {
        reset_offsets(&mut coordinator, &mut cluster, &group, &args)
    } else {
        delete_group(&mut coordinator, &group)
    }
}

/// Where --reset-offsets moves each partition.
enum ResetTo {
    /// A ListOffsets timestamp: -2 earliest, -1 latest, or a time in ms.
    Timestamp(i64),
    Offset(i64),
}

fn reset_target(args: &ConsumerGroupsArgs) -> CliResult<ResetTo> {
    let chosen = [
        args.to_earliest,
        args.to_latest,
        args.to_offset.is_some(),
        args.to_datetime.is_some(),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    if chosen != 1 {
        return fail("--reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime");
    }
    Ok(if args.to_earliest {
        ResetTo::Timestamp(-2)
    } else if args.to_latest {
        ResetTo::Timestamp(-1)
    } else if let Some(offset) = args.to_offset {
        ResetTo::Offset(offset)
    } else {
        ResetTo::Timestamp(parse_datetime_ms(
            args.to_datetime.as_deref().unwrap_or_default(),
        )?)
    })
}

/// `YYYY-MM-DDTHH:mm:SS[.sss]` in UTC to epoch milliseconds.
fn parse_datetime_ms(text: &str) -> CliResult<i64> {
    let bad = || {
        CliError(format!(
            "cannot parse datetime {text:?}: expected YYYY-MM-DDTHH:mm:SS[.sss]"
        ))
    };
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => (
            hms,
            format!("{frac:0<3}")[..3]
                .parse::<i64>()
                .map_err(|_| bad())?,
        ),
        None => (time, 0),
    };
    let t: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if d.len() != 3 || t.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis)
}

/// The partitions named by `--topic T` (all of them) or `--topic T:0,2`.
fn reset_partitions(cluster: &mut Cluster, topic_arg: &str) -> CliResult<BTreeSet<(String, i32)>> {
    let (topic, listed) = match topic_arg.split_once(':') {
        Some((t, ps)) => (t, Some(ps)),
        None => (topic_arg, None),
    };
    if let Some(ps) = listed {
        return ps
            .split(',')
            .map(|p| {
                p.trim()
                    .parse()
                    .map(|p| (topic.to_string(), p))
                    .map_err(|_| CliError(format!("bad partition {p:?}")))
            })
            .collect();
    }
    let response = cluster.metadata(Some(&[topic.to_string()]))?;
    let t = response
        .topics
        .first()
        .ok_or_else(|| CliError("empty Metadata response".into()))?;
    if t.error_code != 0 {
        return fail(format!("topic '{topic}': {}", error_text(t.error_code)));
    }
    Ok(t.partitions
        .iter()
        .map(|p| (topic.to_string(), p.partition_index))
        .collect())
}

/// The group if it uses the KIP-848 protocol (ConsumerGroupDescribe knows
/// it); `None` for a classic group or a broker without the API.
fn consumer_protocol_group(
    client: &mut KafkaClient,
    group: &str,
) -> CliResult<Option<consumer_group_describe_response::DescribedGroup>> {
    if client.served(ApiKey::ConsumerGroupDescribe).is_none() {
        return Ok(None);
    }
    let version = client.version(ApiKey::ConsumerGroupDescribe, 1)?;
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(str_bytes(group))]);
    let response = client.call(version, &request)?;
    let Some(described) = response.groups.into_iter().next() else {
        return fail("ConsumerGroupDescribe answered no group");
    };
    match described.error_code {
        0 => Ok(Some(described)),
        code if code == ResponseError::GroupIdNotFound.code() => Ok(None),
        code => fail(format!(
            "cannot describe group '{group}': {}",
            error_text(code)
        )),
    }
}

fn group_state(client: &mut KafkaClient, group: &str) -> CliResult<String> {
    if let Some(g) = consumer_protocol_group(client, group)? {
        return Ok(g.group_state.to_string());
    }
    let version = client.version(ApiKey::DescribeGroups, 5)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
    let response = client.call(version, &request)?;
    let g = response
        .groups
        .first()
        .ok_or_else(|| CliError("empty DescribeGroups response".into()))?;
    if g.error_code != 0 {
        return fail(format!(
            "cannot describe group '{group}': {}",
            error_text(g.error_code)
        ));
    }
    Ok(g.group_state.to_string())
}

fn reset_offsets(
    client: &mut KafkaClient,
    cluster: &mut Cluster,
    group: &str,
    args: &ConsumerGroupsArgs,
) -> CliResult<()> {
    let target = reset_target(args)?;
    let topic = args
        .topic
        .as_deref()
        .ok_or_else(|| CliError("--reset-offsets needs --topic".into()))?;
    if args.execute && args.dry_run {
        return fail("--execute and --dry-run exclude each other");
    }
    let state = group_state(client, group)?;
    if state != "Empty" && state != "Dead" {
        return fail(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}."
        ));
    }
    let partitions = reset_partitions(cluster, topic)?;
    let new_offsets = match target {
        ResetTo::Timestamp(ts) => {
            let found = cluster.list_offsets_found(&partitions, ts)?;
            let latest = cluster.list_offsets_found(&partitions, -1)?;
            // A time after the last record resets to the end, as Kafka does.
            partitions
                .iter()
                .map(|p| {
                    let offset = found
                        .get(p)
                        .copied()
                        .filter(|o| *o >= 0)
                        .or_else(|| latest.get(p).copied());
                    offset
                        .map(|o| (p.clone(), o))
                        .ok_or_else(|| CliError(format!("no offset for {}-{}", p.0, p.1)))
                })
                .collect::<CliResult<BTreeMap<_, _>>>()?
        }
        ResetTo::Offset(offset) => {
            let earliest = cluster.list_offsets_found(&partitions, -2)?;
            let latest = cluster.list_offsets_found(&partitions, -1)?;
            // Kafka clamps an out-of-range target into [earliest, latest].
            partitions
                .iter()
                .map(|p| {
                    let low = earliest.get(p).copied().unwrap_or(0);
                    let high = latest.get(p).copied().unwrap_or(offset);
                    (p.clone(), offset.clamp(low, high.max(low)))
                })
                .collect()
        }
    };
    if args.execute {
        commit_offsets(client, group, &new_offsets)?;
    } else if !args.dry_run {
        // Kafka's words: the plan below was not carried out.
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. \
             Add --dry-run to say that a plan is all you want, or --execute to reset \
             the offsets."
        );
    }
    println!();
    println!(
        "{:<30} {:<30} {:<10} {:<15}",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
    );
    for ((topic, partition), offset) in &new_offsets {
        println!("{group:<30} {topic:<30} {partition:<10} {offset:<15}");
    }
    Ok(())
}

fn commit_offsets(
    client: &mut KafkaClient,
    group: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> CliResult<()> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        by_topic.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset),
        );
    }
    let version = client.version(ApiKey::OffsetCommit, 8)?;
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(str_bytes(""))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let response = client.call(version, &request)?;
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return fail(format!(
                    "cannot commit {}-{}: {}",
                    t.name.0.as_str(),
                    p.partition_index,
                    error_text(p.error_code)
                ));
            }
        }
    }
    Ok(())
}

fn delete_group(client: &mut KafkaClient, group: &str) -> CliResult<()> {
    let version = client.version(ApiKey::DeleteGroups, 2)?;
    let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
    let response = client.call(version, &request)?;
    match response.results.first() {
        Some(r) if r.error_code == 0 => {
            println!("Deletion of requested consumer groups ('{group}') was successful.");
            Ok(())
        }
        Some(r) => fail(format!(
            "Deletion of some consumer groups failed:\n* Group '{group}' could not be deleted due to: {}",
            error_text(r.error_code)
        )),
        None => fail("empty DeleteGroups response"),
    }
}

fn error_text(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}: {e}"),
        None => format!("error code {code}"),
    }
}

/// Every broker coordinates some groups: ask each one the last Metadata
/// lists (the bootstrap broker alone when it lists none).
fn list(cluster: &mut Cluster) -> CliResult<()> {
    cluster.metadata(Some(&[]))?;
    let brokers: Vec<i32> = cluster.nodes().map(|(id, _, _)| id).collect();
    let mut names = BTreeSet::new();
    if brokers.is_empty() {
        names.extend(list_on(&mut cluster.bootstrap)?);
    }
    for id in brokers {
        names.extend(list_on(cluster.node(id)?)?);
    }
    for name in names {
        println!("{name}");
    }
    Ok(())
}

fn list_on(client: &mut KafkaClient) -> CliResult<Vec<String>> {
    let version = client.version(ApiKey::ListGroups, 4)?;
    let response = client.call(version, &ListGroupsRequest::default())?;
    if response.error_code != 0 {
        return fail(format!(
            "ListGroups at {} failed: {}",
            client.address(),
            error_text(response.error_code)
        ));
    }
    Ok(response
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect())
}

struct Owner {
    member_id: String,
    host: String,
    client_id: String,
}

fn describe(client: &mut KafkaClient, cluster: &mut Cluster, group: &str) -> CliResult<()> {
    if let Some(described) = consumer_protocol_group(client, group)? {
        let mut owners: BTreeMap<(String, i32), Owner> = BTreeMap::new();
        for m in &described.members {
            for t in &m.assignment.topic_partitions {
                for p in &t.partitions {
                    owners.insert(
                        (t.topic_name.0.to_string(), *p),
                        Owner {
                            member_id: m.member_id.to_string(),
                            host: or_dash(m.client_host.as_str()),
                            client_id: or_dash(m.client_id.as_str()),
                        },
                    );
                }
            }
        }
        return print_offsets(client, cluster, group, owners, described.members.is_empty());
    }
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
    print_offsets(client, cluster, group, owners, described.members.is_empty())
}

/// Kafka's describe table: every committed or owned partition with its
/// offsets, lag and owner.
fn print_offsets(
    client: &mut KafkaClient,
    cluster: &mut Cluster,
    group: &str,
    owners: BTreeMap<(String, i32), Owner>,
    no_members: bool,
) -> CliResult<()> {
    let committed = committed_offsets(client, group)?;
    let partitions: BTreeSet<(String, i32)> = committed
        .keys()
        .cloned()
        .chain(owners.keys().cloned())
        .collect();
    let ends = cluster.list_offsets_found(&partitions, -1)?;
    if no_members {
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
