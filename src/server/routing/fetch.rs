//! The fetch calls: a fetch's reads on each owner shard within its share
//! of the response budget (`ReadMany`), and the long poll that waits for
//! new data and reads it in the same trip (`WaitThenRead`).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;

use super::{local, PartitionAddr, PartitionClient};
use crate::limits;
use crate::partition::{Fetched, PartitionError, ReadLimit};
use crate::protocol::batch::count_records;
use crate::server::broker::Broker;
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

impl<'a> PartitionClient<'a> {
    /// Reads partitions of one fetch: one call per owner shard, each with
    /// an equal part of `budget`, which it spends on its partitions in
    /// order (see `ReadMany`). `replica`: a follower's broker id. Results
    /// are in `parts`' order.
    pub async fn fetch_many(
        &self,
        parts: &[(&PartitionAddr, FetchPosition)],
        budget: usize,
        records: usize,
        whole_shares: bool,
        replica: Option<i32>,
    ) -> Vec<Result<Fetched, PartitionError>> {
        let by_owner = group_by_owner(parts.iter().map(|(at, _)| *at));
        let owner_budget = budget / by_owner.len().max(1);
        let owner_records = records / by_owner.len().max(1);
        self.count_reads(&by_owner);
        let calls = by_owner.iter().map(|(&owner, indices)| {
            let call = ReadMany {
                parts: indices
                    .iter()
                    .map(|&i| {
                        let (at, position) = &parts[i];
                        (at.topic.clone(), at.index, *position)
                    })
                    .collect(),
                budget: owner_budget,
                records: owner_records,
                whole_shares,
                replica,
            };
            self.broker.call(owner, call)
        });
        let replies = futures::future::join_all(calls).await;
        let mut results: Vec<Option<Result<Fetched, PartitionError>>> =
            (0..parts.len()).map(|_| None).collect();
        for ((_, indices), reply) in by_owner.into_iter().zip(replies) {
            for (i, result) in owner_reads(indices, reply) {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every partition answered"))
            .collect()
    }

    /// Counts the partition reads of one fetch in the shard's stats: those
    /// this shard owns, and those forwarded to their owners (a long poll's
    /// reads as much as an immediate fetch's).
    fn count_reads(&self, by_owner: &BTreeMap<ShardId, Vec<usize>>) {
        let stats = &self.broker.stats;
        for (&owner, indices) in by_owner {
            let counter = if owner == self.broker.shard() {
                &stats.fetch_local
            } else {
                &stats.fetch_forwarded
            };
            counter.set(counter.get() + indices.len() as u64);
        }
    }

    /// The long poll, one trip per owner shard: each owner parks on its
    /// partitions of `parts` until one has data past its offset (a
    /// follower: its flushed end), stops being led there, or `wait_ms`
    /// passes, then reads them at once (`read_many`, whole shares within
    /// `budget` and about `records` records) and answers with the reads.
    /// Returns the first owner's reads that hold records or an error, with
    /// those of owners that answered by then, as (index in `parts`, read);
    /// None when the wait ran out with nothing new.
    pub async fn wait_then_read(
        &self,
        parts: &[(&PartitionAddr, FetchPosition)],
        wait_ms: u64,
        budget: usize,
        records: usize,
        replica: Option<i32>,
    ) -> Option<Vec<(usize, Result<Fetched, PartitionError>)>> {
        let by_owner = group_by_owner(parts.iter().map(|(at, _)| *at));
        self.count_reads(&by_owner);
        let mut waiting: FuturesUnordered<_> = by_owner
            .into_iter()
            .map(|(owner, indices)| {
                let call = WaitThenRead {
                    parts: indices
                        .iter()
                        .map(|&i| {
                            let (at, position) = &parts[i];
                            (at.topic.clone(), at.index, *position)
                        })
                        .collect(),
                    wait_ms,
                    budget,
                    records,
                    replica,
                };
                let reply = self.broker.call(owner, call);
                async move { owner_reads(indices, reply.await) }
            })
            .collect();
        let first_news = async {
            while let Some(reads) = waiting.next().await {
                let news = reads.iter().any(|(_, read)| match read {
                    Ok(fetched) => !fetched.records.is_empty(),
                    Err(_) => true,
                });
                if news {
                    return Some(reads);
                }
            }
            None
        };
        let deadline = async {
            glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
            None
        };
        let mut found = futures_lite::future::or(first_news, deadline).await?;
        // Owners that answered meanwhile are not left out.
        while let Some(Some(reads)) = waiting.next().now_or_never() {
            found.extend(reads);
        }
        Some(found)
    }
}

/// Where one partition of a fetch reads from.
#[derive(Clone, Copy, Debug)]
pub struct FetchPosition {
    pub offset: i64,
    /// The partition's own limit (Kafka's partition_max_bytes).
    pub max_bytes: usize,
    /// The leader epoch a follower's fetch names (-1: none).
    pub current_leader_epoch: i32,
}

/// The indices of `addrs` grouped by owner shard, in order within each.
fn group_by_owner<'p>(
    addrs: impl Iterator<Item = &'p PartitionAddr>,
) -> BTreeMap<ShardId, Vec<usize>> {
    let mut by_owner: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
    for (i, at) in addrs.enumerate() {
        by_owner.entry(at.owner).or_default().push(i);
    }
    by_owner
}

/// An owner's replies paired with their indices; an owner that could not
/// be reached (it is stopping, and answered nothing) gives
/// NOT_LEADER_OR_FOLLOWER for each of its partitions.
fn owner_reads(
    indices: Vec<usize>,
    reply: Vec<Result<Fetched, PartitionError>>,
) -> Vec<(usize, Result<Fetched, PartitionError>)> {
    if reply.len() != indices.len() {
        return indices
            .into_iter()
            .map(|i| (i, Err(PartitionError::NotLeader)))
            .collect();
    }
    indices.into_iter().zip(reply).collect()
}

/// Reads the partitions of one fetch that one shard owns, concurrently,
/// within this owner's part of the response budget (shares taken in
/// request order, see `serve`): a consumer's fetch, or a follower's
/// (`replica`: its broker id). What is read into memory follows the
/// budget, not the partition count. One reply per partition, in order.
struct ReadMany {
    parts: Vec<(String, i32, FetchPosition)>,
    budget: usize,
    /// About how many records the reads may return (see
    /// `limits::FETCH_RESPONSE_RECORDS_MAX`): a partition's share in bytes
    /// is at most what is left of it times the partition's bytes per record.
    records: usize,
    /// Shares are whole limits (but the first, which returns at least one
    /// batch): the response's first round. Later rounds serve partitions
    /// known to have data with what is left, batches that fit it only.
    whole_shares: bool,
    replica: Option<i32>,
}

impl ShardCall<Broker> for ReadMany {
    type Reply = Vec<Result<Fetched, PartitionError>>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            let ReadMany {
                parts,
                budget,
                records,
                whole_shares,
                replica,
            } = self;
            read_many(&broker, &parts, budget, records, whole_shares, replica).await
        })
    }
    /// No replies: `fetch_many` answers NOT_LEADER_OR_FOLLOWER for each of
    /// the owner's partitions.
    fn unreachable(_: MeshError) -> Self::Reply {
        Vec::new()
    }
}

/// Reads `parts` (all owned by this shard) within `budget` bytes and about
/// `records` records, as `ReadMany` describes; one reply per partition, in
/// order.
async fn read_many(
    broker: &Rc<Broker>,
    parts: &[(String, i32, FetchPosition)],
    budget: usize,
    records: usize,
    whole_shares: bool,
    replica: Option<i32>,
) -> Vec<Result<Fetched, PartitionError>> {
    // Reads run concurrently, each holding a share of the budget
    // taken in order. In the first round a share is its
    // partition's whole limit, so one read holds what it returns
    // (a smaller share cuts large batches and costs a second read,
    // which a catch-up read of many partitions would pay on most
    // of them); the first partition may take less (it returns at
    // least one batch, KIP-74). Later rounds serve partitions known
    // to have data with whatever is left, and only with batches
    // that fit it (nothing read past it). A read that returns less
    // gives the rest back to the partitions after it. Once no share
    // fits and nothing in flight can give any back, the rest get
    // only what the caches hold (no I/O, no memory beyond the
    // cache's). So at most the budget (plus one batch) is read into
    // memory, however many partitions the fetch names, and disk
    // reads still overlap.
    let mut replies: Vec<Option<Result<Fetched, PartitionError>>> =
        (0..parts.len()).map(|_| None).collect();
    let mut unreserved = budget;
    let mut records_unreserved = records;
    let mut reading = FuturesUnordered::new();
    let mut started_any = false;
    let mut next = 0;
    let reads_until = crate::clock::now() + Duration::from_millis(limits::FETCH_DISK_READ_MS);
    let mut got_records = false;
    loop {
        // Once it holds records, a fetch starts no disk reads past
        // its time (`FETCH_DISK_READ_MS`): as if the budget were spent.
        let late = got_records && crate::clock::now() >= reads_until;
        let start = parts.get(next).and_then(|(topic, partition, position)| {
            // A partition with less than its limit left reserves
            // only what it has (an upper bound, so all of it fits):
            // the tails of a catch-up read then run side by side
            // instead of a few at a time.
            let hint = broker
                .partition(topic, *partition)
                .map(|p| p.read_size_hint(position.offset));
            let left = hint.map_or(position.max_bytes, |h| {
                usize::try_from(h.max_bytes).unwrap_or(usize::MAX)
            });
            // What is left of the record budget, in this
            // partition's bytes.
            let per_record = hint
                .and_then(|h| h.bytes_per_record)
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(usize::MAX)
                .max(1);
            let unreserved = unreserved.min(records_unreserved.saturating_mul(per_record));
            let short = left < position.max_bytes;
            let need = position.max_bytes.min(left);
            let whole = unreserved >= need || !started_any;
            if late {
                reading
                    .is_empty()
                    .then_some((ReadLimit::CachedUpto(position.max_bytes), 0))
            } else if short && unreserved >= need {
                Some((ReadLimit::Within(need), need))
            } else if !whole_shares {
                // Later rounds read only partitions whose data all
                // fits (above): a read whose first batch is larger
                // than its share returns nothing, and every round
                // would read it again (measured: 4 consumers of 512
                // partitions read 9x the bytes they were sent).
                Some((ReadLimit::Nothing, 0))
            } else if unreserved > 0 && whole {
                let share = position.max_bytes.min(unreserved);
                Some((ReadLimit::Upto(share), share))
            } else if reading.is_empty() {
                Some((ReadLimit::CachedUpto(position.max_bytes), 0))
            } else {
                None // wait for a read in flight to give budget back
            }
            .map(|(limit, share)| (limit, share, share.div_ceil(per_record)))
        });
        if let Some((limit, share, share_records)) = start {
            let (topic, partition, position) = &parts[next];
            started_any |= share > 0;
            unreserved -= share;
            records_unreserved = records_unreserved.saturating_sub(share_records);
            let (broker, i) = (broker, next);
            reading.push(async move {
                let reply = read_one(broker, topic, *partition, position, limit, replica).await;
                (i, share, share_records, reply)
            });
            next += 1;
            continue;
        }
        let Some((i, share, share_records, reply)) = reading.next().await else {
            break;
        };
        let used = reply.as_ref().map_or(0, |f| f.records.len());
        unreserved = (unreserved + share).saturating_sub(used);
        // Followers have no record budget: no need to count.
        let used_records = match (replica, &reply) {
            (None, Ok(f)) => count_records(&f.records),
            _ => 0,
        };
        records_unreserved = (records_unreserved + share_records).saturating_sub(used_records);
        got_records |= used > 0;
        replies[i] = Some(reply);
    }
    replies
        .into_iter()
        .map(|r| r.expect("every partition read"))
        .collect()
}

async fn read_one(
    broker: &Rc<Broker>,
    topic: &str,
    partition: i32,
    position: &FetchPosition,
    limit: ReadLimit,
    replica: Option<i32>,
) -> Result<Fetched, PartitionError> {
    let p = local(broker, topic, partition)?;
    match replica {
        None => {
            let fetched = p.read(position.offset, limit).await?;
            let records = crate::protocol::batch::count_records(&fetched.records);
            p.served().add(fetched.records.len() as u64, records as u64);
            Ok(fetched)
        }
        Some(replica) => {
            crate::replication::serve_follower_fetch(
                broker,
                &p,
                replica,
                position.offset,
                limit,
                position.current_leader_epoch,
            )
            .await
        }
    }
}

/// Parks until one of the partitions' high watermark (a follower: its
/// flushed end) passes its offset, the partition is no longer led here, or
/// the wait ends; then reads them all (`read_many` with whole shares) and
/// answers with the reads, so a woken long poll costs one trip, not a
/// wake-up and a second read.
struct WaitThenRead {
    parts: Vec<(String, i32, FetchPosition)>,
    wait_ms: u64,
    budget: usize,
    records: usize,
    replica: Option<i32>,
}

impl ShardCall<Broker> for WaitThenRead {
    type Reply = Vec<Result<Fetched, PartitionError>>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            let wait = Duration::from_millis(self.wait_ms);
            let follower = self.replica.is_some();
            let waits: Vec<_> = self
                .parts
                .iter()
                .filter_map(|(topic, partition, position)| {
                    let p = broker.partition(topic, *partition)?;
                    Some(Box::pin(async move {
                        p.wait_for_data(position.offset, wait, follower).await
                    }))
                })
                .take(limits::FETCH_WAITS_PER_CALL_MAX)
                .collect();
            if !waits.is_empty() {
                futures::future::select_all(waits).await;
            }
            let (budget, records) = (self.budget, self.records);
            read_many(&broker, &self.parts, budget, records, true, self.replica).await
        })
    }
    /// No replies: NOT_LEADER_OR_FOLLOWER for each partition (`owner_reads`).
    fn unreachable(_: MeshError) -> Self::Reply {
        Vec::new()
    }
}
