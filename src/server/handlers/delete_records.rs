//! DeleteRecords: moves each partition's log start offset (its low
//! watermark) to the given offset on the owner shard; whole segments below
//! it are deleted. Offset -1 means the high watermark. Internal topics get
//! INVALID_TOPIC_EXCEPTION, as in Kafka's `deleteRecordsOnLocalLog`. On a
//! full disk the log-start checkpoint uses the data directory's reserve,
//! so DeleteRecords still frees space.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::authorize::{Access, TOPIC_DENIED};
use crate::acl::Operation;
use crate::protocol::internal::is_internal;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::errors;
use crate::server::routing::{PartitionAddr, PartitionClient};

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let catalog = broker.catalog();
    let access = Access::new(broker, session);
    let topics = request.topics.into_iter().map(|topic| {
        let meta = catalog.topics.get(topic.name.0.as_str()).cloned();
        // As Kafka: Delete on the topic.
        let denied = !access.topic(Operation::Delete, topic.name.0.as_str());
        async move {
            let parts = topic.partitions.into_iter().map(|p| {
                let at = meta
                    .as_ref()
                    .and_then(|m| PartitionAddr::locate(m, p.partition_index));
                async move {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if denied {
                        return result.with_error_code(TOPIC_DENIED);
                    }
                    let Some(at) = at else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if is_internal(&at.topic) {
                        return result.with_error_code(ResponseError::InvalidTopicException.code());
                    }
                    let deleted = PartitionClient::new(broker)
                        .delete_records(&at, p.offset)
                        .await;
                    match deleted {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => result.with_error_code(errors::partition_error(&e)),
                    }
                }
            });
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(join_all(parts).await)
        }
    });
    DeleteRecordsResponse::default().with_topics(join_all(topics).await)
}
