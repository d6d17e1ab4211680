//! `console-consumer --group G`: membership of a consumer group through
//! Kafka's classic group protocol, as Kafka's consumer runs it with an
//! eager assignor. The member joins (JoinGroup, answering
//! MEMBER_ID_REQUIRED with the id it is given), the leader among the
//! members assigns the group's partitions with `range` (`assignor.rs`) and
//! hands the plan to the coordinator (SyncGroup), which gives each member
//! its share. The member then heartbeats every 3 s; a heartbeat or commit
//! that says the group is rebalancing (REBALANCE_IN_PROGRESS), or that it
//! lost its place (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), makes it give
//! up its partitions and join again. On exit it leaves (LeaveGroup), so the
//! others take over its partitions at once rather than after its session
//! timeout.
//!
//! Heartbeats are sent from the consume loop between fetches (at most
//! 500 ms apart), not from a thread of their own: a consumer whose stdout
//! blocks for longer than the session timeout is removed from the group
//! and joins again once it can write.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};

use super::super::client::{fail, CliResult, KafkaClient};
use super::super::output::{error_text, str_bytes, Cluster, RETRY_BACKOFF};
use super::assignor::{self, Member};
use super::offsets::{is_coordinator_error, Committer, GroupOffsets};
use crate::group::assignor::MemberSpec;

/// Kafka consumer defaults: `session.timeout.ms`, `heartbeat.interval.ms`
/// and `max.poll.interval.ms` (the rebalance timeout).
const SESSION_TIMEOUT_MS: i32 = 45_000;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
const REBALANCE_TIMEOUT_MS: i32 = 300_000;
/// How long a JoinGroup or SyncGroup may be held beyond the rebalance
/// timeout before the member gives up on the coordinator, as Kafka's
/// consumer allows.
const JOIN_SLACK: Duration = Duration::from_secs(5);
/// Joins tried in a row (each one waits for a rebalance to complete)
/// before the consumer gives up.
const JOIN_ATTEMPTS_MAX: u32 = 20;
const PROTOCOL_TYPE: &str = "consumer";
const JOIN_GROUP_VERSION_MAX: i16 = 9;
const SYNC_GROUP_VERSION_MAX: i16 = 5;
const HEARTBEAT_VERSION_MAX: i16 = 4;
const LEAVE_GROUP_VERSION_MAX: i16 = 5;

/// Where the member stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Standing {
    /// Not in a generation: must join (at start, and after losing its place).
    Out,
    /// In the current generation, which may still commit, but the group is
    /// rebalancing: commit, then join again.
    Rebalancing,
    /// Holds its assignment in the current generation.
    In,
}

pub struct Membership {
    pub offsets: GroupOffsets,
    topic: String,
    member_id: String,
    generation: i32,
    standing: Standing,
    last_heartbeat: Instant,
}

impl Membership {
    pub fn new(offsets: GroupOffsets, topic: &str) -> Membership {
        Membership {
            offsets,
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            standing: Standing::Out,
            last_heartbeat: Instant::now(),
        }
    }

    /// Whether the member must (re)join before it may fetch.
    pub fn must_join(&self) -> bool {
        self.standing != Standing::In
    }

    /// Who commits: `None` when the member is in no generation (its
    /// commits would be refused).
    pub fn committer(&self) -> Option<Committer> {
        (self.standing != Standing::Out).then(|| Committer {
            generation: self.generation,
            member_id: self.member_id.clone(),
        })
    }

    /// A commit was refused with `code`: a member that missed a rebalance
    /// joins again (its uncommitted progress is read again by the next
    /// owner, as with Kafka's consumer). Answers whether `code` was that.
    pub fn commit_refused(&mut self, code: i16) -> bool {
        match ResponseError::try_from_code(code) {
            Some(ResponseError::RebalanceInProgress) => {
                self.standing = Standing::Out;
                true
            }
            Some(ResponseError::IllegalGeneration) => {
                self.standing = Standing::Out;
                true
            }
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                self.standing = Standing::Out;
                true
            }
            _ => false,
        }
    }

    /// Joins the group and answers this member's partitions of the topic;
    /// `None` when `stop` said to stop while waiting for the group.
    pub fn join(
        &mut self,
        cluster: &mut Cluster,
        stop: &dyn Fn() -> bool,
    ) -> CliResult<Option<Vec<i32>>> {
        self.standing = Standing::Out;
        for _ in 0..JOIN_ATTEMPTS_MAX {
            match self.join_once(cluster, stop)? {
                Attempt::Assigned(partitions) => {
                    self.standing = Standing::In;
                    self.last_heartbeat = Instant::now();
                    log::info!(
                        "group {}: joined generation {} as {}, assigned {}-{partitions:?}",
                        self.offsets.id,
                        self.generation,
                        self.member_id,
                        self.topic
                    );
                    return Ok(Some(partitions));
                }
                Attempt::Stopped => {
                    // The coordinator still owes an answer on this
                    // connection: it cannot carry the LeaveGroup.
                    self.offsets.refind(&mut cluster.bootstrap)?;
                    return Ok(None);
                }
                Attempt::Retry(Some(code)) if is_coordinator_error(code) => {
                    std::thread::sleep(RETRY_BACKOFF);
                    self.offsets.refind(&mut cluster.bootstrap)?;
                }
                Attempt::Retry(_) => {}
            }
            if stop() {
                return Ok(None);
            }
        }
        fail(format!(
            "could not join group {} in {JOIN_ATTEMPTS_MAX} attempts",
            self.offsets.id
        ))
    }

    fn join_once(&mut self, cluster: &mut Cluster, stop: &dyn Fn() -> bool) -> CliResult<Attempt> {
        let group = GroupId(str_bytes(&self.offsets.id));
        let wait = Duration::from_millis(REBALANCE_TIMEOUT_MS as u64) + JOIN_SLACK;
        let client = &mut self.offsets.coordinator;
        let version = client.version(ApiKey::JoinGroup, JOIN_GROUP_VERSION_MAX)?;
        let request = JoinGroupRequest::default()
            .with_group_id(group.clone())
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(str_bytes(&self.member_id))
            .with_protocol_type(str_bytes(PROTOCOL_TYPE))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(str_bytes(assignor::RANGE))
                .with_metadata(assignor::subscription(&self.topic))]);
        let joined = match client.call_waiting(version, &request, wait, stop) {
            Ok(Some(joined)) => joined,
            Ok(None) => return Ok(Attempt::Stopped),
            Err(_) => return Ok(Attempt::connection_failed()),
        };
        match ResponseError::try_from_code(joined.error_code) {
            None => {}
            Some(ResponseError::MemberIdRequired) => {
                self.member_id = joined.member_id.to_string();
                return Ok(Attempt::Retry(None));
            }
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                return Ok(Attempt::Retry(None));
            }
            Some(ResponseError::IllegalGeneration | ResponseError::RebalanceInProgress) => {
                return Ok(Attempt::Retry(None))
            }
            Some(_) if is_coordinator_error(joined.error_code) => {
                return Ok(Attempt::Retry(Some(joined.error_code)))
            }
            Some(ResponseError::InconsistentGroupProtocol) => {
                return fail(format!(
                    "cannot join group {}: its members use another protocol than the \
                     classic consumer protocol with the range assignor ({})",
                    self.offsets.id,
                    error_text(joined.error_code, None)
                ))
            }
            Some(_) => {
                return fail(format!(
                    "cannot join group {}: {}",
                    self.offsets.id,
                    error_text(joined.error_code, None)
                ))
            }
        }
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let protocol = joined
            .protocol_name
            .as_ref()
            .map_or(assignor::RANGE.to_string(), |p| p.to_string());
        let assignments = if joined.leader.as_str() == self.member_id {
            plan(&joined.members, &protocol, cluster)?
        } else {
            Vec::new()
        };
        let client = &mut self.offsets.coordinator;
        let version = client.version(ApiKey::SyncGroup, SYNC_GROUP_VERSION_MAX)?;
        let request = SyncGroupRequest::default()
            .with_group_id(group)
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_protocol_type(Some(str_bytes(PROTOCOL_TYPE)))
            .with_protocol_name(Some(str_bytes(&protocol)))
            .with_assignments(assignments);
        let synced = match client.call_waiting(version, &request, wait, stop) {
            Ok(Some(synced)) => synced,
            Ok(None) => return Ok(Attempt::Stopped),
            Err(_) => return Ok(Attempt::connection_failed()),
        };
        match ResponseError::try_from_code(synced.error_code) {
            None => {}
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                return Ok(Attempt::Retry(None));
            }
            Some(ResponseError::IllegalGeneration | ResponseError::RebalanceInProgress) => {
                return Ok(Attempt::Retry(None))
            }
            Some(_) if is_coordinator_error(synced.error_code) => {
                return Ok(Attempt::Retry(Some(synced.error_code)))
            }
            Some(_) => {
                return fail(format!(
                    "cannot join group {}: {}",
                    self.offsets.id,
                    error_text(synced.error_code, None)
                ))
            }
        }
        let partitions = assignor::decode_assignment(&synced.assignment, &self.topic)
            .or_else(|e| fail(format!("group {}: the leader sent {e}", self.offsets.id)))?;
        Ok(Attempt::Assigned(partitions))
    }

    /// Heartbeats when one is due. A group that rebalances, or that lost
    /// this member, makes the member join again; a coordinator that moved
    /// is found again.
    pub fn heartbeat_if_due(&mut self, bootstrap: &mut KafkaClient) -> CliResult<()> {
        if self.standing != Standing::In || self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(());
        }
        self.last_heartbeat = Instant::now();
        let client = &mut self.offsets.coordinator;
        let version = client.version(ApiKey::Heartbeat, HEARTBEAT_VERSION_MAX)?;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&self.offsets.id)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let code = match client.call(version, &request) {
            Ok(response) => response.error_code,
            Err(_) => ResponseError::CoordinatorNotAvailable.code(),
        };
        match ResponseError::try_from_code(code) {
            None => {}
            Some(ResponseError::RebalanceInProgress) => {
                log::info!("group {}: rebalancing", self.offsets.id);
                self.standing = Standing::Rebalancing;
            }
            Some(_) if is_coordinator_error(code) => self.offsets.refind(bootstrap)?,
            Some(_) if self.commit_refused(code) => {
                log::info!(
                    "group {}: lost generation {} ({}); joining again",
                    self.offsets.id,
                    self.generation,
                    error_text(code, None)
                );
            }
            Some(_) => {
                return fail(format!(
                    "heartbeat to group {}: {}",
                    self.offsets.id,
                    error_text(code, None)
                ))
            }
        }
        Ok(())
    }

    /// Leaves the group, so the others take over at once. Best effort: a
    /// member that cannot say goodbye is removed at its session timeout.
    pub fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let client = &mut self.offsets.coordinator;
        let Ok(version) = client.version(ApiKey::LeaveGroup, LEAVE_GROUP_VERSION_MAX) else {
            return;
        };
        let mut request =
            LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(&self.offsets.id)));
        if version >= 3 {
            request.members = vec![MemberIdentity::default()
                .with_member_id(str_bytes(&self.member_id))
                .with_reason(Some(str_bytes("the consumer is closing")))];
        } else {
            request.member_id = str_bytes(&self.member_id);
        }
        match client.call(version, &request) {
            Ok(response) => {
                // From v3 each member leaving has its own error code.
                let code = std::iter::once(response.error_code)
                    .chain(response.members.iter().map(|m| m.error_code))
                    .find(|code| *code != 0);
                if let Some(code) = code {
                    log::warn!(
                        "group {}: LeaveGroup: {}",
                        self.offsets.id,
                        error_text(code, None)
                    );
                }
                self.standing = Standing::Out;
                self.member_id.clear();
            }
            Err(e) => log::warn!("group {}: LeaveGroup: {e}", self.offsets.id),
        }
    }
}

enum Attempt {
    Assigned(Vec<i32>),
    /// Join again; with the error code when the coordinator must be found again.
    Retry(Option<i16>),
    Stopped,
}

impl Attempt {
    /// The coordinator's connection failed: it may have moved.
    fn connection_failed() -> Attempt {
        Attempt::Retry(Some(ResponseError::CoordinatorNotAvailable.code()))
    }
}

/// The leader's part: every member's assignment under `protocol` (this
/// consumer offers only `range`, so the group chose it).
fn plan(
    members: &[JoinGroupResponseMember],
    protocol: &str,
    cluster: &mut Cluster,
) -> CliResult<Vec<SyncGroupRequestAssignment>> {
    if protocol != assignor::RANGE {
        return fail(format!("the group chose assignor {protocol:?}, not range"));
    }
    let members: Vec<Member> = members
        .iter()
        .map(|m| {
            let (version, topics) = assignor::decode_subscription(&m.metadata).unwrap_or_default();
            Member {
                id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                version,
                topics,
            }
        })
        .collect();
    let topics: Vec<String> = members
        .iter()
        .flat_map(|m| m.topics.iter().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let metadata = cluster.metadata(Some(&topics))?;
    let counts: BTreeMap<String, i32> = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            let name = t.name.as_ref()?.to_string();
            Some((name, t.partitions.len() as i32))
        })
        .collect();
    let specs: Vec<MemberSpec<String>> = members
        .iter()
        .map(|m| MemberSpec {
            id: &m.id,
            instance_id: m.instance_id.as_deref(),
            topics: m.topics.clone(),
        })
        .collect();
    let plan = crate::group::assignor::range(&specs, &counts);
    Ok(members
        .iter()
        .map(|m| {
            let empty = BTreeMap::new();
            let partitions = plan.get(&m.id).unwrap_or(&empty);
            SyncGroupRequestAssignment::default()
                .with_member_id(str_bytes(&m.id))
                .with_assignment(assignor::encode_assignment(m.version, partitions))
        })
        .collect())
}
