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
//!
//! This file holds the state machine, Heartbeat, LeaveGroup and the
//! deadline sweep; `classic/rebalance.rs` JoinGroup and SyncGroup;
//! `classic/offsets.rs` the offset APIs, DescribeGroups and DeleteGroups.

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

// The moved parts below (`offsets`, `rebalance`) name the KIP-848 side as
// `super::consumer`, as they did in one file.
use super::consumer;
use super::records::{self, GroupValue, MemberValue, OffsetValue};
use super::retention;
use super::{append, code, group_append_error, millis, persist_later, str_bytes, Group, GroupHost};
use crate::limits;
use crate::partition::now_ms;

mod offsets;
mod rebalance;

pub use offsets::{delete, describe, offset_commit, offset_delete};
pub use rebalance::{join, sync};

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
    /// New generations since this coordinator loaded the group (replay
    /// excluded), and those of a consumer group it was before: its
    /// rebalances, for `/metrics`.
    pub rebalances: u64,
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

    /// When the group entered its current state (Kafka's
    /// currentStateTimestamp; 0 when never recorded).
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    #[cfg(test)]
    pub fn set_state_at(&mut self, state: State, timestamp_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = timestamp_ms;
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
        self.rebalances += 1;
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
                    self.rebalances += 1;
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
