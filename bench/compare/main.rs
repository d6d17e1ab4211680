//! `cargo bench --bench compare -- --out bench/results/<date> [flags]`
//!
//! For each broker in turn (corelog, librdkafka's mock broker, Tansu, Kafka,
//! Redpanda, any `--peer name=host:port`), start it pinned to the broker CPUs,
//! run the workload matrix with the load generator pinned to its CPUs, stop
//! it, and write `report.md`, `report.png`, `results.json` and one JSON per
//! run into the output directory. Absent peers are listed as absent.

mod chart;
#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use rdkafka::mocking::MockCluster;
use serde::Serialize;

use common::brokers::{self, Kind, Peer};
use common::cpu::{parse_cpu_list, pin_self};
use common::loadgen::{run, RunOptions, TopicSetup};
use common::report::RunReport;
use common::workload::{Mode, Workload};

#[derive(Parser, Debug)]
#[command(name = "compare", about = "Side-by-side broker comparison")]
struct Args {
    /// Output directory (default bench/results/<UTC date>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Workloads by name (files in --workload-dir), comma separated.
    #[arg(
        long,
        default_value = "1k-max,1k-max-acks1,100b-max,latency-5k,latency-50pct,many-partitions,fan-out,catch-up"
    )]
    workloads: String,
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/workloads"))]
    workload_dir: PathBuf,
    /// Brokers to run, comma separated (default: every known one).
    #[arg(long, default_value = "corelog,librdkafka-mock,tansu,kafka,redpanda")]
    brokers: String,
    /// A running Kafka-compatible broker to include: name=host:port (repeatable).
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// CPUs for the broker (taskset -c).
    #[arg(long, default_value = "1")]
    broker_cpus: String,
    /// CPUs for the load generator.
    #[arg(long, default_value = "0")]
    loadgen_cpus: String,
    /// corelog shards (default: one per broker CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// corelog tuning profile; `cores` is set to --broker-cpus in a copy.
    #[arg(long)]
    tuning: Option<PathBuf>,
    /// corelog binary (default: the one cargo built with this bench).
    #[arg(long)]
    corelog_bin: Option<PathBuf>,
    /// Override every workload's measured duration (seconds).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Override every workload's warm-up (seconds).
    #[arg(long)]
    warmup_s: Option<f64>,
    /// Catch-up history size (bytes); the profile says 1 GiB.
    #[arg(long)]
    catchup_bytes: Option<u64>,
    /// Cargo passes --bench to bench targets; accepted and ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One cell of the matrix.
#[derive(Serialize, Clone)]
struct Cell {
    broker: String,
    workload: String,
    /// "ok", "absent: why", "skipped: why" or "failed: why".
    status: String,
    report: Option<RunReport>,
}

fn utc_date() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d-%H%M"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "latest".into(),
    }
}

/// Writes a copy of the tuning profile with `cores` set to the broker CPUs
/// (corelog pins shard i to cores[i] itself, so taskset alone is not enough).
fn tuning_for(out: &Path, base: Option<&Path>, cpus: &[usize]) -> Result<PathBuf> {
    let mut table: toml::Table = match base {
        Some(p) => toml::from_str(&std::fs::read_to_string(p)?)?,
        None => toml::Table::new(),
    };
    table.insert(
        "cores".into(),
        toml::Value::Array(
            cpus.iter()
                .map(|&c| toml::Value::Integer(c as i64))
                .collect(),
        ),
    );
    let path = out.join("corelog-tuning.toml");
    std::fs::write(&path, toml::to_string(&table)?)?;
    Ok(path)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench/results").join(utc_date()));
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let broker_cpus = parse_cpu_list(&args.broker_cpus);
    let loadgen_cpus = parse_cpu_list(&args.loadgen_cpus);
    let shards = args.shards.unwrap_or(broker_cpus.len().max(1));
    let corelog_bin = args
        .corelog_bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_corelog")));
    let tuning = tuning_for(&out, args.tuning.as_deref(), &broker_cpus)?;

    let mut workloads = Vec::new();
    for name in args
        .workloads
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let mut w = Workload::load(&args.workload_dir.join(format!("{name}.toml")))?;
        if let Some(d) = args.duration_s {
            if w.mode == Mode::Live {
                w.duration_s = d;
            }
        }
        if let Some(d) = args.warmup_s {
            w.warmup_s = d;
        }
        if let Some(b) = args.catchup_bytes {
            w.catchup_bytes = b;
        }
        workloads.push(w);
    }
    let extra: Vec<(String, String)> = args
        .peers
        .iter()
        .map(|p| common::workload::parse_kv(p))
        .collect::<Result<_>>()?;
    let wanted: Vec<&str> = args.brokers.split(',').map(str::trim).collect();
    let peers: Vec<Peer> = brokers::discover(&corelog_bin, shards, &extra)
        .into_iter()
        .filter(|p| {
            wanted.contains(&p.name.as_str()) || matches!(p.kind, Ok(Kind::External { .. }))
        })
        .collect();

    let load_before = loadavg();
    if load_before
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .unwrap_or(0.0)
        > 0.5
    {
        eprintln!("warning: load average {load_before} before the run: other work on this machine skews the figures");
    }
    let mut cells = Vec::new();
    for peer in &peers {
        eprintln!("=== {} ===", peer.name);
        match &peer.kind {
            Err(why) => {
                eprintln!("absent: {why}");
                for w in &workloads {
                    cells.push(Cell {
                        broker: peer.name.clone(),
                        workload: w.name.clone(),
                        status: format!("absent: {why}"),
                        report: None,
                    });
                }
            }
            Ok(kind) => {
                cells.extend(run_peer(
                    &peer.name,
                    kind,
                    &workloads,
                    &broker_cpus,
                    &loadgen_cpus,
                    &tuning,
                    &out,
                ));
            }
        }
    }

    let json = serde_json::json!({
        "broker_cpus": broker_cpus,
        "loadgen_cpus": loadgen_cpus,
        "corelog_shards": shards,
        "cells": cells,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    let mut md = markdown(&cells, &workloads, &broker_cpus, &loadgen_cpus, shards);
    let _ = writeln!(
        md,
        "\n/proc/loadavg before the run: `{load_before}`; after: `{}` (anything but this run skews the figures).",
        loadavg()
    );
    std::fs::write(out.join("report.md"), &md)?;
    match chart::draw(&out.join("report.png"), &cells_for_chart(&cells)) {
        Ok(()) => eprintln!("wrote {}", out.join("report.png").display()),
        Err(e) => eprintln!("no chart: {e:#}"),
    }
    println!("{md}");
    eprintln!("wrote {}", out.join("report.md").display());
    Ok(())
}

/// Runs the whole matrix against one broker: one start, every workload, one stop.
fn run_peer(
    name: &str,
    kind: &Kind,
    workloads: &[Workload],
    broker_cpus: &[usize],
    loadgen_cpus: &[usize],
    tuning: &Path,
    out: &Path,
) -> Vec<Cell> {
    let cell = |w: &Workload, status: String, report: Option<RunReport>| Cell {
        broker: name.to_string(),
        workload: w.name.clone(),
        status,
        report,
    };
    // The mock broker runs inside this process: give it the broker's CPUs
    // too, so it has the same cores in all as a real broker plus the client.
    let is_mock = matches!(kind, Kind::Mock);
    let mut own_cpus: Vec<usize> = loadgen_cpus.to_vec();
    if is_mock {
        own_cpus.extend(broker_cpus);
    }
    if let Err(e) = pin_self(&own_cpus) {
        eprintln!("warning: could not pin load generator to {own_cpus:?}: {e}");
    }
    let mock = if is_mock {
        match MockCluster::new(1) {
            Ok(m) => Some(m),
            Err(e) => {
                return workloads
                    .iter()
                    .map(|w| cell(w, format!("failed: mock cluster: {e}"), None))
                    .collect()
            }
        }
    } else {
        None
    };
    let mut running = match brokers::start(name, kind, broker_cpus, Some(tuning)) {
        Ok(r) => r,
        Err(e) => {
            return workloads
                .iter()
                .map(|w| cell(w, format!("failed: {e:#}"), None))
                .collect()
        }
    };
    let bootstrap = match &mock {
        Some(m) => m.bootstrap_servers(),
        None => running.bootstrap.clone(),
    };
    let mut peaks: BTreeMap<String, f64> = BTreeMap::new();
    let mut cells = Vec::new();
    for w in workloads {
        let mut w = w.clone();
        if is_mock && w.consumers > 0 {
            // librdkafka's mock keeps a bounded log per partition and drops
            // old batches, so consumers fall behind its start; produce only.
            if w.mode == Mode::CatchUp {
                cells.push(cell(
                    &w,
                    "skipped: the mock broker keeps only a bounded log".into(),
                    None,
                ));
                continue;
            }
            w.consumers = 0;
        }
        if w.rate_fraction_of_peak > 0.0 {
            match peaks.get(&w.peak_from) {
                Some(&peak) => w.rate = ((peak * w.rate_fraction_of_peak) as u64).max(1),
                None => {
                    cells.push(cell(
                        &w,
                        format!("skipped: needs {} in the same run", w.peak_from),
                        None,
                    ));
                    continue;
                }
            }
        }
        eprintln!("--- {name} / {} (rate {}) ---", w.name, w.rate);
        let opts = RunOptions {
            bootstrap: bootstrap.clone(),
            broker: name.to_string(),
            topic: match &mock {
                Some(m) => TopicSetup::Mock(m),
                None => TopicSetup::Admin,
            },
            progress: true,
            broker_pid: running.pid,
        };
        match run(&w, &opts) {
            Ok(mut r) => {
                r.cpu.broker_cpus = if is_mock {
                    own_cpus.clone()
                } else {
                    running.cpus.clone()
                };
                peaks.insert(w.name.clone(), r.produce.msgs_per_s);
                eprint!("{}", r.table());
                let file = out.join(format!("{name}-{}.json", w.name));
                if let Err(e) =
                    std::fs::write(&file, serde_json::to_string_pretty(&r).unwrap_or_default())
                {
                    eprintln!("warning: write {}: {e}", file.display());
                }
                cells.push(cell(&w, "ok".into(), Some(r)));
            }
            Err(e) => {
                eprintln!("failed: {e:#}");
                cells.push(cell(&w, format!("failed: {e:#}"), None));
            }
        }
    }
    if !running.stop() {
        eprintln!("warning: {name} did not exit on SIGTERM within the timeout; killed");
    }
    cells
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// CPUs online on the machine (not just those this process may use).
fn online_cpus() -> i64 {
    // SAFETY-free libc query.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

fn markdown(
    cells: &[Cell],
    workloads: &[Workload],
    bcpu: &[usize],
    lcpu: &[usize],
    shards: usize,
) -> String {
    let mut s = String::new();
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let _ = writeln!(s, "# corelog vs peers\n");
    let _ = writeln!(
        s,
        "Machine: {} CPUs ({host}). Brokers pinned with `taskset -c {}` (corelog: {shards} shard(s), tuning `cores` = the same CPUs); \
         load generator pinned to CPUs {:?}. The librdkafka mock broker runs inside the load generator's process, \
         which for that row may use CPUs {:?} (broker's + generator's). MB = 10^6 bytes of payload. Latencies in ms; \
         produce-ack = `send` call to delivery report (at fixed rates the send lag against the schedule is in the per-run JSON); e2e = send to consumer receipt. \
         Broker cores = (utime+stime of the broker process over the measurement window) / wall time.\n",
        online_cpus(),
        bcpu.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        lcpu,
        bcpu.iter().chain(lcpu).collect::<Vec<_>>(),
    );
    let _ = writeln!(
        s,
        "| workload | broker | msg/s | MB/s | ack p50 | ack p99 | ack p99.9 | ack max | e2e p99 | broker cores | MB/s per broker core | loadgen cores | broker RSS MiB | corelog/peer (MB/s) | corelog/peer (ack p99) |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
    for w in workloads {
        let corelog = cells
            .iter()
            .find(|c| c.broker == "corelog" && c.workload == w.name)
            .and_then(|c| c.report.as_ref());
        for c in cells.iter().filter(|c| c.workload == w.name) {
            let Some(r) = &c.report else {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} |  |  |  |  |  |  |  |  |  |  |  |  |",
                    w.name, c.broker, c.status
                );
                continue;
            };
            let (mbs, msgs) = match &r.catchup {
                Some(cu) => (
                    cu.mb_per_s,
                    cu.msgs_read_total as f64 / cu.seconds.max(1e-9),
                ),
                None => (r.produce.mb_per_s, r.produce.msgs_per_s),
            };
            let broker_cores = match &r.catchup {
                Some(cu) => cu.broker_cores,
                None => r.cpu.broker_cores,
            };
            let loadgen_cores = match &r.catchup {
                Some(cu) => cu.loadgen_cores,
                None => r.cpu.loadgen_cores,
            };
            let per_core = broker_cores.filter(|&c| c > 0.01).map(|c| mbs / c);
            let l = &r.produce.ack_latency_us;
            let e2e = if r.consume.consumers > 0 {
                ms(r.consume.e2e_latency_us.p99)
            } else {
                "n/a".into()
            };
            let (ratio_tp, ratio_p99) = match (corelog, c.broker.as_str()) {
                (_, "corelog") | (None, _) => (String::new(), String::new()),
                (Some(cr), _) => {
                    let cm = cr
                        .catchup
                        .as_ref()
                        .map_or(cr.produce.mb_per_s, |cu| cu.mb_per_s);
                    let tp = if mbs > 0.0 {
                        format!("{:.2}", cm / mbs)
                    } else {
                        "n/a".into()
                    };
                    let p = if l.p99 > 0 && cr.produce.ack_latency_us.p99 > 0 {
                        format!("{:.2}", cr.produce.ack_latency_us.p99 as f64 / l.p99 as f64)
                    } else {
                        "n/a".into()
                    };
                    (tp, p)
                }
            };
            let mut name = c.broker.clone();
            if r.produce.failed_msgs_total > 0
                || (r.consume.consumers > 0 && !r.consume.all_acked_consumed)
            {
                name += " (!)";
            }
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                name,
                msgs,
                mbs,
                ms(l.p50),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                e2e,
                fmt_opt(broker_cores, 2),
                fmt_opt(per_core, 0),
                fmt_opt(loadgen_cores, 2),
                r.cpu.broker_rss_bytes.map_or("n/a".into(), |b| format!("{:.0}", b as f64 / 1048576.0)),
                ratio_tp,
                ratio_p99
            );
        }
    }
    let _ = writeln!(
        s,
        "\nCatch-up rows show the read phase (MB/s read from the beginning, CPU during the read). \
         (!) marks a run with failed deliveries or with consumers that did not read every acknowledged message \
         (see the per-run JSON for counts and the first error). Fixed-rate rows: msg/s is the offered rate achieved. \
         The fan-out workload uses 4 independent assign()-consumers as a stand-in for 4 consumer groups \
         (no group is joined, so group coordination is not measured)."
    );
    for c in cells.iter().filter(|c| c.report.is_none()) {
        let _ = writeln!(s, "- {} / {}: {}", c.broker, c.workload, c.status);
    }
    s
}

fn cells_for_chart(cells: &[Cell]) -> Vec<chart::Bar> {
    cells
        .iter()
        .filter_map(|c| {
            let r = c.report.as_ref()?;
            Some(chart::Bar {
                broker: c.broker.clone(),
                workload: c.workload.clone(),
                mb_per_s: r
                    .catchup
                    .as_ref()
                    .map_or(r.produce.mb_per_s, |cu| cu.mb_per_s),
                fixed_rate: r.workload.rate > 0,
                latency_ms: [
                    r.produce.ack_latency_us.p50,
                    r.produce.ack_latency_us.p90,
                    r.produce.ack_latency_us.p99,
                    r.produce.ack_latency_us.p999,
                    r.produce.ack_latency_us.max,
                ]
                .map(|us| us as f64 / 1000.0),
            })
        })
        .collect()
}
