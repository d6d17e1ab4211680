//! The per-shard broker: its partitions, its copy of the catalog, its mesh
//! endpoint, group committer and counters, and applying a new catalog to
//! them. The shard's life cycle (start, accept loop, housekeeping, clean
//! shutdown) is in `lifecycle`.
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
}

/// A shard-local event counter.
#[derive(Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

pub struct Broker {
    pub config: Config,
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
}

impl Broker {
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

    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        let partitions = self.partitions.borrow();
        partitions
            .get(topic)?
            .get(usize::try_from(index).ok()?)?
            .clone()
    }

    /// The broker defaults in force: static configs with the catalog's
    /// dynamic broker configs on top.
    pub fn broker_defaults(&self, catalog: &Catalog) -> BrokerDefaults {
        self.config.broker.with_dynamic(&catalog.broker_configs)
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
        *self.catalog.borrow_mut() = catalog.clone();
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
