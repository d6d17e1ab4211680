//! SyncGroup: routed to the group's coordinator shard; followers wait there
//! for the leader's assignment.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use crate::group::{self, calls};
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    _version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    match group::call(broker, &group_id, calls::Sync { request }).await {
        Ok(r) => r,
        Err(code) => SyncGroupResponse::default().with_error_code(code),
    }
}
