//! ConsumerGroupDescribe (KIP-848): each group answered by its coordinator.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use crate::group::{self, calls};
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    _version: i16,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let groups = request.group_ids.into_iter().map(|id| async move {
        let group_id = id.0.to_string();
        let call = calls::ConsumerDescribe {
            group: group_id.clone(),
        };
        match group::call(broker, &group_id, call).await {
            Ok(g) => g,
            Err(code) => DescribedGroup::default()
                .with_group_id(id)
                .with_error_code(code),
        }
    });
    ConsumerGroupDescribeResponse::default().with_groups(join_all(groups).await)
}
