//! The families of replication, the controller quorum, consumer groups
//! and the tuning profile: a table of their own beside `families::ALL`
//! (rendered after it, documented with it by `families_doc::markdown`).

use super::families::{family, Family, Kind};

use Kind::{Counter, Gauge};

const FOLLOWER: &[&str] = &["topic", "partition", "replica"];
const GROUP: &[&str] = &["group"];
const GROUP_PARTITION: &[&str] = &["group", "topic", "partition"];

// Replication, as this node's partitions see it.
pub const PARTITIONS_UNDER_REPLICATED: Family = family(
    "corelog_partitions_under_replicated",
    Gauge,
    &[],
    "Partitions this node leads whose ISR is smaller than their replica set (0 on a single node).",
);
pub const PARTITIONS_UNDER_MIN_ISR: Family = family(
    "corelog_partitions_under_min_isr",
    Gauge,
    &[],
    "Partitions this node leads whose ISR is smaller than their min.insync.replicas: acks=all produces to them fail (0 on a single node).",
);
pub const PARTITIONS_OFFLINE: Family = family(
    "corelog_partitions_offline",
    Gauge,
    &[],
    "Partitions without a live leader as this node's metadata sees them (no leader, or a fenced or unregistered one), plus those this node leads whose log could not be opened. Every node reports its own view: alert on max().",
);
pub const PARTITIONS_LEADER: Family = family(
    "corelog_partitions_leader",
    Gauge,
    &[],
    "Partitions this node leads (on a single node: every partition it holds).",
);
pub const ISR_SHRINKS: Family = family(
    "corelog_isr_shrinks_total",
    Counter,
    &[],
    "ISR shrinks of partitions this node leads, counted as the committed ISR reaches the leader: followers taken out by the leader (behind for replica.lag.time.max.ms) or by the controller (their broker fenced).",
);
pub const ISR_EXPANDS: Family = family(
    "corelog_isr_expands_total",
    Counter,
    &[],
    "ISR expansions of partitions this node leads, counted as the committed ISR reaches the leader: caught-up followers taken back in.",
);
pub const FOLLOWER_LAG_RECORDS: Family = family(
    "corelog_follower_lag_records",
    Gauge,
    FOLLOWER,
    "Per follower of a partition this node leads (among the first metrics.partition.limit partitions): the leader's log end offset minus the follower's last fetch offset; a follower that has not fetched since this leader epoch began counts from the log start offset.",
);
pub const FOLLOWER_LAG_SECONDS: Family = family(
    "corelog_follower_lag_seconds",
    Gauge,
    FOLLOWER,
    "Per follower of a partition this node leads: seconds since the follower last had everything the leader had, as of its fetches (a caught-up follower shows the time since its last fetch); past replica.lag.time.max.ms the leader proposes it out of the ISR.",
);
pub const LEADER_ELECTIONS: Family = family(
    "corelog_leader_elections_total",
    Counter,
    &[],
    "Partition leader elections this node's controller committed while active (a partition given a new live leader: fencing, a broker's return, preferred-leader election); 0 on nodes that are not controllers.",
);

// The controller quorum (Raft), on controller nodes only: a node that runs
// no voter exports these families without samples.
pub const RAFT_TERM: Family = family(
    "corelog_raft_term",
    Gauge,
    &[],
    "The controller quorum's Raft term as this voter knows it (Kafka's controller epoch). Controller nodes only.",
);
pub const RAFT_LEADER: Family = family(
    "corelog_raft_leader",
    Gauge,
    &[],
    "Node id of the active controller (the Raft leader) as this voter knows it; -1 while none is known. Controller nodes only.",
);
pub const RAFT_COMMIT_INDEX: Family = family(
    "corelog_raft_commit_index",
    Gauge,
    &[],
    "The highest metadata log index this voter knows committed. Controller nodes only.",
);
pub const RAFT_APPLIED_INDEX: Family = family(
    "corelog_raft_applied_index",
    Gauge,
    &[],
    "The highest metadata log index this voter applied to its metadata image. Controller nodes only.",
);
pub const RAFT_APPLY_LAG: Family = family(
    "corelog_raft_apply_lag",
    Gauge,
    &[],
    "Committed metadata log entries this voter has not applied yet (commit index minus applied index). Controller nodes only.",
);

// Consumer groups, on the node that coordinates them (the leader of the
// group's __consumer_offsets partition), the first metrics.partition.limit
// groups and group-partitions of the node by name.
pub const GROUP_MEMBERS: Family = family(
    "corelog_group_members",
    Gauge,
    GROUP,
    "Members of the group (classic or consumer protocol), on the node that coordinates it; the node's first metrics.partition.limit groups by id.",
);
pub const GROUP_STATE: Family = family(
    "corelog_group_state",
    Gauge,
    &["group", "state"],
    "1 for the group's current state, in Kafka's names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead (classic groups); Empty, Assigning, Reconciling, Stable (consumer groups). One sample per group.",
);
pub const GROUP_COMMITTED_OFFSET: Family = family(
    "corelog_group_committed_offset",
    Gauge,
    GROUP_PARTITION,
    "The group's committed offset of the partition, on the group's coordinator; the node's first metrics.partition.limit (group, topic, partition) by name.",
);
pub const GROUP_LAG: Family = family(
    "corelog_group_lag",
    Gauge,
    GROUP_PARTITION,
    "The partition's high watermark (its end offset as ListOffsets latest answers, what Kafka's tools compute lag from) minus the group's committed offset, exactly; on the group's coordinator only, for every partition the group committed: the high watermark of a partition another broker leads comes from that leader (one ListOffsets per broker per scrape, 1 s deadline). A partition whose leader did not answer is left out of that scrape (see corelog_group_lag_unavailable).",
);
pub const GROUP_LAG_UNAVAILABLE: Family = family(
    "corelog_group_lag_unavailable",
    Gauge,
    &[],
    "(group, partition) series of this node's groups left out of corelog_group_lag in this scrape because their leader, another broker, did not answer within 1 s (0 when every lag is exported).",
);
pub const GROUP_REBALANCES: Family = family(
    "corelog_group_rebalances_total",
    Counter,
    GROUP,
    "Rebalances of the group since its coordinator loaded it: new generations of a classic group, group epoch bumps of a consumer group.",
);

// The node's configuration.
pub const CONFIG_PROFILE: Family = family(
    "corelog_config_profile_info",
    Gauge,
    &["profile"],
    "Always 1; the profile label is the tuning profile in use: the --tuning file's name without .toml, or default for the built-in defaults.",
);

/// Every family of this table, in the order a scrape renders them (after
/// `families::ALL`).
pub const CLUSTER: &[&Family] = &[
    &PARTITIONS_UNDER_REPLICATED,
    &PARTITIONS_UNDER_MIN_ISR,
    &PARTITIONS_OFFLINE,
    &PARTITIONS_LEADER,
    &ISR_SHRINKS,
    &ISR_EXPANDS,
    &FOLLOWER_LAG_RECORDS,
    &FOLLOWER_LAG_SECONDS,
    &LEADER_ELECTIONS,
    &RAFT_TERM,
    &RAFT_LEADER,
    &RAFT_COMMIT_INDEX,
    &RAFT_APPLIED_INDEX,
    &RAFT_APPLY_LAG,
    &GROUP_MEMBERS,
    &GROUP_STATE,
    &GROUP_COMMITTED_OFFSET,
    &GROUP_LAG,
    &GROUP_REBALANCES,
    &GROUP_LAG_UNAVAILABLE,
    &CONFIG_PROFILE,
];
