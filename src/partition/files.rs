//! The partition directory's own files beside its log, and opening a
//! partition from them: the producer-state snapshots (`<offset:020>.snapshot`,
//! written after the flush that made them due, pruned by housekeeping, cut
//! back by truncation) and Kafka's `partition.metadata`. Opening recovers the
//! log, rebuilds the producer state from the newest readable snapshot plus
//! the batch headers after it, and loads the leader-epoch checkpoint
//! (`epochs`). Every file goes through the partition's disk.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use uuid::Uuid;

use super::producers::{ProducerStates, SequenceCheck, SnapshotError};
use super::{epochs, log_config, replica, Partition, State};
use crate::config::TopicConfig;
use crate::io::{Disk, DiskFile, DmaDisk};
use crate::log::{CacheBudget, LogError, PartitionLog};

const SNAPSHOT_SUFFIX: &str = ".snapshot";

impl Partition<DmaDisk> {
    pub fn dir_name(topic: &str, index: i32) -> String {
        format!("{topic}-{index}")
    }

    /// Opens (recovering if needed) the partition's log under `data_dir` and
    /// rebuilds its producer state from the newest snapshot plus the batches
    /// after it.
    pub async fn open(
        data_dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        config: TopicConfig,
        cache_budget: Rc<CacheBudget>,
    ) -> Result<Partition, LogError> {
        Partition::open_on(
            DmaDisk,
            data_dir,
            topic,
            index,
            topic_id,
            config,
            cache_budget,
        )
        .await
    }
}

impl<D: Disk> Partition<D> {
    /// [`Partition::open`] on a given disk.
    pub async fn open_on(
        disk: D,
        data_dir: &Path,
        topic: &str,
        index: i32,
        topic_id: Uuid,
        config: TopicConfig,
        cache_budget: Rc<CacheBudget>,
    ) -> Result<Partition<D>, LogError> {
        let dir = data_dir.join(Partition::dir_name(topic, index));
        let mut log = PartitionLog::open_on(disk.clone(), &dir, log_config(&config)).await?;
        log.set_cache_budget(cache_budget);
        write_partition_metadata(&disk, &dir, topic_id).await?;
        let (mut producers, from) =
            load_newest_snapshot(&disk, &dir, log.start_offset(), log.end_offset()).await;
        let headers = log.plan_scan_headers(from).run().await?;
        for h in &headers {
            if producers.check(h) == SequenceCheck::Append {
                producers.record(h, h.base_offset, h.last_offset(), h.max_timestamp);
            }
        }
        let high_watermark = log.flushed_offset();
        let mut epochs = epochs::LeaderEpochs::load(&disk, &dir).await;
        let mut changed = epochs.truncate_from_end(log.end_offset());
        // The checkpoint is not trusted over the batches themselves for the
        // scanned tail (Kafka rebuilds the cache from the batches it
        // recovers): a follower notes a fetched epoch before it appends,
        // so an append that then failed (an offline log) left an epoch
        // claiming offsets whose batches, surviving the crash, came from
        // an older leader; the divergence check then kept that tail
        // (found by the simulation, seed 16978).
        if let Some(first) = headers.first() {
            let before = epochs.to_text();
            epochs.truncate_from_end(first.base_offset);
            for h in headers.iter().filter(|h| h.partition_leader_epoch >= 0) {
                epochs.assign(h.partition_leader_epoch, h.base_offset);
            }
            changed |= epochs.to_text() != before;
        }
        if changed {
            epochs::LeaderEpochs::write(&disk, &dir, &epochs.to_text())
                .await
                .map_err(LogError::Io)?;
        }
        Ok(Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            dir,
            disk,
            state: RefCell::new(State {
                log,
                config,
                producers,
                high_watermark,
                replica: replica::ReplicaState::single(),
                followers: replica::Followers::default(),
                isr_proposed: None,
                isr_join_floor: 0,
                leader_high_watermark: high_watermark,
                epochs,
                commit_waiters: VecDeque::new(),
                replica_waiters: VecDeque::new(),
                data_waiters: Vec::new(),
                snapshots_due: Vec::new(),
            }),
            queued_for_commit: Cell::new(false),
            deleted: Cell::new(false),
            maintenance: glommio::sync::Semaphore::new(1),
            produced: Default::default(),
            served: Default::default(),
        })
    }
}

fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(snapshot_name(offset))
}

/// Writes producer-state snapshots, each atomically and durably (a torn
/// write is never mistaken for a snapshot), then prunes old ones.
pub(super) async fn write_snapshots<D: Disk>(
    disk: &D,
    dir: &Path,
    due: &[(i64, Vec<u8>)],
) -> std::io::Result<()> {
    for (offset, bytes) in due {
        crate::io::replace_file(disk, dir, &snapshot_name(*offset), bytes).await?;
    }
    prune_snapshots(disk, dir, 0).await;
    Ok(())
}

async fn list_snapshots<D: Disk>(disk: &D, dir: &Path) -> Vec<i64> {
    let mut offsets: Vec<i64> = disk
        .list_dir(dir)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| name.strip_suffix(SNAPSHOT_SUFFIX)?.parse().ok())
        .collect();
    offsets.sort_unstable();
    offsets
}

/// Removes producer snapshots past `end` (the log was cut there).
pub(super) async fn remove_snapshots_after<D: Disk>(disk: &D, dir: &Path, end: i64) {
    for offset in list_snapshots(disk, dir).await {
        if offset > end {
            let _ = crate::io::remove_if_exists(disk, &snapshot_path(dir, offset)).await;
        }
    }
}

/// Keeps the three newest snapshots and none below the log start.
pub(super) async fn prune_snapshots<D: Disk>(disk: &D, dir: &Path, log_start: i64) {
    let offsets = list_snapshots(disk, dir).await;
    let keep_from = offsets.len().saturating_sub(3);
    for (i, offset) in offsets.iter().enumerate() {
        if i < keep_from || (*offset < log_start && i + 1 < offsets.len()) {
            let _ = crate::io::remove_if_exists(disk, &snapshot_path(dir, *offset)).await;
        }
    }
}

/// The newest readable snapshot at or below the log end, and the offset to
/// replay batch headers from. Without one, replay starts at the log start.
async fn load_newest_snapshot<D: Disk>(
    disk: &D,
    dir: &Path,
    log_start: i64,
    log_end: i64,
) -> (ProducerStates, i64) {
    for offset in list_snapshots(disk, dir).await.into_iter().rev() {
        if offset > log_end || offset < log_start {
            continue;
        }
        let path = snapshot_path(dir, offset);
        let read = read_snapshot(disk, &path)
            .await
            .and_then(|b| ProducerStates::from_snapshot(&b, offset));
        match read {
            Ok(states) => return (states, offset),
            // Kafka drops a corrupt snapshot too: the state comes back
            // from an older snapshot, or from the log itself.
            Err(why) => log::warn!(
                "{}: producer snapshot ignored ({why}); rebuilding the producer state \
                 from an older snapshot or the log",
                path.display()
            ),
        }
    }
    (ProducerStates::default(), log_start)
}

/// A snapshot file's bytes. A snapshot holds at most
/// PRODUCERS_PER_PARTITION_MAX producers: a file far larger is not one, and
/// is not read into memory.
async fn read_snapshot<D: Disk>(disk: &D, path: &Path) -> Result<Vec<u8>, SnapshotError> {
    let file = disk.open(path).await?;
    let size = file.size().await?;
    if size > crate::limits::PRODUCER_SNAPSHOT_BYTES_MAX {
        return Err(SnapshotError::TooLarge { size });
    }
    Ok(file.read_at(0, size as usize).await?.into())
}

/// Kafka's `partition.metadata`: the topic id of the directory's partition,
/// written (atomically) only when it is missing or says something else.
async fn write_partition_metadata<D: Disk>(
    disk: &D,
    dir: &Path,
    topic_id: Uuid,
) -> Result<(), LogError> {
    let text = format!(
        "version: 0\ntopic_id: {}\n",
        crate::metadata::kafka_uuid(topic_id)
    );
    let path = dir.join(PARTITION_METADATA_FILE);
    // Anything larger than the expected text is not it; not read whole.
    let current = match disk.open(&path).await {
        Ok(file) => match file.size().await {
            Ok(size) if size == text.len() as u64 => file.read_at(0, text.len()).await.ok(),
            _ => None,
        },
        Err(_) => None,
    };
    if current.as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    crate::io::replace_file(disk, dir, PARTITION_METADATA_FILE, text.as_bytes())
        .await
        .map_err(LogError::Io)
}

const PARTITION_METADATA_FILE: &str = "partition.metadata";
