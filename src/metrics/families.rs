//! Every metric family the broker exports, as one table: name, type,
//! labels and meaning. The scrape renders families only through these
//! entries, and `docs/metrics.md` is generated from them (`families_doc`),
//! so nothing is exported undocumented.
//!
//! Names follow Prometheus' conventions (base units, `_total` for
//! counters, `_seconds`, `_bytes`) after the figures Kafka's JMX metrics
//! and Redpanda's public metrics give, prefixed `corelog_`.

/// A family's Prometheus type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    /// Label names, in the order samples carry them.
    pub labels: &'static [&'static str],
    /// The `# HELP` line: what one sample means.
    pub help: &'static str,
}

/// A family (`const`, for the tables here and in `cluster_families`).
pub const fn family(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        kind,
        labels,
        help,
    }
}

use Kind::{Counter, Gauge, Histogram};

const SHARD: &[&str] = &["shard"];
const PARTITION: &[&str] = &["topic", "partition"];

// The node.
pub const BUILD_INFO: Family = family(
    "corelog_build_info",
    Gauge,
    &["version"],
    "Always 1; the version label is the corelog release this process runs.",
);
pub const UPTIME: Family = family(
    "corelog_uptime_seconds",
    Gauge,
    &[],
    "Seconds since this node's shard 0 started (the HTTP listener with it).",
);
pub const PARTITIONS_OMITTED: Family = family(
    "corelog_metrics_partitions_omitted",
    Gauge,
    &[],
    "Partitions this node holds whose per-partition families this scrape left out (past metrics.partition.limit).",
);

// Requests, per API (Kafka's names: Produce, Fetch, Metadata, ...).
pub const API_REQUESTS: Family = family(
    "corelog_api_requests_total",
    Counter,
    &["api", "version"],
    "Requests of this API handled by the node, by request version (`unknown`: an ApiVersions request of a version the broker does not know).",
);
pub const API_ERRORS: Family = family(
    "corelog_api_errors_total",
    Counter,
    &["api", "error_code"],
    "Error codes in answers of this API, by Kafka error code: every error_code field of the answer (top level, per topic, partition, group or other entry). NONE (0) is not counted.",
);
pub const API_DURATION: Family = family(
    "corelog_api_request_duration_seconds",
    Histogram,
    &["api"],
    "Time from a decoded request to its encoded answer (partition work on other shards, group commits, replication and long polls included; the socket write is not). Its count is the requests handled.",
);

// Requests, per API: where their time goes, how many are open, their sizes.
const API: &[&str] = &["api"];
pub const API_QUEUE: Family = family(
    "corelog_api_request_queue_seconds",
    Histogram,
    API,
    "Time from a request's whole frame read off the socket to its handler's start: waiting for the connection's in-flight bounds, decoding and the shard's scheduling.",
);
pub const API_LOCAL: Family = family(
    "corelog_api_request_local_seconds",
    Histogram,
    API,
    "The handler's own work on the shard: the time spent polling the request's handler (answer encoding included).",
);
pub const API_WAIT: Family = family(
    "corelog_api_request_wait_seconds",
    Histogram,
    API,
    "The rest of the request's duration: the handler waiting for group commits and fsyncs, replication acknowledgements, long polls, other shards' work and its turn on the shard after a wake-up.",
);
pub const API_SEND: Family = family(
    "corelog_api_response_send_seconds",
    Histogram,
    API,
    "Time from the answer encoded to written to the socket, waiting behind the connection's earlier answers included. Answers not written (acks=0 produce, a closed connection) are not counted.",
);
pub const API_IN_FLIGHT: Family = family(
    "corelog_api_requests_in_flight",
    Gauge,
    API,
    "Requests of this API read and not yet answered (written, or dropped with their connection).",
);
pub const API_REQUEST_SIZE: Family = family(
    "corelog_api_request_size_bytes",
    Histogram,
    API,
    "Sizes of requests of this API as read: their frames, size prefix included.",
);
pub const API_RESPONSE_SIZE: Family = family(
    "corelog_api_response_size_bytes",
    Histogram,
    API,
    "Sizes of the answers to this API: their frames, size prefix included (acks=0 produce has none).",
);

// Per shard.
pub const SHARD_REQUESTS: Family = family(
    "corelog_shard_requests_total",
    Counter,
    &["shard", "kind"],
    "Requests handled by this shard's connections, by kind: produce, fetch (consumers' and followers') or other.",
);
pub const SHARD_PRODUCE_WAITS: Family = family(
    "corelog_shard_produce_waits_total",
    Counter,
    SHARD,
    "Produce requests (acks 1 or all) that waited for their partitions' acknowledgements.",
);
pub const SHARD_PRODUCE_WAIT: Family = family(
    "corelog_shard_produce_wait_seconds_total",
    Counter,
    SHARD,
    "Time those produce requests waited: the owner's append, its group commit and, for acks=all, replication.",
);
pub const SHARD_FETCH_WAITS: Family = family(
    "corelog_shard_fetch_waits_total",
    Counter,
    SHARD,
    "Fetch requests that parked in a long poll (fewer than min_bytes were available).",
);
pub const SHARD_FETCH_WAIT: Family = family(
    "corelog_shard_fetch_wait_seconds_total",
    Counter,
    SHARD,
    "Time those fetches were parked waiting for data.",
);
pub const SHARD_MESH_SENT: Family = family(
    "corelog_shard_mesh_sent_total",
    Counter,
    SHARD,
    "Cross-shard calls this shard sent (partition work for another core, catalog changes).",
);
pub const SHARD_MESH_RECEIVED: Family = family(
    "corelog_shard_mesh_received_total",
    Counter,
    SHARD,
    "Cross-shard calls this shard served.",
);
pub const SHARD_MESH_DELAY: Family = family(
    "corelog_shard_mesh_delay_seconds_total",
    Counter,
    SHARD,
    "Over served cross-shard calls: time from the caller's send to the start of the serving task here.",
);
pub const SHARD_CACHE_USED: Family = family(
    "corelog_shard_cache_bytes",
    Gauge,
    SHARD,
    "Memory this shard's read caches (tail caches and read-ahead windows) hold.",
);
pub const SHARD_CACHE_BUDGET: Family = family(
    "corelog_shard_cache_budget_bytes",
    Gauge,
    SHARD,
    "The shard's memory budget for those caches (tuning shard_memory_bytes).",
);
pub const SHARD_CONNECTIONS_OPEN: Family = family(
    "corelog_shard_connections_open",
    Gauge,
    SHARD,
    "Client connections this shard serves now.",
);
pub const SHARD_CONNECTIONS_ACCEPTED: Family = family(
    "corelog_shard_connections_accepted_total",
    Counter,
    SHARD,
    "Client connections this shard accepted, refused ones included.",
);
pub const SHARD_CONNECTIONS_REFUSED: Family = family(
    "corelog_shard_connections_refused_total",
    Counter,
    SHARD,
    "Client connections closed right after accept by max.connections or max.connections.per.ip.",
);
pub const SHARD_BUSY: Family = family(
    "corelog_shard_busy_seconds_total",
    Counter,
    SHARD,
    "Time the shard's executor ran tasks or polled for I/O (idle parking excluded).",
);
pub const SHARD_CPU: Family = family(
    "corelog_shard_cpu_seconds_total",
    Counter,
    SHARD,
    "CPU time (user and system) of the shard's thread.",
);
pub const SHARD_COMMIT_ROUNDS: Family = family(
    "corelog_shard_commit_rounds_total",
    Counter,
    SHARD,
    "Group-commit rounds (one write and fdatasync per partition with appends).",
);
pub const SHARD_DISK_READ_BYTES: Family = family(
    "corelog_shard_disk_read_bytes_total",
    Counter,
    SHARD,
    "Bytes this shard read from segment files.",
);
pub const SHARD_PARTITIONS: Family = family(
    "corelog_shard_partitions",
    Gauge,
    SHARD,
    "Partitions (led or followed) this shard holds.",
);

// Storage, per shard (the log's flushes, rolls, retention, compaction)
// and per log directory.
pub const STORAGE_FSYNC: Family = family(
    "corelog_storage_fsync_seconds",
    Histogram,
    SHARD,
    "Latency of the fsyncs of the log's flushes (group commits, closing rolled segments): an fdatasync, or a write made durable by itself.",
);
pub const STORAGE_FSYNC_SIZE: Family = family(
    "corelog_storage_fsync_size_bytes",
    Histogram,
    SHARD,
    "Bytes each of those fsyncs made durable: what its flush wrote to the segment file, in whole disk blocks.",
);
pub const STORAGE_ROLLS: Family = family(
    "corelog_storage_segment_rolls_total",
    Counter,
    SHARD,
    "New segments the shard's logs rolled to (segment.bytes, segment.ms or the offset span of a segment).",
);
pub const STORAGE_RETENTION_SEGMENTS: Family = family(
    "corelog_storage_retention_segments_deleted_total",
    Counter,
    SHARD,
    "Segments retention deleted (retention.ms, retention.bytes, or wholly below the log start offset).",
);
pub const STORAGE_RETENTION_BYTES: Family = family(
    "corelog_storage_retention_bytes_deleted_total",
    Counter,
    SHARD,
    "Bytes of those segments.",
);
pub const STORAGE_COMPACTION_RUNS: Family = family(
    "corelog_storage_compaction_runs_total",
    Counter,
    SHARD,
    "Compaction (log cleaner) runs completed on the shard's logs.",
);
pub const STORAGE_COMPACTION_REMOVED: Family = family(
    "corelog_storage_compaction_bytes_removed_total",
    Counter,
    SHARD,
    "Bytes those runs removed: their input segments' size minus their output's.",
);
pub const LOG_DIR_FREE: Family = family(
    "corelog_log_dir_free_bytes",
    Gauge,
    &["dir"],
    "Bytes available to the broker on the log directory's file system (statvfs: blocks available to unprivileged users).",
);
pub const LOG_DIR_TOTAL: Family = family(
    "corelog_log_dir_total_bytes",
    Gauge,
    &["dir"],
    "Size of the log directory's file system.",
);
pub const STORAGE_RECOVERY: Family = family(
    "corelog_storage_recovery_seconds",
    Gauge,
    &[],
    "Time log recovery took at this start, until every partition of the node was opened (no sample while it runs).",
);

// Per shard: scheduling.
pub const SHARD_TASK_DELAY: Family = family(
    "corelog_shard_task_delay_seconds",
    Histogram,
    SHARD,
    "How late a probe task of the shard's request queue ran against its timer (it sleeps 25 ms at a time): a task or reactor turn holding the shard, or a core shared with other work.",
);
pub const SHARD_STALLS: Family = family(
    "corelog_shard_stalls_total",
    Counter,
    SHARD,
    "Probe wake-ups later than 10 ms: the shard was held that long (sampled: a stall shows when a wake-up falls due inside it).",
);

// Per partition this node holds (up to metrics.partition.limit).
pub const PARTITION_SIZE: Family = family(
    "corelog_partition_log_size_bytes",
    Gauge,
    PARTITION,
    "Bytes of the partition's log segments on this node.",
);
pub const PARTITION_START: Family = family(
    "corelog_partition_log_start_offset",
    Gauge,
    PARTITION,
    "The partition's log start offset on this node.",
);
pub const PARTITION_END: Family = family(
    "corelog_partition_log_end_offset",
    Gauge,
    PARTITION,
    "The partition's log end offset on this node (the next offset to be written).",
);
pub const PARTITION_HIGH_WATERMARK: Family = family(
    "corelog_partition_high_watermark",
    Gauge,
    PARTITION,
    "The partition's high watermark as this node knows it (what consumers may read up to).",
);
pub const PARTITION_SEGMENTS: Family = family(
    "corelog_partition_segments",
    Gauge,
    PARTITION,
    "Log segments of the partition on this node, the active one included.",
);
pub const PARTITION_BYTES_IN: Family = family(
    "corelog_partition_bytes_in_total",
    Counter,
    PARTITION,
    "Bytes of batches producers appended to the partition on this node since it was opened.",
);
pub const PARTITION_RECORDS_IN: Family = family(
    "corelog_partition_records_in_total",
    Counter,
    PARTITION,
    "Records producers appended to the partition on this node since it was opened.",
);
pub const PARTITION_BYTES_OUT: Family = family(
    "corelog_partition_bytes_out_total",
    Counter,
    PARTITION,
    "Bytes of batches read from the partition for consumers' fetches on this node since it was opened (followers' replication fetches are not counted).",
);
pub const PARTITION_RECORDS_OUT: Family = family(
    "corelog_partition_records_out_total",
    Counter,
    PARTITION,
    "Records in those batches (a batch is served whole, so records before the fetched offset in its first batch count too).",
);

/// Every family, in the order a scrape renders them.
pub const ALL: &[&Family] = &[
    &BUILD_INFO,
    &UPTIME,
    &PARTITIONS_OMITTED,
    &API_REQUESTS,
    &API_ERRORS,
    &API_DURATION,
    &API_QUEUE,
    &API_LOCAL,
    &API_WAIT,
    &API_SEND,
    &API_IN_FLIGHT,
    &API_REQUEST_SIZE,
    &API_RESPONSE_SIZE,
    &SHARD_REQUESTS,
    &SHARD_PRODUCE_WAITS,
    &SHARD_PRODUCE_WAIT,
    &SHARD_FETCH_WAITS,
    &SHARD_FETCH_WAIT,
    &SHARD_MESH_SENT,
    &SHARD_MESH_RECEIVED,
    &SHARD_MESH_DELAY,
    &SHARD_CACHE_USED,
    &SHARD_CACHE_BUDGET,
    &SHARD_CONNECTIONS_OPEN,
    &SHARD_CONNECTIONS_ACCEPTED,
    &SHARD_CONNECTIONS_REFUSED,
    &SHARD_BUSY,
    &SHARD_CPU,
    &SHARD_COMMIT_ROUNDS,
    &SHARD_DISK_READ_BYTES,
    &SHARD_PARTITIONS,
    &SHARD_TASK_DELAY,
    &SHARD_STALLS,
    &STORAGE_FSYNC,
    &STORAGE_FSYNC_SIZE,
    &STORAGE_ROLLS,
    &STORAGE_RETENTION_SEGMENTS,
    &STORAGE_RETENTION_BYTES,
    &STORAGE_COMPACTION_RUNS,
    &STORAGE_COMPACTION_REMOVED,
    &LOG_DIR_FREE,
    &LOG_DIR_TOTAL,
    &STORAGE_RECOVERY,
    &PARTITION_SIZE,
    &PARTITION_START,
    &PARTITION_END,
    &PARTITION_HIGH_WATERMARK,
    &PARTITION_SEGMENTS,
    &PARTITION_BYTES_IN,
    &PARTITION_RECORDS_IN,
    &PARTITION_BYTES_OUT,
    &PARTITION_RECORDS_OUT,
];
