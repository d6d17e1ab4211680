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
    DescribeConfigsRequest, DescribeLogDirsRequest, ListOffsetsRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use super::ApiError;
use crate::protocol::{error_name, topic_name};
use crate::server::broker::Broker;
use crate::server::handlers;

/// The versions the API builds its requests at: the newest that still
/// name topics (rather than only topic ids) where that matters.
pub const METADATA_VERSION: i16 = 12;
pub const LIST_OFFSETS_VERSION: i16 = 7;
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
    let session = super::groups::http_session(broker);
    let mut topics = handlers::metadata::handle(broker, &session, METADATA_VERSION, request)
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
/// timestamp): `Ok(offset)` or the partition's Kafka error code.
pub async fn list_offsets(
    broker: &Rc<Broker>,
    partitions: &[(String, i32)],
    timestamp: i64,
) -> BTreeMap<(String, i32), Result<i64, i16>> {
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
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(topics);
    let response = handlers::list_offsets::handle(broker, LIST_OFFSETS_VERSION, request).await;
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

/// Each partition's size on this node's log directory, by topic and
/// partition (DescribeLogDirs; `names` None: every topic).
pub async fn sizes(broker: &Rc<Broker>, names: Option<&[&str]>) -> BTreeMap<(String, i32), i64> {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let mut topics = None;
    if let Some(names) = names {
        let catalog = broker.catalog();
        topics = Some(
            names
                .iter()
                .filter_map(|n| catalog.topics.get(*n))
                .map(|t| {
                    DescribableLogDirTopic::default()
                        .with_topic(topic_name(&t.name))
                        .with_partitions((0..t.partition_count()).collect())
                })
                .collect(),
        );
    }
    let request = DescribeLogDirsRequest::default().with_topics(topics);
    let response = handlers::describe_log_dirs::handle(broker, 4, request).await;
    let mut sizes = BTreeMap::new();
    for dir in response.results {
        for topic in dir.topics {
            for p in topic.partitions {
                *sizes
                    .entry((topic.name.0.to_string(), p.partition_index))
                    .or_insert(0) += p.partition_size;
            }
        }
    }
    sizes
}

/// The configs of one resource (DescribeConfigs), each with its value,
/// source and flags.
pub fn configs(broker: &Rc<Broker>, resource_type: i8, name: &str) -> Result<Vec<Value>, ApiError> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let response = handlers::describe_configs::handle(broker, DESCRIBE_CONFIGS_VERSION, request);
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
