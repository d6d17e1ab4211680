//! The Kafka server on each shard: boot of the executors, the per-shard
//! broker state, connections, dispatch and one handler per API.
//!
//! Each shard runs one glommio executor with its own listener on the shared
//! port (SO_REUSEPORT), its own partitions and a read-only copy of the topic
//! catalog. Shard 0 owns the catalog (see `catalog.rs`).

pub mod broker;
pub mod catalog;
pub mod configs;
pub mod connection;
pub mod dispatch;
pub mod errors;
pub mod handlers;
pub mod routing;

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::metadata::Catalog;

/// Set by the signal thread; every shard polls it and shuts down cleanly.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);

pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::Relaxed)
}

/// Starts one executor per shard and blocks until all of them have stopped.
pub fn run(mut config: Config) -> Result<(), String> {
    let cluster_id = match &config.cluster_id {
        Some(id) => id.clone(),
        None => crate::storage::prepare(&config, None)?,
    };
    config.cluster_id = Some(cluster_id.clone());
    let catalog =
        Catalog::load_or_create(&config.data_dir, config.shards, &cluster_id).map_err(|e| {
            format!(
                "cannot open data directory {}: {e}",
                config.data_dir.display()
            )
        })?;
    let mesh = MeshBuilder::full(config.shards, config.tuning.mesh_channel_depth);
    let ready = Arc::new(AtomicUsize::new(0));
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut handles = Vec::with_capacity(config.shards);
    for index in 0..config.shards {
        let placement = match config.tuning.cores.get(index) {
            Some(&core) => Placement::Fixed(core),
            None if config.shards <= online => Placement::Fixed(index),
            None => Placement::Unbound,
        };
        let builder = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{index}"))
            .io_memory(config.tuning.io_memory_bytes)
            .ring_depth(config.tuning.ring_depth)
            .preempt_timer(config.tuning.preempt_timer())
            .spin_before_park(Duration::from_micros(config.tuning.spin_before_park_us));
        let (config, catalog, mesh, ready) =
            (config.clone(), catalog.clone(), mesh.clone(), ready.clone());
        let handle = builder
            .spawn(move || async move { broker::run_shard(config, catalog, mesh, ready).await })
            .map_err(|e| format!("cannot start shard {index}: {e}"))?;
        handles.push(handle);
    }
    let mut failures = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("shard stopped abnormally: {e}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
