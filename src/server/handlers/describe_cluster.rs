//! DescribeCluster: the cluster id, the live brokers, and this broker as
//! the controller clients send admin requests to.

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;

pub fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // As Kafka: Describe on the cluster.
    if !Access::new(broker, session).cluster(Operation::Describe) {
        return DescribeClusterResponse::default().with_error_code(CLUSTER_DENIED);
    }
    let node = BrokerId(broker.config.broker.node_id);
    let catalog = broker.catalog();
    let brokers = super::metadata::brokers(broker, &catalog, &session.listener)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(b.node_id)
                .with_host(b.host)
                .with_port(b.port)
        })
        .collect();
    // As KRaft brokers do, name a live broker as the controller: clients
    // send controller-bound admin requests to it and it forwards them.
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(catalog.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(brokers)
}
