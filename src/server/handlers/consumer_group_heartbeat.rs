//! ConsumerGroupHeartbeat (KIP-848): routed to the group's coordinator
//! shard, which computes the member's target assignment server-side.

use std::rc::Rc;

use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use crate::group::{self, calls};
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    version: i16,
    client_id: String,
    client_host: String,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
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
