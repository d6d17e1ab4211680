//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe) with server-side assignment, as Kafka's
//! `GroupMetadataManager` runs it.
//!
//! Epochs: the group epoch is bumped whenever membership, a subscription
//! or the subscribed topics' metadata change; the target assignment is
//! recomputed (by the `uniform` or `range` assignor) when the group epoch
//! is ahead of the assignment epoch. Each member then converges to its
//! target through its heartbeats (Kafka's `CurrentAssignmentBuilder`): it
//! first revokes what it must give up, staying at its epoch; only when it
//! no longer reports those partitions as owned does it move to the target
//! epoch, and it is given a partition only once no other member owns it
//! (assigned or pending revocation). So a partition never has two owners.
//!
//! Fencing: a member that stops heartbeating for
//! `group.consumer.session.timeout.ms`, or that does not revoke within its
//! rebalance timeout, is removed and the group epoch bumped; a heartbeat
//! with a wrong epoch gets FENCED_MEMBER_EPOCH, an unknown member
//! UNKNOWN_MEMBER_ID; a static member (instance id) may only be replaced
//! after it left with epoch -2 (UNRELEASED_INSTANCE_ID otherwise).
//!
//! Durability: every change is written to the group's `__consumer_offsets`
//! partition as Kafka's consumer group records (`records.rs`) and the
//! heartbeat is answered once they are durable; `replay` rebuilds groups,
//! members, epochs, targets and current assignments at start. Members get
//! a fresh session after a restart.
//!
//! State lives on the coordinator's shard inside `Group::consumer`; every
//! function here is synchronous over the group map (no borrow across an
//! `.await`): `heartbeat` mutates, then appends the records it produced.
//!
//! This file holds the group's state, its records and replay, DescribeGroups
//! and the deadline sweep; `consumer/membership.rs` serves the heartbeat
//! itself (validation, join, leave, reconciliation).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    self, Assignment as DescribedAssignment, TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as HeartbeatAssignment, TopicPartitions as HeartbeatTopicPartitions,
};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use regex::Regex;
use uuid::Uuid;

use super::assignor::{self, MemberSpec};
use super::records::{
    self, ConsumerRecord, CurrentAssignment, MemberSubscription, Partitions, TopicMetadata,
};
use super::{append, code, group_append_error, Group, GroupHost, OFFSETS_TOPIC};
use super::{millis, str_bytes};
use crate::limits;
use crate::metadata::{kafka_uuid, Catalog};

mod membership;

pub use membership::heartbeat;
#[cfg(test)]
use membership::{reconcile, validate};

/// A member leaves the group for good.
pub const LEAVE_EPOCH: i32 = -1;
/// A static member leaves for now; it keeps its partitions until its
/// session expires or it rejoins with the same instance id.
pub const LEAVE_STATIC_EPOCH: i32 = -2;

/// A record to append: key and value (`None`: tombstone).
type Entry = (Bytes, Option<Bytes>);

/// Where a member's reconciliation stands (Kafka's `MemberState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemberState {
    #[default]
    Stable,
    /// Must stop owning some partitions before it may move on.
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions others still own.
    UnreleasedPartitions,
}

impl MemberState {
    fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    fn from_code(code: i8) -> MemberState {
        match code {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

pub struct Member {
    pub id: String,
    pub subscription: MemberSubscription,
    /// `subscription.topic_regex`, compiled (full match, as Kafka's RE2J `matches`).
    regex: Option<Regex>,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub assigned: Partitions,
    pub pending_revocation: Partitions,
    session_deadline: Instant,
    /// Set while it must revoke partitions: fenced if it has not by then.
    revocation_deadline: Option<Instant>,
}

impl Member {
    fn new(id: &str, now: Instant) -> Member {
        Member {
            id: id.to_string(),
            subscription: MemberSubscription {
                rebalance_timeout_ms: -1,
                ..MemberSubscription::default()
            },
            regex: None,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Partitions::new(),
            pending_revocation: Partitions::new(),
            session_deadline: now,
            revocation_deadline: None,
        }
    }

    fn current(&self) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: self.epoch,
            previous_member_epoch: self.previous_epoch,
            state: self.state.code(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }

    fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.epoch == epoch
    }
}

/// One KIP-848 group's membership (its offsets are in `Group::offsets`).
#[derive(Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    /// Each member's target partitions as of `assignment_epoch`.
    pub target: BTreeMap<String, Partitions>,
    /// The subscribed topics that exist: name -> (id, partition count), as
    /// of the last group epoch bump.
    pub subscribed: BTreeMap<String, (Uuid, i32)>,
    /// The catalog version `subscribed` was checked against; `None` after a
    /// restart, so the first heartbeat checks it again.
    catalog_version: Option<u64>,
    /// Group epoch bumps since this coordinator loaded the group (replay
    /// excluded): its rebalances, for `/metrics`.
    pub rebalances: u64,
}

impl ConsumerGroup {
    /// Kafka's ConsumerGroupState names.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The topics the members subscribe to (by name or regex) that exist.
    pub fn subscribed_topics(&self) -> Vec<String> {
        self.subscribed.keys().cloned().collect()
    }

    fn static_member(&self, instance: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.subscription.instance_id.as_deref() == Some(instance))
    }

    /// The subscribed topics in `catalog`: every member's names and regex
    /// matches (internal topics never match a regex, as in Kafka).
    fn resolve_subscriptions(&self, catalog: &Catalog) -> BTreeMap<String, (Uuid, i32)> {
        let mut out = BTreeMap::new();
        for m in self.members.values() {
            for name in &m.subscription.topic_names {
                if let Some(t) = catalog.topics.get(name) {
                    out.insert(name.clone(), (t.id, t.partition_count()));
                }
            }
            if let Some(regex) = &m.regex {
                for (name, t) in &catalog.topics {
                    if name != OFFSETS_TOPIC && regex.is_match(name) {
                        out.insert(name.clone(), (t.id, t.partition_count()));
                    }
                }
            }
        }
        out
    }

    /// The assignor most members ask for (ties: the first in
    /// `assignor::ASSIGNORS`), or the default.
    fn preferred_assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.subscription.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        assignor::ASSIGNORS
            .iter()
            .enumerate()
            .filter_map(|(i, a)| votes.get(a).map(|v| (*v, std::cmp::Reverse(i), *a)))
            .max()
            .map_or(assignor::UNIFORM, |(_, _, a)| a)
    }

    /// Which member epoch owns each partition (assigned or pending revocation).
    fn owner_epochs(&self) -> HashMap<(Uuid, i32), i32> {
        let mut out = HashMap::new();
        for m in self.members.values() {
            for (t, set) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                for p in set {
                    out.insert((*t, *p), m.epoch);
                }
            }
        }
        out
    }

    /// Recomputes the subscribed topics; records and bumps the epoch on a change.
    fn refresh_subscriptions(
        &mut self,
        group_id: &str,
        catalog: &Catalog,
        mut bump: bool,
        records: &mut Vec<Entry>,
    ) {
        if bump || self.catalog_version != Some(catalog.version) {
            let subscribed = self.resolve_subscriptions(catalog);
            if subscribed != self.subscribed {
                self.subscribed = subscribed;
                records.push(partition_metadata_entry(group_id, &self.subscribed));
                bump = true;
            }
            self.catalog_version = Some(catalog.version);
        }
        if bump {
            self.group_epoch += 1;
            self.rebalances += 1;
            log::info!(
                "group {group_id}: group epoch bumped to {}",
                self.group_epoch
            );
            records.push(entry(
                group_id,
                ConsumerRecord::Epoch(Some(self.group_epoch)),
            ));
        }
    }

    /// A new target assignment for every member at the group epoch.
    fn update_target(&mut self, group_id: &str, records: &mut Vec<Entry>) {
        let partitions: BTreeMap<Uuid, i32> = self.subscribed.values().copied().collect();
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                id: &m.id,
                instance_id: m.subscription.instance_id.as_deref(),
                topics: self.member_topics(m),
            })
            .collect();
        let target = assignor::assign(self.preferred_assignor(), &specs, &partitions, &self.target);
        for (member, partitions) in &target {
            if self.target.get(member) != Some(partitions) {
                records.push(entry(
                    group_id,
                    ConsumerRecord::Target {
                        member: member.clone(),
                        value: Some(partitions.clone()),
                    },
                ));
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        records.push(entry(
            group_id,
            ConsumerRecord::TargetEpoch(Some(self.assignment_epoch)),
        ));
    }

    fn member_topics(&self, m: &Member) -> BTreeSet<Uuid> {
        self.subscribed
            .iter()
            .filter(|(name, _)| {
                m.subscription.topic_names.contains(name)
                    || m.regex.as_ref().is_some_and(|r| r.is_match(name))
            })
            .map(|(_, (id, _))| *id)
            .collect()
    }

    /// Removes a member for good (left, or fenced by a timeout) and bumps
    /// the group epoch, as Kafka's `consumerGroupFenceMember`.
    fn fence(&mut self, group_id: &str, member_id: &str, catalog: &Catalog) -> Vec<Entry> {
        let mut records = Vec::new();
        if self.members.remove(member_id).is_none() {
            return records;
        }
        self.target.remove(member_id);
        records.extend(member_tombstones(group_id, member_id));
        self.refresh_subscriptions(group_id, catalog, true, &mut records);
        if self.members.is_empty() {
            // Nothing to assign: the (empty) target is at the group epoch.
            self.assignment_epoch = self.group_epoch;
            records.push(entry(
                group_id,
                ConsumerRecord::TargetEpoch(Some(self.assignment_epoch)),
            ));
        }
        records
    }

    /// Applies one replayed record.
    pub fn replay(&mut self, record: ConsumerRecord, now: Instant, session_timeout_ms: i32) {
        let fresh = |id: &str| {
            let mut m = Member::new(id, now);
            m.session_deadline = now + millis(session_timeout_ms);
            m
        };
        match record {
            ConsumerRecord::Epoch(epoch) => self.group_epoch = epoch.unwrap_or(0),
            ConsumerRecord::PartitionMetadata(topics) => {
                self.subscribed = topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.name, (t.id, t.partitions)))
                    .collect();
            }
            ConsumerRecord::Member { member, value } => match value {
                Some(subscription) => {
                    let m = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| fresh(&member));
                    m.regex = subscription
                        .topic_regex
                        .as_deref()
                        .and_then(|r| compile_regex(r).ok());
                    m.subscription = subscription;
                }
                None => {
                    self.members.remove(&member);
                }
            },
            ConsumerRecord::TargetEpoch(epoch) => self.assignment_epoch = epoch.unwrap_or(0),
            ConsumerRecord::Target { member, value } => match value {
                Some(p) => {
                    self.target.insert(member, p);
                }
                None => {
                    self.target.remove(&member);
                }
            },
            ConsumerRecord::Current { member, value } => {
                if let Some(c) = value {
                    let m = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| fresh(&member));
                    m.epoch = c.member_epoch;
                    m.previous_epoch = c.previous_member_epoch;
                    m.state = MemberState::from_code(c.state);
                    m.assigned = c.assigned;
                    m.pending_revocation = c.pending_revocation;
                }
            }
        }
    }
}

fn entry(group_id: &str, record: ConsumerRecord) -> Entry {
    records::consumer_entry(group_id, &record)
}

fn partition_metadata_entry(group_id: &str, subscribed: &BTreeMap<String, (Uuid, i32)>) -> Entry {
    let topics = subscribed
        .iter()
        .map(|(name, (id, partitions))| TopicMetadata {
            id: *id,
            name: name.clone(),
            partitions: *partitions,
        })
        .collect();
    entry(group_id, ConsumerRecord::PartitionMetadata(Some(topics)))
}

/// Kafka's order: current assignment, target, then subscription.
fn member_tombstones(group_id: &str, member_id: &str) -> Vec<Entry> {
    let member = member_id.to_string();
    vec![
        entry(
            group_id,
            ConsumerRecord::Current {
                member: member.clone(),
                value: None,
            },
        ),
        entry(
            group_id,
            ConsumerRecord::Target {
                member: member.clone(),
                value: None,
            },
        ),
        entry(
            group_id,
            ConsumerRecord::Member {
                member,
                value: None,
            },
        ),
    ]
}

/// Every record of an empty group, as tombstones (DeleteGroups, or the
/// group becoming a classic one).
pub fn tombstones(group_id: &str, c: &ConsumerGroup) -> Vec<Entry> {
    let mut out: Vec<Entry> = c
        .members
        .keys()
        .flat_map(|m| member_tombstones(group_id, m))
        .collect();
    out.push(entry(group_id, ConsumerRecord::TargetEpoch(None)));
    out.push(entry(group_id, ConsumerRecord::PartitionMetadata(None)));
    out.push(entry(group_id, ConsumerRecord::Epoch(None)));
    out
}

/// Kafka's regular expressions are RE2J matched against the whole name.
fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

pub fn describe<H: GroupHost>(
    host: &Rc<H>,
    group_id: &str,
) -> consumer_group_describe_response::DescribedGroup {
    let base = consumer_group_describe_response::DescribedGroup::default()
        .with_group_id(str_bytes(group_id).into());
    let groups = host.groups().groups.borrow();
    let Some(c) = groups.get(group_id).and_then(|g| g.consumer.as_ref()) else {
        let message = match groups.get(group_id) {
            Some(_) => format!("Group {group_id} is not a consumer group."),
            None => format!("Group {group_id} not found."),
        };
        return base
            .with_error_code(code(ResponseError::GroupIdNotFound))
            .with_error_message(Some(str_bytes(&message)));
    };
    let catalog = host.catalog();
    let described = |p: &Partitions| {
        DescribedAssignment::default().with_topic_partitions(
            p.iter()
                .map(|(t, set)| {
                    let name = catalog
                        .topic_by_id(*t)
                        .map(|m| m.name.as_str())
                        .unwrap_or("");
                    DescribedTopicPartitions::default()
                        .with_topic_id(*t)
                        .with_topic_name(crate::protocol::topic_name(name))
                        .with_partitions(set.iter().copied().collect())
                })
                .collect(),
        )
    };
    let members = c
        .members
        .values()
        .map(|m| {
            let s = &m.subscription;
            consumer_group_describe_response::Member::default()
                .with_member_id(str_bytes(&m.id))
                .with_instance_id(s.instance_id.as_deref().map(str_bytes))
                .with_rack_id(s.rack_id.as_deref().map(str_bytes))
                .with_member_epoch(m.epoch)
                .with_client_id(str_bytes(&s.client_id))
                .with_client_host(str_bytes(&s.client_host))
                .with_subscribed_topic_names(
                    s.topic_names
                        .iter()
                        .map(|n| crate::protocol::topic_name(n))
                        .collect(),
                )
                .with_subscribed_topic_regex(s.topic_regex.as_deref().map(str_bytes))
                .with_assignment(described(&m.assigned))
                .with_target_assignment(described(
                    c.target.get(&m.id).unwrap_or(&Partitions::new()),
                ))
                // 1: a member using the consumer protocol (v1).
                .with_member_type(1)
        })
        .collect();
    base.with_group_state(str_bytes(c.state_name()))
        .with_group_epoch(c.group_epoch)
        .with_assignment_epoch(c.assignment_epoch)
        .with_assignor_name(str_bytes(c.preferred_assignor()))
        .with_members(members)
}

/// Session and revocation deadlines: fences the members past them.
pub fn expire<H: GroupHost>(
    host: &Rc<H>,
    group_id: &str,
    c: &mut ConsumerGroup,
    now: Instant,
) -> Vec<Entry> {
    let expired: Vec<(String, &'static str)> = c
        .members
        .values()
        .filter_map(|m| {
            if m.session_deadline <= now {
                Some((m.id.clone(), "session expired"))
            } else if m.revocation_deadline.is_some_and(|d| d <= now) {
                Some((
                    m.id.clone(),
                    "did not revoke its partitions within its rebalance timeout",
                ))
            } else {
                None
            }
        })
        .collect();
    if expired.is_empty() {
        return Vec::new();
    }
    let catalog = host.catalog();
    let mut records = Vec::new();
    for (member, why) in expired {
        log::info!("group {group_id}: member {member} {why}; fenced");
        records.extend(c.fence(group_id, &member, &catalog));
    }
    records
}

/// OffsetCommit from a KIP-848 group (Kafka's `validateOffsetCommit`).
pub fn check_commit(c: &ConsumerGroup, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
    if epoch < 0 && c.members.is_empty() {
        return Ok(());
    }
    check_member_epoch(c, member_id, epoch)
}

/// OffsetFetch v9 naming a member (Kafka's `validateOffsetFetch`).
pub fn check_fetch(
    c: &ConsumerGroup,
    member_id: Option<&str>,
    epoch: i32,
) -> Result<(), ResponseError> {
    match member_id {
        Some(member_id) => check_member_epoch(c, member_id, epoch),
        None if epoch < 0 => Ok(()),
        None => Err(ResponseError::UnknownMemberId),
    }
}

/// The member exists and is at `epoch` (Kafka's `validateMemberEpoch`).
fn check_member_epoch(c: &ConsumerGroup, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
    let member = c
        .members
        .get(member_id)
        .ok_or(ResponseError::UnknownMemberId)?;
    if member.epoch != epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

/// DescribeGroups (the classic API) on a consumer group: Kafka answers it
/// is not a classic group.
pub fn describe_classic(group_id: &str, base: DescribedGroup) -> DescribedGroup {
    base.with_error_code(code(ResponseError::GroupIdNotFound))
        .with_error_message(Some(str_bytes(&format!(
            "Group {group_id} is not a classic group."
        ))))
        .with_group_state(str_bytes("Dead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: Uuid, ps: &[i32]) -> Partitions {
        Partitions::from([(t, ps.iter().copied().collect())])
    }

    #[test]
    fn revokes_before_it_moves_on() {
        let t = Uuid::from_u128(9);
        let now = Instant::now();
        let mut m = Member::new("a", now);
        m.epoch = 1;
        m.assigned = parts(t, &[0, 1, 2, 3]);
        let none = HashMap::new();
        // Target epoch 2 keeps 0 and 1: 2 and 3 must be revoked first.
        reconcile(&mut m, 2, &parts(t, &[0, 1]), &none, None);
        assert_eq!(m.state, MemberState::UnrevokedPartitions);
        assert_eq!(m.epoch, 1);
        assert_eq!(m.assigned, parts(t, &[0, 1]));
        assert_eq!(m.pending_revocation, parts(t, &[2, 3]));
        // Still reports 2: nothing moves.
        reconcile(
            &mut m,
            2,
            &parts(t, &[0, 1]),
            &none,
            Some(&parts(t, &[0, 1, 2])),
        );
        assert_eq!(m.epoch, 1);
        // Revoked: it reaches the target epoch.
        reconcile(
            &mut m,
            2,
            &parts(t, &[0, 1]),
            &none,
            Some(&parts(t, &[0, 1])),
        );
        assert_eq!(m.state, MemberState::Stable);
        assert_eq!(m.epoch, 2);
        assert!(m.pending_revocation.is_empty());
    }

    #[test]
    fn waits_for_partitions_another_member_owns() {
        let t = Uuid::from_u128(9);
        let mut m = Member::new("b", Instant::now());
        let owners = HashMap::from([((t, 2), 1)]);
        reconcile(
            &mut m,
            2,
            &parts(t, &[2, 3]),
            &owners,
            Some(&Partitions::new()),
        );
        assert_eq!(m.state, MemberState::UnreleasedPartitions);
        assert_eq!(m.epoch, 2);
        assert_eq!(m.assigned, parts(t, &[3]));
        reconcile(&mut m, 2, &parts(t, &[2, 3]), &HashMap::new(), None);
        assert_eq!(m.state, MemberState::Stable);
        assert_eq!(m.assigned, parts(t, &[2, 3]));
    }

    #[test]
    fn bad_first_heartbeats_are_invalid_requests() {
        let base = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(str_bytes("g").into())
            .with_member_id(str_bytes("m"))
            .with_rebalance_timeout_ms(1000)
            .with_subscribed_topic_names(Some(vec![]))
            .with_topic_partitions(Some(vec![]));
        assert!(validate(1, &base).is_ok());
        let bad = [
            base.clone().with_rebalance_timeout_ms(-1),
            base.clone().with_topic_partitions(None),
            base.clone().with_subscribed_topic_names(None),
            base.clone().with_member_id(str_bytes("")),
            base.clone().with_member_epoch(-3),
        ];
        for r in bad {
            assert_eq!(
                validate(1, &r).unwrap_err().0,
                ResponseError::InvalidRequest,
                "{r:?}"
            );
        }
        assert!(validate(0, &base.clone().with_member_id(str_bytes(""))).is_ok());
        let regex = base
            .clone()
            .with_subscribed_topic_regex(Some(str_bytes("(")));
        assert_eq!(
            validate(1, &regex).unwrap_err().0,
            ResponseError::InvalidRegularExpression
        );
        let assignor = base.with_server_assignor(Some(str_bytes("sticky")));
        assert_eq!(
            validate(1, &assignor).unwrap_err().0,
            ResponseError::UnsupportedAssignor
        );
    }
}
