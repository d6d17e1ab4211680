//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
//! as Kafka's `GroupCoordinator` runs it, plus the offset APIs that both
//! protocols share.
//!
//! States: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and
//! back to PreparingRebalance on any membership or metadata change. A
//! rebalance completes when every known member has rejoined (or the
//! rebalance timeout passes; the absent ones are removed); the first
//! rebalance of an empty group waits `group.initial.rebalance.delay.ms`
//! (extended by each new joiner, up to the rebalance timeout) so a fleet
//! starting together gets one rebalance. The protocol type, protocol names
//! and metadata are opaque: the leader's assignor decides.
//!
//! All state is on the coordinator's shard; each function borrows the group
//! map only inside synchronous code and parks callers on oneshot channels.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::Decodable;

use super::records::{self, GroupValue, MemberValue, OffsetValue};
use super::{append, code, group_append_error, millis, persist_later, str_bytes, Group, GroupHost};
use crate::limits;
use crate::partition::now_ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join: Option<oneshot::Sender<JoinGroupResponse>>,
    sync: Option<oneshot::Sender<SyncGroupResponse>>,
    heartbeat_deadline: Instant,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Default)]
pub struct ClassicGroup {
    pub state: State,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// group.instance.id -> member id of the static members.
    instances: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or expire.
    pending: HashMap<String, Instant>,
    /// When the current rebalance completes at the latest.
    rebalance_deadline: Option<Instant>,
    /// The initial delay of an empty group's first rebalance: (now, cap).
    initial_delay: Option<(Instant, Instant)>,
    state_timestamp_ms: i64,
}

impl ClassicGroup {
    /// A group as its last GroupMetadataValue left it. Members get a fresh
    /// session to heartbeat again after a restart.
    pub fn restore(v: GroupValue, now: Instant) -> ClassicGroup {
        let mut group = ClassicGroup {
            state: if v.members.is_empty() {
                State::Empty
            } else {
                State::Stable
            },
            protocol_type: (!v.protocol_type.is_empty()).then_some(v.protocol_type),
            protocol: v.protocol.clone(),
            generation: v.generation,
            leader: v.leader,
            state_timestamp_ms: v.state_timestamp_ms,
            ..ClassicGroup::default()
        };
        let protocol = v.protocol.unwrap_or_default();
        for m in v.members {
            if let Some(instance) = &m.group_instance_id {
                group
                    .instances
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    join: None,
                    sync: None,
                    heartbeat_deadline: now + millis(m.session_timeout_ms),
                },
            );
        }
        group
    }

    /// The record that stores this group's metadata (after a rebalance).
    fn metadata_entry(&self, id: &str) -> (Bytes, Option<Bytes>) {
        let protocol = self.protocol.clone().unwrap_or_default();
        let value = GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        };
        (records::group_key(id), Some(records::group_value(&value)))
    }

    fn set_state(&mut self, state: State) {
        self.state = state;
        self.state_timestamp_ms = now_ms();
    }

    /// True if the member's protocols fit the group (Kafka's `supportsProtocols`).
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// The protocol most members prefer among those all of them support.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| *c == n))
            {
                votes[i] += 1;
            }
        }
        let best = votes.iter().copied().max()?;
        let i = votes.iter().position(|v| *v == best)?;
        Some(candidates[i].clone())
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join.is_some())
    }

    /// Starts a rebalance: every member must rejoin.
    fn prepare_rebalance(&mut self, now: Instant, initial_delay_ms: u64) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(waiter) = m.sync.take() {
                    let _ = waiter.send(
                        SyncGroupResponse::default()
                            .with_error_code(code(ResponseError::RebalanceInProgress)),
                    );
                }
            }
        }
        let timeout = millis(
            self.members
                .values()
                .map(|m| m.rebalance_timeout_ms)
                .max()
                .unwrap_or(0),
        );
        if self.state == State::Empty && initial_delay_ms > 0 {
            let delay = Duration::from_millis(initial_delay_ms);
            self.initial_delay = Some((now + delay.min(timeout), now + timeout));
        }
        self.rebalance_deadline = Some(now + timeout);
        self.set_state(State::PreparingRebalance);
    }

    /// Completes the join phase if it may: everyone rejoined (after the
    /// initial delay) or the rebalance timeout passed. Returns the metadata
    /// record to persist when the group became empty.
    fn maybe_complete_join(&mut self, id: &str, now: Instant) -> Option<(Bytes, Option<Bytes>)> {
        if self.state != State::PreparingRebalance {
            return None;
        }
        let timed_out = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delaying = self.initial_delay.is_some_and(|(until, _)| now < until);
        if !(timed_out || (!delaying && self.all_joined())) {
            return None;
        }
        self.initial_delay = None;
        self.rebalance_deadline = None;
        self.pending.clear();
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for member in absent {
            log::info!("group {id}: member {member} did not rejoin in time; removed");
            self.remove_member(&member);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(State::Empty);
            return Some(self.metadata_entry(id));
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(State::CompletingRebalance);
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let all: Vec<JoinGroupResponseMember> = self
            .members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(str_bytes(&m.id))
                    .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                    .with_metadata(m.metadata(&protocol))
            })
            .collect();
        for m in self.members.values_mut() {
            m.heartbeat_deadline = now + millis(m.session_timeout_ms);
            if let Some(waiter) = m.join.take() {
                let members = if m.id == leader {
                    all.clone()
                } else {
                    Vec::new()
                };
                let _ = waiter.send(self_join_response(
                    self.generation,
                    self.protocol_type.as_deref(),
                    &protocol,
                    &leader,
                    &m.id,
                    members,
                ));
            }
        }
        None
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(m) = self.members.shift_remove(member_id) {
            if let Some(instance) = &m.instance_id {
                if self.instances.get(instance).map(String::as_str) == Some(member_id) {
                    self.instances.remove(instance);
                }
            }
            if let Some(waiter) = m.join {
                let _ = waiter.send(join_error(ResponseError::UnknownMemberId, member_id));
            }
            if let Some(waiter) = m.sync {
                let _ = waiter.send(
                    SyncGroupResponse::default()
                        .with_error_code(code(ResponseError::UnknownMemberId)),
                );
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// After members left: rebalance the rest, or become empty.
    fn after_departure(
        &mut self,
        id: &str,
        now: Instant,
        initial_delay_ms: u64,
    ) -> Option<(Bytes, Option<Bytes>)> {
        match self.state {
            State::Stable | State::CompletingRebalance => {
                if self.members.is_empty() && self.pending.is_empty() {
                    self.generation += 1;
                    self.protocol = None;
                    self.set_state(State::Empty);
                    return Some(self.metadata_entry(id));
                }
                self.prepare_rebalance(now, initial_delay_ms);
                self.maybe_complete_join(id, now)
            }
            State::PreparingRebalance => self.maybe_complete_join(id, now),
            State::Empty | State::Dead => None,
        }
    }

    fn current_join_response(&self, member_id: &str) -> JoinGroupResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if member_id == leader {
            self.members
                .values()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.id))
                        .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                        .with_metadata(m.metadata(&protocol))
                })
                .collect()
        } else {
            Vec::new()
        };
        self_join_response(
            self.generation,
            self.protocol_type.as_deref(),
            &protocol,
            &leader,
            member_id,
            members,
        )
    }
}

fn self_join_response(
    generation: i32,
    protocol_type: Option<&str>,
    protocol: &str,
    leader: &str,
    member_id: &str,
    members: Vec<JoinGroupResponseMember>,
) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_generation_id(generation)
        .with_protocol_type(protocol_type.map(str_bytes))
        .with_protocol_name(Some(str_bytes(protocol)))
        .with_leader(str_bytes(leader))
        .with_member_id(str_bytes(member_id))
        .with_members(members)
}

fn join_error(e: ResponseError, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code(e))
        .with_generation_id(-1)
        .with_member_id(str_bytes(member_id))
}

enum Step<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub async fn join<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    version: i16,
    client_id: String,
    client_host: String,
    request: JoinGroupRequest,
) -> Result<JoinGroupResponse, i16> {
    let step = join_step(host, partition, version, client_id, client_host, request)?;
    Ok(match step {
        Step::Now(r) => r,
        Step::Later(rx) => rx
            .await
            .unwrap_or_else(|_| join_error(ResponseError::UnknownMemberId, "")),
    })
}

fn join_step<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    version: i16,
    client_id: String,
    client_host: String,
    request: JoinGroupRequest,
) -> Result<Step<JoinGroupResponse>, i16> {
    let config = host.broker_config();
    let now = Instant::now();
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|s| s.to_string());
    let fail = |e: ResponseError| Ok(Step::Now(join_error(e, &member_id)));
    if request.session_timeout_ms < config.group_min_session_timeout_ms
        || request.session_timeout_ms > config.group_max_session_timeout_ms
    {
        return fail(ResponseError::InvalidSessionTimeout);
    }
    let protocols: Vec<(String, Bytes)> = request
        .protocols
        .iter()
        .map(|p| (p.name.to_string(), p.metadata.clone()))
        .collect();
    let metadata_bytes: usize = protocols.iter().map(|(n, m)| n.len() + m.len()).sum();
    if metadata_bytes > limits::GROUP_MEMBER_METADATA_BYTES_MAX {
        return fail(ResponseError::InconsistentGroupProtocol);
    }
    let protocol_type = request.protocol_type.to_string();
    let mut groups = host.groups().groups.borrow_mut();
    if !groups.contains_key(&group_id) {
        if !member_id.is_empty() {
            return fail(ResponseError::UnknownMemberId);
        }
        if groups.len() >= limits::GROUPS_PER_SHARD_MAX {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        groups.insert(group_id.clone(), Group::new(&group_id, partition));
    }
    let group = groups.get_mut(&group_id).expect("inserted above");
    if group
        .consumer
        .as_ref()
        .is_some_and(|c| !c.members.is_empty())
    {
        return fail(ResponseError::InconsistentGroupProtocol);
    }
    if let Some(c) = group.consumer.take() {
        // An empty consumer group becomes a classic one, as in Kafka.
        persist_later(host, partition, super::consumer::tombstones(&group_id, &c));
    }
    let g = &mut group.classic;
    if g.state == State::Dead {
        return fail(ResponseError::CoordinatorNotAvailable);
    }
    if !g.supports(&protocol_type, &protocols) {
        return fail(ResponseError::InconsistentGroupProtocol);
    }
    let rebalance_timeout_ms = if version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let delay = config.group_initial_rebalance_delay_ms;
    let new_member = |id: String| Member {
        id,
        instance_id: instance_id.clone(),
        client_id: client_id.clone(),
        client_host: client_host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: protocol_type.clone(),
        protocols: protocols.clone(),
        assignment: Bytes::new(),
        join: None,
        sync: None,
        heartbeat_deadline: now + millis(request.session_timeout_ms),
    };
    if member_id.is_empty() {
        if g.members.len() + g.pending.len() >= limits::GROUP_MEMBERS_MAX {
            return fail(ResponseError::GroupMaxSizeReached);
        }
        let new_id = format!(
            "{}-{}",
            instance_id.as_deref().unwrap_or(&client_id),
            uuid::Uuid::new_v4()
        );
        if let Some(instance) = &instance_id {
            if let Some(old) = g.instances.get(instance).cloned() {
                // A static member came back (a restart): it takes over its
                // old identity under a new member id, fencing the old one.
                let mut member = g
                    .members
                    .shift_remove(&old)
                    .expect("instances track members");
                let unchanged = member.protocols == protocols;
                if let Some(waiter) = member.join.take() {
                    let _ = waiter.send(join_error(ResponseError::FencedInstanceId, &old));
                }
                if let Some(waiter) = member.sync.take() {
                    let _ = waiter.send(
                        SyncGroupResponse::default()
                            .with_error_code(code(ResponseError::FencedInstanceId)),
                    );
                }
                member.id = new_id.clone();
                member.client_id = client_id.clone();
                member.client_host = client_host.clone();
                member.session_timeout_ms = request.session_timeout_ms;
                member.rebalance_timeout_ms = rebalance_timeout_ms;
                member.protocols = protocols.clone();
                member.heartbeat_deadline = now + millis(request.session_timeout_ms);
                let was_leader = g.leader.as_deref() == Some(old.as_str());
                if was_leader {
                    g.leader = Some(new_id.clone());
                }
                g.members.insert(new_id.clone(), member);
                g.instances.insert(instance.clone(), new_id.clone());
                if g.state == State::Stable && unchanged && !was_leader {
                    // No rebalance: it keeps its assignment.
                    return Ok(Step::Now(g.current_join_response(&new_id)));
                }
                return Ok(park_join(group, &new_id, now, delay));
            }
            g.instances.insert(instance.clone(), new_id.clone());
            g.members.insert(new_id.clone(), new_member(new_id.clone()));
            return Ok(park_join(group, &new_id, now, delay));
        }
        if version >= 4 {
            g.pending
                .insert(new_id.clone(), now + millis(request.session_timeout_ms));
            return Ok(Step::Now(join_error(
                ResponseError::MemberIdRequired,
                &new_id,
            )));
        }
        g.members.insert(new_id.clone(), new_member(new_id.clone()));
        return Ok(park_join(group, &new_id, now, delay));
    }
    if let Some(instance) = &instance_id {
        match g.instances.get(instance) {
            Some(current) if current != &member_id => return fail(ResponseError::FencedInstanceId),
            None if g.members.contains_key(&member_id) => {
                return fail(ResponseError::FencedInstanceId)
            }
            _ => {}
        }
    }
    if g.pending.remove(&member_id).is_some() {
        g.members
            .insert(member_id.clone(), new_member(member_id.clone()));
        return Ok(park_join(group, &member_id, now, delay));
    }
    let Some(member) = g.members.get_mut(&member_id) else {
        return fail(ResponseError::UnknownMemberId);
    };
    let changed = member.protocols != protocols;
    member.protocols = protocols;
    member.client_id = client_id;
    member.client_host = client_host;
    member.session_timeout_ms = request.session_timeout_ms;
    member.rebalance_timeout_ms = rebalance_timeout_ms;
    member.heartbeat_deadline = now + millis(request.session_timeout_ms);
    let is_leader = g.leader.as_deref() == Some(member_id.as_str());
    match g.state {
        State::PreparingRebalance => Ok(park_join(group, &member_id, now, delay)),
        State::CompletingRebalance if !changed => {
            Ok(Step::Now(g.current_join_response(&member_id)))
        }
        State::Stable if !changed && !is_leader => {
            Ok(Step::Now(g.current_join_response(&member_id)))
        }
        State::CompletingRebalance | State::Stable => Ok(park_join(group, &member_id, now, delay)),
        State::Empty | State::Dead => fail(ResponseError::UnknownMemberId),
    }
}

/// Parks a member's JoinGroup until the rebalance completes (starting one
/// when the group is not already preparing).
fn park_join(
    group: &mut Group,
    member_id: &str,
    now: Instant,
    delay_ms: u64,
) -> Step<JoinGroupResponse> {
    let g = &mut group.classic;
    let (tx, rx) = oneshot::channel();
    if let Some(m) = g.members.get_mut(member_id) {
        if let Some(old) = m.join.replace(tx) {
            let _ = old.send(join_error(ResponseError::UnknownMemberId, member_id));
        }
    }
    if g.state != State::PreparingRebalance {
        g.prepare_rebalance(now, delay_ms);
    } else if let Some((until, cap)) = g.initial_delay {
        // A new joiner during the initial delay extends it, up to the cap.
        let extended = (now + Duration::from_millis(delay_ms)).min(cap);
        g.initial_delay = Some((until.max(extended), cap));
    }
    if g.protocol_type.is_none() {
        g.protocol_type = g.members.get(member_id).map(|m| m.protocol_type.clone());
    }
    let _ = g.maybe_complete_join(&group.id, now);
    Step::Later(rx)
}

enum SyncStep {
    Now(SyncGroupResponse),
    Wait(oneshot::Receiver<SyncGroupResponse>),
    /// The leader's assignment: persist the group, then answer everyone.
    Persist(
        oneshot::Receiver<SyncGroupResponse>,
        i32,
        (Bytes, Option<Bytes>),
    ),
}

pub async fn sync<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    request: SyncGroupRequest,
) -> Result<SyncGroupResponse, i16> {
    let group_id = request.group_id.0.to_string();
    let step = sync_step(host, &request);
    let rx = match step {
        SyncStep::Now(r) => return Ok(r),
        SyncStep::Wait(rx) => rx,
        SyncStep::Persist(rx, generation, entry) => {
            let persisted = append(host, partition, &[entry]).await;
            let mut groups = host.groups().groups.borrow_mut();
            if let Some(g) = groups.get_mut(&group_id).map(|g| &mut g.classic) {
                if g.generation == generation && g.state == State::CompletingRebalance {
                    match persisted {
                        Ok(()) => {
                            g.set_state(State::Stable);
                            let protocol = g.protocol.clone();
                            let protocol_type = g.protocol_type.clone();
                            for m in g.members.values_mut() {
                                if let Some(waiter) = m.sync.take() {
                                    let _ = waiter.send(
                                        SyncGroupResponse::default()
                                            .with_protocol_type(
                                                protocol_type.as_deref().map(str_bytes),
                                            )
                                            .with_protocol_name(protocol.as_deref().map(str_bytes))
                                            .with_assignment(m.assignment.clone()),
                                    );
                                }
                            }
                        }
                        Err(e) => {
                            log::warn!("group {group_id}: metadata not persisted: {e}");
                            let error = group_append_error(&e);
                            for m in g.members.values_mut() {
                                m.assignment = Bytes::new();
                                if let Some(waiter) = m.sync.take() {
                                    let _ = waiter
                                        .send(SyncGroupResponse::default().with_error_code(error));
                                }
                            }
                            let delay = host.broker_config().group_initial_rebalance_delay_ms;
                            g.prepare_rebalance(Instant::now(), delay);
                        }
                    }
                }
            }
            rx
        }
    };
    Ok(rx.await.unwrap_or_else(|_| {
        SyncGroupResponse::default().with_error_code(code(ResponseError::RebalanceInProgress))
    }))
}

fn sync_step<H: GroupHost>(host: &Rc<H>, request: &SyncGroupRequest) -> SyncStep {
    let fail =
        |e: ResponseError| SyncStep::Now(SyncGroupResponse::default().with_error_code(code(e)));
    let mut groups = host.groups().groups.borrow_mut();
    let Some(group) = groups.get_mut(request.group_id.0.as_str()) else {
        return fail(ResponseError::UnknownMemberId);
    };
    let id = group.id.clone();
    let g = &mut group.classic;
    let member_id = request.member_id.as_str();
    if let Err(e) = check_instance(g, member_id, request.group_instance_id.as_deref()) {
        return fail(e);
    }
    if !g.members.contains_key(member_id) {
        return fail(ResponseError::UnknownMemberId);
    }
    if request.generation_id != g.generation {
        return fail(ResponseError::IllegalGeneration);
    }
    let type_ok = request
        .protocol_type
        .as_ref()
        .is_none_or(|t| Some(t.as_str()) == g.protocol_type.as_deref());
    let name_ok = request
        .protocol_name
        .as_ref()
        .is_none_or(|n| Some(n.as_str()) == g.protocol.as_deref());
    if !type_ok || !name_ok {
        return fail(ResponseError::InconsistentGroupProtocol);
    }
    match g.state {
        State::Empty | State::Dead => fail(ResponseError::UnknownMemberId),
        State::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
        State::Stable => {
            let m = &g.members[member_id];
            SyncStep::Now(
                SyncGroupResponse::default()
                    .with_protocol_type(g.protocol_type.as_deref().map(str_bytes))
                    .with_protocol_name(g.protocol.as_deref().map(str_bytes))
                    .with_assignment(m.assignment.clone()),
            )
        }
        State::CompletingRebalance => {
            let (tx, rx) = oneshot::channel();
            let member = g.members.get_mut(member_id).expect("checked above");
            member.sync = Some(tx);
            member.heartbeat_deadline = Instant::now() + millis(member.session_timeout_ms);
            if g.leader.as_deref() != Some(member_id) {
                return SyncStep::Wait(rx);
            }
            let assignments: HashMap<&str, &Bytes> = request
                .assignments
                .iter()
                .map(|a| (a.member_id.as_str(), &a.assignment))
                .collect();
            let total: usize = assignments.values().map(|a| a.len()).sum();
            if total > limits::GROUP_ASSIGNMENT_BYTES_MAX {
                g.members.get_mut(member_id).expect("checked").sync = None;
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            for m in g.members.values_mut() {
                m.assignment = assignments
                    .get(m.id.as_str())
                    .map(|a| (*a).clone())
                    .unwrap_or_default();
            }
            let entry = g.metadata_entry(&id);
            SyncStep::Persist(rx, g.generation, entry)
        }
    }
}

/// Static membership: a request naming an instance id must come from the
/// member that currently holds it.
fn check_instance(
    g: &ClassicGroup,
    member_id: &str,
    instance: Option<&str>,
) -> Result<(), ResponseError> {
    if let Some(instance) = instance {
        if let Some(holder) = g.instances.get(instance) {
            if holder != member_id {
                return Err(ResponseError::FencedInstanceId);
            }
        }
    }
    Ok(())
}

pub fn heartbeat<H: GroupHost>(
    host: &Rc<H>,
    request: HeartbeatRequest,
) -> Result<HeartbeatResponse, i16> {
    let respond = |e: Option<ResponseError>| {
        Ok(HeartbeatResponse::default().with_error_code(e.map(code).unwrap_or(0)))
    };
    let mut groups = host.groups().groups.borrow_mut();
    let Some(group) = groups.get_mut(request.group_id.0.as_str()) else {
        return respond(Some(ResponseError::UnknownMemberId));
    };
    let g = &mut group.classic;
    let member_id = request.member_id.as_str();
    if let Err(e) = check_instance(g, member_id, request.group_instance_id.as_deref()) {
        return respond(Some(e));
    }
    if g.state == State::Empty || g.state == State::Dead {
        return respond(Some(ResponseError::UnknownMemberId));
    }
    let Some(member) = g.members.get_mut(member_id) else {
        return respond(Some(ResponseError::UnknownMemberId));
    };
    if request.generation_id != g.generation {
        return respond(Some(ResponseError::IllegalGeneration));
    }
    member.heartbeat_deadline = Instant::now() + millis(member.session_timeout_ms);
    match g.state {
        State::PreparingRebalance => respond(Some(ResponseError::RebalanceInProgress)),
        _ => respond(None),
    }
}

pub fn leave<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    version: i16,
    request: LeaveGroupRequest,
) -> Result<LeaveGroupResponse, i16> {
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut groups = host.groups().groups.borrow_mut();
    let Some(group) = groups.get_mut(request.group_id.0.as_str()) else {
        return Ok(
            LeaveGroupResponse::default().with_error_code(code(ResponseError::UnknownMemberId))
        );
    };
    let id = group.id.clone();
    let g = &mut group.classic;
    let mut results = Vec::new();
    let mut removed = 0;
    for (member_id, instance) in leaving {
        let target = match &instance {
            Some(i) => match g.instances.get(i) {
                Some(holder) if member_id.is_empty() || *holder == member_id => Ok(holder.clone()),
                Some(_) => Err(ResponseError::FencedInstanceId),
                None => Err(ResponseError::UnknownMemberId),
            },
            None if g.members.contains_key(&member_id) => Ok(member_id.clone()),
            None if g.pending.remove(&member_id).is_some() => {
                results.push((member_id, instance, 0));
                continue;
            }
            None => Err(ResponseError::UnknownMemberId),
        };
        let error = match target {
            Ok(target) => {
                g.remove_member(&target);
                removed += 1;
                0
            }
            Err(e) => code(e),
        };
        results.push((member_id, instance, error));
    }
    let persist = if removed > 0 {
        g.after_departure(
            &id,
            Instant::now(),
            host.broker_config().group_initial_rebalance_delay_ms,
        )
    } else {
        None
    };
    drop(groups);
    if let Some(entry) = persist {
        persist_later(host, partition, vec![entry]);
    }
    if version >= 3 {
        let members = results
            .into_iter()
            .map(|(member_id, instance, error)| {
                MemberResponse::default()
                    .with_member_id(str_bytes(&member_id))
                    .with_group_instance_id(instance.as_deref().map(str_bytes))
                    .with_error_code(error)
            })
            .collect();
        Ok(LeaveGroupResponse::default().with_members(members))
    } else {
        Ok(LeaveGroupResponse::default().with_error_code(results.first().map_or(0, |r| r.2)))
    }
}

/// Session expiry and rebalance deadlines of one group (the shard's sweep).
pub fn expire<H: GroupHost>(
    host: &Rc<H>,
    group: &mut Group,
    now: Instant,
) -> Option<(Bytes, Option<Bytes>)> {
    let id = group.id.clone();
    let g = &mut group.classic;
    g.pending.retain(|_, deadline| *deadline > now);
    let expired: Vec<String> = g
        .members
        .values()
        .filter(|m| m.heartbeat_deadline <= now)
        .filter(|m| !(g.state == State::PreparingRebalance && m.join.is_some()))
        .filter(|m| !(g.state == State::CompletingRebalance && m.sync.is_some()))
        .map(|m| m.id.clone())
        .collect();
    let delay = host.broker_config().group_initial_rebalance_delay_ms;
    if expired.is_empty() {
        return g.maybe_complete_join(&id, now);
    }
    for member in &expired {
        log::info!("group {id}: member {member} session expired; removed");
        g.remove_member(member);
    }
    g.after_departure(&id, now, delay)
}

/// Validates a commit against the group (Kafka's `validateOffsetCommit`).
fn check_commit(group: Option<&Group>, request: &OffsetCommitRequest) -> Result<(), ResponseError> {
    let generation = request.generation_id_or_member_epoch;
    let member_id = request.member_id.as_str();
    let Some(group) = group else {
        return if generation < 0 {
            Ok(())
        } else {
            Err(ResponseError::IllegalGeneration)
        };
    };
    if let Some(c) = &group.consumer {
        return super::consumer::check_commit(c, member_id, generation);
    }
    let g = &group.classic;
    if generation < 0 && g.state == State::Empty {
        return Ok(());
    }
    check_instance(g, member_id, request.group_instance_id.as_deref())?;
    match g.state {
        State::Dead => Err(ResponseError::CoordinatorNotAvailable),
        State::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
        _ if !g.members.contains_key(member_id) => Err(ResponseError::UnknownMemberId),
        _ if generation != g.generation => Err(ResponseError::IllegalGeneration),
        _ => Ok(()),
    }
}

pub async fn offset_commit<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    request: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, i16> {
    let group_id = request.group_id.0.to_string();
    let catalog = host.catalog();
    let checked = {
        let groups = host.groups().groups.borrow();
        check_commit(groups.get(&group_id), &request)
    };
    let now = now_ms();
    let mut entries = Vec::new();
    let mut values = Vec::new();
    let mut results: Vec<(String, Vec<(i32, i16)>)> = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let meta = catalog.topics.get(&name);
        let mut parts = Vec::new();
        for p in &topic.partitions {
            let metadata = p
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let error = match &checked {
                Err(e) => code(*e),
                Ok(())
                    if meta.is_none_or(|m| {
                        p.partition_index < 0 || p.partition_index >= m.partition_count()
                    }) =>
                {
                    code(ResponseError::UnknownTopicOrPartition)
                }
                Ok(()) if metadata.len() > limits::OFFSET_METADATA_BYTES_MAX => {
                    code(ResponseError::OffsetMetadataTooLarge)
                }
                Ok(()) => {
                    let value = OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp_ms: now,
                    };
                    entries.push((
                        records::offset_key(&group_id, &name, p.partition_index),
                        Some(records::offset_value(&value)),
                    ));
                    values.push(((name.clone(), p.partition_index), value));
                    0
                }
            };
            parts.push((p.partition_index, error));
        }
        results.push((name, parts));
    }
    if !entries.is_empty() {
        let persisted = append(host, partition, &entries).await;
        match persisted {
            Ok(()) => {
                let mut groups = host.groups().groups.borrow_mut();
                if !groups.contains_key(&group_id) && groups.len() < limits::GROUPS_PER_SHARD_MAX {
                    groups.insert(group_id.clone(), Group::new(&group_id, partition));
                }
                if let Some(g) = groups.get_mut(&group_id) {
                    for (key, value) in values {
                        if g.offsets.len() < limits::OFFSETS_PER_GROUP_MAX
                            || g.offsets.contains_key(&key)
                        {
                            g.offsets.insert(key, value);
                        }
                    }
                }
            }
            Err(e) => {
                let error = group_append_error(&e);
                for (_, parts) in results.iter_mut() {
                    for (_, code) in parts.iter_mut() {
                        if *code == 0 {
                            *code = error;
                        }
                    }
                }
            }
        }
    }
    let topics = results
        .into_iter()
        .map(|(name, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(crate::protocol::topic_name(&name))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(index, error)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(OffsetCommitResponse::default().with_topics(topics))
}

pub fn describe<H: GroupHost>(host: &Rc<H>, group_id: &str) -> DescribedGroup {
    let groups = host.groups().groups.borrow();
    let base = DescribedGroup::default().with_group_id(str_bytes(group_id).into());
    let Some(group) = groups.get(group_id) else {
        return base
            .with_error_code(code(ResponseError::GroupIdNotFound))
            .with_group_state(str_bytes("Dead"));
    };
    if group.consumer.is_some() {
        return super::consumer::describe_classic(group_id, base);
    }
    let g = &group.classic;
    let protocol = g.protocol.clone().unwrap_or_default();
    let stable = g.state == State::Stable;
    let members = g
        .members
        .values()
        .map(|m| {
            DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.id))
                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_member_metadata(m.metadata(&protocol))
                .with_member_assignment(if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                })
        })
        .collect();
    base.with_group_state(str_bytes(g.state.name()))
        .with_protocol_type(str_bytes(g.protocol_type.as_deref().unwrap_or("")))
        .with_protocol_data(str_bytes(
            if stable || g.state == State::CompletingRebalance {
                &protocol
            } else {
                ""
            },
        ))
        .with_members(members)
}

/// DeleteGroups for one group: only an empty group; its offsets and
/// metadata get tombstones.
pub async fn delete<H: GroupHost>(host: &Rc<H>, partition: i32, group_id: &str) -> Result<(), i16> {
    let entries = {
        let groups = host.groups().groups.borrow();
        let Some(group) = groups.get(group_id) else {
            return Err(code(ResponseError::GroupIdNotFound));
        };
        if !group.is_empty() || group.classic.state == State::Dead {
            return Err(code(ResponseError::NonEmptyGroup));
        }
        let mut entries: Vec<(Bytes, Option<Bytes>)> = group
            .offsets
            .keys()
            .map(|(topic, p)| (records::offset_key(group_id, topic, *p), None))
            .collect();
        entries.push((records::group_key(group_id), None));
        if let Some(c) = &group.consumer {
            entries.extend(super::consumer::tombstones(group_id, c));
        }
        entries
    };
    append(host, partition, &entries)
        .await
        .map_err(|e| group_append_error(&e))?;
    let mut groups = host.groups().groups.borrow_mut();
    if groups.get(group_id).is_some_and(|g| g.is_empty()) {
        groups.remove(group_id);
    }
    Ok(())
}

/// The topics a classic consumer group's members subscribe to.
fn subscribed_topics(g: &ClassicGroup) -> Vec<String> {
    if g.protocol_type.as_deref() != Some("consumer") {
        return Vec::new();
    }
    let protocol = g.protocol.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for m in g.members.values() {
        let mut metadata = m.metadata(&protocol);
        if metadata.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([metadata[0], metadata[1]]);
        bytes::Buf::advance(&mut metadata, 2);
        if let Ok(s) = ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3)) {
            topics.extend(s.topics.iter().map(|t| t.to_string()));
        }
    }
    topics
}

pub async fn offset_delete<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    request: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse, i16> {
    let group_id = request.group_id.0.to_string();
    let (entries, results) = {
        let groups = host.groups().groups.borrow();
        let Some(group) = groups.get(&group_id) else {
            return Ok(OffsetDeleteResponse::default()
                .with_error_code(code(ResponseError::GroupIdNotFound)));
        };
        let subscribed: Vec<String> = match &group.consumer {
            Some(c) => c.subscribed_topics(),
            None => subscribed_topics(&group.classic),
        };
        let mut entries = Vec::new();
        let mut results: BTreeMap<String, Vec<(i32, i16)>> = BTreeMap::new();
        for topic in &request.topics {
            let name = topic.name.0.to_string();
            for p in &topic.partitions {
                let error = if subscribed.contains(&name) {
                    code(ResponseError::GroupSubscribedToTopic)
                } else {
                    if group
                        .offsets
                        .contains_key(&(name.clone(), p.partition_index))
                    {
                        entries.push((
                            records::offset_key(&group_id, &name, p.partition_index),
                            None,
                        ));
                    }
                    0
                };
                results
                    .entry(name.clone())
                    .or_default()
                    .push((p.partition_index, error));
            }
        }
        (entries, results)
    };
    let mut failed = 0;
    if !entries.is_empty() {
        match append(host, partition, &entries).await {
            Ok(()) => {
                let mut groups = host.groups().groups.borrow_mut();
                if let Some(g) = groups.get_mut(&group_id) {
                    for topic in &request.topics {
                        for p in &topic.partitions {
                            let key = (topic.name.0.to_string(), p.partition_index);
                            let subscribed = results
                                .get(&key.0)
                                .is_some_and(|r| r.iter().any(|(i, e)| *i == key.1 && *e != 0));
                            if !subscribed {
                                g.offsets.remove(&key);
                            }
                        }
                    }
                }
            }
            Err(e) => failed = group_append_error(&e),
        }
    }
    if failed != 0 {
        return Ok(OffsetDeleteResponse::default().with_error_code(failed));
    }
    let topics = results
        .into_iter()
        .map(|(name, parts)| {
            OffsetDeleteResponseTopic::default()
                .with_name(crate::protocol::topic_name(&name))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(index, error)| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(OffsetDeleteResponse::default().with_topics(topics))
}
