//! The scaling workload's arithmetic, free of processes and I/O so the
//! harness's tests can check it: parsing corelog's `shard-stats` lines into
//! per-request figures, integrating a broker's CPU time over a phase,
//! combining the reports of several load-generator processes into one
//! produce phase and one consume phase, the median over rounds, and the
//! markdown table (`bench/scaling/main.rs` runs the processes).
//!
//! Units: MB = 10^6 bytes of payload, GB = 10^9; times in microseconds
//! where a name says `_us`, seconds elsewhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::report::RunReport;

/// The `key=value` pairs of every `shard-stats` line in a broker's output,
/// one map per shard (values that are not numbers are left out).
pub fn parse_shard_stats(output: &str) -> Vec<BTreeMap<String, u64>> {
    output
        .lines()
        .filter_map(|line| {
            let start = line.find("shard-stats ")? + "shard-stats ".len();
            Some(
                line[start..]
                    .split_whitespace()
                    .filter_map(|pair| {
                        let (key, value) = pair.split_once('=')?;
                        Some((key.to_string(), value.parse().ok()?))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Where one corelog run's time went, summed over its shards (from
/// `shard-stats`, whose keys are the fields of corelog's `ShardLoad`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardLoadSummary {
    pub shards: usize,
    /// Produce + fetch requests (the data path).
    pub data_requests: u64,
    /// All requests, every API.
    pub requests: u64,
    /// Executor busy time of all shards (seconds).
    pub busy_s: f64,
    /// Busy microseconds per request (all APIs).
    pub busy_us_per_request: Option<f64>,
    /// CPU time of the shard threads (seconds; io_uring workers excluded).
    pub cpu_s: f64,
    /// Shard-thread CPU microseconds per request (all APIs).
    pub cpu_us_per_request: Option<f64>,
    pub commit_rounds: u64,
    /// Mean length of one group-commit round (write + fdatasync), µs.
    pub commit_round_us: Option<f64>,
    /// Group-commit rounds per produce request.
    pub commit_rounds_per_produce: Option<f64>,
    /// Cross-shard calls per data-path request.
    pub mesh_per_request: Option<f64>,
    /// Mean queueing of a cross-shard call before its serving task ran, µs.
    pub mesh_delay_us: Option<f64>,
    /// Mean time a produce request (acks 1/all) waited for its acks, µs.
    pub produce_wait_us: Option<f64>,
    /// Total time fetches spent parked in long polls (seconds).
    pub fetch_wait_s: f64,
    /// Mean lateness of the scheduling probe, µs.
    pub sched_delay_us: Option<f64>,
    /// Probe wake-ups later than corelog's stall threshold.
    pub sched_stalls: u64,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

impl ShardLoadSummary {
    /// Sums the shards' figures; `None` when no line carries the load keys
    /// (a broker that is not corelog, or one that did not stop cleanly).
    pub fn of(shards: &[BTreeMap<String, u64>]) -> Option<ShardLoadSummary> {
        if shards.is_empty() || !shards.iter().all(|s| s.contains_key("busy_us")) {
            return None;
        }
        let sum = |key: &str| -> u64 { shards.iter().filter_map(|s| s.get(key)).sum() };
        let produce = sum("requests_produce");
        let data = produce + sum("requests_fetch");
        let requests = data + sum("requests_other");
        let rounds = sum("commit_rounds");
        let received = sum("mesh_received");
        Some(ShardLoadSummary {
            shards: shards.len(),
            data_requests: data,
            requests,
            busy_s: sum("busy_us") as f64 / 1e6,
            busy_us_per_request: ratio(sum("busy_us") as f64, requests as f64),
            cpu_s: sum("cpu_us") as f64 / 1e6,
            cpu_us_per_request: ratio(sum("cpu_us") as f64, requests as f64),
            commit_rounds: rounds,
            commit_round_us: ratio(sum("commit_us") as f64, rounds as f64),
            commit_rounds_per_produce: ratio(rounds as f64, produce as f64),
            mesh_per_request: ratio(sum("mesh_sent") as f64, data as f64),
            mesh_delay_us: ratio(sum("mesh_delay_us") as f64, received as f64),
            produce_wait_us: ratio(sum("produce_wait_us") as f64, sum("produce_waits") as f64),
            fetch_wait_s: sum("fetch_wait_us") as f64 / 1e6,
            sched_delay_us: ratio(sum("sched_delay_us") as f64, sum("sched_probes") as f64),
            sched_stalls: sum("sched_stalls"),
        })
    }
}

/// A broker's cumulative CPU seconds sampled over time: (unix seconds, CPU
/// seconds), in time order.
#[derive(Clone, Debug, Default)]
pub struct CpuSeries {
    pub samples: Vec<(f64, f64)>,
}

impl CpuSeries {
    /// Cumulative CPU seconds at time `t`, interpolated between samples
    /// (clamped to the first and last).
    pub fn at(&self, t: f64) -> Option<f64> {
        let s = &self.samples;
        let (first, last) = (s.first()?, s.last()?);
        if t <= first.0 {
            return Some(first.1);
        }
        if t >= last.0 {
            return Some(last.1);
        }
        let i = s.partition_point(|&(at, _)| at <= t);
        let ((t0, c0), (t1, c1)) = (s[i - 1], s[i]);
        Some(c0 + (c1 - c0) * (t - t0) / (t1 - t0).max(1e-9))
    }

    /// CPU seconds the broker used between `from` and `to`.
    pub fn between(&self, from: f64, to: f64) -> Option<f64> {
        Some((self.at(to)? - self.at(from)?).max(0.0))
    }
}

/// One phase over all generator processes: from the earliest start to the
/// latest end, with everything they moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Unix seconds.
    pub from: f64,
    pub to: f64,
    pub bytes: u64,
    pub msgs: u64,
}

impl Phase {
    pub fn seconds(&self) -> f64 {
        (self.to - self.from).max(0.0)
    }

    pub fn mb_per_s(&self) -> Option<f64> {
        ratio(self.bytes as f64 / 1e6, self.seconds())
    }

    pub fn msgs_per_s(&self) -> Option<f64> {
        ratio(self.msgs as f64, self.seconds())
    }

    fn widen(&mut self, from: f64, to: f64, bytes: u64, msgs: u64) {
        if self.bytes == 0 && self.msgs == 0 && self.from == 0.0 {
            (self.from, self.to) = (from, to);
        } else {
            self.from = self.from.min(from);
            self.to = self.to.max(to);
        }
        self.bytes += bytes;
        self.msgs += msgs;
    }
}

/// The produce and consume phases of catch-up runs by several generators
/// (each its own topic, producing then reading from the beginning). A
/// generator's produce phase starts at its report's start and lasts its
/// window; its read starts where producing ended.
pub fn phases(reports: &[RunReport]) -> (Phase, Phase) {
    let mut produce = Phase::default();
    let mut consume = Phase::default();
    for r in reports {
        let start = r.started_unix_ms as f64 / 1e3;
        let written = start + r.produce.window_s;
        produce.widen(
            start,
            written,
            r.produce.acked_bytes_total,
            r.produce.acked_msgs_total,
        );
        if let Some(c) = &r.catchup {
            consume.widen(
                written,
                written + c.seconds,
                c.bytes_read_total,
                c.msgs_read_total,
            );
        }
    }
    (produce, consume)
}

/// The workload name of produce-then-consume rows (the only ones with
/// ratios: fixed-rate rows all carry the same offered rate).
pub const THROUGHPUT: &str = "produce→consume";

/// One row of the table: a broker at one point of the sweep (or a latency
/// or ceiling run). Figures are `None` when not measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub broker: String,
    /// "produce→consume", "5000 msg/s", "client ceiling".
    pub workload: String,
    /// corelog shards; 0 for other brokers.
    pub shards: usize,
    pub partitions: i32,
    pub record_bytes: usize,
    /// The broker's CPUs (taskset), as a list.
    pub broker_cpus: String,
    pub produce_mb_s: Option<f64>,
    pub produce_msgs_s: Option<f64>,
    pub consume_mb_s: Option<f64>,
    pub consume_msgs_s: Option<f64>,
    pub produce_cores: Option<f64>,
    pub consume_cores: Option<f64>,
    /// Broker CPU seconds per GB produced / consumed.
    pub cpu_s_per_gb_produced: Option<f64>,
    pub cpu_s_per_gb_consumed: Option<f64>,
    pub rss_rest_mib: Option<f64>,
    /// Fixed-rate rows: produce-ack latency, ms.
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub ack_p999_ms: Option<f64>,
    /// corelog only.
    pub load: Option<ShardLoadSummary>,
    /// What went wrong, if the run did not complete.
    pub error: Option<String>,
}

impl Row {
    /// The figures of a produce-then-consume point.
    pub fn fill_throughput(&mut self, produce: &Phase, consume: &Phase, cpu: &CpuSeries) {
        self.produce_mb_s = produce.mb_per_s();
        self.produce_msgs_s = produce.msgs_per_s();
        self.consume_mb_s = consume.mb_per_s();
        self.consume_msgs_s = consume.msgs_per_s();
        let used = |p: &Phase| cpu.between(p.from, p.to);
        self.produce_cores = used(produce).and_then(|c| ratio(c, produce.seconds()));
        self.consume_cores = used(consume).and_then(|c| ratio(c, consume.seconds()));
        self.cpu_s_per_gb_produced =
            used(produce).and_then(|c| ratio(c, produce.bytes as f64 / 1e9));
        self.cpu_s_per_gb_consumed =
            used(consume).and_then(|c| ratio(c, consume.bytes as f64 / 1e9));
    }

    /// The figures of a fixed-rate run: ack latency, the rate reached and
    /// the broker's cores over the measurement window.
    pub fn fill_latency(&mut self, report: &RunReport, cpu: &CpuSeries) {
        let ack = &report.produce.ack_latency_us;
        self.ack_p50_ms = Some(ack.p50 as f64 / 1e3);
        self.ack_p99_ms = Some(ack.p99 as f64 / 1e3);
        self.ack_p999_ms = Some(ack.p999 as f64 / 1e3);
        self.produce_msgs_s = Some(report.produce.msgs_per_s);
        self.produce_mb_s = Some(report.produce.mb_per_s);
        let from = report.started_unix_ms as f64 / 1e3 + report.workload.warmup_s;
        let to = from + report.produce.window_s;
        self.produce_cores = cpu
            .between(from, to)
            .and_then(|c| ratio(c, report.produce.window_s));
    }

    /// The key rows of different rounds are merged on.
    fn key(&self) -> (String, String, usize, i32, usize) {
        (
            self.broker.clone(),
            self.workload.clone(),
            self.shards,
            self.partitions,
            self.record_bytes,
        )
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Merges the rows of several rounds: one row per configuration, in first-
/// seen order, each figure the median of the rounds that measured it (the
/// shard-load summary is the first round's that has one). `rounds` counts
/// the rows merged into each.
pub fn median_rows(rows: &[Row]) -> Vec<(Row, usize)> {
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|g| g[0].key() == row.key()) {
            Some(g) => g.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let mut merged = g[0].clone();
            macro_rules! med {
                ($($f:ident),*) => { $(
                    merged.$f = median(g.iter().filter_map(|r| r.$f).collect());
                )* };
            }
            med!(
                produce_mb_s,
                produce_msgs_s,
                consume_mb_s,
                consume_msgs_s,
                produce_cores,
                consume_cores,
                cpu_s_per_gb_produced,
                cpu_s_per_gb_consumed,
                rss_rest_mib,
                ack_p50_ms,
                ack_p99_ms,
                ack_p999_ms
            );
            merged.load = g.iter().find_map(|r| r.load.clone());
            merged.error = g.iter().find_map(|r| r.error.clone());
            (merged, g.len())
        })
        .collect()
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// The run's table: one row per configuration (medians over rounds), with
/// ratios to Tansu's row of the same partitions and record size and to the
/// client ceiling of the same record size, then corelog's per-request
/// figures from `shard-stats`.
pub fn markdown(rows: &[Row]) -> String {
    let merged = median_rows(rows);
    let find = |broker: &str, workload: &str, r: &Row| {
        merged.iter().map(|(m, _)| m).find(|m| {
            m.broker == broker
                && m.workload == workload
                && m.record_bytes == r.record_bytes
                && (workload == "client ceiling" || m.partitions == r.partitions)
        })
    };
    let mut s = String::new();
    s += "| broker | shards | workload | partitions | record B | cpus | produce MB/s | produce msg/s \
          | consume MB/s | consume msg/s | produce × Tansu | consume × Tansu | produce × ceiling \
          | cores busy (prod / cons) | CPU s per GB (prod / cons) | RSS at rest MiB \
          | ack p50 / p99 / p99.9 ms | busy / CPU µs per request | commit rounds per produce, µs each \
          | cross-shard calls per request, µs queued | produce ack wait µs | sched delay µs, stalls \
          | rounds |\n";
    s += &"|---".repeat(23);
    s += "|\n";
    for (r, rounds) in &merged {
        let vs = |other: Option<&Row>, get: fn(&Row) -> Option<f64>| -> String {
            match (get(r), other.and_then(get)) {
                (Some(a), Some(b))
                    if b > 0.0 && r.broker != "tansu" && r.workload == THROUGHPUT =>
                {
                    format!("{:.2}", a / b)
                }
                _ => "–".into(),
            }
        };
        let tansu = find("tansu", &r.workload, r);
        let ceiling = find("librdkafka-mock", "client ceiling", r);
        let (load_busy, commits, mesh, wait, sched) = match &r.load {
            Some(l) => (
                format!(
                    "{} / {}",
                    f(l.busy_us_per_request, 1),
                    f(l.cpu_us_per_request, 1)
                ),
                format!(
                    "{}, {}",
                    f(l.commit_rounds_per_produce, 2),
                    f(l.commit_round_us, 0)
                ),
                format!("{}, {}", f(l.mesh_per_request, 2), f(l.mesh_delay_us, 0)),
                f(l.produce_wait_us, 0),
                format!("{}, {}", f(l.sched_delay_us, 0), l.sched_stalls),
            ),
            None => Default::default(),
        };
        let name = match &r.error {
            Some(e) => format!("{} (failed: {})", r.broker, e.replace('|', "/")),
            None => r.broker.clone(),
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} / {} / {} | {load_busy} | {commits} | {mesh} | {wait} | {sched} | {rounds} |",
            if r.shards > 0 { r.shards.to_string() } else { "–".into() },
            r.workload,
            r.partitions,
            r.record_bytes,
            r.broker_cpus,
            f(r.produce_mb_s, 1),
            f(r.produce_msgs_s, 0),
            f(r.consume_mb_s, 1),
            f(r.consume_msgs_s, 0),
            vs(tansu, |x| x.produce_mb_s),
            vs(tansu, |x| x.consume_mb_s),
            vs(ceiling, |x| x.produce_mb_s),
            f(r.produce_cores, 2),
            f(r.consume_cores, 2),
            f(r.cpu_s_per_gb_produced, 2),
            f(r.cpu_s_per_gb_consumed, 2),
            f(r.rss_rest_mib, 0),
            f(r.ack_p50_ms, 2),
            f(r.ack_p99_ms, 2),
            f(r.ack_p999_ms, 2),
        );
    }
    s
}
