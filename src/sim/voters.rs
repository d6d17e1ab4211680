//! The simulation's controller quorum: three voters, co-located with
//! brokers 1 to 3 as Kafka's combined mode (`process.roles=broker,controller`)
//! and as corelog deploys its controllers (the quorum runs on shard 0 of a
//! broker process). Co-location is also what makes the faults honest: a
//! voter dies with its broker's process, loses or tears what it had not
//! synced with that broker's disk, shares its links, and an fsync failure on
//! that disk stops it as it stops the real quorum (which leaves by shutting
//! the process down).
//!
//! Each voter runs the real sans-I/O core (`cluster::quorum::voter`) over
//! `RaftFiles` on its node's `MemDisk`; Raft messages travel through the
//! simulation's `Net`. The active controller's duties mirror
//! `cluster::quorum::Quorum`: a heartbeat from an unknown process registers
//! it and then elects leaders for leaderless partitions; one from a fenced
//! broker unfences it, then the same; a broker silent for the session
//! timeout is fenced and then loses its leaderships and ISR places
//! (`elections`); a new active controller first gives every broker a full
//! session. Each step of those chains is one proposal that waits until it
//! is applied, and a voter that stops leading drops what it was waiting for
//! (the callers retry, as `ControllerClient` does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use raft::prelude::{ConfState, Snapshot};

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::cluster::quorum::voter::{self, ElectionTicks, Finished, QuorumCore};
use crate::cluster::quorum::{elections, ELECTION_ATTEMPTS};
use crate::cluster::records::{MetadataRecord, Rejected};
use crate::cluster::store::RaftFiles;
use crate::io::MemDisk;
use crate::metadata::Catalog;
use crate::partition::replica::IsrChange;

/// The voters: brokers 1, 2 and 3.
pub const VOTERS: [i32; 3] = [1, 2, 3];
/// One Raft tick.
pub const RAFT_TICK: Duration = Duration::from_millis(5);
/// Election timeouts in ticks, one per voter. raft-rs draws a random
/// timeout from its own generator, which no seed controls; a fixed and
/// different timeout per voter keeps a run reproducible and still breaks
/// ties between candidates (the network's delays do the rest).
const ELECTION_TICKS: [usize; 3] = [10, 13, 16];
/// Readies handled per voter and step; raft-rs has none left long before.
const READIES_PER_STEP_MAX: usize = 16;

/// What follows when one of a voter's proposals is applied.
#[derive(Debug)]
pub enum Then {
    /// A broker was registered or unfenced: elect leaders for leaderless
    /// partitions (`Quorum::elect_leaderless`).
    ElectLeaderless { broker: i32 },
    /// A broker was fenced: move its leaderships and ISR places
    /// (`Quorum::fence`).
    MoveAwayFrom { broker: i32 },
    /// The elections after a fence: the next fence may start (or, refused
    /// as conflicting, they are recomputed: attempt `attempt`).
    Fenced { broker: i32, attempt: u32 },
    /// Elections of leaderless partitions, attempt `attempt`.
    Leaderless { attempt: u32 },
    /// An ISR change asked for by `broker`: tell it the outcome.
    IsrDone {
        broker: i32,
        partition: i32,
        change: IsrChange,
    },
}

/// A ready's writes: a received snapshot, entries, hard state.
type Deferred = (
    Option<Snapshot>,
    Vec<raft::prelude::Entry>,
    Option<raft::prelude::HardState>,
);

/// One voter's process state (it lives and dies with its broker's).
pub struct Voter {
    pub core: QuorumCore,
    files: RaftFiles<MemDisk>,
    /// Active controller only: each broker's last heartbeat.
    seen: BTreeMap<i32, Duration>,
    was_leader: bool,
    next_proposal: u64,
    waiting: BTreeMap<u64, Then>,
    /// Brokers with a registration, unfencing or fencing in flight: one
    /// heartbeat at a time reaches the real controller per broker.
    busy: BTreeSet<i32>,
    /// The broker being fenced (the fence and then its elections).
    fencing: Option<i32>,
    last_tick: Duration,
    /// Writes put off by the planted bug `AckBeforeDurable`.
    deferred: Vec<Deferred>,
    /// The highest index this process has seen committed.
    pub committed: u64,
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Formats a voter's disk as `corelog format` would with the cluster's
/// first image: a snapshot at index 1 (the topic's creation), durable.
pub async fn format(disk: &MemDisk, data_dir: &Path, image: &Catalog) {
    let (mut files, _) = RaftFiles::open(disk.clone(), data_dir)
        .await
        .expect("a fresh MemDisk opens");
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = image.version;
    snapshot.mut_metadata().term = 1;
    snapshot.mut_metadata().set_conf_state(ConfState::from((
        VOTERS
            .iter()
            .map(|v| voter::raft_id(*v))
            .collect::<Vec<_>>(),
        vec![],
    )));
    snapshot.data = serde_json::to_vec(image).expect("images serialize");
    files
        .save_snapshot(&snapshot, &[])
        .await
        .expect("a fresh MemDisk takes the snapshot");
}

/// Why a voter stopped: its log could not be read or written.
#[derive(Debug)]
pub struct Stopped(pub String);

impl Voter {
    /// Opens voter `id`'s files as the quorum does at start.
    pub async fn open(id: i32, disk: &MemDisk, data_dir: &Path) -> Result<Voter, Stopped> {
        let (files, loaded) = RaftFiles::open(disk.clone(), data_dir)
            .await
            .map_err(|e| Stopped(e.to_string()))?;
        let slot = VOTERS.iter().position(|v| *v == id).expect("a voter");
        let core = QuorumCore::new(
            id,
            &VOTERS,
            ElectionTicks::fixed(ELECTION_TICKS[slot]),
            loaded,
            &logger(),
        )
        .map_err(|e| Stopped(e.to_string()))?;
        let committed = core.committed();
        Ok(Voter {
            core,
            files,
            seen: BTreeMap::new(),
            was_leader: false,
            next_proposal: 1,
            waiting: BTreeMap::new(),
            busy: BTreeSet::new(),
            fencing: None,
            last_tick: Duration::ZERO,
            deferred: Vec::new(),
            committed,
        })
    }

    /// Ticks Raft when a tick is due.
    pub fn tick(&mut self, now: Duration) {
        if now.saturating_sub(self.last_tick) >= RAFT_TICK {
            self.last_tick = now;
            self.core.tick();
        }
    }

    /// Hands `record` to Raft; `then` runs once it is applied here.
    pub fn propose(&mut self, record: &MetadataRecord, then: Then) -> bool {
        if !self.core.is_leader() {
            return false;
        }
        let id = self.next_proposal;
        self.next_proposal += 1;
        let data = serde_json::to_vec(record).expect("records serialize");
        if self.core.propose(id, data).is_err() {
            return false;
        }
        self.waiting.insert(id, then);
        true
    }

    /// Handles Raft's readies: `send` gets every message in the order the
    /// core releases them (those before the writes, then those after), and
    /// what each ready applied comes back. With `ack_before_durable` (a
    /// planted bug) the writes are put off to the voter's next step, so the
    /// votes and acknowledgements that must wait for them leave first and
    /// a crash in between loses what they acknowledged.
    pub async fn drive(
        &mut self,
        ack_before_durable: bool,
        send: &mut dyn FnMut(raft::prelude::Message),
    ) -> Result<Vec<Finished>, Stopped> {
        let mut done = Vec::new();
        for (snapshot, entries, hard_state) in std::mem::take(&mut self.deferred) {
            self.write(snapshot.as_ref(), &entries, hard_state.as_ref())
                .await?;
        }
        for _ in 0..READIES_PER_STEP_MAX {
            let Some((messages, pending)) =
                self.core.begin().map_err(|e| Stopped(e.to_string()))?
            else {
                break;
            };
            messages.into_iter().for_each(&mut *send);
            if ack_before_durable {
                // The planted bug: the writes happen a step later, after
                // the acknowledgements have left.
                self.deferred.push((
                    pending.snapshot.as_ref().map(|(s, _)| s.clone()),
                    pending.entries.clone(),
                    pending.hard_state.clone(),
                ));
            } else {
                voter::persist(&mut self.files, &pending)
                    .await
                    .map_err(|e| Stopped(format!("metadata log write failed: {e}")))?;
            }
            let finished = self
                .core
                .finish(pending)
                .map_err(|e| Stopped(e.to_string()))?;
            finished.messages.iter().cloned().for_each(&mut *send);
            self.committed = self.committed.max(self.core.committed());
            done.push(finished);
            if let Some((snapshot, kept)) = self
                .core
                .compaction(self.files.frames())
                .map_err(|e| Stopped(e.to_string()))?
            {
                self.files
                    .save_snapshot(&snapshot, &kept)
                    .await
                    .map_err(|e| Stopped(format!("metadata snapshot failed: {e}")))?;
                self.core
                    .compacted(snapshot)
                    .map_err(|e| Stopped(e.to_string()))?;
            }
        }
        if !self.core.is_leader() {
            // As `Quorum::feed_raft`: callers waiting on a node that lost
            // leadership retry at the new leader.
            self.waiting.clear();
            self.busy.clear();
            self.fencing = None;
        }
        Ok(done)
    }

    /// Writes what a ready asked for (`voter::persist`, for the writes the
    /// planted bug put off).
    async fn write(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[raft::prelude::Entry],
        hard_state: Option<&raft::prelude::HardState>,
    ) -> Result<(), Stopped> {
        let failed = |e: std::io::Error| Stopped(format!("metadata log write failed: {e}"));
        if let Some(snapshot) = snapshot {
            self.files
                .save_snapshot(snapshot, &[])
                .await
                .map_err(failed)?;
        }
        self.files.append(entries).await.map_err(failed)?;
        if let Some(hs) = hard_state {
            self.files.save_hard_state(hs).await.map_err(failed)?;
        }
        Ok(())
    }

    /// What follows the applied proposal `id`, if this voter waited for it.
    pub fn applied(&mut self, id: u64) -> Option<Then> {
        self.waiting.remove(&id)
    }

    /// `Quorum::heartbeat` for a running broker: registers a new process,
    /// unfences a fenced broker. False when this voter does not lead.
    pub fn heartbeat(&mut self, now: Duration, broker: i32, record: MetadataRecord) -> bool {
        if !self.core.is_leader() {
            return false;
        }
        self.seen.insert(broker, now);
        let image = self.core.image();
        let known = image.brokers.get(&broker);
        let same_process = match (&record, known) {
            (MetadataRecord::RegisterBroker { broker: b, .. }, Some(k)) => {
                k.incarnation == b.incarnation
            }
            _ => false,
        };
        if self.busy.contains(&broker) {
            return true;
        }
        if !same_process {
            if self.propose(&record, Then::ElectLeaderless { broker }) {
                self.busy.insert(broker);
            }
        } else if known.is_some_and(|k| k.fenced)
            && self.propose(
                &MetadataRecord::UnfenceBroker { id: broker },
                Then::ElectLeaderless { broker },
            )
        {
            self.busy.insert(broker);
        }
        true
    }

    /// `Quorum::check_sessions` without the connection probe: fences the
    /// brokers silent for `session_timeout`.
    pub fn check_sessions(&mut self, now: Duration, session_timeout: Duration) {
        let leader = self.core.is_leader();
        if leader && !self.was_leader {
            for id in self.core.image().brokers.keys() {
                self.seen.insert(*id, now);
            }
        }
        self.was_leader = leader;
        if !leader {
            return;
        }
        let silent: Vec<i32> = self
            .core
            .image()
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, _)| *id)
            .filter(|id| {
                self.seen
                    .get(id)
                    .is_none_or(|t| now.saturating_sub(*t) > session_timeout)
            })
            .collect();
        // One fence at a time, each with its elections, as the real
        // check awaits each `fence` in turn.
        if self.fencing.is_some() {
            return;
        }
        for id in silent {
            if self.busy.contains(&id) {
                continue;
            }
            let fence = MetadataRecord::FenceBroker {
                id,
                controlled_shutdown: false,
            };
            if self.propose(&fence, Then::MoveAwayFrom { broker: id }) {
                self.busy.insert(id);
                self.fencing = Some(id);
                return;
            }
        }
    }

    /// `Quorum::elect_leaderless`'s elections, attempt `attempt`.
    fn elect_leaderless(&mut self, attempt: u32) {
        let changes = elections(&self.core.image(), false, |set| set.leader == -1);
        if !changes.is_empty() {
            self.propose(
                &MetadataRecord::Partitions(changes),
                Then::Leaderless { attempt },
            );
        }
    }

    /// `Quorum::fence`'s elections, attempt `attempt`; false when there was
    /// nothing to elect or the proposal was not taken.
    fn move_away_from(&mut self, broker: i32, attempt: u32) -> bool {
        let changes = elections(&self.core.image(), false, |set| {
            set.leader == broker || set.isr.contains(&broker)
        });
        !changes.is_empty()
            && self.propose(
                &MetadataRecord::Partitions(changes),
                Then::Fenced { broker, attempt },
            )
    }

    /// Runs what follows an applied proposal; returns the ISR outcome to
    /// tell a broker, if that is what followed.
    pub fn follow_up(
        &mut self,
        then: Then,
        result: &Result<u64, Rejected>,
    ) -> Option<(i32, i32, IsrChange, bool)> {
        match then {
            Then::ElectLeaderless { broker } => {
                self.busy.remove(&broker);
                self.elect_leaderless(1);
                None
            }
            Then::Leaderless { attempt } => {
                if conflicted(result) && attempt < ELECTION_ATTEMPTS {
                    self.elect_leaderless(attempt + 1);
                }
                None
            }
            Then::MoveAwayFrom { broker } => {
                self.busy.remove(&broker);
                if !self.move_away_from(broker, 1) {
                    self.fencing = None;
                }
                None
            }
            Then::Fenced { broker, attempt } => {
                let again = conflicted(result)
                    && attempt < ELECTION_ATTEMPTS
                    && self.move_away_from(broker, attempt + 1);
                if !again && self.fencing == Some(broker) {
                    self.fencing = None;
                }
                None
            }
            Then::IsrDone {
                broker,
                partition,
                change,
            } => Some((broker, partition, change, result.is_ok())),
        }
    }
}

/// `Quorum::propose_elections`: a change refused because another took the
/// partition epoch first.
fn conflicted(result: &Result<u64, Rejected>) -> bool {
    matches!(result, Err(Rejected::Conflict(_)))
}

/// A digest of an image, to compare voters' images at one index.
pub fn image_digest(image: &Catalog) -> u32 {
    crc32c::crc32c(&serde_json::to_vec(image).expect("images serialize"))
}

/// The simulation's side of this module: the voters' duties and messages.
impl super::Sim {
    /// One step of the voter on node `i`, if it runs one: Raft's tick, the
    /// active controller's session check, Raft's readies, and what the
    /// applied entries complete.
    pub(super) async fn voter_duties(&mut self, i: usize) {
        let (id, now) = (self.nodes[i].id, self.now);
        let bug = self.bug == Some(PlantedBug::AckBeforeDurable);
        let Some(voter) = self.nodes[i]
            .process
            .as_mut()
            .and_then(|p| p.voter.as_mut())
        else {
            return;
        };
        voter.tick(now);
        voter.check_sessions(now, SESSION_TIMEOUT);
        let mut out = Vec::new();
        let driven = voter.drive(bug, &mut |m| out.push(m)).await;
        for message in out {
            self.send(id, node_id(message.to), Message::Raft(Box::new(message)));
        }
        match driven {
            Err(voters::Stopped(why)) => {
                // The real quorum shuts its process down; an operator
                // starts it again.
                self.trace(|| format!("voter {id} stops: {why}"));
                self.crash(i, None, Duration::from_millis(100));
            }
            Ok(done) => {
                for finished in done {
                    self.voter_finished(i, finished);
                }
            }
        }
    }

    /// Checks what voter `i` applied against what the others applied, and
    /// runs what follows its own applied proposals.
    pub(super) fn voter_finished(
        &mut self,
        i: usize,
        finished: crate::cluster::quorum::voter::Finished,
    ) {
        let id = self.nodes[i].id;
        for entry in &finished.committed {
            let this = (entry.term, crc32c::crc32c(&entry.data));
            let first = *self.committed_entries.entry(entry.index).or_insert(this);
            if first != this && self.voter_violation.is_none() {
                self.voter_violation = Some(format!(
                    "controller entry {} committed as (term, crc) {first:?} and on voter {id} as {this:?}",
                    entry.index
                ));
            }
        }
        if let Some(image) = &finished.image {
            let digest = voters::image_digest(image);
            let first = *self.images_at.entry(image.version).or_insert(digest);
            if first != digest && self.voter_violation.is_none() {
                self.voter_violation = Some(format!(
                    "voter {id}'s image at index {} differs from another voter's",
                    image.version
                ));
            }
            if image.version > self.latest.version {
                self.latest = image.clone();
            }
        }
        for (proposal, result) in finished.applied {
            let voter = process_of(&mut self.nodes[i])
                .voter
                .as_mut()
                .expect("a voter");
            let Some(then) = voter.applied(proposal) else {
                continue;
            };
            let what = format!("voter {id}: applied {then:?}: {result:?}");
            let outcome = voter.follow_up(then, &result);
            self.trace(|| what);
            if let Some((broker, partition, change, applied)) = outcome {
                let done = Message::AlterIsrDone {
                    partition,
                    change,
                    applied,
                };
                self.send(id, broker, done);
            }
        }
    }

    /// Sends running voters' images to brokers that have an older one (in
    /// the cluster, brokers fetch it from a controller).
    pub(super) fn publish(&mut self) {
        if self.checker.image_changed(&self.latest) {
            self.stats.leader_changes += 1;
        }
        for v in 0..self.nodes.len() {
            let image = match self.nodes[v]
                .process
                .as_ref()
                .and_then(|p| p.voter.as_ref())
            {
                Some(voter) => voter.core.image(),
                None => continue,
            };
            for i in 0..self.nodes.len() {
                let (id, behind) = match &self.nodes[i].process {
                    Some(p) => (self.nodes[i].id, p.image_version < image.version),
                    None => continue,
                };
                if behind && self.rng.chance(34_000) {
                    self.send(self.nodes[v].id, id, Message::Image(image.clone()));
                }
            }
        }
    }

    /// A message to the voter on node `i` (none: the broker is not a
    /// voter and ignores it, as a broker without a controller listener).
    pub(super) fn voter_receive(&mut self, i: usize, from: NodeId, message: Message) {
        let (id, now) = (self.nodes[i].id, self.now);
        let Some(voter) = process_of(&mut self.nodes[i]).voter.as_mut() else {
            return;
        };
        let reply = match message {
            Message::Raft(message) => {
                // raft-rs asserts its own invariants by panicking (a commit
                // index past this voter's log: what it acknowledged is not
                // there); the simulation reports that as a violation.
                let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    voter.core.step(*message)
                }));
                if let Err(panic) = step {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    self.voter_violation.get_or_insert(format!(
                        "voter {id}: raft-rs refused a message from voter {from}: {what}"
                    ));
                }
                return;
            }
            Message::Heartbeat {
                incarnation,
                image_version,
            } => {
                let record = MetadataRecord::RegisterBroker {
                    id: from,
                    broker: BrokerRecord {
                        host: "sim".into(),
                        port: from as u16,
                        incarnation: Uuid::from_u64_pair(incarnation, 0),
                        fenced: false,
                        in_controlled_shutdown: false,
                        directory_id: None,
                        max_metadata_version: crate::features::METADATA_VERSION_MAX,
                        endpoints: Vec::new(),
                    },
                };
                if voter.heartbeat(now, from, record) {
                    let image = voter.core.image();
                    Message::HeartbeatAck((image_version < image.version).then_some(image))
                } else {
                    Message::NotController {
                        leader: voter.core.leader(),
                    }
                }
            }
            Message::AlterIsr {
                partition,
                change,
                incarnation,
            } => {
                let image = voter.core.image();
                // `server::catalog::alter_isr`, then the controller's check
                // of the partition epoch.
                let set = &image.topics[TOPIC].replicas[partition as usize];
                if !voter.core.is_leader() {
                    Message::NotController {
                        leader: voter.core.leader(),
                    }
                } else if set.leader == from
                    && set.leader_epoch == change.leader_epoch
                    && set.partition_epoch == change.partition_epoch
                {
                    let record = MetadataRecord::Partitions(vec![PartitionChange {
                        topic: TOPIC.to_string(),
                        topic_id: TOPIC_ID,
                        partition: partition as usize,
                        set: ReplicaSet {
                            isr: change.isr.clone(),
                            ..set.clone()
                        },
                        expect_partition_epoch: Some(change.partition_epoch),
                        proposer: Some(Proposer {
                            broker: from,
                            incarnation: Uuid::from_u64_pair(incarnation, 0),
                        }),
                    }]);
                    let then = Then::IsrDone {
                        broker: from,
                        partition,
                        change,
                    };
                    if voter.propose(&record, then) {
                        return;
                    }
                    Message::NotController {
                        leader: voter.core.leader(),
                    }
                } else {
                    Message::AlterIsrDone {
                        partition,
                        change,
                        applied: false,
                    }
                }
            }
            _ => unreachable!("voters get Raft messages, heartbeats and ISR changes"),
        };
        self.send(id, from, reply);
    }
}
