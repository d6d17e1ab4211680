//! corelog: a Kafka-compatible event streaming broker, thread-per-core on io_uring.
//!
//! `docs/architecture.md` is the map: the request path, which shard owns
//! what, storage, replication, the controller, groups, and the direction
//! of dependencies between these modules (section 9).

pub mod cli;
pub mod cluster;
pub mod config;
pub mod group;
pub mod limits;
pub mod log;
pub mod logging;
pub mod memory;
pub mod metadata;
pub mod partition;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod shard;
pub mod storage;
