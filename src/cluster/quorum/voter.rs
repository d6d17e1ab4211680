//! The controller quorum without sockets, timers or files: a raft-rs
//! `RawNode` over the in-memory [`RaftStore`], the metadata image its
//! committed entries build, and the order in which one Raft ready is
//! handled. The glommio `Quorum` (TCP peers, a tick timer, `DmaDisk`) and
//! the simulation (its `Net`, simulated time, `MemDisk`) both drive it.
//!
//! It does no I/O itself; the driver persists what a ready asks for through
//! the disk seam ([`persist`]) between [`QuorumCore::begin`] and
//! [`QuorumCore::finish`]. The types keep the ordering: the messages that may
//! leave before the write come out of `begin`, those that must wait until
//! the entries and hard state are durable (votes, acknowledgements) only out
//! of `finish`, which takes the [`PendingReady`] that only `begin` makes.
//! raft-rs must not be ticked, stepped or proposed to between the two; a
//! driver that can receive input meanwhile buffers it (as `Quorum` does).

use std::rc::Rc;

use raft::prelude::{Entry, EntryType, HardState, Message, Ready, Snapshot};
use raft::{RawNode, StateRole, Storage};

use super::super::records::{self, Rejected};
use super::super::store::{Loaded, RaftFiles, RaftStore};
use super::QuorumError;
use crate::io::Disk;
use crate::limits;
use crate::metadata::Catalog;

/// Raft ids cannot be 0, Kafka node ids can: Raft id = node id + 1.
pub fn raft_id(node: i32) -> u64 {
    node as u64 + 1
}

pub fn node_id(raft: u64) -> i32 {
    raft as i32 - 1
}

/// How many ticks a follower waits for its leader before it stands: a
/// timeout drawn from `min..max` at each election (raft-rs draws it).
#[derive(Clone, Copy, Debug)]
pub struct ElectionTicks {
    pub min: usize,
    pub max: usize,
}

impl ElectionTicks {
    /// raft-rs' default: from `ticks` (at least 3) to twice as many, at
    /// random.
    pub fn randomized(ticks: usize) -> ElectionTicks {
        ElectionTicks {
            min: ticks.max(3),
            max: 2 * ticks.max(3),
        }
    }

    /// Always `ticks`: raft-rs draws from its own random generator, which
    /// no seed controls, so a deterministic simulation gives each voter a
    /// fixed (and different) timeout instead.
    pub fn fixed(ticks: usize) -> ElectionTicks {
        ElectionTicks {
            min: ticks,
            max: ticks + 1,
        }
    }
}

/// One voter's part of the quorum, as raft-rs sees it.
pub struct QuorumCore {
    node_id: i32,
    raft: RawNode<RaftStore>,
    store: RaftStore,
    image: Rc<Catalog>,
}

/// A ready taken from raft-rs whose writes the driver must make durable
/// (in this order: `snapshot`, `entries`, `hard_state`) before
/// [`QuorumCore::finish`].
pub struct PendingReady {
    ready: Ready,
    /// A snapshot received from the leader, with the image it holds.
    pub snapshot: Option<(Snapshot, Catalog)>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// What handling one ready produced.
#[derive(Default)]
pub struct Finished {
    /// To send now that the ready's writes are durable.
    pub messages: Vec<Message>,
    /// This node's proposals that were applied: (proposal id, the entry's
    /// index or why the record changed nothing).
    pub applied: Vec<(u64, Result<u64, Rejected>)>,
    /// The committed entries applied, in order.
    pub committed: Vec<Entry>,
    /// The new image, when a snapshot or a committed entry changed it.
    pub image: Option<Rc<Catalog>>,
}

impl QuorumCore {
    /// A voter over what its files held (`loaded`).
    pub fn new(
        node_id: i32,
        voters: &[i32],
        election: ElectionTicks,
        loaded: Loaded,
        logger: &slog::Logger,
    ) -> Result<QuorumCore, QuorumError> {
        let voters: Vec<u64> = voters.iter().map(|id| raft_id(*id)).collect();
        let store = RaftStore::new(voters, loaded)?;
        let snapshot = store.snapshot(0, 0)?;
        let image = if snapshot.data.is_empty() {
            Catalog::new("")
        } else {
            records::decode_image(&snapshot.data).map_err(QuorumError::DamagedSnapshot)?
        };
        let election_tick = election.min.max(3);
        let config = raft::Config {
            id: raft_id(node_id),
            election_tick,
            min_election_tick: election_tick,
            max_election_tick: election.max.max(election_tick + 1),
            heartbeat_tick: (election_tick / 5).max(1),
            // Entries up to the snapshot are in the image already.
            applied: snapshot.get_metadata().index,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config.validate()?;
        let raft = RawNode::new(&config, store.clone(), logger)?;
        Ok(QuorumCore {
            node_id,
            raft,
            store,
            image: Rc::new(image),
        })
    }

    pub fn raft(&self) -> &RawNode<RaftStore> {
        &self.raft
    }

    pub fn image(&self) -> Rc<Catalog> {
        self.image.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.raft.state == StateRole::Leader
    }

    pub fn leader(&self) -> Option<i32> {
        match self.raft.raft.leader_id {
            0 => None,
            id => Some(node_id(id)),
        }
    }

    /// The highest index this node knows committed.
    pub fn committed(&self) -> u64 {
        self.raft.raft.raft_log.committed
    }

    pub fn tick(&mut self) {
        self.raft.tick();
    }

    pub fn step(&mut self, message: Message) -> raft::Result<()> {
        self.raft.step(message)
    }

    /// Hands `record` (encoded) to Raft, tagged with this node and `id` so
    /// its apply can be told to the proposer.
    pub fn propose(&mut self, id: u64, record: Vec<u8>) -> raft::Result<()> {
        let mut context = self.node_id.to_be_bytes().to_vec();
        context.extend_from_slice(&id.to_be_bytes());
        self.raft.propose(context, record)
    }

    pub fn has_ready(&self) -> bool {
        self.raft.has_ready()
    }

    /// Takes raft-rs' ready, if any: the messages that may leave at once,
    /// and the writes to make durable before [`finish`](Self::finish).
    pub fn begin(&mut self) -> Result<Option<(Vec<Message>, PendingReady)>, QuorumError> {
        if !self.raft.has_ready() {
            return Ok(None);
        }
        let mut ready = self.raft.ready();
        let messages = ready.take_messages();
        let snapshot = if ready.snapshot().is_empty() {
            None
        } else {
            let snapshot = ready.snapshot().clone();
            let image =
                records::decode_image(&snapshot.data).map_err(QuorumError::ReceivedSnapshot)?;
            Some((snapshot, image))
        };
        let pending = PendingReady {
            entries: ready.take_entries(),
            hard_state: ready.hs().cloned(),
            snapshot,
            ready,
        };
        Ok(Some((messages, pending)))
    }

    /// Completes a ready whose writes are durable: Raft's memory catches up
    /// with the files, committed entries are applied, and the messages that
    /// waited for the writes are handed back.
    pub fn finish(&mut self, mut pending: PendingReady) -> Result<Finished, QuorumError> {
        let mut finished = Finished::default();
        let mut image = None;
        if let Some((snapshot, received)) = pending.snapshot.take() {
            self.store.mem.wl().apply_snapshot(snapshot.clone())?;
            self.store.set_snapshot(snapshot);
            image = Some(received);
        }
        self.apply(
            pending.ready.take_committed_entries(),
            &mut image,
            &mut finished,
        );
        {
            let mut core = self.store.mem.wl();
            core.append(&pending.entries)?;
            if let Some(hs) = pending.hard_state.take() {
                core.set_hardstate(hs);
            }
        }
        finished.messages = pending.ready.take_persisted_messages();
        let mut light = self.raft.advance(pending.ready);
        if let Some(commit) = light.commit_index() {
            self.store.mem.wl().mut_hard_state().commit = commit;
        }
        finished.messages.extend(light.take_messages());
        self.apply(light.take_committed_entries(), &mut image, &mut finished);
        self.raft.advance_apply();
        if let Some(image) = image {
            let image = Rc::new(image);
            self.image = image.clone();
            finished.image = Some(image);
        }
        Ok(finished)
    }

    /// Applies committed entries to `image` (a copy of the current one made
    /// at the first entry), noting the results of this node's proposals.
    fn apply(&self, entries: Vec<Entry>, image: &mut Option<Catalog>, out: &mut Finished) {
        for entry in entries {
            let image = image.get_or_insert_with(|| (*self.image).clone());
            let result = if entry.get_entry_type() != EntryType::EntryNormal
                || entry.data.is_empty()
            {
                image.version = entry.index;
                Ok(())
            } else {
                match records::decode_record(&entry.data) {
                    Ok(record) => records::apply(image, &record, entry.index),
                    Err(e) => {
                        // Written by a newer version, or damaged: every
                        // controller skips it alike, so the images stay equal.
                        log::error!("controller: skipping metadata record {}: {e}", entry.index);
                        image.version = entry.index;
                        Err(Rejected::Invalid(e.to_string()))
                    }
                }
            };
            if entry.context.len() == 12 {
                let node = i32::from_be_bytes(entry.context[..4].try_into().unwrap());
                let id = u64::from_be_bytes(entry.context[4..].try_into().unwrap());
                if node == self.node_id {
                    out.applied.push((id, result.map(|()| entry.index)));
                }
            }
            out.committed.push(entry);
        }
    }

    /// A snapshot of the image and the entries after it, once the log holds
    /// `frames` of at least the bound and the image is of everything
    /// applied; the driver saves it ([`RaftFiles::save_snapshot`]) and then
    /// calls [`compacted`](Self::compacted).
    pub fn compaction(&self, frames: usize) -> Result<Option<(Snapshot, Vec<Entry>)>, QuorumError> {
        if frames < limits::CONTROLLER_LOG_ENTRIES_MAX {
            return Ok(None);
        }
        let applied = self.raft.raft.raft_log.applied;
        if self.image.version != applied || applied == 0 {
            return Ok(None);
        }
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = applied;
        snapshot.mut_metadata().term = self.store.term(applied)?;
        snapshot
            .mut_metadata()
            .set_conf_state(self.raft.raft.prs().conf().to_conf_state());
        snapshot.data = serde_json::to_vec(&*self.image).map_err(QuorumError::EncodeImage)?;
        let last = self.store.last_index()?;
        let kept = if last > applied {
            self.store.entries(
                applied + 1,
                last + 1,
                None,
                raft::GetEntriesContext::empty(false),
            )?
        } else {
            Vec::new()
        };
        Ok(Some((snapshot, kept)))
    }

    /// Trims Raft's memory once `snapshot` is saved.
    pub fn compacted(&mut self, snapshot: Snapshot) -> Result<(), QuorumError> {
        let index = snapshot.get_metadata().index;
        self.store.set_snapshot(snapshot);
        self.store.mem.wl().compact(index)?;
        log::info!("controller: metadata log compacted up to {index}");
        Ok(())
    }
}

/// Makes a ready's writes durable, in the order a crash between them
/// tolerates: a received snapshot first, then the entries, then the hard
/// state (whose commit index never points past entries on disk).
pub async fn persist<D: Disk>(
    files: &mut RaftFiles<D>,
    pending: &PendingReady,
) -> std::io::Result<()> {
    if let Some((snapshot, _)) = &pending.snapshot {
        files.save_snapshot(snapshot, &[]).await?;
    }
    files.append(&pending.entries).await?;
    if let Some(hs) = &pending.hard_state {
        files.save_hard_state(hs).await?;
    }
    Ok(())
}
