//! A workload profile: what the load generator does, read from a TOML file in
//! `bench/workloads/` and overridable from the command line.
//!
//! Every run is bounded: `warmup_s + duration_s` of producing (or, in
//! catch-up mode, until `catchup_bytes` are written or `duration_s` passes),
//! then at most `drain_s` for acknowledgements and consumers to finish.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// How producers pick message keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keys {
    /// No key: librdkafka's default partitioner spreads messages.
    None,
    /// One key for every message (all traffic on one partition).
    Fixed,
    /// Keys drawn uniformly from `key_space` distinct keys.
    Uniform,
}

/// Where consumers start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerStart {
    /// The log end at the start of the run (a fresh topic: offset 0).
    Tail,
    /// The earliest retained offset.
    Beginning,
}

/// Live: produce and consume at once. CatchUp: produce `catchup_bytes`
/// first, then time consumers reading all of it from the beginning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Live,
    CatchUp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub description: String,
    pub mode: Mode,
    /// Payload bytes per message (at least 16: the send timestamp and producer id live there).
    pub message_bytes: usize,
    pub keys: Keys,
    /// Distinct keys for `keys = "uniform"`.
    pub key_space: u64,
    pub partitions: i32,
    /// Replicas of the run's topic (a fresh topic; the cluster must have
    /// that many brokers).
    pub replication_factor: i32,
    pub producers: usize,
    /// Messages per second over all producers; 0 means as fast as possible.
    pub rate: u64,
    /// Compare only: set `rate` to this fraction of the peak msg/s measured
    /// by workload `peak_from` on the same broker in the same run.
    pub rate_fraction_of_peak: f64,
    pub peak_from: String,
    /// "0", "1" or "all".
    pub acks: String,
    /// none, gzip, snappy, lz4, zstd.
    pub compression: String,
    pub linger_ms: u64,
    pub batch_bytes: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Upper bound on waiting for acks and consumers after producing stops.
    pub drain_s: f64,
    /// Independent assign()-consumers, each reading every partition.
    pub consumers: usize,
    pub consumer_start: ConsumerStart,
    /// Catch-up mode: bytes of payload to write before reading.
    pub catchup_bytes: u64,
    /// Extra librdkafka producer properties (`key=value`).
    pub producer_config: Vec<String>,
    /// Extra librdkafka consumer properties (`key=value`).
    pub consumer_config: Vec<String>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "adhoc".into(),
            description: String::new(),
            mode: Mode::Live,
            message_bytes: 1024,
            keys: Keys::None,
            key_space: 1000,
            partitions: 1,
            replication_factor: 1,
            producers: 1,
            rate: 0,
            rate_fraction_of_peak: 0.0,
            peak_from: String::new(),
            acks: "all".into(),
            compression: "none".into(),
            linger_ms: 5,
            batch_bytes: 1 << 20,
            duration_s: 10.0,
            warmup_s: 2.0,
            drain_s: 15.0,
            consumers: 0,
            consumer_start: ConsumerStart::Tail,
            catchup_bytes: 64 << 20,
            producer_config: Vec::new(),
            consumer_config: Vec::new(),
        }
    }
}

/// Smallest payload: u64 send time (ns since the Unix epoch) + u64 producer/sequence tag.
pub const PAYLOAD_HEADER_BYTES: usize = 16;

impl Workload {
    pub fn load(path: &Path) -> Result<Workload> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read workload {}", path.display()))?;
        let w: Workload =
            toml::from_str(&text).with_context(|| format!("parse workload {}", path.display()))?;
        w.validate()?;
        Ok(w)
    }

    pub fn validate(&self) -> Result<()> {
        if self.message_bytes < PAYLOAD_HEADER_BYTES {
            bail!("message_bytes must be >= {PAYLOAD_HEADER_BYTES}");
        }
        if self.message_bytes > 16 << 20 {
            bail!("message_bytes must be <= 16 MiB");
        }
        if !(1..=100_000).contains(&self.partitions) {
            bail!("partitions must be in 1..=100000");
        }
        if !(1..=64).contains(&self.producers) {
            bail!("producers must be in 1..=64");
        }
        if self.consumers > 64 {
            bail!("consumers must be <= 64");
        }
        if !(self.duration_s > 0.0 && self.duration_s <= 3600.0) {
            bail!("duration_s must be in (0, 3600]");
        }
        if !(0.0..=600.0).contains(&self.warmup_s) || !(0.0..=600.0).contains(&self.drain_s) {
            bail!("warmup_s and drain_s must be in [0, 600]");
        }
        if !["0", "1", "all", "-1"].contains(&self.acks.as_str()) {
            bail!("acks must be 0, 1 or all");
        }
        if self.keys == Keys::Uniform && self.key_space == 0 {
            bail!("key_space must be > 0 for uniform keys");
        }
        if self.mode == Mode::CatchUp && self.consumers == 0 {
            bail!("catch-up mode needs at least one consumer");
        }
        Ok(())
    }

    /// Total payload bytes of one message, key included.
    pub fn record_bytes(&self) -> usize {
        self.message_bytes + if self.keys == Keys::None { 0 } else { 8 }
    }
}

/// Splits `key=value`.
pub fn parse_kv(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => bail!("expected key=value, got {s:?}"),
    }
}
