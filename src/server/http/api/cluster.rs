//! `/api/v1/cluster`, `/api/v1/brokers` and `/api/v1/brokers/{id}/configs`:
//! the brokers with their state, the controller, partition health, and a
//! broker's configs (DescribeCluster, DescribeQuorum, Metadata,
//! DescribeConfigs).

use std::rc::Rc;

use hyper::StatusCode;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest};
use serde_json::{json, Value};

use super::kafka;
use super::ApiError;
use crate::protocol::topic_name;
use crate::server::broker::Broker;
use crate::server::handlers;

/// The cluster at a glance: what the console's overview page shows.
pub async fn overview(broker: &Rc<Broker>) -> Result<Value, ApiError> {
    let described = handlers::describe_cluster::handle(
        broker,
        &super::groups::http_session(broker),
        1,
        DescribeClusterRequest::default(),
    );
    let topics = kafka::metadata(broker, None).await;
    let (mut partitions, mut under_replicated, mut offline) = (0, 0, 0);
    for topic in &topics {
        for p in &topic.partitions {
            partitions += 1;
            if p.isr_nodes.len() < p.replica_nodes.len() {
                under_replicated += 1;
            }
            if p.leader_id.0 < 0 {
                offline += 1;
            }
        }
    }
    let config = &broker.config;
    Ok(json!({
        "cluster_id": described.cluster_id.as_str(),
        "node_id": config.broker.node_id,
        "controller_id": controller(broker).await,
        "cluster_mode": broker.cluster_mode(),
        "brokers": broker_list(broker),
        "topics": topics.len(),
        "partitions": partitions,
        "under_replicated_partitions": under_replicated,
        "offline_partitions": offline,
        "shards": config.shards,
        "read_only": config.broker.http_console_read_only,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub async fn brokers(broker: &Rc<Broker>) -> Result<Value, ApiError> {
    Ok(json!({
        "controller_id": controller(broker).await,
        "brokers": broker_list(broker),
    }))
}

/// The active controller: the quorum's leader in a cluster (DescribeQuorum),
/// this node on a single node; None while no leader is known.
async fn controller(broker: &Rc<Broker>) -> Option<i32> {
    if !broker.cluster_mode() {
        return Some(broker.config.broker.node_id);
    }
    let metadata_topic = handlers::describe_quorum::METADATA_TOPIC;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name(metadata_topic))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = handlers::describe_quorum::handle(broker, 2, request).await;
    response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.leader_id.0)
        .filter(|id| *id >= 0)
}

/// Every registered broker with Kafka's name for its state; this node
/// alone (RUNNING) when it is not in a cluster.
fn broker_list(broker: &Rc<Broker>) -> Vec<Value> {
    let catalog = broker.catalog();
    if catalog.brokers.is_empty() {
        let advertised = &broker.config.cluster.advertised;
        return vec![json!({
            "id": broker.config.broker.node_id,
            "host": advertised.host,
            "port": advertised.port,
            "state": "RUNNING",
        })];
    }
    catalog
        .brokers
        .iter()
        .take(crate::limits::HTTP_API_LIST_MAX)
        .map(|(id, b)| {
            let state = if b.in_controlled_shutdown {
                "PENDING_CONTROLLED_SHUTDOWN"
            } else if b.fenced {
                "FENCED"
            } else {
                "RUNNING"
            };
            json!({"id": id, "host": b.host, "port": b.port, "state": state})
        })
        .collect()
}

/// A broker's configs (DescribeConfigs on the broker resource).
pub async fn configs(broker: &Rc<Broker>, id: &str) -> Result<Value, ApiError> {
    let id: i32 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("broker id {id:?} is not a number"),
        )
    })?;
    let configs = kafka::configs(broker, kafka::RESOURCE_BROKER, &id.to_string())?;
    Ok(json!({"broker_id": id, "configs": configs}))
}
