//! The Kafka requests the admin API sends to the broker's own handlers
//! (as a client's request reaches them on shard 0), and Kafka's error
//! codes as API errors.

use std::collections::BTreeMap;
use std::rc::Rc;

use hyper::StatusCode;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeLogDirsRequest, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use super::peers::Peers;
use super::ApiError;
use crate::protocol::{error_name, topic_name};
use crate::server::broker::Broker;
use crate::server::handlers;

/// The versions the API builds its requests at: the newest that still
/// name topics (rather than only topic ids) where that matters.
pub const METADATA_VERSION: i16 = 12;
pub const DESCRIBE_CONFIGS_VERSION: i16 = 4;

/// Kafka's ListOffsets timestamps for the log start and the log end.
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;

/// Kafka's config resource types.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// A Kafka error code (not NONE) as an API error, with the handler's
/// message when it sent one.
pub fn kafka_error(code: i16, message: Option<&StrBytes>, what: &str) -> ApiError {
    let name = error_name(code);
    let status = status_of(code);
    let detail = message
        .filter(|m| !m.is_empty())
        .map(|m| m.to_string())
        .unwrap_or_else(|| name.clone());
    ApiError::new(status, &name, format!("{what}: {detail}"))
}

/// The HTTP status that fits a Kafka error.
fn status_of(code: i16) -> StatusCode {
    use ResponseError::*;
    match ResponseError::try_from_code(code) {
        Some(UnknownTopicOrPartition | UnknownTopicId | GroupIdNotFound) => StatusCode::NOT_FOUND,
        Some(TopicAlreadyExists | NonEmptyGroup | RebalanceInProgress | UnknownMemberId) => {
            StatusCode::CONFLICT
        }
        Some(
            InvalidTopicException
            | InvalidPartitions
            | InvalidReplicationFactor
            | InvalidReplicaAssignment
            | InvalidConfig
            | InvalidRequest
            | PolicyViolation
            | InvalidGroupId
            | OffsetOutOfRange
            | TopicDeletionDisabled,
        ) => StatusCode::BAD_REQUEST,
        Some(
            NotController
            | NotCoordinator
            | CoordinatorNotAvailable
            | CoordinatorLoadInProgress
            | LeaderNotAvailable
            | NotLeaderOrFollower
            | BrokerNotAvailable,
        ) => StatusCode::SERVICE_UNAVAILABLE,
        Some(RequestTimedOut) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Metadata of every topic (`None`) or of the named ones; never creates a
/// topic.
pub async fn metadata(broker: &Rc<Broker>, names: Option<&[&str]>) -> Vec<MetadataResponseTopic> {
    let topics = names.map(|names| {
        names
            .iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
            .collect()
    });
    let request = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false);
    let mut topics =
        handlers::metadata::handle(broker, &super::console_session(), METADATA_VERSION, request)
            .await
            .topics;
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    topics
}

/// One topic's metadata, or its Kafka error.
pub async fn topic(broker: &Rc<Broker>, name: &str) -> Result<MetadataResponseTopic, ApiError> {
    crate::metadata::validate_topic_name(name)
        .map_err(|e| ApiError::bad_request(format!("topic {name:?}: {e}")))?;
    let topic = metadata(broker, Some(&[name]))
        .await
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("no metadata answer"))?;
    if topic.error_code != 0 {
        return Err(kafka_error(
            topic.error_code,
            None,
            &format!("topic {name}"),
        ));
    }
    Ok(topic)
}

/// An offset of each partition asked for (`EARLIEST`, `LATEST` or a
/// timestamp), `Ok(offset)` or the partition's Kafka error code, from
/// each partition's leader (`leaders`: partition to its leader's id, -1
/// when it has none), one request per leader, concurrently. A partition whose leader did not answer (listed by
/// `peers.unavailable()`) or that has none is missing from the answer.
pub async fn list_offsets_at_leaders(
    peers: &Peers,
    leaders: &BTreeMap<(String, i32), i32>,
    timestamp: i64,
) -> BTreeMap<(String, i32), Result<i64, i16>> {
    let asks = by_leader(leaders)
        .into_iter()
        .map(|(leader, partitions)| async move {
            let request = list_offsets_request(&partitions, timestamp);
            peers
                .ask(leader, request)
                .await
                .map(list_offsets_answers)
                .unwrap_or_default()
        });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The partitions of `leaders` by leader, leaderless ones left out.
fn by_leader(leaders: &BTreeMap<(String, i32), i32>) -> BTreeMap<i32, Vec<(String, i32)>> {
    let mut out: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (key, leader) in leaders {
        if *leader >= 0 {
            out.entry(*leader).or_default().push(key.clone());
        }
    }
    out
}

/// Each partition's leader as this node's metadata knows it (this node
/// for every partition outside a cluster; -1: none).
pub fn leaders_of(
    broker: &Rc<Broker>,
    partitions: impl Iterator<Item = (String, i32)>,
) -> BTreeMap<(String, i32), i32> {
    let me = broker.config.broker.node_id;
    if !broker.cluster_mode() {
        return partitions.map(|key| (key, me)).collect();
    }
    let catalog = broker.catalog();
    partitions
        .map(|(topic, index)| {
            let leader = catalog
                .topics
                .get(&topic)
                .and_then(|t| t.replicas.get(usize::try_from(index).ok()?))
                .map_or(-1, |set| set.leader);
            ((topic, index), leader)
        })
        .collect()
}

/// A ListOffsets request for `partitions` at `timestamp`.
pub fn list_offsets_request(partitions: &[(String, i32)], timestamp: i64) -> ListOffsetsRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            ListOffsetsTopic::default()
                .with_name(topic_name(name))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )
        })
        .collect();
    ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(topics)
}

/// A ListOffsets answer by partition: the offset or the Kafka error code.
pub fn list_offsets_answers(
    response: ListOffsetsResponse,
) -> BTreeMap<(String, i32), Result<i64, i16>> {
    let mut offsets = BTreeMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            let answer = if p.error_code == 0 {
                Ok(p.offset)
            } else {
                Err(p.error_code)
            };
            offsets.insert((topic.name.0.to_string(), p.partition_index), answer);
        }
    }
    offsets
}

/// Each partition's size on its leader's log directories (DescribeLogDirs
/// to each leader for the partitions it leads, concurrently). A partition
/// whose leader did not answer, or that has none, is missing.
pub async fn sizes_at_leaders(
    peers: &Peers,
    leaders: &BTreeMap<(String, i32), i32>,
) -> BTreeMap<(String, i32), i64> {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let asks = by_leader(leaders)
        .into_iter()
        .map(|(leader, partitions)| async move {
            let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (topic, index) in &partitions {
                by_topic.entry(topic.clone()).or_default().push(*index);
            }
            let topics = by_topic
                .into_iter()
                .map(|(name, indexes)| {
                    DescribableLogDirTopic::default()
                        .with_topic(topic_name(&name))
                        .with_partitions(indexes)
                })
                .collect();
            let request = DescribeLogDirsRequest::default().with_topics(Some(topics));
            let mut sizes = BTreeMap::new();
            if let Ok(response) = peers.ask(leader, request).await {
                for dir in response.results {
                    for topic in dir.topics {
                        for p in topic.partitions {
                            let key = (topic.name.0.to_string(), p.partition_index);
                            // Only what was asked: the partitions it leads.
                            if leaders.get(&key) == Some(&leader) {
                                *sizes.entry(key).or_insert(0) += p.partition_size;
                            }
                        }
                    }
                }
            }
            sizes
        });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The configs of one resource (DescribeConfigs), each with its value,
/// source and flags.
pub fn configs(broker: &Rc<Broker>, resource_type: i8, name: &str) -> Result<Vec<Value>, ApiError> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let response = handlers::describe_configs::handle(
        broker,
        &super::console_session(),
        DESCRIBE_CONFIGS_VERSION,
        request,
    );
    let Some(result) = response.results.into_iter().next() else {
        return Err(ApiError::bad_request("no DescribeConfigs answer"));
    };
    if result.error_code != 0 {
        return Err(kafka_error(
            result.error_code,
            result.error_message.as_ref(),
            &format!("configs of {name}"),
        ));
    }
    Ok(result
        .configs
        .iter()
        .take(crate::limits::HTTP_API_LIST_MAX)
        .map(|c| {
            json!({
                "name": c.name.as_str(),
                // Kafka hides a sensitive value.
                "value": if c.is_sensitive { None } else { c.value.as_ref().map(|v| v.as_str()) },
                "source": crate::protocol::config_source_name(c.config_source),
                "read_only": c.read_only,
                "sensitive": c.is_sensitive,
            })
        })
        .collect())
}

/// `items` cut to the API's list bound, and whether that cut any.
pub fn bounded<T>(mut items: Vec<T>) -> (Vec<T>, bool) {
    let truncated = items.len() > crate::limits::HTTP_API_LIST_MAX;
    items.truncate(crate::limits::HTTP_API_LIST_MAX);
    (items, truncated)
}
