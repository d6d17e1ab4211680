//! ElectLeaders (kafka-leader-election.sh): preferred-leader election gives
//! each partition back to its first replica when that broker is alive and
//! in sync; the controller commits the new leaders. Unclean election on
//! request is refused: corelog elects uncleanly only by topic config, when
//! no in-sync replica is left.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::Access;
use crate::acl::Operation;
use crate::cluster::calls::ControllerError;
use crate::cluster::quorum::ElectionOutcome;
use crate::cluster::records::Rejected;
use crate::protocol::topic_name;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::routing::ElectPreferred;
use crate::shard::ShardId;

const PREFERRED: i8 = 0;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let wanted: Option<Vec<(String, i32)>> = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    // As Kafka: Alter on the cluster.
    if !Access::new(broker, session).cluster(Operation::Alter) {
        return refuse_all(
            wanted,
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        );
    }
    if request.election_type != PREFERRED {
        let message = "only preferred leader election is served; unclean election follows the \
                       topic's unclean.leader.election.enable";
        return refuse_all(wanted, ResponseError::InvalidRequest, message);
    }
    let outcomes = match broker
        .call(ShardId(0), ElectPreferred(wanted.clone()))
        .await
    {
        Ok(outcomes) => outcomes,
        Err(e) => {
            log::info!("ElectLeaders: {e}");
            return refuse_all(wanted, controller_error_code(&e), &e.to_string());
        }
    };
    ElectLeadersResponse::default().with_replica_election_results(results(
        outcomes.into_iter().map(|(topic, partition, outcome)| {
            let (code, message) = match outcome {
                ElectionOutcome::Elected => (0, None),
                ElectionOutcome::NotNeeded => (
                    ResponseError::ElectionNotNeeded.code(),
                    Some("Leader election not needed for topic partition.".to_string()),
                ),
                ElectionOutcome::PreferredNotAvailable => (
                    ResponseError::PreferredLeaderNotAvailable.code(),
                    Some("The preferred leader is not alive or not in sync.".to_string()),
                ),
                ElectionOutcome::UnknownPartition => (
                    ResponseError::UnknownTopicOrPartition.code(),
                    Some("The partition does not exist.".to_string()),
                ),
            };
            (topic, partition, code, message)
        }),
    ))
}

/// The Kafka error of a failed call to the active controller: the client
/// retries on NOT_CONTROLLER (it finds the controller again) and on
/// REQUEST_TIMED_OUT; the message says what happened.
fn controller_error_code(e: &ControllerError) -> ResponseError {
    match e {
        ControllerError::Unavailable { .. } | ControllerError::ShuttingDown => {
            ResponseError::NotController
        }
        // Another change to the same partitions committed first: the
        // election is computed again on retry.
        ControllerError::Rejected(Rejected::Conflict(_)) => ResponseError::NotController,
        ControllerError::Rejected(Rejected::Invalid(_)) | ControllerError::Malformed { .. } => {
            ResponseError::UnknownServerError
        }
        ControllerError::TimedOut { .. } => ResponseError::RequestTimedOut,
    }
}

fn refuse_all(
    wanted: Option<Vec<(String, i32)>>,
    error: ResponseError,
    message: &str,
) -> ElectLeadersResponse {
    let parts = wanted.unwrap_or_default();
    let response = ElectLeadersResponse::default();
    if parts.is_empty() {
        return response.with_error_code(error.code());
    }
    response.with_replica_election_results(results(
        parts
            .into_iter()
            .map(|(t, p)| (t, p, error.code(), Some(message.to_string()))),
    ))
}

/// Groups (topic, partition, code, message) by topic, in order.
fn results(
    items: impl Iterator<Item = (String, i32, i16, Option<String>)>,
) -> Vec<ReplicaElectionResult> {
    let mut out: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, partition, code, message) in items {
        let result = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(code)
            .with_error_message(message.map(StrBytes::from_string));
        match out.last_mut() {
            Some(r) if r.topic.0.as_str() == topic => r.partition_result.push(result),
            _ => out.push(
                ReplicaElectionResult::default()
                    .with_topic(topic_name(&topic))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    out
}
