//! What `consumer-groups` asks a group's coordinator: the group's state,
//! assignor and members with their partitions (ConsumerGroupDescribe for
//! KIP-848 groups, falling back, as Kafka's admin client does, to
//! DescribeGroups, whose consumer protocol assignment bytes name the
//! members' partitions), its committed offsets (OffsetFetch), new offsets
//! (OffsetCommit as an admin, generation -1) and its deletion
//! (DeleteGroups); and ListGroups of every broker.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::Decodable;

use super::super::client::{fail, CliError, CliResult, KafkaClient};
use super::super::output::{
    find_coordinator_node, str_bytes, topic_name, Cluster, CoordinatorNode,
};
use super::error_text;

/// A topic partition, as the tool sorts and prints them.
pub type TopicPartition = (String, i32);

/// A group as the coordinator describes it.
pub struct Group {
    pub id: String,
    /// Kafka's state name: Empty, Stable, PreparingRebalance,
    /// CompletingRebalance, Assigning, Reconciling, or Dead (which is also
    /// what a group that does not exist is).
    pub state: String,
    /// The assignor the group uses (`range`, `uniform`, ...), if any.
    pub assignor: String,
    pub coordinator: CoordinatorNode,
    pub members: Vec<Member>,
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub host: String,
    pub client_id: String,
    /// Sorted by topic, then partition.
    pub partitions: Vec<TopicPartition>,
}

/// One committed offset.
#[derive(Clone, Copy)]
pub struct Committed {
    pub offset: i64,
    /// -1 when the committer named none.
    pub leader_epoch: i32,
}

/// The connection to the broker that coordinates `group`.
pub fn coordinator<'a>(
    cluster: &'a mut Cluster,
    node: &CoordinatorNode,
) -> CliResult<&'a mut KafkaClient> {
    cluster.node(node.id)
}

/// Describes `group` through its coordinator.
pub fn describe(cluster: &mut Cluster, group: &str) -> CliResult<Group> {
    let node = find_coordinator_node(&mut cluster.bootstrap, group)?;
    if cluster.nodes().all(|(id, _, _)| id != node.id) {
        cluster.metadata(Some(&[]))?;
    }
    let client = coordinator(cluster, &node)?;
    if let Some(group) = describe_consumer_protocol(client, group, &node)? {
        return Ok(group);
    }
    let version = client.version(ApiKey::DescribeGroups, 5)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
    let response = client.call(version, &request)?;
    let Some(described) = response.groups.into_iter().next() else {
        return fail("DescribeGroups answered no group");
    };
    let state = match described.error_code {
        0 => described.group_state.to_string(),
        code if code == ResponseError::GroupIdNotFound.code() => "Dead".to_string(),
        code => {
            return fail(format!(
                "cannot describe group '{group}': {}",
                error_text(code)
            ))
        }
    };
    let consumer = described.protocol_type.as_str() == "consumer";
    let members = described
        .members
        .iter()
        .map(|m| Member {
            id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            host: m.client_host.to_string(),
            client_id: m.client_id.to_string(),
            partitions: if consumer {
                decode_assignment(&m.member_assignment)
            } else {
                Vec::new()
            },
        })
        .collect();
    Ok(Group {
        id: group.to_string(),
        state,
        assignor: described.protocol_data.to_string(),
        coordinator: node,
        members,
    })
}

/// The group if it uses the KIP-848 protocol (ConsumerGroupDescribe knows
/// it); `None` for a classic group or a broker without the API.
fn describe_consumer_protocol(
    client: &mut KafkaClient,
    group: &str,
    node: &CoordinatorNode,
) -> CliResult<Option<Group>> {
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
        0 => {}
        code if code == ResponseError::GroupIdNotFound.code() => return Ok(None),
        code => {
            return fail(format!(
                "cannot describe group '{group}': {}",
                error_text(code)
            ))
        }
    }
    let members = described
        .members
        .iter()
        .map(|m| {
            let mut partitions: Vec<TopicPartition> = m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| {
                    let topic = t.topic_name.0.to_string();
                    t.partitions.iter().map(move |p| (topic.clone(), *p))
                })
                .collect();
            partitions.sort();
            Member {
                id: m.member_id.to_string(),
                instance_id: m.instance_id.as_ref().map(|i| i.to_string()),
                host: m.client_host.to_string(),
                client_id: m.client_id.to_string(),
                partitions,
            }
        })
        .collect();
    Ok(Some(Group {
        id: group.to_string(),
        state: described.group_state.to_string(),
        assignor: described.assignor_name.to_string(),
        coordinator: CoordinatorNode {
            id: node.id,
            host: node.host.clone(),
            port: node.port,
        },
        members,
    }))
}

/// The partitions in a consumer protocol assignment (version prefix, then
/// ConsumerProtocolAssignment), sorted; nothing if it does not decode.
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<TopicPartition> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    let mut out: Vec<TopicPartition> = match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(a) => a
            .assigned_partitions
            .into_iter()
            .flat_map(|tp| {
                let topic = tp.topic.0.to_string();
                tp.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Every committed offset of the group (OffsetFetch with null topics).
pub fn committed(
    client: &mut KafkaClient,
    group: &str,
) -> CliResult<BTreeMap<TopicPartition, Committed>> {
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
            if p.error_code == 0 && p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The group's lag on each partition it committed an offset for: the
/// partition's log end offset (ListOffsets at its leader) minus the
/// committed offset, as `--describe` computes it (not clamped: a committed
/// offset past the log end is negative); None where the end is unknown.
pub fn lags(
    cluster: &mut Cluster,
    group: &str,
) -> CliResult<BTreeMap<TopicPartition, Option<i64>>> {
    let node = find_coordinator_node(&mut cluster.bootstrap, group)?;
    if cluster.nodes().all(|(id, _, _)| id != node.id) {
        cluster.metadata(Some(&[]))?;
    }
    let committed = committed(coordinator(cluster, &node)?, group)?;
    let wanted: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
    let ends = cluster.list_offsets_found(&wanted, -1)?;
    Ok(committed
        .into_iter()
        .map(|(partition, c)| {
            let end = ends.get(&partition).copied().filter(|o| *o >= 0);
            (partition, end.map(|end| end - c.offset))
        })
        .collect())
}

/// Commits `offsets` as an admin does (no member, generation -1), which the
/// coordinator accepts only while the group has no members.
pub fn commit(
    client: &mut KafkaClient,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
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
                        .with_name(topic_name(t))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let response = client.call(version, &request)?;
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return fail(format!(
                    "cannot commit {}-{} for group '{group}': {}",
                    t.name.0.as_str(),
                    p.partition_index,
                    error_text(p.error_code)
                ));
            }
        }
    }
    Ok(())
}

/// Deletes `group` at its coordinator: the error code (0 when deleted).
pub fn delete(cluster: &mut Cluster, group: &str) -> CliResult<i16> {
    let node = find_coordinator_node(&mut cluster.bootstrap, group)?;
    if cluster.nodes().all(|(id, _, _)| id != node.id) {
        cluster.metadata(Some(&[]))?;
    }
    let client = coordinator(cluster, &node)?;
    let version = client.version(ApiKey::DeleteGroups, 2)?;
    let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
    let response = client.call(version, &request)?;
    response
        .results
        .first()
        .map(|r| r.error_code)
        .ok_or_else(|| CliError("empty DeleteGroups response".into()))
}

/// Every group of every broker the cluster lists (the bootstrap broker
/// alone when it lists none), with its state where the broker says it
/// (ListGroups v4+), sorted by id.
pub fn list(cluster: &mut Cluster) -> CliResult<BTreeMap<String, Option<String>>> {
    cluster.metadata(Some(&[]))?;
    let brokers: BTreeSet<i32> = cluster.nodes().map(|(id, _, _)| id).collect();
    let mut out = BTreeMap::new();
    if brokers.is_empty() {
        out.extend(list_on(&mut cluster.bootstrap)?);
    }
    for id in brokers {
        out.extend(list_on(cluster.node(id)?)?);
    }
    Ok(out)
}

fn list_on(client: &mut KafkaClient) -> CliResult<Vec<(String, Option<String>)>> {
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
        .map(|g| {
            let state = (version >= 4).then(|| g.group_state.to_string());
            (g.group_id.0.to_string(), state)
        })
        .collect())
}
