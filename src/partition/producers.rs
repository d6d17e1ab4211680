//! Idempotent-producer state of one partition: for each producer id its epoch
//! and the metadata of its last few batches, so a retried batch is answered
//! with its original offset instead of being appended twice, and a gap in
//! sequence numbers is refused.
//!
//! Lives on the partition's owner shard, inside the partition. Snapshotted to
//! `<base offset>.snapshot` when the log rolls and rebuilt at start from the
//! newest snapshot plus the batch headers after it, as Kafka does.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::protocol::batch::BatchHeader;

/// What one appended batch of a producer covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Newest last; at most `PRODUCER_BATCHES_REMEMBERED`.
    pub batches: VecDeque<BatchMeta>,
    /// Offset of the producer's last append, to forget the idlest producer first.
    pub last_offset: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The batch is new and in order: append it.
    Append,
    /// The batch was appended before (a retry): answer with its first metadata.
    Duplicate(BatchMeta),
    /// The producer's epoch is older than the one already seen.
    StaleEpoch,
    /// The batch's first sequence does not follow the producer's last one.
    OutOfOrder { expected: i32, got: i32 },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    entries: HashMap<i64, ProducerEntry>,
}

/// Kafka's sequence numbers wrap from i32::MAX to 0.
fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decides what to do with a produced batch, following Kafka's
    /// `ProducerStateManager`: duplicates first, then epoch, then sequence. An
    /// unknown producer may start at any sequence (its state may have been
    /// expired or lost with the data it covered).
    pub fn check(&self, header: &BatchHeader) -> SequenceCheck {
        if header.producer_id < 0 {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.entries.get(&header.producer_id) else {
            return SequenceCheck::Append;
        };
        if header.producer_epoch < entry.epoch {
            return SequenceCheck::StaleEpoch;
        }
        if header.producer_epoch > entry.epoch {
            if header.base_sequence != 0 {
                return SequenceCheck::OutOfOrder {
                    expected: 0,
                    got: header.base_sequence,
                };
            }
            return SequenceCheck::Append;
        }
        let last_seq = header.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq)
        {
            return SequenceCheck::Duplicate(*dup);
        }
        match entry.batches.back() {
            Some(last) if header.base_sequence != next_sequence(last.last_seq) => {
                SequenceCheck::OutOfOrder {
                    expected: next_sequence(last.last_seq),
                    got: header.base_sequence,
                }
            }
            _ => SequenceCheck::Append,
        }
    }

    /// Records an appended batch (after `check` said Append).
    pub fn record(
        &mut self,
        header: &BatchHeader,
        first_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
    ) {
        if header.producer_id < 0 {
            return;
        }
        if !self.entries.contains_key(&header.producer_id)
            && self.entries.len() >= limits::PRODUCERS_PER_PARTITION_MAX
        {
            self.forget_idlest();
        }
        let entry = self
            .entries
            .entry(header.producer_id)
            .or_insert(ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_offset,
            });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if let Some(last) = entry.batches.back() {
            assert!(
                last.last_offset < first_offset,
                "producer batches must be appended in offset order"
            );
        }
        if entry.batches.len() == limits::PRODUCER_BATCHES_REMEMBERED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset,
            last_offset,
            max_timestamp,
        });
        entry.last_offset = last_offset;
    }

    fn forget_idlest(&mut self) {
        if let Some(pid) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_offset)
            .map(|(pid, _)| *pid)
        {
            self.entries.remove(&pid);
        }
    }

    /// Forgets every batch at or after `offset`: the log discarded them (a
    /// failed flush), so a retry must be appended again, not deduplicated.
    pub fn truncate_from(&mut self, offset: i64) {
        self.entries.retain(|_, entry| {
            while entry
                .batches
                .back()
                .is_some_and(|b| b.last_offset >= offset)
            {
                entry.batches.pop_back();
            }
            if let Some(last) = entry.batches.back() {
                entry.last_offset = last.last_offset;
            }
            !entry.batches.is_empty()
        });
    }

    pub fn to_snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("producer state serializes")
    }

    /// Reads the snapshot written at log offset `offset` (it covers the
    /// batches below it). A snapshot is a file on disk and is not trusted:
    /// one that does not parse, holds more producers or batches than this
    /// state ever does, or contradicts its place in the log (a batch ending
    /// at or after `offset`, batches of a producer out of offset order) is
    /// refused with the reason. Replaying the log's batches after `offset`
    /// into what this returns never goes back in offsets.
    pub fn from_snapshot(bytes: &[u8], offset: i64) -> Result<ProducerStates, SnapshotError> {
        let states: ProducerStates = serde_json::from_slice(bytes)?;
        if states.entries.len() > limits::PRODUCERS_PER_PARTITION_MAX {
            return Err(SnapshotError::TooManyProducers {
                count: states.entries.len(),
            });
        }
        for (pid, entry) in &states.entries {
            states_entry_fits(*pid, entry, offset)?;
        }
        Ok(states)
    }
}

/// Why a producer snapshot was not taken: the state is rebuilt from an
/// older snapshot or the log instead.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("{size} bytes is more than a producer snapshot can be")]
    TooLarge { size: u64 },
    #[error("not a producer snapshot: {0}")]
    Parse(#[from] serde_json::Error),
    #[error(
        "{count} producers, more than the {} a partition keeps",
        limits::PRODUCERS_PER_PARTITION_MAX
    )]
    TooManyProducers { count: usize },
    #[error("producer id {pid} is negative")]
    NegativeProducerId { pid: i64 },
    #[error(
        "producer {pid} has {count} batches, more than the {} kept",
        limits::PRODUCER_BATCHES_REMEMBERED
    )]
    TooManyBatches { pid: i64, count: usize },
    #[error("producer {pid} has a batch at offsets {first}..={last}")]
    BadBatch { pid: i64, first: i64, last: i64 },
    #[error(
        "producer {pid} has a batch ending at offset {last}, not before the snapshot's offset \
         {offset}"
    )]
    BatchAfterSnapshot { pid: i64, last: i64, offset: i64 },
    #[error("producer {pid}'s batches are not in offset order at offset {first}")]
    OutOfOrder { pid: i64, first: i64 },
}

/// One producer's entry of a snapshot taken at `offset` (see
/// [`ProducerStates::from_snapshot`]).
fn states_entry_fits(pid: i64, entry: &ProducerEntry, offset: i64) -> Result<(), SnapshotError> {
    if pid < 0 {
        return Err(SnapshotError::NegativeProducerId { pid });
    }
    if entry.batches.len() > limits::PRODUCER_BATCHES_REMEMBERED {
        return Err(SnapshotError::TooManyBatches {
            pid,
            count: entry.batches.len(),
        });
    }
    let mut previous_last: Option<i64> = None;
    for batch in &entry.batches {
        if batch.first_offset < 0 || batch.first_offset > batch.last_offset {
            return Err(SnapshotError::BadBatch {
                pid,
                first: batch.first_offset,
                last: batch.last_offset,
            });
        }
        if batch.last_offset >= offset {
            return Err(SnapshotError::BatchAfterSnapshot {
                pid,
                last: batch.last_offset,
                offset,
            });
        }
        if previous_last.is_some_and(|last| last >= batch.first_offset) {
            return Err(SnapshotError::OutOfOrder {
                pid,
                first: batch.first_offset,
            });
        }
        previous_last = Some(batch.last_offset);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn detects_duplicates_gaps_and_stale_epochs() {
        let mut states = ProducerStates::default();
        let first = header(7, 0, 0, 5);
        assert_eq!(states.check(&first), SequenceCheck::Append);
        states.record(&first, 0, 4, 10);
        assert!(matches!(states.check(&first), SequenceCheck::Duplicate(m) if m.first_offset == 0));
        assert_eq!(
            states.check(&header(7, 0, 6, 1)),
            SequenceCheck::OutOfOrder {
                expected: 5,
                got: 6
            }
        );
        assert_eq!(states.check(&header(7, 0, 5, 1)), SequenceCheck::Append);
        assert_eq!(
            states.check(&header(7, 1, 3, 1)),
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: 3
            }
        );
        states.record(&header(7, 1, 0, 1), 5, 5, 11);
        assert_eq!(states.check(&header(7, 0, 5, 1)), SequenceCheck::StaleEpoch);
        // An unknown producer may start anywhere.
        assert_eq!(states.check(&header(8, 0, 42, 1)), SequenceCheck::Append);
    }

    #[test]
    fn truncation_forgets_discarded_batches_and_snapshots_round_trip() {
        let mut states = ProducerStates::default();
        states.record(&header(1, 0, 0, 2), 0, 1, 1);
        states.record(&header(1, 0, 2, 2), 2, 3, 2);
        states.record(&header(2, 0, 0, 1), 4, 4, 3);
        let snapshot = ProducerStates::from_snapshot(&states.to_snapshot(), 5).unwrap();
        assert_eq!(snapshot, states);
        states.truncate_from(2);
        assert_eq!(states.len(), 1);
        assert_eq!(states.check(&header(1, 0, 2, 2)), SequenceCheck::Append);
        assert!(matches!(
            states.check(&header(1, 0, 0, 2)),
            SequenceCheck::Duplicate(_)
        ));
    }

    /// fuzz target `partition_files` (snapshot mode): a snapshot whose
    /// batches reach past its own offset made the replay of the log after
    /// it assert ("producer batches must be appended in offset order") at
    /// every start. Such a snapshot is refused, so the partition rebuilds
    /// the state from an older snapshot or the log.
    #[test]
    fn a_snapshot_that_contradicts_its_offset_is_refused() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 0, 0, 5), 0, 4, 1);
        let good = states.to_snapshot();
        assert_eq!(ProducerStates::from_snapshot(&good, 5).unwrap(), states);
        // Taken at offset 5, it cannot know a batch ending at 999999.
        let text = String::from_utf8(good.clone()).unwrap();
        let far = text.replace("\"last_offset\":4", "\"last_offset\":999999");
        assert_ne!(far, text);
        let why = ProducerStates::from_snapshot(far.as_bytes(), 5).unwrap_err();
        assert!(why.to_string().contains("999999"), "{why}");
        // Nor one whose own name is before its batches.
        assert!(ProducerStates::from_snapshot(&good, 4).is_err());
        // Batches out of order, or one ending before it starts.
        states.record(&header(7, 0, 5, 1), 5, 5, 2);
        let two = String::from_utf8(states.to_snapshot()).unwrap();
        let swapped = two.replacen("\"first_offset\":5", "\"first_offset\":3", 1);
        assert!(ProducerStates::from_snapshot(swapped.as_bytes(), 6).is_err());
        let backwards = two.replacen("\"first_offset\":0", "\"first_offset\":6", 1);
        assert!(ProducerStates::from_snapshot(backwards.as_bytes(), 6).is_err());
        assert!(ProducerStates::from_snapshot(b"{\"entries\":", 6).is_err());
        // What the replay after a refused snapshot starts from is empty.
        let mut rebuilt = ProducerStates::default();
        let replayed = header(7, 0, 5, 1);
        assert_eq!(rebuilt.check(&replayed), SequenceCheck::Append);
        rebuilt.record(&replayed, 5, 5, 2);
    }
}
