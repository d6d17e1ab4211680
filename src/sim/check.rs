//! The simulation's invariants, checked after every step and at the end.
//!
//! Every step: the controller's epochs never go back and one epoch has one
//! leader; no two running brokers lead a partition in the same epoch, and
//! one leads only in an epoch the controller gave it; each broker's high
//! watermark never goes back while its process runs, and stays within its
//! log. Every `FULL_EVERY` steps and at the end, with the logs read back:
//! what a leader ever exposed below its high watermark (consumer-visible,
//! so every acknowledged record) never changes or disappears, and every
//! in-sync replica holds the leader's batches below the high watermark,
//! durably. At the end, after healing: every partition has a leader whose
//! log holds every acknowledged record, and every replica is back in sync.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::io::MemDisk;
use crate::metadata::Catalog;
use crate::partition::replica::ReplicaState;
use crate::partition::Partition;
use crate::protocol::batch::BatchIter;

const FULL_EVERY: u32 = 16;
const READ_CHUNK: usize = 64 * 1024;

/// A broken invariant: the step, what broke, and the cluster's state then.
#[derive(Debug)]
pub struct Violation {
    pub step: u32,
    pub what: String,
    pub seed_state: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {}\n{}", self.step, self.what, self.seed_state)
    }
}

/// One stored batch: (base offset, last offset, CRC).
type Batch = (i64, i64, u32);

/// One running replica, as the checks see it.
pub struct ReplicaView {
    pub node: i32,
    pub partition: i32,
    pub state: ReplicaState,
    pub high_watermark: i64,
    pub log_start: i64,
    pub log_end: i64,
    pub flushed: i64,
    partition_ref: Rc<Partition<MemDisk>>,
}

impl ReplicaView {
    pub async fn of(node: i32, partition: i32, p: &Rc<Partition<MemDisk>>) -> ReplicaView {
        ReplicaView {
            node,
            partition,
            state: p.replica_state(),
            high_watermark: p.high_watermark(),
            log_start: p.log_start_offset(),
            log_end: p.log_end_offset(),
            flushed: p.flushed_offset(),
            partition_ref: p.clone(),
        }
    }

    fn leads(&self) -> bool {
        self.state.replicated && self.state.leader == self.state.me
    }

    /// The durable batches below `end`, by base offset.
    async fn batches(&self, end: i64) -> Result<BTreeMap<i64, Batch>, String> {
        let mut out = BTreeMap::new();
        let mut offset = self.log_start;
        while offset < end.min(self.flushed) {
            let bytes = self
                .partition_ref
                .read_stored(offset, READ_CHUNK)
                .await
                .map_err(|e| {
                    format!(
                        "broker {} partition {}: read at {offset}: {e}",
                        self.node, self.partition
                    )
                })?;
            let mut next = offset;
            for (_, header) in BatchIter::new(&bytes, true) {
                if header.base_offset >= end {
                    break;
                }
                out.insert(
                    header.base_offset,
                    (header.base_offset, header.last_offset(), header.crc),
                );
                next = header.last_offset() + 1;
            }
            if next == offset {
                break;
            }
            offset = next;
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct Checker {
    /// The leader of each (partition, leader epoch) the controller gave.
    epoch_leaders: BTreeMap<(usize, i32), i32>,
    /// Each partition's latest leader epoch in the controller's image.
    epochs: BTreeMap<usize, i32>,
    /// Each running (broker, partition)'s last high watermark.
    high_watermarks: BTreeMap<(i32, i32), i64>,
    /// Batches some leader exposed below its high watermark.
    committed: BTreeMap<i32, BTreeMap<i64, Batch>>,
    /// Acknowledged produces: (partition, base offset) -> CRC.
    acknowledged: BTreeMap<(i32, i64), u32>,
    last_image_version: u64,
    steps: u32,
}

fn violation(step: u32, what: String) -> Violation {
    Violation {
        step,
        what,
        seed_state: String::new(),
    }
}

impl Checker {
    /// A broker's process started again: its in-memory state is new.
    pub fn restarted(&mut self, node: i32) {
        self.high_watermarks.retain(|(n, _), _| *n != node);
    }

    pub fn acknowledged(&mut self, partition: i32, offset: i64, crc: u32) {
        self.acknowledged.insert((partition, offset), crc);
    }

    /// Whether the image changed since the last call (for the statistics).
    pub fn image_changed(&mut self, image: &Catalog) -> bool {
        let changed = image.version != self.last_image_version;
        self.last_image_version = image.version;
        changed
    }

    pub async fn step(
        &mut self,
        step: u32,
        image: &Catalog,
        views: &[ReplicaView],
    ) -> Result<(), Violation> {
        self.steps = step;
        self.check_image(step, image)?;
        self.check_leaders(step, views)?;
        self.check_high_watermarks(step, views)?;
        if step.is_multiple_of(FULL_EVERY) {
            self.check_logs(step, views).await?;
        }
        Ok(())
    }

    fn check_image(&mut self, step: u32, image: &Catalog) -> Result<(), Violation> {
        for topic in image.topics.values() {
            for (p, set) in topic.replicas.iter().enumerate() {
                let last = self.epochs.entry(p).or_insert(set.leader_epoch);
                if set.leader_epoch < *last {
                    return Err(violation(
                        step,
                        format!(
                            "partition {p}: the controller's leader epoch went back from {last} to {}",
                            set.leader_epoch
                        ),
                    ));
                }
                *last = set.leader_epoch;
                if set.leader >= 0 {
                    if !set.isr.contains(&set.leader) {
                        return Err(violation(
                            step,
                            format!(
                                "partition {p}: leader {} outside its ISR {:?}",
                                set.leader, set.isr
                            ),
                        ));
                    }
                    let leader = *self
                        .epoch_leaders
                        .entry((p, set.leader_epoch))
                        .or_insert(set.leader);
                    if leader != set.leader {
                        return Err(violation(
                            step,
                            format!(
                                "partition {p}: epoch {} led by {leader} and then by {}",
                                set.leader_epoch, set.leader
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_leaders(&self, step: u32, views: &[ReplicaView]) -> Result<(), Violation> {
        let mut leading: BTreeMap<(i32, i32), i32> = BTreeMap::new();
        for v in views.iter().filter(|v| v.leads()) {
            let key = (v.partition, v.state.leader_epoch);
            if let Some(other) = leading.insert(key, v.node) {
                return Err(violation(
                    step,
                    format!(
                        "partition {}: brokers {other} and {} both lead in epoch {}",
                        v.partition, v.node, v.state.leader_epoch
                    ),
                ));
            }
            let given = self
                .epoch_leaders
                .get(&(v.partition as usize, v.state.leader_epoch));
            if given != Some(&v.node) {
                return Err(violation(
                    step,
                    format!(
                        "partition {}: broker {} leads in epoch {}, which the controller gave to {given:?}",
                        v.partition, v.node, v.state.leader_epoch
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_high_watermarks(&mut self, step: u32, views: &[ReplicaView]) -> Result<(), Violation> {
        for v in views {
            if !(v.log_start <= v.high_watermark
                && v.high_watermark <= v.flushed
                && v.flushed <= v.log_end)
            {
                return Err(violation(
                    step,
                    format!(
                        "broker {} partition {}: log start {} <= high watermark {} <= flushed {} <= log end {} does not hold",
                        v.node, v.partition, v.log_start, v.high_watermark, v.flushed, v.log_end
                    ),
                ));
            }
            if !v.state.replicated {
                // Opened, its replica set not applied yet.
                continue;
            }
            let last = self
                .high_watermarks
                .entry((v.node, v.partition))
                .or_insert(v.high_watermark);
            if v.high_watermark < *last {
                return Err(violation(
                    step,
                    format!(
                        "broker {} partition {}: high watermark went back from {last} to {}",
                        v.node, v.partition, v.high_watermark
                    ),
                ));
            }
            *last = v.high_watermark;
        }
        Ok(())
    }

    /// Reads the logs back: what was exposed stays, and in-sync replicas
    /// hold the leader's batches below its high watermark.
    async fn check_logs(&mut self, step: u32, views: &[ReplicaView]) -> Result<(), Violation> {
        for leader in views.iter().filter(|v| v.leads()) {
            let batches = leader
                .batches(leader.high_watermark)
                .await
                .map_err(|e| violation(step, e))?;
            let committed = self.committed.entry(leader.partition).or_default();
            for (base, batch) in committed.iter() {
                if batch.1 >= leader.high_watermark {
                    continue;
                }
                if batches.get(base) != Some(batch) {
                    return Err(violation(
                        step,
                        format!(
                            "partition {}: the batch {batch:?} was visible below a high watermark, \
                             but leader {} (epoch {}) has {:?} there",
                            leader.partition,
                            leader.node,
                            leader.state.leader_epoch,
                            batches.get(base)
                        ),
                    ));
                }
            }
            committed.extend(batches.iter().map(|(k, v)| (*k, *v)));
            for follower in views.iter().filter(|f| {
                f.partition == leader.partition
                    && f.node != leader.node
                    && f.state.leader == leader.node
                    && f.state.leader_epoch == leader.state.leader_epoch
                    && leader.state.isr.contains(&f.node)
            }) {
                if follower.flushed < leader.high_watermark {
                    return Err(violation(
                        step,
                        format!(
                            "partition {}: in-sync replica {} has made only {} durable, below \
                             leader {}'s high watermark {}",
                            leader.partition,
                            follower.node,
                            follower.flushed,
                            leader.node,
                            leader.high_watermark
                        ),
                    ));
                }
                let theirs = follower
                    .batches(leader.high_watermark)
                    .await
                    .map_err(|e| violation(step, e))?;
                let differ = batches
                    .iter()
                    .find(|(base, b)| **base >= follower.log_start && theirs.get(base) != Some(b));
                if let Some((base, b)) = differ {
                    return Err(violation(
                        step,
                        format!(
                            "partition {}: below the high watermark {} leader {} has {b:?} at {base}, \
                             in-sync replica {} has {:?}",
                            leader.partition,
                            leader.high_watermark,
                            leader.node,
                            follower.node,
                            theirs.get(base)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// After healing: every partition is led, every replica is back in the
    /// ISR, and the leader holds every acknowledged and every exposed batch.
    pub async fn at_end(
        &mut self,
        image: &Catalog,
        views: &[ReplicaView],
    ) -> Result<(), Violation> {
        let step = self.steps;
        self.check_logs(step, views).await?;
        for topic in image.topics.values() {
            for (p, set) in topic.replicas.iter().enumerate() {
                let p = p as i32;
                let Some(leader) = views
                    .iter()
                    .find(|v| v.partition == p && v.leads() && v.node == set.leader)
                else {
                    return Err(violation(
                        step,
                        format!("partition {p}: no leader after healing ({set:?})"),
                    ));
                };
                if set.isr.len() != set.replicas.len() {
                    return Err(violation(
                        step,
                        format!(
                            "partition {p}: replicas still out of the ISR after healing ({set:?})"
                        ),
                    ));
                }
                let batches = leader
                    .batches(leader.log_end)
                    .await
                    .map_err(|e| violation(step, e))?;
                for ((q, base), crc) in &self.acknowledged {
                    if *q != p {
                        continue;
                    }
                    if batches.get(base).map(|b| b.2) != Some(*crc) {
                        return Err(violation(
                            step,
                            format!(
                                "partition {p}: the acknowledged batch at offset {base} is lost: \
                                 leader {} has {:?} there",
                                leader.node,
                                batches.get(base)
                            ),
                        ));
                    }
                    if *base >= leader.high_watermark {
                        return Err(violation(
                            step,
                            format!(
                                "partition {p}: acknowledged offset {base} is not below the high \
                                 watermark {} after healing",
                                leader.high_watermark
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A digest of what the run exposed and acknowledged.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u64| h = (h ^ x).wrapping_mul(0x100_0000_01b3);
        for (p, batches) in &self.committed {
            for (base, (_, last, crc)) in batches {
                mix(*p as u64);
                mix(*base as u64);
                mix(*last as u64);
                mix(u64::from(*crc));
            }
        }
        for ((p, base), crc) in &self.acknowledged {
            mix(*p as u64 ^ (*base as u64) << 8 ^ u64::from(*crc) << 32);
        }
        h
    }
}

/// The simulation's side of this module: running the checks on the simulation's state, and its report.
impl super::Sim {
    pub(super) async fn check(&mut self, step: u32) -> Result<(), Violation> {
        if let Some(what) = self
            .voter_violation
            .take()
            .or_else(|| self.voters_committed())
        {
            return Err(Violation {
                step,
                what,
                seed_state: self.describe(),
            });
        }
        let views = self.views().await;
        let image = self.latest.clone();
        self.checker
            .step(step, &image, &views)
            .await
            .map_err(|mut v| {
                v.seed_state = self.describe();
                v
            })?;
        // A replay of the whole offsets partition: every 16 steps is
        // often enough to see a commit lost between two leaders.
        if step.is_multiple_of(COMMITS_CHECK_EVERY) {
            self.check_commits(step, false).await?;
        }
        Ok(())
    }

    /// The group coordinator's view of the offsets partition on its
    /// current leader (the one the newest image names, once it leads in
    /// that epoch; `at_end` requires it): see `groups`.
    pub(super) async fn check_commits(&self, step: u32, at_end: bool) -> Result<(), Violation> {
        let p = groups::OFFSETS_PARTITION;
        let set = &self.latest.topics[TOPIC].replicas[p as usize];
        let leader = self
            .nodes
            .iter()
            .position(|n| n.id == set.leader)
            .and_then(|i| {
                self.partition(i, p).filter(|partition| {
                    let state = partition.replica_state();
                    state.replicated
                        && state.leader == state.me
                        && state.leader_epoch == set.leader_epoch
                })
            });
        let result = match leader {
            Some(partition) => self.commits.check_leader(&partition).await,
            None if at_end => Err(format!(
                "partition {p}: no running leader in epoch {} after healing",
                set.leader_epoch
            )),
            None => Ok(()),
        };
        result.map_err(|what| Violation {
            step,
            what: format!("offsets partition {p}: {what}"),
            seed_state: self.describe(),
        })
    }

    pub(super) async fn final_check(&mut self, step: u32) -> Result<(), Violation> {
        let views = self.views().await;
        let image = self.latest.clone();
        self.checker.at_end(&image, &views).await.map_err(|mut v| {
            v.seed_state = self.describe();
            v
        })?;
        self.check_commits(step, true).await
    }

    /// A running voter's committed index never goes back.
    pub(super) fn voters_committed(&mut self) -> Option<String> {
        for node in &mut self.nodes {
            let Some(voter) = node.process.as_mut().and_then(|p| p.voter.as_mut()) else {
                continue;
            };
            let now = voter.core.committed();
            if now < voter.committed {
                return Some(format!(
                    "voter {}'s committed index went back from {} to {now}",
                    node.id, voter.committed
                ));
            }
            voter.committed = now;
        }
        None
    }

    /// Every running replica's state, for the checks.
    pub(super) async fn views(&self) -> Vec<check::ReplicaView> {
        let mut views = Vec::new();
        for node in &self.nodes {
            let Some(process) = &node.process else {
                continue;
            };
            for (p, partition) in &process.partitions {
                views.push(check::ReplicaView::of(node.id, *p, partition).await);
            }
        }
        views
    }

    pub(super) fn describe(&self) -> String {
        let mut text = format!(
            "t={:?} newest controller image v{}:\n",
            self.now, self.latest.version
        );
        for node in &self.nodes {
            if let Some(voter) = node.process.as_ref().and_then(|p| p.voter.as_ref()) {
                let raft = &voter.core.raft().raft;
                text.push_str(&format!(
                    "  voter {}: {:?} term {} last {} committed {} image v{}\n",
                    node.id,
                    raft.state,
                    raft.term,
                    raft.raft_log.last_index(),
                    raft.raft_log.committed,
                    voter.core.image().version
                ));
            }
        }
        for (p, set) in self.latest.topics[TOPIC].replicas.iter().enumerate() {
            text.push_str(&format!("  partition {p}: {set:?}\n"));
        }
        for node in &self.nodes {
            match &node.process {
                None => text.push_str(&format!("  broker {}: down\n", node.id)),
                Some(process) => {
                    for (p, partition) in &process.partitions {
                        text.push_str(&format!(
                            "  broker {} partition {p}: {:?} log [{}, {}) flushed {} hw {}\n",
                            node.id,
                            partition.replica_state(),
                            partition.log_start_offset(),
                            partition.log_end_offset(),
                            partition.flushed_offset(),
                            partition.high_watermark(),
                        ));
                    }
                }
            }
        }
        text
    }

    pub(super) fn outcome(&self) -> Outcome {
        let mut outcome = self.stats.clone();
        let mut digest = self.checker.digest();
        for (index, (term, crc)) in &self.committed_entries {
            digest = digest
                .wrapping_mul(0x100_0000_01b3)
                .wrapping_add(index ^ term ^ u64::from(*crc));
        }
        outcome.digest = digest ^ self.stats.messages;
        outcome
    }
}
