//! The per-core tuning profile (TOML under `tuning/`) and its bounds.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::limits;

/// Per-core tuning, from a TOML profile under `tuning/`. Every knob has a
/// default that suits a small shared machine.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Cores that run shards, one shard each. Empty: one shard per online core.
    pub cores: Vec<usize>,
    /// Memory each executor registers with io_uring for DMA write buffers
    /// (reads use buffers that can cross shards: `io::DmaDisk::read_at`).
    pub io_memory_bytes: usize,
    /// io_uring submission queue depth per executor.
    pub ring_depth: usize,
    /// Busy-poll before parking a reactor; 0 parks at once (best on shared cores).
    pub spin_before_park_us: u64,
    /// How long a task queue runs before it must yield to a more urgent one.
    pub preempt_timer_ms: u64,
    /// Depth of every cross-shard channel, in messages.
    pub mesh_channel_depth: usize,
    /// How long the shard's committer may wait, once woken by an append, to
    /// gather more appends into the same write and fdatasync (microseconds).
    /// 0 starts a round as soon as the previous one ends.
    pub group_commit_window_us: u64,
    /// SO_SNDBUF set on every accepted connection (bytes); 0 keeps the
    /// kernel's default and its auto-tuning.
    pub socket_send_buffer_bytes: usize,
    /// SO_RCVBUF set on every accepted connection (bytes); 0 keeps the
    /// kernel's default and its auto-tuning.
    pub socket_receive_buffer_bytes: usize,
    /// Bytes a fetch that goes to disk reads beyond what it asked for; kept
    /// (within `shard_memory_bytes`) to serve the partition's next fetches.
    pub fetch_read_ahead_bytes: usize,
    /// Memory each shard may spend on its partitions' tail caches and
    /// read-ahead windows: bytes (0 turns both off: every fetch reads
    /// disk) or `auto`. Read as `shard_memory_bytes` from the profile.
    #[serde(rename = "shard_memory_bytes")]
    pub shard_memory: ShardMemory,
    /// The budget in force, in bytes: `shard_memory` once the shard count
    /// and the machine's memory are known (`resolve_shard_memory`).
    #[serde(skip)]
    pub shard_memory_bytes: usize,
    /// The profile's name: its file's name without `.toml` (tuning
    /// profiles are `tuning/<name>.toml`), `default` for the built-in
    /// defaults. Exported as `corelog_config_profile_info`.
    #[serde(skip)]
    pub profile: String,
}

/// A shard's cache budget as a profile gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardMemory {
    Bytes(usize),
    /// `SHARD_MEMORY_AUTO_SHARE` of the memory this process may use, split
    /// over the shards, at least `SHARD_MEMORY_AUTO_MIN_BYTES` (and twice
    /// the read-ahead): corelog reads with O_DIRECT, so this cache is what
    /// the page cache is to Kafka, and like it takes a share of the machine.
    Auto,
}

/// The share of the machine's memory `auto` gives the shards' caches
/// (numerator, denominator): the rest stays for the process's other
/// memory, the kernel and whatever else runs beside the broker.
pub const SHARD_MEMORY_AUTO_SHARE: (usize, usize) = (1, 4);
/// The least `auto` gives a shard.
pub const SHARD_MEMORY_AUTO_MIN_BYTES: usize = 64 * 1024 * 1024;

impl<'de> Deserialize<'de> for ShardMemory {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(usize),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(bytes) => Ok(ShardMemory::Bytes(bytes)),
            Raw::Word(word) if word == "auto" => Ok(ShardMemory::Auto),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "shard_memory_bytes is a number of bytes or \"auto\", not {word:?}"
            ))),
        }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            cores: Vec::new(),
            io_memory_bytes: 10 * 1024 * 1024,
            ring_depth: 128,
            spin_before_park_us: 0,
            preempt_timer_ms: 10,
            mesh_channel_depth: limits::MESH_CHANNEL_DEPTH,
            group_commit_window_us: 0,
            socket_send_buffer_bytes: 0,
            socket_receive_buffer_bytes: 0,
            fetch_read_ahead_bytes: 4 * 1024 * 1024,
            // Like the page cache Kafka relies on, the caches take a share
            // of the machine (bench/README.md: 1 KiB re-read by several
            // consumers 1.75-2x Tansu, against 1.18-1.42x with 64 MiB).
            shard_memory: ShardMemory::Auto,
            // Until `resolve_shard_memory` knows the shards and the machine.
            shard_memory_bytes: SHARD_MEMORY_AUTO_MIN_BYTES,
            profile: "default".to_string(),
        }
    }
}

impl Tuning {
    pub fn load(path: &Path) -> Result<Tuning, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::TuningRead {
            path: path.to_path_buf(),
            source,
        })?;
        let mut tuning: Tuning =
            toml::from_str(&text).map_err(|source| ConfigError::TuningToml {
                path: path.to_path_buf(),
                source,
            })?;
        if let ShardMemory::Bytes(bytes) = tuning.shard_memory {
            tuning.shard_memory_bytes = bytes;
        }
        tuning.profile = path.file_stem().map_or_else(
            || path.display().to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        tuning.validate()?;
        Ok(tuning)
    }

    /// Sets `shard_memory_bytes` for `shards` shards on a machine whose
    /// process may use `memory_bytes` (`auto`); an explicit size stays.
    pub fn resolve_shard_memory(&mut self, shards: usize, memory_bytes: usize) {
        self.shard_memory_bytes = match self.shard_memory {
            ShardMemory::Bytes(bytes) => bytes,
            ShardMemory::Auto => {
                let (share, of) = SHARD_MEMORY_AUTO_SHARE;
                let per_shard = memory_bytes / of * share / shards.max(1);
                per_shard.clamp(
                    SHARD_MEMORY_AUTO_MIN_BYTES.max(2 * self.fetch_read_ahead_bytes),
                    limits::SHARD_MEMORY_BYTES_MAX,
                )
            }
        };
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.cores.len() > limits::SHARDS_MAX {
            return Err(ConfigError::TuningCores(limits::SHARDS_MAX));
        }
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.io_memory_bytes) {
            return Err(bound("io_memory_bytes", "in [1 MiB, 1 GiB]".into()));
        }
        if !self.ring_depth.is_power_of_two() || !(16..=4096).contains(&self.ring_depth) {
            return Err(bound("ring_depth", "a power of two in [16, 4096]".into()));
        }
        if !(limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX..=65_536).contains(&self.mesh_channel_depth)
        {
            return Err(bound(
                "mesh_channel_depth",
                format!("in [{}, 65536]", limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX),
            ));
        }
        if self.preempt_timer_ms == 0 || self.preempt_timer_ms > 1000 {
            return Err(bound("preempt_timer_ms", "in [1, 1000]".into()));
        }
        if self.group_commit_window_us > limits::GROUP_COMMIT_WINDOW_US_MAX {
            return Err(bound(
                "group_commit_window_us",
                format!("in [0, {}]", limits::GROUP_COMMIT_WINDOW_US_MAX),
            ));
        }
        for (key, value) in [
            ("socket_send_buffer_bytes", self.socket_send_buffer_bytes),
            (
                "socket_receive_buffer_bytes",
                self.socket_receive_buffer_bytes,
            ),
        ] {
            let range = limits::SOCKET_BUFFER_BYTES_MIN..=limits::SOCKET_BUFFER_BYTES_MAX;
            if value != 0 && !range.contains(&value) {
                return Err(bound(
                    key,
                    format!(
                        "0 (kernel default) or in [{}, {}]",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        if self.fetch_read_ahead_bytes > limits::FETCH_READ_AHEAD_BYTES_MAX {
            return Err(bound(
                "fetch_read_ahead_bytes",
                format!("in [0, {}]", limits::FETCH_READ_AHEAD_BYTES_MAX),
            ));
        }
        // `auto` gives at least twice the read-ahead (resolve_shard_memory).
        if let ShardMemory::Bytes(shard_memory_bytes) = self.shard_memory {
            if shard_memory_bytes > limits::SHARD_MEMORY_BYTES_MAX {
                return Err(bound(
                    "shard_memory_bytes",
                    format!("\"auto\" or in [0, {}]", limits::SHARD_MEMORY_BYTES_MAX),
                ));
            }
            // A window bigger than half the budget would leave no room for
            // the tail caches or for a second reading partition.
            if self.fetch_read_ahead_bytes > shard_memory_bytes / 2 {
                return Err(bound(
                    "fetch_read_ahead_bytes",
                    "at most half of shard_memory_bytes".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn group_commit_window(&self) -> Duration {
        Duration::from_micros(self.group_commit_window_us)
    }

    pub fn preempt_timer(&self) -> Duration {
        Duration::from_millis(self.preempt_timer_ms)
    }
}

/// The memory this process may use: the machine's (`MemTotal`), or its
/// cgroup's limit when that is lower (a container); the floor of `auto`
/// when neither can be read.
pub fn process_memory_bytes() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_total_bytes(&text));
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| text.trim().parse::<usize>().ok());
    match (total, limit) {
        (Some(t), Some(l)) => t.min(l),
        (Some(t), None) => t,
        (None, Some(l)) => l,
        (None, None) => SHARD_MEMORY_AUTO_MIN_BYTES,
    }
}

/// `MemTotal:  24588880 kB` of /proc/meminfo, in bytes.
fn meminfo_total_bytes(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: usize = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// A tuning knob outside its bound.
fn bound(knob: &'static str, bound: String) -> ConfigError {
    ConfigError::TuningBound { knob, bound }
}
