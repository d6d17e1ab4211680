//! The scrape's families of replication, the controller quorum, consumer
//! groups and the tuning profile (`metrics::cluster_families`). Each shard
//! reads them at scrape time from state that exists anyway (its
//! partitions' replica sets and followers, its group coordinator, the
//! ISR changes its leaders got committed); shard 0 adds the node's own
//! (the metadata's offline partitions, its Raft voter, the profile).
//!
//! A group's lag needs the high watermark of a partition that may live on
//! another shard or another broker: the coordinator's shard asks the owner
//! shards with one typed call each ([`LeaderEnds`]), which answer for the
//! partitions this node leads (a follower's copy trails the leader's end).
//! Then shard 0 asks each other broker that leads a committed partition
//! for its ends, one ListOffsets per broker per scrape, concurrently,
//! within `REMOTE_ENDS_DEADLINE` ([`with_remote_ends`]). So the
//! coordinator exports every lag of its groups, and it alone: groups live
//! only on their coordinator.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;

use super::{PartitionFigures, ShardFigures};
use crate::cluster::quorum::RaftFigures;
use crate::group::figures::{CommittedFigures, GroupFigures};
use crate::metadata::Catalog;
use crate::metrics::cluster_families as f;
use crate::metrics::{Exposition, Family};
use crate::server::broker::Broker;
use crate::server::http::api::{kafka, peers::Peers};
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

/// One shard's part of the families.
#[derive(Default)]
pub struct ClusterFigures {
    /// Shard 0 only: the node's figures.
    node: Option<NodeFigures>,
    partitions_led: u64,
    under_replicated: u64,
    under_min_isr: u64,
    /// Partitions this node leads whose log could not be opened.
    offline_logs_led: u64,
    isr_shrinks: u64,
    isr_expands: u64,
    /// The followers of the led partitions among the shard's first
    /// `limit` partitions.
    followers: Vec<FollowerFigures>,
    groups: Vec<GroupFigures>,
    /// With the partition's high watermark when known: from this node
    /// when it leads the partition, else from its leader.
    committed: Vec<(CommittedFigures, Option<i64>)>,
    /// Shard 0 only: committed partitions whose leader (another broker)
    /// did not answer within the deadline: no lag this scrape.
    lag_unavailable: u64,
}

struct NodeFigures {
    profile: String,
    /// Partitions without a live leader in this node's metadata.
    leaderless: u64,
    /// When this node runs a controller quorum voter.
    raft: Option<RaftFigures>,
}

struct FollowerFigures {
    topic: String,
    partition: i32,
    replica: i32,
    records: i64,
    seconds: f64,
}

/// This shard's part (on its own executor).
pub async fn gather(broker: &Rc<Broker>, limit: usize) -> ClusterFigures {
    let catalog = broker.catalog();
    let me = broker.config.broker.node_id;
    let mut figures = ClusterFigures::default();
    let mut held = broker.local_partitions();
    held.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
    for (i, p) in held.iter().enumerate() {
        let set = p.replica_state();
        if !set.is_leader() {
            continue;
        }
        figures.partitions_led += 1;
        if set.replicated {
            let min_isr = p.config().min_insync_replicas;
            figures.under_replicated += u64::from(set.isr.len() < set.replicas.len());
            figures.under_min_isr += u64::from((set.isr.len() as i64) < i64::from(min_isr));
        }
        if i < limit {
            for (replica, records, behind) in p.follower_lags() {
                figures.followers.push(FollowerFigures {
                    topic: p.topic.clone(),
                    partition: p.index,
                    replica,
                    records,
                    seconds: behind.as_secs_f64(),
                });
            }
        }
    }
    let cluster_mode = broker.cluster_mode();
    figures.offline_logs_led = broker
        .offline_partitions()
        .iter()
        .filter(|(topic, index)| !cluster_mode || leader_of(&catalog, topic, *index) == Some(me))
        .count() as u64;
    (figures.isr_shrinks, figures.isr_expands) = broker.replication.isr_changes();
    let (groups, committed) = broker.groups.figures(limit);
    figures.groups = groups;
    figures.committed = with_leader_ends(broker, &catalog, committed).await;
    if broker.shard() == ShardId(0) {
        figures.node = Some(NodeFigures {
            profile: broker.config.tuning.profile.clone(),
            leaderless: leaderless(&catalog),
            raft: broker
                .cluster()
                .and_then(|c| c.quorum.as_ref())
                .map(|q| q.figures()),
        });
    }
    figures
}

fn leader_of(catalog: &Catalog, topic: &str, index: i32) -> Option<i32> {
    let set = catalog
        .topics
        .get(topic)?
        .replicas
        .get(usize::try_from(index).ok()?)?;
    Some(set.leader)
}

/// Partitions of the metadata with no leader, or one that is fenced or
/// not registered (none on a single node: it has no replica sets).
fn leaderless(catalog: &Catalog) -> u64 {
    let live = |id: i32| catalog.brokers.get(&id).is_some_and(|b| !b.fenced);
    catalog
        .topics
        .values()
        .flat_map(|t| &t.replicas)
        .filter(|set| set.leader < 0 || !live(set.leader))
        .count() as u64
}

/// Pairs each committed offset with its partition's high watermark when
/// this node leads the partition, asking each owner shard once.
async fn with_leader_ends(
    broker: &Rc<Broker>,
    catalog: &Catalog,
    committed: Vec<CommittedFigures>,
) -> Vec<(CommittedFigures, Option<i64>)> {
    let owner = |c: &CommittedFigures| {
        let topic = catalog.topics.get(&c.topic)?;
        let shard = *topic.shards.get(usize::try_from(c.partition).ok()?)?;
        Some(shard as usize)
    };
    let mut asks: BTreeMap<usize, BTreeSet<(String, i32)>> = BTreeMap::new();
    for c in &committed {
        if let Some(shard) = owner(c) {
            asks.entry(shard)
                .or_default()
                .insert((c.topic.clone(), c.partition));
        }
    }
    let calls = asks.into_iter().map(|(shard, partitions)| async move {
        let partitions: Vec<(String, i32)> = partitions.into_iter().collect();
        let call = LeaderEnds {
            partitions: partitions.clone(),
        };
        let ends = broker.call(ShardId(shard), call).await;
        partitions.into_iter().zip(ends).collect::<Vec<_>>()
    });
    let ends: BTreeMap<(String, i32), Option<i64>> = futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    committed
        .into_iter()
        .map(|c| {
            let end = ends.get(&(c.topic.clone(), c.partition)).copied().flatten();
            (c, end)
        })
        .collect()
}

/// How long a scrape waits for another broker's ends (connect and
/// ListOffsets together): a broker that does not answer costs each scrape
/// at most this.
pub const REMOTE_ENDS_DEADLINE: Duration = Duration::from_secs(1);

/// Fills in the high watermarks of committed partitions another broker
/// leads, asking each such leader once (ListOffsets latest, as Kafka's
/// tools compute lag), all concurrently. Partitions of a broker that does
/// not answer keep no end (their lag is left out) and are counted in
/// `corelog_group_lag_unavailable`.
pub async fn with_remote_ends(broker: &Rc<Broker>, reports: &mut [ShardFigures]) {
    if !broker.cluster_mode() {
        return;
    }
    let catalog = broker.catalog();
    let me = broker.config.broker.node_id;
    let mut leaders: BTreeMap<(String, i32), i32> = BTreeMap::new();
    for (c, end) in reports.iter().flat_map(|r| &r.cluster.committed) {
        if end.is_some() {
            continue;
        }
        if let Some(leader) = leader_of(&catalog, &c.topic, c.partition) {
            if leader >= 0 && leader != me {
                leaders.insert((c.topic.clone(), c.partition), leader);
            }
        }
    }
    if leaders.is_empty() {
        return;
    }
    let peers = Peers::new(broker, REMOTE_ENDS_DEADLINE);
    let ends = kafka::list_offsets_at_leaders(&peers, &leaders, kafka::LATEST).await;
    let unavailable = peers.unavailable();
    let mut missing = 0;
    for (c, end) in reports.iter_mut().flat_map(|r| &mut r.cluster.committed) {
        let key = (c.topic.clone(), c.partition);
        let Some(leader) = leaders.get(&key) else {
            continue;
        };
        match ends.get(&key) {
            Some(Ok(high_watermark)) => *end = Some(*high_watermark),
            _ if unavailable.contains(leader) => missing += 1,
            // The leader answered with an error (it no longer leads it):
            // no lag this scrape, as for a partition led here but moving.
            _ => {}
        }
    }
    if let Some(first) = reports.first_mut() {
        first.cluster.lag_unavailable = missing;
    }
}

/// To a partition's owner shard: the high watermarks of `partitions`, in
/// order; None for one the shard does not hold or this node does not lead.
struct LeaderEnds {
    partitions: Vec<(String, i32)>,
}

impl ShardCall<Broker> for LeaderEnds {
    type Reply = Vec<Option<i64>>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        let ends = self
            .partitions
            .iter()
            .map(|(topic, index)| {
                let p = broker.partition(topic, *index)?;
                p.is_leader().then(|| p.high_watermark())
            })
            .collect();
        Box::pin(async move { ends })
    }
    /// A stopping shard: no ends (the lags are left out).
    fn unreachable(_: MeshError) -> Self::Reply {
        Vec::new()
    }
}

/// Renders the families from every shard's part; `partitions` are those
/// the per-partition families cover (follower lags follow them).
pub fn render(
    e: &mut Exposition,
    reports: &[ShardFigures],
    partitions: &[&PartitionFigures],
    limit: usize,
) {
    let parts: Vec<&ClusterFigures> = reports.iter().map(|r| &r.cluster).collect();
    let total = |value: fn(&ClusterFigures) -> u64| parts.iter().map(|c| value(c)).sum::<u64>();
    let node = parts.iter().find_map(|c| c.node.as_ref());
    let raft = node.and_then(|n| n.raft);
    let leaderless = node.map_or(0, |n| n.leaderless);

    e.family(&f::PARTITIONS_UNDER_REPLICATED)
        .int(&[], total(|c| c.under_replicated));
    e.family(&f::PARTITIONS_UNDER_MIN_ISR)
        .int(&[], total(|c| c.under_min_isr));
    e.family(&f::PARTITIONS_OFFLINE)
        .int(&[], leaderless + total(|c| c.offline_logs_led));
    e.family(&f::PARTITIONS_LEADER)
        .int(&[], total(|c| c.partitions_led));
    e.family(&f::ISR_SHRINKS).int(&[], total(|c| c.isr_shrinks));
    e.family(&f::ISR_EXPANDS).int(&[], total(|c| c.isr_expands));
    render_followers(e, &parts, partitions);
    e.family(&f::LEADER_ELECTIONS)
        .int(&[], raft.map_or(0, |r| r.elections));
    render_raft(e, raft);
    render_groups(e, &parts, limit);
    let mut w = e.family(&f::CONFIG_PROFILE);
    if let Some(node) = node {
        w.int(&[&node.profile], 1);
    }
}

fn render_followers(
    e: &mut Exposition,
    parts: &[&ClusterFigures],
    partitions: &[&PartitionFigures],
) {
    let covered: BTreeSet<(&str, i32)> = partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition))
        .collect();
    let mut followers: Vec<&FollowerFigures> = parts
        .iter()
        .flat_map(|c| &c.followers)
        .filter(|f| covered.contains(&(f.topic.as_str(), f.partition)))
        .collect();
    followers.sort_by(|a, b| {
        (&a.topic, a.partition, a.replica).cmp(&(&b.topic, b.partition, b.replica))
    });
    let labels: Vec<[String; 3]> = followers
        .iter()
        .map(|f| {
            [
                f.topic.clone(),
                f.partition.to_string(),
                f.replica.to_string(),
            ]
        })
        .collect();
    let mut w = e.family(&f::FOLLOWER_LAG_RECORDS);
    for (follower, [t, p, r]) in followers.iter().zip(&labels) {
        w.signed(&[t, p, r], follower.records);
    }
    let mut w = e.family(&f::FOLLOWER_LAG_SECONDS);
    for (follower, [t, p, r]) in followers.iter().zip(&labels) {
        w.float(&[t, p, r], follower.seconds);
    }
}

/// A quorum family and how to read it from the voter's figures.
type RaftColumn = (&'static Family, fn(&RaftFigures) -> i64);

/// The quorum's families: samples only on a node that runs a voter.
fn render_raft(e: &mut Exposition, raft: Option<RaftFigures>) {
    let gauges: [RaftColumn; 5] = [
        (&f::RAFT_TERM, |r| r.term as i64),
        (&f::RAFT_LEADER, |r| i64::from(r.leader)),
        (&f::RAFT_COMMIT_INDEX, |r| r.commit_index as i64),
        (&f::RAFT_APPLIED_INDEX, |r| r.applied_index as i64),
        (&f::RAFT_APPLY_LAG, |r| {
            r.commit_index.saturating_sub(r.applied_index) as i64
        }),
    ];
    for (family, value) in gauges {
        let mut w = e.family(family);
        if let Some(r) = &raft {
            w.signed(&[], value(r));
        }
    }
}

fn render_groups(e: &mut Exposition, parts: &[&ClusterFigures], limit: usize) {
    let mut groups: Vec<&GroupFigures> = parts.iter().flat_map(|c| &c.groups).collect();
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups.truncate(limit);
    let mut committed: Vec<&(CommittedFigures, Option<i64>)> =
        parts.iter().flat_map(|c| &c.committed).collect();
    committed.sort_by(|(a, _), (b, _)| {
        (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition))
    });
    committed.truncate(limit);

    let mut w = e.family(&f::GROUP_MEMBERS);
    for g in &groups {
        w.int(&[&g.id], g.members as u64);
    }
    let mut w = e.family(&f::GROUP_STATE);
    for g in &groups {
        w.int(&[&g.id, g.state], 1);
    }
    let labels: Vec<[String; 3]> = committed
        .iter()
        .map(|(c, _)| [c.group.clone(), c.topic.clone(), c.partition.to_string()])
        .collect();
    let mut w = e.family(&f::GROUP_COMMITTED_OFFSET);
    for ((c, _), [g, t, p]) in committed.iter().zip(&labels) {
        w.signed(&[g, t, p], c.offset);
    }
    let mut w = e.family(&f::GROUP_LAG);
    for ((c, end), [g, t, p]) in committed.iter().zip(&labels) {
        // A committed -1 is no position (as Kafka's tools show it).
        if let Some(end) = end.filter(|_| c.offset >= 0) {
            w.signed(&[g, t, p], end - c.offset);
        }
    }
    let mut w = e.family(&f::GROUP_REBALANCES);
    for g in &groups {
        w.int(&[&g.id], g.rebalances);
    }
    e.family(&f::GROUP_LAG_UNAVAILABLE)
        .int(&[], parts.iter().map(|c| c.lag_unavailable).sum());
}
