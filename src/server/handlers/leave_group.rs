//! LeaveGroup: one member (v0-2) or a batch of members (v3+, also by
//! `group.instance.id`), routed to the group's coordinator shard.

use std::rc::Rc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::authorize::{Access, GROUP_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    if !Access::new(broker, session).group(Operation::Read, &group_id) {
        return LeaveGroupResponse::default().with_error_code(GROUP_DENIED);
    }
    match group::call(broker, &group_id, calls::Leave { version, request }).await {
        Ok(r) => r,
        Err(code) => LeaveGroupResponse::default().with_error_code(code),
    }
}
