//! The group's committed offsets, as the console consumer reads and writes
//! them through the group's coordinator: OffsetFetch at start (and after
//! each new assignment), OffsetCommit every second and on exit.

use std::collections::HashMap;
use std::thread;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, OffsetFetchRequest};

use super::super::client::{fail, CliResult, KafkaClient};
use super::super::output::{
    error_text, find_coordinator, is_retriable, str_bytes, topic_name, COORDINATOR_ATTEMPTS_MAX,
    RETRY_BACKOFF,
};

/// How the consumer names itself to the group (Kafka's tool shows
/// `console-consumer` in `kafka-consumer-groups --describe`).
pub const CLIENT_ID: &str = "console-consumer";

/// Who commits: a member, in its generation.
pub struct Committer {
    pub generation: i32,
    pub member_id: String,
}

/// A group's id and a connection to its coordinator.
pub struct GroupOffsets {
    pub id: String,
    pub coordinator: KafkaClient,
}

impl GroupOffsets {
    /// Finds the coordinator (retrying while it loads); a broker that does
    /// not serve consumer groups is a one-line error.
    pub fn find(bootstrap: &mut KafkaClient, id: &str, apis: &[ApiKey]) -> CliResult<GroupOffsets> {
        for api in [
            ApiKey::FindCoordinator,
            ApiKey::OffsetFetch,
            ApiKey::OffsetCommit,
        ]
        .iter()
        .chain(apis)
        {
            if bootstrap.served(*api).is_none() {
                return fail(format!(
                    "--group: the broker at {} does not serve consumer groups (no {api:?})",
                    bootstrap.address()
                ));
            }
        }
        let mut coordinator = find_coordinator(bootstrap, id)?;
        coordinator.set_client_id(CLIENT_ID);
        Ok(GroupOffsets {
            id: id.to_string(),
            coordinator,
        })
    }

    /// Connects to the coordinator again (it moved, or the connection is
    /// unusable), found through `bootstrap`.
    pub fn refind(&mut self, bootstrap: &mut KafkaClient) -> CliResult<()> {
        self.coordinator = find_coordinator(bootstrap, &self.id)?;
        self.coordinator.set_client_id(CLIENT_ID);
        Ok(())
    }

    /// Committed offsets of the topic's partitions, by partition. A
    /// coordinator that moved or is loading (a retriable error) is found
    /// again through `bootstrap` and asked again, bounded, as Kafka's
    /// consumer does.
    pub fn committed(
        &mut self,
        bootstrap: &mut KafkaClient,
        topic: &str,
        partitions: &[i32],
    ) -> CliResult<HashMap<i32, i64>> {
        for attempt in 1..=COORDINATOR_ATTEMPTS_MAX {
            let answer = match self.offset_fetch(topic, partitions) {
                // The connection failed: the coordinator may have moved.
                Err(_) if attempt < COORDINATOR_ATTEMPTS_MAX => {
                    Err(ResponseError::CoordinatorNotAvailable.code())
                }
                answer => answer?,
            };
            match answer {
                Ok(out) => return Ok(out),
                Err(code) if is_retriable(code) && attempt < COORDINATOR_ATTEMPTS_MAX => {
                    thread::sleep(RETRY_BACKOFF);
                    self.refind(bootstrap)?;
                }
                Err(code) => {
                    return fail(format!(
                        "cannot read the committed offsets of group {}: {}",
                        self.id,
                        error_text(code, None)
                    ))
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// One OffsetFetch: the offsets, or the first error code answered.
    fn offset_fetch(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> CliResult<Result<HashMap<i32, i64>, i16>> {
        let client = &mut self.coordinator;
        let version = client.version(ApiKey::OffsetFetch, 9)?;
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            request.groups = vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(str_bytes(&self.id)))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions.to_vec())]))];
        } else {
            request.group_id = GroupId(str_bytes(&self.id));
            request.topics = Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]);
        }
        let response = client.call(version, &request)?;
        let mut out = HashMap::new();
        let (group_error, partitions) = if version >= 8 {
            let mut error = 0;
            let mut partitions = Vec::new();
            for group in response.groups {
                if group.error_code != 0 {
                    error = group.error_code;
                }
                partitions.extend(
                    group
                        .topics
                        .into_iter()
                        .flat_map(|t| t.partitions)
                        .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
                );
            }
            (error, partitions)
        } else {
            let partitions = response
                .topics
                .into_iter()
                .flat_map(|t| t.partitions)
                .map(|p| (p.partition_index, p.committed_offset, p.error_code))
                .collect();
            (response.error_code, partitions)
        };
        if group_error != 0 {
            return Ok(Err(group_error));
        }
        for (index, offset, error) in partitions {
            if error != 0 {
                return Ok(Err(error));
            }
            if offset >= 0 {
                out.insert(index, offset);
            }
        }
        Ok(Ok(out))
    }

    /// Commits `offsets` of `topic`. A coordinator that moved or went away
    /// is found again (bounded); any other refusal is answered as its error code,
    /// for the caller to judge (a member that missed a rebalance gets
    /// REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID).
    pub fn commit(
        &mut self,
        bootstrap: &mut KafkaClient,
        topic: &str,
        offsets: &[(i32, i64)],
        committer: &Committer,
    ) -> CliResult<Option<i16>> {
        for attempt in 1..=COORDINATOR_ATTEMPTS_MAX {
            let refused = match self.offset_commit(topic, offsets, committer) {
                // The connection failed: the coordinator may have moved.
                Err(_) if attempt < COORDINATOR_ATTEMPTS_MAX => {
                    Some(ResponseError::CoordinatorNotAvailable.code())
                }
                refused => refused?,
            };
            match refused {
                Some(code) if is_coordinator_error(code) && attempt < COORDINATOR_ATTEMPTS_MAX => {
                    thread::sleep(RETRY_BACKOFF);
                    self.refind(bootstrap)?;
                }
                refused => return Ok(refused),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn offset_commit(
        &mut self,
        topic: &str,
        offsets: &[(i32, i64)],
        committer: &Committer,
    ) -> CliResult<Option<i16>> {
        let client = &mut self.coordinator;
        let version = client.version(ApiKey::OffsetCommit, 9)?;
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(&self.id)))
            .with_generation_id_or_member_epoch(committer.generation)
            .with_member_id(str_bytes(&committer.member_id))
            .with_retention_time_ms(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|&(index, offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(str_bytes("")))
                        })
                        .collect(),
                )]);
        let response = client.call(version, &request)?;
        Ok(response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .find(|code| *code != 0))
    }
}

/// The coordinator moved or is not ready: find it again and retry.
pub fn is_coordinator_error(code: i16) -> bool {
    [
        ResponseError::NotCoordinator,
        ResponseError::CoordinatorNotAvailable,
        ResponseError::CoordinatorLoadInProgress,
    ]
    .iter()
    .any(|e| e.code() == code)
}
