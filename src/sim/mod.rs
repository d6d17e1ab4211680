//! Deterministic simulation of a replicated cluster, in the manner of
//! FoundationDB's simulator and TigerBeetle's VOPR (docs/architecture.md,
//! "Simulation").
//!
//! One seed drives everything: 3 to 5 brokers, each with its own simulated
//! disk (`io::MemDisk`) and the real `Partition` code over it (log,
//! recovery, replication state, epoch cache, producer snapshots); a
//! controller that decides with the real controller rules
//! (`cluster::records::apply`, `cluster::quorum::elections`, heartbeats and
//! session fencing as `cluster::quorum` does them); a producing client
//! (acks=all); and a network that delays, reorders, loses and cuts
//! messages. Time is simulated (`clock::Simulated`): it moves only when the
//! simulation moves it, so nothing depends on the machine's speed.
//!
//! Faults: broker crashes (power loss: unsynced bytes are lost or torn) and
//! restarts, failed fsyncs, lost and delayed messages, cut links. After
//! every step `check` verifies the invariants (no acknowledged or
//! consumer-visible record is lost, replicas agree below the high
//! watermark, one leader per partition epoch, epochs and high watermarks
//! never go back); at the end the faults stop, the cluster heals, and every
//! acknowledged record must be on every in-sync replica.
//!
//! The followers' side mirrors `replication::fetcher` step by step
//! (epoch check, cut, fetch, append, wait until durable, take the leader's
//! high watermark); the leaders' side calls what the Fetch handler calls.
//! What is not simulated yet: the Raft quorum between controllers (one
//! controller here, never failing), consumer groups, several shards per
//! broker, and the TCP and Kafka wire layers.

mod check;
pub mod net;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use uuid::Uuid;

use crate::clock;
use crate::cluster::quorum::elections;
use crate::cluster::records::{apply, MetadataRecord, PartitionChange, Proposer};
use crate::config::TopicConfig;
use crate::io::MemDisk;
use crate::log::CacheBudget;
use crate::metadata::{BrokerRecord, Catalog, ReplicaSet, TopicMeta};
use crate::partition::replica::{Divergence, FetchedBatches, IsrChange, ReplicaState};
use crate::partition::{CommitWait, Partition, PartitionError};
use net::{Net, NodeId, Rng, CLIENT, CONTROLLER};

pub use check::Violation;

const TOPIC: &str = "sim";
const TOPIC_ID: Uuid = Uuid::from_u128(0x5151_0000_0000_0000_0000_0000_0000_0001);
/// One simulated step.
const TICK: Duration = Duration::from_millis(1);
/// replica.lag.time.max.ms, scaled to the simulation.
const LAG_MAX: Duration = Duration::from_millis(150);
/// The controller fences a broker silent this long.
const SESSION_TIMEOUT: Duration = Duration::from_millis(120);
const HEARTBEAT_EVERY: Duration = Duration::from_millis(20);
/// A fetch or epoch query unanswered this long is given up (its connection
/// would time out) and asked again.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(60);
const FETCH_MAX_BYTES: usize = 4096;
/// Steps of the healing phase at the end, without faults.
const HEAL_STEPS: u32 = 3_000;

/// A bug planted on purpose, to show the checks catch its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Followers fetch again (and so report their log end to the leader,
    /// which counts it toward the high watermark) before what they appended
    /// is durable.
    FetchBeforeDurable,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Steps with faults, before the healing phase.
    pub steps: u32,
    pub bug: Option<PlantedBug>,
    /// Prints every event (a replay of a failing seed).
    pub trace: bool,
}

impl Options {
    pub fn new(seed: u64) -> Options {
        Options {
            seed,
            steps: 2_000,
            bug: None,
            trace: false,
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub brokers: usize,
    pub partitions: usize,
    pub produced: u64,
    pub acknowledged: u64,
    pub crashes: u64,
    pub failed_syncs: u64,
    pub cut_links: u64,
    pub leader_changes: u64,
    pub truncations: u64,
    pub messages: u64,
    /// A digest of the run's final state; equal for equal seeds.
    pub digest: u64,
}

/// Runs one seed on the current thread, which must be a glommio executor's
/// (the partition code uses its task primitives) and must not already run
/// on simulated time.
pub async fn run(options: Options) -> Result<Outcome, Violation> {
    let _time = clock::Simulated::start(1_700_000_000_000 + (options.seed % 1_000_000) as i64);
    let mut sim = Sim::new(&options);
    for step in 0..options.steps {
        sim.step(true).await;
        sim.check(step).await?;
    }
    sim.heal();
    for step in options.steps..options.steps + HEAL_STEPS {
        sim.step(false).await;
        sim.check(step).await?;
    }
    sim.final_check().await?;
    Ok(sim.outcome())
}

enum Message {
    Fetch {
        request: u64,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
    },
    FetchReply {
        request: u64,
        partition: i32,
        leader_epoch: i32,
        result: Result<(Bytes, i64), PartitionError>,
    },
    EpochQuery {
        request: u64,
        partition: i32,
        current_epoch: i32,
        epoch: i32,
    },
    EpochReply {
        request: u64,
        partition: i32,
        current_epoch: i32,
        result: Result<(i32, i64), PartitionError>,
    },
    AlterIsr {
        partition: i32,
        change: IsrChange,
        /// The proposing process (`records::Proposer`).
        incarnation: u64,
    },
    AlterIsrDone {
        partition: i32,
        change: IsrChange,
        applied: bool,
    },
    Heartbeat {
        incarnation: u64,
        image_version: u64,
    },
    Image(Rc<Catalog>),
    Produce {
        request: u64,
        partition: i32,
        batch: Bytes,
    },
    ProduceReply {
        request: u64,
        result: Result<i64, PartitionError>,
    },
}

impl Message {
    fn describe(&self) -> String {
        match self {
            Message::Fetch {
                partition,
                offset,
                leader_epoch,
                ..
            } => format!("fetch p{partition} from {offset} epoch {leader_epoch}"),
            Message::FetchReply {
                partition,
                leader_epoch,
                result,
                ..
            } => match result {
                Ok((records, hw)) => format!(
                    "fetched p{partition} epoch {leader_epoch}: {} bytes, hw {hw}",
                    records.len()
                ),
                Err(e) => format!("fetch p{partition} epoch {leader_epoch} failed: {e}"),
            },
            Message::EpochQuery {
                partition,
                current_epoch,
                epoch,
                ..
            } => format!("end of epoch {epoch} of p{partition}? (current {current_epoch})"),
            Message::EpochReply {
                partition, result, ..
            } => format!("p{partition} epoch end: {result:?}"),
            Message::AlterIsr {
                partition, change, ..
            } => {
                format!("alter ISR of p{partition}: {change:?}")
            }
            Message::AlterIsrDone {
                partition, applied, ..
            } => format!("ISR change of p{partition} applied: {applied}"),
            Message::Heartbeat { image_version, .. } => {
                format!("heartbeat (image v{image_version})")
            }
            Message::Image(image) => format!("image v{}", image.version),
            Message::Produce {
                request, partition, ..
            } => format!("produce #{request} to p{partition}"),
            Message::ProduceReply { request, result } => {
                format!("produce #{request}: {result:?}")
            }
        }
    }
}

/// A running broker process.
struct Process {
    incarnation: u64,
    partitions: BTreeMap<i32, Rc<Partition<MemDisk>>>,
    image_version: u64,
    /// Leader epoch each followed partition was checked for divergence in.
    checked: BTreeMap<i32, i32>,
    /// Partitions with a fetch or epoch query out: when it was sent and its
    /// id. An answer to an earlier one is dropped, as the fetcher's
    /// connection is closed when a request times out.
    asking: BTreeMap<i32, (Duration, u64)>,
    /// A follower's replicated append waiting to be durable, with the
    /// leader's high watermark to take after it.
    replicated: BTreeMap<i32, (CommitWait, i64)>,
    /// Produces waiting for acks=all: (request, partition, base offset).
    produces: Vec<(u64, i32, i64, CommitWait)>,
    /// ISR changes on their way to the controller, and when each was sent
    /// (the controller client gives up after `REQUEST_TIMEOUT`).
    isr_pending: BTreeMap<i32, (Duration, IsrChange)>,
    last_heartbeat: Duration,
}

struct Node {
    id: NodeId,
    disk: MemDisk,
    process: Option<Process>,
    /// When a crashed node starts again.
    down_until: Duration,
}

struct Controller {
    image: Catalog,
    /// The last heartbeat of each broker.
    seen: BTreeMap<i32, Duration>,
    index: u64,
    /// Every committed record, in order.
    log: Vec<MetadataRecord>,
}

impl Controller {
    fn propose(&mut self, record: MetadataRecord) -> bool {
        self.index += 1;
        let applied = apply(&mut self.image, &record, self.index).is_ok();
        if applied {
            self.log.push(record);
        }
        applied
    }

    /// `cluster::quorum`'s fence: the broker leads nothing, and leaves
    /// ISRs (the last member stays).
    fn fence(&mut self, id: i32) {
        self.propose(MetadataRecord::FenceBroker { id });
        let changes = elections(&self.image, false, |set| {
            set.leader == id || set.isr.contains(&id)
        });
        if !changes.is_empty() {
            self.propose(MetadataRecord::Partitions(changes));
        }
    }

    fn elect_leaderless(&mut self) {
        let changes = elections(&self.image, false, |set| set.leader == -1);
        if !changes.is_empty() {
            self.propose(MetadataRecord::Partitions(changes));
        }
    }
}

/// The client's view: what it produced and what was acknowledged.
#[derive(Default)]
struct Client {
    next_request: u64,
    /// Request id -> (partition, batch CRC).
    outstanding: BTreeMap<u64, (i32, u32)>,
}

struct Sim {
    trace: bool,
    rng: Rng,
    bug: Option<PlantedBug>,
    now: Duration,
    nodes: Vec<Node>,
    controller: Controller,
    net: Net<Message>,
    client: Client,
    partitions: i32,
    config: TopicConfig,
    checker: check::Checker,
    stats: Outcome,
}

fn data_dir(id: NodeId) -> PathBuf {
    PathBuf::from(format!("/broker-{id}"))
}

impl Sim {
    fn new(options: &Options) -> Sim {
        let mut rng = Rng::new(options.seed);
        let brokers = 3 + rng.below(3) as i32;
        let partitions = 1 + rng.below(3) as i32;
        let rf = 3;
        let mut image = Catalog::new("sim");
        let mut replicas = Vec::new();
        for p in 0..partitions {
            let set: Vec<i32> = (0..rf).map(|r| 1 + (p + r) % brokers).collect();
            replicas.push(ReplicaSet {
                isr: set.clone(),
                leader: set[0],
                leader_epoch: 0,
                partition_epoch: 0,
                replicas: set,
            });
        }
        let mut configs = BTreeMap::new();
        configs.insert("min.insync.replicas".to_string(), "2".to_string());
        image.topics.insert(
            TOPIC.to_string(),
            TopicMeta {
                name: TOPIC.to_string(),
                id: TOPIC_ID,
                shards: vec![0; partitions as usize],
                configs: configs.clone(),
                replicas,
            },
        );
        let mut config = TopicConfig::resolve(&Default::default(), &configs);
        // Small segments, so rolls, producer snapshots and several files
        // per partition happen within a run.
        config.segment_bytes = 16 * 1024;
        // The topic's creation is the first committed record.
        image.version = 1;
        let nodes = (1..=brokers)
            .map(|id| Node {
                id,
                disk: MemDisk::new(),
                process: None,
                down_until: Duration::ZERO,
            })
            .collect();
        let mut net = Net::new();
        net.loss_per_million = 5_000 + rng.below(20_000);
        net.delay_max = Duration::from_micros(500 + rng.below(4_000));
        Sim {
            trace: options.trace,
            rng,
            bug: options.bug,
            now: Duration::ZERO,
            nodes,
            controller: Controller {
                image,
                seen: BTreeMap::new(),
                index: 1,
                log: Vec::new(),
            },
            net,
            client: Client::default(),
            partitions,
            config,
            checker: check::Checker::default(),
            stats: Outcome {
                brokers: brokers as usize,
                partitions: partitions as usize,
                ..Outcome::default()
            },
        }
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>9.3} ms  {}", self.now.as_secs_f64() * 1e3, what());
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        self.trace(|| format!("{from} -> {to}: {}", message.describe()));
        self.stats.messages += 1;
        self.net.send(&mut self.rng, self.now, from, to, message);
    }

    async fn step(&mut self, faults: bool) {
        self.now += TICK;
        clock_advance(TICK);
        if faults {
            self.inject_faults();
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].process.is_none() && self.now >= self.nodes[i].down_until {
                self.start(i).await;
            }
        }
        while let Some((from, to, message)) = self.net.next_due(self.now) {
            self.trace(|| format!("{from} -> {to} delivered: {}", message.describe()));
            self.deliver(from, to, message).await;
        }
        self.controller_duties();
        for i in 0..self.nodes.len() {
            self.broker_duties(i).await;
        }
        self.client_duties(faults);
    }

    fn inject_faults(&mut self) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].process.is_some())
            .collect();
        if self.rng.chance(1_500) && !up.is_empty() {
            let i = up[self.rng.below(up.len() as u64) as usize];
            let torn = self.rng.chance(500_000).then(|| self.rng.next_u64());
            let down_for = Duration::from_millis(self.rng.below(400));
            self.crash(i, torn, down_for);
        }
        // An operator restarts a broker whose log went offline (a failed
        // fsync), after a while.
        for &i in &up {
            if self.failed_log(i) && self.rng.chance(5_000) {
                self.crash(i, None, Duration::ZERO);
            }
        }
        if self.rng.chance(2_000) && !up.is_empty() {
            let i = up[self.rng.below(up.len() as u64) as usize];
            self.nodes[i].disk.faults(|f| f.fail_syncs += 1);
            self.trace(|| format!("broker {}: the next fsync fails", i + 1));
            self.stats.failed_syncs += 1;
        }
        if self.rng.chance(1_000) {
            let a = self.rng.below(self.nodes.len() as u64 + 1) as i32;
            let b = 1 + self.rng.below(self.nodes.len() as u64) as i32;
            if a != b {
                self.trace(|| format!("link {a} - {b} cut"));
                self.net.cut_link(a, b);
                self.stats.cut_links += 1;
            }
        }
        if self.rng.chance(3_000) {
            self.net.heal();
        }
    }

    /// Power loss on broker `i`: what it did not fsync is lost (or torn),
    /// its connections die; it starts again after `down_for`.
    fn crash(&mut self, i: usize, torn: Option<u64>, down_for: Duration) {
        self.trace(|| format!("broker {} crashes (torn: {torn:?}) for {down_for:?}", i + 1));
        let node = &mut self.nodes[i];
        node.process = None;
        node.disk.crash(torn);
        node.down_until = self.now + down_for;
        let id = node.id;
        self.net.drop_node(id);
        self.stats.crashes += 1;
    }

    fn failed_log(&self, i: usize) -> bool {
        self.nodes[i]
            .process
            .as_ref()
            .is_some_and(|p| p.partitions.values().any(|p| p.is_failed()))
    }

    /// The end of the faults: links heal, crashed brokers come back,
    /// brokers whose log went offline are restarted, and messages are no
    /// longer lost.
    fn heal(&mut self) {
        self.net.heal();
        self.net.loss_per_million = 0;
        for i in 0..self.nodes.len() {
            self.nodes[i].disk.faults(|f| f.fail_syncs = 0);
            if self.failed_log(i) {
                self.crash(i, None, Duration::ZERO);
            }
            let node = &mut self.nodes[i];
            node.down_until = node.down_until.min(self.now);
        }
    }

    /// Starts (or restarts) broker `i`: opens its partitions from its disk,
    /// as a broker does at start-up, then waits for the controller's image.
    async fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let id = node.id;
        let mut partitions = BTreeMap::new();
        let image = &self.controller.image;
        let topic = &image.topics[TOPIC];
        for p in 0..self.partitions {
            if !topic.replicas[p as usize].replicas.contains(&id) {
                continue;
            }
            let opened = Partition::open_on(
                node.disk.clone(),
                &data_dir(id),
                TOPIC,
                p,
                TOPIC_ID,
                self.config.clone(),
                CacheBudget::disabled(),
            )
            .await;
            match opened {
                Ok(partition) => {
                    // `Broker::apply_catalog` with `Roles::NotYet`: a
                    // restarted broker takes roles only from an image
                    // that holds its new registration.
                    let _ = partition.set_replica_state(ReplicaState::unassigned(id));
                    partitions.insert(p, Rc::new(partition));
                }
                Err(_) => {
                    // An injected fsync failure hit recovery: the broker
                    // would take the partition offline; here it stays down
                    // and is started again a moment later.
                    node.down_until = self.now + Duration::from_millis(50);
                    return;
                }
            }
        }
        let incarnation = self.rng.next_u64();
        node.process = Some(Process {
            incarnation,
            partitions,
            image_version: 0,
            checked: BTreeMap::new(),
            asking: BTreeMap::new(),
            replicated: BTreeMap::new(),
            produces: Vec::new(),
            isr_pending: BTreeMap::new(),
            last_heartbeat: Duration::ZERO,
        });
        self.checker.restarted(id);
        self.trace(|| format!("broker {id} starts"));
    }

    fn controller_duties(&mut self) {
        let silent: Vec<i32> = self
            .controller
            .image
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, _)| *id)
            .filter(|id| {
                self.controller
                    .seen
                    .get(id)
                    .is_none_or(|t| self.now.saturating_sub(*t) > SESSION_TIMEOUT)
            })
            .collect();
        for id in silent {
            self.controller.fence(id);
        }
        self.publish();
    }

    /// Sends the image to brokers that have an older one (in the cluster,
    /// brokers fetch it from the controller's log).
    fn publish(&mut self) {
        if self.checker.image_changed(&self.controller.image) {
            self.stats.leader_changes += 1;
        }
        let image = Rc::new(self.controller.image.clone());
        for i in 0..self.nodes.len() {
            let (id, behind) = match &self.nodes[i].process {
                Some(p) => (self.nodes[i].id, p.image_version < image.version),
                None => continue,
            };
            if behind && self.rng.chance(100_000) {
                self.send(CONTROLLER, id, Message::Image(image.clone()));
            }
        }
    }

    async fn deliver(&mut self, from: NodeId, to: NodeId, message: Message) {
        if to == CONTROLLER {
            self.controller_receive(from, message);
            return;
        }
        if to == CLIENT {
            self.client_receive(message);
            return;
        }
        let i = (to - 1) as usize;
        if self.nodes[i].process.is_none() {
            return;
        }
        match message {
            Message::Image(image) => self.apply_image(i, &image).await,
            Message::Fetch {
                request,
                partition,
                offset,
                leader_epoch,
            } => {
                let Some(p) = self.partition(i, partition) else {
                    return;
                };
                let read = p
                    .read_for_replica(from, offset, FETCH_MAX_BYTES, leader_epoch)
                    .await;
                let result = match read {
                    Ok(read) => {
                        if let Some(change) = read.isr_change {
                            self.propose_isr(i, partition, change);
                        }
                        Ok((read.fetched.records, read.fetched.high_watermark))
                    }
                    Err(e) => Err(e),
                };
                let reply = Message::FetchReply {
                    request,
                    partition,
                    leader_epoch,
                    result,
                };
                self.send(to, from, reply);
            }
            Message::EpochQuery {
                request,
                partition,
                current_epoch,
                epoch,
            } => {
                let Some(p) = self.partition(i, partition) else {
                    return;
                };
                let result = p.end_offset_for_epoch(current_epoch, epoch);
                let reply = Message::EpochReply {
                    request,
                    partition,
                    current_epoch,
                    result,
                };
                self.send(to, from, reply);
            }
            Message::FetchReply {
                request,
                partition,
                leader_epoch,
                result,
            } => {
                if self.answers_current(i, partition, request) {
                    self.fetched(i, from, partition, leader_epoch, result).await
                }
            }
            Message::EpochReply {
                request,
                partition,
                current_epoch,
                result,
            } => {
                if self.answers_current(i, partition, request) {
                    self.epoch_answered(i, partition, current_epoch, result)
                        .await
                }
            }
            Message::AlterIsrDone {
                partition,
                change,
                applied,
            } => {
                let process = self.nodes[i].process.as_mut().expect("up");
                if process.isr_pending.get(&partition).map(|(_, c)| c) == Some(&change) {
                    process.isr_pending.remove(&partition);
                }
                self.trace(|| format!("ISR change of p{partition} applied: {applied}"));
            }
            Message::Produce {
                request,
                partition,
                batch,
            } => {
                let Some(p) = self.partition(i, partition) else {
                    return;
                };
                match p.append(&batch, -1) {
                    Ok((appended, Some(wait))) => {
                        let process = self.nodes[i].process.as_mut().expect("up");
                        process
                            .produces
                            .push((request, partition, appended.base_offset, wait));
                    }
                    Ok((appended, None)) => self.send(
                        to,
                        CLIENT,
                        Message::ProduceReply {
                            request,
                            result: Ok(appended.base_offset),
                        },
                    ),
                    Err(e) => self.send(
                        to,
                        CLIENT,
                        Message::ProduceReply {
                            request,
                            result: Err(e),
                        },
                    ),
                }
            }
            Message::Heartbeat { .. } | Message::AlterIsr { .. } | Message::ProduceReply { .. } => {
                unreachable!("sent to the controller or the client only")
            }
        }
    }

    fn partition(&self, i: usize, partition: i32) -> Option<Rc<Partition<MemDisk>>> {
        self.nodes[i]
            .process
            .as_ref()?
            .partitions
            .get(&partition)
            .cloned()
    }

    /// What `server::broker::apply_replica_sets` does with a new image.
    async fn apply_image(&mut self, i: usize, image: &Catalog) {
        let id = self.nodes[i].id;
        let process = self.nodes[i].process.as_mut().expect("up");
        if image.version <= process.image_version {
            return;
        }
        // `cluster::node::ClusterNode::follow`: only an image with this
        // process's registration in it.
        let incarnation = Uuid::from_u64_pair(process.incarnation, 0);
        if image.brokers.get(&id).map(|b| b.incarnation) != Some(incarnation) {
            return;
        }
        process.image_version = image.version;
        let partitions: Vec<(i32, Rc<Partition<MemDisk>>)> = process
            .partitions
            .iter()
            .map(|(p, partition)| (*p, partition.clone()))
            .collect();
        for (p, partition) in partitions {
            let set = &image.topics[TOPIC].replicas[p as usize];
            let next = ReplicaState {
                me: id,
                leader: set.leader,
                leader_epoch: set.leader_epoch,
                partition_epoch: set.partition_epoch,
                replicas: set.replicas.clone(),
                isr: set.isr.clone(),
                replicated: true,
            };
            self.trace(|| format!("broker {id} partition {p}: {next:?}"));
            if let Some(checkpoint) = partition.set_replica_state(next) {
                // A failed write is logged by the broker and the epoch
                // cache stays in memory; the same here.
                let _ = partition.write_epochs(checkpoint).await;
            }
        }
    }

    fn propose_isr(&mut self, i: usize, partition: i32, change: IsrChange) {
        let id = self.nodes[i].id;
        let now = self.now;
        let process = self.nodes[i].process.as_mut().expect("up");
        let pending = process.isr_pending.get(&partition).cloned();
        if let Some((sent, _)) = &pending {
            // The controller call times out after REQUEST_TIMEOUT.
            if now.saturating_sub(*sent) < REQUEST_TIMEOUT {
                return;
            }
        }
        let process = self.nodes[i].process.as_mut().expect("up");
        process.isr_pending.insert(partition, (now, change.clone()));
        let incarnation = process.incarnation;
        let alter = Message::AlterIsr {
            partition,
            change,
            incarnation,
        };
        self.send(id, CONTROLLER, alter);
    }

    fn controller_receive(&mut self, from: NodeId, message: Message) {
        match message {
            Message::Heartbeat {
                incarnation,
                image_version,
            } => {
                self.controller.seen.insert(from, self.now);
                let known = self.controller.image.brokers.get(&from).cloned();
                let incarnation = Uuid::from_u64_pair(incarnation, 0);
                let same_process = known.as_ref().is_some_and(|k| k.incarnation == incarnation);
                if !same_process {
                    self.controller.propose(MetadataRecord::RegisterBroker {
                        id: from,
                        broker: BrokerRecord {
                            host: "sim".into(),
                            port: from as u16,
                            incarnation,
                            fenced: false,
                        },
                    });
                    self.controller.elect_leaderless();
                } else if known.is_some_and(|k| k.fenced) {
                    self.controller
                        .propose(MetadataRecord::UnfenceBroker { id: from });
                    self.controller.elect_leaderless();
                }
                if image_version < self.controller.image.version {
                    let image = Rc::new(self.controller.image.clone());
                    self.send(CONTROLLER, from, Message::Image(image));
                }
            }
            Message::AlterIsr {
                partition,
                change,
                incarnation,
            } => {
                let change_incarnation = Uuid::from_u64_pair(incarnation, 0);
                // `server::catalog::alter_isr`, then the controller's check
                // of the partition epoch.
                let set = &self.controller.image.topics[TOPIC].replicas[partition as usize];
                let mut applied = false;
                if set.leader == from
                    && set.leader_epoch == change.leader_epoch
                    && set.partition_epoch == change.partition_epoch
                {
                    let record = MetadataRecord::Partitions(vec![PartitionChange {
                        topic: TOPIC.to_string(),
                        topic_id: TOPIC_ID,
                        partition: partition as usize,
                        set: ReplicaSet {
                            isr: change.isr.clone(),
                            ..set.clone()
                        },
                        expect_partition_epoch: Some(change.partition_epoch),
                        proposer: Some(Proposer {
                            broker: from,
                            incarnation: change_incarnation,
                        }),
                    }]);
                    applied = self.controller.propose(record);
                }
                let done = Message::AlterIsrDone {
                    partition,
                    change,
                    applied,
                };
                self.send(CONTROLLER, from, done);
            }
            _ => unreachable!("brokers send the controller heartbeats and ISR changes"),
        }
    }

    async fn broker_duties(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let now = self.now;
        let Some(process) = self.nodes[i].process.as_mut() else {
            return;
        };
        if now.saturating_sub(process.last_heartbeat) >= HEARTBEAT_EVERY {
            process.last_heartbeat = now;
            let heartbeat = Message::Heartbeat {
                incarnation: process.incarnation,
                image_version: process.image_version,
            };
            self.send(id, CONTROLLER, heartbeat);
        }
        let partitions: Vec<(i32, Rc<Partition<MemDisk>>)> = self.nodes[i]
            .process
            .as_ref()
            .expect("up")
            .partitions
            .iter()
            .map(|(p, partition)| (*p, partition.clone()))
            .collect();
        for (p, partition) in &partitions {
            // The shard's group commit, at a random pace.
            if partition.has_unflushed() && self.rng.chance(400_000) {
                if let Some(job) = partition.take_flush() {
                    partition.apply_flush(job.run(true).await).await;
                    self.trace(|| {
                        format!(
                            "broker {id} partition {p}: flushed to {} (log end {}, hw {})",
                            partition.flushed_offset(),
                            partition.log_end_offset(),
                            partition.high_watermark()
                        )
                    });
                }
            }
            // The leader's periodic ISR check.
            if self.rng.chance(50_000) {
                if let Some(change) = partition.isr_shrink_wanted(LAG_MAX) {
                    self.propose_isr(i, *p, change);
                }
            }
        }
        self.answer_produces(i);
        for (p, partition) in &partitions {
            self.follow(i, *p, partition);
        }
    }

    /// Answers the produces whose batches the high watermark passed.
    fn answer_produces(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let process = self.nodes[i].process.as_mut().expect("up");
        let mut answers = Vec::new();
        process
            .produces
            .retain_mut(|(request, _, base, wait)| match wait.try_recv() {
                Ok(None) => true,
                Ok(Some(result)) => {
                    answers.push((*request, result.map(|()| *base)));
                    false
                }
                Err(oneshot::Canceled) => {
                    answers.push((*request, Err(PartitionError::NotLeader)));
                    false
                }
            });
        for (request, result) in answers {
            self.send(id, CLIENT, Message::ProduceReply { request, result });
        }
    }

    /// One round of `replication::fetcher` for one followed partition.
    fn follow(&mut self, i: usize, p: i32, partition: &Rc<Partition<MemDisk>>) {
        let id = self.nodes[i].id;
        let now = self.now;
        let state = partition.replica_state();
        let Some(leader) = state.followed_leader() else {
            return;
        };
        let bug = self.bug;
        let process = self.nodes[i].process.as_mut().expect("up");
        if let Some((wait, hw)) = process.replicated.get_mut(&p) {
            match wait.try_recv() {
                Ok(None) if bug != Some(PlantedBug::FetchBeforeDurable) => return,
                Ok(None) => {}
                Ok(Some(Ok(()))) => partition.set_leader_high_watermark(*hw),
                Ok(Some(Err(_))) | Err(oneshot::Canceled) => {}
            }
            if bug == Some(PlantedBug::FetchBeforeDurable) {
                partition.set_leader_high_watermark(*hw);
            }
            process.replicated.remove(&p);
        }
        if let Some((sent, _)) = process.asking.get(&p) {
            if now.saturating_sub(*sent) < REQUEST_TIMEOUT {
                return;
            }
        }
        let request = self.rng.next_u64();
        let process = self.nodes[i].process.as_mut().expect("up");
        process.asking.insert(p, (now, request));
        let epoch = state.leader_epoch;
        let (latest, log_end) = partition.follower_position();
        let end = if bug == Some(PlantedBug::FetchBeforeDurable) {
            log_end
        } else {
            partition.flushed_offset()
        };
        let message = if process.checked.get(&p) != Some(&epoch) {
            match latest {
                Some(latest) => Message::EpochQuery {
                    request,
                    partition: p,
                    current_epoch: epoch,
                    epoch: latest,
                },
                None => {
                    process.checked.insert(p, epoch);
                    process.asking.remove(&p);
                    return;
                }
            }
        } else {
            Message::Fetch {
                request,
                partition: p,
                offset: end,
                leader_epoch: epoch,
            }
        };
        self.send(id, leader, message);
    }

    fn answers_current(&self, i: usize, p: i32, request: u64) -> bool {
        self.nodes[i]
            .process
            .as_ref()
            .and_then(|process| process.asking.get(&p))
            .is_some_and(|(_, current)| *current == request)
    }

    async fn epoch_answered(
        &mut self,
        i: usize,
        p: i32,
        current_epoch: i32,
        result: Result<(i32, i64), PartitionError>,
    ) {
        let Some(partition) = self.partition(i, p) else {
            return;
        };
        let process = self.nodes[i].process.as_mut().expect("up");
        process.asking.remove(&p);
        if partition.replica_state().leader_epoch != current_epoch {
            return;
        }
        let Ok((leader_epoch, end_offset)) = result else {
            return;
        };
        let divergence = partition.divergence(leader_epoch, end_offset);
        self.trace(|| {
            format!(
                "broker {} partition {p}: leader's epoch {leader_epoch} ends at {end_offset}: {divergence:?}",
                i + 1
            )
        });
        let cut = match divergence {
            Divergence::None => Ok(()),
            Divergence::CutFrom(cut) => partition.truncate(cut, false).await.map(|_| ()),
            Divergence::StartOver => partition.truncate(0, true).await.map(|_| ()),
        };
        if cut.is_ok() {
            self.stats.truncations += u64::from(partition.log_end_offset() < end_offset);
            let process = self.nodes[i].process.as_mut().expect("up");
            process.checked.insert(p, current_epoch);
        }
    }

    async fn fetched(
        &mut self,
        i: usize,
        leader: NodeId,
        p: i32,
        leader_epoch: i32,
        result: Result<(Bytes, i64), PartitionError>,
    ) {
        let Some(partition) = self.partition(i, p) else {
            return;
        };
        let process = self.nodes[i].process.as_mut().expect("up");
        process.asking.remove(&p);
        let state = partition.replica_state();
        if state.followed_leader() != Some(leader) || state.leader_epoch != leader_epoch {
            return;
        }
        match result {
            Ok((records, hw)) => {
                let Ok(fetched) = FetchedBatches::check(&records) else {
                    return;
                };
                if fetched.is_empty() {
                    partition.set_leader_high_watermark(hw);
                    return;
                }
                if let Some(text) = partition.note_epochs(&fetched) {
                    if partition.write_epochs(text).await.is_err() {
                        return;
                    }
                }
                match partition.append_replicated(leader, leader_epoch, &fetched) {
                    Ok(Some(wait)) => {
                        let process = self.nodes[i].process.as_mut().expect("up");
                        process.replicated.insert(p, (wait, hw));
                    }
                    Ok(None) => partition.set_leader_high_watermark(hw),
                    Err(_) => {
                        process_of(&mut self.nodes[i]).checked.remove(&p);
                    }
                }
            }
            Err(PartitionError::OffsetOutOfRange { start, .. }) => {
                let (_, end) = partition.follower_position();
                if end < start {
                    let _ = partition.truncate(start, true).await;
                } else {
                    process_of(&mut self.nodes[i]).checked.remove(&p);
                }
            }
            Err(PartitionError::FencedLeaderEpoch { .. })
            | Err(PartitionError::UnknownLeaderEpoch { .. }) => {
                process_of(&mut self.nodes[i]).checked.remove(&p);
            }
            Err(_) => {}
        }
    }

    fn client_duties(&mut self, faults: bool) {
        let rate = if faults { 150_000 } else { 50_000 };
        if !self.rng.chance(rate) || self.client.outstanding.len() >= 64 {
            return;
        }
        let p = self.rng.below(self.partitions as u64) as i32;
        // The client's metadata: the controller's image, as of a moment ago.
        let leader = self.controller.image.topics[TOPIC].replicas[p as usize].leader;
        if leader < 1 {
            return;
        }
        let request = self.client.next_request;
        self.client.next_request += 1;
        // One record, as a producer without idempotence sends it.
        let value = Bytes::from(format!("v{request}"));
        let batch = crate::group::records::batch(&[(value.clone(), Some(value))], clock::now_ms());
        let crc = crate::protocol::batch::BatchHeader::parse(&batch)
            .map(|h| h.crc)
            .expect("a batch the simulation built");
        self.client.outstanding.insert(request, (p, crc));
        self.stats.produced += 1;
        self.send(
            CLIENT,
            leader,
            Message::Produce {
                request,
                partition: p,
                batch,
            },
        );
    }

    fn client_receive(&mut self, message: Message) {
        let Message::ProduceReply { request, result } = message else {
            unreachable!("the client only gets produce answers");
        };
        let Some((p, crc)) = self.client.outstanding.remove(&request) else {
            return;
        };
        if let Ok(offset) = result {
            self.stats.acknowledged += 1;
            self.checker.acknowledged(p, offset, crc);
        }
    }

    async fn check(&mut self, step: u32) -> Result<(), Violation> {
        let views = self.views().await;
        let image = self.controller.image.clone();
        self.checker
            .step(step, &image, &views)
            .await
            .map_err(|mut v| {
                v.seed_state = self.describe();
                v
            })
    }

    async fn final_check(&mut self) -> Result<(), Violation> {
        let views = self.views().await;
        let image = self.controller.image.clone();
        self.checker.at_end(&image, &views).await.map_err(|mut v| {
            v.seed_state = self.describe();
            v
        })
    }

    /// Every running replica's state, for the checks.
    async fn views(&self) -> Vec<check::ReplicaView> {
        let mut views = Vec::new();
        for node in &self.nodes {
            let Some(process) = &node.process else {
                continue;
            };
            for (p, partition) in &process.partitions {
                views.push(check::ReplicaView::of(node.id, *p, partition).await);
            }
        }
        views
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "t={:?} controller image v{}:\n",
            self.now, self.controller.image.version
        );
        for (p, set) in self.controller.image.topics[TOPIC]
            .replicas
            .iter()
            .enumerate()
        {
            text.push_str(&format!("  partition {p}: {set:?}\n"));
        }
        for node in &self.nodes {
            match &node.process {
                None => text.push_str(&format!("  broker {}: down\n", node.id)),
                Some(process) => {
                    for (p, partition) in &process.partitions {
                        text.push_str(&format!(
                            "  broker {} partition {p}: {:?} log [{}, {}) flushed {} hw {}\n",
                            node.id,
                            partition.replica_state(),
                            partition.log_start_offset(),
                            partition.log_end_offset(),
                            partition.flushed_offset(),
                            partition.high_watermark(),
                        ));
                    }
                }
            }
        }
        text
    }

    fn outcome(&self) -> Outcome {
        let mut outcome = self.stats.clone();
        let mut digest = self.checker.digest();
        for record in &self.controller.log {
            digest = digest
                .wrapping_mul(0x100_0000_01b3)
                .wrapping_add(format!("{record:?}").len() as u64);
        }
        outcome.digest = digest ^ self.stats.messages;
        outcome
    }
}

fn process_of(node: &mut Node) -> &mut Process {
    node.process.as_mut().expect("up")
}

fn clock_advance(by: Duration) {
    clock::advance_simulated(by);
}
