//! The cluster: the controller quorum (Raft over the metadata log, on
//! shard 0 of controller nodes), the metadata records it replicates, and
//! the broker side that registers, heartbeats and follows the image.
//!
//! A node on embedded defaults (no `controller.quorum.voters`) runs none of
//! this: it is its own single-node cluster with the local catalog.

pub mod calls;
pub mod elections;
pub mod node;
pub mod quorum;
pub mod records;
pub mod store;
pub mod transport;
