//! What one run measured, as JSON (serde) and as a text table.
//!
//! Units: latencies in microseconds; MB = 10^6 bytes of payload (value + key,
//! no protocol overhead); cores = CPU seconds per wall second.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::workload::Workload;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProduceReport {
    pub sent_msgs_total: u64,
    pub acked_msgs_total: u64,
    pub acked_bytes_total: u64,
    pub failed_msgs_total: u64,
    /// Length of the measurement window (after warm-up).
    pub window_s: f64,
    /// Acknowledged messages sent inside the window, per second of window.
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub ack_latency_us: Percentiles,
    /// Fixed rate only: how late sends left against their schedule.
    pub send_lag_us: Percentiles,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConsumeReport {
    pub consumers: usize,
    /// Messages each consumer read over the whole run.
    pub consumed_msgs: Vec<u64>,
    pub errors: u64,
    /// Every consumer read at least every acknowledged message.
    pub all_acked_consumed: bool,
    pub e2e_latency_us: Percentiles,
    /// Longest time any consumer went without a message between its first
    /// and its last (catch-up: the longest wait while data was there).
    #[serde(default)]
    pub max_gap_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CatchUpReport {
    pub bytes_read_total: u64,
    pub msgs_read_total: u64,
    pub seconds: f64,
    /// Over all consumers.
    pub mb_per_s: f64,
    pub broker_cores: Option<f64>,
    pub loadgen_cores: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CpuReport {
    /// Broker cores used during the measurement window (None: in-process or unknown).
    pub broker_cores: Option<f64>,
    pub loadgen_cores: Option<f64>,
    pub broker_rss_bytes: Option<u64>,
    pub loadgen_cpus: Vec<usize>,
    pub broker_cpus: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub workload: Workload,
    pub broker: String,
    pub bootstrap: String,
    pub topic: String,
    pub started_unix_ms: u64,
    pub produce: ProduceReport,
    pub consume: ConsumeReport,
    pub catchup: Option<CatchUpReport>,
    pub cpu: CpuReport,
    /// The first error any client saw, if any.
    pub last_error: Option<String>,
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

impl RunReport {
    /// The final table, for stdout.
    pub fn table(&self) -> String {
        let p = &self.produce;
        let mut s = String::new();
        s += &format!(
            "workload {} on {} ({}), topic {}\n",
            self.workload.name, self.broker, self.bootstrap, self.topic
        );
        s += &format!(
            "produce: {:.0} msg/s, {:.1} MB/s over {:.1} s; acked {} of {} sent, {} failed\n",
            p.msgs_per_s,
            p.mb_per_s,
            p.window_s,
            p.acked_msgs_total,
            p.sent_msgs_total,
            p.failed_msgs_total
        );
        if let Some(c) = &self.catchup {
            s += &format!(
                "catch-up read: {} msgs, {:.1} MB in {:.2} s = {:.1} MB/s\n",
                c.msgs_read_total,
                c.bytes_read_total as f64 / 1e6,
                c.seconds,
                c.mb_per_s
            );
        }
        if self.consume.consumers > 0 {
            s += &format!(
                "consume: {} consumers read {:?} msgs; all acked consumed: {}; errors {}\n",
                self.consume.consumers,
                self.consume.consumed_msgs,
                self.consume.all_acked_consumed,
                self.consume.errors
            );
        }
        s += "latency (ms)      count        p50        p90        p99      p99.9     p99.99        max\n";
        let mut row = |name: &str, l: &Percentiles| {
            s += &format!(
                "{:<14} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
                name,
                l.count,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.p9999),
                ms(l.max)
            );
        };
        row("produce-ack", &p.ack_latency_us);
        if self.workload.rate > 0 {
            row("send lag", &p.send_lag_us);
        }
        if self.consume.consumers > 0 {
            row("end-to-end", &self.consume.e2e_latency_us);
        }
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |c| format!("{c:.2}"));
        s += &format!(
            "cpu: broker {} cores, load generator {} cores (cpus {:?}); broker rss {}\n",
            f(self.cpu.broker_cores),
            f(self.cpu.loadgen_cores),
            self.cpu.loadgen_cpus,
            self.cpu
                .broker_rss_bytes
                .map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
        );
        if let Some(e) = &self.last_error {
            s += &format!("first error: {e}\n");
        }
        s
    }
}
