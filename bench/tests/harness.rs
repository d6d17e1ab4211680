//! The benchmark harness's own tests (run by plain `cargo test`): a short
//! load-generator run against a real corelog completes and its JSON report's
//! counts match what was consumed; a missing peer is reported as absent;
//! every micro-benchmark runs tiny.

#[path = "../common/mod.rs"]
mod common;

#[path = "../micro/main.rs"]
#[allow(dead_code)]
mod micro;

use std::path::{Path, PathBuf};

use common::brokers::{self, Kind};
use common::loadgen::{run, RunOptions, TopicSetup};
use common::report::RunReport;
use common::workload::{ConsumerStart, Workload};

/// The corelog run and the micro-benchmarks (glommio executors pinned to
/// cores 0 and 1) run one at a time: in parallel on 2 cores, corelog once
/// failed to exit within 30 s of SIGTERM (not yet understood; reported).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn corelog_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_corelog"))
}

#[test]
fn short_run_against_corelog_counts_match() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let kind = Kind::Corelog {
        bin: corelog_bin(),
        shards: 2,
    };
    let cpus = common::cpu::allowed_cpus();
    let mut broker = brokers::start("corelog", &kind, &cpus, None).expect("start corelog");
    let w = Workload {
        name: "harness-test".into(),
        message_bytes: 512,
        partitions: 2,
        producers: 2,
        rate: 2000,
        acks: "all".into(),
        linger_ms: 1,
        duration_s: 2.0,
        warmup_s: 0.5,
        drain_s: 10.0,
        consumers: 2,
        consumer_start: ConsumerStart::Tail,
        ..Workload::default()
    };
    let opts = RunOptions {
        bootstrap: broker.bootstrap.clone(),
        broker: "corelog".into(),
        topic: TopicSetup::Admin,
        progress: false,
        broker_pid: broker.pid,
    };
    let report = run(&w, &opts).expect("run completes");
    assert!(broker.stop(), "corelog stops on SIGTERM");

    // The JSON report round-trips and carries the counts.
    let json = serde_json::to_string(&report).unwrap();
    let back: RunReport = serde_json::from_str(&json).unwrap();
    let p = &back.produce;
    assert_eq!(p.failed_msgs_total, 0, "first error: {:?}", back.last_error);
    assert!(p.acked_msgs_total >= 4000, "acked {}", p.acked_msgs_total);
    assert_eq!(p.acked_msgs_total, p.sent_msgs_total);
    assert_eq!(back.consume.consumed_msgs.len(), 2);
    for &c in &back.consume.consumed_msgs {
        assert_eq!(
            c, p.acked_msgs_total,
            "each consumer read every acked message once"
        );
    }
    assert!(back.consume.all_acked_consumed);
    assert!(p.ack_latency_us.count > 0 && back.consume.e2e_latency_us.count > 0);
    assert!(p.ack_latency_us.p50 <= p.ack_latency_us.p99);
    assert!(back.cpu.broker_cores.is_some());
    assert!(back.cpu.broker_rss_bytes.unwrap_or(0) > 0);
}

#[test]
fn missing_peers_are_reported_absent() {
    // Only this test touches these variables.
    std::env::set_var("TANSU_BIN", "/nonexistent/tansu");
    std::env::remove_var("KAFKA_HOME");
    let peers = brokers::discover(Path::new("/bin/true"), 1, &[]);
    let get = |n: &str| peers.iter().find(|p| p.name == n).expect("peer listed");
    assert!(get("tansu")
        .kind
        .as_ref()
        .unwrap_err()
        .contains("not a file"));
    assert!(get("kafka")
        .kind
        .as_ref()
        .unwrap_err()
        .contains("KAFKA_HOME"));
    assert!(get("corelog").kind.is_ok());
    assert!(get("librdkafka-mock").kind.is_ok());
    std::env::remove_var("TANSU_BIN");
}

#[test]
fn micro_benchmarks_run_tiny() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    micro::run_quick();
}

/// The scaling workload's arithmetic: `shard-stats` lines become per-request
/// figures, CPU samples integrate over a phase, several generators' reports
/// make one produce and one consume phase, and the table carries the
/// ratios to Tansu and to the client ceiling.
#[test]
fn scaling_table_from_shard_stats_cpu_samples_and_reports() {
    use common::report::{CatchUpReport, ProduceReport};
    use common::scaling::{markdown, parse_shard_stats, phases, CpuSeries, Row, ShardLoadSummary};

    let log = "corelog: serving Kafka\n\
        shard-stats shard=0 partitions=4 produce_local=10 requests_produce=100 requests_fetch=50 \
        requests_other=10 busy_us=400000 cpu_us=170000 busy_requests_us=300000 mesh_sent=30 mesh_received=20 \
        mesh_delay_us=2000 commit_rounds=40 commit_us=80000 produce_waits=100 \
        produce_wait_us=500000 fetch_wait_us=100000 sched_probes=100 sched_delay_us=5000 \
        sched_stalls=1 note=text\n\
        noise\n\
        shard-stats shard=1 partitions=4 produce_local=10 requests_produce=100 requests_fetch=50 \
        requests_other=30 busy_us=400000 cpu_us=170000 busy_requests_us=300000 mesh_sent=20 mesh_received=30 \
        mesh_delay_us=3000 commit_rounds=60 commit_us=120000 produce_waits=100 \
        produce_wait_us=300000 fetch_wait_us=0 sched_probes=100 sched_delay_us=15000 \
        sched_stalls=2\n";
    let shards = parse_shard_stats(log);
    assert_eq!(shards.len(), 2);
    assert!(
        !shards[0].contains_key("note"),
        "values that are not numbers are left out"
    );
    let load = ShardLoadSummary::of(&shards).expect("load keys present");
    assert_eq!(load.shards, 2);
    assert_eq!(load.data_requests, 300);
    assert_eq!(load.requests, 340);
    assert!((load.busy_s - 0.8).abs() < 1e-9);
    assert!((load.busy_us_per_request.unwrap() - 800_000.0 / 340.0).abs() < 1e-6);
    assert_eq!(load.cpu_us_per_request, Some(1000.0));
    assert_eq!(load.commit_round_us, Some(2000.0));
    assert_eq!(load.commit_rounds_per_produce, Some(0.5));
    assert_eq!(load.mesh_per_request, Some(50.0 / 300.0));
    assert_eq!(load.mesh_delay_us, Some(100.0));
    assert_eq!(load.produce_wait_us, Some(4000.0));
    assert_eq!(load.sched_delay_us, Some(100.0));
    assert_eq!(load.sched_stalls, 3);
    // A broker without the load keys (an older corelog, Tansu) has none.
    assert!(ShardLoadSummary::of(&parse_shard_stats("shard-stats shard=0 x=1")).is_none());
    assert!(ShardLoadSummary::of(&[]).is_none());

    // 1 core busy from t=100 to 102, idle after.
    let cpu = CpuSeries {
        samples: vec![(100.0, 5.0), (101.0, 6.0), (102.0, 7.0), (104.0, 7.0)],
    };
    assert_eq!(cpu.between(100.5, 101.5), Some(1.0));
    assert_eq!(
        cpu.between(90.0, 200.0),
        Some(2.0),
        "clamped to the samples"
    );
    assert_eq!(cpu.between(102.0, 104.0), Some(0.0));
    assert_eq!(CpuSeries::default().between(0.0, 1.0), None);

    // Two generators: one starts at t=100 and writes for 1 s, the other at
    // 100.5 for 1 s; each then reads for 0.5 s.
    let report = |start_ms: u64| RunReport {
        workload: Workload::default(),
        broker: "corelog".into(),
        bootstrap: String::new(),
        topic: String::new(),
        started_unix_ms: start_ms,
        produce: ProduceReport {
            acked_bytes_total: 1_000_000,
            acked_msgs_total: 1000,
            window_s: 1.0,
            ..ProduceReport::default()
        },
        consume: Default::default(),
        catchup: Some(CatchUpReport {
            bytes_read_total: 1_000_000,
            msgs_read_total: 1000,
            seconds: 0.5,
            ..CatchUpReport::default()
        }),
        cpu: Default::default(),
        last_error: None,
    };
    let (produce, consume) = phases(&[report(100_000), report(100_500)]);
    assert_eq!((produce.from, produce.to), (100.0, 101.5));
    assert_eq!((consume.from, consume.to), (101.0, 102.0));
    assert_eq!((produce.bytes, consume.msgs), (2_000_000, 2000));
    assert!((produce.mb_per_s().unwrap() - 2.0 / 1.5).abs() < 1e-9);
    assert_eq!(consume.mb_per_s(), Some(2.0));

    let mut corelog = Row {
        broker: "corelog".into(),
        workload: common::scaling::THROUGHPUT.into(),
        shards: 2,
        partitions: 8,
        record_bytes: 1024,
        load: Some(load),
        ..Row::default()
    };
    corelog.fill_throughput(&produce, &consume, &cpu);
    // 1.5 CPU s over 1.5 s of producing 2 MB: 750 s per GB.
    assert_eq!(corelog.produce_cores, Some(1.0));
    assert!((corelog.cpu_s_per_gb_produced.unwrap() - 750.0).abs() < 1e-6);
    let tansu = |mb: f64| Row {
        broker: "tansu".into(),
        workload: common::scaling::THROUGHPUT.into(),
        partitions: 8,
        record_bytes: 1024,
        produce_mb_s: Some(mb),
        consume_mb_s: Some(1.0),
        ..Row::default()
    };
    let ceiling = Row {
        broker: "librdkafka-mock".into(),
        workload: "client ceiling".into(),
        partitions: 8,
        record_bytes: 1024,
        produce_mb_s: Some(4.0 / 1.5),
        ..Row::default()
    };
    // Two rounds of Tansu: the table shows their median (2/3 and 4/3 MB/s: 1).
    let table = markdown(&[ceiling, tansu(2.0 / 3.0), corelog, tansu(4.0 / 3.0)]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines.len(),
        2 + 3,
        "header, rule, one row per configuration:\n{table}"
    );
    let row = lines.iter().find(|l| l.starts_with("| corelog")).unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[7], "1.3", "produce MB/s: {row}");
    assert_eq!(cells[11], "1.33", "produce × Tansu's median: {row}");
    assert_eq!(cells[12], "2.00", "consume × Tansu: {row}");
    assert_eq!(cells[13], "0.50", "produce × ceiling: {row}");
    assert_eq!(cells[21], "4000", "produce ack wait: {row}");
    let tansu_row = lines.iter().find(|l| l.starts_with("| tansu")).unwrap();
    assert!(
        tansu_row.trim_end().ends_with("| 2 |"),
        "two rounds merged: {tansu_row}"
    );
}
