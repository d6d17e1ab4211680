//! `/api/v1/groups...`: consumer groups with their state, members,
//! assignments and lag per partition, and the offset reset of an inactive
//! group (ListGroups, DescribeGroups, OffsetFetch, ListOffsets,
//! OffsetCommit), as `kafka-consumer-groups --describe` and
//! `--reset-offsets` do it.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Buf;
use hyper::StatusCode;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
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
use super::ApiError;
use crate::limits;
use crate::protocol::topic_name;
use crate::server::broker::Broker;
use crate::server::handlers;

/// Committed offsets of a group: by topic and partition.
type Committed = BTreeMap<(String, i32), i64>;

/// Every group with its state, type, member count and total lag.
pub async fn list(broker: &Rc<Broker>) -> Result<Value, ApiError> {
    let listed = handlers::list_groups::handle(broker, 5, ListGroupsRequest::default()).await;
    if listed.error_code != 0 {
        return Err(kafka_error(listed.error_code, None, "listing groups"));
    }
    let (groups, truncated) = bounded(listed.groups);
    let ids: Vec<String> = groups.iter().map(|g| g.group_id.0.to_string()).collect();
    let described = describe(broker, &ids).await;
    let committed = committed(broker, &ids).await;
    let ends = ends_of(broker, committed.values().flat_map(|c| c.keys().cloned())).await;
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            let id = g.group_id.0.to_string();
            let members = described.get(&id).map_or(0, |d| d.members.len());
            let total: Option<i64> = committed
                .get(&id)
                .map(|c| c.iter().filter_map(|(k, &at)| lag(ends.get(k), at)).sum());
            json!({
                "group_id": id,
                "state": g.group_state.as_str(),
                "type": g.group_type.as_str(),
                "protocol_type": g.protocol_type.as_str(),
                "members": members,
                "lag": total,
            })
        })
        .collect();
    Ok(json!({"groups": groups, "truncated": truncated}))
}

/// One group: state, members with their assignments, and each committed
/// or assigned partition's committed offset, end offset and lag.
pub async fn detail(broker: &Rc<Broker>, id: &str) -> Result<Value, ApiError> {
    let ids = [id.to_string()];
    let described = describe(broker, &ids).await.remove(id);
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
    let committed = committed(broker, &ids).await.remove(id).unwrap_or_default();
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
    let ends = ends_of(broker, keys.iter().cloned()).await;
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
    if let Some(group) = describe(broker, &ids).await.remove(id) {
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
    let targets = targets(broker, &reset, &partitions).await?;
    find_coordinator(broker, id).await?;
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
    commit(broker, id, request).await?;
    let offsets: Vec<Value> = targets
        .iter()
        .map(|(p, o)| json!({"partition": p, "offset": o}))
        .collect();
    Ok(json!({"group_id": id, "topic": reset.topic, "offsets": offsets}))
}

/// As a client does before it commits: FindCoordinator, which also
/// creates `__consumer_offsets` on first use. A group coordinated by
/// another broker is that broker's to change.
async fn find_coordinator(broker: &Rc<Broker>, id: &str) -> Result<(), ApiError> {
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_string(id.to_string())]);
    let response =
        handlers::find_coordinator::handle(broker, &http_session(broker), 4, request).await;
    let Some(found) = response.coordinators.into_iter().next() else {
        return Err(ApiError::bad_request("no FindCoordinator answer"));
    };
    if found.error_code != 0 {
        return Err(kafka_error(
            found.error_code,
            found.error_message.as_ref(),
            &format!("the coordinator of group {id}"),
        ));
    }
    if found.node_id.0 != broker.config.broker.node_id {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NOT_COORDINATOR",
            format!(
                "group {id} is coordinated by broker {} ({}:{}): use its console",
                found.node_id.0, found.host, found.port
            ),
        ));
    }
    Ok(())
}

/// Tries of an offset commit while the coordinator loads the group, and
/// the wait between them (a client's retries, bounded: 5 s).
const COMMIT_TRIES: usize = 25;
const COMMIT_RETRY_MS: u64 = 200;

/// OffsetCommit, retried while the coordinator is not ready.
async fn commit(
    broker: &Rc<Broker>,
    id: &str,
    request: OffsetCommitRequest,
) -> Result<(), ApiError> {
    use kafka_protocol::error::ResponseError::{
        CoordinatorLoadInProgress, CoordinatorNotAvailable,
    };
    let retriable = [
        CoordinatorLoadInProgress.code(),
        CoordinatorNotAvailable.code(),
    ];
    let mut attempt = 1;
    loop {
        let response = handlers::offset_commit::handle(broker, 8, request.clone()).await;
        let failed = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.error_code != 0)
            .map(|p| p.error_code);
        match failed {
            None => return Ok(()),
            Some(code) if retriable.contains(&code) && attempt < COMMIT_TRIES => {
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
    broker: &Rc<Broker>,
    reset: &Reset,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, ApiError> {
    let keys: Vec<(String, i32)> = partitions
        .iter()
        .map(|p| (reset.topic.clone(), *p))
        .collect();
    let earliest = kafka::list_offsets(broker, &keys, kafka::EARLIEST).await;
    let latest = kafka::list_offsets(broker, &keys, kafka::LATEST).await;
    let at_time = match (reset.to, reset.timestamp) {
        (ResetTo::Timestamp, Some(ts)) if ts >= 0 => {
            Some(kafka::list_offsets(broker, &keys, ts).await)
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
            None => Err(ApiError::bad_request("no ListOffsets answer")),
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

/// DescribeGroups of `ids`, by id.
async fn describe(broker: &Rc<Broker>, ids: &[String]) -> BTreeMap<String, DescribedGroup> {
    let request = DescribeGroupsRequest::default().with_groups(
        ids.iter()
            .map(|id| GroupId(StrBytes::from_string(id.clone())))
            .collect(),
    );
    handlers::describe_groups::handle(broker, 5, request)
        .await
        .groups
        .into_iter()
        .map(|g| (g.group_id.0.to_string(), g))
        .collect()
}

/// Every committed offset of each of `ids` (OffsetFetch v8, all topics).
async fn committed(broker: &Rc<Broker>, ids: &[String]) -> BTreeMap<String, Committed> {
    let request = OffsetFetchRequest::default().with_groups(
        ids.iter()
            .map(|id| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(id.clone())))
                    .with_topics(None)
            })
            .collect(),
    );
    let response = handlers::offset_fetch::handle(broker, 8, request).await;
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
    out
}

/// The log end offsets of the partitions named (each once).
async fn ends_of(
    broker: &Rc<Broker>,
    keys: impl Iterator<Item = (String, i32)>,
) -> BTreeMap<(String, i32), Result<i64, i16>> {
    let unique: BTreeSet<(String, i32)> = keys.take(limits::HTTP_API_LIST_MAX * 10).collect();
    let keys: Vec<(String, i32)> = unique.into_iter().collect();
    if keys.is_empty() {
        return BTreeMap::new();
    }
    kafka::list_offsets(broker, &keys, kafka::LATEST).await
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

/// The identity the HTTP API's Kafka calls run as: the main listener's.
pub(super) fn http_session(broker: &Broker) -> crate::security::Session {
    let cluster = &broker.config.cluster;
    crate::security::Session::new(
        &cluster.advertised.name,
        cluster.listener_protocol,
        std::net::Ipv4Addr::LOCALHOST.into(),
    )
}
