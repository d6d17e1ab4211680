//! InitProducerId for idempotent producers: a fresh producer id from shard 0
//! (never reused, even across restarts) with epoch 0. A producer that asks
//! again (KIP-360 epoch bump after an error) also gets a fresh id, which
//! Kafka allows for non-transactional producers. Transactional ids are not
//! served yet: TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal at once.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::CatalogError;
use crate::server::errors;
use crate::server::routing::AllocateProducerId;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        // Fatal for the client at once, as FindCoordinator's answer for a
        // transactional id (see there).
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // As Kafka (KIP-679): an idempotent producer needs IdempotentWrite on
    // the cluster, or Write on some topic.
    let access = Access::new(broker, session);
    if !access.cluster(Operation::IdempotentWrite) && !access.any_topic(Operation::Write) {
        return response.with_error_code(CLUSTER_DENIED);
    }
    match broker.call(ShardId(0), AllocateProducerId).await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        // Shard 0 is stopping: the producer finds a coordinator again.
        Err(CatalogError::Unavailable(_)) => {
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
        Err(e) => {
            log::warn!("InitProducerId: no producer id: {e}");
            response.with_error_code(errors::catalog_error(&e))
        }
    }
}
