//! The leader-epoch cache of one partition (Kafka's `LeaderEpochFileCache`):
//! for every leader epoch, the first offset written in it. A leader adds an
//! entry when its epoch starts; a follower adds one when a replicated batch
//! carries a newer epoch than it has seen. OffsetForLeaderEpoch answers from
//! it, and a follower uses the answer to cut the part of its log that the
//! new leader never had (a divergent tail).
//!
//! Persisted as Kafka's `leader-epoch-checkpoint` in the partition
//! directory: a version line `0`, the entry count, then `epoch start` lines.
//! Written to a temp file, synced and renamed, so a crash leaves the old or
//! the new file, never a torn one.
//!
//! Invariant: epochs and start offsets both strictly increase.

use std::path::{Path, PathBuf};

use crate::io::Disk;

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Entries beyond this are dropped from the front (oldest epochs): a
/// partition sees one entry per leader change.
const ENTRIES_MAX: usize = 10_000;

/// A checkpoint of `ENTRIES_MAX` entries is well under this; a larger file
/// is not one, and is not read into memory.
const CHECKPOINT_BYTES_MAX: usize = 64 + ENTRIES_MAX * 32;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochs {
    /// (epoch, first offset of the epoch), both increasing.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochs {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CHECKPOINT_FILE)
    }

    /// Reads the checkpoint; a missing or damaged file gives an empty cache
    /// (the partition then answers UNDEFINED for old epochs, and followers
    /// fall back to the high watermark, as Kafka does).
    pub async fn load<D: Disk>(disk: &D, dir: &Path) -> LeaderEpochs {
        let bytes = match crate::io::read_whole_file(disk, &Self::path(dir)).await {
            Ok(Some(bytes)) if bytes.len() <= CHECKPOINT_BYTES_MAX => bytes,
            Ok(None) => return LeaderEpochs::default(),
            Ok(Some(_)) | Err(_) => Vec::new(),
        };
        match std::str::from_utf8(&bytes).ok().and_then(Self::parse) {
            Some(epochs) => epochs,
            None => {
                log::warn!(
                    "{}: damaged {CHECKPOINT_FILE}; starting an empty epoch cache",
                    dir.display()
                );
                LeaderEpochs::default()
            }
        }
    }

    /// Parses a checkpoint's text (None when damaged); bounded by the text,
    /// whatever count it claims.
    pub fn parse(text: &str) -> Option<LeaderEpochs> {
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut entries = Vec::with_capacity(count.min(ENTRIES_MAX));
        for _ in 0..count {
            let mut parts = lines.next()?.split_whitespace();
            let epoch: i32 = parts.next()?.parse().ok()?;
            let start: i64 = parts.next()?.parse().ok()?;
            if entries
                .last()
                .is_some_and(|&(e, s)| epoch <= e || start < s)
            {
                return None;
            }
            entries.push((epoch, start));
        }
        Some(LeaderEpochs { entries })
    }

    pub fn to_text(&self) -> String {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        text
    }

    /// Writes the checkpoint durably and atomically.
    pub async fn write<D: Disk>(disk: &D, dir: &Path, text: &str) -> std::io::Result<()> {
        crate::io::replace_file(disk, dir, CHECKPOINT_FILE, text.as_bytes()).await
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Records that `epoch` starts at `start`. An epoch not newer than the
    /// latest is ignored. Entries starting at or after `start` belong to a
    /// history that did not survive (a truncation not yet applied here) and
    /// are replaced. True when the cache changed.
    pub fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        while self.entries.last().is_some_and(|&(_, s)| s >= start) {
            self.entries.pop();
        }
        self.entries.push((epoch, start));
        if self.entries.len() > ENTRIES_MAX {
            self.entries.remove(0);
        }
        self.check();
        true
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `epoch` this log knows
    /// and the offset where that epoch ended (the next epoch's start, or
    /// `log_end` for the latest). (-1, -1) when `epoch` is older than every
    /// entry (UNDEFINED).
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> (i32, i64) {
        match self.entries.iter().rposition(|&(e, _)| e <= epoch) {
            None => (-1, -1),
            Some(i) => {
                let end = self.entries.get(i + 1).map_or(log_end, |&(_, s)| s);
                (self.entries[i].0, end)
            }
        }
    }

    /// The log was cut to end at `end`: epochs that start at or after it are gone.
    pub fn truncate_from_end(&mut self, end: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, s)| s < end);
        self.entries.len() != before
    }

    /// The log now starts at `start` (retention, DeleteRecords, a reset):
    /// epochs that ended before it are gone; the one spanning it starts there.
    pub fn truncate_from_start(&mut self, start: i64) -> bool {
        let keep_from = self
            .entries
            .iter()
            .rposition(|&(_, s)| s <= start)
            .unwrap_or(0);
        let mut changed = keep_from > 0;
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            if first.1 < start {
                first.1 = start;
                changed = true;
            }
        }
        self.check();
        changed
    }

    fn check(&self) {
        for pair in self.entries.windows(2) {
            assert!(
                pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1,
                "leader epochs and their start offsets increase: {pair:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochs {
        let mut c = LeaderEpochs::default();
        for &(e, s) in entries {
            assert!(c.assign(e, s));
        }
        c
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(1, 0), (3, 100), (4, 250)]);
        assert_eq!(c.end_offset_for(0, 300), (-1, -1));
        assert_eq!(c.end_offset_for(1, 300), (1, 100));
        // Epoch 2 was never seen here: the largest below it is 1, ending at 100.
        assert_eq!(c.end_offset_for(2, 300), (1, 100));
        assert_eq!(c.end_offset_for(3, 300), (3, 250));
        assert_eq!(c.end_offset_for(4, 300), (4, 300));
        assert_eq!(c.end_offset_for(9, 300), (4, 300));
    }

    #[test]
    fn assign_ignores_old_epochs_and_replaces_cut_history() {
        let mut c = cache(&[(1, 0), (2, 50)]);
        assert!(!c.assign(2, 60));
        assert!(!c.assign(1, 70));
        // Epoch 5 starting at 40 means the entry at 50 was a divergent tail.
        assert!(c.assign(5, 40));
        assert_eq!(c.entries(), &[(1, 0), (5, 40)]);
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (2, 50), (3, 90)]);
        assert!(c.truncate_from_end(90));
        assert_eq!(c.entries(), &[(1, 0), (2, 50)]);
        assert!(c.truncate_from_start(60));
        assert_eq!(c.entries(), &[(2, 60)]);
        assert!(!c.truncate_from_start(60));
        assert!(c.truncate_from_end(0));
        assert_eq!(c.latest_epoch(), None);
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        use crate::io::{replace_file, MemDisk};
        use futures_lite::future::block_on;
        let disk = MemDisk::new();
        let dir = Path::new("/p-0");
        block_on(async {
            let c = cache(&[(0, 0), (7, 1234)]);
            LeaderEpochs::write(&disk, dir, &c.to_text()).await.unwrap();
            assert_eq!(LeaderEpochs::load(&disk, dir).await, c);
            for damaged in ["0\n2\n7 10\n3 20\n", "0\n3\n1 0\n", "\u{fffd}"] {
                replace_file(&disk, dir, CHECKPOINT_FILE, damaged.as_bytes())
                    .await
                    .unwrap();
                assert_eq!(
                    LeaderEpochs::load(&disk, dir).await,
                    LeaderEpochs::default()
                );
            }
            // A file far larger than any checkpoint is not read.
            let huge = format!("0\n1\n1 0\n{}", " ".repeat(CHECKPOINT_BYTES_MAX));
            replace_file(&disk, dir, CHECKPOINT_FILE, huge.as_bytes())
                .await
                .unwrap();
            assert_eq!(
                LeaderEpochs::load(&disk, dir).await,
                LeaderEpochs::default()
            );
        });
    }
}
