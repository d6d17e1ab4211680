//! SyncGroup: routed to the group's coordinator shard; followers wait there
//! for the leader's assignment.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::authorize::{Access, GROUP_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if !Access::new(broker, session).group(Operation::Read, &group_id) {
        return SyncGroupResponse::default().with_error_code(GROUP_DENIED);
    }
    match group::call(broker, &group_id, calls::Sync { request }).await {
        Ok(r) => r,
        Err(code) => SyncGroupResponse::default().with_error_code(code),
    }
}
