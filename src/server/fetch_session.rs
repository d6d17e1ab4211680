//! Incremental fetch sessions (Kafka's KIP-227): the per-shard cache of
//! sessions and the rules that decide, for each Fetch v7+, which partitions
//! it reads and which of them its response carries.
//!
//! A client opens a session with a full fetch at epoch 0 (INITIAL); the
//! answer names a new session id. From then on it sends only what changed
//! (partitions added or with a new fetch offset, partitions forgotten) at
//! the next epoch, the fetch reads every partition of the session, and the
//! response carries only the partitions with records, an error, or a high
//! watermark or log start offset that changed since this session's last
//! response. A consumer of 512 partitions thus sends and receives a handful
//! per fetch instead of 512. Epoch -1 (FINAL) asks for a sessionless fetch
//! and, with a session id, closes that session. The rules follow Kafka's
//! broker (`FetchManager.newContext`, `FetchSessionCache`): the same errors
//! (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH,
//! FETCH_SESSION_TOPIC_ID_ERROR when a session made by name is continued by
//! topic id or the other way round), the same epoch arithmetic
//! ([`next_epoch`]) and the same eviction order.
//!
//! **One cache per shard**, in the shard's `Broker`, never shared: a
//! client's fetches come over one connection, which lives on the shard that
//! accepted it. Each shard hands out ids from its own range of the id space
//! (as Kafka's cache shards do), so a client that reconnects and lands on
//! another shard gets FETCH_SESSION_ID_NOT_FOUND and starts a new full
//! session, which every Kafka client handles. The node's
//! `max.incremental.fetch.session.cache.slots` is split evenly between the
//! shards (rounded up). Nothing survives a restart.
//!
//! Sessions are made for consumers and followers alike; a follower's
//! session is privileged (it may evict a consumer's), as in Kafka.
//! corelog's own replica fetchers ask for sessionless fetches.
//!
//! **Bounds.** At most `slots` sessions, each of at most
//! [`limits::FETCH_SESSION_PARTITIONS_MAX`] partitions, and at most
//! [`limits::FETCH_SESSION_PARTITIONS_PER_SHARD_MAX`] partitions cached on
//! the shard in all. A full fetch that finds no room is answered without a
//! session (id 0), as Kafka answers when its cache is full; an incremental
//! fetch that would grow its session past a bound closes the session and is
//! answered without one, so the client starts over with a full fetch.
//!
//! **Eviction** (when a new session needs a slot), as Kafka: the least
//! recently used session idle for longer than
//! [`limits::FETCH_SESSION_EVICTION_MS`] goes first; failing that, a session
//! older than that (or, for a follower's new session, any consumer session)
//! that is less valuable than the new one: consumers before followers, then
//! fewer partitions first.
//!
//! Pure state: no I/O, no awaits. Time is read from `crate::clock`, so the
//! unit tests move it.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use uuid::Uuid;

use crate::clock;
use crate::limits;

/// The session id of "no session".
pub const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full fetch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that wants no session (and closes the one it names).
pub const FINAL_EPOCH: i32 = -1;

/// The epoch that follows `epoch` (Kafka's `FetchMetadata.nextEpoch`):
/// FINAL stays FINAL, and the largest epoch wraps to 1, never to 0
/// (INITIAL) or below.
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// How a session names a topic: by id from Fetch v13, by name before. A
/// name is shared by the topic's partitions of one request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Id(Uuid),
    Name(Rc<str>),
}

/// One partition of a fetch, as the request names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: TopicKey,
    pub partition: i32,
}

/// What a fetch asks of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchParams {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    /// The fetcher's own log start offset (followers; -1 for consumers).
    pub log_start_offset: i64,
    /// The leader epoch the fetcher believes current (-1: none).
    pub current_leader_epoch: i32,
}

/// What reading one partition answered, as far as a session cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadSummary {
    pub has_records: bool,
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// The session fields of a Fetch request and who sent it.
#[derive(Clone, Copy, Debug)]
pub struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// Fetch v13+: topics are named by id.
    pub uses_topic_ids: bool,
    /// A follower (replica id >= 0): its sessions are privileged.
    pub follower: bool,
}

/// Why a fetch is refused before anything is read (a top-level error,
/// no partitions, session id 0 in the answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// An incremental fetch names a session this shard does not hold.
    IdNotFound,
    /// An incremental fetch's epoch is not the session's next one.
    InvalidEpoch,
    /// A session made by topic name continued by id, or the other way round.
    TopicIdMismatch,
}

/// How a fetch is read and answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Read the request's partitions and answer them all, without a session.
    Sessionless,
    /// Read the request's partitions, answer them all, and then try to open
    /// a session over them ([`FetchSessionCache::create`]).
    Full {
        follower: bool,
        uses_topic_ids: bool,
    },
    /// Read the session's partitions; answer only those that changed
    /// ([`FetchSessionCache::select`]).
    Incremental { session_id: i32 },
}

/// A fetch's context and the partitions it reads, in order.
#[derive(Debug)]
pub struct Opened {
    pub context: Context,
    pub partitions: Vec<(PartitionKey, FetchParams)>,
}

/// One partition of a session: the last request's parameters and what the
/// last response said of it.
#[derive(Clone, Debug)]
struct CachedPartition {
    params: FetchParams,
    /// -1 until a response carried the partition without an error, so the
    /// partition is answered again once an error clears.
    high_watermark: i64,
    log_start_offset: i64,
}

impl CachedPartition {
    fn new(params: FetchParams) -> CachedPartition {
        CachedPartition {
            params,
            high_watermark: -1,
            log_start_offset: -1,
        }
    }

    /// Whether a response must carry this partition after `read` (records,
    /// an error, or a changed high watermark or log start offset), and
    /// remembers what it carries. The last stable offset is not compared:
    /// corelog answers it equal to the high watermark.
    fn must_respond(&mut self, read: &ReadSummary) -> bool {
        let mut respond = read.has_records;
        if self.high_watermark != read.high_watermark {
            self.high_watermark = read.high_watermark;
            respond = true;
        }
        if self.log_start_offset != read.log_start_offset {
            self.log_start_offset = read.log_start_offset;
            respond = true;
        }
        if read.error_code != 0 {
            self.high_watermark = -1;
            respond = true;
        }
        respond
    }
}

struct Session {
    follower: bool,
    uses_topic_ids: bool,
    created: Instant,
    last_used: Instant,
    /// The epoch the next incremental fetch must carry.
    epoch: i32,
    /// In the order they are read; partitions that returned records move to
    /// the end, so a response's byte budget goes round all of them in turn.
    partitions: IndexMap<PartitionKey, CachedPartition>,
}

/// The fetch sessions of one shard.
pub struct FetchSessionCache {
    sessions: HashMap<i32, Session>,
    /// (last used, id) of every session: the least recently used first.
    by_last_use: BTreeSet<(Instant, i32)>,
    slots: usize,
    eviction_after: Duration,
    /// Partitions held by all sessions.
    partitions_cached: usize,
    /// Sessions evicted to make room for new ones (Kafka's
    /// `IncrementalFetchSessionEvictionsPerSec`, as a count).
    evictions: u64,
    /// This shard's session ids are `id_base + 1 .. id_base + id_range`.
    id_base: i32,
    id_range: i32,
    random: u64,
}

impl FetchSessionCache {
    /// The cache of shard `shard` of `shards`, with `node_slots` sessions
    /// for the whole node; `seed` starts the session id generator.
    pub fn new(node_slots: usize, shard: usize, shards: usize, seed: u64) -> FetchSessionCache {
        assert!(shard < shards && shards <= limits::SHARDS_MAX);
        let id_range = i32::MAX / shards as i32;
        FetchSessionCache {
            sessions: HashMap::new(),
            by_last_use: BTreeSet::new(),
            slots: node_slots.div_ceil(shards),
            eviction_after: Duration::from_millis(limits::FETCH_SESSION_EVICTION_MS),
            partitions_cached: 0,
            evictions: 0,
            id_base: shard as i32 * id_range,
            id_range,
            random: seed | 1,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions held by all sessions.
    pub fn partitions_cached(&self) -> usize {
        self.partitions_cached
    }

    /// Sessions evicted to make room for new ones.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Decides how a fetch is served (Kafka's `newContext`). `requested`
    /// are the request's partitions; `forgotten` those it removes from its
    /// session. An incremental fetch updates its session, advances its
    /// epoch and reads all of the session's partitions.
    pub fn open(
        &mut self,
        request: &SessionRequest,
        requested: Vec<(PartitionKey, FetchParams)>,
        forgotten: &[PartitionKey],
    ) -> Result<Opened, SessionError> {
        if request.epoch == INITIAL_EPOCH || request.epoch == FINAL_EPOCH {
            // A full fetch closes any session it names.
            if request.session_id != INVALID_SESSION_ID {
                self.remove(request.session_id);
            }
            let context = if request.epoch == FINAL_EPOCH {
                Context::Sessionless
            } else {
                Context::Full {
                    follower: request.follower,
                    uses_topic_ids: request.uses_topic_ids,
                }
            };
            return Ok(Opened {
                context,
                partitions: requested,
            });
        }
        let id = request.session_id;
        let session = self.sessions.get_mut(&id).ok_or(SessionError::IdNotFound)?;
        if session.epoch != request.epoch {
            return Err(SessionError::InvalidEpoch);
        }
        if session.uses_topic_ids != request.uses_topic_ids {
            return Err(SessionError::TopicIdMismatch);
        }
        let before = session.partitions.len();
        for (key, params) in &requested {
            session
                .partitions
                .entry(key.clone())
                .and_modify(|cached| cached.params = *params)
                .or_insert_with(|| CachedPartition::new(*params));
        }
        for key in forgotten {
            session.partitions.shift_remove(key);
        }
        let after = session.partitions.len();
        self.partitions_cached = self.partitions_cached - before + after;
        let too_big = after > limits::FETCH_SESSION_PARTITIONS_MAX
            || self.partitions_cached > limits::FETCH_SESSION_PARTITIONS_PER_SHARD_MAX;
        if after == 0 || too_big {
            // Kafka closes a session left empty; one grown past the bounds
            // is closed too, and the client starts over with a full fetch.
            self.remove(id);
            return Ok(Opened {
                context: Context::Sessionless,
                partitions: requested,
            });
        }
        self.touch(id);
        let session = self.sessions.get_mut(&id).expect("session just touched");
        session.epoch = next_epoch(session.epoch);
        let partitions = session
            .partitions
            .iter()
            .map(|(key, cached)| (key.clone(), cached.params))
            .collect();
        Ok(Opened {
            context: Context::Incremental { session_id: id },
            partitions,
        })
    }

    /// After a full fetch at epoch 0 was read: opens a session over its
    /// partitions (`reads` in the same order) if there is room, evicting
    /// one if Kafka's rules allow. Answers the new session's id, or
    /// [`INVALID_SESSION_ID`] when there is no room.
    pub fn create(
        &mut self,
        follower: bool,
        uses_topic_ids: bool,
        partitions: &[(PartitionKey, FetchParams)],
        reads: &[ReadSummary],
    ) -> i32 {
        assert_eq!(partitions.len(), reads.len());
        let mut cached = IndexMap::with_capacity(partitions.len());
        for ((key, params), read) in partitions.iter().zip(reads) {
            let mut partition = CachedPartition::new(*params);
            partition.must_respond(read);
            cached.insert(key.clone(), partition);
        }
        let size = cached.len();
        if size > limits::FETCH_SESSION_PARTITIONS_MAX
            || self.partitions_cached + size > limits::FETCH_SESSION_PARTITIONS_PER_SHARD_MAX
        {
            return INVALID_SESSION_ID;
        }
        if self.sessions.len() >= self.slots && !self.evict_for(follower, size) {
            return INVALID_SESSION_ID;
        }
        let Some(id) = self.new_id() else {
            return INVALID_SESSION_ID;
        };
        let now = clock::now();
        self.sessions.insert(
            id,
            Session {
                follower,
                uses_topic_ids,
                created: now,
                last_used: now,
                epoch: next_epoch(INITIAL_EPOCH),
                partitions: cached,
            },
        );
        self.by_last_use.insert((now, id));
        self.partitions_cached += size;
        id
    }

    /// After an incremental fetch was read: which of its partitions
    /// (`partitions` and `reads` in the order [`open`](Self::open) gave)
    /// the response carries. Remembers what it carries, and moves the
    /// partitions that returned records to the end of the session's order.
    /// A session closed meanwhile has nothing to compare with: everything
    /// is carried.
    pub fn select(
        &mut self,
        session_id: i32,
        partitions: &[(PartitionKey, FetchParams)],
        reads: &[ReadSummary],
    ) -> Vec<bool> {
        assert_eq!(partitions.len(), reads.len());
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return vec![true; reads.len()];
        };
        let mut moved = Vec::new();
        let carried = partitions
            .iter()
            .zip(reads)
            .map(|((key, _), read)| {
                let Some(cached) = session.partitions.get_mut(key) else {
                    // Forgotten meanwhile by a pipelined fetch.
                    return true;
                };
                if read.has_records {
                    moved.push(key);
                }
                cached.must_respond(read)
            })
            .collect();
        for key in moved {
            if let Some(index) = session.partitions.get_index_of(key) {
                session
                    .partitions
                    .move_index(index, session.partitions.len() - 1);
            }
        }
        carried
    }

    fn remove(&mut self, id: i32) {
        if let Some(session) = self.sessions.remove(&id) {
            self.by_last_use.remove(&(session.last_used, id));
            self.partitions_cached -= session.partitions.len();
        }
    }

    fn touch(&mut self, id: i32) {
        let now = clock::now();
        if let Some(session) = self.sessions.get_mut(&id) {
            self.by_last_use.remove(&(session.last_used, id));
            session.last_used = now;
            self.by_last_use.insert((now, id));
        }
    }

    /// Frees a slot for a new session of `size` partitions (Kafka's
    /// `tryEvict`): the least recently used session if it has been idle
    /// longer than the eviction time; otherwise the least valuable session
    /// that is evictable (older than the eviction time, or a consumer's
    /// when a follower asks), if it is worth less than the new one.
    fn evict_for(&mut self, follower: bool, size: usize) -> bool {
        let now = clock::now();
        if let Some(&(last_used, id)) = self.by_last_use.first() {
            if now.saturating_duration_since(last_used) > self.eviction_after {
                self.remove(id);
                self.evictions += 1;
                return true;
            }
        }
        let old_enough =
            |s: &Session| now.saturating_duration_since(s.created) > self.eviction_after;
        let least = self
            .sessions
            .iter()
            .filter(|(_, s)| old_enough(s) || (follower && !s.follower))
            .map(|(&id, s)| ((s.follower, s.partitions.len()), id))
            .min();
        match least {
            Some((worth, id)) if (follower, size) > worth => {
                self.remove(id);
                self.evictions += 1;
                true
            }
            _ => false,
        }
    }

    /// A session id of this shard's range that is not in use.
    fn new_id(&mut self) -> Option<i32> {
        // Ids are plentiful (at least i32::MAX / SHARDS_MAX per shard), so
        // a few draws always find a free one; the bound keeps the loop finite.
        for _ in 0..64 {
            let offset = 1 + (self.next_random() % (self.id_range as u64 - 1)) as i32;
            let id = self.id_base + offset;
            if !self.sessions.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// xorshift64*: session ids only need to differ from one client to the
    /// next and from the ids a client used before; like Kafka's, they are
    /// not secrets.
    fn next_random(&mut self) -> u64 {
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        self.random.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests;
