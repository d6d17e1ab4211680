//! OffsetDelete: removes committed offsets of a group (tombstones), refused
//! per partition with GROUP_SUBSCRIBED_TO_TOPIC while members consume it.

use std::rc::Rc;

use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::group::{self, calls};
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    match group::call(broker, &group_id, calls::OffsetDelete { request }).await {
        Ok(r) => r,
        Err(code) => OffsetDeleteResponse::default().with_error_code(code),
    }
}
