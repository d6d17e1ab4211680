//! SIGHUP (`systemctl reload corelog`): the broker re-reads its
//! configuration and takes the dynamic broker configs whose static value
//! changed, without a restart.
//!
//! The signal thread re-reads ([`Reloader::reload`]): the configuration is
//! built again exactly as `serve` built it at start (`Config::build`: the
//! same `--config` file, `--override`s and tuning profile); a file that no
//! longer builds is one error line and changes nothing. What changed is
//! sorted by `config::ConfigChanges`: dynamic keys are applied, the others
//! named in one warning as needing a restart. The new static broker
//! configs are then *published* in one process-wide slot
//! ([`ReloadedConfigs`]): a generation counter and the configs behind one
//! `Mutex`, taken only by a reload and by a shard that sees a new
//! generation, never on the request path. Each shard's serving loop polls
//! the counter (it already polls the stop flags every 50 ms) and applies the
//! newest configs to its broker (`Broker::apply_static_configs`): its
//! static layer is replaced and every partition's topic config resolved
//! again, as a catalog change does. The slot holds one value, so it is
//! bounded and the last reload wins; a shard that misses one in between
//! gets the newer, which is complete.
//!
//! A reload while the broker stops is ignored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{BrokerDefaults, Config, ConfigChanges, ServeArgs};
use crate::shard::shutdown;

/// The static broker configs the last reload published. One per process,
/// written by the signal thread and read by every shard.
pub struct ReloadedConfigs {
    /// Bumped after each publish; 0: nothing published yet.
    generation: AtomicU64,
    latest: Mutex<Option<Arc<BrokerDefaults>>>,
}

impl ReloadedConfigs {
    pub fn new() -> ReloadedConfigs {
        ReloadedConfigs {
            generation: AtomicU64::new(0),
            latest: Mutex::new(None),
        }
    }

    /// Makes `configs` the newest static broker configs.
    fn publish(&self, configs: BrokerDefaults) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(configs));
        // After the store: a shard that sees the new generation finds the
        // new configs (or newer ones) in the slot.
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The newest published configs and their generation when that is not
    /// `seen`; a cheap atomic load otherwise.
    pub fn newer_than(&self, seen: u64) -> Option<(u64, Arc<BrokerDefaults>)> {
        let generation = self.generation.load(Ordering::SeqCst);
        if generation == seen {
            return None;
        }
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest.clone().map(|configs| (generation, configs))
    }
}

impl Default for ReloadedConfigs {
    fn default() -> Self {
        ReloadedConfigs::new()
    }
}

/// Re-reads the configuration on SIGHUP. Lives on the signal thread.
pub struct Reloader {
    /// The command line `serve` was started with.
    args: ServeArgs,
    /// The configuration in force: as at start, with the broker configs of
    /// every reload applied since.
    in_force: Config,
    published: Arc<ReloadedConfigs>,
}

impl Reloader {
    pub fn new(args: ServeArgs, in_force: Config, published: Arc<ReloadedConfigs>) -> Reloader {
        Reloader {
            args,
            in_force,
            published,
        }
    }

    /// Builds the configuration again and publishes its dynamic broker
    /// configs when they changed; logs what it did in one line per outcome.
    pub fn reload(&mut self) {
        let source = match &self.args.config {
            Some(path) => path.display().to_string(),
            None => "the command line (serve has no --config file)".to_string(),
        };
        if shutdown::asked() {
            log::info!("SIGHUP while stopping: {source} is not re-read");
            return;
        }
        let reread = match Config::build(&self.args) {
            Ok(config) => config,
            Err(e) => {
                log::error!(
                    "SIGHUP: cannot reload {source}, the configs in force stay unchanged: {e}"
                );
                return;
            }
        };
        let changes = ConfigChanges::between(&self.in_force, &reread);
        if !changes.needs_restart.is_empty() {
            log::warn!(
                "SIGHUP: {source}: {} changed but needs a restart; not applied",
                changes.needs_restart.join(", ")
            );
        }
        if changes.applied.is_empty() {
            log::info!("SIGHUP: reloaded {source}: no dynamic broker config changed");
            return;
        }
        let applied: Vec<String> = changes
            .applied
            .iter()
            .map(|key| {
                let value = changes.broker.get(key).unwrap_or_default();
                format!("{key}={value}")
            })
            .collect();
        log::info!("SIGHUP: reloaded {source}: applying {}", applied.join(", "));
        self.in_force.broker = changes.broker.clone();
        self.published.publish(changes.broker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_sees_each_publish_once_and_the_last_one_wins() {
        let slot = ReloadedConfigs::new();
        assert!(slot.newer_than(0).is_none());
        let retention_ms = |ms| BrokerDefaults {
            log_retention_ms: ms,
            ..BrokerDefaults::default()
        };
        slot.publish(retention_ms(1));
        let (seen, configs) = slot.newer_than(0).expect("published");
        assert_eq!(configs.log_retention_ms, 1);
        assert!(slot.newer_than(seen).is_none());
        slot.publish(retention_ms(2));
        slot.publish(retention_ms(3));
        let (last, configs) = slot.newer_than(seen).expect("published");
        assert_eq!(configs.log_retention_ms, 3);
        assert!(slot.newer_than(last).is_none());
    }
}
