//! Log output: one `tracing` subscriber for the process, text or JSON lines
//! on stderr, filtered by `RUST_LOG` (default `warn`; for example
//! `RUST_LOG=corelog=info`).
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

/// Installs the process's subscriber. A second call (tests that run the
/// CLI in-process) keeps the first.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
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
