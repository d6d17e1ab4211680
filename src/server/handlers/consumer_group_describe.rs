//! ConsumerGroupDescribe (KIP-848): each group answered by its coordinator.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use super::authorize::{Access, GROUP_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let access = Access::new(broker, session);
    let access = &access;
    let groups = request.group_ids.into_iter().map(|id| async move {
        let group_id = id.0.to_string();
        // As Kafka: Describe on the group.
        if !access.group(Operation::Describe, &group_id) {
            return DescribedGroup::default()
                .with_group_id(id)
                .with_error_code(GROUP_DENIED);
        }
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
