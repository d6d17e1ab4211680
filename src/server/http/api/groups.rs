//! `/api/v1/groups...`: consumer groups with their state, members,
//! assignments and lag per partition, and the offset reset of an inactive
//! group (ListGroups, FindCoordinator, DescribeGroups, OffsetFetch,
//! ListOffsets, OffsetCommit), as `kafka-consumer-groups --describe` and
//! `--reset-offsets` do it: in a cluster, each group's requests go to its
//! coordinator and each partition's ListOffsets to its leader (`peers`).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Buf;
use hyper::StatusCode;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::Deserialize;
use serde_json::{json, Value};

use super::kafka::{self, bounded, kafka_error};
use super::peers::{self, PeerError, Peers};
use super::ApiError;
use crate::limits;
use crate::protocol::{error_name, topic_name};
use crate::server::broker::Broker;
use crate::server::handlers;

/// Committed offsets of a group: by topic and partition.
type Committed = BTreeMap<(String, i32), i64>;

/// Every group of every live broker (each lists those it coordinates)
/// with its state, type, member count and total lag.
pub async fn list(broker: &Rc<Broker>) -> Result<Value, ApiError> {
    let peers = Peers::new(broker, peers::API_DEADLINE);
    let listed = futures::future::join_all(peers.live().into_iter().map(|id| {
        let peers = &peers;
        async move { (id, peers.ask(id, ListGroupsRequest::default()).await) }
    }))
    .await;
    // Each group once, with the broker that listed it: its coordinator.
    let mut all: BTreeMap<String, (i32, ListedGroup)> = BTreeMap::new();
    for (id, answer) in listed {
        let Ok(answer) = answer else {
            continue;
        };
        if answer.error_code != 0 {
            if !broker.cluster_mode() {
                return Err(kafka_error(answer.error_code, None, "listing groups"));
            }
            // A coordinator still loading its groups: they are missing.
            peers.mark_unavailable(id, error_name(answer.error_code));
            continue;
        }
        for g in answer.groups {
            all.entry(g.group_id.0.to_string()).or_insert((id, g));
        }
    }
    let (groups, truncated) = bounded(all.into_iter().collect::<Vec<_>>());
    let mut by_coordinator: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (id, (coordinator, _)) in &groups {
        by_coordinator
            .entry(*coordinator)
            .or_default()
            .push(id.clone());
    }
    let asks = by_coordinator.into_iter().map(|(coordinator, ids)| {
        let peers = &peers;
        async move {
            let described = describe(peers, coordinator, &ids).await.unwrap_or_default();
            let committed = committed(peers, coordinator, &ids)
                .await
                .unwrap_or_default();
            (described, committed)
        }
    });
    let (mut described, mut committed) = (BTreeMap::new(), BTreeMap::new());
    for (d, c) in futures::future::join_all(asks).await {
        described.extend(d);
        committed.extend(c);
    }
    let ends = ends_of(&peers, committed.values().flat_map(|c| c.keys().cloned())).await;
    let groups: Vec<Value> = groups
        .iter()
        .map(|(id, (coordinator, g))| {
            let members = described.get(id).map(|d| d.members.len());
            let total: Option<i64> = committed
                .get(id)
                .map(|c| c.iter().filter_map(|(k, &at)| lag(ends.get(k), at)).sum());
            json!({
                "group_id": id,
                "state": g.group_state.as_str(),
                "type": g.group_type.as_str(),
                "protocol_type": g.protocol_type.as_str(),
                "members": members,
                "lag": total,
                "coordinator": coordinator,
            })
        })
        .collect();
    Ok(json!({"groups": groups, "truncated": truncated, "unavailable": peers.unavailable()}))
}

/// One group: state, members with their assignments, and each committed
/// or assigned partition's committed offset, end offset and lag.
pub async fn detail(broker: &Rc<Broker>, id: &str) -> Result<Value, ApiError> {
    let ids = [id.to_string()];
    let peers = Peers::new(broker, peers::API_DEADLINE);
    // A single node coordinates every group; in a cluster, ask as a
    // client does (which also creates `__consumer_offsets` on first use).
    let coordinator = if broker.cluster_mode() {
        coordinator_of(broker, id).await?
    } else {
        broker.config.broker.node_id
    };
    let unreachable = |e: PeerError| e.api_error(&format!("the coordinator of group {id}"));
    let described = describe(&peers, coordinator, &ids)
        .await
        .map_err(unreachable)?
        .remove(id);
    let Some(group) = described else {
        return Err(ApiError::bad_request("no DescribeGroups answer"));
    };
    if group.error_code != 0 {
        return Err(kafka_error(
            group.error_code,
            group.error_message.as_ref(),
            &format!("group {id}"),
        ));
    }
    let committed = committed(&peers, coordinator, &ids)
        .await
        .map_err(unreachable)?
        .remove(id)
        .unwrap_or_default();
    if group.group_state.as_str() == "Dead" && committed.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "GROUP_ID_NOT_FOUND",
            format!("group {id}: no such group"),
        ));
    }
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    let (members, members_truncated) = bounded(group.members);
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            let assigned = assignment(&m.member_assignment);
            for (topic, partitions) in &assigned {
                for p in partitions {
                    owner.insert((topic.clone(), *p), m.member_id.to_string());
                }
            }
            json!({
                "member_id": m.member_id.as_str(),
                "group_instance_id": m.group_instance_id.as_ref().map(|s| s.as_str()),
                "client_id": m.client_id.as_str(),
                "client_host": m.client_host.as_str(),
                "assignment": assigned.iter()
                    .map(|(t, ps)| json!({"topic": t, "partitions": ps}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let keys: BTreeSet<(String, i32)> = committed.keys().chain(owner.keys()).cloned().collect();
    let (keys, offsets_truncated) = bounded(keys.into_iter().collect());
    let ends = ends_of(&peers, keys.iter().cloned()).await;
    let offsets: Vec<Value> = keys
        .iter()
        .map(|key| {
            let at = committed.get(key).copied();
            json!({
                "topic": key.0,
                "partition": key.1,
                "committed_offset": at,
                "log_end_offset": ends.get(key).and_then(|e| e.as_ref().ok()),
                "lag": at.and_then(|at| lag(ends.get(key), at)),
                "member_id": owner.get(key),
            })
        })
        .collect();
    let total: i64 = offsets.iter().filter_map(|o| o["lag"].as_i64()).sum();
    Ok(json!({
        "group_id": id,
        "state": group.group_state.as_str(),
        "protocol_type": group.protocol_type.as_str(),
        "protocol": group.protocol_data.as_str(),
        "members": members,
        "offsets": offsets,
        "lag": total,
        "truncated": members_truncated || offsets_truncated,
        "coordinator": coordinator,
        "unavailable": peers.unavailable(),
    }))
}

/// `POST /api/v1/groups/{id}/offsets`: move an inactive group's committed
/// offsets of one topic (all its partitions, or those listed) to the
/// earliest or latest offset, an offset, or the first offset at or after
/// a timestamp (ms).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    topic: String,
    #[serde(default)]
    partitions: Option<Vec<i32>>,
    to: ResetTo,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    timestamp: Option<i64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ResetTo {
    Earliest,
    Latest,
    Offset,
    Timestamp,
}

pub async fn reset_offsets(broker: &Rc<Broker>, id: &str, reset: Reset) -> Result<Value, ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad_request("a group id is needed"));
    }
    let ids = [id.to_string()];
    // As a client commits: at the coordinator FindCoordinator names.
    let coordinator = coordinator_of(broker, id).await?;
    let peers = Peers::new(broker, peers::API_DEADLINE);
    let unreachable = |e: PeerError| e.api_error(&format!("the coordinator of group {id}"));
    let described = describe(&peers, coordinator, &ids)
        .await
        .map_err(unreachable)?;
    if let Some(group) = described.get(id) {
        let state = group.group_state.as_str();
        // As kafka-consumer-groups: only a group nobody consumes for.
        if group.error_code == 0 && !matches!(state, "Empty" | "Dead" | "") {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "GROUP_NOT_INACTIVE",
                format!(
                    "offsets of group {id} can be reset only when it is inactive; \
                     its state is {state}: stop its consumers first"
                ),
            ));
        }
    }
    let topic = kafka::topic(broker, &reset.topic).await?;
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
    let partitions = reset.partitions.clone().unwrap_or_else(|| all.clone());
    if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UNKNOWN_TOPIC_OR_PARTITION",
            format!("topic {} has no partition {p}", reset.topic),
        ));
    }
    let targets = targets(&peers, &reset, &partitions).await?;
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(id.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(&reset.topic))
            .with_partitions(
                targets
                    .iter()
                    .map(|(p, offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*offset)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    commit(&peers, coordinator, id, request).await?;
    let offsets: Vec<Value> = targets
        .iter()
        .map(|(p, o)| json!({"partition": p, "offset": o}))
        .collect();
    Ok(json!({"group_id": id, "topic": reset.topic, "offsets": offsets}))
}

/// The broker coordinating group `id`, as a client finds it
/// (FindCoordinator, which also creates `__consumer_offsets` on first
/// use), retried while the coordinator is not ready.
async fn coordinator_of(broker: &Rc<Broker>, id: &str) -> Result<i32, ApiError> {
    let mut attempt = 1;
    loop {
        let request = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(id.to_string())]);
        let response =
            handlers::find_coordinator::handle(broker, &super::console_session(), 4, request).await;
        let Some(found) = response.coordinators.into_iter().next() else {
            return Err(ApiError::bad_request("no FindCoordinator answer"));
        };
        match found.error_code {
            0 => return Ok(found.node_id.0),
            code if retriable(code) && attempt < COMMIT_TRIES => {
                attempt += 1;
                glommio::timer::sleep(std::time::Duration::from_millis(COMMIT_RETRY_MS)).await;
            }
            code => {
                return Err(kafka_error(
                    code,
                    found.error_message.as_ref(),
                    &format!("the coordinator of group {id}"),
                ))
            }
        }
    }
}

/// Kafka errors a client retries while a coordinator gets ready.
fn retriable(code: i16) -> bool {
    use kafka_protocol::error::ResponseError::{
        CoordinatorLoadInProgress, CoordinatorNotAvailable,
    };
    code == CoordinatorLoadInProgress.code() || code == CoordinatorNotAvailable.code()
}

/// Tries of an offset commit while the coordinator loads the group, and
/// the wait between them (a client's retries, bounded: 5 s).
const COMMIT_TRIES: usize = 25;
const COMMIT_RETRY_MS: u64 = 200;

/// OffsetCommit at the coordinator, retried while it is not ready.
async fn commit(
    peers: &Peers,
    coordinator: i32,
    id: &str,
    request: OffsetCommitRequest,
) -> Result<(), ApiError> {
    let mut attempt = 1;
    loop {
        let response = peers
            .ask(coordinator, request.clone())
            .await
            .map_err(|e| e.api_error(&format!("the coordinator of group {id}")))?;
        let failed = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.error_code != 0)
            .map(|p| p.error_code);
        match failed {
            None => return Ok(()),
            Some(code) if retriable(code) && attempt < COMMIT_TRIES => {
                attempt += 1;
                glommio::timer::sleep(std::time::Duration::from_millis(COMMIT_RETRY_MS)).await;
            }
            Some(code) => {
                return Err(kafka_error(
                    code,
                    None,
                    &format!("committing offsets of group {id}"),
                ))
            }
        }
    }
}

/// The offset each partition moves to; an explicit offset is kept within
/// the log (as the Kafka tool does).
async fn targets(
    peers: &Peers,
    reset: &Reset,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, ApiError> {
    let keys: Vec<(String, i32)> = partitions
        .iter()
        .map(|p| (reset.topic.clone(), *p))
        .collect();
    let leaders = kafka::leaders_of(peers.broker(), keys.iter().cloned());
    let earliest = kafka::list_offsets_at_leaders(peers, &leaders, kafka::EARLIEST).await;
    let latest = kafka::list_offsets_at_leaders(peers, &leaders, kafka::LATEST).await;
    let at_time = match (reset.to, reset.timestamp) {
        (ResetTo::Timestamp, Some(ts)) if ts >= 0 => {
            Some(kafka::list_offsets_at_leaders(peers, &leaders, ts).await)
        }
        (ResetTo::Timestamp, _) => {
            return Err(ApiError::bad_request(
                "to=timestamp needs a timestamp (ms) >= 0",
            ))
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(keys.len());
    for key in &keys {
        let known = |offsets: &BTreeMap<(String, i32), Result<i64, i16>>| match offsets.get(key) {
            Some(Ok(o)) => Ok(*o),
            Some(Err(code)) => Err(kafka_error(*code, None, &format!("{}-{}", key.0, key.1))),
            // Its leader did not answer, or it has none.
            None => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "LEADER_NOT_AVAILABLE",
                format!(
                    "{}-{}: its leader (broker {}) did not answer",
                    key.0,
                    key.1,
                    leaders.get(key).copied().unwrap_or(-1)
                ),
            )),
        };
        let (low, high) = (known(&earliest)?, known(&latest)?);
        let offset = match reset.to {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
            ResetTo::Offset => {
                let wanted = reset
                    .offset
                    .ok_or_else(|| ApiError::bad_request("to=offset needs an offset"))?;
                wanted.clamp(low, high)
            }
            // No record at or after it: the log end.
            ResetTo::Timestamp => match at_time.as_ref().map(known).transpose()? {
                Some(o) if o >= 0 => o,
                _ => high,
            },
        };
        out.push((key.1, offset));
    }
    Ok(out)
}

/// DescribeGroups of `ids` at their coordinator, by id.
async fn describe(
    peers: &Peers,
    coordinator: i32,
    ids: &[String],
) -> Result<BTreeMap<String, DescribedGroup>, PeerError> {
    let request = DescribeGroupsRequest::default().with_groups(
        ids.iter()
            .map(|id| GroupId(StrBytes::from_string(id.clone())))
            .collect(),
    );
    Ok(peers
        .ask(coordinator, request)
        .await?
        .groups
        .into_iter()
        .map(|g| (g.group_id.0.to_string(), g))
        .collect())
}

/// Every committed offset of each of `ids` at their coordinator
/// (OffsetFetch v8, all topics).
async fn committed(
    peers: &Peers,
    coordinator: i32,
    ids: &[String],
) -> Result<BTreeMap<String, Committed>, PeerError> {
    let request = OffsetFetchRequest::default().with_groups(
        ids.iter()
            .map(|id| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(id.clone())))
                    .with_topics(None)
            })
            .collect(),
    );
    let response = peers.ask(coordinator, request).await?;
    let mut out = BTreeMap::new();
    for group in response.groups {
        let mut offsets = Committed::new();
        for topic in group.topics {
            for p in topic.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    offsets.insert(
                        (topic.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        out.insert(group.group_id.0.to_string(), offsets);
    }
    Ok(out)
}

/// The log end offsets of the partitions named (each once), from their
/// leaders.
async fn ends_of(
    peers: &Peers,
    keys: impl Iterator<Item = (String, i32)>,
) -> BTreeMap<(String, i32), Result<i64, i16>> {
    let unique: BTreeSet<(String, i32)> = keys.take(limits::HTTP_API_LIST_MAX * 10).collect();
    let keys: Vec<(String, i32)> = unique.into_iter().collect();
    if keys.is_empty() {
        return BTreeMap::new();
    }
    let leaders = kafka::leaders_of(peers.broker(), keys.into_iter());
    kafka::list_offsets_at_leaders(peers, &leaders, kafka::LATEST).await
}

/// Lag of a committed offset against the log end (never negative: a
/// commit past the end, after a truncation, counts as caught up).
fn lag(end: Option<&Result<i64, i16>>, committed: i64) -> Option<i64> {
    match end {
        Some(Ok(end)) => Some((end - committed).max(0)),
        _ => None,
    }
}

/// A consumer-protocol member's assignment, by topic (empty when it does
/// not decode: another protocol's bytes).
fn assignment(bytes: &bytes::Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return out;
    }
    let version = buf.get_i16();
    if version < 0 {
        return out;
    }
    let Ok(decoded) = ConsumerProtocolAssignment::decode(&mut buf, version.min(3)) else {
        return out;
    };
    for topic in decoded
        .assigned_partitions
        .into_iter()
        .take(limits::HTTP_API_LIST_MAX)
    {
        let partitions = out.entry(topic.topic.0.to_string()).or_default();
        partitions.extend(topic.partitions);
        partitions.sort_unstable();
        partitions.dedup();
    }
    out
}
