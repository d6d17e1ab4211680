//! The error codes in an answer, for the per-API error counts
//! (`api_stats`): every `error_code` field of the answer, at the top and
//! in its topics, partitions, groups and other entries, as Kafka's
//! brokers count them. Other code fields (`topic_config_error_code`) are
//! not error codes of the answer and are not walked.
//!
//! One impl per answer type the broker sends and per nested entry type
//! that holds error codes: `dispatch` only encodes answers that implement
//! [`ErrorCodes`], so an API added there must say where its codes are.
//! The impls follow the protocol's message structs field by field (the
//! tests check some of them with a code in every place).

use kafka_protocol::messages::*;

/// Calls `out` with every error code of the answer (NONE included: the
/// caller skips it).
pub trait ErrorCodes {
    fn error_codes(&self, out: &mut dyn FnMut(i16));
}
impl ErrorCodes for create_acls_response::CreateAclsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.results.iter().for_each(|x| out(x.error_code));
    }
}
impl ErrorCodes for describe_acls_response::DescribeAclsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for delete_acls_response::DeleteAclsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        for result in &self.filter_results {
            out(result.error_code);
            result.matching_acls.iter().for_each(|x| out(x.error_code));
        }
    }
}
impl ErrorCodes for api_versions_response::ApiVersionsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for metadata_response::MetadataResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
        out(self.error_code);
    }
}
impl ErrorCodes for metadata_response::MetadataResponseTopic {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for metadata_response::MetadataResponsePartition {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for produce_response::ProduceResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.responses.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for produce_response::TopicProduceResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partition_responses
            .iter()
            .for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for produce_response::PartitionProduceResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for fetch_response::FetchResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.responses.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for fetch_response::FetchableTopicResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for fetch_response::PartitionData {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for list_offsets_response::ListOffsetsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for list_offsets_response::ListOffsetsTopicResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for list_offsets_response::ListOffsetsPartitionResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for create_topics_response::CreateTopicsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for create_topics_response::CreatableTopicResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for delete_topics_response::DeleteTopicsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.responses.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for delete_topics_response::DeletableTopicResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for init_producer_id_response::InitProducerIdResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for describe_configs_response::DescribeConfigsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.results.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for describe_configs_response::DescribeConfigsResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for alter_configs_response::AlterConfigsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.responses.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for alter_configs_response::AlterConfigsResourceResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for incremental_alter_configs_response::IncrementalAlterConfigsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.responses.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for incremental_alter_configs_response::AlterConfigsResourceResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for create_partitions_response::CreatePartitionsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.results.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for create_partitions_response::CreatePartitionsTopicResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for delete_records_response::DeleteRecordsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for delete_records_response::DeleteRecordsTopicResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for delete_records_response::DeleteRecordsPartitionResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for describe_log_dirs_response::DescribeLogDirsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.results.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for describe_log_dirs_response::DescribeLogDirsResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for describe_cluster_response::DescribeClusterResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for describe_quorum_response::DescribeQuorumResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for describe_quorum_response::TopicData {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for describe_quorum_response::PartitionData {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for offset_for_leader_epoch_response::OffsetForLeaderEpochResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_for_leader_epoch_response::OffsetForLeaderTopicResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_for_leader_epoch_response::EpochEndOffset {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for elect_leaders_response::ElectLeadersResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.replica_election_results
            .iter()
            .for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for elect_leaders_response::ReplicaElectionResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partition_result
            .iter()
            .for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for elect_leaders_response::PartitionResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for find_coordinator_response::FindCoordinatorResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.coordinators.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for find_coordinator_response::Coordinator {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for join_group_response::JoinGroupResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for sync_group_response::SyncGroupResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for heartbeat_response::HeartbeatResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for leave_group_response::LeaveGroupResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.members.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for leave_group_response::MemberResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for offset_commit_response::OffsetCommitResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_commit_response::OffsetCommitResponseTopic {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_commit_response::OffsetCommitResponsePartition {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for offset_fetch_response::OffsetFetchResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
        out(self.error_code);
        self.groups.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_fetch_response::OffsetFetchResponseTopic {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_fetch_response::OffsetFetchResponseGroup {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.topics.iter().for_each(|x| x.error_codes(out));
        out(self.error_code);
    }
}
impl ErrorCodes for offset_fetch_response::OffsetFetchResponsePartition {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for offset_fetch_response::OffsetFetchResponseTopics {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_fetch_response::OffsetFetchResponsePartitions {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for list_groups_response::ListGroupsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for describe_groups_response::DescribeGroupsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.groups.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for describe_groups_response::DescribedGroup {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for delete_groups_response::DeleteGroupsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.results.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for delete_groups_response::DeletableGroupResult {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for offset_delete_response::OffsetDeleteResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.topics.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_delete_response::OffsetDeleteResponseTopic {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.partitions.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for offset_delete_response::OffsetDeleteResponsePartition {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}
impl ErrorCodes for consumer_group_describe_response::ConsumerGroupDescribeResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.groups.iter().for_each(|x| x.error_codes(out));
    }
}
impl ErrorCodes for consumer_group_describe_response::DescribedGroup {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(answer: &impl ErrorCodes) -> Vec<i16> {
        let mut out = Vec::new();
        answer.error_codes(&mut |c| out.push(c));
        out.sort();
        out
    }

    #[test]
    fn codes_are_found_at_every_level() {
        let created = CreateTopicsResponse::default().with_topics(vec![
            create_topics_response::CreatableTopicResult::default()
                .with_error_code(36)
                .with_topic_config_error_code(99),
            create_topics_response::CreatableTopicResult::default(),
        ]);
        assert_eq!(codes(&created), vec![0, 36], "not the config code");
        let committed = OffsetCommitResponse::default().with_topics(vec![
            offset_commit_response::OffsetCommitResponseTopic::default().with_partitions(vec![
                offset_commit_response::OffsetCommitResponsePartition::default()
                    .with_error_code(25),
                offset_commit_response::OffsetCommitResponsePartition::default()
                    .with_error_code(27),
            ]),
        ]);
        assert_eq!(codes(&committed), vec![25, 27]);
        let fetched = OffsetFetchResponse::default()
            .with_error_code(16)
            .with_groups(vec![
                offset_fetch_response::OffsetFetchResponseGroup::default()
                    .with_error_code(15)
                    .with_topics(vec![
                        offset_fetch_response::OffsetFetchResponseTopics::default()
                            .with_partitions(vec![
                                offset_fetch_response::OffsetFetchResponsePartitions::default()
                                    .with_error_code(3),
                            ]),
                    ]),
            ]);
        assert_eq!(codes(&fetched), vec![3, 15, 16]);
        assert_eq!(
            codes(&HeartbeatResponse::default().with_error_code(27)),
            vec![27]
        );
        assert!(codes(&DescribeClusterResponse::default()).len() == 1);
    }
}
