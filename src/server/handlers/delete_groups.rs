//! DeleteGroups: each group deleted by its coordinator shard, only when it
//! has no members (NON_EMPTY_GROUP otherwise); its offsets get tombstones.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::authorize::{Access, GROUP_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let access = Access::new(broker, session);
    let access = &access;
    let results = request.groups_names.into_iter().map(|id| async move {
        let group_id = id.0.to_string();
        // As Kafka: Delete on the group.
        if !access.group(Operation::Delete, &group_id) {
            return DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(GROUP_DENIED);
        }
        let call = calls::Delete {
            group: group_id.clone(),
        };
        let code = match group::call(broker, &group_id, call).await {
            Ok(()) => 0,
            Err(code) => code,
        };
        DeletableGroupResult::default()
            .with_group_id(id)
            .with_error_code(code)
    });
    DeleteGroupsResponse::default().with_results(join_all(results).await)
}
