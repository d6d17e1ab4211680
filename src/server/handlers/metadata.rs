//! Metadata: this broker, and the topics asked for (all when none are named),
//! each partition led by this broker. Unknown topics are created when both
//! the broker (`auto.create.topics.enable`) and the request allow it.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, TOPIC_DENIED};
use super::create_topics::create_with_defaults;
use crate::acl::Operation;
use crate::metadata::{Catalog, TopicMeta};
use crate::protocol::topic_name;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::CatalogError;
use crate::server::errors;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let node = BrokerId(broker.config.broker.node_id);
    let access = Access::new(broker, session);
    let mut topics = Vec::new();
    match request.topics {
        // v0 sends an empty list for "all topics"; v1+ sends null.
        None => topics.extend(all_topics(broker, &access)),
        Some(ref requested) if requested.is_empty() && version == 0 => {
            topics.extend(all_topics(broker, &access))
        }
        Some(requested) => {
            for wanted in requested {
                let catalog = broker.catalog();
                let found = match &wanted.name {
                    Some(name) => catalog
                        .topics
                        .get(name.0.as_str())
                        .cloned()
                        .ok_or_else(|| name.0.to_string()),
                    None => catalog
                        .topic_by_id(wanted.topic_id)
                        .cloned()
                        .ok_or_else(String::new),
                };
                let topic = match found {
                    // As Kafka: a topic the principal may not describe is
                    // refused whether or not it exists (its existence is
                    // not told); one asked for by id is unknown.
                    Ok(topic) if !access.topic(Operation::Describe, &topic.name) => {
                        match &wanted.name {
                            Some(_) => Err((TOPIC_DENIED, topic.name, uuid::Uuid::nil())),
                            None => Err((
                                ResponseError::UnknownTopicId.code(),
                                String::new(),
                                wanted.topic_id,
                            )),
                        }
                    }
                    Ok(topic) => Ok(topic),
                    Err(name) if name.is_empty() => {
                        Err((ResponseError::UnknownTopicId.code(), name, wanted.topic_id))
                    }
                    Err(name) if !access.topic(Operation::Describe, &name) => {
                        Err((TOPIC_DENIED, name, uuid::Uuid::nil()))
                    }
                    Err(name) => {
                        let auto = broker.config.broker.auto_create_topics_enable
                            && (request.allow_auto_topic_creation || version < 4);
                        let may_create = access.cluster(Operation::Create)
                            || access.topic(Operation::Create, &name);
                        match auto_create(broker, &name, auto, may_create).await {
                            Ok(topic) => Ok(topic),
                            Err(code) => Err((code, name, uuid::Uuid::nil())),
                        }
                    }
                };
                topics.push(match topic {
                    Ok(topic) => describe(&topic, node, &broker.catalog()),
                    Err((code, name, id)) => {
                        let mut t = MetadataResponseTopic::default()
                            .with_error_code(code)
                            .with_topic_id(id);
                        t.name = (!name.is_empty()).then(|| topic_name(&name));
                        t
                    }
                });
            }
        }
    }
    let catalog = broker.catalog();
    MetadataResponse::default()
        .with_brokers(brokers(broker, &catalog, &session.listener))
        .with_cluster_id(Some(StrBytes::from_string(catalog.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
}

/// Where a client that came in on `listener` reaches this broker: that
/// listener's advertised endpoint, as Kafka answers.
pub fn own_endpoint(broker: &Broker, listener: &str) -> (String, u16) {
    let cluster = &broker.config.cluster;
    match cluster.listener(listener) {
        Some(l) => (l.advertised_host.clone(), l.advertised_port),
        None => (cluster.advertised.host.clone(), cluster.advertised.port),
    }
}

/// The live brokers, each at its endpoint of `listener`: every unfenced
/// registered one in a cluster, this one on a single node.
pub fn brokers(broker: &Broker, catalog: &Catalog, listener: &str) -> Vec<MetadataResponseBroker> {
    if catalog.brokers.is_empty() {
        let (host, port) = own_endpoint(broker, listener);
        return vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.broker.node_id))
            .with_host(StrBytes::from_string(host))
            .with_port(port as i32)];
    }
    catalog
        .brokers
        .iter()
        // A broker in controlled shutdown stays listed until its session
        // ends, as in Kafka: librdkafka drops a broker missing from
        // Metadata at once, and with it partitions still moving off it.
        .filter(|(_, b)| !b.fenced || b.in_controlled_shutdown)
        .map(|(id, b)| {
            let (host, port) = b.endpoint(listener);
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(*id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port as i32)
        })
        .collect()
}

/// Every topic the principal may describe.
fn all_topics(broker: &Rc<Broker>, access: &Access) -> Vec<MetadataResponseTopic> {
    let node = BrokerId(broker.config.broker.node_id);
    let catalog = broker.catalog();
    catalog
        .topics
        .values()
        .filter(|t| access.topic(Operation::Describe, &t.name))
        .map(|t| describe(t, node, &catalog))
        .collect()
}

/// Creates an unknown topic with the broker defaults, or says why not
/// (`may_create`: the principal has Create on the cluster or the topic).
async fn auto_create(
    broker: &Rc<Broker>,
    name: &str,
    allowed: bool,
    may_create: bool,
) -> Result<TopicMeta, i16> {
    if let Err(e) = crate::metadata::validate_topic_name(name) {
        log::debug!("metadata for an invalid topic name: {e}");
        return Err(ResponseError::InvalidTopicException.code());
    }
    if !allowed {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    if !may_create {
        return Err(TOPIC_DENIED);
    }
    match create_with_defaults(broker, name).await {
        Ok(topic) => Ok(topic),
        // Another connection created it first.
        Err(CatalogError::TopicAlreadyExists(_)) => broker
            .catalog()
            .topics
            .get(name)
            .cloned()
            .ok_or(ResponseError::LeaderNotAvailable.code()),
        Err(e) => Err(errors::catalog_error(&e)),
    }
}

fn describe(topic: &TopicMeta, node: BrokerId, catalog: &Catalog) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
    let partitions = (0..topic.partition_count())
        .map(|index| {
            let p = MetadataResponsePartition::default().with_partition_index(index);
            match topic.replicas.get(index as usize) {
                None => p
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node]),
                Some(set) => {
                    let offline: Vec<i32> = set
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| catalog.brokers.get(r).is_none_or(|b| b.fenced))
                        .collect();
                    let p = if set.leader < 0 {
                        p.with_error_code(ResponseError::LeaderNotAvailable.code())
                    } else {
                        p
                    };
                    p.with_leader_id(BrokerId(set.leader))
                        .with_leader_epoch(set.leader_epoch)
                        .with_replica_nodes(ids(&set.replicas))
                        .with_isr_nodes(ids(&set.isr))
                        .with_offline_replicas(ids(&offline))
                }
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name == crate::group::OFFSETS_TOPIC)
        .with_partitions(partitions)
}
