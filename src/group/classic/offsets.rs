//! The offset APIs both protocols share (OffsetCommit, OffsetDelete), and
//! DescribeGroups and DeleteGroups of classic groups: each checks the
//! request against the group's state machine (`classic.rs`), then persists
//! through the group's offsets partition.

use super::*;

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
                    // v1 may name the commit's time; v2-v4 its retention.
                    let commit_timestamp_ms = match p.commit_timestamp {
                        retention::DEFAULT_TIMESTAMP => now,
                        named => named,
                    };
                    let value = OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp_ms,
                        expire_timestamp_ms: retention::expire_timestamp(
                            request.retention_time_ms,
                            now,
                        ),
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
