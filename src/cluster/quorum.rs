//! The controller quorum on one controller node: a raft-rs `RawNode` driven
//! from shard 0's executor (ticks, storage and transport are ours), the
//! metadata image it applies, and the active controller's duties (broker
//! registration, heartbeats, fencing, partition leader elections).
//!
//! Every step Raft asks for is made durable (through the disk seam: DMA
//! writes and fdatasync on io_uring, so the shard's reactor never blocks on
//! an fsync) before its messages leave.
//!
//! The elections it proposes are computed in `elections.rs`; its ticks,
//! listener and peer links are in `quorum/network.rs`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};
use raft::prelude::Message;

use super::calls::{self, ControllerCall, HeartbeatAck, Refusal};
pub use super::elections::{elections, preferred_elections, ElectionOutcome, ELECTION_ATTEMPTS};

mod figures;
mod network;
pub mod voter;

use super::records::{self, MetadataRecord, Rejected};
use super::store::RaftFiles;
use super::transport::{self, Kind};
use crate::io::DmaDisk;
use crate::limits;
use crate::metadata::{BrokerRecord, Catalog, ReplicaSet};
use network::{accept_loop, peer_link, refuses_connections, tick_loop};
use voter::{node_id, raft_id, ElectionTicks, QuorumCore};

/// How a controller node runs its part of the quorum.
#[derive(Clone, Debug)]
pub struct QuorumSettings {
    pub node_id: i32,
    /// Every voter's controller address, this node's included.
    pub voters: Vec<(i32, SocketAddr)>,
    pub listen: SocketAddr,
    pub data_dir: std::path::PathBuf,
    pub tick: Duration,
    pub election_timeout: Duration,
    /// A broker whose heartbeats stop this long is fenced.
    pub session_timeout: Duration,
    /// unclean.leader.election.enable for topics that do not set it.
    pub unclean_leader_election: bool,
    /// A broker this late with its heartbeat is probed (see `check_sessions`).
    pub probe_after: Duration,
    /// This node's log directory id (meta.properties' `directory.id`).
    pub directory_id: Option<uuid::Uuid>,
}

/// The wire form of the requests this listener serves (defined with their
/// typed calls in `calls.rs`).
pub use super::calls::{ControllerRequest, QuorumStatus, ReplicaProgress};
pub use figures::RaftFigures;

/// Why the quorum could not start on this node, or stopped taking part (its
/// log cannot be read or written).
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("cannot open the metadata log: {0}")]
    OpenLog(std::io::Error),
    #[error("the metadata snapshot is damaged: {0}")]
    DamagedSnapshot(records::DecodeError),
    #[error("a received metadata snapshot is damaged: {0}")]
    ReceivedSnapshot(records::DecodeError),
    #[error("cannot listen on {addr} for controllers: {source}")]
    Listen {
        addr: SocketAddr,
        source: glommio::GlommioError<()>,
    },
    #[error("metadata log write failed: {0}")]
    LogWrite(std::io::Error),
    #[error("the metadata image cannot be encoded: {0}")]
    EncodeImage(serde_json::Error),
    /// raft-rs refused its configuration or the stored log.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// Told the record's log index once applied, or why it changed nothing.
type Waiter = oneshot::Sender<Result<u64, Rejected>>;
type ImageListener = Rc<dyn Fn(Rc<Catalog>)>;
/// A proposal waiting to be handed to Raft: (id, record bytes).
type Proposal = (u64, Vec<u8>);

pub struct Quorum {
    settings: QuorumSettings,
    /// Never borrowed across an await.
    core: RefCell<QuorumCore>,
    /// Taken while a write runs: one writer at a time.
    files: RefCell<Option<RaftFiles<DmaDisk>>>,
    peers: HashMap<u64, mpsc::Sender<Vec<u8>>>,
    waiting: RefCell<HashMap<u64, Waiter>>,
    next_proposal: Cell<u64>,
    driving: Cell<bool>,
    drive_again: Cell<bool>,
    /// Raft input gathered while a ready is being made durable: raft-rs
    /// must not be stepped, ticked or proposed to between `ready()` and
    /// `advance()`, so the drive loop feeds these in between readies.
    inbox: RefCell<std::collections::VecDeque<Message>>,
    ticks: Cell<u32>,
    proposals: RefCell<Vec<Proposal>>,
    listeners: RefCell<Vec<ImageListener>>,
    /// Active controller only: when each broker last heartbeated.
    broker_seen: RefCell<HashMap<i32, Instant>>,
    /// When each peer last sent us anything, and last matched our log.
    peer_seen: RefCell<HashMap<u64, (i64, i64)>>,
    /// Active controller only: each observer's (applied metadata offset,
    /// unix ms of its last heartbeat, unix ms when it was last caught up).
    observer_seen: RefCell<HashMap<i32, (u64, i64, i64)>>,
    was_leader: Cell<bool>,
    /// The active controller and epoch last logged, to log each change once.
    logged_leader: Cell<(Option<i32>, u64)>,
    /// Partition leader elections committed while active (`figures`).
    elections: Cell<u64>,
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn logger() -> slog::Logger {
    use slog::Drain;
    slog::Logger::root(slog_stdlog::StdLog.fuse(), slog::o!())
}

impl Quorum {
    /// Opens the log, starts the listener, peer links and the tick loop.
    pub async fn start(settings: QuorumSettings) -> Result<Rc<Quorum>, QuorumError> {
        let (files, loaded) = RaftFiles::open(DmaDisk, &settings.data_dir)
            .await
            .map_err(QuorumError::OpenLog)?;
        let voters: Vec<i32> = settings.voters.iter().map(|(id, _)| *id).collect();
        let ticks = |d: Duration| (d.as_millis() / settings.tick.as_millis().max(1)) as usize;
        let core = QuorumCore::new(
            settings.node_id,
            &voters,
            ElectionTicks::randomized(ticks(settings.election_timeout)),
            loaded,
            &logger(),
        )?;
        let listener =
            TcpListener::bind(settings.listen).map_err(|source| QuorumError::Listen {
                addr: settings.listen,
                source,
            })?;
        let mut peers = HashMap::new();
        let mut links = Vec::new();
        for (id, addr) in &settings.voters {
            if *id == settings.node_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(limits::CONTROLLER_PEER_QUEUE_MAX);
            peers.insert(raft_id(*id), tx);
            links.push((*addr, rx));
        }
        let quorum = Rc::new(Quorum {
            settings,
            core: RefCell::new(core),
            files: RefCell::new(Some(files)),
            peers,
            waiting: RefCell::new(HashMap::new()),
            next_proposal: Cell::new(1),
            driving: Cell::new(false),
            drive_again: Cell::new(false),
            inbox: RefCell::new(std::collections::VecDeque::new()),
            ticks: Cell::new(0),
            proposals: RefCell::new(Vec::new()),
            listeners: RefCell::new(Vec::new()),
            broker_seen: RefCell::new(HashMap::new()),
            peer_seen: RefCell::new(HashMap::new()),
            observer_seen: RefCell::new(HashMap::new()),
            was_leader: Cell::new(false),
            logged_leader: Cell::new((None, 0)),
            elections: Cell::new(0),
        });
        for (addr, rx) in links {
            glommio::spawn_local(peer_link(addr, rx)).detach();
        }
        glommio::spawn_local(accept_loop(quorum.clone(), listener)).detach();
        glommio::spawn_local(tick_loop(quorum.clone())).detach();
        Ok(quorum)
    }

    /// Calls `listener` with every new image (and once now).
    pub fn subscribe(&self, listener: ImageListener) {
        listener(self.image());
        self.listeners.borrow_mut().push(listener);
    }

    pub fn image(&self) -> Rc<Catalog> {
        self.core.borrow().image()
    }

    pub fn leader(&self) -> Option<i32> {
        self.core.borrow().leader()
    }

    fn is_leader(&self) -> bool {
        self.core.borrow().is_leader()
    }

    /// Commits `record` (only on the leader) and waits until it is applied.
    async fn propose(self: &Rc<Self>, record: &MetadataRecord) -> Result<u64, Refusal> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let id = self.next_proposal.get();
        self.next_proposal.set(id + 1);
        let data = serde_json::to_vec(record).expect("records serialize");
        let (tx, rx) = oneshot::channel();
        self.waiting.borrow_mut().insert(id, tx);
        self.proposals.borrow_mut().push((id, data));
        self.drive().await;
        let timeout = self.settings.election_timeout * 10;
        let result = glommio::timer::timeout(timeout, async { Ok(rx.await.map_err(|_| ())) }).await;
        self.waiting.borrow_mut().remove(&id);
        match result {
            Ok(Ok(applied)) => applied.map_err(Refusal::Rejected),
            // The waiter was dropped: leadership moved before it committed.
            Ok(Err(())) => Err(self.not_leader()),
            Err(_) => Err(Refusal::TimedOut),
        }
    }

    /// The refusal of a request only the active controller serves.
    fn not_leader(&self) -> Refusal {
        Refusal::NotLeader {
            leader: self.leader(),
        }
    }

    /// Handles Raft's pending work until there is none; one run at a time.
    async fn drive(self: &Rc<Self>) {
        if self.driving.replace(true) {
            self.drive_again.set(true);
            return;
        }
        loop {
            self.drive_again.set(false);
            self.feed_raft();
            if let Err(e) = self.process_ready().await {
                // The log cannot be written: stop taking part rather than
                // acknowledge what is not durable.
                log::error!("controller: {e}; this node leaves the quorum");
                crate::shard::shutdown::request();
                break;
            }
            let pending = !self.inbox.borrow().is_empty()
                || self.ticks.get() > 0
                || !self.proposals.borrow().is_empty();
            if !self.drive_again.get() && !pending && !self.core.borrow().has_ready() {
                break;
            }
        }
        self.driving.set(false);
    }

    /// Hands Raft the input gathered since the last ready.
    fn feed_raft(&self) {
        let mut raft = self.core.borrow_mut();
        for _ in 0..self.ticks.replace(0) {
            raft.tick();
        }
        let messages: Vec<Message> = self.inbox.borrow_mut().drain(..).collect();
        for message in messages {
            let from = message.from;
            if let Err(e) = raft.step(message) {
                log::debug!("controller: raft message from {from} ignored: {e}");
            }
        }
        let proposals = std::mem::take(&mut *self.proposals.borrow_mut());
        for (id, data) in proposals {
            if let Err(e) = raft.propose(id, data) {
                log::debug!("controller: proposal dropped: {e}");
                // Its caller hears NotLeader and retries elsewhere.
                self.waiting.borrow_mut().remove(&id);
            }
        }
        if !raft.is_leader() {
            // Proposals waiting on a node that lost leadership never commit
            // here: let their callers retry at the new leader.
            self.waiting.borrow_mut().clear();
        }
    }

    /// Runs one write on the files (taken out for its duration: one ready
    /// is processed at a time, and no borrow is held across the await).
    async fn with_files<T>(
        &self,
        job: impl AsyncFnOnce(&mut RaftFiles<DmaDisk>) -> std::io::Result<T>,
    ) -> Result<T, QuorumError> {
        let mut files = self
            .files
            .borrow_mut()
            .take()
            .expect("one ready is processed at a time");
        let result = job(&mut files).await;
        *self.files.borrow_mut() = Some(files);
        result.map_err(QuorumError::LogWrite)
    }

    /// Handles one Raft ready (the order is the core's): messages that may
    /// leave at once, the writes made durable, then what waited for them.
    async fn process_ready(self: &Rc<Self>) -> Result<(), QuorumError> {
        let Some((messages, pending)) = self.core.borrow_mut().begin()? else {
            return Ok(());
        };
        self.send(messages);
        self.with_files(async |f| voter::persist(f, &pending).await)
            .await?;
        let finished = self.core.borrow_mut().finish(pending)?;
        self.send(finished.messages);
        for (id, result) in finished.applied {
            let waiter = self.waiting.borrow_mut().remove(&id);
            if let Some(waiter) = waiter {
                let _ = waiter.send(result);
            }
        }
        if let Some(image) = finished.image {
            self.publish(image);
        }
        self.log_leader_change();
        self.maybe_compact().await
    }

    fn send(&self, messages: Vec<Message>) {
        for message in messages {
            let Some(peer) = self.peers.get(&message.to) else {
                continue;
            };
            let bytes = transport::encode(Kind::Raft, &transport::encode_raft_message(&message));
            // A full queue means the peer is unreachable: Raft resends.
            let _ = peer.clone().try_send(bytes);
        }
    }

    fn publish(&self, image: Rc<Catalog>) {
        let listeners = self.listeners.borrow().clone();
        for listener in listeners {
            listener(image.clone());
        }
    }

    /// Snapshots the image and trims the log once it holds enough entries.
    async fn maybe_compact(&self) -> Result<(), QuorumError> {
        let frames = self.files.borrow().as_ref().map_or(0, |f| f.frames());
        let Some((snapshot, kept)) = self.core.borrow().compaction(frames)? else {
            return Ok(());
        };
        self.with_files(async |f| f.save_snapshot(&snapshot, &kept).await)
            .await?;
        self.core.borrow_mut().compacted(snapshot)
    }

    /// Whether `message` comes from another voter of this quorum and is
    /// addressed to this node: Raft must never step a message from a node it
    /// does not know (anyone can connect to the controller listener).
    fn is_peer_message(&self, message: &Message) -> bool {
        message.to == raft_id(self.settings.node_id) && self.peers.contains_key(&message.from)
    }

    fn step(&self, message: Message) {
        let from = message.from;
        let now = unix_ms();
        {
            let mut seen = self.peer_seen.borrow_mut();
            let entry = seen.entry(from).or_insert((-1, -1));
            entry.0 = now;
        }
        let mut inbox = self.inbox.borrow_mut();
        if inbox.len() < limits::CONTROLLER_PEER_QUEUE_MAX {
            inbox.push_back(message);
        }
    }

    pub fn status(&self) -> QuorumStatus {
        let core = self.core.borrow();
        let raft = core.raft();
        let now = unix_ms();
        let leader_id = match raft.raft.leader_id {
            0 => -1,
            id => node_id(id),
        };
        let last = raft.raft.raft_log.last_index();
        let seen = self.peer_seen.borrow();
        let mut voters = Vec::new();
        for (id, _) in &self.settings.voters {
            let rid = raft_id(*id);
            let (leo, fetch, caught) = if *id == self.settings.node_id {
                (last, now, now)
            } else {
                let matched = raft.raft.prs().get(rid).map_or(0, |p| p.matched);
                let (fetch, caught) = seen.get(&rid).copied().unwrap_or((-1, -1));
                let caught = if matched >= last { fetch } else { caught };
                (matched, fetch, caught)
            };
            voters.push(ReplicaProgress {
                id: *id,
                log_end_offset: leo,
                last_fetch_ms: fetch,
                last_caught_up_ms: caught,
                directory_id: None,
            });
        }
        let image = self.image();
        // A voter's directory id: its registration's (this node's own from
        // its settings: a controller that is no broker registers none).
        for voter in &mut voters {
            voter.directory_id = if voter.id == self.settings.node_id {
                self.settings.directory_id
            } else {
                image.brokers.get(&voter.id).and_then(|b| b.directory_id)
            };
        }
        let mut observers: Vec<ReplicaProgress> = self
            .observer_seen
            .borrow()
            .iter()
            .filter(|(id, _)| image.brokers.get(id).is_some_and(|b| !b.fenced))
            .map(|(id, &(offset, fetch, caught))| ReplicaProgress {
                id: *id,
                log_end_offset: offset,
                last_fetch_ms: fetch,
                last_caught_up_ms: caught,
                directory_id: image.brokers.get(id).and_then(|b| b.directory_id),
            })
            .collect();
        observers.sort_by_key(|o| o.id);
        QuorumStatus {
            leader_id,
            leader_epoch: raft.raft.term,
            high_watermark: raft.raft.raft_log.committed,
            voters,
            observers,
        }
    }

    /// Serves one request; the reply frame, encoded as the reply of the
    /// request's call type.
    async fn handle(self: &Rc<Self>, request: ControllerRequest) -> Vec<u8> {
        match request {
            ControllerRequest::Status => {
                let status = if self.is_leader() {
                    Ok(self.status())
                } else {
                    Err(self.not_leader())
                };
                calls::encode_reply::<calls::Status>(&status)
            }
            ControllerRequest::Image { since } => {
                let image = self.image();
                let newer = (image.version > since).then(|| Box::new((*image).clone()));
                calls::encode_reply::<calls::Image>(&Ok(newer))
            }
            ControllerRequest::Propose(record) => {
                let applied = match records::validate_record(&record) {
                    // The level is the active controller's to finalize, from
                    // what every broker registered (`finalize_features`).
                    Ok(()) if matches!(record, MetadataRecord::FinalizeFeatures { .. }) => {
                        Err(Refusal::Rejected(Rejected::Invalid(format!(
                            "{} is finalized by the active controller once every broker \
                             supports it",
                            crate::features::METADATA_VERSION_FEATURE
                        ))))
                    }
                    Ok(()) => self.propose(&record).await,
                    Err(e) => Err(Refusal::Rejected(Rejected::Invalid(e.to_string()))),
                };
                calls::encode_reply::<calls::Propose>(&applied)
            }
            ControllerRequest::ElectPreferred(wanted) => {
                let outcomes = self.elect_preferred(wanted).await;
                calls::encode_reply::<calls::ElectPreferred>(&outcomes)
            }
            ControllerRequest::Heartbeat {
                id,
                broker,
                shutting_down,
                metadata_offset,
            } => {
                self.observe(id, metadata_offset);
                let ack = self.heartbeat(id, broker, shutting_down).await;
                calls::encode_reply::<calls::Heartbeat>(&ack)
            }
        }
    }

    /// Commits the preferred leaders of `wanted` (all partitions when
    /// `None`) and says what became of each.
    async fn elect_preferred(
        self: &Rc<Self>,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Result<<calls::ElectPreferred as ControllerCall>::Reply, Refusal> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let image = self.image();
        let (changes, outcomes) = preferred_elections(&image, wanted.as_deref());
        if !changes.is_empty() {
            self.propose(&MetadataRecord::Partitions(changes.clone()))
                .await?;
            self.count_elections(&image, &changes);
        }
        Ok(outcomes)
    }

    /// Notes a heartbeat's metadata offset when the broker is not a voter
    /// (voters' progress is Raft's own), for DescribeQuorum's observers.
    fn observe(&self, id: i32, offset: u64) {
        if !self.is_leader() || self.settings.voters.iter().any(|(v, _)| *v == id) {
            return;
        }
        let now = unix_ms();
        let committed = self.core.borrow().committed();
        let mut seen = self.observer_seen.borrow_mut();
        let entry = seen.entry(id).or_insert((0, -1, -1));
        entry.0 = offset;
        entry.1 = now;
        if offset >= committed {
            entry.2 = now;
        }
    }

    /// Registers, unfences or (controlled shutdown) fences a broker.
    async fn heartbeat(
        self: &Rc<Self>,
        id: i32,
        broker: BrokerRecord,
        shutting_down: bool,
    ) -> Result<HeartbeatAck, Refusal> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        if shutting_down {
            // Its session goes on until the process is gone (the check of
            // sessions then fences it for good and unlists it).
            self.broker_seen.borrow_mut().insert(id, Instant::now());
            if self
                .image()
                .brokers
                .get(&id)
                .is_some_and(|b| !b.in_controlled_shutdown)
            {
                log::info!(
                    "controller: broker {id} is in controlled shutdown; moving its leaderships"
                );
            }
            self.fence(id, true).await?;
            return Ok(HeartbeatAck { fenced: true });
        }
        let finalized = self.image().metadata_version;
        if broker.max_metadata_version < finalized {
            // It could not read what the metadata log holds since the
            // level went up: a downgrade, which corelog does not support.
            log::warn!(
                "controller: refusing broker {id}: its binary supports {} up to level {}, and \
                 the cluster runs at level {finalized}",
                crate::features::METADATA_VERSION_FEATURE,
                broker.max_metadata_version
            );
            return Err(Refusal::Rejected(Rejected::Invalid(format!(
                "this binary supports {} up to level {}, and the cluster runs at level \
                 {finalized}: run a binary that supports it (downgrades are not supported)",
                crate::features::METADATA_VERSION_FEATURE,
                broker.max_metadata_version
            ))));
        }
        self.broker_seen.borrow_mut().insert(id, Instant::now());
        let known = self.image().brokers.get(&id).cloned();
        // The level is part of the registration: a broker registered
        // through a controller from before feature levels (which dropped
        // it) registers again, so its level reaches the image.
        let same_process = known.as_ref().is_some_and(|k| {
            k.host == broker.host
                && k.port == broker.port
                && k.incarnation == broker.incarnation
                && k.max_metadata_version == broker.max_metadata_version
        });
        if !same_process {
            log::info!(
                "controller: registering broker {id} at {}:{} (process {}){}",
                broker.host,
                broker.port,
                broker.incarnation,
                if known.is_some() {
                    ", replacing its earlier registration"
                } else {
                    ""
                }
            );
            let record = MetadataRecord::RegisterBroker {
                id,
                broker: BrokerRecord {
                    fenced: false,
                    in_controlled_shutdown: false,
                    ..broker
                },
            };
            self.propose(&record).await?;
            self.finalize_features().await;
            return self.elect_leaderless().await;
        }
        match known {
            // Stopping: a heartbeat sent before its controlled shutdown
            // (and answered after it) does not undo it.
            Some(k) if k.in_controlled_shutdown => Ok(HeartbeatAck { fenced: true }),
            Some(k) if k.fenced => {
                log::info!("controller: broker {id} heartbeats again; unfencing it");
                self.propose(&MetadataRecord::UnfenceBroker { id }).await?;
                self.elect_leaderless().await
            }
            _ => Ok(HeartbeatAck { fenced: false }),
        }
    }

    /// Raises the cluster's feature level to the highest every registered
    /// broker supports (see `features.rs`), once every voter registered.
    /// A failed proposal is tried again at the next check of sessions.
    async fn finalize_features(self: &Rc<Self>) {
        if !self.is_leader() {
            return;
        }
        let image = self.image();
        let supported = image
            .brokers
            .iter()
            .map(|(id, b)| (*id, b.max_metadata_version));
        let voters = self.settings.voters.iter().map(|(id, _)| *id);
        let Some(level) = crate::features::finalizable(supported, voters) else {
            return;
        };
        if level <= image.metadata_version {
            return;
        }
        log::info!(
            "controller: every broker supports {} level {level}; finalizing it (was {})",
            crate::features::METADATA_VERSION_FEATURE,
            image.metadata_version
        );
        let record = MetadataRecord::FinalizeFeatures {
            metadata_version: level,
        };
        if let Err(refusal) = self.propose(&record).await {
            log::warn!(
                "controller: finalizing {} level {level}: {refusal}",
                crate::features::METADATA_VERSION_FEATURE
            );
        }
    }

    /// Fences `id` and moves the leaderships it held to other ISR members;
    /// `controlled_shutdown`: it asked, and stays listed until its session
    /// ends.
    async fn fence(self: &Rc<Self>, id: i32, controlled_shutdown: bool) -> Result<(), Refusal> {
        let record = MetadataRecord::FenceBroker {
            id,
            controlled_shutdown,
        };
        self.propose(&record).await?;
        self.propose_elections(|set| set.leader == id || set.isr.contains(&id))
            .await
    }

    /// Gives partitions without a leader one, now that a broker is back.
    async fn elect_leaderless(self: &Rc<Self>) -> Result<HeartbeatAck, Refusal> {
        self.propose_elections(|set| set.leader == -1).await?;
        Ok(HeartbeatAck { fenced: false })
    }

    /// Proposes the elections of the partitions `affected` picks, computed
    /// from the current image; when another change took a partition epoch
    /// first (the elections expect the epochs they were computed from),
    /// recomputes from the newer image, up to `ELECTION_ATTEMPTS` times.
    async fn propose_elections(
        self: &Rc<Self>,
        affected: impl Fn(&ReplicaSet) -> bool,
    ) -> Result<(), Refusal> {
        let mut attempt = 1;
        loop {
            let image = self.image();
            let changes = elections(&image, self.settings.unclean_leader_election, &affected);
            if changes.is_empty() {
                return Ok(());
            }
            let record = MetadataRecord::Partitions(changes.clone());
            match self.propose(&record).await {
                Err(Refusal::Rejected(Rejected::Conflict(_))) if attempt < ELECTION_ATTEMPTS => {
                    attempt += 1;
                }
                Ok(_) => {
                    self.count_elections(&image, &changes);
                    return Ok(());
                }
                Err(refusal) => return Err(refusal),
            }
        }
    }

    /// The active controller's periodic duty: fence silent brokers.
    async fn check_sessions(self: &Rc<Self>) {
        let leader = self.is_leader();
        if leader && !self.was_leader.get() {
            // A new active controller gives every broker a full session
            // before it may fence it. Heartbeats it took before this check
            // noticed its leadership stay: a broker whose registration is
            // on its way has no other entry, and would be fenced the moment
            // the registration applies (found by the simulation: every
            // broker of a starting cluster was fenced once).
            let now = Instant::now();
            let mut seen = self.broker_seen.borrow_mut();
            for id in self.image().brokers.keys() {
                seen.insert(*id, now);
            }
        }
        self.was_leader.set(leader);
        if !leader {
            return;
        }
        self.finalize_features().await;
        let (mut silent, late): (Vec<i32>, Vec<(i32, String, u16)>) = {
            let seen = self.broker_seen.borrow();
            let image = self.image();
            let mut silent = Vec::new();
            let mut late = Vec::new();
            // Live sessions: unfenced brokers, and brokers in controlled
            // shutdown, whose session ends when their process is gone.
            let in_session = |b: &&BrokerRecord| !b.fenced || b.in_controlled_shutdown;
            for (id, b) in image.brokers.iter().filter(|(_, b)| in_session(b)) {
                let quiet = seen.get(id).map(|t| t.elapsed());
                match quiet {
                    None => silent.push(*id),
                    Some(q) if q > self.settings.session_timeout => silent.push(*id),
                    Some(q) if q > self.settings.probe_after => {
                        late.push((*id, b.host.clone(), b.port))
                    }
                    Some(_) => {}
                }
            }
            (silent, late)
        };
        // A broker that missed a heartbeat and whose port refuses
        // connections has no process behind it: fence it now rather than
        // after the whole session timeout (failover in seconds, not ten).
        // One that merely stalls (the port still accepts) keeps its session.
        for (id, host, port) in late {
            if refuses_connections(&host, port).await {
                log::warn!(
                    "controller: broker {id} missed a heartbeat and its port refuses connections"
                );
                silent.push(id);
            }
        }
        for id in silent {
            log::warn!("controller: broker {id} missed its heartbeats; fencing it");
            if let Err(refusal) = self.fence(id, false).await {
                log::warn!("controller: fencing broker {id}: {refusal}");
            }
        }
    }
}
