//! corelog: a Kafka-compatible event streaming broker, thread-per-core on io_uring.
//!
//! The module tree follows `STYLE.md`: dependencies point one way,
//! `server -> shard -> partition -> log`, with `protocol` and `limits` as leaves.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod group;
pub mod limits;
pub mod log;
pub mod memory;
pub mod metadata;
pub mod partition;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod shard;
pub mod storage;
