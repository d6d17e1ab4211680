//! `/metrics`: shard 0 asks every shard for its figures (a typed
//! cross-shard call, bounded by `limits::METRICS_SHARD_CALL_MS`), merges
//! them and renders the families of `crate::metrics::families`. Figures
//! are recorded where the work happens, in plain cells of each shard
//! (`Stats`, `ApiStats`, the mesh's counters, the partitions); a scrape
//! only reads them. The per-API families are rendered by `apis`, the
//! storage and scheduling ones by `storage`, replication, quorum and
//! group families by `cluster`.

mod apis;
mod cluster;
mod storage;

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;

use crate::limits;
use crate::log::progress::RecoveryProgress;
use crate::log::stats::StorageFigures;
use crate::metrics::families as f;
use crate::metrics::{Exposition, Family, HistogramSnapshot};
use crate::server::api_stats::ApiFigures;
use crate::server::broker::{Broker, ShardLoad};
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

/// To every shard: its figures, with at most `partition_limit` partitions
/// (its first by topic and partition: the node's first `limit` are among
/// the shards' first `limit`).
pub struct GatherFigures {
    pub partition_limit: usize,
}

/// One shard's figures at one moment.
pub struct ShardFigures {
    shard: usize,
    load: ShardLoad,
    cache_bytes: u64,
    cache_budget_bytes: u64,
    connections_open: u64,
    connections_accepted: u64,
    connections_refused: u64,
    /// Partitions the shard holds (all, not only those in `partitions`).
    partition_count: usize,
    apis: Vec<ApiFigures>,
    /// The shard's logs' fsyncs, rolls, retention and compaction.
    storage: StorageFigures,
    /// The scheduling probe's lateness.
    task_delay: HistogramSnapshot,
    partitions: Vec<PartitionFigures>,
    cluster: cluster::ClusterFigures,
}

struct PartitionFigures {
    topic: String,
    partition: i32,
    size_bytes: u64,
    start_offset: i64,
    end_offset: i64,
    high_watermark: i64,
    segments: usize,
    bytes_in: u64,
    records_in: u64,
    bytes_out: u64,
    records_out: u64,
}

impl ShardCall<Broker> for GatherFigures {
    type Reply = Option<ShardFigures>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            let mut report = figures(&broker, self.partition_limit);
            report.cluster = cluster::gather(&broker, self.partition_limit).await;
            Some(report)
        })
    }
    /// A stopping shard is left out of the scrape.
    fn unreachable(_: MeshError) -> Self::Reply {
        None
    }
}

/// This shard's figures (on its own executor: `Broker::load` reads the
/// current thread's).
fn figures(broker: &Broker, partition_limit: usize) -> ShardFigures {
    let stats = &broker.stats;
    let mut held = broker.local_partitions();
    let partition_count = held.len();
    held.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
    held.truncate(partition_limit);
    let partitions = held
        .iter()
        .map(|p| PartitionFigures {
            topic: p.topic.clone(),
            partition: p.index,
            size_bytes: p.size_bytes(),
            start_offset: p.log_start_offset(),
            end_offset: p.log_end_offset(),
            high_watermark: p.high_watermark(),
            segments: p.segment_count(),
            bytes_in: p.produced().bytes.get(),
            records_in: p.produced().records.get(),
            bytes_out: p.served().bytes.get(),
            records_out: p.served().records.get(),
        })
        .collect();
    ShardFigures {
        shard: broker.shard().0,
        load: broker.load(),
        cache_bytes: broker.cache_budget.used_bytes() as u64,
        cache_budget_bytes: broker.cache_budget.limit_bytes() as u64,
        connections_open: stats.connections_open.get(),
        connections_accepted: stats.connections.get(),
        connections_refused: stats.connections_refused.get(),
        partition_count,
        apis: stats.api.figures(),
        storage: crate::log::stats::figures(),
        task_delay: stats.sched_delay_histogram.snapshot(),
        partitions,
        cluster: Default::default(),
    }
}

/// Gathers every shard's figures and renders the scrape's text.
pub async fn scrape(broker: &Rc<Broker>, started: Instant) -> String {
    let limit = broker
        .broker_defaults(&broker.catalog())
        .metrics_partition_limit;
    let shards = broker.mesh().shard_count();
    let calls = (0..shards).map(|s| {
        let broker = broker.clone();
        async move {
            let call = async {
                broker
                    .call(
                        ShardId(s),
                        GatherFigures {
                            partition_limit: limit,
                        },
                    )
                    .await
            };
            let late = async {
                glommio::timer::sleep(Duration::from_millis(limits::METRICS_SHARD_CALL_MS)).await;
                log::warn!(
                    "metrics: shard {s} did not answer within {} ms; left out of this scrape",
                    limits::METRICS_SHARD_CALL_MS
                );
                None
            };
            futures_lite::future::or(call, late).await
        }
    });
    let mut reports: Vec<ShardFigures> = futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    cluster::with_remote_ends(broker, &mut reports).await;
    let node = Node {
        uptime: started.elapsed(),
        log_dir: &broker.config.data_dir,
        recovery: &broker.recovery,
    };
    render(&reports, limit, &node)
}

/// What a scrape renders of the node itself, besides the shards' figures.
struct Node<'a> {
    uptime: Duration,
    log_dir: &'a Path,
    recovery: &'a RecoveryProgress,
}

fn render(reports: &[ShardFigures], limit: usize, node: &Node) -> String {
    let mut e = Exposition::new();
    e.family(&f::BUILD_INFO)
        .int(&[env!("CARGO_PKG_VERSION")], 1);
    e.family(&f::UPTIME).float(&[], node.uptime.as_secs_f64());
    let mut partitions: Vec<&PartitionFigures> =
        reports.iter().flat_map(|r| &r.partitions).collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    partitions.truncate(limit);
    let held: usize = reports.iter().map(|r| r.partition_count).sum();
    e.family(&f::PARTITIONS_OMITTED)
        .int(&[], held.saturating_sub(partitions.len()) as u64);
    apis::render(&mut e, reports.iter().flat_map(|r| &r.apis));
    render_shards(&mut e, reports);
    storage::render_shards(&mut e, reports);
    storage::render_node(&mut e, node.log_dir, node.recovery);
    render_partitions(&mut e, &partitions);
    cluster::render(&mut e, reports, &partitions, limit);
    e.finish()
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// A family with one sample per shard, and how to read it from a report.
type ShardColumn = (&'static Family, fn(&ShardFigures) -> u64);
/// A family with one sample per partition, and how to read it.
type PartitionColumn = (&'static Family, fn(&PartitionFigures) -> i64);

fn render_shards(e: &mut Exposition, reports: &[ShardFigures]) {
    let shard_labels: Vec<String> = reports.iter().map(|r| r.shard.to_string()).collect();
    let mut w = e.family(&f::SHARD_REQUESTS);
    for (r, shard) in reports.iter().zip(&shard_labels) {
        w.int(&[shard, "produce"], r.load.requests_produce);
        w.int(&[shard, "fetch"], r.load.requests_fetch);
        w.int(&[shard, "other"], r.load.requests_other);
    }
    // Families with one sample per shard, whole or in seconds.
    let whole: [ShardColumn; 12] = [
        (&f::SHARD_PRODUCE_WAITS, |r| r.load.produce_waits),
        (&f::SHARD_FETCH_WAITS, |r| r.load.fetch_waits),
        (&f::SHARD_MESH_SENT, |r| r.load.mesh_sent),
        (&f::SHARD_MESH_RECEIVED, |r| r.load.mesh_received),
        (&f::SHARD_CACHE_USED, |r| r.cache_bytes),
        (&f::SHARD_CACHE_BUDGET, |r| r.cache_budget_bytes),
        (&f::SHARD_CONNECTIONS_OPEN, |r| r.connections_open),
        (&f::SHARD_CONNECTIONS_ACCEPTED, |r| r.connections_accepted),
        (&f::SHARD_CONNECTIONS_REFUSED, |r| r.connections_refused),
        (&f::SHARD_COMMIT_ROUNDS, |r| r.load.commit_rounds),
        (&f::SHARD_DISK_READ_BYTES, |r| r.load.disk_read_bytes),
        (&f::SHARD_PARTITIONS, |r| r.partition_count as u64),
    ];
    let timed: [ShardColumn; 5] = [
        (&f::SHARD_PRODUCE_WAIT, |r| r.load.produce_wait_us),
        (&f::SHARD_FETCH_WAIT, |r| r.load.fetch_wait_us),
        (&f::SHARD_MESH_DELAY, |r| r.load.mesh_delay_us),
        (&f::SHARD_BUSY, |r| r.load.busy_us),
        (&f::SHARD_CPU, |r| r.load.cpu_us),
    ];
    for (family, value) in whole {
        let mut w = e.family(family);
        for (r, shard) in reports.iter().zip(&shard_labels) {
            w.int(&[shard], value(r));
        }
    }
    for (family, value) in timed {
        let mut w = e.family(family);
        for (r, shard) in reports.iter().zip(&shard_labels) {
            w.float(&[shard], seconds(value(r)));
        }
    }
}

fn render_partitions(e: &mut Exposition, partitions: &[&PartitionFigures]) {
    let labels: Vec<(String, String)> = partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition.to_string()))
        .collect();
    let families: [PartitionColumn; 9] = [
        (&f::PARTITION_SIZE, |p| {
            i64::try_from(p.size_bytes).unwrap_or(i64::MAX)
        }),
        (&f::PARTITION_START, |p| p.start_offset),
        (&f::PARTITION_END, |p| p.end_offset),
        (&f::PARTITION_HIGH_WATERMARK, |p| p.high_watermark),
        (&f::PARTITION_SEGMENTS, |p| p.segments as i64),
        (&f::PARTITION_BYTES_IN, |p| {
            i64::try_from(p.bytes_in).unwrap_or(i64::MAX)
        }),
        (&f::PARTITION_RECORDS_IN, |p| {
            i64::try_from(p.records_in).unwrap_or(i64::MAX)
        }),
        (&f::PARTITION_BYTES_OUT, |p| {
            i64::try_from(p.bytes_out).unwrap_or(i64::MAX)
        }),
        (&f::PARTITION_RECORDS_OUT, |p| {
            i64::try_from(p.records_out).unwrap_or(i64::MAX)
        }),
    ];
    for (family, value) in families {
        let mut w = e.family(family);
        for (p, (topic, partition)) in partitions.iter().zip(&labels) {
            w.signed(&[topic, partition], value(p));
        }
    }
}
