//! `/api/v1/topics...`: the topic list with sizes, a topic's partitions
//! (leader, replicas, ISR, offsets, size) and configs, and the changes the
//! console makes: create, delete, add partitions, alter configs
//! (Metadata, ListOffsets, DescribeLogDirs, DescribeConfigs, CreateTopics,
//! DeleteTopics, CreatePartitions, IncrementalAlterConfigs).

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::kafka::{self, bounded, kafka_error};
use super::peers::{self, Peers};
use super::ApiError;
use crate::limits;
use crate::protocol::topic_name;
use crate::server::broker::Broker;
use crate::server::handlers;

/// Every topic: partitions, replication factor, under-replicated
/// partitions and its size (each partition's on its leader).
pub async fn list(broker: &Rc<Broker>) -> Result<Value, ApiError> {
    let (topics, truncated) = bounded(kafka::metadata(broker, None).await);
    let peers = Peers::new(broker, peers::API_DEADLINE);
    let sizes = kafka::sizes_at_leaders(&peers, &leaders(&topics)).await;
    let topics: Vec<Value> = topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            let size: i64 = (0..t.partitions.len() as i32)
                .filter_map(|p| sizes.get(&(name.clone(), p)))
                .sum();
            json!({
                "name": name,
                "internal": t.is_internal,
                "partitions": t.partitions.len(),
                "replication_factor": t.partitions.first().map_or(0, |p| p.replica_nodes.len()),
                "under_replicated": t.partitions.iter()
                    .filter(|p| p.isr_nodes.len() < p.replica_nodes.len()).count(),
                "size_bytes": size,
            })
        })
        .collect();
    Ok(json!({"topics": topics, "truncated": truncated, "unavailable": peers.unavailable()}))
}

/// Each partition of `topics` with its leader, as Metadata answered.
fn leaders(topics: &[MetadataResponseTopic]) -> BTreeMap<(String, i32), i32> {
    topics
        .iter()
        .flat_map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            t.partitions
                .iter()
                .map(move |p| ((name.clone(), p.partition_index), p.leader_id.0))
        })
        .collect()
}

/// One topic: each partition's leader, replicas, ISR, and its log start
/// and end offsets and size on its leader, and the topic's configs.
pub async fn detail(broker: &Rc<Broker>, name: &str) -> Result<Value, ApiError> {
    let topic = kafka::topic(broker, name).await?;
    let (partitions, truncated) = bounded(topic.partitions);
    let led: BTreeMap<(String, i32), i32> = partitions
        .iter()
        .map(|p| ((name.to_string(), p.partition_index), p.leader_id.0))
        .collect();
    let peers = Peers::new(broker, peers::API_DEADLINE);
    // One connection per leader carries its three requests in turn.
    let (starts, ends, sizes) = futures::join!(
        kafka::list_offsets_at_leaders(&peers, &led, kafka::EARLIEST),
        kafka::list_offsets_at_leaders(&peers, &led, kafka::LATEST),
        kafka::sizes_at_leaders(&peers, &led),
    );
    let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    let offset = |answer: Option<&Result<i64, i16>>| match answer {
        Some(Ok(offset)) => json!(offset),
        _ => Value::Null,
    };
    let partitions: Vec<Value> = partitions
        .iter()
        .map(|p| {
            let key = (name.to_string(), p.partition_index);
            json!({
                "partition": p.partition_index,
                "leader": p.leader_id.0,
                "leader_epoch": p.leader_epoch,
                "replicas": ids(&p.replica_nodes),
                "isr": ids(&p.isr_nodes),
                "offline": ids(&p.offline_replicas),
                "log_start_offset": offset(starts.get(&key)),
                "log_end_offset": offset(ends.get(&key)),
                "size_bytes": sizes.get(&key),
            })
        })
        .collect();
    let configs = kafka::configs(broker, kafka::RESOURCE_TOPIC, name)?;
    Ok(json!({
        "name": name,
        "topic_id": crate::metadata::kafka_uuid(topic.topic_id),
        "internal": topic.is_internal,
        "partitions": partitions,
        "truncated": truncated,
        "configs": configs,
        "unavailable": peers.unavailable(),
    }))
}

/// `POST /api/v1/topics`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    name: String,
    /// -1 (or absent): the broker's `num.partitions`.
    #[serde(default = "minus_one")]
    partitions: i32,
    /// -1 (or absent): the broker's `default.replication.factor`.
    #[serde(default = "minus_one_i16")]
    replication_factor: i16,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

fn minus_one() -> i32 {
    -1
}

fn minus_one_i16() -> i16 {
    -1
}

pub async fn create(broker: &Rc<Broker>, new: NewTopic) -> Result<Value, ApiError> {
    if new.configs.len() > limits::HTTP_API_LIST_MAX {
        return Err(ApiError::bad_request("too many configs"));
    }
    let configs = new
        .configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(limits::HTTP_API_TIMEOUT_MS)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(&new.name))
            .with_num_partitions(new.partitions)
            .with_replication_factor(new.replication_factor)
            .with_configs(configs)]);
    let response =
        handlers::create_topics::handle(broker, &super::console_session(), 7, request).await;
    let result = response
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("no CreateTopics answer"))?;
    if result.error_code != 0 {
        return Err(kafka_error(
            result.error_code,
            result.error_message.as_ref(),
            &format!("creating topic {}", new.name),
        ));
    }
    Ok(json!({
        "name": new.name,
        "partitions": result.num_partitions,
        "replication_factor": result.replication_factor,
    }))
}

pub async fn delete(broker: &Rc<Broker>, name: &str) -> Result<Value, ApiError> {
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(limits::HTTP_API_TIMEOUT_MS)
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(name)))
        ]);
    let response =
        handlers::delete_topics::handle(broker, &super::console_session(), 6, request).await;
    let result = response
        .responses
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("no DeleteTopics answer"))?;
    if result.error_code != 0 {
        return Err(kafka_error(
            result.error_code,
            result.error_message.as_ref(),
            &format!("deleting topic {name}"),
        ));
    }
    Ok(json!({"deleted": name}))
}

/// `POST /api/v1/topics/{name}/partitions`: the new total.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPartitions {
    count: i32,
}

pub async fn add_partitions(
    broker: &Rc<Broker>,
    name: &str,
    wanted: NewPartitions,
) -> Result<Value, ApiError> {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(limits::HTTP_API_TIMEOUT_MS)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(wanted.count)
            .with_assignments(None)]);
    let response =
        handlers::create_partitions::handle(broker, &super::console_session(), 3, request).await;
    let result = response
        .results
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("no CreatePartitions answer"))?;
    if result.error_code != 0 {
        return Err(kafka_error(
            result.error_code,
            result.error_message.as_ref(),
            &format!("adding partitions to {name}"),
        ));
    }
    Ok(json!({"name": name, "partitions": wanted.count}))
}

/// `POST /api/v1/topics/{name}/configs`: configs to set and to delete
/// (back to the broker's default), as `kafka-configs --alter`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigChanges {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

/// IncrementalAlterConfigs' operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub async fn alter_configs(
    broker: &Rc<Broker>,
    name: &str,
    changes: ConfigChanges,
) -> Result<Value, ApiError> {
    if changes.set.len() + changes.delete.len() > limits::HTTP_API_LIST_MAX {
        return Err(ApiError::bad_request("too many configs"));
    }
    if changes.set.is_empty() && changes.delete.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: give set or delete",
        ));
    }
    kafka::topic(broker, name).await?;
    let set = changes.set.iter().map(|(k, v)| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(OP_SET)
            .with_value(Some(StrBytes::from_string(v.clone())))
    });
    let delete = changes.delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    });
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(kafka::RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(set.chain(delete).collect()),
    ]);
    let response =
        handlers::alter_configs::handle_incremental(broker, &super::console_session(), 1, request)
            .await;
    let result = response
        .responses
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("no IncrementalAlterConfigs answer"))?;
    if result.error_code != 0 {
        return Err(kafka_error(
            result.error_code,
            result.error_message.as_ref(),
            &format!("altering configs of {name}"),
        ));
    }
    Ok(json!({"name": name, "set": changes.set, "deleted": changes.delete}))
}
