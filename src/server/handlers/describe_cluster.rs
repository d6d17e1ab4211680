//! DescribeCluster: the cluster id, this broker as the only broker and the
//! controller.

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::broker::Broker;

pub fn handle(
    broker: &Rc<Broker>,
    _version: i16,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node = BrokerId(broker.config.broker.node_id);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.catalog().cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node)
            .with_host(StrBytes::from_string(
                broker.config.cluster.advertised.host.clone(),
            ))
            .with_port(broker.config.cluster.advertised.port as i32)])
}
