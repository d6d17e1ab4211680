//! The life cycle of one shard's broker: joining the mesh, preparing the
//! data directory, building the [`Broker`] and opening its partitions,
//! joining the cluster (shard 0), listening and accepting connections, the
//! background loops (housekeeping, memory trim, the scheduling probe) and
//! the clean shutdown that flushes and closes every log and prints the
//! shard's `shard-stats` line. The broker's state and what it answers
//! live in the parent module.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::{Latency, Shares, TaskQueueHandle};

use super::{Broker, Roles, ShardMesh, Stats};
use crate::cluster::node::ClusterNode;
use crate::config::{BrokerDefaults, Config};
use crate::limits;
use crate::log::progress::RecoveryProgress;
use crate::log::CacheBudget;
use crate::metadata::Catalog;
use crate::partition::commit::Committer;
use crate::partition::{now_ms, Partition};
use crate::server::catalog::CatalogOwner;
use crate::server::connection;
use crate::server::fetch_session::FetchSessionCache;
use crate::server::http::{self, HttpState};
use crate::server::reload::ReloadedConfigs;
use crate::shard::mesh::{self, HostReady, Mesh};
use crate::shard::shutdown;
use crate::shard::watch::{ShardWatch, Watch};

/// Why a shard could not start serving. The services below the broker
/// (cluster, groups) still report their failures as text; they are carried
/// as they come.
#[derive(Debug, thiserror::Error)]
pub enum ShardStartError {
    #[error("data directory {} is not usable: {source}", dir.display())]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot join the cluster: {0}")]
    JoinCluster(#[from] crate::cluster::node::JoinError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: glommio::GlommioError<()>,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen for HTTP on {addr} (http.listeners): {source}")]
    HttpListen {
        addr: SocketAddr,
        source: glommio::GlommioError<()>,
    },
}
/// The life of one shard: join the mesh, open partitions, listen, serve until
/// shutdown, then flush and close. Each phase is recorded in `watch`, so the
/// supervisor can name the phase of a shard that overruns the start bound.
pub async fn run_shard(
    config: Config,
    catalog: Catalog,
    mesh_builder: mesh::Builder<Broker>,
    watch: Arc<Watch>,
    me: Arc<ShardWatch>,
    recovery: Arc<RecoveryProgress>,
    reloaded: Arc<ReloadedConfigs>,
) -> Result<(), ShardStartError> {
    let executor = glommio::executor();
    // The supervisor's stall watchdog (`shard::watch`): the heartbeat it
    // reads, and the task its nudges wake.
    glommio::spawn_local(me.clone().keep_awake()).detach();
    glommio::spawn_local(me.clone().heartbeat()).detach();
    // Not Latency::Matters: that makes glommio arm and cancel a latency
    // timer on every reactor turn (two more io_uring operations each time),
    // which cost about 0.1 core and 0.1 ms of median produce latency at
    // 5,000 requests/s (tuning/README.md). Requests still win over the
    // background queue by shares, and background work yields within the
    // preempt timer (tuning `preempt_timer_ms`).
    let requests =
        executor.create_task_queue(Shares::Static(1000), Latency::NotImportant, "requests");
    let background =
        executor.create_task_queue(Shares::Static(50), Latency::NotImportant, "background");
    let broker_slot: Rc<OnceCell<Rc<Broker>>> = Rc::new(OnceCell::new());
    let slot = broker_slot.clone();
    // A peer may call while this shard is still preparing its disk (shard 0
    // joins the cluster and broadcasts the catalog while the others start):
    // its call waits for the broker, or for the stop that ends a start that
    // never completes.
    let host: HostReady<Broker> = Rc::new(move || {
        let slot = slot.clone();
        Box::pin(async move {
            loop {
                if let Some(broker) = slot.get() {
                    return Some(broker.clone());
                }
                if shutdown::requested() {
                    return None;
                }
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        })
    });
    me.enter("joining the mesh");
    // The join waits for every shard; one that never comes (its executor
    // could not start) must not keep this one from stopping.
    let joined = futures::future::select(
        Box::pin(Mesh::join(mesh_builder, requests, host)),
        Box::pin(async {
            while !shutdown::requested() {
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }),
    )
    .await;
    let mesh = match joined {
        futures::future::Either::Left((mesh, _)) => mesh,
        // Asked to stop (a signal, or another shard's failure, which that
        // shard reports): nothing was opened yet.
        futures::future::Either::Right(_) => {
            me.set_started();
            me.enter("stopped while joining the mesh");
            return Ok(());
        }
    };
    let shard = mesh.shard();
    // Shard 0 answers /health and /ready from here on, so an operator sees
    // what a long log recovery is waiting for.
    let http = match (shard.0, config.broker.http_listener.addr) {
        (0, Some(addr)) => {
            let state = HttpState::new(broker_slot.clone(), recovery.clone());
            let queue =
                executor.create_task_queue(Shares::Static(50), Latency::NotImportant, "http");
            match http::start(
                state.clone(),
                addr,
                queue,
                config.broker.http_console_enable,
            ) {
                Ok(task) => Some((state, task)),
                Err(source) => {
                    me.set_started();
                    shutdown::request();
                    return Err(ShardStartError::HttpListen { addr, source });
                }
            }
        }
        _ => None,
    };
    let started = match start(
        &config,
        catalog,
        mesh,
        Queues {
            background,
            requests,
        },
        &broker_slot,
        &me,
        recovery,
    )
    .await
    {
        // Shard 0 joins the cluster before any shard listens, so the first
        // Metadata a client gets already lists this broker.
        Ok(broker) if shard.0 == 0 && config.cluster.has_quorum() => {
            me.enter("joining the cluster");
            match ClusterNode::start(&config, broker.clone()).await {
                Ok(node) => {
                    let _ = broker.cluster.set(node);
                    Ok(broker)
                }
                Err(e) => Err(ShardStartError::JoinCluster(e)),
            }
        }
        other => other,
    };
    // Every shard reports, even one that failed, so the others stop
    // waiting; the supervisor bounds the whole start.
    if let Err(e) = &started {
        log::error!("shard {shard} failed to start: {e}");
        shutdown::request();
    }
    me.enter("waiting for the other shards");
    wait_for_all_shards(&watch, &me).await;
    let broker = started?;
    if shutdown::requested() {
        me.enter("stopping before it served");
        shutdown(&broker).await;
        return Ok(());
    }

    // Listen only once every shard serves: a connection accepted earlier
    // would wait on a shard that is still opening its partitions.
    me.enter("binding the listeners");
    let mut bound = Vec::new();
    for listener in config.client_listeners() {
        let socket = match TcpListener::bind(listener.bind) {
            Ok(socket) => socket,
            Err(e) => {
                shutdown::request();
                return Err(ShardStartError::Listen {
                    addr: listener.bind,
                    source: e,
                });
            }
        };
        // Checked on the main thread before any shard started: an error
        // here is a file that changed since.
        let tls = if listener.protocol.uses_tls() {
            match crate::tls::ServerTls::new(&config.ssl, &listener.name) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    shutdown::request();
                    return Err(ShardStartError::Tls(e));
                }
            }
        } else {
            None
        };
        let served = Rc::new(connection::ServedListener {
            name: listener.name.as_str().into(),
            protocol: listener.protocol,
            tls,
        });
        bound.push((socket, served));
    }
    let serving: Vec<String> = config
        .client_listeners()
        .iter()
        .map(|l| format!("{}://{} ({})", l.name, l.bind, l.protocol))
        .collect();
    if shard.0 == 0 {
        eprintln!(
            "corelog: serving Kafka on {} with {} shards, data in {}",
            serving.join(", "),
            broker.mesh().shard_count(),
            config.data_dir.display()
        );
    }
    me.enter("serving");
    if let Some((state, _)) = &http {
        state.set_serving();
    }
    let accepting =
        glommio::spawn_local_into(accept_loop(broker.clone(), bound, requests), requests)
            .expect("task queue exists");
    let housekeeping = glommio::spawn_local_into(housekeep_loop(broker.clone()), background)
        .expect("task queue exists");
    let group_sweep =
        glommio::spawn_local_into(crate::group::sweep_loop(broker.clone()), background)
            .expect("task queue exists");
    let isr_check = glommio::spawn_local_into(
        crate::replication::isr_shrink_loop(broker.clone()),
        background,
    )
    .expect("task queue exists");
    let probe = glommio::spawn_local_into(scheduling_probe(broker.clone()), requests)
        .expect("task queue exists");
    // The node's connection counts are one set: shard 0 tells them.
    let connection_summary = (shard.0 == 0).then(|| {
        glommio::spawn_local_into(connection_summary_loop(), background).expect("task queue exists")
    });
    let upkeep = {
        let defaults = &broker.config.broker;
        let upkeep = crate::partition::scrub::Upkeep {
            scrub_bytes_per_second: defaults.log_scrub_io_max_bytes_per_second,
            scrub_interval_ms: defaults.log_scrub_interval_ms,
            reserve_dir: (shard.0 == 0).then(|| config.data_dir.clone()),
        };
        let owner = broker.clone();
        glommio::spawn_local_into(
            crate::partition::scrub::upkeep_loop(move || owner.local_partitions(), upkeep),
            background,
        )
        .expect("task queue exists")
    };
    if shard.0 == 0 {
        log::info!(
            "node {}: serving clients on {}",
            config.broker.node_id,
            serving.join(", ")
        );
    }
    // The reload this shard applied last (0: none, the configs it started with).
    let mut reload_seen = 0;
    while !shutdown::requested() {
        if !shutdown::asked() {
            if let Some((generation, configs)) = reloaded.newer_than(reload_seen) {
                reload_seen = generation;
                broker.apply_static_configs(BrokerDefaults::clone(&configs));
            }
        }
        if shard.0 == 0 && shutdown::asked() {
            log::info!(
                "node {}: stopping: handing its work over",
                config.broker.node_id
            );
            me.enter("handing over");
            hand_over(&broker).await;
            shutdown::request();
            break;
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    me.enter("shutting down");
    drop(accepting);
    drop(housekeeping);
    drop(group_sweep);
    drop(isr_check);
    drop(upkeep);
    drop(probe);
    drop(connection_summary);
    drop(http);
    shutdown(&broker).await;
    me.enter("stopped");
    Ok(())
}

/// Counts this shard as started and waits for the others (or for a stop).
/// The supervisor bounds the wait: a shard that never starts ends the
/// process, so this needs no deadline of its own.
async fn wait_for_all_shards(watch: &Watch, me: &ShardWatch) {
    me.set_started();
    while watch.started() < watch.shards().len() && !shutdown::requested() {
        glommio::timer::sleep(Duration::from_millis(2)).await;
    }
    log::debug!("shard {}: all shards started", me.index());
}

/// A shard's two task queues.
struct Queues {
    background: TaskQueueHandle,
    requests: TaskQueueHandle,
}

async fn start(
    config: &Config,
    catalog: Catalog,
    mesh: Rc<ShardMesh>,
    queues: Queues,
    slot: &OnceCell<Rc<Broker>>,
    me: &ShardWatch,
    recovery: Arc<RecoveryProgress>,
) -> Result<Rc<Broker>, ShardStartError> {
    let Queues {
        background,
        requests,
    } = queues;
    me.enter("preparing the data directory");
    crate::io::prepare_disk(&config.data_dir)
        .await
        .map_err(|source| ShardStartError::DataDir {
            dir: config.data_dir.clone(),
            source,
        })?;
    let shard = mesh.shard();
    let shards = mesh.shard_count();
    let broker = Rc::new(Broker {
        config: config.clone(),
        static_configs: RefCell::new(Rc::new(config.broker.clone())),
        owner: (shard.0 == 0).then(|| CatalogOwner::new(&catalog, config.cluster.has_quorum())),
        cluster: OnceCell::new(),
        mesh: OnceCell::from(mesh),
        catalog: RefCell::new(Rc::new(Catalog {
            topics: Default::default(),
            ..catalog.clone()
        })),
        partitions: RefCell::new(HashMap::new()),
        offline: RefCell::new(HashMap::new()),
        committer: Committer::start(requests, config.tuning.group_commit_window()),
        cache_budget: CacheBudget::new(
            config.tuning.shard_memory_bytes,
            config.tuning.fetch_read_ahead_bytes,
        ),
        stats: Stats::default(),
        groups: crate::group::GroupCoordinator::new(),
        fetch_sessions: RefCell::new(FetchSessionCache::new(
            config.broker.max_incremental_fetch_session_cache_slots,
            shard.0,
            shards,
            uuid::Uuid::new_v4().as_u64_pair().0,
        )),
        background,
        requests,
        replication: Default::default(),
        recovery,
        authorizer: RefCell::new(Rc::new(Broker::build_authorizer(
            &config.broker,
            &catalog.acls,
        ))),
    });
    broker.stats.api.set_enabled(config.broker.metrics_enabled);
    crate::log::stats::set_enabled(config.broker.metrics_enabled);
    let _ = slot.set(broker.clone());
    if shutdown::requested() {
        return Ok(broker);
    }
    me.enter("opening partitions");
    // In a cluster the stored catalog may be older than the controller's
    // image (this broker was down meanwhile): leading from it could count
    // an ISR the previous process proposed and the controller changed
    // since. Roles come with the first image that holds this process's
    // registration (`cluster::node`), as a Kafka broker stays fenced until
    // it has caught up with the metadata log.
    let roles = if config.cluster.has_quorum() {
        Roles::NotYet
    } else {
        Roles::FromCatalog
    };
    broker.apply_catalog(Rc::new(catalog), roles).await;
    if shutdown::requested() {
        return Ok(broker);
    }
    me.enter("loading consumer groups");
    crate::group::GroupCoordinator::load(&broker).await;
    Ok(broker)
}

/// Accepts this shard's connections, refusing those past
/// `max.connections` / `max.connections.per.ip`, and hands freed memory back
/// to the kernel now and then (see `memory_trim_loop`).
async fn accept_loop(
    broker: Rc<Broker>,
    listeners: Vec<(TcpListener, Rc<connection::ServedListener>)>,
    requests: TaskQueueHandle,
) {
    let shard = Rc::new(connection::ShardConnections::new(&broker));
    let accepting = listeners.iter().map(|(socket, served)| {
        let (broker, shard) = (&broker, &shard);
        async move {
            loop {
                match socket.accept().await {
                    Ok(stream) => accept(broker, shard, stream, served, requests),
                    Err(e) => {
                        log::warn!("accept failed on listener {}: {e}", served.name);
                        // Out of file descriptors and the like: do not spin.
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    });
    futures_lite::future::zip(
        futures::future::join_all(accepting),
        memory_trim_loop(&broker, &shard),
    )
    .await;
}

/// Admits one accepted connection and starts serving it, or closes it at
/// once (counted, logged at most once a second per shard) when it is one
/// too many.
fn accept(
    broker: &Rc<Broker>,
    shard: &Rc<connection::ShardConnections>,
    stream: glommio::net::TcpStream,
    listener: &Rc<connection::ServedListener>,
    requests: TaskQueueHandle,
) {
    broker
        .stats
        .connections
        .set(broker.stats.connections.get() + 1);
    let Ok(peer) = stream.peer_addr() else {
        // Reset before we looked at it: nothing to serve.
        return;
    };
    let config = &broker.config.broker;
    let admitted = connection::ConnectionSlot::admit(
        peer.ip(),
        config.max_connections.max(0) as usize,
        config.max_connections_for(peer.ip()),
    );
    let slot = match admitted {
        Ok(slot) => slot,
        Err(refusal) => {
            broker.stats.connections_refused.bump();
            thread_local! {
                static LAST_LOGGED: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
            }
            let now = std::time::Instant::now();
            let log_now = LAST_LOGGED.with(|last| {
                let due = last
                    .get()
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
                if due {
                    last.set(Some(now));
                }
                due
            });
            if log_now {
                log::warn!(
                    "refusing connection from {peer}: {refusal} ({} refused on shard {} so far)",
                    broker.stats.connections_refused.get(),
                    broker.shard()
                );
            }
            // Dropping the stream closes it: the client sees a clean close.
            return;
        }
    };
    if let Err(e) = connection::set_buffer_sizes(&stream, &broker.config.tuning) {
        log::warn!("cannot set socket buffer sizes: {e}");
    }
    let (open, shard) = (OpenConnection::count(broker), shard.clone());
    let listener = listener.clone();
    glommio::spawn_local_into(
        async move {
            connection::serve(open.0.clone(), shard, stream, slot, listener).await;
            drop(open);
        },
        requests,
    )
    .expect("task queue exists")
    .detach();
}

/// One served connection in the shard's `connections_open` gauge, until
/// dropped (however its task ends).
struct OpenConnection(Rc<Broker>);

impl OpenConnection {
    fn count(broker: &Rc<Broker>) -> OpenConnection {
        let open = &broker.stats.connections_open;
        open.set(open.get() + 1);
        OpenConnection(broker.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let open = &self.0.stats.connections_open;
        open.set(open.get().saturating_sub(1));
    }
}

/// Gives freed heap memory back to the kernel after connections closed or
/// large frames were freed: without it the allocator keeps the pages of
/// thousands of closed connections' buffers (measured: ~100 MB after 5,000
/// idle connections closed, see `crate::memory`).
async fn memory_trim_loop(broker: &Rc<Broker>, shard: &connection::ShardConnections) {
    loop {
        glommio::timer::sleep(Duration::from_millis(limits::MEMORY_TRIM_INTERVAL_MS)).await;
        if shard.take_freed() {
            let started = std::time::Instant::now();
            let released = crate::memory::trim();
            log::debug!(
                "shard {}: malloc_trim took {:?} (released: {released})",
                broker.shard(),
                started.elapsed()
            );
            broker.stats.memory_trims.bump();
        }
    }
}

/// Shortens the interval of the connection summary (milliseconds, at
/// least 100, at most the default).
pub const CONNECTION_SUMMARY_ENV: &str = "CORELOG_CONNECTION_SUMMARY_MS";

/// Logs the node's client connections once per
/// `limits::CONNECTION_SUMMARY_INTERVAL_MS` when any opened, closed or was
/// refused: each connection is logged only at DEBUG, so a busy node's log
/// stays bounded (one line a minute).
async fn connection_summary_loop() {
    let max = limits::CONNECTION_SUMMARY_INTERVAL_MS;
    // A test (or an operator) may shorten the interval, never lengthen it.
    let ms = std::env::var(CONNECTION_SUMMARY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(max, |ms| ms.clamp(100, max));
    let interval = Duration::from_millis(ms);
    // Counting starts now (connections before serving were none).
    let _ = connection::take_counts();
    loop {
        glommio::timer::sleep(interval).await;
        let counts = connection::take_counts();
        if counts.opened == 0 && counts.closed == 0 && counts.refused == 0 {
            continue;
        }
        let refused = if counts.refused > 0 {
            format!(", {} refused", counts.refused)
        } else {
            String::new()
        };
        log::info!(
            "connections: {} opened, {} closed{refused} in the last {:.1} s; {} open",
            counts.opened,
            counts.closed,
            interval.as_secs_f64(),
            counts.open
        );
    }
}

/// Measures how late a task of the request queue runs once it is due:
/// sleeps `limits::SCHED_PROBE_INTERVAL_MS` and counts how far past its
/// timer it woke (a task that runs long, a busy reactor turn or a core
/// shared with other work all show here). glommio's own stall detector
/// would arm a timerfd at every task-queue switch and interrupt the shard
/// with a signal; a sampled probe costs a timer per interval.
async fn scheduling_probe(broker: Rc<Broker>) {
    let interval = Duration::from_millis(limits::SCHED_PROBE_INTERVAL_MS);
    let stats = &broker.stats;
    loop {
        let due = std::time::Instant::now() + interval;
        glommio::timer::sleep(interval).await;
        let late = super::micros(std::time::Instant::now().saturating_duration_since(due));
        stats.sched_probes.bump();
        stats.sched_delay_us.add(late);
        stats.sched_delay_max_us.raise_to(late);
        stats.sched_delay_histogram.record(late);
        if late > limits::SCHED_STALL_US {
            stats.sched_stalls.bump();
        }
    }
}

/// Rolls segments by segment.ms and applies retention, in the background queue.
async fn housekeep_loop(broker: Rc<Broker>) {
    let interval = Duration::from_millis(
        broker
            .config
            .broker
            .log_retention_check_interval_ms
            .clamp(100, 300_000),
    );
    loop {
        glommio::timer::sleep(interval).await;
        for partition in broker.all_partitions() {
            partition.housekeep(now_ms()).await;
            glommio::yield_if_needed().await;
        }
    }
}

/// What an operator's stop does on shard 0 while every shard still serves:
/// in a cluster, the controlled shutdown (Kafka's): the controller fences
/// this broker and moves its leaderships, and the node serves on until its
/// catalog shows them moved. A rolling restart then costs producers a
/// metadata refresh per partition, not a session timeout.
async fn hand_over(broker: &Rc<Broker>) {
    if let Some(node) = broker.cluster() {
        if node.shut_down().await {
            hand_over_leaderships(broker, node.node_id).await;
        }
    }
}

/// After the controller moved this node's leaderships away, keeps serving
/// (bounded) until this node's catalog shows them moved: until then its
/// partitions still act as leaders here, and once it does, their
/// producers and consumers are told NOT_LEADER_OR_FOLLOWER and find the
/// new leaders at once instead of timing out on a closed connection.
async fn hand_over_leaderships(broker: &Rc<Broker>, node_id: i32) {
    let leads_some = |catalog: &crate::metadata::Catalog| {
        catalog
            .topics
            .values()
            .any(|t| t.replicas.iter().any(|set| set.leader == node_id))
    };
    let started = std::time::Instant::now();
    let wait = Duration::from_millis(limits::LEADERSHIP_HANDOVER_WAIT_MS);
    let deadline = started + wait;
    while leads_some(&broker.catalog()) {
        if std::time::Instant::now() > deadline {
            log::warn!(
                "controlled shutdown: this node's catalog still shows it leading after {:?}; \
                 stopping",
                wait
            );
            return;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    // Clients that were producing here get NOT_LEADER_OR_FOLLOWER for a
    // moment before the connections close, and ask for metadata.
    glommio::timer::sleep(Duration::from_millis(limits::LEADERSHIP_HANDOVER_GRACE_MS)).await;
    log::info!(
        "controlled shutdown: leaderships moved to other brokers in {} ms",
        started.elapsed().as_millis()
    );
}

/// Waits (bounded) for pending flushes, closes every log it can, prints stats.
async fn shutdown(broker: &Rc<Broker>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline
        && (!broker.committer.is_idle()
            || broker.all_partitions().iter().any(|p| p.has_unflushed()))
    {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let partitions: Vec<Rc<Partition>> = broker
        .partitions
        .borrow_mut()
        .drain()
        .flat_map(|(_, v)| v)
        .flatten()
        .collect();
    let count = partitions.len();
    // Parked long-poll fetches hold their partition until they wake: wake
    // them now and give in-flight requests a bounded moment to finish, so
    // the logs can be closed cleanly.
    for partition in &partitions {
        partition.wake_fetches();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline && partitions.iter().any(|p| Rc::strong_count(p) > 1)
    {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let closing = std::time::Instant::now();
    for partition in partitions {
        let partition = match Rc::try_unwrap(partition) {
            Ok(partition) => partition,
            Err(shared) => {
                log::warn!(
                    "{}-{} is still in use at shutdown ({} holders): its log is left to recovery",
                    shared.topic,
                    shared.index,
                    Rc::strong_count(&shared)
                );
                continue;
            }
        };
        {
            let name = format!("{}-{}", partition.topic, partition.index);
            if let Err(e) = partition.close().await {
                log::warn!("{name}: close failed: {e}");
            }
        }
    }
    log::info!(
        "shard {}: closed {count} partitions in {} ms",
        broker.shard(),
        closing.elapsed().as_millis()
    );
    let sessions = broker.fetch_sessions.borrow();
    let mut load = String::new();
    for (key, value) in broker.load().pairs() {
        // The commit round count is printed with its older neighbours.
        if key != "commit_rounds" {
            load.push_str(&format!(" {key}={value}"));
        }
    }
    eprintln!(
        "shard-stats shard={} partitions={} produce_local={} produce_forwarded={} \
         fetch_local={} fetch_forwarded={} commit_rounds={} cache_hits={} cache_misses={} connections={} \
         connections_refused={} connections_idle_closed={} frames_timed_out={} \
         request_panics={} memory_trims={} fetch_sessions={} \
         fetch_session_partitions={} fetch_session_evictions={}{load}",
        broker.shard(),
        count,
        broker.stats.produce_local.get(),
        broker.stats.produce_forwarded.get(),
        broker.stats.fetch_local.get(),
        broker.stats.fetch_forwarded.get(),
        broker.committer.rounds(),
        broker.cache_budget.hits(),
        broker.cache_budget.misses(),
        broker.stats.connections.get(),
        broker.stats.connections_refused.get(),
        broker.stats.connections_idle_closed.get(),
        broker.stats.frames_timed_out.get(),
        broker.stats.request_panics.get(),
        broker.stats.memory_trims.get(),
        sessions.len(),
        sessions.partitions_cached(),
        sessions.evictions(),
    );
}
