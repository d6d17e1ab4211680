//! JoinGroup and SyncGroup of the classic protocol: a rebalance, from the
//! first join to the leader's assignment reaching every member. Callers
//! that must wait for the rest of the group are parked on oneshot channels
//! that the group's state machine (`classic.rs`) completes.

use super::*;

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
        group.classic.rebalances += c.rebalances;
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
