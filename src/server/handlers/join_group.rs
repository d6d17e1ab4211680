//! JoinGroup: routed to the group's coordinator shard, which parks the call
//! until the rebalance completes (see `group::classic`).

use std::rc::Rc;

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, GROUP_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    client_id: String,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.clone();
    // As Kafka: Read on the group.
    if !Access::new(broker, session).group(Operation::Read, &group_id) {
        return fit(version, failed(GROUP_DENIED, member_id));
    }
    let client_host = session.client_host.to_string();
    let call = calls::Join {
        version,
        client_id,
        client_host,
        request,
    };
    let response = match group::call(broker, &group_id, call).await {
        Ok(r) => r,
        Err(code) => failed(code, member_id),
    };
    fit(version, response)
}

fn failed(code: i16, member_id: StrBytes) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(-1)
        .with_member_id(member_id)
}

/// Before v7 the protocol name is a non-null string and there is no type.
fn fit(version: i16, mut response: JoinGroupResponse) -> JoinGroupResponse {
    if version < 7 {
        response.protocol_type = None;
        if response.protocol_name.is_none() {
            response.protocol_name = Some(StrBytes::default());
        }
    }
    response
}
