//! OffsetCommit: routed to the group's coordinator shard, which appends the
//! offsets to `__consumer_offsets` and answers once they are durable. A
//! group-level failure is reported on every partition, as Kafka does.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::group::{self, calls};
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    _version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
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
