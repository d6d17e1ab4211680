//! OffsetForLeaderEpoch: for each partition, the largest leader epoch at or
//! below the one asked and the offset where it ended in the leader's log.
//! Followers use it to find where their log diverges from the leader's
//! after a leader change; consumers use it to detect log truncation
//! (KIP-320). Served by the partition's leader only.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::{PartitionAddr, PartitionClient};

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let catalog = broker.catalog();
    let access = Access::new(broker, session);
    // As Kafka: a follower (replica id >= 0, v3+) needs ClusterAction on
    // the cluster, a consumer Describe on the topic.
    let follower = request.replica_id.0 >= 0;
    let follower_allowed = follower && access.cluster(Operation::ClusterAction);
    let topics = request.topics.into_iter().map(|topic| {
        let meta = catalog.topics.get(topic.topic.0.as_str());
        let denied = if follower {
            !follower_allowed
        } else {
            !access.topic(Operation::Describe, topic.topic.0.as_str())
        };
        let parts: Vec<_> = topic
            .partitions
            .into_iter()
            .map(|p| {
                let at = meta.and_then(|m| PartitionAddr::locate(m, p.partition));
                async move {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if denied {
                        return answer.with_error_code(TOPIC_DENIED);
                    }
                    let Some(at) = at else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let end = PartitionClient::new(broker)
                        .epoch_end(&at, p.current_leader_epoch, p.leader_epoch)
                        .await;
                    match end {
                        Ok((epoch, end)) => answer.with_leader_epoch(epoch).with_end_offset(end),
                        Err(e) => answer.with_error_code(errors::partition_error(&e)),
                    }
                }
            })
            .collect();
        async move {
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(join_all(parts).await)
        }
    });
    OffsetForLeaderEpochResponse::default().with_topics(join_all(topics).await)
}
