//! Replication of one partition, Kafka's pull model. The catalog says who
//! leads, at which leader epoch, and which replicas are in sync (ISR).
//!
//! - The leader stamps produced batches with its epoch, serves followers'
//!   fetches (their fetch offset is their durable log end), and moves the
//!   high watermark to the smallest durable end over the ISR. acks=all
//!   answers once the high watermark passes the batch; consumers read up to
//!   it. A follower that stops catching up for `replica.lag.time.max.ms`
//!   is proposed out of the ISR; one that catches up is proposed back in.
//! - A follower appends the leader's batches as they are (offsets, epochs,
//!   timestamps), keeps the idempotent-producer state too (so a new leader
//!   still deduplicates retries), and before fetching in a new epoch cuts
//!   the tail the leader does not have (OffsetForLeaderEpoch, the
//!   leader-epoch cache in `epochs`).
//!
//! On a single node (no replica sets in the catalog) the partition is its
//! own leader with itself as the whole ISR, and nothing is stamped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::epochs::LeaderEpochs;
use super::{storage_error, Fetched, Partition, PartitionError, ReadLimit, State};
use crate::clock;
use crate::io::Disk;
use crate::protocol::batch::{BatchHeader, BatchIter, IterStop};
use crate::protocol::records;

/// This broker's view of the partition's replica set (from the catalog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaState {
    /// This broker's id.
    pub me: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// False on a single node: no replica sets, nothing stamped.
    pub replicated: bool,
}

impl ReplicaState {
    pub fn single() -> ReplicaState {
        ReplicaState {
            me: -1,
            leader: -1,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: Vec::new(),
            isr: Vec::new(),
            replicated: false,
        }
    }

    /// A replica in a cluster that has no role yet: just opened, or its
    /// broker has not seen an image since it registered (a restarted
    /// broker's stored image may be stale: leading from it could count an
    /// ISR its previous process changed). It leads nothing and follows
    /// nobody until the controller's image gives it a role.
    pub fn unassigned(me: i32) -> ReplicaState {
        ReplicaState {
            me,
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            replicated: true,
        }
    }

    /// Broker `me`'s part in a partition whose replica set the controller
    /// gave as `set`.
    pub fn in_set(me: i32, set: &crate::metadata::ReplicaSet) -> ReplicaState {
        ReplicaState {
            me,
            leader: set.leader,
            leader_epoch: set.leader_epoch,
            partition_epoch: set.partition_epoch,
            replicas: set.replicas.clone(),
            isr: set.isr.clone(),
            replicated: true,
        }
    }

    pub fn is_leader(&self) -> bool {
        !self.replicated || self.leader == self.me
    }

    /// Another broker leads and this one copies from it.
    pub fn followed_leader(&self) -> Option<i32> {
        (self.replicated && self.leader != self.me && self.leader >= 0).then_some(self.leader)
    }
}

/// What the leader knows of one follower.
#[derive(Clone, Copy, Debug)]
pub struct FollowerProgress {
    /// The follower's durable log end (its last fetch offset); -1 unknown.
    pub log_end: i64,
    /// The leader's flushed end when this follower last fetched.
    leader_end_at_last_fetch: i64,
    last_fetch: Instant,
    /// The last time the follower had everything the leader had.
    pub last_caught_up: Instant,
}

pub type Followers = BTreeMap<i32, FollowerProgress>;

/// An ISR change the leader wants the controller to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// Moves the leader's high watermark to the smallest durable end over the
/// ISR (followers that have not fetched in this epoch hold it where it is)
/// and answers the acks=all produces it passes. A follower takes the
/// leader's, capped at its own durable end. Never moves back.
pub(super) fn advance_high_watermark<D: Disk>(state: &mut State<D>) {
    let flushed = state.log.flushed_offset();
    let mut hw = flushed;
    if state.replica.followed_leader().is_some() {
        hw = hw.min(state.leader_high_watermark);
    } else if state.replica.replicated {
        if !state.replica.is_leader() {
            // No role (unassigned, or a partition without a leader):
            // nothing to go by but its own log, which may hold a tail
            // the ISR never had (found by the simulation, seed 4623).
            return;
        }
        let proposed = state
            .isr_proposed
            .as_ref()
            .filter(|c| c.partition_epoch == state.replica.partition_epoch)
            .map_or(&[][..], |c| &c.isr[..]);
        for id in state
            .replica
            .isr
            .iter()
            .chain(proposed)
            .filter(|id| **id != state.replica.me)
        {
            let end = state.followers.get(id).map_or(-1, |f| f.log_end);
            hw = hw.min(if end < 0 { state.high_watermark } else { end });
        }
    }
    if hw <= state.high_watermark {
        return;
    }
    state.high_watermark = hw;
    let isr = state.replica.isr.len();
    let min = state.config.min_insync_replicas;
    let short = state.replica.replicated && (isr as i32) < min;
    while state
        .replica_waiters
        .front()
        .is_some_and(|w| w.last_offset < hw)
    {
        let waiter = state.replica_waiters.pop_front().expect("front exists");
        let answer = if short {
            Err(PartitionError::NotEnoughReplicasAfterAppend { isr, min })
        } else {
            Ok(())
        };
        let _ = waiter.done.send(answer);
    }
    for waiter in state.data_waiters.drain(..) {
        let _ = waiter.send(());
    }
}

fn check_epoch<D: Disk>(state: &State<D>, requested: i32) -> Result<(), PartitionError> {
    let current = state.replica.leader_epoch;
    if requested < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(PartitionError::FencedLeaderEpoch { requested, current })
    } else {
        Err(PartitionError::UnknownLeaderEpoch { requested, current })
    }
}

/// A follower's log against its leader's epoch history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// This log is a prefix of the leader's.
    None,
    /// The records from this offset on are not the leader's.
    CutFrom(i64),
    /// The leader has no epoch this old: start over from it.
    StartOver,
}

/// What a follower's fetch got, plus an ISR change the leader now wants.
pub struct ReplicaRead {
    pub fetched: Fetched,
    pub isr_change: Option<IsrChange>,
}

impl<D: Disk> Partition<D> {
    pub fn replica_state(&self) -> ReplicaState {
        self.state.borrow().replica.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.state.borrow().replica.is_leader()
    }

    /// Applies the catalog's replica set for this partition. Becoming
    /// leader starts an epoch in the epoch cache (written before any
    /// produce is taken); leaving leadership fails the produces waiting
    /// here (their clients retry on the new leader). Returns the epoch
    /// checkpoint to write, if it changed.
    pub fn set_replica_state(&self, next: ReplicaState) -> Option<String> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        if state.replica == next {
            return None;
        }
        if next.replicated && !state.replica.replicated {
            // The high watermark set at open is the durable end, right for
            // a single node; a replica's log may hold batches past what
            // its ISR ever had (a leader's own tail, a follower's copy of
            // an uncommitted one), so it is not trusted: the leader
            // re-establishes it from its followers' fetches, a follower
            // from its leader's answers. Consumers wait meanwhile (a fetch
            // past the high watermark is empty, as in Kafka).
            // A follower may join the ISR only with everything the ISR
            // might have committed: at least this durable end (found by the
            // simulation, seed 1855: a far-behind follower joined a restarted
            // leader's ISR and was then elected).
            state.isr_join_floor = state.high_watermark;
            let start = state.log.start_offset();
            state.high_watermark = start;
            state.leader_high_watermark = start;
        }
        let was_leading = state.replica.is_leader();
        let new_epoch =
            next.leader_epoch != state.replica.leader_epoch || next.leader != state.replica.leader;
        let mut checkpoint = None;
        if next.replicated && next.leader == next.me && (new_epoch || !was_leading) {
            let end = state.log.end_offset();
            if state.epochs.assign(next.leader_epoch, end) {
                checkpoint = Some(state.epochs.to_text());
            }
            let now = clock::now();
            // Every follower gets a full lag window in the new epoch.
            state.followers = next
                .replicas
                .iter()
                .filter(|r| **r != next.me)
                .map(|r| {
                    (
                        *r,
                        FollowerProgress {
                            log_end: -1,
                            leader_end_at_last_fetch: end,
                            last_fetch: now,
                            last_caught_up: now,
                        },
                    )
                })
                .collect();
        }
        if !next.is_leader() {
            state.followers.clear();
            state.leader_high_watermark = state.high_watermark;
            for waiter in state
                .commit_waiters
                .drain(..)
                .chain(state.replica_waiters.drain(..))
            {
                let _ = waiter.done.send(Err(PartitionError::NotLeader));
            }
            for waiter in state.data_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
        state
            .followers
            .retain(|id, _| next.replicas.contains(id) && *id != next.me);
        if next.partition_epoch != state.replica.partition_epoch || !next.is_leader() {
            // Answered (the new ISR is here) or moot.
            state.isr_proposed = None;
        }
        state.replica = next;
        advance_high_watermark(state);
        checkpoint
    }

    /// Writes the leader-epoch checkpoint. A failure takes the log offline
    /// for appends (as Kafka takes the log directory offline): batches of
    /// an epoch the checkpoint does not hold would, after a restart, be
    /// answered for as another epoch's, and a follower would keep a
    /// divergent tail below the high watermark (found by the simulation,
    /// seed 284).
    pub async fn write_epochs(&self, text: String) -> Result<(), PartitionError> {
        let written = LeaderEpochs::write(&self.disk, &self.dir, &text).await;
        written.map_err(|e| {
            self.state.borrow_mut().log.mark_failed();
            PartitionError::Storage(format!(
                "leader-epoch-checkpoint not written, log offline: {e}"
            ))
        })
    }

    /// A follower's fetch, on the leader: records the follower's durable end
    /// (its fetch offset), moves the high watermark, and reads flushed
    /// batches from `offset`. A caught-up follower outside the ISR is
    /// proposed for it only when it `may_join_isr`: not while its broker is
    /// fenced or in controlled shutdown (Kafka's ineligible replicas,
    /// KIP-841), since a proposed member holds the high watermark and a
    /// stopping broker would hold it until it came back.
    pub async fn read_for_replica(
        &self,
        replica: i32,
        offset: i64,
        read_limit: ReadLimit,
        current_leader_epoch: i32,
        may_join_isr: bool,
    ) -> Result<ReplicaRead, PartitionError> {
        let (job, isr_change) = {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            if !state.replica.replicated || state.replica.leader != state.replica.me {
                return Err(PartitionError::NotLeader);
            }
            check_epoch(state, current_leader_epoch)?;
            if !state.replica.replicas.contains(&replica) || replica == state.replica.me {
                return Err(PartitionError::NotLeader);
            }
            let flushed = state.log.flushed_offset();
            let start = state.log.start_offset();
            if offset > flushed || offset < start {
                return Err(PartitionError::OffsetOutOfRange {
                    requested: offset,
                    start,
                    end: flushed,
                });
            }
            let now = clock::now();
            let progress = state.followers.entry(replica).or_insert(FollowerProgress {
                log_end: -1,
                leader_end_at_last_fetch: flushed,
                last_fetch: now,
                last_caught_up: now,
            });
            // Kafka's rule: caught up now if it has everything; caught up
            // as of its previous fetch if it has what the leader had then.
            if offset >= flushed {
                progress.last_caught_up = now;
            } else if offset >= progress.leader_end_at_last_fetch {
                progress.last_caught_up = progress.last_fetch;
            }
            progress.leader_end_at_last_fetch = flushed;
            progress.last_fetch = now;
            progress.log_end = offset;
            advance_high_watermark(state);
            let epoch_start = state.epochs.entries().last().map_or(0, |&(_, start)| start);
            let isr_change = (may_join_isr
                && !state.replica.isr.contains(&replica)
                && offset >= state.high_watermark.max(state.isr_join_floor)
                && offset >= epoch_start)
                .then(|| {
                    // On top of an expansion still unanswered in this
                    // partition epoch: replacing it would drop its follower
                    // from the maximal ISR while the controller may have
                    // taken it, and the high watermark could pass that
                    // follower (found by the simulation, seed 5333).
                    let pending = state
                        .isr_proposed
                        .as_ref()
                        .filter(|c| c.partition_epoch == state.replica.partition_epoch)
                        .map_or(&[][..], |c| &c.isr[..]);
                    let mut isr = state.replica.isr.clone();
                    for id in pending.iter().chain([&replica]) {
                        if !isr.contains(id) {
                            isr.push(*id);
                        }
                    }
                    IsrChange {
                        isr,
                        leader_epoch: state.replica.leader_epoch,
                        partition_epoch: state.replica.partition_epoch,
                    }
                });
            if let Some(change) = &isr_change {
                state.isr_proposed = Some(change.clone());
            }
            // The follower's progress above counts even when the fetch
            // response has no room for its records.
            let job = if offset < flushed {
                read_limit
                    .plan(&state.log, offset, flushed)
                    .map_err(|e| storage_error(&e))?
            } else {
                None
            };
            (job, isr_change)
        };
        let records = match job {
            Some(job) => job.run().await.map_err(|e| storage_error(&e))?,
            None => bytes::Bytes::new(),
        };
        let state = self.state.borrow();
        Ok(ReplicaRead {
            fetched: Fetched {
                records,
                high_watermark: state.high_watermark,
                log_start_offset: state.log.start_offset(),
            },
            isr_change,
        })
    }

    /// On the leader of a replicated partition: each follower's lag behind
    /// it, in records (its log end offset minus the follower's last fetch
    /// offset; from the log start when the follower has not fetched in
    /// this epoch) and in time since it last had everything, as of its
    /// fetches (what `isr_shrink_wanted` goes by). Empty elsewhere.
    pub fn follower_lags(&self) -> Vec<(i32, i64, Duration)> {
        let state = self.state.borrow();
        if !state.replica.replicated || state.replica.leader != state.replica.me {
            return Vec::new();
        }
        let (start, end) = (state.log.start_offset(), state.log.end_offset());
        let lag_of = |(id, f): (&i32, &FollowerProgress)| {
            let fetched = if f.log_end < 0 { start } else { f.log_end };
            (*id, (end - fetched).max(0), clock::since(f.last_caught_up))
        };
        state.followers.iter().map(lag_of).collect()
    }

    /// On the leader: ISR members that have not caught up for `lag_max`
    /// (Kafka's replica.lag.time.max.ms) should leave the ISR.
    ///
    /// A follower whose ISR expansion is still unanswered counts too (the
    /// "maximal ISR"): the leader cannot know whether the controller took
    /// it, so the proposal stands until the next partition epoch arrives;
    /// when that follower stops catching up, the leader proposes the ISR
    /// without it, which either conflicts (the expansion was taken: the new
    /// epoch arrives and the next check shrinks normally) or is taken (it
    /// was not), and either way ends the wait on it.
    pub fn isr_shrink_wanted(&self, lag_max: Duration) -> Option<IsrChange> {
        let state = self.state.borrow();
        if !state.replica.replicated || state.replica.leader != state.replica.me {
            return None;
        }
        let me = state.replica.me;
        let caught_up = |id: &i32| {
            state
                .followers
                .get(id)
                .is_some_and(|f| clock::since(f.last_caught_up) <= lag_max)
        };
        let lagging = |id: &i32| *id != me && !caught_up(id);
        let proposed = state
            .isr_proposed
            .as_ref()
            .filter(|c| c.partition_epoch == state.replica.partition_epoch)
            .map_or(&[][..], |c| &c.isr[..]);
        if !state.replica.isr.iter().chain(proposed).any(lagging) {
            return None;
        }
        let isr: Vec<i32> = state
            .replica
            .isr
            .iter()
            .copied()
            .filter(|id| !lagging(id))
            .collect();
        Some(IsrChange {
            isr,
            leader_epoch: state.replica.leader_epoch,
            partition_epoch: state.replica.partition_epoch,
        })
    }

    /// OffsetForLeaderEpoch on the leader: the largest epoch <= `epoch` and
    /// where it ended here.
    pub fn end_offset_for_epoch(
        &self,
        current_leader_epoch: i32,
        epoch: i32,
    ) -> Result<(i32, i64), PartitionError> {
        let state = self.state.borrow();
        if !state.replica.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        check_epoch(&state, current_leader_epoch)?;
        if !state.replica.replicated {
            return Ok((state.replica.leader_epoch, state.log.end_offset()));
        }
        Ok(state.epochs.end_offset_for(epoch, state.log.end_offset()))
    }

    /// On a follower: its latest epoch and durable end, for the leader's
    /// OffsetForLeaderEpoch and the next fetch.
    pub fn follower_position(&self) -> (Option<i32>, i64) {
        let state = self.state.borrow();
        (state.epochs.latest_epoch(), state.log.end_offset())
    }

    /// The end of `epoch` in this log (a follower comparing with its leader).
    pub fn own_end_offset_for(&self, epoch: i32) -> (i32, i64) {
        let state = self.state.borrow();
        state.epochs.end_offset_for(epoch, state.log.end_offset())
    }

    /// What a follower must cut after the leader answered its
    /// OffsetForLeaderEpoch with (`leader_epoch`, `end_offset`) (Kafka's
    /// follower truncation, KIP-101 and KIP-279): nothing, its log past an
    /// offset, or all of it when the leader knows no epoch that old.
    pub fn divergence(&self, leader_epoch: i32, end_offset: i64) -> Divergence {
        let (_, own_end) = self.follower_position();
        if leader_epoch < 0 {
            return Divergence::StartOver;
        }
        let (own_epoch, own_epoch_end) = self.own_end_offset_for(leader_epoch);
        let cut = if own_epoch < 0 {
            // Every epoch this log holds is newer than the leader's answer:
            // everything from the first of them on is not the leader's
            // (an empty cache: nothing to go by but the leader's end).
            // Taking the unknown end (-1) made the cut fail, and the
            // follower asked again forever (found by the simulation, seed
            // 2103).
            let first_start = self.state.borrow().epochs.entries().first().map(|e| e.1);
            end_offset.min(own_end).min(first_start.unwrap_or(i64::MAX))
        } else {
            end_offset.min(own_epoch_end).min(own_end)
        };
        if cut >= own_end {
            Divergence::None
        } else {
            Divergence::CutFrom(cut)
        }
    }

    /// New epochs carried by fetched batches go into the epoch cache
    /// before the batches are appended; returns the checkpoint to write.
    pub fn note_epochs(&self, fetched: &FetchedBatches) -> Option<String> {
        let mut state = self.state.borrow_mut();
        let mut changed = false;
        for header in &fetched.headers {
            changed |= state
                .epochs
                .assign(header.partition_leader_epoch, header.base_offset);
        }
        changed.then(|| state.epochs.to_text())
    }

    /// Appends batches fetched from the leader (checked by
    /// [`FetchedBatches::check`]) as they are. Stops at the first batch that
    /// does not continue this log (a concurrent truncation, or a leader
    /// change). Returns the flush wait of the last appended batch, if any.
    pub fn append_replicated(
        &self,
        leader: i32,
        leader_epoch: i32,
        fetched: &FetchedBatches,
    ) -> Result<Option<super::CommitWait>, PartitionError> {
        if self.deleted.get() {
            return Err(PartitionError::Gone);
        }
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        if state.replica.followed_leader() != Some(leader)
            || state.replica.leader_epoch != leader_epoch
        {
            return Err(PartitionError::NotLeader);
        }
        let mut last = None;
        let mut at = 0;
        for header in &fetched.headers {
            let bytes = &fetched.bytes[at..at + header.total_bytes()];
            at += header.total_bytes();
            if header.base_offset != state.log.end_offset() {
                return Err(PartitionError::OffsetOutOfRange {
                    requested: header.base_offset,
                    start: state.log.start_offset(),
                    end: state.log.end_offset(),
                });
            }
            let info = state
                .log
                .append(bytes, None)
                .map_err(|e| storage_error(&e))?;
            assert_eq!(
                (info.base_offset, info.last_offset),
                (header.base_offset, header.last_offset()),
                "a follower keeps the leader's offsets"
            );
            record_producer(state, header, info.last_offset);
            if info.rolled_to.is_some() {
                let snapshot = state.producers.to_snapshot();
                state.snapshots_due.push((info.last_offset + 1, snapshot));
            }
            last = Some(info.last_offset);
        }
        Ok(last.map(|last_offset| Self::wait_commit(state, last_offset, false)))
    }

    /// A follower takes the leader's high watermark (capped by what it
    /// has made durable itself).
    pub fn set_leader_high_watermark(&self, leader_hw: i64) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        if state.replica.followed_leader().is_none() {
            return;
        }
        state.leader_high_watermark = state.leader_high_watermark.max(leader_hw);
        advance_high_watermark(state);
    }

    /// Cuts the log so it ends at or before `offset` (`reset`: empties it
    /// and starts it at `offset`), with the epoch cache, producer state and
    /// high watermark following. Waits (bounded) for a flush in flight.
    pub async fn truncate(&self, offset: i64, reset: bool) -> Result<i64, PartitionError> {
        let _one_at_a_time = self
            .maintenance
            .acquire_permit(1)
            .await
            .expect("semaphore never closes");
        let deadline = Instant::now() + Duration::from_secs(30);
        let job = loop {
            let planned = {
                let mut state = self.state.borrow_mut();
                if state.replica.is_leader() {
                    return Err(PartitionError::NotLeader);
                }
                if reset {
                    state.log.plan_reset(offset)
                } else {
                    state.log.plan_truncate(offset)
                }
            };
            match planned {
                Ok(job) => break job,
                Err(crate::log::LogError::Busy) if Instant::now() < deadline => {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(storage_error(&e)),
            }
        };
        let outcome = job.run().await;
        let (end, text) = {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            let end = state
                .log
                .complete_truncate(outcome)
                .map_err(|e| storage_error(&e))?;
            state.high_watermark = state.high_watermark.min(end);
            state.leader_high_watermark = state.leader_high_watermark.min(end);
            // What was cut was never committed (seed 216: a floor above
            // the new end kept caught-up followers out of the ISR forever).
            state.isr_join_floor = state.isr_join_floor.min(end);
            state.producers.truncate_from(end);
            state.snapshots_due.retain(|(base, _)| *base <= end);
            let mut changed = state.epochs.truncate_from_end(end);
            if reset {
                changed |= state.epochs.truncate_from_start(end);
            }
            (end, changed.then(|| state.epochs.to_text()))
        };
        super::remove_snapshots_after(&self.disk, &self.dir, end).await;
        if let Some(text) = text {
            self.write_epochs(text).await?;
        }
        log::info!(
            "{}-{}: truncated to offset {end}{}",
            self.topic,
            self.index,
            if reset { " (reset)" } else { "" }
        );
        Ok(end)
    }
}

/// The whole batches of a leader's Fetch answer for one partition, each
/// checked as Kafka's follower append checks them
/// (`analyzeAndValidateRecords`) and with the bounded stored-batch parser
/// every other reader of stored bytes uses (`records::check_stored_batch`:
/// header, CRC, header consistency (offsets within i64), every record): a
/// follower stores nothing it would refuse to read back. Also: offsets
/// increase from batch to batch. A
/// trailing partial batch (the fetch's size limit cut it) is left for the
/// next fetch.
#[derive(Debug)]
pub struct FetchedBatches<'a> {
    bytes: &'a [u8],
    headers: Vec<BatchHeader>,
}

impl<'a> FetchedBatches<'a> {
    /// Checks `records` (one partition's records from a Fetch response).
    /// Any bad batch refuses the whole set: nothing of it is appended, and
    /// the fetcher asks again (`PartitionError::InvalidRecord`, naming the
    /// batch's position and offset).
    pub fn check(records: &'a [u8]) -> Result<FetchedBatches<'a>, PartitionError> {
        let refuse = |at: usize, offset: i64, why: &dyn std::fmt::Display| {
            PartitionError::InvalidRecord(format!(
                "fetched batch at byte {at} (offset {offset}) refused: {why}"
            ))
        };
        let mut headers = Vec::new();
        let mut next: Option<i64> = None;
        let mut iter = BatchIter::new(records, false);
        for (at, header) in iter.by_ref() {
            let batch = &records[at..at + header.total_bytes()];
            records::check_stored_batch(batch).map_err(|e| refuse(at, header.base_offset, &e))?;
            // check_stored_batch (check_consistent) ensures the offsets
            // are not negative and the offset after the batch fits.
            if let Some(expected) = next.filter(|e| header.base_offset < *e) {
                return Err(refuse(
                    at,
                    header.base_offset,
                    &format_args!("offsets go back (the next offset was {expected})"),
                ));
            }
            next = Some(header.last_offset() + 1);
            headers.push(header);
        }
        if let Some(IterStop::Invalid(e)) = iter.stop() {
            return Err(PartitionError::InvalidRecord(format!(
                "fetched bytes at {} are not a record batch: {e}",
                iter.position()
            )));
        }
        let len = iter.position();
        Ok(FetchedBatches {
            bytes: &records[..len],
            headers,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The headers of the whole batches, in order.
    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }
}

fn record_producer<D: Disk>(state: &mut State<D>, header: &BatchHeader, last_offset: i64) {
    if state.producers.check(header) == super::producers::SequenceCheck::Append {
        state.producers.record(
            header,
            header.base_offset,
            last_offset,
            header.max_timestamp,
        );
    }
}

#[cfg(test)]
mod tests;
