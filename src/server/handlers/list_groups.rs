//! ListGroups: every shard lists the groups it coordinates; the state
//! filter (v4+) and the type filter (v5+) apply on each shard.

use std::rc::Rc;

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use super::authorize::Access;
use crate::acl::Operation;
use crate::group;
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let access = Access::new(broker, session);
    let states = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let types = request.types_filter.iter().map(|s| s.to_string()).collect();
    let mut groups = group::list_all(broker, states, types).await;
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    // As Kafka: every group with Describe on the cluster, else those the
    // principal may describe.
    if !access.cluster(Operation::Describe) {
        groups.retain(|g| access.group(Operation::Describe, g.group_id.0.as_str()));
    }
    if version < 4 {
        for g in groups.iter_mut() {
            g.group_state = Default::default();
        }
    }
    if version < 5 {
        for g in groups.iter_mut() {
            g.group_type = Default::default();
        }
    }
    ListGroupsResponse::default().with_groups(groups)
}
