//! The brokers' side of the simulation: a broker applies the controller's
//! images to its partitions, proposes ISR changes, answers produces, and
//! follows its leaders step by step as `replication::fetcher` does (epoch
//! check, cut, fetch, append, wait until durable, take the leader's high
//! watermark); a leader answers with what the Fetch handler calls.

use super::*;

impl Sim {
    /// What `server::broker::apply_replica_sets` does with a new image.
    pub(super) async fn apply_image(&mut self, i: usize, image: &Catalog) {
        let id = self.nodes[i].id;
        let process = self.nodes[i].process.as_mut().expect("up");
        if image.version <= process.image_version {
            return;
        }
        // `cluster::node::ClusterNode::follow`: only an image with this
        // process's registration in it.
        let incarnation = Uuid::from_u64_pair(process.incarnation, 0);
        if image.brokers.get(&id).map(|b| b.incarnation) != Some(incarnation) {
            return;
        }
        process.image_version = image.version;
        let partitions: Vec<(i32, Rc<Partition<MemDisk>>)> = process
            .partitions
            .iter()
            .map(|(p, partition)| (*p, partition.clone()))
            .collect();
        for (p, partition) in partitions {
            let set = &image.topics[TOPIC].replicas[p as usize];
            let next = ReplicaState::in_set(id, set);
            self.trace(|| format!("broker {id} partition {p}: {next:?}"));
            if let Some(checkpoint) = partition.set_replica_state(next) {
                // A failed write is logged by the broker and the epoch
                // cache stays in memory; the same here.
                let _ = partition.write_epochs(checkpoint).await;
            }
        }
    }

    pub(super) fn propose_isr(&mut self, i: usize, partition: i32, change: IsrChange) {
        let id = self.nodes[i].id;
        let now = self.now;
        let process = self.nodes[i].process.as_mut().expect("up");
        let pending = process.isr_pending.get(&partition).cloned();
        if let Some((sent, _)) = &pending {
            // The controller call times out after REQUEST_TIMEOUT.
            if now.saturating_sub(*sent) < REQUEST_TIMEOUT {
                return;
            }
        }
        let process = self.nodes[i].process.as_mut().expect("up");
        process.isr_pending.insert(partition, (now, change.clone()));
        let incarnation = process.incarnation;
        let controller = process.controller();
        let alter = Message::AlterIsr {
            partition,
            change,
            incarnation,
        };
        self.send(id, controller, alter);
    }

    pub(super) async fn broker_duties(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let now = self.now;
        let Some(process) = self.nodes[i].process.as_mut() else {
            return;
        };
        if now.saturating_sub(process.last_heartbeat) >= HEARTBEAT_EVERY {
            process.last_heartbeat = now;
            if !process.heartbeat_answered {
                process.next_controller(None);
            }
            process.heartbeat_answered = false;
            let heartbeat = Message::Heartbeat {
                incarnation: process.incarnation,
                image_version: process.image_version,
            };
            let controller = process.controller();
            self.send(id, controller, heartbeat);
        }
        let partitions: Vec<(i32, Rc<Partition<MemDisk>>)> = self.nodes[i]
            .process
            .as_ref()
            .expect("up")
            .partitions
            .iter()
            .map(|(p, partition)| (*p, partition.clone()))
            .collect();
        for (p, partition) in &partitions {
            // The shard's group commit, at a random pace.
            if partition.has_unflushed() && self.rng.chance(400_000) {
                if let Some(job) = partition.take_flush() {
                    partition.apply_flush(job.run(true).await).await;
                    self.trace(|| {
                        format!(
                            "broker {id} partition {p}: flushed to {} (log end {}, hw {})",
                            partition.flushed_offset(),
                            partition.log_end_offset(),
                            partition.high_watermark()
                        )
                    });
                }
            }
            // The leader's periodic ISR check.
            if self.rng.chance(50_000) {
                if let Some(change) = partition.isr_shrink_wanted(LAG_MAX) {
                    self.propose_isr(i, *p, change);
                }
            }
        }
        self.answer_produces(i);
        for (p, partition) in &partitions {
            self.follow(i, *p, partition);
        }
    }

    /// Answers the produces whose batches the high watermark passed.
    pub(super) fn answer_produces(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let process = self.nodes[i].process.as_mut().expect("up");
        let mut answers = Vec::new();
        process
            .produces
            .retain_mut(|(request, _, base, wait)| match wait.try_recv() {
                Ok(None) => true,
                Ok(Some(result)) => {
                    answers.push((*request, result.map(|()| *base)));
                    false
                }
                Err(oneshot::Canceled) => {
                    answers.push((*request, Err(PartitionError::NotLeader)));
                    false
                }
            });
        for (request, result) in answers {
            self.send(id, CLIENT, Message::ProduceReply { request, result });
        }
    }

    /// One round of `replication::fetcher` for one followed partition.
    pub(super) fn follow(&mut self, i: usize, p: i32, partition: &Rc<Partition<MemDisk>>) {
        let id = self.nodes[i].id;
        let now = self.now;
        let state = partition.replica_state();
        let Some(leader) = state.followed_leader() else {
            return;
        };
        let bug = self.bug;
        let process = self.nodes[i].process.as_mut().expect("up");
        if let Some((wait, hw)) = process.replicated.get_mut(&p) {
            match wait.try_recv() {
                Ok(None) if bug != Some(PlantedBug::FetchBeforeDurable) => return,
                Ok(None) => {}
                Ok(Some(Ok(()))) => partition.set_leader_high_watermark(*hw),
                Ok(Some(Err(_))) | Err(oneshot::Canceled) => {}
            }
            if bug == Some(PlantedBug::FetchBeforeDurable) {
                partition.set_leader_high_watermark(*hw);
            }
            process.replicated.remove(&p);
        }
        if let Some((sent, _)) = process.asking.get(&p) {
            if now.saturating_sub(*sent) < REQUEST_TIMEOUT {
                return;
            }
        }
        let request = self.rng.next_u64();
        let process = self.nodes[i].process.as_mut().expect("up");
        process.asking.insert(p, (now, request));
        let epoch = state.leader_epoch;
        let (latest, log_end) = partition.follower_position();
        let end = if bug == Some(PlantedBug::FetchBeforeDurable) {
            log_end
        } else {
            partition.flushed_offset()
        };
        let message = if process.checked.get(&p) != Some(&epoch) {
            match latest {
                Some(latest) => Message::EpochQuery {
                    request,
                    partition: p,
                    current_epoch: epoch,
                    epoch: latest,
                },
                None => {
                    process.checked.insert(p, epoch);
                    process.asking.remove(&p);
                    return;
                }
            }
        } else {
            Message::Fetch {
                request,
                partition: p,
                offset: end,
                leader_epoch: epoch,
            }
        };
        self.send(id, leader, message);
    }

    pub(super) fn answers_current(&self, i: usize, p: i32, request: u64) -> bool {
        self.nodes[i]
            .process
            .as_ref()
            .and_then(|process| process.asking.get(&p))
            .is_some_and(|(_, current)| *current == request)
    }

    pub(super) async fn epoch_answered(
        &mut self,
        i: usize,
        p: i32,
        current_epoch: i32,
        result: Result<(i32, i64), PartitionError>,
    ) {
        let Some(partition) = self.partition(i, p) else {
            return;
        };
        let process = self.nodes[i].process.as_mut().expect("up");
        process.asking.remove(&p);
        if partition.replica_state().leader_epoch != current_epoch {
            return;
        }
        let Ok((leader_epoch, end_offset)) = result else {
            return;
        };
        let divergence = partition.divergence(leader_epoch, end_offset);
        self.trace(|| {
            format!(
                "broker {} partition {p}: leader's epoch {leader_epoch} ends at {end_offset}: {divergence:?}",
                i + 1
            )
        });
        let cut = match divergence {
            Divergence::None => Ok(()),
            Divergence::CutFrom(cut) => partition.truncate(cut, false).await.map(|_| ()),
            Divergence::StartOver => partition.truncate(0, true).await.map(|_| ()),
        };
        if cut.is_ok() {
            self.stats.truncations += u64::from(partition.log_end_offset() < end_offset);
            let process = self.nodes[i].process.as_mut().expect("up");
            process.checked.insert(p, current_epoch);
        }
    }

    pub(super) async fn fetched(
        &mut self,
        i: usize,
        leader: NodeId,
        p: i32,
        leader_epoch: i32,
        result: Result<(Bytes, i64), PartitionError>,
    ) {
        let Some(partition) = self.partition(i, p) else {
            return;
        };
        let process = self.nodes[i].process.as_mut().expect("up");
        process.asking.remove(&p);
        let state = partition.replica_state();
        if state.followed_leader() != Some(leader) || state.leader_epoch != leader_epoch {
            return;
        }
        match result {
            Ok((records, hw)) => {
                let Ok(fetched) = FetchedBatches::check(&records) else {
                    return;
                };
                if fetched.is_empty() {
                    partition.set_leader_high_watermark(hw);
                    return;
                }
                if let Some(text) = partition.note_epochs(&fetched) {
                    if partition.write_epochs(text).await.is_err() {
                        return;
                    }
                }
                match partition.append_replicated(leader, leader_epoch, &fetched) {
                    Ok(Some(wait)) => {
                        let process = self.nodes[i].process.as_mut().expect("up");
                        process.replicated.insert(p, (wait, hw));
                    }
                    Ok(None) => partition.set_leader_high_watermark(hw),
                    Err(_) => {
                        process_of(&mut self.nodes[i]).checked.remove(&p);
                    }
                }
            }
            Err(PartitionError::OffsetOutOfRange { start, .. }) => {
                let (_, end) = partition.follower_position();
                if end < start {
                    let _ = partition.truncate(start, true).await;
                } else {
                    process_of(&mut self.nodes[i]).checked.remove(&p);
                }
            }
            Err(PartitionError::FencedLeaderEpoch { .. })
            | Err(PartitionError::UnknownLeaderEpoch { .. }) => {
                process_of(&mut self.nodes[i]).checked.remove(&p);
            }
            Err(_) => {}
        }
    }
}
