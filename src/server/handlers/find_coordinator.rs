//! FindCoordinator: consumer groups and transactions are not served yet, so
//! every key answers COORDINATOR_NOT_AVAILABLE (retriable), as a Kafka broker
//! does while its coordinator is loading.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

pub fn handle(version: i16, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let code = ResponseError::CoordinatorNotAvailable.code();
    let message = || {
        Some(StrBytes::from_static_str(
            "consumer groups are not served yet",
        ))
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(code)
                    .with_error_message(message())
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_error_message(if version >= 1 { message() } else { None })
            .with_node_id(BrokerId(-1))
            .with_port(-1)
    }
}
