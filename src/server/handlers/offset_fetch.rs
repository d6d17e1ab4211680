//! OffsetFetch: one group (v1-7) or several (v8+), each answered by its
//! coordinator shard. Null topics ask for every committed offset of the
//! group. An offset never committed answers -1.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::authorize::{Access, GROUP_DENIED, TOPIC_DENIED};
use crate::acl::Operation;
use crate::group::{self, calls};
use crate::protocol::topic_name;
use crate::security::Session;
use crate::server::broker::Broker;

type Topics = Option<Vec<(String, Vec<i32>)>>;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let access = Access::new(broker, session);
    let access = &access;
    if version >= 8 {
        let groups = request.groups.into_iter().map(|g| {
            let topics: Topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            // v9: a KIP-848 member names itself; its epoch is checked.
            let member = (g.member_id.map(|m| m.to_string()), g.member_epoch);
            async move {
                let group_id = g.group_id.0.to_string();
                let base = OffsetFetchResponseGroup::default().with_group_id(g.group_id);
                match fetch_one(broker, access, &group_id, topics, member).await {
                    Ok(topics) => base.with_topics(
                        topics
                            .into_iter()
                            .map(|(name, partitions)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&name))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    ),
                    Err(code) => base.with_error_code(code),
                }
            }
        });
        return OffsetFetchResponse::default().with_groups(join_all(groups).await);
    }
    let group_id = request.group_id.0.to_string();
    let asked: Topics = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let (topics, error) =
        match fetch_one(broker, access, &group_id, asked.clone(), (None, -1)).await {
            Ok(topics) => (topics, 0),
            // Before v2 there is no group-level error: every partition carries it.
            Err(code) => (
                asked
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, partitions)| {
                        let parts = partitions
                            .into_iter()
                            .map(|p| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_error_code(code)
                            })
                            .collect();
                        (name, parts)
                    })
                    .collect(),
                code,
            ),
        };
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            let mut out = OffsetFetchResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_committed_offset(p.committed_offset)
                                .with_metadata(p.metadata)
                                .with_error_code(p.error_code);
                            if version >= 5 {
                                out = out.with_committed_leader_epoch(p.committed_leader_epoch);
                            }
                            out
                        })
                        .collect(),
                )
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(error)
    } else {
        response
    }
}

/// One group's committed offsets. As Kafka: Describe on the group; of
/// the topics asked for, one the principal may not describe answers
/// TOPIC_AUTHORIZATION_FAILED, and all topics (none named) are those it
/// may describe.
async fn fetch_one(
    broker: &Rc<Broker>,
    access: &Access<'_>,
    group_id: &str,
    topics: Topics,
    (member_id, member_epoch): (Option<String>, i32),
) -> Result<Vec<(String, Vec<OffsetFetchResponsePartitions>)>, i16> {
    if !access.group(Operation::Describe, group_id) {
        return Err(GROUP_DENIED);
    }
    let all = topics.is_none();
    let call = calls::OffsetFetch {
        group: group_id.to_string(),
        topics,
        member_id,
        member_epoch,
    };
    let mut fetched = group::call(broker, group_id, call).await?;
    if all {
        fetched.retain(|(name, _)| access.topic(Operation::Describe, name));
    } else {
        for (name, partitions) in fetched.iter_mut() {
            if !access.topic(Operation::Describe, name) {
                for p in partitions.iter_mut() {
                    *p = OffsetFetchResponsePartitions::default()
                        .with_partition_index(p.partition_index)
                        .with_committed_offset(-1)
                        .with_error_code(TOPIC_DENIED);
                }
            }
        }
    }
    Ok(fetched)
}
