//! ListOffsets: latest (-1, the high watermark), earliest (-2, the log start),
//! max timestamp (-3) or the first offset at or after a timestamp, answered
//! per partition by its owner shard. v0 answers Kafka's legacy list of
//! offsets instead (`max_num_offsets` of them: the high watermark or the
//! segment base offsets before a time, largest first;
//! `PartitionLog::legacy_offsets_before`).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::{PartitionAddr, PartitionClient};

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let catalog = broker.catalog();
    let access = Access::new(broker, session);
    // As Kafka (v1 and later): a partition named more than once in one
    // request gets INVALID_REQUEST at every place it is named.
    let mut named: HashMap<(&str, i32), usize> = HashMap::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            *named
                .entry((topic.name.0.as_str(), p.partition_index))
                .or_default() += 1;
        }
    }
    let repeated: HashSet<(String, i32)> = named
        .into_iter()
        .filter(|&(_, count)| count > 1 && version >= 1)
        .map(|((name, index), _)| (name.to_string(), index))
        .collect();
    let repeated = &repeated;
    let topics = request.topics.into_iter().map(|topic| {
        let meta = catalog.topics.get(topic.name.0.as_str()).cloned();
        // As Kafka: Describe on the topic.
        let denied = !access.topic(Operation::Describe, topic.name.0.as_str());
        async move {
            let parts = topic.partitions.into_iter().map(|p| {
                let at = meta
                    .as_ref()
                    .and_then(|m| PartitionAddr::locate(m, p.partition_index));
                let is_repeated = !repeated.is_empty()
                    && repeated.contains(&(topic.name.0.to_string(), p.partition_index));
                async move {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if denied {
                        return response.with_error_code(TOPIC_DENIED);
                    }
                    if is_repeated {
                        return response.with_error_code(ResponseError::InvalidRequest.code());
                    }
                    let Some(at) = at else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if p.timestamp == -3 && version < 7 || p.timestamp < -3 {
                        return response.with_error_code(ResponseError::UnsupportedVersion.code());
                    }
                    if version == 0 {
                        // A negative count asks for nothing.
                        let max_offsets = usize::try_from(p.max_num_offsets).unwrap_or(0);
                        return match PartitionClient::new(broker)
                            .legacy_offsets(&at, p.timestamp, max_offsets)
                            .await
                        {
                            Ok(offsets) => response.with_old_style_offsets(offsets),
                            Err(e) => response.with_error_code(errors::partition_error(&e)),
                        };
                    }
                    let listed = PartitionClient::new(broker)
                        .list_offsets(&at, p.timestamp)
                        .await;
                    match listed {
                        Ok(Some((offset, timestamp))) => {
                            let response = response.with_offset(offset).with_timestamp(timestamp);
                            // The leader epoch exists from v4 on; setting it
                            // earlier is an encoding error.
                            if version >= 4 {
                                response.with_leader_epoch(0)
                            } else {
                                response
                            }
                        }
                        Ok(None) => response,
                        Err(e) => response.with_error_code(errors::partition_error(&e)),
                    }
                }
            });
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(join_all(parts).await)
        }
    });
    ListOffsetsResponse::default().with_topics(join_all(topics).await)
}
