//! ListOffsets: latest (-1, the high watermark), earliest (-2, the log start),
//! max timestamp (-3) or the first offset at or after a timestamp, answered
//! per partition by its owner shard.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::{PartitionAddr, PartitionClient};

pub async fn handle(
    broker: &Rc<Broker>,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let catalog = broker.catalog();
    let topics = request.topics.into_iter().map(|topic| {
        let meta = catalog.topics.get(topic.name.0.as_str()).cloned();
        async move {
            let parts = topic.partitions.into_iter().map(|p| {
                let at = meta
                    .as_ref()
                    .and_then(|m| PartitionAddr::locate(m, p.partition_index));
                async move {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Some(at) = at else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if p.timestamp == -3 && version < 7 || p.timestamp < -3 {
                        return response.with_error_code(ResponseError::UnsupportedVersion.code());
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
