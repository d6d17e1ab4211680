//! Consumer-group offsets in the simulation: partition 0 doubles as an
//! offsets partition (`__consumer_offsets`). The client's writes to it are
//! offset commits, encoded as the group coordinator writes them
//! (`group::records`), produced with acks=all as the coordinator appends
//! them. The invariant "committed group offsets survive": replaying the
//! leader's copy with the coordinator's own loader
//! (`GroupCoordinator::replay_partition`, what a new coordinator runs after
//! a leader change) gives, for every committed partition, the newest
//! commit in that log, and that commit is at or after the newest one the
//! client had acknowledged.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::group::records::{self, Entry, OffsetValue};
use crate::group::GroupCoordinator;
use crate::io::MemDisk;
use crate::partition::Partition;

/// The offsets partition of the simulation's topic.
pub const OFFSETS_PARTITION: i32 = 0;
const GROUP: &str = "sim-group";
/// The topic whose offsets the group commits.
const COMMITTED_TOPIC: &str = "orders";
/// Partitions of that topic the group commits offsets for.
const COMMITTED_PARTITIONS: u64 = 3;
const READ_CHUNK: usize = 64 * 1024;
/// The session timeout the replay gives consumer-protocol members (none
/// are written here; any valid value).
const SESSION_TIMEOUT_MS: i32 = 45_000;

/// Which committed partition a commit request is for.
pub fn committed_partition(request: u64) -> i32 {
    (request % COMMITTED_PARTITIONS) as i32
}

/// The batch of one offset commit: the group's offset for
/// `orders`-`committed_partition(request)` is `request` (unique, so the
/// check can tell commits apart).
pub fn commit_batch(request: u64, now_ms: i64) -> Bytes {
    let key = records::offset_key(GROUP, COMMITTED_TOPIC, committed_partition(request));
    let value = records::offset_value(&OffsetValue {
        offset: request as i64,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: now_ms,
        expire_timestamp_ms: None,
    });
    records::batch(&[(key, Some(value))], now_ms)
}

/// The newest acknowledged commit of each committed partition: its log
/// offset in the offsets partition.
#[derive(Default)]
pub struct Commits {
    acknowledged: BTreeMap<i32, i64>,
}

impl Commits {
    pub fn acknowledged(&mut self, request: u64, log_offset: i64) {
        let newest = self
            .acknowledged
            .entry(committed_partition(request))
            .or_insert(log_offset);
        *newest = (*newest).max(log_offset);
    }

    /// Checks the leader's copy of the offsets partition (see the module
    /// doc). Err says what broke.
    pub async fn check_leader(&self, leader: &Partition<MemDisk>) -> Result<(), String> {
        if self.acknowledged.is_empty() {
            return Ok(());
        }
        let coordinator = GroupCoordinator::new();
        coordinator
            .replay_partition(leader, OFFSETS_PARTITION, SESSION_TIMEOUT_MS)
            .await
            .map_err(|e| format!("the coordinator's replay failed: {e}"))?;
        let newest = newest_commits(leader).await?;
        for (partition, acknowledged_at) in &self.acknowledged {
            let Some((at, offset)) = newest.get(partition) else {
                return Err(format!(
                    "the commit of {COMMITTED_TOPIC}-{partition} acknowledged at {acknowledged_at} \
                     is gone: the offsets partition holds none"
                ));
            };
            if at < acknowledged_at {
                return Err(format!(
                    "the newest commit of {COMMITTED_TOPIC}-{partition} is at {at}, before the \
                     one acknowledged at {acknowledged_at}"
                ));
            }
            let replayed = coordinator.committed_offset(GROUP, COMMITTED_TOPIC, *partition);
            if replayed != Some(*offset) {
                return Err(format!(
                    "the coordinator's replay gives {replayed:?} for {COMMITTED_TOPIC}-{partition}, \
                     the log's newest commit (at {at}) says {offset}"
                ));
            }
        }
        Ok(())
    }
}

/// For each committed partition, the newest commit record in `log`'s
/// durable part: (its log offset, the committed offset), read with the
/// batch decoder only (independent of the coordinator's replay).
async fn newest_commits(log: &Partition<MemDisk>) -> Result<BTreeMap<i32, (i64, i64)>, String> {
    let mut newest = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.flushed_offset() {
        let fetched = log
            .read_durable(offset, READ_CHUNK)
            .await
            .map_err(|e| format!("reading the offsets partition at {offset}: {e}"))?;
        let decoded = records::decode_batches(fetched.records);
        if let Some((at, why)) = decoded.bad_batches.first() {
            return Err(format!(
                "a bad batch at {at} in the offsets partition: {why}"
            ));
        }
        for (at, key, value) in decoded.records {
            if let Ok(Some(Entry::Offset {
                partition,
                value: Some(v),
                ..
            })) = records::decode(&key, value.as_ref())
            {
                newest.insert(partition, (at, v.offset));
            }
        }
        match decoded.next_offset {
            Some(next) if next > offset => offset = next,
            _ => {
                return Err(format!(
                    "no whole batch at {offset} in the offsets partition"
                ))
            }
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::log::CacheBudget;
    use std::path::Path;

    async fn offsets_partition(commits: &[u64]) -> Partition<MemDisk> {
        let partition = Partition::open_on(
            MemDisk::new(),
            Path::new("/data"),
            "__consumer_offsets",
            OFFSETS_PARTITION,
            uuid::Uuid::from_u128(9),
            TopicConfig::resolve(&Default::default(), &Default::default()),
            CacheBudget::disabled(),
        )
        .await
        .unwrap();
        for request in commits {
            partition.append(&commit_batch(*request, 1), 1).unwrap();
        }
        let job = partition.take_flush().expect("a flush is due");
        partition.apply_flush(job.run(true).await).await;
        partition
    }

    fn run(test: impl std::future::Future<Output = ()> + 'static) {
        glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap()
            .run(test);
    }

    /// The check passes on a log that holds every acknowledged commit,
    /// newest last, and says which commit is missing when one is not.
    #[test]
    fn the_check_finds_an_acknowledged_commit_the_log_lost() {
        run(async {
            // Requests 0 and 3 commit orders-0, request 1 orders-1: log
            // offsets 0, 1, 2.
            let log = offsets_partition(&[0, 1, 3]).await;
            let mut commits = Commits::default();
            commits.acknowledged(0, 0);
            commits.acknowledged(1, 1);
            commits.acknowledged(3, 2);
            assert_eq!(commits.check_leader(&log).await, Ok(()));
            // Acknowledged at 5, beyond the log: lost.
            commits.acknowledged(4, 5);
            let lost = commits.check_leader(&log).await.unwrap_err();
            assert!(lost.contains("orders-1") && lost.contains("at 5"), "{lost}");
            // A partition without any commit in the log.
            let mut commits = Commits::default();
            commits.acknowledged(2, 0);
            let gone = commits.check_leader(&log).await.unwrap_err();
            assert!(gone.contains("is gone"), "{gone}");
        });
    }
}
