//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe) with server-side assignment.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::code;
use crate::server::broker::Broker;

#[derive(Default)]
pub struct ConsumerGroup {
    pub members: HashMap<String, ()>,
}

impl ConsumerGroup {
    pub fn state_name(&self) -> &'static str {
        "Empty"
    }

    pub fn subscribed_topics(&self) -> Vec<String> {
        Vec::new()
    }
}

pub async fn heartbeat(
    _broker: &Rc<Broker>,
    _partition: i32,
    _client_id: String,
    _client_host: String,
    _request: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, i16> {
    Err(code(ResponseError::UnsupportedVersion))
}

pub fn describe(
    _broker: &Rc<Broker>,
    group: &str,
) -> consumer_group_describe_response::DescribedGroup {
    consumer_group_describe_response::DescribedGroup::default()
        .with_group_id(super::classic::str_bytes(group).into())
        .with_error_code(code(ResponseError::GroupIdNotFound))
}

pub fn expire(_broker: &Rc<Broker>, _group: &str, _c: &mut ConsumerGroup, _now: Instant) {}

pub fn check_commit(
    _c: &ConsumerGroup,
    _member_id: &str,
    _epoch: i32,
) -> Result<(), ResponseError> {
    Ok(())
}

pub fn describe_classic(_group: &str, _c: &ConsumerGroup, base: DescribedGroup) -> DescribedGroup {
    base
}
