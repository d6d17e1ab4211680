//! InitProducerId for idempotent producers: a fresh producer id from shard 0
//! (never reused, even across restarts) with epoch 0. A producer that asks
//! again (KIP-360 epoch bump after an error) also gets a fresh id, which
//! Kafka allows for non-transactional producers. Transactional ids are not
//! served yet: TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal at once.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::server::broker::Broker;
use crate::server::catalog::CatalogError;
use crate::server::errors;
use crate::server::routing::AllocateProducerId;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
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
