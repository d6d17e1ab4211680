//! corelog: a Kafka-compatible event streaming broker, thread-per-core on io_uring.
//!
//! `docs/architecture.md` is the map: the request path, which shard owns
//! what, storage, replication, the controller, groups.
//!
//! Dependencies between the top-level modules point one way: `server`
//! (connections, dispatch, handlers) over the services (`group`,
//! `replication`, `cluster`), over `partition`, over `log`; `shard` (the
//! runtime and its typed cross-shard calls), `metadata`, `config`,
//! `protocol`, `limits`, `io` (the disk seam), `net` (the network seam),
//! `clock` (the time seam) and `metrics` (the metric families and their
//! text format) sit below the services;
//! `sim`, the deterministic simulation, sits on top and nothing imports it.
//! `.ci/check-deps` fails on any import circle between them.
//!
//! A service never sees the per-shard broker: it defines the trait it needs
//! of its shard (`group::GroupHost`, `replication::ReplicationHost`,
//! `cluster::node::ImageSink`) and `server/hosts.rs` implements it, so a
//! service gets only what its trait offers and a simulation can stand in.
//!
//! Unsafe code is denied crate-wide; the two places that need it (the
//! reporting global allocator in `memory`, the shard interrupt's signal
//! handler in `server`) allow it where they stand, with a SAFETY comment
//! on each block.

#![deny(unsafe_code)]

pub mod acl;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod features;
pub mod group;
pub mod io;
pub mod limits;
pub mod log;
pub mod logging;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod partition;
pub mod protocol;
pub mod replication;
pub mod sasl;
pub mod security;
pub mod server;
pub mod shard;
pub mod sim;
pub mod storage;
pub mod tls;
