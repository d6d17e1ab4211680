//! Offset retention (Kafka's `offsets.retention.minutes`, KIP-211): a
//! group's committed offsets expire once the group has had no members for
//! the retention period, counted from when it became empty (a classic group
//! with a protocol type, which records that time) or from each offset's
//! commit (a group of standalone consumers, or a KIP-848 group); a commit
//! that named its own retention (OffsetCommit v2-v4) expires at the time it
//! named. Offsets of a group with members never expire here. Expired
//! offsets are forgotten and tombstoned in `__consumer_offsets`, so a
//! reload does not bring them back.

use super::records::{self, OffsetValue};
use super::Group;

/// Kafka's `OffsetCommitRequest.DEFAULT_RETENTION_TIME`: no retention named.
pub const DEFAULT_RETENTION_TIME: i64 = -1;
/// Kafka's `OffsetCommitRequest.DEFAULT_TIMESTAMP`: commit at the broker's time.
pub const DEFAULT_TIMESTAMP: i64 = -1;

/// When a commit at `now_ms` with the request's retention expires on its
/// own: only when the request named one (OffsetCommit v2-v4).
pub fn expire_timestamp(retention_time_ms: i64, now_ms: i64) -> Option<i64> {
    (retention_time_ms != DEFAULT_RETENTION_TIME).then(|| now_ms.saturating_add(retention_time_ms))
}

/// The (topic, partition) of every offset of `group` expired at `now_ms`
/// under `retention_ms`.
pub fn expired_offsets(group: &Group, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
    if !group.is_empty() {
        return Vec::new();
    }
    let empty_since = group.empty_since_ms();
    group
        .offsets
        .iter()
        .filter(|(_, v)| is_expired(v, empty_since, now_ms, retention_ms))
        .map(|(key, _)| key.clone())
        .collect()
}

fn is_expired(v: &OffsetValue, empty_since: Option<i64>, now_ms: i64, retention_ms: i64) -> bool {
    match v.expire_timestamp_ms {
        Some(expire) => now_ms >= expire,
        None => {
            let base = empty_since.unwrap_or(v.commit_timestamp_ms);
            now_ms.saturating_sub(base) >= retention_ms
        }
    }
}

/// Forgets the expired offsets of every group in `groups` and returns the
/// tombstones to write, by offsets partition.
pub fn expire<'a>(
    groups: impl Iterator<Item = &'a mut Group>,
    now_ms: i64,
    retention_ms: i64,
) -> Vec<(i32, (bytes::Bytes, Option<bytes::Bytes>))> {
    let mut tombstones = Vec::new();
    for group in groups {
        let expired = expired_offsets(group, now_ms, retention_ms);
        if !expired.is_empty() {
            tracing::info!(
                group = %group.id,
                offsets = expired.len(),
                "removed expired committed offsets"
            );
        }
        for key in expired {
            group.offsets.remove(&key);
            let (topic, partition) = key;
            tombstones.push((
                group.partition,
                (records::offset_key(&group.id, &topic, partition), None),
            ));
        }
    }
    tombstones
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(commit: i64, expire: Option<i64>) -> OffsetValue {
        OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: commit,
            expire_timestamp_ms: expire,
        }
    }

    fn group_with(offsets: &[(&str, OffsetValue)]) -> Group {
        let mut g = Group::new("g", 0);
        for (topic, v) in offsets {
            g.offsets.insert((topic.to_string(), 0), v.clone());
        }
        g
    }

    #[test]
    fn a_standalone_commit_expires_a_retention_after_it_was_made() {
        let mut g = group_with(&[("old", value(1_000, None)), ("new", value(5_000, None))]);
        assert!(expired_offsets(&g, 5_999, 5_000).is_empty());
        assert_eq!(expired_offsets(&g, 6_000, 5_000), [("old".to_string(), 0)]);
        let tombstones = expire(std::iter::once(&mut g), 10_000, 5_000);
        assert_eq!(tombstones.len(), 2);
        assert!(tombstones.iter().all(|(p, (_, v))| *p == 0 && v.is_none()));
        assert!(g.offsets.is_empty());
    }

    #[test]
    fn a_named_retention_wins_over_the_broker_default() {
        let g = group_with(&[("t", value(1_000, Some(2_000)))]);
        assert!(expired_offsets(&g, 1_999, i64::MAX).is_empty());
        assert_eq!(expired_offsets(&g, 2_000, i64::MAX).len(), 1);
        assert_eq!(expire_timestamp(DEFAULT_RETENTION_TIME, 7), None);
        assert_eq!(expire_timestamp(1_000, 7), Some(1_007));
    }
}
