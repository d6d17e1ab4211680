//! DescribeLogDirs: the one data directory, with the size of every partition
//! asked for (all when the request names none), gathered from every shard.

use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::Operation;
use crate::protocol::topic_name;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::routing::PartitionSizes;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // As Kafka: Describe on the cluster, else the error and no results.
    if !Access::new(broker, session).cluster(Operation::Describe) {
        return DescribeLogDirsResponse::default().with_error_code(CLUSTER_DENIED);
    }
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let shards = broker.mesh().shard_count();
    let sizes = join_all((0..shards).map(|s| broker.call(ShardId(s), PartitionSizes))).await;
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (topic, partition, size) in sizes.into_iter().flatten() {
        let asked = wanted.as_ref().is_none_or(|w| {
            w.get(&topic)
                .is_some_and(|parts| parts.contains(&partition))
        });
        if asked {
            topics.entry(topic).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(partition)
                    .with_partition_size(size as i64)
                    .with_offset_lag(0),
            );
        }
    }
    let dir = std::fs::canonicalize(&broker.config.data_dir)
        .unwrap_or_else(|_| broker.config.data_dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_total_bytes(-1)
        .with_usable_bytes(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    DescribeLogDirsResponse::default().with_results(vec![result])
}
