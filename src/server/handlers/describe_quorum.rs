//! DescribeQuorum: the controller quorum's leader, epoch, high watermark,
//! each voter's progress and the observers (registered brokers that are not
//! voters, with the metadata offset their heartbeats report), for `corelog
//! metadata-quorum describe`. Answered by any broker (through the active
//! controller). A single node on embedded defaults is its own quorum of one.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::routing::QuorumState;
use crate::shard::ShardId;

/// KRaft's metadata topic, the name DescribeQuorum answers for.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    // As Kafka: Describe on the cluster.
    if !Access::new(broker, session).cluster(Operation::Describe) {
        return DescribeQuorumResponse::default().with_error_code(CLUSTER_DENIED);
    }
    let asks_for_metadata = request.topics.iter().any(|t| {
        t.topic_name.0.as_str() == METADATA_TOPIC
            && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    if !asks_for_metadata {
        return DescribeQuorumResponse::default()
            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
    }
    let status = broker.call(ShardId(0), QuorumState).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let node = broker.config.broker.node_id;
    let partition = PartitionData::default().with_partition_index(0);
    let replica = |v: &crate::cluster::quorum::ReplicaProgress| {
        ReplicaState::default()
            .with_replica_id(BrokerId(v.id))
            .with_log_end_offset(v.log_end_offset as i64)
            .with_last_fetch_timestamp(v.last_fetch_ms)
            .with_last_caught_up_timestamp(v.last_caught_up_ms)
            // v2 added the directory ids; earlier versions cannot carry one.
            .with_replica_directory_id(if version >= 2 {
                v.directory_id.unwrap_or_default()
            } else {
                Default::default()
            })
    };
    let partition = match status {
        Ok(Some(s)) => partition
            .with_leader_id(BrokerId(s.leader_id))
            .with_leader_epoch(s.leader_epoch as i32)
            .with_high_watermark(s.high_watermark as i64)
            .with_current_voters(s.voters.iter().map(replica).collect())
            .with_observers(s.observers.iter().map(replica).collect()),
        Ok(None) => partition
            .with_leader_id(BrokerId(node))
            .with_leader_epoch(0)
            .with_high_watermark(broker.catalog().version as i64)
            .with_current_voters(vec![ReplicaState::default()
                .with_replica_id(BrokerId(node))
                .with_log_end_offset(broker.catalog().version as i64)
                .with_last_fetch_timestamp(now)
                .with_last_caught_up_timestamp(now)
                .with_replica_directory_id(if version >= 2 {
                    broker.config.directory_id.unwrap_or_default()
                } else {
                    Default::default()
                })]),
        // Whatever kept the active controller from answering, the client
        // asks again (as of a partition whose leader moved); the message
        // says why for the operator.
        Err(e) => {
            log::info!("DescribeQuorum: {e}");
            return DescribeQuorumResponse::default()
                .with_error_code(ResponseError::NotLeaderOrFollower.code())
                .with_error_message((version >= 2).then(|| StrBytes::from_string(e.to_string())));
        }
    };
    let voter_ids: Vec<i32> = partition
        .current_voters
        .iter()
        .map(|v| v.replica_id.0)
        .collect();
    let response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition])]);
    if version < 2 {
        return response;
    }
    // v2 names every voter's controller listener.
    let nodes = broker
        .config
        .cluster
        .voters
        .iter()
        .filter(|v| voter_ids.contains(&v.id))
        .map(|v| {
            Node::default()
                .with_node_id(BrokerId(v.id))
                .with_listeners(vec![Listener::default()
                    .with_name(StrBytes::from_static_str("CONTROLLER"))
                    .with_host(StrBytes::from_string(v.host.clone()))
                    .with_port(v.port)])
        })
        .collect();
    response.with_nodes(nodes)
}
