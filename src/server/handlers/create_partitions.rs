//! CreatePartitions: grows a topic; new partitions go to the least-loaded
//! shards. A count at or below the current one gets INVALID_PARTITIONS.
//! Internal topics are refused (INVALID_TOPIC_EXCEPTION): a group's
//! offsets partition is its id's hash modulo the partition count, so
//! another count would hide every group's commits.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::protocol::internal::is_internal;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::CreatePartitions;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node = broker.config.broker.node_id;
    let access = Access::new(broker, session);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        // As Kafka: Alter on the topic.
        if !access.topic(Operation::Alter, topic.name.0.as_str()) {
            results.push(result.with_error_code(TOPIC_DENIED));
            continue;
        }
        if is_internal(topic.name.0.as_str()) {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidTopicException.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Cannot change the partition count of internal topic {}",
                        topic.name.0.as_str()
                    )))),
            );
            continue;
        }
        let foreign = topic
            .assignments
            .iter()
            .flatten()
            .any(|a| a.broker_ids.iter().any(|b| b.0 != node));
        if foreign {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "assignments may only name broker {node}"
                    )))),
            );
            continue;
        }
        let change = CreatePartitions {
            topic: topic.name.0.to_string(),
            count: topic.count,
            validate_only: request.validate_only,
        };
        results.push(match broker.call(ShardId(0), change).await {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(errors::catalog_error(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
