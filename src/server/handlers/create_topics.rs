//! CreateTopics: validated and applied by shard 0 (the catalog owner); each
//! topic gets its own result. v5+ answers the resulting partition count,
//! replication factor and configs; v7 the topic id.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::metadata::TopicMeta;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::{CatalogError, NewTopic};
use crate::server::configs;
use crate::server::errors;
use crate::server::routing::CreateTopic;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let validate_only = request.validate_only;
    let access = Access::new(broker, session);
    // As Kafka: Create on the cluster, or on the topic.
    let on_cluster = access.cluster(Operation::Create);
    let results = request.topics.into_iter().map(|topic| {
        let allowed = on_cluster || access.topic(Operation::Create, topic.name.0.as_str());
        async move {
            if !allowed {
                return CreatableTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(TOPIC_DENIED)
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
            }
            create_one(broker, version, topic, validate_only).await
        }
    });
    CreateTopicsResponse::default().with_topics(join_all(results).await)
}

async fn create_one(
    broker: &Rc<Broker>,
    version: i16,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let name = topic.name.clone();
    let result = CreatableTopicResult::default().with_name(topic.name.clone());
    let new_topic = match new_topic(broker, &topic) {
        Ok(t) => t,
        Err(e) => return failed(result, &e),
    };
    match ask_owner(
        broker,
        CreateTopic {
            topic: new_topic,
            validate_only,
        },
    )
    .await
    {
        Ok(meta) => {
            let result = result
                .with_num_partitions(meta.partition_count())
                .with_replication_factor(meta.replication_factor());
            let result = if version >= 5 {
                result.with_configs(Some(describe_configs(broker, &meta)))
            } else {
                result
            };
            if version >= 7 {
                result.with_topic_id(meta.id)
            } else {
                result
            }
        }
        Err(e) => {
            log::info!("CreateTopics {}: {e}", name.0.as_str());
            failed(result, &e)
        }
    }
}

fn failed(result: CreatableTopicResult, e: &CatalogError) -> CreatableTopicResult {
    result
        .with_error_code(errors::catalog_error(e))
        .with_error_message(Some(StrBytes::from_string(e.to_string())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

fn new_topic(broker: &Rc<Broker>, topic: &CreatableTopic) -> Result<NewTopic, CatalogError> {
    if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(CatalogError::InvalidPartitions(
                "Both numPartitions or replicationFactor and replicasAssignments were set.".into(),
            ));
        }
        let node = broker.config.broker.node_id;
        if topic
            .assignments
            .iter()
            .any(|a| a.broker_ids.iter().any(|b| b.0 != node))
        {
            return Err(CatalogError::InvalidReplicationFactor(format!(
                "replica assignments may only name broker {node}"
            )));
        }
    }
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let value = config.value.as_ref().ok_or_else(|| {
            CatalogError::InvalidConfig(format!(
                "Null value not supported for topic config {}",
                config.name.as_str()
            ))
        })?;
        configs.insert(config.name.to_string(), value.to_string());
    }
    let partitions = match (topic.num_partitions, topic.assignments.len()) {
        (-1, 0) => broker.config.broker.num_partitions,
        (-1, n) => n as i32,
        (n, _) => n,
    };
    Ok(NewTopic {
        name: topic.name.0.to_string(),
        partitions,
        replication_factor: match topic.replication_factor {
            -1 => broker.config.broker.default_replication_factor,
            n => n,
        },
        configs,
    })
}

/// Creates a topic with the broker's defaults (auto-creation by Metadata).
pub async fn create_with_defaults(
    broker: &Rc<Broker>,
    name: &str,
) -> Result<TopicMeta, CatalogError> {
    let topic = NewTopic {
        name: name.to_string(),
        partitions: broker.config.broker.num_partitions,
        replication_factor: broker.config.broker.default_replication_factor,
        configs: BTreeMap::new(),
    };
    ask_owner(
        broker,
        CreateTopic {
            topic,
            validate_only: false,
        },
    )
    .await
}

async fn ask_owner(broker: &Rc<Broker>, call: CreateTopic) -> Result<TopicMeta, CatalogError> {
    broker.call(ShardId(0), call).await
}

fn describe_configs(broker: &Rc<Broker>, topic: &TopicMeta) -> Vec<CreatableTopicConfigs> {
    let catalog = broker.catalog();
    configs::topic_entries(&broker.static_configs(), &catalog, topic, None)
        .into_iter()
        .map(|entry| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_string(entry.name))
                .with_value(entry.value.map(StrBytes::from_string))
                .with_read_only(entry.read_only)
                .with_config_source(entry.source)
        })
        .collect()
}
