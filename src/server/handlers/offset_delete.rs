//! OffsetDelete: removes committed offsets of a group (tombstones), refused
//! per partition with GROUP_SUBSCRIBED_TO_TOPIC while members consume it.

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::authorize::{Access, GROUP_DENIED, TOPIC_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::security::Session;
use crate::server::broker::Broker;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    mut request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let access = Access::new(broker, session);
    // As Kafka: Delete on the group, Read on each topic (a topic refused
    // answers TOPIC_AUTHORIZATION_FAILED and keeps its offsets).
    if !access.group(Operation::Delete, &group_id) {
        return OffsetDeleteResponse::default().with_error_code(GROUP_DENIED);
    }
    let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|t| access.topic(Operation::Read, t.name.0.as_str()));
    request.topics = allowed;
    let refused: Vec<OffsetDeleteResponseTopic> = refused
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(TOPIC_DENIED)
                        })
                        .collect(),
                )
        })
        .collect();
    let mut response = match group::call(broker, &group_id, calls::OffsetDelete { request }).await {
        Ok(r) => r,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
    };
    response.topics.extend(refused);
    response
}
