//! `cargo bench --bench loadgen -- [--workload FILE] [--bootstrap HOST:PORT | --mock] [flags]`
//!
//! Runs one workload against one broker and prints a live progress line
//! (stderr), a final table (stdout) and, with `--json`, a JSON report.
//! Flags override the workload file's values. See bench/README.md.

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use rdkafka::mocking::MockCluster;

use common::loadgen::{run, RunOptions, TopicSetup};
use common::workload::{ConsumerStart, Keys, Mode, Workload};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Kafka load generator (librdkafka)")]
struct Args {
    /// Workload profile (TOML); flags below override its values.
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Broker to measure.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Run against librdkafka's in-process mock broker instead (the ceiling).
    #[arg(long)]
    mock: bool,
    /// Use this existing topic instead of creating a fresh one.
    #[arg(long)]
    topic: Option<String>,
    /// Broker label in the report.
    #[arg(long, default_value = "broker")]
    label: String,
    /// Broker pid, to report its CPU and memory use.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Pin the load generator to these CPUs (e.g. "0" or "0,1").
    #[arg(long)]
    cpus: Option<String>,
    #[arg(long)]
    message_bytes: Option<usize>,
    /// none | fixed | uniform
    #[arg(long)]
    keys: Option<String>,
    #[arg(long)]
    key_space: Option<u64>,
    #[arg(long)]
    partitions: Option<i32>,
    /// Replicas of the run's topic.
    #[arg(long)]
    replication_factor: Option<i32>,
    #[arg(long)]
    producers: Option<usize>,
    /// Total msg/s; 0 = as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long)]
    acks: Option<String>,
    #[arg(long)]
    compression: Option<String>,
    #[arg(long)]
    linger_ms: Option<u64>,
    #[arg(long)]
    batch_bytes: Option<u64>,
    #[arg(long)]
    duration_s: Option<f64>,
    #[arg(long)]
    warmup_s: Option<f64>,
    #[arg(long)]
    consumers: Option<usize>,
    /// tail | beginning
    #[arg(long)]
    consumer_start: Option<String>,
    /// Switch to catch-up mode with this many bytes of history.
    #[arg(long)]
    catchup_bytes: Option<u64>,
    /// Extra producer property key=value (repeatable).
    #[arg(long = "producer-config")]
    producer_config: Vec<String>,
    /// Extra consumer property key=value (repeatable).
    #[arg(long = "consumer-config")]
    consumer_config: Vec<String>,
    /// Cargo passes --bench to bench targets; accepted and ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn workload(a: &Args) -> Result<Workload> {
    let mut w = match &a.workload {
        Some(p) => Workload::load(p)?,
        None => Workload::default(),
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f.clone() { w.$f = v; } )* };
    }
    set!(
        message_bytes,
        key_space,
        partitions,
        producers,
        rate,
        acks,
        compression,
        linger_ms
    );
    set!(
        batch_bytes,
        duration_s,
        warmup_s,
        consumers,
        replication_factor
    );
    if let Some(k) = &a.keys {
        w.keys = match k.as_str() {
            "none" => Keys::None,
            "fixed" => Keys::Fixed,
            "uniform" => Keys::Uniform,
            other => anyhow::bail!("unknown --keys {other}"),
        };
    }
    if let Some(s) = &a.consumer_start {
        w.consumer_start = match s.as_str() {
            "tail" => ConsumerStart::Tail,
            "beginning" => ConsumerStart::Beginning,
            other => anyhow::bail!("unknown --consumer-start {other}"),
        };
    }
    if let Some(b) = a.catchup_bytes {
        w.mode = Mode::CatchUp;
        w.catchup_bytes = b;
        w.consumers = w.consumers.max(1);
    }
    w.producer_config.extend(a.producer_config.iter().cloned());
    w.consumer_config.extend(a.consumer_config.iter().cloned());
    w.validate()?;
    Ok(w)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(cpus) = &args.cpus {
        common::cpu::pin_self(&common::cpu::parse_cpu_list(cpus)).context("pin load generator")?;
    }
    let w = workload(&args)?;
    let mock = if args.mock {
        Some(MockCluster::new(1).map_err(|e| anyhow::anyhow!("mock cluster: {e}"))?)
    } else {
        None
    };
    let (bootstrap, label) = match &mock {
        Some(m) => (m.bootstrap_servers(), "librdkafka-mock".to_string()),
        None => (args.bootstrap.clone(), args.label.clone()),
    };
    let topic = match (&mock, &args.topic) {
        (Some(m), _) => TopicSetup::Mock(m),
        (None, Some(t)) => TopicSetup::Existing(t.clone()),
        (None, None) => TopicSetup::Admin,
    };
    let opts = RunOptions {
        bootstrap,
        broker: label,
        topic,
        progress: true,
        broker_pid: args.broker_pid,
    };
    let report = run(&w, &opts)?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
