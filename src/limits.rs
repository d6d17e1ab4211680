//! Every bound of the broker as a named constant, units last.
//!
//! Imports nothing from the crate. Relations between bounds are checked at
//! compile time so a change to one cannot silently break another.

/// Largest request frame accepted from a client (Kafka's `socket.request.max.bytes` default).
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Requests read from one connection but not yet answered. Past this the
/// connection stops reading its socket (backpressure), as Kafka's
/// `max.in.flight.requests.per.connection` bounds the client side.
pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX: usize = 64;

/// Request bytes read from one connection but not yet answered.
pub const CONNECTION_BYTES_IN_FLIGHT_MAX: usize = 256 * 1024 * 1024;

/// Depth of each cross-shard channel in the mesh, in messages.
pub const MESH_CHANNEL_DEPTH: usize = 1024;

/// Shards (executors) one broker runs.
pub const SHARDS_MAX: usize = 256;

/// Partitions one topic may have.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;

/// Topics one broker holds.
pub const TOPICS_MAX: usize = 100_000;

/// Longest topic name Kafka accepts.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Longest a fetch may wait (`fetch.max.wait.ms` is capped here).
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

/// Largest response a single fetch assembles, whatever the client asks.
pub const FETCH_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Default of `fetch.max.bytes`, the broker's cap on a consumer's fetch
/// response (Kafka's: 55 MiB). A response is read into memory whole before
/// it is sent (Kafka sends from the page cache), so this bounds a fetch's
/// memory; measured with 512 partitions (600 MB) read from disk by 4
/// consumers on the 2-core machine: 522-542 MB/s at 16 MiB against 428-474
/// at 55 MiB in the same run (4-32 MiB: 494-584).
pub const FETCH_MAX_BYTES_DEFAULT: usize = 16 * 1024 * 1024;

/// Batches remembered per producer id and partition for duplicate detection
/// (Kafka keeps five: the client's max in-flight requests with idempotence).
pub const PRODUCER_BATCHES_REMEMBERED: usize = 5;

/// Producer ids remembered per partition; the oldest idle one is forgotten past this.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;

/// Produce batches waiting for one group commit on a shard.
pub const COMMIT_WAITERS_PER_SHARD_MAX: usize = 65_536;

/// Rounds of reads one fetch makes to spend its response budget: the
/// first reads the partitions the budget covers in request order; a next
/// one gives what partitions with less data left unspent to those that had
/// no share (each round is one call per owner shard).
pub const FETCH_READ_ROUNDS_MAX: usize = 8;

/// Records one consumer fetch response carries (about; whole batches, and
/// a first batch always). Binds only below about 512-byte records, where a
/// byte budget alone sends so many records that librdkafka's consumer
/// queue passes `queued.min.messages` (100,000) and the client stops
/// fetching for `fetch.queue.backoff.ms` (1 s): 8 partitions of 100-byte
/// records were read at 20 MB/s with 16 MiB responses, 69-71 MB/s with 1-4.
pub const FETCH_RESPONSE_RECORDS_MAX: usize = 32_768;

/// How long a fetch that already holds records keeps starting disk reads
/// (reads in flight then finish; the partitions after them get only what
/// the caches hold). When the disk is shared by many readers, a consumer
/// gets what is ready instead of waiting for its whole budget: 4 consumers
/// of 512 partitions waited up to 0.3 s between records without it.
pub const FETCH_DISK_READ_MS: u64 = 50;

/// Partitions one long-polling fetch waits on at one owner shard (one
/// `WaitThenRead` call). The waiters a shard holds in all are bounded by its
/// connections (`max.connections`) times their requests in flight, times
/// this; a waiter whose fetch ended is dropped at the partition's next
/// wait or append.
pub const FETCH_WAITS_PER_CALL_MAX: usize = 65_536;

/// Kafka's default `max.incremental.fetch.session.cache.slots`: fetch
/// sessions (KIP-227) the node keeps, split evenly between its shards.
pub const FETCH_SESSION_CACHE_SLOTS_DEFAULT: usize = 1_000;

/// Most `max.incremental.fetch.session.cache.slots` may be set to: with
/// `FETCH_SESSION_PARTITIONS_PER_SHARD_MAX` bounding the partitions cached,
/// this bounds the sessions' own overhead (a few hundred bytes each).
pub const FETCH_SESSION_CACHE_SLOTS_MAX: usize = 100_000;

/// Partitions one fetch session may hold; a full fetch of more is answered
/// without a session, as when the cache is full.
pub const FETCH_SESSION_PARTITIONS_MAX: usize = 10_000;

/// Partitions all fetch sessions of one shard may hold (an entry is a
/// topic key and about 60 bytes of offsets: some tens of MiB at most).
pub const FETCH_SESSION_PARTITIONS_PER_SHARD_MAX: usize = 262_144;

/// A fetch session idle this long may be evicted for a new one, and one
/// created this long ago may be evicted for a more valuable one (Kafka's
/// `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`, a constant there too).
pub const FETCH_SESSION_EVICTION_MS: u64 = 120_000;

/// How long a broker may take from its start until every shard serves
/// (recovery of every partition included). Past it the process exits with a
/// line naming the shard that is stuck and its phase (`server::run`).
pub const SHARD_START_MS_MAX: u64 = 300_000;

/// How long a broker may take to stop once asked (SIGTERM, SIGINT, a shard
/// that failed): flushing, closing logs, leaving the cluster. Past it the
/// process exits anyway, naming the shards still running; what they had not
/// closed is recovered at the next start, as after a crash.
pub const SHARD_STOP_MS_MAX: u64 = 30_000;

/// How often each shard's heartbeat task records that the shard runs
/// (`shard::watch`), and how often the supervisor checks the heartbeats.
pub const SHARD_HEARTBEAT_MS: u64 = 100;

/// A shard whose heartbeat is older than this is reported as stalled (once
/// per stall) and woken from outside (`shard::watch`).
pub const SHARD_STALL_MS: u64 = 2_000;

/// How often each shard's scheduling probe wakes in the request queue to
/// measure how late a due task runs (`server::broker`, `sched_delay_us` in
/// `shard-stats`). 40 timer wake-ups a second per shard, a few microseconds
/// each (measured: an idle 2-shard broker used 0.5% of a core without the
/// probe and 1.3% with one every 10 ms); a stall shows if a wake-up falls
/// due inside it, so stalls are sampled, not all counted.
pub const SCHED_PROBE_INTERVAL_MS: u64 = 25;

/// A probe wake-up later than this counts as a stall (`sched_stalls`): the
/// shard was held by one task or reactor turn for about the preempt timer's
/// default or longer.
pub const SCHED_STALL_US: u64 = 10_000;

/// Nudges a shard may leave unanswered (it is stuck in a system call) before
/// the supervisor stops sending more: each holds a reference to a task, and
/// glommio counts those in an `i16`.
pub const SHARD_NUDGES_PENDING_MAX: usize = 64;

/// The smallest unit of O_DIRECT I/O on the supported filesystems.
pub const DISK_BLOCK_BYTES: usize = 4096;

/// Largest records section a batch may decompress to when the broker must
/// look inside it (compaction, compression.type, keys of compacted topics):
/// bounds the memory a crafted "zip bomb" batch can take.
pub const RECORDS_DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Keys one log-cleaner pass remembers (128-bit key hash -> offset, about
/// 40 bytes each with the map's overhead: 10 MiB per shard at most, as the
/// shard cleans one partition at a time). A dirty section with more keys is
/// cleaned in several passes, as Kafka's bounded OffsetMap does.
pub const CLEANER_KEYS_MAX: usize = 256 * 1024;

/// Closed segments one cleaner pass may rewrite before it hands the shard
/// back (the next housekeeping round continues): bounds a pass's I/O.
pub const CLEANER_SEGMENTS_PER_PASS_MAX: usize = 64;

/// Consumer groups one shard coordinates (past this JoinGroup answers
/// COORDINATOR_NOT_AVAILABLE): bounds the coordinator's memory per shard.
pub const GROUPS_PER_SHARD_MAX: usize = 100_000;

/// Members (plus pending member ids) in one group: Kafka's `group.max.size`.
pub const GROUP_MEMBERS_MAX: usize = 1_000;

/// Protocol names and metadata one member sends in JoinGroup, in bytes.
pub const GROUP_MEMBER_METADATA_BYTES_MAX: usize = 1024 * 1024;

/// Assignments a leader sends in one SyncGroup, in bytes (all members).
pub const GROUP_ASSIGNMENT_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Longest group id accepted.
pub const GROUP_ID_BYTES_MAX: usize = 4096;

/// Longest member id a KIP-848 member may choose (clients send a 22-byte
/// base64 UUID): bounds what the coordinator stores per member.
pub const GROUP_MEMBER_ID_BYTES_MAX: usize = 1024;

/// Committed offsets one group keeps (distinct topic-partitions).
pub const OFFSETS_PER_GROUP_MAX: usize = 1_000_000;

/// Kafka's `offset.metadata.max.bytes`: the metadata string of one commit.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Partitions `offsets.topic.num.partitions` may ask for.
pub const OFFSETS_TOPIC_PARTITIONS_MAX: i32 = 1_000;

/// Replicas one partition may have (`default.replication.factor`,
/// `offsets.topic.replication.factor`, a CreateTopics replication factor).
pub const REPLICATION_FACTOR_MAX: i16 = 16;

/// Voters in the controller quorum (`controller.quorum.voters`). Raft
/// commits need a majority, so more voters make every commit slower.
pub const CONTROLLER_VOTERS_MAX: usize = 16;

/// Largest server properties or TOML file `corelog serve --config` reads.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Nodes `corelog dev-cluster` starts on one machine.
pub const DEV_CLUSTER_NODES_MAX: usize = 16;
/// Longest a shard's committer may hold a round open to gather appends
/// (tuning `group_commit_window_us`): every acks=all produce may wait this long.
pub const GROUP_COMMIT_WINDOW_US_MAX: u64 = 100_000;

/// Socket buffer sizes a tuning profile may ask for (SO_SNDBUF, SO_RCVBUF).
pub const SOCKET_BUFFER_BYTES_MIN: usize = 4 * 1024;
pub const SOCKET_BUFFER_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Largest per-shard budget for tail caches and read-ahead windows.
pub const SHARD_MEMORY_BYTES_MAX: usize = 64 * 1024 * 1024 * 1024;

/// Largest read-ahead one fetch's disk read may add (one DMA read).
pub const FETCH_READ_AHEAD_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Used-up read-ahead windows one partition log keeps for the readers
/// that trail the first one (`log/cache.rs`, recent windows).
pub const RECENT_WINDOWS_MAX: usize = 8;

/// Largest tail cache one partition keeps (appended batches kept in memory
/// for caught-up consumers); the shard budget may allow less.
pub const TAIL_CACHE_BYTES_MAX: usize = 8 * 1024 * 1024;

const _: () = assert!(FRAME_BYTES_MAX <= CONNECTION_BYTES_IN_FLIGHT_MAX);
const _: () = assert!(DEV_CLUSTER_NODES_MAX <= CONTROLLER_VOTERS_MAX);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(FETCH_SESSION_CACHE_SLOTS_DEFAULT <= FETCH_SESSION_CACHE_SLOTS_MAX);
const _: () = assert!(FETCH_SESSION_CACHE_SLOTS_MAX <= i32::MAX as usize);
const _: () = assert!(FETCH_SESSION_PARTITIONS_MAX <= FETCH_SESSION_PARTITIONS_PER_SHARD_MAX);
const _: () = assert!(i32::MAX as usize / SHARDS_MAX > 1_000_000);
const _: () = assert!(DISK_BLOCK_BYTES.is_power_of_two());
const _: () = assert!(CONNECTION_REQUESTS_IN_FLIGHT_MAX <= MESH_CHANNEL_DEPTH);
const _: () = assert!(RECORDS_DECOMPRESSED_BYTES_MAX >= FRAME_BYTES_MAX);
const _: () = assert!(OFFSETS_TOPIC_PARTITIONS_MAX <= TOPIC_PARTITIONS_MAX);
const _: () = assert!(GROUP_MEMBER_METADATA_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(SHARD_HEARTBEAT_MS * 10 <= SHARD_STALL_MS);
const _: () = assert!(SHARD_STALL_MS * 10 <= SHARD_STOP_MS_MAX);
const _: () = assert!(SCHED_PROBE_INTERVAL_MS * 4 <= SHARD_HEARTBEAT_MS);
const _: () = assert!(SHARD_NUDGES_PENDING_MAX < i16::MAX as usize / 2);

/// Largest controller-quorum frame (a Raft message with entries or a
/// snapshot of the metadata image, or a controller request).
pub const CONTROLLER_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Raft messages queued for one unreachable peer before new ones are
/// dropped (Raft resends what a peer missed).
pub const CONTROLLER_PEER_QUEUE_MAX: usize = 1024;

/// Brokers the metadata image may register.
pub const CLUSTER_BROKERS_MAX: usize = 10_000;

/// Longest broker host name a registration may carry (DNS's limit).
pub const HOST_NAME_BYTES_MAX: usize = 255;

/// Largest controller Raft log file read at start (entries are compacted
/// into a snapshot every `CONTROLLER_LOG_ENTRIES_MAX`; a larger file is
/// damaged, and is refused rather than read into memory).
pub const CONTROLLER_LOG_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// Connections the controller listener serves at once (peer controllers and
/// brokers' short requests); more are closed at once.
pub const CONTROLLER_CONNECTIONS_MAX: usize = 256;

/// A controller connection that sends nothing for this long is closed.
pub const CONTROLLER_IDLE_MS_MAX: u64 = 60_000;

/// Bytes read at a time while a controller frame arrives: a frame's memory
/// grows with the bytes received, never on the strength of its length prefix.
pub const CONTROLLER_READ_CHUNK_BYTES: usize = 64 * 1024;

/// Log entries kept after the applied snapshot before the log is compacted.
pub const CONTROLLER_LOG_ENTRIES_MAX: usize = 4096;

const _: () = assert!(CONTROLLER_READ_CHUNK_BYTES <= CONTROLLER_FRAME_BYTES_MAX);
const _: () = assert!(CONTROLLER_FRAME_BYTES_MAX as u64 <= CONTROLLER_LOG_BYTES_MAX);

// ---------------------------------------------------------------------------
// Connections and request memory (server/connection/: frames are read in
// reader.rs, the shard's request memory and memory trim are in shard.rs;
// config keys of the same Kafka names).

/// Kafka's default `socket.request.max.bytes`. The config may lower the
/// frame bound below `FRAME_BYTES_MAX`, never raise it past it.
pub const SOCKET_REQUEST_BYTES_DEFAULT: usize = 100 * 1024 * 1024;

/// Largest request other than Produce, in bytes after the size prefix.
/// Produce carries records, which stay one zero-copy slice of the frame;
/// every other request decodes into structs, and nothing a client sends
/// through them needs more than a few megabytes (a consumer group leader's
/// SyncGroup with the assignments of a thousand members is about 4 MiB).
pub const REQUEST_WITHOUT_RECORDS_BYTES_MAX: usize = 8 * 1024 * 1024;

/// How much larger than its wire bytes a request other than Produce may be
/// once decoded: an empty array element is 2 bytes on the wire and about 80
/// decoded (a Metadata v9 topic entry), the worst case found across the
/// APIs. Such a request reserves this multiple of its size from the
/// request memory (`queued.max.request.bytes`), so decoded memory stays
/// within the share, or one frame of at most
/// `REQUEST_WITHOUT_RECORDS_BYTES_MAX` times this when it is read alone.
pub const REQUEST_DECODED_BYTES_PER_WIRE_BYTE_MAX: usize = 40;

/// Smallest `socket.request.max.bytes` accepted: below this not even an
/// ApiVersions request with a long client id fits.
pub const SOCKET_REQUEST_BYTES_MIN: usize = 1024;

/// corelog's default `queued.max.request.bytes` for the whole node (Kafka's
/// default, -1, is unbounded): request bytes being read or waiting to be
/// answered, split evenly between the shards. 256 MiB is 2.5 frames of the
/// largest size, so big produce requests still pipeline, while a node whose
/// clients all send at once stays well inside a few GiB of memory even
/// counting what decoding adds on top of the wire bytes.
pub const QUEUED_REQUEST_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// Smallest explicit `queued.max.request.bytes` (other than -1).
pub const QUEUED_REQUEST_BYTES_MIN: u64 = 1024 * 1024;

/// Kafka's default `connections.max.idle.ms` (10 minutes).
pub const CONNECTIONS_IDLE_MS_DEFAULT: u64 = 600_000;

/// Smallest `connections.max.idle.ms` accepted.
pub const CONNECTIONS_IDLE_MS_MIN: u64 = 100;

/// How long a request frame may take to arrive once its first byte has
/// (slowloris bound; the smaller of this and `connections.max.idle.ms`
/// applies). Kafka clients abandon a request after their request timeout
/// (30 s in the Java clients, 60 s socket.timeout.ms in librdkafka), so a
/// frame still arriving after a minute is one no client is waiting for.
pub const FRAME_READ_MS_MAX: u64 = 60_000;

/// Read buffer a connection starts each frame with, and the smallest step
/// it grows by. Reads only fill buffer space that was zeroed first (safe
/// Rust cannot read into uninitialised memory), so steps stay small for
/// small requests and grow with the bytes actually received.
pub const CONNECTION_READ_BYTES_MIN: usize = 4 * 1024;

/// Largest single growth step of a frame buffer: a large frame is read in
/// steps of at most this, each taken only once the previous ones filled.
pub const CONNECTION_READ_STEP_BYTES_MAX: usize = 1024 * 1024;

/// Frames larger than this count towards `MEMORY_TRIM_FREED_BYTES_MIN`
/// when they are freed (smaller ones come and go from the allocator's
/// caches).
pub const CONNECTION_LARGE_FRAME_BYTES: usize = 64 * 1024;

/// Response bytes made but not yet written to a client that does not read
/// them; past this the connection stops reading new requests.
pub const CONNECTION_RESPONSE_BYTES_QUEUED_MAX: usize = 64 * 1024 * 1024;

/// How often a shard considers giving freed heap memory back to the kernel
/// (`malloc_trim`), and only after connections closed or large frames were
/// freed since the last time.
pub const MEMORY_TRIM_INTERVAL_MS: u64 = 5_000;

/// Memory freed on a shard (closed connections, large frames) before it
/// asks the allocator to hand free pages back: below this, a trim's walk
/// over the free lists costs more than the memory is worth.
pub const MEMORY_TRIM_FREED_BYTES_MIN: u64 = 16 * 1024 * 1024;

/// What one closed connection frees, for `MEMORY_TRIM_FREED_BYTES_MIN`
/// (measured: about 8 KiB per idle connection; its read buffer included).
pub const CONNECTION_FREED_BYTES_ESTIMATE: usize = 8 * 1024;

/// Entries of `max.connections.per.ip.overrides`.
pub const CONNECTION_IP_OVERRIDES_MAX: usize = 1024;

const _: () = assert!(SOCKET_REQUEST_BYTES_DEFAULT <= FRAME_BYTES_MAX);
const _: () = assert!(SOCKET_REQUEST_BYTES_MIN <= SOCKET_REQUEST_BYTES_DEFAULT);
const _: () = assert!(REQUEST_WITHOUT_RECORDS_BYTES_MAX <= SOCKET_REQUEST_BYTES_DEFAULT);
const _: () = assert!(
    (REQUEST_WITHOUT_RECORDS_BYTES_MAX * REQUEST_DECODED_BYTES_PER_WIRE_BYTE_MAX) as u64
        <= 2 * QUEUED_REQUEST_BYTES_DEFAULT
);
const _: () = assert!(QUEUED_REQUEST_BYTES_MIN <= QUEUED_REQUEST_BYTES_DEFAULT);
const _: () = assert!(CONNECTION_READ_BYTES_MIN <= CONNECTION_READ_STEP_BYTES_MAX);
const _: () = assert!(CONNECTION_READ_BYTES_MIN <= CONNECTION_LARGE_FRAME_BYTES);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX <= CONNECTION_RESPONSE_BYTES_QUEUED_MAX);
const _: () = assert!(CONNECTIONS_IDLE_MS_MIN <= CONNECTIONS_IDLE_MS_DEFAULT);

/// Decompressed bytes read from a codec at a time when a batch's records
/// are walked (produce validation, scrub, recovery): the memory a
/// compressed batch costs beyond the codec's own state.
pub const RECORDS_INFLATE_CHUNK_BYTES: usize = 64 * 1024;

/// Largest zstd window (log2 bytes) a frame may ask the decoder for:
/// zstd's own default limit (128 MiB), which Kafka's decoder keeps too.
/// Without it the frame header would choose the decoder's memory.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A file of this many bytes kept in the data directory and deleted when
/// the disk is full, so the writes that free space (the topic catalog of a
/// DeleteTopics, the log-start checkpoint of a DeleteRecords) still find
/// room. Recreated once space returns.
pub const DISK_RESERVE_BYTES: u64 = 4 * 1024 * 1024;

/// How often a repeated failure (a flush on a full disk, a read of a
/// corrupt segment) is logged: the first at once, then one line per
/// interval with how many happened meanwhile.
pub const LOG_REPEAT_INTERVAL_MS: u64 = 30_000;

/// Default of `log.scrub.io.max.bytes.per.second`: bytes of stored
/// segments each shard reads per second to verify them in the background.
pub const SCRUB_BYTES_PER_SECOND_DEFAULT: u64 = 32 * 1024 * 1024;
/// Most `log.scrub.io.max.bytes.per.second` may be set to.
pub const SCRUB_BYTES_PER_SECOND_MAX: u64 = 1024 * 1024 * 1024;
/// Bytes one scrub step reads before it yields and sleeps off its share.
pub const SCRUB_STEP_BYTES: u64 = 1024 * 1024;
/// Default of `log.scrub.interval.ms`: how long a verified segment goes
/// before it is verified again (a week, like a weekly RAID scrub).
pub const SCRUB_INTERVAL_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;

const _: () = assert!(RECORDS_INFLATE_CHUNK_BYTES <= RECORDS_DECOMPRESSED_BYTES_MAX);
const _: () = assert!((1usize << ZSTD_WINDOW_LOG_MAX) <= RECORDS_DECOMPRESSED_BYTES_MAX);
const _: () = assert!(SCRUB_BYTES_PER_SECOND_DEFAULT <= SCRUB_BYTES_PER_SECOND_MAX);
const _: () = assert!(SCRUB_STEP_BYTES <= SCRUB_BYTES_PER_SECOND_DEFAULT);

/// Largest producer-state snapshot file read at open: PRODUCERS_PER_PARTITION_MAX
/// producers with PRODUCER_BATCHES_REMEMBERED batches each take a few MiB
/// of JSON; a larger file is damaged, and is skipped rather than read.
pub const PRODUCER_SNAPSHOT_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// How long a broker in controlled shutdown keeps serving for its catalog
/// to show that the controller moved its leaderships away.
pub const LEADERSHIP_HANDOVER_WAIT_MS: u64 = 3_000;
/// How long it serves after that, answering NOT_LEADER_OR_FOLLOWER to the
/// requests still coming to it, so their clients look for the new leaders
/// at once rather than after a closed connection.
pub const LEADERSHIP_HANDOVER_GRACE_MS: u64 = 200;
/// Longest an operator's stop (SIGTERM) waits for the controlled shutdown
/// (reaching the controller, the handover above) before the broker stops
/// anyway.
pub const CONTROLLED_SHUTDOWN_MS_MAX: u64 = 10_000;

/// Partition lines (leader and ISR changes) one catalog change logs at
/// INFO; the rest are counted in one line, so a change of every partition
/// of a large cluster does not flood the log.
pub const CATALOG_CHANGE_LINES_MAX: usize = 100;
/// How often a broker logs its connection counts (opened and closed
/// since the last line, per node), when any changed.
pub const CONNECTION_SUMMARY_INTERVAL_MS: u64 = 60_000;
/// How often log recovery at start reports its progress.
pub const RECOVERY_PROGRESS_INTERVAL_MS: u64 = 5_000;

/// Open connections to the HTTP listener (`http.listeners`); one more is
/// closed right after accept.
pub const HTTP_CONNECTIONS_MAX: usize = 64;
/// A connection to the HTTP listener must send a whole request head within
/// this long of connecting or of its previous answer (which includes
/// writing that answer); past it the connection is closed.
pub const HTTP_REQUEST_HEAD_MS: u64 = 10_000;
/// The HTTP listener's read buffer, which bounds a request head (hyper's
/// smallest allowed is 8 KiB); a larger head gets 431 and is closed.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Header lines one HTTP request may carry.
pub const HTTP_HEADERS_MAX: usize = 64;
/// Largest request body the HTTP listener takes (its endpoints read none);
/// a larger or chunked one gets 413 and the connection is closed.
pub const HTTP_BODY_BYTES_MAX: u64 = 1024;
/// After an answer that ends its connection (a 400, a 413), the HTTP
/// listener reads and drops what the client still sends, for at most this
/// long and this many bytes, before it closes: a socket closed with unread
/// bytes is reset, and a reset can destroy the answer before the client
/// reads it.
pub const HTTP_LINGER_MS: u64 = 1_000;
pub const HTTP_LINGER_BYTES_MAX: usize = 256 * 1024;
/// Largest request body the console's JSON admin API (`/api/v1/...`)
/// takes: its mutating calls carry small JSON objects (a topic to create
/// with its configs, configs to alter, offsets to reset). A larger or
/// chunked one gets 413 and the connection is closed.
pub const HTTP_API_BODY_BYTES_MAX: u64 = 64 * 1024;
/// Entries one admin API list returns at most (topics, groups, a group's
/// members and offsets, a topic's partitions, configs); the answer says
/// `"truncated": true` when there were more.
pub const HTTP_API_LIST_MAX: usize = 1_000;
/// Records one message-browser request returns at most, and the default.
pub const HTTP_API_RECORDS_MAX: usize = 100;
pub const HTTP_API_RECORDS_DEFAULT: usize = 20;
/// Bytes of records one message-browser request reads from its partition
/// at most (its Fetch's max bytes).
pub const HTTP_API_FETCH_BYTES_MAX: i32 = 1024 * 1024;
/// Bytes of one record's key, value or header value shown at most; longer
/// ones are cut and marked truncated.
pub const HTTP_API_FIELD_BYTES_MAX: usize = 16 * 1024;
/// How long an admin API call that changes topics waits for it (the
/// `timeout_ms` of its CreateTopics, DeleteTopics, CreatePartitions).
pub const HTTP_API_TIMEOUT_MS: i32 = 30_000;
/// How long a scrape waits for the other shards' figures; a shard that
/// does not answer in time is left out of that scrape.
pub const METRICS_SHARD_CALL_MS: u64 = 5_000;
/// Default of `metrics.partition.limit`: partitions whose families one
/// scrape exports.
pub const METRICS_PARTITIONS_DEFAULT: usize = 5_000;
/// Largest `metrics.partition.limit` (the node's partitions, at most).
pub const METRICS_PARTITIONS_MAX: usize = 1_000_000;

const _: () = assert!(HTTP_HEAD_BYTES_MAX >= 8192);
const _: () = assert!(HTTP_API_BODY_BYTES_MAX >= HTTP_BODY_BYTES_MAX);
const _: () = assert!(HTTP_API_RECORDS_DEFAULT <= HTTP_API_RECORDS_MAX);
const _: () = assert!(HTTP_API_FIELD_BYTES_MAX <= HTTP_API_FETCH_BYTES_MAX as usize);
const _: () = assert!(METRICS_PARTITIONS_DEFAULT <= METRICS_PARTITIONS_MAX);
