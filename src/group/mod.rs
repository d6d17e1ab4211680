//! Consumer groups: the group coordinator and committed offsets.
//!
//! A group lives on the shard that owns its partition of the internal
//! `__consumer_offsets` topic (Redpanda's `group_router`): partition =
//! `abs(javaHashCode(group)) % partitions`, as Kafka computes it. Handlers on
//! any shard route a group's requests there over the mesh (`call`);
//! ListGroups fans out to every shard.
//!
//! State: one [`GroupCoordinator`] per shard, holding only the groups whose
//! offsets partition this shard owns (`RefCell`, never borrowed across an
//! `.await`). It persists only through `Partition::append` on those
//! partitions (offset commits, and group metadata after each rebalance), in
//! Kafka's record formats (`records.rs`), and answers a commit only once it
//! is durable. At shard start `load` replays the shard's offsets partitions
//! from the log start to rebuild offsets and groups (tombstones delete).
//!
//! Two protocols: the classic one (JoinGroup/SyncGroup/Heartbeat/LeaveGroup,
//! client-side assignment, `classic.rs`) and KIP-848 (ConsumerGroupHeartbeat
//! with server-side assignment, `consumer.rs`). A group is one or the other
//! while it has members; an empty group may switch.
//!
//! What the coordinator may read and do on its shard is [`GroupHost`],
//! implemented by the server's broker: it never sees the broker itself.
//!
//! Must not: touch another shard's groups, or write to the log except
//! through `Partition::append` + the shard committer.

pub mod assignor;
pub mod calls;
mod classic;
mod consumer;
pub mod figures;
pub mod records;
mod retention;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::TaskQueueHandle;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartitions;
use kafka_protocol::protocol::StrBytes;

use crate::config::BrokerDefaults;
use crate::io::Disk;
use crate::limits;
use crate::metadata::Catalog;
use crate::partition::{now_ms, Partition, PartitionError};
use crate::shard::mesh::ShardCall;
use crate::shard::ShardId;
use records::{Entry, OffsetValue};

pub use calls::{GroupOp, GroupShardCall};
pub use classic::ClassicGroup;
pub use consumer::ConsumerGroup;

/// The internal topic that stores committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How often each shard checks session, rebalance and join deadlines.
/// A Kafka string from a Rust one.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A Kafka timeout in milliseconds (negative: none) as a duration.
pub(crate) fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// What the group coordinator needs of its shard: the groups it holds, the
/// catalog, the partitions of `__consumer_offsets`, the static broker
/// settings, group commit, the background queue and calls to other shards.
/// One per shard (the server's broker implements it).
pub trait GroupHost: Sized + 'static {
    fn shard(&self) -> ShardId;
    fn shard_count(&self) -> usize;
    /// The broker settings from the node's configuration (not the dynamic
    /// ones from the catalog).
    fn broker_config(&self) -> &BrokerDefaults;
    fn catalog(&self) -> Rc<Catalog>;
    /// This shard's partition `index` of `topic`, if it holds it.
    fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>>;
    /// The groups this shard coordinates.
    fn groups(&self) -> &GroupCoordinator;
    /// Has the shard's group commit make `partition`'s appends durable.
    fn schedule_commit(&self, partition: &Rc<Partition>);
    /// The queue for work that must not delay requests.
    fn background_queue(&self) -> TaskQueueHandle;
    /// Serves `call` on shard `to`: directly when it is this shard, over
    /// the mesh otherwise.
    fn call<C: ShardCall<Self>>(
        self: &Rc<Self>,
        to: ShardId,
        call: C,
    ) -> impl Future<Output = C::Reply>;
}

/// Java's `String.hashCode` over UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `Utils.abs(groupId.hashCode) % partitions`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    assert!(partitions > 0);
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}

/// The shard and offsets partition that coordinate `group`, from this
/// shard's catalog copy; `None` while the offsets topic does not exist.
pub fn locate<H: GroupHost>(host: &Rc<H>, group: &str) -> Option<(ShardId, i32)> {
    let catalog = host.catalog();
    let topic = catalog.topics.get(OFFSETS_TOPIC)?;
    let partition = partition_for(group, topic.partition_count());
    let shard = *topic.shards.get(partition as usize)?;
    Some((ShardId(shard as usize), partition))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// A failed append to `__consumer_offsets`, as Kafka's group coordinator
/// reports it to the committing client.
fn group_append_error(e: &PartitionError) -> i16 {
    code(match e {
        PartitionError::Gone | PartitionError::NotLeader => ResponseError::NotCoordinator,
        PartitionError::NotEnoughReplicas { .. }
        | PartitionError::NotEnoughReplicasAfterAppend { .. }
        | PartitionError::TimedOut => ResponseError::CoordinatorNotAvailable,
        PartitionError::MessageTooLarge { .. } => ResponseError::InvalidCommitOffsetSize,
        PartitionError::Storage(_) => ResponseError::CoordinatorNotAvailable,
        _ => ResponseError::UnknownServerError,
    })
}

/// Routes `call` to the coordinator of `group`. `Err` is a Kafka error code
/// for the whole group: COORDINATOR_NOT_AVAILABLE before the offsets topic
/// exists or when the owner cannot be reached, NOT_COORDINATOR, ...
pub async fn call<H: GroupHost, C: GroupOp>(
    host: &Rc<H>,
    group: &str,
    call: C,
) -> Result<C::Answer, i16> {
    let Some((owner, _)) = locate(host, group) else {
        return Err(code(ResponseError::CoordinatorNotAvailable));
    };
    host.call(owner, GroupShardCall(call)).await
}

/// Asks every shard for its groups (ListGroups). A shard that cannot
/// answer (still loading its groups, or stopping) lists none.
pub async fn list_all<H: GroupHost>(
    host: &Rc<H>,
    states: Vec<String>,
    types: Vec<String>,
) -> Vec<ListedGroup> {
    let list = calls::List { states, types };
    let asks = (0..host.shard_count()).map(|shard| {
        let call = GroupShardCall(list.clone());
        async move { host.call(ShardId(shard), call).await.unwrap_or_default() }
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One group: its committed offsets and its membership, classic or KIP-848.
pub struct Group {
    pub id: String,
    /// Its partition of `__consumer_offsets`.
    pub partition: i32,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    pub classic: ClassicGroup,
    /// Set while the group uses the KIP-848 protocol.
    pub consumer: Option<ConsumerGroup>,
}

impl Group {
    fn new(id: &str, partition: i32) -> Group {
        Group {
            id: id.to_string(),
            partition,
            offsets: BTreeMap::new(),
            classic: ClassicGroup::default(),
            consumer: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.classic.members.is_empty()
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }

    /// Since when the group has had no members, when it knows: an Empty
    /// classic group with a protocol type records when it entered that
    /// state (Kafka's currentStateTimestamp); offset retention counts from
    /// it (`retention.rs`).
    pub fn empty_since_ms(&self) -> Option<i64> {
        let classic = &self.classic;
        let known = self.consumer.is_none()
            && classic.protocol_type.is_some()
            && classic.state == classic::State::Empty
            && classic.state_timestamp_ms() > 0;
        known.then(|| classic.state_timestamp_ms())
    }

    /// Kafka's state name, as DescribeGroups and ListGroups show it.
    pub fn state_name(&self) -> &'static str {
        match &self.consumer {
            Some(c) => c.state_name(),
            None => self.classic.state.name(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        if self.consumer.is_some() {
            "consumer"
        } else {
            "classic"
        }
    }
}

/// One per shard: the groups whose offsets partition this shard owns.
#[derive(Default)]
pub struct GroupCoordinator {
    pub(crate) groups: RefCell<HashMap<String, Group>>,
    /// True until `load` has replayed this shard's offsets partitions.
    loading: Cell<bool>,
    /// Offsets partitions being replayed after a leadership change.
    loading_partitions: RefCell<std::collections::HashSet<i32>>,
    /// When the sweep last looked for expired offsets
    /// (`offsets.retention.check.interval.ms`).
    offsets_checked_at: Cell<Option<Instant>>,
}

impl GroupCoordinator {
    pub fn new() -> GroupCoordinator {
        GroupCoordinator {
            groups: RefCell::new(HashMap::new()),
            loading: Cell::new(true),
            loading_partitions: RefCell::new(Default::default()),
            offsets_checked_at: Cell::new(None),
        }
    }

    /// The committed offset of `group` for `topic`-`partition`, if any.
    pub(crate) fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        let groups = self.groups.borrow();
        let g = groups.get(group)?;
        g.offsets
            .get(&(topic.to_string(), partition))
            .map(|v| v.offset)
    }

    /// Replays the partitions of `__consumer_offsets` (if the topic exists)
    /// this shard holds and leads, from the log start: offsets and groups as
    /// of the last record. A partition that cannot be replayed is logged and
    /// its groups stay unavailable; the shard starts regardless.
    pub async fn load<H: GroupHost>(host: &Rc<H>) {
        let catalog = host.catalog();
        if let Some(topic) = catalog.topics.get(OFFSETS_TOPIC) {
            for index in 0..topic.partition_count() {
                if host
                    .partition(OFFSETS_TOPIC, index)
                    .is_some_and(|p| p.is_leader())
                {
                    // A partition that cannot be read costs its groups
                    // (they answer COORDINATOR_LOAD_IN_PROGRESS), never the
                    // broker's start; corrupt ranges are skipped with a log
                    // line inside load_partition.
                    if let Err(e) = Self::load_partition(host, index).await {
                        log::error!("{OFFSETS_TOPIC}-{index}: groups not loaded: {e}");
                    }
                }
            }
        }
        host.groups().loading.set(false);
    }

    /// This broker became (or stopped being) the leader of an offsets
    /// partition: its groups are loaded from the replicated log (or
    /// forgotten here; the new leader's broker coordinates them now).
    pub async fn leadership_changed<H: GroupHost>(host: &Rc<H>, index: i32) {
        let leads = host
            .partition(OFFSETS_TOPIC, index)
            .is_some_and(|p| p.is_leader());
        if !leads {
            host.groups().forget_partition(index);
            return;
        }
        if let Err(e) = Self::load_partition(host, index).await {
            log::error!("{OFFSETS_TOPIC}-{index}: groups not loaded: {e}");
        }
    }

    fn forget_partition(&self, index: i32) {
        self.groups.borrow_mut().retain(|_, g| g.partition != index);
    }

    /// Replays one offsets partition; its groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS until it is done.
    async fn load_partition<H: GroupHost>(host: &Rc<H>, index: i32) -> Result<(), LoadError> {
        let coordinator = host.groups();
        let session_timeout_ms = host.broker_config().group_consumer_session_timeout_ms;
        let Some(partition) = host.partition(OFFSETS_TOPIC, index) else {
            return Ok(());
        };
        coordinator.loading_partitions.borrow_mut().insert(index);
        coordinator.forget_partition(index);
        let result = coordinator
            .replay_partition(&partition, index, session_timeout_ms)
            .await;
        if result.is_ok() {
            coordinator.loading_partitions.borrow_mut().remove(&index);
        } else {
            // Groups half loaded would answer with missing commits (and
            // consumers would reset): they keep answering
            // COORDINATOR_LOAD_IN_PROGRESS until a reload succeeds.
            coordinator.forget_partition(index);
        }
        result
    }

    /// Replays the offsets partition `index` (its stored log, up to its
    /// durable end) into this coordinator's groups. Generic over the disk
    /// so the simulation replays its replicas with the same code.
    pub(crate) async fn replay_partition<D: Disk>(
        &self,
        partition: &Partition<D>,
        index: i32,
        session_timeout_ms: i32,
    ) -> Result<(), LoadError> {
        let mut offset = partition.log_start_offset();
        let mut replayed = 0usize;
        let mut garbage = Garbage::default();
        while offset < partition.flushed_offset() {
            let fetched = match partition.read_durable(offset, 1 << 20).await {
                Ok(fetched) => fetched,
                Err(e) => match partition.unreadable_end(offset) {
                    // A corrupt stored range: its commits are lost (the
                    // groups fall back to older ones); say so and go on.
                    Some(end) => {
                        log::error!(
                            "{OFFSETS_TOPIC}-{index}: offsets [{offset}, {end}) are \
                             unreadable ({e}); the commits and group changes there are lost"
                        );
                        offset = end;
                        continue;
                    }
                    None => return Err(LoadError::Unreadable { offset, cause: e }),
                },
            };
            let decoded = records::decode_batches(fetched.records);
            for (at, reason) in &decoded.bad_batches {
                garbage.note(*at, || {
                    format!("batch failed the stored-batch parser: {reason}")
                });
            }
            for at in &decoded.keyless {
                garbage.note(*at, || "record has no key".to_string());
            }
            if !decoded.bad_batches.is_empty() {
                partition.request_scrub(decoded.bad_batches[0].0);
            }
            for (at, key, value) in decoded.records {
                match records::decode(&key, value.as_ref()) {
                    Ok(Some(entry)) => self.replay(index, entry, session_timeout_ms),
                    // A record type of a newer Kafka (share or streams
                    // groups): not ours to replay.
                    Ok(None) => {}
                    Err(e) => garbage.note(at, || e.to_string()),
                }
                replayed += 1;
            }
            match decoded.next_offset {
                Some(next) if next > offset => offset = next,
                // The read held no whole batch past `offset`: step by
                // the batch header, as a last resort.
                _ => offset = next_batch_offset(partition, offset).await?,
            }
            glommio::yield_if_needed().await;
        }
        if replayed > 0 {
            log::info!("{OFFSETS_TOPIC}-{index}: replayed {replayed} records");
        }
        garbage.report(index);
        Ok(())
    }

    fn replay(&self, partition: i32, entry: Entry, session_timeout_ms: i32) {
        let mut groups = self.groups.borrow_mut();
        let id = match &entry {
            Entry::Offset { group, .. }
            | Entry::Group { group, .. }
            | Entry::Consumer { group, .. } => group.clone(),
        };
        let g = groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(&id, partition));
        match entry {
            Entry::Offset {
                topic,
                partition: index,
                value,
                ..
            } => match value {
                Some(v) => {
                    g.offsets.insert((topic, index), v);
                }
                None => {
                    g.offsets.remove(&(topic, index));
                }
            },
            // The later of a classic and a consumer record says which
            // protocol the group uses: it changes only while it is empty.
            Entry::Group { value, .. } => {
                g.classic = match value {
                    Some(v) => {
                        g.consumer = None;
                        ClassicGroup::restore(v, Instant::now())
                    }
                    None => ClassicGroup::default(),
                };
            }
            Entry::Consumer { record, .. } => {
                if record == records::ConsumerRecord::Epoch(None) {
                    g.consumer = None;
                } else {
                    g.classic = ClassicGroup::default();
                    g.consumer
                        .get_or_insert_with(ConsumerGroup::default)
                        .replay(record, Instant::now(), session_timeout_ms);
                }
            }
        }
        // A group with nothing left (deleted) is forgotten.
        if g.offsets.is_empty()
            && g.consumer.is_none()
            && g.classic.members.is_empty()
            && g.classic.generation == 0
        {
            groups.remove(&id);
        }
    }

    fn list(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let groups = self.groups.borrow();
        groups
            .values()
            .filter(|g| g.consumer.is_some() || g.classic.state != classic::State::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state_name()))
            })
            .filter(|g| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(g.type_name()))
            })
            .map(|g| {
                let protocol_type = match &g.consumer {
                    Some(_) => "consumer".to_string(),
                    None => g.classic.protocol_type.clone().unwrap_or_default(),
                };
                ListedGroup::default()
                    .with_group_id(StrBytes::from_string(g.id.clone()).into())
                    .with_protocol_type(StrBytes::from_string(protocol_type))
                    .with_group_state(StrBytes::from_static_str(g.state_name()))
                    .with_group_type(StrBytes::from_static_str(g.type_name()))
            })
            .collect()
    }

    fn offset_fetch(
        &self,
        group: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<(String, Vec<OffsetFetchResponsePartitions>)> {
        use kafka_protocol::protocol::StrBytes;
        let groups = self.groups.borrow();
        let offsets = groups.get(group).map(|g| &g.offsets);
        let answer = |v: Option<&OffsetValue>, index: i32| match v {
            Some(v) => OffsetFetchResponsePartitions::default()
                .with_partition_index(index)
                .with_committed_offset(v.offset)
                .with_committed_leader_epoch(v.leader_epoch)
                .with_metadata(Some(StrBytes::from_string(v.metadata.clone()))),
            None => OffsetFetchResponsePartitions::default()
                .with_partition_index(index)
                .with_committed_offset(-1)
                .with_committed_leader_epoch(-1)
                .with_metadata(Some(StrBytes::from_static_str(""))),
        };
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let parts = partitions
                        .into_iter()
                        .map(|p| answer(offsets.and_then(|o| o.get(&(topic.clone(), p))), p))
                        .collect();
                    (topic, parts)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartitions>> =
                    BTreeMap::new();
                for ((topic, p), v) in offsets.into_iter().flatten() {
                    by_topic
                        .entry(topic.clone())
                        .or_default()
                        .push(answer(Some(v), *p));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// Session, rebalance and join deadlines of every group on this shard.
    fn sweep<H: GroupHost>(host: &Rc<H>) {
        let now = Instant::now();
        let mut persist = Vec::new();
        {
            let mut groups = host.groups().groups.borrow_mut();
            for group in groups.values_mut() {
                if let Some(entry) = classic::expire(host, group, now) {
                    persist.push((group.partition, entry));
                }
                if let Some(c) = group.consumer.as_mut() {
                    let records = consumer::expire(host, &group.id, c, now);
                    persist.extend(records.into_iter().map(|r| (group.partition, r)));
                }
            }
        }
        persist.extend(Self::expire_offsets(host, now));
        // One batch per offsets partition, in the order the changes happened.
        let mut by_partition: BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>> = BTreeMap::new();
        for (partition, entry) in persist {
            by_partition.entry(partition).or_default().push(entry);
        }
        for (partition, entries) in by_partition {
            persist_later(host, partition, entries);
        }
    }
}

impl GroupCoordinator {
    /// Every `offsets.retention.check.interval.ms` (once loading is done):
    /// forgets expired offsets and answers their tombstones.
    fn expire_offsets<H: GroupHost>(
        host: &Rc<H>,
        now: Instant,
    ) -> Vec<(i32, (Bytes, Option<Bytes>))> {
        let coordinator = host.groups();
        let config = host.broker_config();
        let interval = Duration::from_millis(config.offsets_retention_check_interval_ms);
        let due = coordinator
            .offsets_checked_at
            .get()
            .is_none_or(|at| now.duration_since(at) >= interval);
        if coordinator.loading.get() || !due {
            return Vec::new();
        }
        coordinator.offsets_checked_at.set(Some(now));
        let loading = coordinator.loading_partitions.borrow();
        let mut groups = coordinator.groups.borrow_mut();
        let owned = groups
            .values_mut()
            .filter(|g| !loading.contains(&g.partition));
        retention::expire(owned, now_ms(), config.offsets_retention_ms)
    }
}

/// The coordinator's background task: sweeps deadlines until the shard stops.
pub async fn sweep_loop<H: GroupHost>(host: Rc<H>) {
    loop {
        glommio::timer::sleep(SWEEP_INTERVAL).await;
        GroupCoordinator::sweep(&host);
    }
}

/// The group's offsets partition, if this shard owns it; NOT_COORDINATOR
/// otherwise (the catalog moved it, or the caller's copy is stale).
fn owned_partition<H: GroupHost>(host: &Rc<H>, group: &str) -> Result<i32, i16> {
    if group.is_empty() || group.len() > limits::GROUP_ID_BYTES_MAX {
        return Err(code(ResponseError::InvalidGroupId));
    }
    let (owner, partition) =
        locate(host, group).ok_or(code(ResponseError::CoordinatorNotAvailable))?;
    if owner != host.shard()
        || !host
            .partition(OFFSETS_TOPIC, partition)
            .is_some_and(|p| p.is_leader())
    {
        return Err(code(ResponseError::NotCoordinator));
    }
    if host
        .groups()
        .loading_partitions
        .borrow()
        .contains(&partition)
    {
        return Err(code(ResponseError::CoordinatorLoadInProgress));
    }
    Ok(partition)
}

/// Appends records to a group's offsets partition and waits until they are
/// durable.
pub(crate) async fn append<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    entries: &[(Bytes, Option<Bytes>)],
) -> Result<(), PartitionError> {
    let p = host
        .partition(OFFSETS_TOPIC, partition)
        .ok_or(PartitionError::Gone)?;
    let batch = records::batch(entries, now_ms());
    // As Kafka's coordinator: acks=all, so a commit survives its leader.
    let (_, commit) = p.append(&batch, -1)?;
    let Some(commit) = commit else {
        return Ok(());
    };
    host.schedule_commit(&p);
    drop(p);
    // Kafka's offsets.commit.timeout.ms: past it the commit is reported as
    // failed (it may still be replicated later).
    let timeout = async {
        glommio::timer::sleep(OFFSETS_COMMIT_TIMEOUT).await;
        Err(PartitionError::TimedOut)
    };
    futures_lite::future::or(
        async { commit.await.unwrap_or(Err(PartitionError::Gone)) },
        timeout,
    )
    .await
}

const OFFSETS_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Appends in a detached task: group metadata written from synchronous
/// paths (the sweep, a leave), where nobody waits for the answer.
pub(crate) fn persist_later<H: GroupHost>(
    host: &Rc<H>,
    partition: i32,
    entries: Vec<(Bytes, Option<Bytes>)>,
) {
    if entries.is_empty() {
        return;
    }
    let queue = host.background_queue();
    let host = host.clone();
    glommio::spawn_local_into(
        async move {
            if let Err(e) = append(&host, partition, &entries).await {
                log::warn!("{OFFSETS_TOPIC}-{partition}: group metadata not written: {e}");
            }
        },
        queue,
    )
    .expect("task queue exists")
    .detach();
}

/// Records of an offsets partition that could not be replayed, counted
/// during one load and reported once (with the first offset and reason)
/// rather than skipped silently or logged one line each.
#[derive(Default)]
struct Garbage {
    count: usize,
    first: Option<(i64, String)>,
}

impl Garbage {
    fn note(&mut self, offset: i64, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((offset, reason()));
        }
    }

    fn report(&self, index: i32) {
        if let Some((offset, reason)) = &self.first {
            log::warn!(
                "{OFFSETS_TOPIC}-{index}: {} records could not be replayed and were skipped; \
                 the first at offset {offset}: {reason}",
                self.count
            );
        }
    }
}

/// Why an offsets partition could not be replayed: its groups answer
/// COORDINATOR_LOAD_IN_PROGRESS until a later load succeeds.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A read failed where the log knows of no damaged range to skip.
    #[error("offset {offset} cannot be read: {cause}")]
    Unreadable { offset: i64, cause: PartitionError },
    /// The batch at `offset` has a header the parser refuses.
    #[error("the batch at offset {offset} is damaged: {source}")]
    BadBatch {
        offset: i64,
        source: crate::protocol::batch::BatchError,
    },
    /// The batch at `offset` ends before it (a damaged header).
    #[error("the batch at offset {offset} does not advance the offset")]
    NoProgress { offset: i64 },
}

/// The first offset past the batch at `offset` (replay of a batch with no
/// keyed records).
async fn next_batch_offset<D: Disk>(
    partition: &Partition<D>,
    offset: i64,
) -> Result<i64, LoadError> {
    let fetched = partition
        .read_durable(offset, 1)
        .await
        .map_err(|cause| LoadError::Unreadable { offset, cause })?;
    let header = crate::protocol::batch::BatchHeader::parse(&fetched.records)
        .map_err(|source| LoadError::BadBatch { offset, source })?;
    let next = header.last_offset() + 1;
    if next <= offset {
        return Err(LoadError::NoProgress { offset });
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_consumer_group_counts_its_retention_from_when_it_became_empty() {
        let mut g = super::Group::new("g", 0);
        g.offsets.insert(
            ("t".to_string(), 0),
            super::OffsetValue {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1_000,
                expire_timestamp_ms: None,
            },
        );
        assert_eq!(g.empty_since_ms(), None);
        assert_eq!(super::retention::expired_offsets(&g, 6_000, 5_000).len(), 1);
        g.classic.protocol_type = Some("consumer".into());
        g.classic.set_state_at(super::classic::State::Empty, 50_000);
        assert_eq!(g.empty_since_ms(), Some(50_000));
        assert!(super::retention::expired_offsets(&g, 54_999, 5_000).is_empty());
        assert_eq!(
            super::retention::expired_offsets(&g, 55_000, 5_000).len(),
            1
        );
    }

    use super::*;

    #[test]
    fn group_partition_matches_kafka() {
        // Values computed with Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // The famous string whose hashCode is Integer.MIN_VALUE: Utils.abs gives 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 7), 0);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert!((0..50).contains(&partition_for("my-group", 50)));
    }
}
