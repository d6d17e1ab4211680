//! ConsumerGroupHeartbeat (KIP-848): routed to the group's coordinator
//! shard, which computes the member's target assignment server-side.

use std::rc::Rc;

use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

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
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    // As Kafka: Read on the group.
    if !Access::new(broker, session).group(Operation::Read, &group_id) {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP_DENIED);
    }
    let client_host = session.client_host.to_string();
    let call = calls::ConsumerHeartbeat {
        version,
        client_id,
        client_host,
        request,
    };
    match group::call(broker, &group_id, call).await {
        Ok(r) => r,
        Err(code) => ConsumerGroupHeartbeatResponse::default().with_error_code(code),
    }
}
