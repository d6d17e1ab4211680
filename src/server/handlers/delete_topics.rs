//! DeleteTopics by name (v1+) or by topic id (v6): shard 0 removes the topic
//! from the catalog and every shard deletes its partitions' directories.
//!
//! Internal topics are refused with INVALID_TOPIC_EXCEPTION (the error Kafka
//! gives every other attempt to change an internal topic's records):
//! deleting `__consumer_offsets` would lose every group's commits. On a
//! full disk the catalog rewrite uses the data directory's reserve, so a
//! delete still frees space (see `log::reserve`).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::protocol::internal::is_internal;
use crate::protocol::topic_name;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::DeleteTopic;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let access = Access::new(broker, session);
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let catalog = broker.catalog();
        let resolved = match &name {
            Some(name) => catalog.topics.get(name).map(|t| t.name.clone()),
            None => catalog.topic_by_id(id).map(|t| t.name.clone()),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.as_deref().map(topic_name))
            .with_topic_id(id);
        // As Kafka: Delete on the topic, checked before its existence is
        // told.
        if let Some(name) = &name {
            if !access.topic(Operation::Delete, name) {
                responses.push(result.with_error_code(TOPIC_DENIED));
                continue;
            }
        }
        let Some(resolved) = resolved else {
            let code = if name.is_some() {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::UnknownTopicId.code()
            };
            responses.push(result.with_error_code(code));
            continue;
        };
        if !access.topic(Operation::Delete, &resolved) {
            responses.push(result.with_error_code(TOPIC_DENIED));
            continue;
        }
        if is_internal(&resolved) {
            responses.push(
                result
                    .with_name(Some(topic_name(&resolved)))
                    .with_error_code(ResponseError::InvalidTopicException.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Cannot delete internal topic {resolved}"
                    )))),
            );
            continue;
        }
        responses.push(
            match broker.call(ShardId(0), DeleteTopic(resolved.clone())).await {
                Ok(meta) => result
                    .with_name(Some(topic_name(&meta.name)))
                    .with_topic_id(meta.id),
                Err(e) => result
                    .with_error_code(errors::catalog_error(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            },
        );
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
