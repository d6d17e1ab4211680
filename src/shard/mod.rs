//! The shard runtime, knowing nothing of Kafka: shard ids, the channel mesh
//! that carries typed requests and replies between shards, the watch the
//! supervising thread keeps on every shard (phases, start, stop, stalls) and
//! the process-wide request to stop.
//!
//! One executor per shard; a shard never touches another shard's state, it
//! sends it a message.

pub mod mesh;
pub mod placement;
pub mod shutdown;
pub mod watch;

/// Dense shard index, 0..shard count. Equal to the shard's index in the mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub usize);

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
