//! OffsetCommit: routed to the group's coordinator shard, which appends the
//! offsets to `__consumer_offsets` and answers once they are durable. A
//! group-level failure is reported on every partition, as Kafka does.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::authorize::{Access, GROUP_DENIED, TOPIC_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    mut request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let access = Access::new(broker, session);
    // As Kafka: Read on the group (every partition answers
    // GROUP_AUTHORIZATION_FAILED otherwise), Read on each topic (a topic
    // refused answers TOPIC_AUTHORIZATION_FAILED and is not committed).
    let group_allowed = access.group(Operation::Read, &group_id);
    let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|t| group_allowed && access.topic(Operation::Read, t.name.0.as_str()));
    request.topics = allowed;
    let refused: Vec<OffsetCommitResponseTopic> = refused
        .into_iter()
        .map(|t| {
            let code = if group_allowed {
                TOPIC_DENIED
            } else {
                GROUP_DENIED
            };
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    if !refused.is_empty() {
        let mut response = if request.topics.is_empty() {
            OffsetCommitResponse::default()
        } else {
            commit(broker, &group_id, request).await
        };
        response.topics.extend(refused);
        return response;
    }
    commit(broker, &group_id, request).await
}

async fn commit(
    broker: &Rc<Broker>,
    group_id: &str,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = group_id.to_string();
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions
                    .iter()
                    .map(|p| p.partition_index)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let code = match group::call(broker, &group_id, calls::OffsetCommit { request }).await {
        Ok(r) => return r,
        Err(code) => code,
    };
    let topics = shape
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|index| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
