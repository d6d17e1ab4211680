//! The per-shard broker: its partitions, its copy of the catalog, its mesh
//! endpoint, group committer and counters, and applying a new catalog (or
//! new static broker configs, from a reload) to them. The shard's life
//! cycle (start, accept loop, housekeeping, clean shutdown) is in
//! `lifecycle`.
//!
//! One per shard, reached through `Rc<Broker>`; never shared across threads.

mod lifecycle;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use glommio::TaskQueueHandle;

use super::catalog::CatalogOwner;
use crate::cluster::node::ClusterNode;
use crate::config::{BrokerDefaults, Config, TopicConfig};
use crate::log::CacheBudget;
use crate::metadata::{Catalog, TopicMeta};
use crate::partition::commit::Committer;
use crate::partition::replica::ReplicaState;
use crate::partition::Partition;
use crate::shard::mesh::{Mesh, ShardCall};
use crate::shard::ShardId;

pub use lifecycle::{run_shard, ShardStartError};

pub type ShardMesh = Mesh<Broker>;

/// Counters of one shard, printed at shutdown and read by tests.
#[derive(Default)]
pub struct Stats {
    pub produce_local: Cell<u64>,
    pub produce_forwarded: Cell<u64>,
    /// Partition reads of fetches served through this shard's connections:
    /// on this shard, or on the owner through the mesh.
    pub fetch_local: Cell<u64>,
    pub fetch_forwarded: Cell<u64>,
    /// Connections accepted (including refused ones).
    pub connections: Cell<u64>,
    /// Connections closed right after accept by `max.connections` or
    /// `max.connections.per.ip`.
    pub connections_refused: Counter,
    /// Connections closed after `connections.max.idle.ms` of silence.
    pub connections_idle_closed: Counter,
    /// Connections closed because a frame did not arrive in time.
    pub frames_timed_out: Counter,
    /// Requests whose handling panicked (their connection was closed).
    pub request_panics: Counter,
    /// Times freed heap memory was handed back to the kernel.
    pub memory_trims: Counter,
    /// Produce requests handled on this shard (the connection's shard).
    pub requests_produce: Counter,
    /// Fetch requests handled on this shard, consumers' and followers'.
    pub requests_fetch: Counter,
    /// Requests of every other API handled on this shard.
    pub requests_other: Counter,
    /// Produce requests with acks 1 or all that waited for their
    /// partitions' acknowledgements.
    pub produce_waits: Counter,
    /// Microseconds those produce requests waited, from routing their
    /// partitions until every partition answered (the owner's append, its
    /// group commit and, for acks=all, replication; cross-shard hops
    /// included).
    pub produce_wait_us: Counter,
    /// The part of `produce_wait_us` spent by acks=all requests.
    pub produce_acks_all_wait_us: Counter,
    /// Fetch requests that parked in a long poll (fewer than `min_bytes`
    /// were available).
    pub fetch_waits: Counter,
    /// Microseconds those fetches were parked waiting for data.
    pub fetch_wait_us: Counter,
    /// Microseconds the executor ran tasks or polled for I/O: glommio's
    /// `executor_stats()` hands over the run time since its last call and
    /// starts again from zero, so [`Broker::load`] adds each reading here.
    pub executor_busy_us: Counter,
    /// Wake-ups of the scheduling probe (see `lifecycle::scheduling_probe`).
    pub sched_probes: Counter,
    /// Over those wake-ups: microseconds the probe ran later than its timer
    /// was due, the time a request-queue task waited for the reactor.
    pub sched_delay_us: Counter,
    /// The longest such delay, in microseconds.
    pub sched_delay_max_us: Counter,
    /// Wake-ups later than `limits::SCHED_STALL_US`: a task or a reactor
    /// turn held the shard that long.
    pub sched_stalls: Counter,
    /// Those wake-ups' lateness, microseconds, as a histogram (metrics).
    pub sched_delay_histogram: crate::metrics::LatencyHistogram,
    /// Client connections this shard serves now (a gauge).
    pub connections_open: Cell<u64>,
    /// Requests, answers' error codes and latencies per API.
    pub api: super::api_stats::ApiStats,
}

/// A shard-local event counter.
#[derive(Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }

    pub fn add(&self, n: u64) {
        self.0.set(self.0.get().saturating_add(n));
    }

    /// Keeps the larger of the current value and `n`.
    pub fn raise_to(&self, n: u64) {
        self.0.set(self.0.get().max(n));
    }

    /// Adds the microseconds elapsed since `since`.
    pub fn add_elapsed_us(&self, since: std::time::Instant) {
        self.add(micros(since.elapsed()));
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// Whole microseconds of `d`, saturating.
pub fn micros(d: std::time::Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// What one shard did and what its requests waited for, read at once from
/// the counters that live where the work happens ([`Stats`], the mesh, the
/// committer, glommio's executor): the per-shard figures a throughput model
/// against core count is built from (bench/README.md, "The projection").
/// Printed in the `shard-stats` line at shutdown. Counts since the shard
/// started; times in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardLoad {
    /// Produce requests handled by this shard's connections.
    pub requests_produce: u64,
    /// Fetch requests handled by this shard's connections.
    pub requests_fetch: u64,
    /// Requests of all other APIs handled by this shard's connections.
    pub requests_other: u64,
    /// Wall time the executor ran tasks or polled for I/O (glommio's
    /// `total_runtime`), idle parking excluded: this shard's busy time. On
    /// a core shared with other threads it includes time the kernel gave
    /// the core to them; `cpu_us` does not.
    pub busy_us: u64,
    /// CPU time (user + system) of the shard's thread. The io_uring worker
    /// threads that run its fdatasyncs are not included (the process's
    /// total in /proc has them).
    pub cpu_us: u64,
    /// Time tasks of the request queue ran (requests, mesh calls served
    /// here, the group commit, replica fetchers).
    pub busy_requests_us: u64,
    /// Time tasks of the background queue ran (retention, scrubbing, group
    /// expiry).
    pub busy_background_us: u64,
    /// Cross-shard calls this shard sent.
    pub mesh_sent: u64,
    /// Cross-shard calls this shard served.
    pub mesh_received: u64,
    /// Over served calls: time from the caller's send to the start of the
    /// serving task here.
    pub mesh_delay_us: u64,
    /// The longest such delay.
    pub mesh_delay_max_us: u64,
    /// Group-commit rounds (one write + fdatasync per dirty partition each).
    pub commit_rounds: u64,
    /// Time spent in those rounds.
    pub commit_us: u64,
    /// Produce requests (acks 1 or all) that waited for acknowledgements.
    pub produce_waits: u64,
    /// Time those requests waited for every partition's acknowledgement.
    pub produce_wait_us: u64,
    /// The part of `produce_wait_us` spent by acks=all requests.
    pub produce_acks_all_wait_us: u64,
    /// Fetches that parked in a long poll.
    pub fetch_waits: u64,
    /// Time those fetches were parked.
    pub fetch_wait_us: u64,
    /// Reads of segment files (DMA) and the bytes they returned.
    pub disk_reads: u64,
    pub disk_read_bytes: u64,
    /// Wake-ups of the scheduling probe.
    pub sched_probes: u64,
    /// Total lateness of those wake-ups against their timers.
    pub sched_delay_us: u64,
    /// The latest wake-up.
    pub sched_delay_max_us: u64,
    /// Wake-ups later than `limits::SCHED_STALL_US`.
    pub sched_stalls: u64,
}

impl ShardLoad {
    /// The figures as `key=value` pairs for the `shard-stats` line, in a
    /// fixed order; keys are the field names.
    pub fn pairs(&self) -> [(&'static str, u64); 24] {
        [
            ("requests_produce", self.requests_produce),
            ("requests_fetch", self.requests_fetch),
            ("requests_other", self.requests_other),
            ("busy_us", self.busy_us),
            ("cpu_us", self.cpu_us),
            ("busy_requests_us", self.busy_requests_us),
            ("busy_background_us", self.busy_background_us),
            ("mesh_sent", self.mesh_sent),
            ("mesh_received", self.mesh_received),
            ("mesh_delay_us", self.mesh_delay_us),
            ("mesh_delay_max_us", self.mesh_delay_max_us),
            ("commit_rounds", self.commit_rounds),
            ("commit_us", self.commit_us),
            ("produce_waits", self.produce_waits),
            ("produce_wait_us", self.produce_wait_us),
            ("produce_acks_all_wait_us", self.produce_acks_all_wait_us),
            ("fetch_waits", self.fetch_waits),
            ("fetch_wait_us", self.fetch_wait_us),
            ("disk_reads", self.disk_reads),
            ("disk_read_bytes", self.disk_read_bytes),
            ("sched_probes", self.sched_probes),
            ("sched_delay_us", self.sched_delay_us),
            ("sched_delay_max_us", self.sched_delay_max_us),
            ("sched_stalls", self.sched_stalls),
        ]
    }
}

pub struct Broker {
    /// The configuration this process started with. Its dynamic broker
    /// configs may have changed since (a reload): read them through
    /// [`Broker::static_configs`] and [`Broker::broker_defaults`], never
    /// from `config.broker`.
    pub config: Config,
    /// The static broker configs in force: `config.broker`, with the
    /// dynamic keys a reload (SIGHUP, `server::reload`) changed since.
    /// Replaced by [`Broker::apply_static_configs`].
    static_configs: RefCell<Rc<BrokerDefaults>>,
    mesh: OnceCell<Rc<ShardMesh>>,
    /// Read-only copy of the catalog; replaced when shard 0 broadcasts.
    catalog: RefCell<Rc<Catalog>>,
    /// This shard's partitions by topic name, indexed by partition number.
    partitions: RefCell<HashMap<String, Vec<Option<Rc<Partition>>>>>,
    /// Partitions of this shard whose log could not be opened (an I/O
    /// error, unreadable files), with the reason: offline, so their
    /// requests get KAFKA_STORAGE_ERROR while the others serve. Retried
    /// at the next catalog change.
    offline: RefCell<HashMap<(String, i32), String>>,
    pub committer: Rc<Committer>,
    /// Memory for this shard's tail caches and read-ahead windows.
    pub cache_budget: Rc<CacheBudget>,
    pub stats: Stats,
    /// Only on shard 0: the writer of the catalog.
    pub owner: Option<CatalogOwner>,
    /// The queue for retention and other work that must not delay requests.
    pub background: TaskQueueHandle,
    /// The queue requests are served in (replica fetchers run there too:
    /// acks=all waits on them).
    pub requests: TaskQueueHandle,
    /// Follower fetchers and ISR changes of this shard's partitions.
    pub replication: crate::replication::Replication,
    /// The consumer groups this shard coordinates (see `group`).
    pub groups: crate::group::GroupCoordinator,
    /// The incremental fetch sessions of this shard's connections.
    pub fetch_sessions: RefCell<super::fetch_session::FetchSessionCache>,
    /// Only on shard 0 of a node in a cluster: its controller quorum part,
    /// registration and the client of the active controller.
    cluster: OnceCell<Rc<ClusterNode>>,
    /// The node's log recovery at start, counted by every shard as it
    /// opens partitions (the supervisor reports it).
    pub recovery: std::sync::Arc<crate::log::progress::RecoveryProgress>,
    /// This shard's ACL checks, built from its catalog copy's ACLs and
    /// rebuilt when they change (`docs/security/acls.md`).
    authorizer: RefCell<Rc<crate::acl::Authorizer>>,
}

impl Broker {
    /// This shard's load so far (see [`ShardLoad`]). Call on the shard's
    /// own executor: glommio's figures and the thread CPU time are the
    /// current thread's.
    pub fn load(&self) -> ShardLoad {
        let executor = glommio::executor();
        let queue_us = |queue| {
            executor
                .task_queue_stats(queue)
                .map(|q| micros(q.runtime()))
                .unwrap_or(0)
        };
        let mesh = self.mesh().counters();
        let stats = &self.stats;
        let (disk_reads, disk_read_bytes) = crate::io::dma_read_totals();
        ShardLoad {
            requests_produce: stats.requests_produce.get(),
            requests_fetch: stats.requests_fetch.get(),
            requests_other: stats.requests_other.get(),
            busy_us: {
                stats
                    .executor_busy_us
                    .add(micros(executor.executor_stats().total_runtime()));
                stats.executor_busy_us.get()
            },
            cpu_us: nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
                .map(|t| micros(t.into()))
                .unwrap_or(0),
            busy_requests_us: queue_us(self.requests),
            busy_background_us: queue_us(self.background),
            mesh_sent: mesh.sent(),
            mesh_received: mesh.received(),
            mesh_delay_us: mesh.delay_us(),
            mesh_delay_max_us: mesh.delay_max_us(),
            commit_rounds: self.committer.rounds(),
            commit_us: self.committer.round_us(),
            produce_waits: stats.produce_waits.get(),
            produce_wait_us: stats.produce_wait_us.get(),
            produce_acks_all_wait_us: stats.produce_acks_all_wait_us.get(),
            fetch_waits: stats.fetch_waits.get(),
            fetch_wait_us: stats.fetch_wait_us.get(),
            disk_reads,
            disk_read_bytes,
            sched_probes: stats.sched_probes.get(),
            sched_delay_us: stats.sched_delay_us.get(),
            sched_delay_max_us: stats.sched_delay_max_us.get(),
            sched_stalls: stats.sched_stalls.get(),
        }
    }

    pub fn shard(&self) -> ShardId {
        self.mesh().shard()
    }

    /// This node's cluster membership (shard 0 of a node with a quorum).
    pub fn cluster(&self) -> Option<&Rc<ClusterNode>> {
        self.cluster.get()
    }

    pub fn mesh(&self) -> &Rc<ShardMesh> {
        self.mesh.get().expect("mesh joined at start")
    }

    pub fn catalog(&self) -> Rc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// This shard's authorizer (checks nothing unless
    /// `authorizer.class.name` is set).
    pub fn authorizer(&self) -> Rc<crate::acl::Authorizer> {
        self.authorizer.borrow().clone()
    }

    /// The authorizer for `acls` under the static configs.
    fn build_authorizer<'a>(
        config: &BrokerDefaults,
        acls: impl IntoIterator<Item = &'a crate::acl::AclBinding>,
    ) -> crate::acl::Authorizer {
        let config = crate::acl::AuthorizerConfig::new(
            &config.authorizer_class_name,
            &config.super_users,
            config.allow_everyone_if_no_acl_found,
        );
        crate::acl::Authorizer::new(config, acls)
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        let partitions = self.partitions.borrow();
        partitions
            .get(topic)?
            .get(usize::try_from(index).ok()?)?
            .clone()
    }

    /// The static broker configs in force (the server file's, as of the
    /// last reload), without the catalog's dynamic ones.
    pub fn static_configs(&self) -> Rc<BrokerDefaults> {
        self.static_configs.borrow().clone()
    }

    /// The broker defaults in force: static configs with the catalog's
    /// dynamic broker configs on top (cluster-wide, then this broker's).
    pub fn broker_defaults(&self, catalog: &Catalog) -> BrokerDefaults {
        let node = self.config.broker.node_id;
        self.static_configs()
            .with_dynamic(&catalog.dynamic_broker_configs(node))
    }

    /// Makes `configs` the static broker configs of this shard (a reload)
    /// and resolves every partition's topic config again; the catalog's
    /// dynamic configs stay on top of them, as after a catalog change.
    pub fn apply_static_configs(&self, configs: BrokerDefaults) {
        *self.static_configs.borrow_mut() = Rc::new(configs);
        self.resolve_partition_configs(&self.catalog());
    }

    /// Gives each partition of this shard the topic config `catalog` and
    /// the broker defaults in force resolve for it, where that changed.
    fn resolve_partition_configs(&self, catalog: &Catalog) {
        let defaults = self.broker_defaults(catalog);
        for partition in self.all_partitions() {
            let Some(topic) = catalog.topics.get(&partition.topic) else {
                continue;
            };
            if topic.id != partition.topic_id {
                continue;
            }
            let config = TopicConfig::resolve(&defaults, &topic.configs);
            if partition.config() != config {
                partition.set_config(config);
            }
        }
    }

    pub fn topic_config(&self, catalog: &Catalog, topic: &TopicMeta) -> TopicConfig {
        TopicConfig::resolve(&self.broker_defaults(catalog), &topic.configs)
    }

    pub fn partition_count(&self) -> usize {
        self.partitions
            .borrow()
            .values()
            .flatten()
            .flatten()
            .count()
    }

    /// (topic, partition, bytes on disk) of every partition on this shard.
    pub fn partition_sizes(&self) -> Vec<(String, i32, u64)> {
        self.all_partitions()
            .iter()
            .map(|p| (p.topic.clone(), p.index, p.size_bytes()))
            .collect()
    }

    /// Whether this node is part of a cluster (a controller quorum runs the metadata).
    pub fn cluster_mode(&self) -> bool {
        self.config.cluster.has_quorum()
    }

    /// Every partition this shard holds (led or followed).
    pub fn local_partitions(&self) -> Vec<Rc<Partition>> {
        self.all_partitions()
    }

    fn all_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions
            .borrow()
            .values()
            .flatten()
            .flatten()
            .cloned()
            .collect()
    }

    /// Makes this shard's partitions match `catalog`: opens the new ones it
    /// owns, applies config changes and deletes the partitions of removed
    /// topics. The catalog copy is replaced once the partitions are open.
    /// With `Roles::FromCatalog` the partitions then take their replica
    /// sets from it; with `Roles::NotYet` (a cluster broker starting from
    /// its stored catalog, which may be stale) they stay unassigned until
    /// an image from the controller gives them roles.
    pub async fn apply_catalog(self: &Rc<Self>, catalog: Rc<Catalog>, roles: Roles) {
        let me = self.shard().0 as u32;
        let node = self.config.broker.node_id;
        let static_configs = self.static_configs();
        let defaults = self.broker_defaults(&catalog);
        let mut opened = Vec::new();
        for topic in catalog.topics.values() {
            let config = TopicConfig::resolve(&defaults, &topic.configs);
            for (index, &owner) in topic.shards.iter().enumerate() {
                if owner != me || !topic.is_replica(index, node) {
                    continue;
                }
                match self.partition(&topic.name, index as i32) {
                    Some(p) if p.topic_id == topic.id => {
                        if p.config() != config {
                            p.set_config(config.clone());
                        }
                    }
                    _ => {
                        let key = (topic.name.clone(), index as i32);
                        let opening = std::time::Instant::now();
                        match Partition::open(
                            &self.config.data_dir,
                            &topic.name,
                            index as i32,
                            topic.id,
                            config.clone(),
                            self.cache_budget.clone(),
                        )
                        .await
                        {
                            Ok(partition) => {
                                let bytes = partition.size_bytes();
                                log::debug!(
                                    "{}-{index}: log opened in {} ms: offsets [{}, {}), {}",
                                    topic.name,
                                    opening.elapsed().as_millis(),
                                    partition.log_start_offset(),
                                    partition.log_end_offset(),
                                    crate::log::progress::bytes_text(bytes)
                                );
                                self.recovery.opened(bytes);
                                self.offline.borrow_mut().remove(&key);
                                if self.cluster_mode() {
                                    // Published before its replica set is
                                    // applied: until then it must not act
                                    // as a single node's leader. Not a
                                    // leader, so no checkpoint to write.
                                    let none =
                                        partition.set_replica_state(ReplicaState::unassigned(node));
                                    debug_assert!(none.is_none());
                                }
                                opened.push(Rc::new(partition));
                            }
                            Err(e) => {
                                // One bad log takes its partition offline,
                                // not the broker.
                                log::error!(
                                    "cannot open {}-{index}, it is offline (requests get \
                                     KAFKA_STORAGE_ERROR): {e}",
                                    topic.name
                                );
                                self.recovery.failed();
                                self.offline.borrow_mut().insert(key, e.to_string());
                            }
                        }
                    }
                }
            }
        }
        let removed: Vec<Rc<Partition>> = {
            let mut partitions = self.partitions.borrow_mut();
            for p in opened {
                let slots = partitions.entry(p.topic.clone()).or_default();
                let index = p.index as usize;
                if slots.len() <= index {
                    slots.resize(index + 1, None);
                }
                slots[index] = Some(p);
            }
            let gone: Vec<String> = partitions
                .iter()
                .filter(|(name, slots)| {
                    let current = catalog.topics.get(*name);
                    slots
                        .iter()
                        .flatten()
                        .any(|p| current.is_none_or(|t| t.id != p.topic_id))
                })
                .map(|(name, _)| name.clone())
                .collect();
            let mut removed = Vec::new();
            for name in gone {
                let slots = partitions.remove(&name).unwrap_or_default();
                let current = catalog.topics.get(&name);
                let (keep, drop): (Vec<_>, Vec<_>) = slots
                    .into_iter()
                    .flatten()
                    .partition(|p| current.is_some_and(|t| t.id == p.topic_id));
                if !keep.is_empty() {
                    let mut slots = Vec::new();
                    for p in keep {
                        let index = p.index as usize;
                        if slots.len() <= index {
                            slots.resize(index + 1, None);
                        }
                        slots[index] = Some(p);
                    }
                    partitions.insert(name, slots);
                }
                removed.extend(drop);
            }
            removed
        };
        self.offline.borrow_mut().retain(|(name, index), _| {
            catalog
                .topics
                .get(name)
                .is_some_and(|t| *index < t.partition_count())
        });
        let acls_changed = self.catalog.borrow().acls != catalog.acls;
        *self.catalog.borrow_mut() = catalog.clone();
        if acls_changed {
            let authorizer = Self::build_authorizer(&static_configs, &catalog.acls);
            *self.authorizer.borrow_mut() = Rc::new(authorizer);
        }
        // A reload applied while partitions were opening above found
        // neither them nor this catalog: resolve their configs again.
        if !Rc::ptr_eq(&static_configs, &self.static_configs()) {
            self.resolve_partition_configs(&catalog);
        }
        for partition in removed {
            delete_partition(partition).await;
        }
        if roles == Roles::FromCatalog {
            self.apply_replica_sets(&catalog).await;
        }
    }

    /// Gives each partition of this shard its replica set from the catalog
    /// (leader, epoch, ISR), then starts the fetchers it now needs and
    /// moves group coordination with the offsets partitions' leadership.
    async fn apply_replica_sets(self: &Rc<Self>, catalog: &Catalog) {
        let me = self.config.broker.node_id;
        for partition in self.all_partitions() {
            let Some(topic) = catalog.topics.get(&partition.topic) else {
                continue;
            };
            let next = replica_state_in(topic, partition.index, me);
            self.replication
                .note_isr_change(&partition.replica_state(), &next);
            let was_leader = partition.is_leader();
            if let Some(checkpoint) = partition.set_replica_state(next) {
                if let Err(e) = partition.write_epochs(checkpoint).await {
                    log::error!("{}-{}: {e}", partition.topic, partition.index);
                }
            }
            if partition.topic == crate::group::OFFSETS_TOPIC && was_leader != partition.is_leader()
            {
                crate::group::GroupCoordinator::leadership_changed(self, partition.index).await;
            }
        }
        crate::replication::Replication::sync(self);
    }

    /// The partitions of this shard whose log could not be opened.
    pub fn offline_partitions(&self) -> Vec<(String, i32)> {
        self.offline.borrow().keys().cloned().collect()
    }

    /// Why a partition of this shard is offline (its log could not be
    /// opened), if it is.
    pub fn offline_reason(&self, topic: &str, index: i32) -> Option<String> {
        self.offline
            .borrow()
            .get(&(topic.to_string(), index))
            .cloned()
    }

    /// Makes `call` on shard `to`: a direct call when that is this shard, a
    /// mesh call otherwise. A shard that cannot be reached answers what the
    /// call's kind says it does (`ShardCall::unreachable`).
    pub async fn call<C: ShardCall<Broker>>(self: &Rc<Self>, to: ShardId, call: C) -> C::Reply {
        if to == self.shard() {
            call.serve(self.clone()).await
        } else {
            self.mesh()
                .call(to, call)
                .await
                .unwrap_or_else(C::unreachable)
        }
    }
}

/// Marks a partition deleted, closes its log if nothing else holds it and
/// removes its directory.
async fn delete_partition(partition: Rc<Partition>) {
    partition.mark_deleted();
    let dir = partition.dir().to_path_buf();
    if let Ok(partition) = Rc::try_unwrap(partition) {
        let _ = partition.close().await;
    }
    let removed = glommio::executor()
        .spawn_blocking(move || std::fs::remove_dir_all(&dir).map(|_| dir))
        .await;
    if let Err(e) = removed {
        log::warn!("could not remove a deleted partition's directory: {e}");
    }
}

/// Whether [`Broker::apply_catalog`] gives the partitions their roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roles {
    /// The catalog is current: lead and follow as it says.
    FromCatalog,
    /// The catalog may be stale: open the partitions without a role.
    NotYet,
}

/// This broker's part in partition `index` of `topic` (a single node's
/// partition when the topic has no replica sets).
fn replica_state_in(topic: &TopicMeta, index: i32, me: i32) -> ReplicaState {
    match topic.replicas.get(index as usize) {
        Some(set) => ReplicaState::in_set(me, set),
        None => ReplicaState::single(),
    }
}
