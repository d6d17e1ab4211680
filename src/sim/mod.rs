//! Deterministic simulation of a replicated cluster, in the manner of
//! FoundationDB's simulator and TigerBeetle's VOPR (docs/architecture.md,
//! "Simulation").
//!
//! One seed drives everything: 3 to 5 brokers, each with its own simulated
//! disk (`io::MemDisk`) and the real `Partition` code over it (log,
//! recovery, replication state, epoch cache, producer snapshots); three
//! controller voters on brokers 1-3 running the real quorum core
//! (`cluster::quorum::voter::QuorumCore` over `RaftFiles` on the node's
//! disk, `voters.rs`), whose active controller decides with the real rules
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
//! Partition 0 doubles as a `__consumer_offsets` partition: the client's
//! writes to it are offset commits, and the group coordinator's replay of
//! its current leader must give every acknowledged commit (`groups.rs`).
//! What is not simulated yet: controllers apart from brokers, group
//! membership, several shards per broker, and the TCP and Kafka wire layers
//! (docs/architecture.md section 11 has the full list).

mod brokers;
mod check;
mod client;
mod groups;
mod message;
pub mod net;
mod voters;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use uuid::Uuid;

use crate::clock;
use crate::cluster::quorum::voter::node_id;
use crate::cluster::records::{PartitionChange, Proposer};
use crate::config::TopicConfig;
use crate::io::MemDisk;
use crate::log::CacheBudget;
use crate::metadata::{BrokerRecord, Catalog, ReplicaSet, TopicMeta};
use crate::partition::replica::{Divergence, FetchedBatches, IsrChange, ReplicaState};
use crate::partition::{CommitWait, Partition, PartitionError, ReadLimit};
use net::{Net, NodeId, Rng, CLIENT};
use voters::{Voter, VOTERS};

pub use check::Violation;
use message::Message;

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
/// The producing client's request timeout (request.timeout.ms, scaled).
const PRODUCE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Steps of the healing phase at the end, without faults.
const HEAL_STEPS: u32 = 3_000;
/// Steps between two replays of the offsets partition.
const COMMITS_CHECK_EVERY: u32 = 16;

/// A bug planted on purpose, to show the checks catch its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Followers fetch again (and so report their log end to the leader,
    /// which counts it toward the high watermark) before what they appended
    /// is durable.
    FetchBeforeDurable,
    /// Controller voters acknowledge Raft entries (and vote) before the
    /// entries are durable, and never sync them.
    AckBeforeDurable,
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
    /// Acknowledged offset commits (partition 0 is the offsets partition).
    pub offset_commits: u64,
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
    sim.format().await;
    for step in 0..options.steps {
        sim.step(true).await;
        sim.check(step).await?;
    }
    sim.heal();
    for step in options.steps..options.steps + HEAL_STEPS {
        sim.step(false).await;
        sim.check(step).await?;
    }
    sim.final_check(options.steps + HEAL_STEPS).await?;
    Ok(sim.outcome())
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
    /// Whether the last heartbeat got an answer.
    heartbeat_answered: bool,
    /// The voter this broker believes leads (`ControllerClient`'s hint),
    /// else the next voter to try.
    controller_hint: Option<i32>,
    next_voter: usize,
    /// The controller voter of brokers 1 to 3 (combined mode).
    voter: Option<Voter>,
}

impl Process {
    /// The voter the next controller call goes to.
    fn controller(&self) -> i32 {
        self.controller_hint
            .unwrap_or(VOTERS[self.next_voter % VOTERS.len()])
    }

    /// A call went unanswered or was refused without a hint: try the next
    /// voter (`ControllerClient`).
    fn next_controller(&mut self, hint: Option<i32>) {
        match hint {
            Some(leader) => self.controller_hint = Some(leader),
            None => {
                self.controller_hint = None;
                self.next_voter += 1;
            }
        }
    }
}

struct Node {
    id: NodeId,
    disk: MemDisk,
    process: Option<Process>,
    /// When a crashed node starts again.
    down_until: Duration,
}

/// The client's view: what it produced and what was acknowledged.
#[derive(Default)]
struct Client {
    next_request: u64,
    /// Request id -> (partition, batch CRC, when it was sent).
    outstanding: BTreeMap<u64, (i32, u32, Duration)>,
}

struct Sim {
    trace: bool,
    rng: Rng,
    bug: Option<PlantedBug>,
    now: Duration,
    nodes: Vec<Node>,
    /// The cluster's first image (the topic's creation), which the voters
    /// are formatted with; replica lists never change after it.
    initial: Catalog,
    /// The newest image any voter applied (images are committed prefixes
    /// of one log), as clients and the checks see the controller.
    latest: Rc<Catalog>,
    /// Every committed controller entry any voter applied: index -> (term,
    /// CRC of its data). Raft's safety: one entry per index, ever.
    committed_entries: BTreeMap<u64, (u64, u32)>,
    /// A digest of the image each index produced on the voter that applied
    /// it first.
    images_at: BTreeMap<u64, u32>,
    /// A broken controller invariant found while a voter applied entries.
    voter_violation: Option<String>,
    net: Net<Message>,
    client: Client,
    partitions: i32,
    config: TopicConfig,
    checker: check::Checker,
    commits: groups::Commits,
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
            latest: Rc::new(image.clone()),
            initial: image,
            committed_entries: BTreeMap::new(),
            images_at: BTreeMap::new(),
            voter_violation: None,
            net,
            client: Client::default(),
            partitions,
            config,
            checker: check::Checker::default(),
            commits: groups::Commits::default(),
            stats: Outcome {
                brokers: brokers as usize,
                partitions: partitions as usize,
                ..Outcome::default()
            },
        }
    }

    /// Formats the voters' disks with the first image.
    async fn format(&mut self) {
        for node in self.nodes.iter().filter(|n| VOTERS.contains(&n.id)) {
            voters::format(&node.disk, &data_dir(node.id), &self.initial).await;
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
        for i in 0..self.nodes.len() {
            self.voter_duties(i).await;
        }
        self.publish();
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
            // 0 stands for the client.
            let a = if a == 0 { CLIENT } else { a };
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
        let topic = &self.initial.topics[TOPIC];
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
        let voter = if VOTERS.contains(&id) {
            match Voter::open(id, &node.disk, &data_dir(id)).await {
                Ok(voter) => Some(voter),
                Err(_) => {
                    // As a failed partition open: down a moment more.
                    node.down_until = self.now + Duration::from_millis(50);
                    return;
                }
            }
        } else {
            None
        };
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
            heartbeat_answered: true,
            controller_hint: None,
            next_voter: self.rng.below(VOTERS.len() as u64) as usize,
            voter,
        });
        self.checker.restarted(id);
        self.trace(|| format!("broker {id} starts"));
    }

    async fn deliver(&mut self, from: NodeId, to: NodeId, message: Message) {
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
                // The simulated brokers keep no broker list: the voters'
                // rule (no fenced broker joins an ISR) is the one checked.
                let read = p
                    .read_for_replica(
                        from,
                        offset,
                        ReadLimit::Upto(FETCH_MAX_BYTES),
                        leader_epoch,
                        true,
                    )
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
            message @ (Message::Heartbeat { .. } | Message::AlterIsr { .. } | Message::Raft(_)) => {
                self.voter_receive(i, from, message)
            }
            Message::HeartbeatAck(image) => {
                process_of(&mut self.nodes[i]).heartbeat_answered = true;
                if let Some(image) = image {
                    self.apply_image(i, &image).await;
                }
            }
            Message::NotController { leader } => {
                let process = process_of(&mut self.nodes[i]);
                process.heartbeat_answered = true;
                process.next_controller(leader.filter(|l| *l != from));
            }
            Message::ProduceReply { .. } => unreachable!("sent to the client only"),
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
}

fn process_of(node: &mut Node) -> &mut Process {
    node.process.as_mut().expect("up")
}

fn clock_advance(by: Duration) {
    clock::advance_simulated(by);
}
