//! FindCoordinator: this broker coordinates every group (single node); the
//! first lookup creates the internal `__consumer_offsets` topic through the
//! catalog owner (shard 0), whose shards then host the groups. v0-3 ask for
//! one key, v4+ for a batch. Transactions are not served yet: key type 1
//! answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message that says
//! so, which clients treat as fatal at once (librdkafka prints the message);
//! COORDINATOR_NOT_AVAILABLE would have them retry until their timeout.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, GROUP_DENIED};
use crate::acl::Operation;
use crate::group::{partition_for, OFFSETS_TOPIC};
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::{CatalogError, NewTopic};
use crate::server::routing::CreateTopic;
use crate::shard::ShardId;

const KEY_TYPE_GROUP: i8 = 0;

/// What a transactional producer is told until transactions land.
pub const TRANSACTIONS_NOT_SERVED: &str =
    "corelog does not serve Kafka transactions yet; unset transactional.id \
     (an idempotent producer still writes each partition exactly once)";

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let access = Access::new(broker, session);
    // As Kafka: Describe on the group.
    let coordinator = |broker: &Broker, listener: &str, group: &str| {
        if !access.group(Operation::Describe, group) {
            return Err((GROUP_DENIED, "Group authorization failed.".to_string()));
        }
        coordinator(broker, listener, group)
    };
    let outcome = if request.key_type == KEY_TYPE_GROUP {
        ensure_offsets_topic(broker).await
    } else {
        Err((
            ResponseError::TransactionalIdAuthorizationFailed.code(),
            TRANSACTIONS_NOT_SERVED.to_string(),
        ))
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = outcome
                    .clone()
                    .and_then(|()| coordinator(broker, &session.listener, key.as_str()));
                let c = Coordinator::default().with_key(key);
                match found {
                    Ok((node, host, port)) => c.with_node_id(node).with_host(host).with_port(port),
                    Err((code, message)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match outcome.and_then(|()| coordinator(broker, &session.listener, request.key.as_str())) {
        Ok((node, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(host)
            .with_port(port),
        Err((code, message)) => FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_error_message((version >= 1).then(|| StrBytes::from_string(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}

/// The broker leading the group's `__consumer_offsets` partition: this one
/// on a single node.
fn coordinator(
    broker: &Broker,
    listener: &str,
    group: &str,
) -> Result<(BrokerId, StrBytes, i32), (i16, String)> {
    let catalog = broker.catalog();
    let node = broker.config.broker.node_id;
    let leader = catalog
        .topics
        .get(OFFSETS_TOPIC)
        .map(|t| t.leader(partition_for(group, t.partition_count()) as usize, node))
        .unwrap_or(node);
    if leader == node {
        let (host, port) = super::metadata::own_endpoint(broker, listener);
        return Ok((BrokerId(node), StrBytes::from_string(host), port as i32));
    }
    match catalog.brokers.get(&leader).filter(|b| !b.fenced) {
        Some(b) => {
            let (host, port) = b.endpoint(listener);
            Ok((
                BrokerId(leader),
                StrBytes::from_string(host.to_string()),
                port as i32,
            ))
        }
        None => Err((
            ResponseError::CoordinatorNotAvailable.code(),
            "the group's coordinator is not available".to_string(),
        )),
    }
}

/// Registered brokers that are not fenced (1 on a single node).
fn live_brokers(broker: &Broker) -> usize {
    let catalog = broker.catalog();
    catalog
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .count()
        .max(1)
}

/// Creates `__consumer_offsets` (on shard 0, which broadcasts it) if this
/// shard's catalog does not have it yet.
async fn ensure_offsets_topic(broker: &Rc<Broker>) -> Result<(), (i16, String)> {
    if broker.catalog().topics.contains_key(OFFSETS_TOPIC) {
        return Ok(());
    }
    let mut configs = BTreeMap::new();
    // As Kafka's: compacted (the newest commit per group, topic and
    // partition survives; every record has a key), in 100 MiB segments
    // (offsets.topic.segment.bytes) so closed segments get cleaned, and
    // never deleted by age or size.
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("segment.bytes".to_string(), "104857600".to_string());
    configs.insert("retention.ms".to_string(), "-1".to_string());
    configs.insert("retention.bytes".to_string(), "-1".to_string());
    // One commit is one batch, however many partitions it names.
    configs.insert(
        "max.message.bytes".to_string(),
        crate::limits::FRAME_BYTES_MAX.to_string(),
    );
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: broker.config.broker.offsets_topic_num_partitions,
        // offsets.topic.replication.factor, capped to the live brokers as
        // Kafka does when the topic is created before they all registered.
        replication_factor: broker
            .config
            .broker
            .offsets_topic_replicas(live_brokers(broker)),
        configs,
    };
    let call = CreateTopic {
        topic,
        validate_only: false,
    };
    match broker.call(ShardId(0), call).await {
        Ok(_) | Err(CatalogError::TopicAlreadyExists(_)) => Ok(()),
        Err(e) => {
            log::warn!("cannot create {OFFSETS_TOPIC}: {e}");
            Err((
                ResponseError::CoordinatorNotAvailable.code(),
                format!("cannot create {OFFSETS_TOPIC}: {e}"),
            ))
        }
    }
}
