//! ConsumerGroupHeartbeat (KIP-848) as the coordinator serves it: request
//! validation, joining, leaving, subscription changes, and reconciling
//! each member towards its target assignment epoch by epoch, persisting
//! every change through the group's offsets partition. The group's state
//! and its records live in `consumer.rs`.

use super::*;

/// A failed heartbeat: the error and Kafka's message for it.
type Failure = (ResponseError, String);

fn fail<T>(e: ResponseError, message: impl Into<String>) -> Result<T, Failure> {
    Err((e, message.into()))
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
pub(super) fn validate(version: i16, r: &ConsumerGroupHeartbeatRequest) -> Result<(), Failure> {
    let invalid = |m: &str| fail(ResponseError::InvalidRequest, m);
    if r.instance_id.as_ref().is_some_and(|s| s.is_empty()) {
        return invalid("InstanceId can't be empty.");
    }
    if r.rack_id.as_ref().is_some_and(|s| s.is_empty()) {
        return invalid("RackId can't be empty.");
    }
    let member_id_needed = version >= 1 || r.member_epoch != 0;
    if member_id_needed && r.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if r.member_id.len() > limits::GROUP_MEMBER_ID_BYTES_MAX {
        return invalid("MemberId is too long.");
    }
    match r.member_epoch {
        0 => {
            if r.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if r.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if r.subscribed_topic_names.is_none() && r.subscribed_topic_regex.is_none() {
                return invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        }
        LEAVE_STATIC_EPOCH if r.instance_id.is_none() => {
            return invalid("InstanceId can't be null.");
        }
        e if e < LEAVE_STATIC_EPOCH => {
            return invalid(&format!(
                "MemberEpoch is {e}, but must be greater than or equal to -2."
            ));
        }
        _ => {}
    }
    // An empty regex means none (librdkafka sends "" when it has none).
    if let Some(regex) = r.subscribed_topic_regex.as_ref().filter(|r| !r.is_empty()) {
        if let Err(e) = compile_regex(regex) {
            return fail(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{regex}` is not a valid regular expression: {e}."),
            );
        }
    }
    if let Some(a) = &r.server_assignor {
        if !assignor::ASSIGNORS.contains(&a.as_str()) {
            return fail(
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    assignor::ASSIGNORS.join(", ")
                ),
            );
        }
    }
    Ok(())
}

pub async fn heartbeat<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    version: i16,
    client_id: String,
    client_host: String,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, i16> {
    let step = validate(version, &request).and_then(|()| {
        let mut groups = host.groups().groups.borrow_mut();
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == LEAVE_STATIC_EPOCH {
            leave(host, &mut groups, &request)
        } else {
            join_or_heartbeat(
                host,
                &mut groups,
                partition,
                version,
                client_id,
                client_host,
                &request,
            )
        }
    });
    let (response, records) = match step {
        Ok(done) => done,
        Err((e, message)) => {
            return Ok(ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code(e))
                .with_error_message(Some(str_bytes(&message))))
        }
    };
    if !records.is_empty() {
        // The state changed before it is durable: a failed write is an
        // error for this member, which retries; the records a later change
        // writes carry the state again.
        if let Err(e) = append(host, partition, &records).await {
            log::warn!(
                "group {}: heartbeat records not written: {e}",
                request.group_id.0
            );
            return Ok(
                ConsumerGroupHeartbeatResponse::default().with_error_code(group_append_error(&e))
            );
        }
    }
    Ok(response)
}

type Step = Result<(ConsumerGroupHeartbeatResponse, Vec<Entry>), Failure>;

fn not_consumer(group_id: &str) -> Failure {
    (
        ResponseError::GroupIdNotFound,
        format!("Group {group_id} is not a consumer group."),
    )
}

/// Epoch -1 (leave) or -2 (a static member leaves for now).
fn leave<H: GroupHost>(
    host: &Rc<H>,
    groups: &mut HashMap<String, Group>,
    r: &ConsumerGroupHeartbeatRequest,
) -> Step {
    let group_id = r.group_id.0.as_str();
    let member_id = r.member_id.as_str();
    let Some(c) = groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) else {
        return Err(not_consumer(group_id));
    };
    let response = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(str_bytes(member_id)))
        .with_member_epoch(r.member_epoch);
    let leaving = match r.instance_id.as_deref() {
        None => match c.members.get(member_id) {
            Some(m) => m.id.clone(),
            None => {
                return fail(
                    ResponseError::UnknownMemberId,
                    format!("Member {member_id} is not a member of group {group_id}."),
                )
            }
        },
        Some(instance) => {
            let Some(m) = c.static_member(instance) else {
                return fail(
                    ResponseError::UnknownMemberId,
                    format!("Instance id {instance} is unknown."),
                );
            };
            if m.id != member_id {
                return fail(
                    ResponseError::FencedInstanceId,
                    format!("Static member {member_id} with instance id {instance} is fenced by existing member {}.", m.id),
                );
            }
            m.id.clone()
        }
    };
    if r.member_epoch == LEAVE_STATIC_EPOCH {
        let m = c.members.get_mut(&leaving).expect("found above");
        m.epoch = LEAVE_STATIC_EPOCH;
        m.pending_revocation.clear();
        m.revocation_deadline = None;
        log::info!("group {group_id}: static member {leaving} left for now");
        let record = entry(
            group_id,
            ConsumerRecord::Current {
                member: leaving.clone(),
                value: Some(m.current()),
            },
        );
        return Ok((response, vec![record]));
    }
    log::info!("group {group_id}: member {leaving} left");
    let records = c.fence(group_id, &leaving, &host.catalog());
    Ok((response, records))
}

/// The group to join or heartbeat in, created (or converted from an empty
/// classic group) by a joining member.
fn consumer_group<'a>(
    groups: &'a mut HashMap<String, Group>,
    group_id: &str,
    partition: i32,
    joining: bool,
    records: &mut Vec<Entry>,
) -> Result<&'a mut Group, Failure> {
    if !groups.contains_key(group_id) {
        if !joining {
            return fail(
                ResponseError::GroupIdNotFound,
                format!("Consumer group {group_id} not found."),
            );
        }
        if groups.len() >= limits::GROUPS_PER_SHARD_MAX {
            return fail(
                ResponseError::CoordinatorNotAvailable,
                "This coordinator holds its maximum number of groups.",
            );
        }
        groups.insert(group_id.to_string(), Group::new(group_id, partition));
    }
    let group = groups.get_mut(group_id).expect("inserted above");
    if group.consumer.is_none() {
        let classic_empty = group.classic.members.is_empty();
        if !(joining && classic_empty) {
            return Err(not_consumer(group_id));
        }
        // Kafka deletes an empty classic group when a consumer joins.
        if group.classic.generation > 0 {
            records.push((records::group_key(group_id), None));
        }
        let rebalances = std::mem::take(&mut group.classic).rebalances;
        group.consumer = Some(ConsumerGroup {
            rebalances,
            ..ConsumerGroup::default()
        });
    }
    Ok(group)
}

/// The owned partitions a heartbeat reports (`None`: not reported).
fn owned(r: &ConsumerGroupHeartbeatRequest) -> Option<Partitions> {
    r.topic_partitions.as_ref().map(|ts| {
        let mut out = Partitions::new();
        for t in ts {
            out.entry(t.topic_id)
                .or_default()
                .extend(t.partitions.iter().copied());
        }
        out
    })
}

fn is_subset(owned: Option<&Partitions>, assigned: &Partitions) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned
        .iter()
        .all(|(t, set)| assigned.get(t).is_some_and(|a| set.is_subset(a)))
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`; epoch 0 is a rejoin
/// and always allowed (KAFKA-19233).
fn check_epoch(m: &Member, received: i32, owned: Option<&Partitions>) -> Result<(), Failure> {
    if received == 0 {
        return Ok(());
    }
    let fenced = |which: &str| {
        fail(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a {which} member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                m.epoch
            ),
        )
    };
    if received > m.epoch {
        return fenced("greater");
    }
    if received < m.epoch && (received != m.previous_epoch || !is_subset(owned, &m.assigned)) {
        return fenced("smaller");
    }
    Ok(())
}

/// The member a join or heartbeat is about, created or taken over from a
/// static member that left; it is not in `c.members` while it is updated.
fn take_member(
    c: &mut ConsumerGroup,
    group_id: &str,
    member_id: &str,
    r: &ConsumerGroupHeartbeatRequest,
    owned: Option<&Partitions>,
    now: Instant,
    records: &mut Vec<Entry>,
) -> Result<Member, Failure> {
    let joining = r.member_epoch == 0;
    let Some(instance) = r.instance_id.as_deref() else {
        return match c.members.get(member_id) {
            Some(m) => {
                check_epoch(m, r.member_epoch, owned)?;
                Ok(c.members.remove(member_id).expect("found"))
            }
            None if joining => Ok(Member::new(member_id, now)),
            None => fail(
                ResponseError::UnknownMemberId,
                format!("Member {member_id} is not a member of group {group_id}."),
            ),
        };
    };
    let holder = c.static_member(instance).map(|m| (m.id.clone(), m.epoch));
    match holder {
        None if joining => Ok(c
            .members
            .remove(member_id)
            .unwrap_or_else(|| Member::new(member_id, now))),
        None => fail(
            ResponseError::UnknownMemberId,
            format!("Instance id {instance} is unknown."),
        ),
        Some((holder, _)) if holder == member_id => {
            let m = &c.members[member_id];
            check_epoch(m, r.member_epoch, owned)?;
            Ok(c.members.remove(member_id).expect("found"))
        }
        Some((holder, epoch)) if joining => {
            if epoch != LEAVE_STATIC_EPOCH {
                return fail(
                    ResponseError::UnreleasedInstanceId,
                    format!("Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by {holder} member."),
                );
            }
            // The static member comes back under a new member id: it takes
            // over the old one's subscription and partitions.
            let mut m = c.members.remove(&holder).expect("found");
            records.extend(member_tombstones(group_id, &holder));
            if let Some(target) = c.target.remove(&holder) {
                records.push(entry(
                    group_id,
                    ConsumerRecord::Target {
                        member: member_id.to_string(),
                        value: Some(target.clone()),
                    },
                ));
                c.target.insert(member_id.to_string(), target);
            }
            m.id = member_id.to_string();
            m.epoch = 0;
            m.previous_epoch = 0;
            records.push(subscription_entry(group_id, &m));
            records.push(current_entry(group_id, &m));
            log::info!("group {group_id}: static member {instance} rejoined as {member_id}, replacing {holder}");
            Ok(m)
        }
        Some((holder, _)) => fail(
            ResponseError::FencedInstanceId,
            format!("Static member {member_id} with instance id {instance} is fenced by existing member {holder}."),
        ),
    }
}

fn subscription_entry(group_id: &str, m: &Member) -> Entry {
    entry(
        group_id,
        ConsumerRecord::Member {
            member: m.id.clone(),
            value: Some(m.subscription.clone()),
        },
    )
}

fn current_entry(group_id: &str, m: &Member) -> Entry {
    entry(
        group_id,
        ConsumerRecord::Current {
            member: m.id.clone(),
            value: Some(m.current()),
        },
    )
}

/// Applies the request's subscription fields (absent ones keep their
/// value); true when the subscribed topics changed.
fn update_subscription(
    m: &mut Member,
    r: &ConsumerGroupHeartbeatRequest,
    client_id: String,
    client_host: String,
) -> (bool, bool) {
    let before = m.subscription.clone();
    let s = &mut m.subscription;
    if let Some(i) = &r.instance_id {
        s.instance_id = Some(i.to_string());
    }
    if let Some(rack) = &r.rack_id {
        s.rack_id = Some(rack.to_string());
    }
    if r.rebalance_timeout_ms != -1 {
        s.rebalance_timeout_ms = r.rebalance_timeout_ms;
    }
    if let Some(a) = &r.server_assignor {
        s.server_assignor = Some(a.to_string());
    }
    if let Some(names) = &r.subscribed_topic_names {
        let mut names: Vec<String> = names.iter().map(|n| n.0.to_string()).collect();
        names.sort();
        names.dedup();
        s.topic_names = names;
    }
    if let Some(regex) = &r.subscribed_topic_regex {
        s.topic_regex = (!regex.is_empty()).then(|| regex.to_string());
    }
    s.client_id = client_id;
    s.client_host = client_host;
    let topics_changed = s.topic_names != before.topic_names || s.topic_regex != before.topic_regex;
    if s.topic_regex != before.topic_regex {
        m.regex = s.topic_regex.as_deref().and_then(|p| compile_regex(p).ok());
    }
    (m.subscription != before, topics_changed)
}

fn join_or_heartbeat<H: GroupHost>(
    host: &Rc<H>,
    groups: &mut HashMap<String, Group>,
    partition: i32,
    version: i16,
    client_id: String,
    client_host: String,
    r: &ConsumerGroupHeartbeatRequest,
) -> Step {
    let config = host.broker_config();
    let now = Instant::now();
    let catalog = host.catalog();
    let group_id = r.group_id.0.as_str();
    let joining = r.member_epoch == 0;
    let mut records = Vec::new();
    let group = consumer_group(groups, group_id, partition, joining, &mut records)?;
    let c = group.consumer.as_mut().expect("a consumer group");
    // v0 lets the coordinator choose the member id (KIP-1082 moved it to the client).
    let member_id = if version == 0 && r.member_id.is_empty() {
        kafka_uuid(Uuid::new_v4())
    } else {
        r.member_id.to_string()
    };
    let known = c.members.contains_key(&member_id)
        || r.instance_id
            .as_deref()
            .is_some_and(|i| c.static_member(i).is_some());
    if !known && c.members.len() >= limits::GROUP_MEMBERS_MAX {
        return fail(
            ResponseError::GroupMaxSizeReached,
            format!(
                "The consumer group has reached its maximum capacity of {} members.",
                limits::GROUP_MEMBERS_MAX
            ),
        );
    }
    let owned = owned(r);
    let mut member = take_member(
        c,
        group_id,
        &member_id,
        r,
        owned.as_ref(),
        now,
        &mut records,
    )?;
    let before_assigned = member.assigned.clone();
    let is_new = !known;
    let (changed, topics_changed) = update_subscription(&mut member, r, client_id, client_host);
    if changed || is_new {
        records.push(subscription_entry(group_id, &member));
    }
    if is_new {
        log::info!("group {group_id}: member {member_id} joins");
    }
    c.members.insert(member_id.clone(), member);
    let bump = topics_changed || c.group_epoch == 0;
    c.refresh_subscriptions(group_id, &catalog, bump, &mut records);
    if c.group_epoch > c.assignment_epoch {
        c.update_target(group_id, &mut records);
    }
    let target_epoch = c.assignment_epoch;
    let target = c.target.get(&member_id).cloned().unwrap_or_default();
    let owner_epochs = c.owner_epochs();
    let m = c.members.get_mut(&member_id).expect("inserted above");
    if !m.is_reconciled_to(target_epoch) {
        let before = m.current();
        reconcile(m, target_epoch, &target, &owner_epochs, owned.as_ref());
        if m.current() != before {
            records.push(current_entry(group_id, m));
            m.revocation_deadline = (m.state == MemberState::UnrevokedPartitions)
                .then(|| now + millis(m.subscription.rebalance_timeout_ms));
        }
    }
    m.session_deadline = now + millis(config.group_consumer_session_timeout_ms);
    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(str_bytes(&member_id)))
        .with_member_epoch(m.epoch)
        .with_heartbeat_interval_ms(config.group_consumer_heartbeat_interval_ms);
    let full = joining
        || (r.rebalance_timeout_ms != -1
            && (r.subscribed_topic_names.is_some() || r.subscribed_topic_regex.is_some())
            && owned.is_some());
    if full || m.assigned != before_assigned {
        response = response.with_assignment(Some(heartbeat_assignment(&m.assigned)));
    }
    Ok((response, records))
}

/// Moves a member towards its target (Kafka's `CurrentAssignmentBuilder`).
pub(super) fn reconcile(
    m: &mut Member,
    target_epoch: i32,
    target: &Partitions,
    owner_epochs: &HashMap<(Uuid, i32), i32>,
    owned: Option<&Partitions>,
) {
    let owns_any = |revoked: &Partitions| match owned {
        // Not reported: assume it still owns them.
        None => !revoked.is_empty(),
        Some(owned) => revoked
            .iter()
            .any(|(t, set)| owned.get(t).is_some_and(|o| !o.is_disjoint(set))),
    };
    let reconciled = m.state == MemberState::Stable && m.epoch == target_epoch;
    let revoking = m.state == MemberState::UnrevokedPartitions && owns_any(&m.pending_revocation);
    if reconciled || revoking {
        return;
    }
    let (epoch, assigned) = (m.epoch, m.assigned.clone());
    next_assignment(
        m,
        epoch,
        &assigned,
        target_epoch,
        target,
        owner_epochs,
        &owns_any,
    );
}

/// Kafka's `computeNextAssignment`.
fn next_assignment(
    m: &mut Member,
    epoch: i32,
    current: &Partitions,
    target_epoch: i32,
    target: &Partitions,
    owner_epochs: &HashMap<(Uuid, i32), i32>,
    owns_any: &dyn Fn(&Partitions) -> bool,
) {
    let mut assigned = Partitions::new();
    let mut revoke = Partitions::new();
    let mut pending = Partitions::new();
    let mut unreleased = false;
    let topics: BTreeSet<Uuid> = target.keys().chain(current.keys()).copied().collect();
    let empty = BTreeSet::new();
    for t in topics {
        let want = target.get(&t).unwrap_or(&empty);
        let have = current.get(&t).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let gone: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let mut add: BTreeSet<i32> = want.difference(&keep).copied().collect();
        let own_revoking = m.pending_revocation.get(&t);
        let before = add.len();
        add.retain(|p| {
            !owner_epochs.contains_key(&(t, *p)) || own_revoking.is_some_and(|r| r.contains(p))
        });
        unreleased |= add.len() != before;
        if !keep.is_empty() {
            assigned.insert(t, keep);
        }
        if !gone.is_empty() {
            revoke.insert(t, gone);
        }
        if !add.is_empty() {
            pending.insert(t, add);
        }
    }
    m.previous_epoch = m.epoch;
    if !revoke.is_empty() && owns_any(&revoke) {
        // Revoke first: it stays at its epoch until it stops owning them.
        m.state = MemberState::UnrevokedPartitions;
        m.epoch = epoch;
        m.assigned = assigned;
        m.pending_revocation = revoke;
        return;
    }
    for (t, set) in pending {
        assigned.entry(t).or_default().extend(set);
    }
    m.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    m.epoch = target_epoch;
    m.assigned = assigned;
    m.pending_revocation = Partitions::new();
}

fn heartbeat_assignment(p: &Partitions) -> HeartbeatAssignment {
    HeartbeatAssignment::default().with_topic_partitions(
        p.iter()
            .map(|(t, set)| {
                HeartbeatTopicPartitions::default()
                    .with_topic_id(*t)
                    .with_partitions(set.iter().copied().collect())
            })
            .collect(),
    )
}
