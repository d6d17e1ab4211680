//! OffsetDelete: removes committed offsets of a group (tombstones), refused
//! per partition with GROUP_SUBSCRIBED_TO_TOPIC while members consume it.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::group::{self, GroupAnswer, GroupCall};
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    match group::call(broker, &group_id, GroupCall::OffsetDelete { request }).await {
        Ok(GroupAnswer::OffsetDelete(r)) => r,
        Ok(_) => OffsetDeleteResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
        Err(code) => OffsetDeleteResponse::default().with_error_code(code),
    }
}
