//! Metrics in Prometheus' text exposition format (version 0.0.4): the
//! families the broker exports (`families`, and `cluster_families`:
//! replication, the quorum, groups; `families_doc` writes them into
//! docs/metrics.md), the histograms shards record latencies and sizes into
//! (`histogram`) and the writer of the text (`render`).
//!
//! A leaf: it imports nothing from the crate. Recording lives where the
//! work happens (plain `Cell` counters on each shard, never shared
//! between cores); the HTTP listener (`server::http`) gathers every
//! shard's figures at scrape time and renders them here
//! (docs/architecture.md, section 12).

pub mod cluster_families;
pub mod families;
pub mod families_doc;
pub mod histogram;
pub mod render;

pub use families::{Family, Kind};
pub use histogram::{Histogram, HistogramSnapshot, LatencyHistogram};
pub use render::Exposition;
