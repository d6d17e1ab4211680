//! Log output: one `tracing` subscriber for the process, text or JSON lines
//! on stderr, filtered by `RUST_LOG`. Without it a broker logs at Kafka's
//! server.log levels ([`BROKER_DEFAULT_FILTER`]: corelog's INFO lines, the
//! dependencies' warnings) and a tool only warnings, as Kafka's tools do
//! ([`TOOL_DEFAULT_FILTER`]).
//!
//! Levels as Kafka uses them: INFO for life-cycle and state changes (start
//! and stop steps, topics created and deleted, leader and ISR changes,
//! controller elections, broker registration and fencing, log recovery,
//! retention and compaction, connection counts once a minute), WARN for a
//! degraded state, ERROR for a failure, DEBUG for per-item detail
//! (each connection, each recovered partition, segment rolls). Nothing is
//! logged per request at INFO.
//!
//! The broker logs through the `log` macros and `tracing` alike: `log`
//! records (corelog's and its dependencies', glommio's included) are turned
//! into `tracing` events, so every line carries the spans it happened in.
//! `server::connection` opens a `request` span around each request (shard,
//! connection number, peer, API, version, correlation id, client id), and a
//! `conn` span around each line it logs about a connection, so a warning
//! logged while a request is handled says which client and request it was
//! about.
//!
//! Spans are at WARN level so they exist whenever warnings are logged (the
//! default): one per request, costing one small allocation for its
//! formatted fields, which `RUST_LOG=error` (or `off`) removes. No span
//! lives as long as a connection: the registry keeps the memory of as many
//! spans as were ever alive at once, so spans of idle connections would pin
//! memory for the peak number of connections.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, and the
    /// spans the event happened in), for log collectors.
    Json,
}

/// What a broker logs when `RUST_LOG` is unset.
pub const BROKER_DEFAULT_FILTER: &str = "warn,corelog=info";
/// What a tool logs when `RUST_LOG` is unset.
pub const TOOL_DEFAULT_FILTER: &str = "warn";

/// Installs the process's subscriber, filtered by `RUST_LOG` or, when it
/// is unset, empty or unreadable, by `default_filter`. A second call (tests
/// that run the CLI in-process) keeps the first.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}
