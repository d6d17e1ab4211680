//! DescribeGroups: each group answered by its coordinator shard. An unknown
//! group is Dead (v0-5) or GROUP_ID_NOT_FOUND (v6+), as in Kafka.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
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
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let access = Access::new(broker, session);
    let access = &access;
    let groups = request.groups.into_iter().map(|id| async move {
        let group_id = id.0.to_string();
        // As Kafka: Describe on the group.
        if !access.group(Operation::Describe, &group_id) {
            return failed(id, GROUP_DENIED);
        }
        let call = calls::Describe {
            group: group_id.clone(),
        };
        let mut described = match group::call(broker, &group_id, call).await {
            Ok(g) => g,
            Err(code) => failed(id, code),
        };
        if version < 6 && described.error_code == ResponseError::GroupIdNotFound.code() {
            described.error_code = 0;
        }
        if version < 6 {
            described.error_message = None;
        }
        if version >= 3 && request.include_authorized_operations {
            described.authorized_operations = 0;
        }
        described
    });
    DescribeGroupsResponse::default().with_groups(join_all(groups).await)
}

fn failed(id: kafka_protocol::messages::GroupId, code: i16) -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(id)
        .with_error_code(code)
        .with_group_state(StrBytes::from_static_str("Dead"))
}
