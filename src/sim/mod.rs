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

mod check;
mod groups;
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
use crate::cluster::records::{MetadataRecord, PartitionChange, Proposer};
use crate::config::TopicConfig;
use crate::io::MemDisk;
use crate::log::CacheBudget;
use crate::metadata::{BrokerRecord, Catalog, ReplicaSet, TopicMeta};
use crate::partition::replica::{Divergence, FetchedBatches, IsrChange, ReplicaState};
use crate::partition::{CommitWait, Partition, PartitionError};
use net::{Net, NodeId, Rng, CLIENT};
use voters::{Then, Voter, VOTERS};

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
    /// The active controller's answer, with its image when the broker's is
    /// older.
    HeartbeatAck(Option<Rc<Catalog>>),
    /// A voter that does not lead refuses a heartbeat or an ISR change,
    /// naming the leader it knows.
    NotController {
        leader: Option<i32>,
    },
    Raft(Box<raft::prelude::Message>),
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
            Message::HeartbeatAck(image) => {
                format!(
                    "heartbeat ack (image {:?})",
                    image.as_ref().map(|i| i.version)
                )
            }
            Message::NotController { leader } => format!("not the controller (leader {leader:?})"),
            Message::Raft(m) => format!(
                "raft {:?} term {} index {} commit {} entries {}{}",
                m.get_msg_type(),
                m.term,
                m.index,
                m.commit,
                m.entries.len(),
                if m.reject { " rejected" } else { "" }
            ),
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

    /// One step of the voter on node `i`, if it runs one: Raft's tick, the
    /// active controller's session check, Raft's readies, and what the
    /// applied entries complete.
    async fn voter_duties(&mut self, i: usize) {
        let (id, now) = (self.nodes[i].id, self.now);
        let bug = self.bug == Some(PlantedBug::AckBeforeDurable);
        let Some(voter) = self.nodes[i]
            .process
            .as_mut()
            .and_then(|p| p.voter.as_mut())
        else {
            return;
        };
        voter.tick(now);
        voter.check_sessions(now, SESSION_TIMEOUT);
        let mut out = Vec::new();
        let driven = voter.drive(bug, &mut |m| out.push(m)).await;
        for message in out {
            self.send(id, node_id(message.to), Message::Raft(Box::new(message)));
        }
        match driven {
            Err(voters::Stopped(why)) => {
                // The real quorum shuts its process down; an operator
                // starts it again.
                self.trace(|| format!("voter {id} stops: {why}"));
                self.crash(i, None, Duration::from_millis(100));
            }
            Ok(done) => {
                for finished in done {
                    self.voter_finished(i, finished);
                }
            }
        }
    }

    /// Checks what voter `i` applied against what the others applied, and
    /// runs what follows its own applied proposals.
    fn voter_finished(&mut self, i: usize, finished: crate::cluster::quorum::voter::Finished) {
        let id = self.nodes[i].id;
        for entry in &finished.committed {
            let this = (entry.term, crc32c::crc32c(&entry.data));
            let first = *self.committed_entries.entry(entry.index).or_insert(this);
            if first != this && self.voter_violation.is_none() {
                self.voter_violation = Some(format!(
                    "controller entry {} committed as (term, crc) {first:?} and on voter {id} as {this:?}",
                    entry.index
                ));
            }
        }
        if let Some(image) = &finished.image {
            let digest = voters::image_digest(image);
            let first = *self.images_at.entry(image.version).or_insert(digest);
            if first != digest && self.voter_violation.is_none() {
                self.voter_violation = Some(format!(
                    "voter {id}'s image at index {} differs from another voter's",
                    image.version
                ));
            }
            if image.version > self.latest.version {
                self.latest = image.clone();
            }
        }
        for (proposal, result) in finished.applied {
            let voter = process_of(&mut self.nodes[i])
                .voter
                .as_mut()
                .expect("a voter");
            let Some(then) = voter.applied(proposal) else {
                continue;
            };
            let what = format!("voter {id}: applied {then:?}: {result:?}");
            let outcome = voter.follow_up(then, &result);
            self.trace(|| what);
            if let Some((broker, partition, change, applied)) = outcome {
                let done = Message::AlterIsrDone {
                    partition,
                    change,
                    applied,
                };
                self.send(id, broker, done);
            }
        }
    }

    /// Sends running voters' images to brokers that have an older one (in
    /// the cluster, brokers fetch it from a controller).
    fn publish(&mut self) {
        if self.checker.image_changed(&self.latest) {
            self.stats.leader_changes += 1;
        }
        for v in 0..self.nodes.len() {
            let image = match self.nodes[v]
                .process
                .as_ref()
                .and_then(|p| p.voter.as_ref())
            {
                Some(voter) => voter.core.image(),
                None => continue,
            };
            for i in 0..self.nodes.len() {
                let (id, behind) = match &self.nodes[i].process {
                    Some(p) => (self.nodes[i].id, p.image_version < image.version),
                    None => continue,
                };
                if behind && self.rng.chance(34_000) {
                    self.send(self.nodes[v].id, id, Message::Image(image.clone()));
                }
            }
        }
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
        let controller = process.controller();
        let alter = Message::AlterIsr {
            partition,
            change,
            incarnation,
        };
        self.send(id, controller, alter);
    }

    /// A message to the voter on node `i` (none: the broker is not a
    /// voter and ignores it, as a broker without a controller listener).
    fn voter_receive(&mut self, i: usize, from: NodeId, message: Message) {
        let (id, now) = (self.nodes[i].id, self.now);
        let Some(voter) = process_of(&mut self.nodes[i]).voter.as_mut() else {
            return;
        };
        let reply = match message {
            Message::Raft(message) => {
                // raft-rs asserts its own invariants by panicking (a commit
                // index past this voter's log: what it acknowledged is not
                // there); the simulation reports that as a violation.
                let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    voter.core.step(*message)
                }));
                if let Err(panic) = step {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    self.voter_violation.get_or_insert(format!(
                        "voter {id}: raft-rs refused a message from voter {from}: {what}"
                    ));
                }
                return;
            }
            Message::Heartbeat {
                incarnation,
                image_version,
            } => {
                let record = MetadataRecord::RegisterBroker {
                    id: from,
                    broker: BrokerRecord {
                        host: "sim".into(),
                        port: from as u16,
                        incarnation: Uuid::from_u64_pair(incarnation, 0),
                        fenced: false,
                    },
                };
                if voter.heartbeat(now, from, record) {
                    let image = voter.core.image();
                    Message::HeartbeatAck((image_version < image.version).then_some(image))
                } else {
                    Message::NotController {
                        leader: voter.core.leader(),
                    }
                }
            }
            Message::AlterIsr {
                partition,
                change,
                incarnation,
            } => {
                let image = voter.core.image();
                // `server::catalog::alter_isr`, then the controller's check
                // of the partition epoch.
                let set = &image.topics[TOPIC].replicas[partition as usize];
                if !voter.core.is_leader() {
                    Message::NotController {
                        leader: voter.core.leader(),
                    }
                } else if set.leader == from
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
                            incarnation: Uuid::from_u64_pair(incarnation, 0),
                        }),
                    }]);
                    let then = Then::IsrDone {
                        broker: from,
                        partition,
                        change,
                    };
                    if voter.propose(&record, then) {
                        return;
                    }
                    Message::NotController {
                        leader: voter.core.leader(),
                    }
                } else {
                    Message::AlterIsrDone {
                        partition,
                        change,
                        applied: false,
                    }
                }
            }
            _ => unreachable!("voters get Raft messages, heartbeats and ISR changes"),
        };
        self.send(id, from, reply);
    }

    async fn broker_duties(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let now = self.now;
        let Some(process) = self.nodes[i].process.as_mut() else {
            return;
        };
        if now.saturating_sub(process.last_heartbeat) >= HEARTBEAT_EVERY {
            process.last_heartbeat = now;
            if !process.heartbeat_answered {
                process.next_controller(None);
            }
            process.heartbeat_answered = false;
            let heartbeat = Message::Heartbeat {
                incarnation: process.incarnation,
                image_version: process.image_version,
            };
            let controller = process.controller();
            self.send(id, controller, heartbeat);
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
        // A producer gives up on a request after its timeout (the
        // leader that held it may have crashed, or the answer was lost):
        // its record may still be in the log, but it is not acknowledged.
        let now = self.now;
        self.client
            .outstanding
            .retain(|_, (_, _, sent)| now.saturating_sub(*sent) < PRODUCE_TIMEOUT);
        if !self.rng.chance(rate) || self.client.outstanding.len() >= 64 {
            return;
        }
        let p = self.rng.below(self.partitions as u64) as i32;
        // The client's metadata: the controller's image, as of a moment ago.
        let leader = self.latest.topics[TOPIC].replicas[p as usize].leader;
        if leader < 1 {
            return;
        }
        let request = self.client.next_request;
        self.client.next_request += 1;
        // One record, as a producer without idempotence sends it; to the
        // offsets partition, an offset commit as the group coordinator
        // writes it.
        let batch = if p == groups::OFFSETS_PARTITION {
            groups::commit_batch(request, clock::now_ms())
        } else {
            let value = Bytes::from(format!("v{request}"));
            crate::group::records::batch(&[(value.clone(), Some(value))], clock::now_ms())
        };
        let crc = crate::protocol::batch::BatchHeader::parse(&batch)
            .map(|h| h.crc)
            .expect("a batch the simulation built");
        self.client.outstanding.insert(request, (p, crc, now));
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
        let Some((p, crc, _)) = self.client.outstanding.remove(&request) else {
            return;
        };
        if let Ok(offset) = result {
            self.stats.acknowledged += 1;
            self.checker.acknowledged(p, offset, crc);
            if p == groups::OFFSETS_PARTITION {
                self.stats.offset_commits += 1;
                self.commits.acknowledged(request, offset);
            }
        }
    }

    async fn check(&mut self, step: u32) -> Result<(), Violation> {
        if let Some(what) = self
            .voter_violation
            .take()
            .or_else(|| self.voters_committed())
        {
            return Err(Violation {
                step,
                what,
                seed_state: self.describe(),
            });
        }
        let views = self.views().await;
        let image = self.latest.clone();
        self.checker
            .step(step, &image, &views)
            .await
            .map_err(|mut v| {
                v.seed_state = self.describe();
                v
            })?;
        // A replay of the whole offsets partition: every 16 steps is
        // often enough to see a commit lost between two leaders.
        if step.is_multiple_of(COMMITS_CHECK_EVERY) {
            self.check_commits(step, false).await?;
        }
        Ok(())
    }

    /// The group coordinator's view of the offsets partition on its
    /// current leader (the one the newest image names, once it leads in
    /// that epoch; `at_end` requires it): see `groups`.
    async fn check_commits(&self, step: u32, at_end: bool) -> Result<(), Violation> {
        let p = groups::OFFSETS_PARTITION;
        let set = &self.latest.topics[TOPIC].replicas[p as usize];
        let leader = self
            .nodes
            .iter()
            .position(|n| n.id == set.leader)
            .and_then(|i| {
                self.partition(i, p).filter(|partition| {
                    let state = partition.replica_state();
                    state.replicated
                        && state.leader == state.me
                        && state.leader_epoch == set.leader_epoch
                })
            });
        let result = match leader {
            Some(partition) => self.commits.check_leader(&partition).await,
            None if at_end => Err(format!(
                "partition {p}: no running leader in epoch {} after healing",
                set.leader_epoch
            )),
            None => Ok(()),
        };
        result.map_err(|what| Violation {
            step,
            what: format!("offsets partition {p}: {what}"),
            seed_state: self.describe(),
        })
    }

    async fn final_check(&mut self, step: u32) -> Result<(), Violation> {
        let views = self.views().await;
        let image = self.latest.clone();
        self.checker.at_end(&image, &views).await.map_err(|mut v| {
            v.seed_state = self.describe();
            v
        })?;
        self.check_commits(step, true).await
    }

    /// A running voter's committed index never goes back.
    fn voters_committed(&mut self) -> Option<String> {
        for node in &mut self.nodes {
            let Some(voter) = node.process.as_mut().and_then(|p| p.voter.as_mut()) else {
                continue;
            };
            let now = voter.core.committed();
            if now < voter.committed {
                return Some(format!(
                    "voter {}'s committed index went back from {} to {now}",
                    node.id, voter.committed
                ));
            }
            voter.committed = now;
        }
        None
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
            "t={:?} newest controller image v{}:\n",
            self.now, self.latest.version
        );
        for node in &self.nodes {
            if let Some(voter) = node.process.as_ref().and_then(|p| p.voter.as_ref()) {
                let raft = &voter.core.raft().raft;
                text.push_str(&format!(
                    "  voter {}: {:?} term {} last {} committed {} image v{}\n",
                    node.id,
                    raft.state,
                    raft.term,
                    raft.raft_log.last_index(),
                    raft.raft_log.committed,
                    voter.core.image().version
                ));
            }
        }
        for (p, set) in self.latest.topics[TOPIC].replicas.iter().enumerate() {
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
        for (index, (term, crc)) in &self.committed_entries {
            digest = digest
                .wrapping_mul(0x100_0000_01b3)
                .wrapping_add(index ^ term ^ u64::from(*crc));
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
