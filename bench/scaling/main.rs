//! `cargo bench --bench scaling -- [flags]` (or `bench/scaling.sh [flags]`)
//!
//! The scaling workload: corelog at each shard count and Tansu, alternating
//! in one run, each point on a freshly started broker: N load-generator
//! processes (the `loadgen` bench binary), each producing to a topic of its
//! own and then reading it back from the beginning, over a sweep of shard
//! counts, partition counts and record sizes; then a fixed-rate latency run
//! per broker configuration, replicated latency on a local 3-node
//! dev-cluster (RF 3) beside a single node at the same rate, and
//! librdkafka's mock broker as the client ceiling. The broker's CPU time is sampled from /proc every 50 ms and
//! integrated over each phase; corelog's `shard-stats` (printed when it
//! stops on SIGTERM) give its per-request busy time and waits. Writes
//! `report.md` (one table), `rows.json` and every process's output to
//! `--out`. See bench/README.md.

#[path = "../common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use common::brokers::{self, Kind};
use common::cpu::{allowed_cpus, cpu_seconds, parse_cpu_list, rss_bytes};
use common::report::RunReport;
use common::scaling::{
    markdown, parse_shard_stats, phases, CpuSeries, Phase, Row, ShardLoadSummary, THROUGHPUT,
};

#[derive(Parser, Debug)]
#[command(name = "scaling", about = "Scaling sweep: corelog shards vs Tansu")]
struct Args {
    /// Output directory (default bench/results/scaling-<UTC date>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The big sweep: shards 1,2,4,8,16; partitions 8,64,512,4096; 1 GiB
    /// per point; 8 generators; 3 rounds (flags given explicitly win).
    #[arg(long)]
    full: bool,
    /// corelog shard counts.
    #[arg(long)]
    shards: Option<String>,
    /// Leave out shard counts above this.
    #[arg(long)]
    shards_max: Option<usize>,
    /// Partition counts (in total, spread over the generators' topics).
    #[arg(long)]
    partitions: Option<String>,
    /// Record (payload) sizes in bytes.
    #[arg(long, default_value = "100,1024,16384")]
    record_bytes: String,
    /// Load-generator processes per point.
    #[arg(long)]
    generators: Option<usize>,
    /// Payload bytes produced (then consumed) per point, over all generators.
    #[arg(long)]
    bytes: Option<u64>,
    /// Bound on each phase (producing, reading) of a point, seconds.
    #[arg(long, default_value_t = 30.0)]
    phase_s: f64,
    /// Rounds of the whole sweep; the table shows medians.
    #[arg(long)]
    rounds: Option<usize>,
    /// Brokers, comma separated (corelog, tansu).
    #[arg(long, default_value = "corelog,tansu")]
    brokers: String,
    /// Fixed-rate latency run: msg/s of 1 KiB, acks=all, one partition.
    #[arg(long, default_value_t = 5000)]
    latency_rate: u64,
    /// Seconds of the latency run (0: none).
    #[arg(long, default_value_t = 10.0)]
    latency_s: f64,
    /// RF 3 run on a local 3-node dev-cluster (and a single node at the
    /// same rate): msg/s of 1 KiB, acks=all.
    #[arg(long, default_value_t = 1000)]
    rf3_rate: u64,
    /// Seconds of the RF 3 run (0: none).
    #[arg(long, default_value_t = 10.0)]
    rf3_s: f64,
    /// Seconds of each client-ceiling run on librdkafka's mock (0: none).
    #[arg(long, default_value_t = 5.0)]
    mock_s: f64,
    /// Seconds to let the broker settle before reading its RSS at rest.
    #[arg(long, default_value_t = 3.0)]
    rest_s: f64,
    /// CPUs for brokers (default: the lower half of this process's CPUs
    /// when it has at least 4, else all of them, shared).
    #[arg(long)]
    broker_cpus: Option<String>,
    /// CPUs for the generators (default: the upper half when there are at
    /// least 4, else unpinned).
    #[arg(long)]
    loadgen_cpus: Option<String>,
    /// corelog binary (default: the one cargo built with this bench).
    #[arg(long)]
    corelog_bin: Option<PathBuf>,
    /// loadgen binary (default: $LOADGEN, else the newest loadgen-* next to
    /// this binary).
    #[arg(long)]
    loadgen_bin: Option<PathBuf>,
    /// Cargo passes --bench to bench targets; accepted and ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What the sweep runs, after defaults and `--full`.
struct Plan {
    shards: Vec<usize>,
    partitions: Vec<i32>,
    record_bytes: Vec<usize>,
    generators: usize,
    bytes: u64,
    rounds: usize,
    brokers: Vec<String>,
    broker_cpus: Vec<usize>,
    /// None: generators unpinned.
    loadgen_cpus: Option<Vec<usize>>,
    placement: String,
    corelog: PathBuf,
    loadgen: PathBuf,
    tansu: Option<PathBuf>,
}

fn numbers<T: std::str::FromStr>(list: &str) -> Result<Vec<T>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| anyhow::anyhow!("`{s}` is not a number"))
        })
        .collect()
}

fn plan(args: &Args) -> Result<Plan> {
    let full = args.full;
    let mut shards: Vec<usize> =
        numbers(
            args.shards
                .as_deref()
                .unwrap_or(if full { "1,2,4,8,16" } else { "1,2" }),
        )?;
    if let Some(max) = args.shards_max {
        shards.retain(|&s| s <= max);
    }
    let partitions =
        numbers(
            args.partitions
                .as_deref()
                .unwrap_or(if full { "8,64,512,4096" } else { "8,64" }),
        )?;
    let allowed = allowed_cpus();
    let (broker_cpus, loadgen_cpus, placement) = match (&args.broker_cpus, &args.loadgen_cpus) {
        (Some(b), l) => (
            parse_cpu_list(b),
            l.as_deref().map(parse_cpu_list),
            "as given by --broker-cpus / --loadgen-cpus".to_string(),
        ),
        (None, _) if allowed.len() >= 4 => {
            let half = allowed.len() / 2;
            (
                allowed[..half].to_vec(),
                Some(allowed[half..].to_vec()),
                format!(
                    "brokers on CPUs {:?} (corelog with S shards on the first S of them), generators pinned to {:?}",
                    &allowed[..half],
                    &allowed[half..]
                ),
            )
        }
        (None, _) => (
            allowed.clone(),
            None,
            format!(
                "only {} CPUs: brokers and generators share all of them (generators unpinned; corelog places its shards itself)",
                allowed.len()
            ),
        ),
    };
    let brokers: Vec<String> = args
        .brokers
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let tansu = if brokers.iter().any(|b| b == "tansu") {
        match brokers::find_tansu() {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("warning: tansu absent: {why}");
                None
            }
        }
    } else {
        None
    };
    Ok(Plan {
        shards,
        partitions,
        record_bytes: numbers(&args.record_bytes)?,
        generators: args.generators.unwrap_or(if full { 8 } else { 2 }).max(1),
        bytes: args.bytes.unwrap_or(if full { 1 << 30 } else { 128 << 20 }),
        rounds: args.rounds.unwrap_or(if full { 3 } else { 1 }).max(1),
        brokers,
        broker_cpus,
        loadgen_cpus,
        placement,
        corelog: args
            .corelog_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_corelog"))),
        loadgen: find_loadgen(args.loadgen_bin.as_deref())?,
        tansu,
    })
}

/// The loadgen bench binary: given, $LOADGEN, or the newest `loadgen-*`
/// executable in this binary's directory (cargo puts bench binaries
/// together in target/release/deps).
fn find_loadgen(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("LOADGEN").map(PathBuf::from))
    {
        return Ok(p);
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary directory")?;
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("loadgen-") && !name.contains('.')
        })
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    match found.pop() {
        Some((_, p)) => Ok(p),
        None => bail!(
            "no loadgen binary in {} (cargo bench --no-run --bench loadgen, or --loadgen-bin)",
            dir.display()
        ),
    }
}

fn unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Samples a process's cumulative CPU seconds every 50 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<CpuSeries>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut series = CpuSeries::default();
            loop {
                if let Some(cpu) = cpu_seconds(Some(pid)) {
                    series.samples.push((unix_s(), cpu));
                }
                if flag.load(Ordering::Relaxed) {
                    return series;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> CpuSeries {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// Waits for a child, killing it past `limit`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("exited with {status}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("killed after {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `count` loadgen processes with `argv` at once, each writing its
/// JSON report and output to `out/<name>-<i>.*`, and returns their reports.
fn generate(
    plan: &Plan,
    out: &Path,
    name: &str,
    count: usize,
    limit: Duration,
    pin: Option<&[usize]>,
    argv: &[String],
) -> Result<Vec<RunReport>> {
    let mut children = Vec::new();
    for i in 0..count {
        let json = out.join(format!("{name}-{i}.json"));
        let log = std::fs::File::create(out.join(format!("{name}-{i}.txt")))?;
        let mut cmd = Command::new(&plan.loadgen);
        cmd.args(argv).arg("--json").arg(&json);
        if let Some(cpus) = pin {
            let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
            cmd.arg("--cpus").arg(list.join(","));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        children.push((cmd.spawn().context("spawn loadgen")?, json));
    }
    let mut reports = Vec::new();
    let mut failure = None;
    for (mut child, json) in children {
        match wait_bounded(&mut child, limit) {
            Ok(()) => {
                let text = std::fs::read_to_string(&json)?;
                reports.push(serde_json::from_str(&text)?);
            }
            Err(e) => failure = Some(format!("{}: {e}", json.display())),
        }
    }
    match failure {
        Some(e) => bail!("a generator failed: {e} (its .txt has its output)"),
        None => Ok(reports),
    }
}

/// One broker under test at one shard count.
#[derive(Clone)]
struct Target {
    broker: String,
    kind: Kind,
    shards: usize,
    cpus: Vec<usize>,
}

impl Target {
    fn label(&self) -> String {
        match self.shards {
            0 => self.broker.clone(),
            s => format!("{}-{s}s", self.broker),
        }
    }
}

fn targets(plan: &Plan) -> Vec<Target> {
    let mut targets = Vec::new();
    if let Some(bin) = &plan.tansu {
        targets.push(Target {
            broker: "tansu".into(),
            kind: Kind::Tansu { bin: bin.clone() },
            shards: 0,
            cpus: plan.broker_cpus.clone(),
        });
    }
    if plan.brokers.iter().any(|b| b == "corelog") {
        for &shards in &plan.shards {
            // Pinned runs give S shards the first S broker CPUs (corelog
            // then pins one shard per core itself); more shards than CPUs
            // run oversubscribed and unpinned on all of them.
            let cpus = if plan.loadgen_cpus.is_some() {
                plan.broker_cpus[..shards.min(plan.broker_cpus.len()).max(1)].to_vec()
            } else {
                plan.broker_cpus.clone()
            };
            targets.push(Target {
                broker: "corelog".into(),
                kind: Kind::Corelog {
                    bin: plan.corelog.clone(),
                    shards,
                },
                shards,
                cpus,
            });
        }
    }
    targets
}

/// A command line from one string of space-separated words.
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a point's load measured, for the row.
enum Measured {
    /// Produce then consume: the two phases over all generators.
    Throughput(Phase, Phase),
    /// A fixed-rate run's report.
    Latency(Box<RunReport>),
}

/// Starts the target, runs `load` against it while sampling its CPU, lets
/// it rest, reads its RSS, stops it and parses its `shard-stats`, and
/// fills `row` from all of that.
fn on_fresh_broker(
    target: &Target,
    out: &Path,
    tag: &str,
    rest_s: f64,
    row: &mut Row,
    load: impl FnOnce(&str) -> Result<Measured>,
) {
    row.broker = target.broker.clone();
    row.shards = target.shards;
    row.broker_cpus = cpu_list(&target.cpus);
    let mut running = match brokers::start(&target.broker, &target.kind, &target.cpus, None) {
        Ok(r) => r,
        Err(e) => {
            row.error = Some(format!("start: {e:#}"));
            return;
        }
    };
    let pid = running.pid.expect("a started broker has a pid");
    let sampler = Sampler::start(pid);
    let measured = load(&running.bootstrap);
    thread::sleep(Duration::from_secs_f64(rest_s));
    row.rss_rest_mib = rss_bytes(Some(pid)).map(|b| b as f64 / 1048576.0);
    let series = sampler.finish();
    let stopped = running.stop();
    let log = std::fs::read_to_string(&running.log).unwrap_or_default();
    let _ = std::fs::write(out.join(format!("{tag}-broker.log")), &log);
    match measured {
        Ok(Measured::Throughput(produce, consume)) => {
            row.fill_throughput(&produce, &consume, &series)
        }
        Ok(Measured::Latency(report)) => row.fill_latency(&report, &series),
        Err(e) => row.error = Some(format!("{e:#}")),
    }
    if target.shards > 0 {
        row.load = ShardLoadSummary::of(&parse_shard_stats(&log));
        if row.load.is_none() && row.error.is_none() {
            row.error = Some("no shard-stats at shutdown".into());
        }
    }
    if !stopped && row.error.is_none() {
        row.error = Some("did not stop within the bound".into());
    }
}

/// One produce-then-consume point: each generator makes a topic of
/// `partitions / generators` partitions (at least one), writes its share of
/// `bytes` with acks=all and reads it back from the beginning.
fn throughput_point(
    plan: &Plan,
    args: &Args,
    out: &Path,
    tag: &str,
    bootstrap: &str,
    partitions: i32,
    size: usize,
) -> Result<Measured> {
    let g = plan.generators;
    let per_topic = (partitions / g as i32).max(1);
    let limit = Duration::from_secs_f64(args.phase_s * 2.0 + 120.0);
    let argv = words(&format!(
        "--bootstrap {bootstrap} --label {tag} --message-bytes {size} --partitions {per_topic} \
         --producers 1 --acks all --linger-ms 5 --catchup-bytes {} --duration-s {} \
         --consumers 1 --consumer-start beginning \
         --consumer-config max.partition.fetch.bytes=4194304",
        plan.bytes / g as u64,
        args.phase_s
    ));
    let pin = plan.loadgen_cpus.as_deref();
    let reports = generate(plan, out, tag, g, limit, pin, &argv)?;
    let (produce, consume) = phases(&reports);
    let lost = reports.iter().find(|r| {
        r.produce.failed_msgs_total > 0
            || r.catchup
                .as_ref()
                .is_some_and(|c| c.msgs_read_total < r.produce.acked_msgs_total)
    });
    if let Some(r) = lost {
        bail!(
            "{} failed or unread messages (first error: {:?})",
            r.produce.failed_msgs_total,
            r.last_error
        );
    }
    Ok(Measured::Throughput(produce, consume))
}

/// A fixed rate of 1 KiB records, linger 0, acks=all, one partition with
/// `replicas` replicas, one consumer.
struct FixedRate {
    rate: u64,
    seconds: f64,
    replicas: usize,
}

fn latency_point(
    plan: &Plan,
    out: &Path,
    tag: &str,
    bootstrap: &str,
    fixed: &FixedRate,
) -> Result<Measured> {
    let limit = Duration::from_secs_f64(fixed.seconds + 150.0);
    let argv = words(&format!(
        "--bootstrap {bootstrap} --label {tag} --message-bytes 1024 --partitions 1 \
         --replication-factor {} --rate {} --linger-ms 0 --acks all --duration-s {} \
         --warmup-s 2 --consumers 1",
        fixed.replicas, fixed.rate, fixed.seconds
    ));
    let pin = plan.loadgen_cpus.as_deref();
    let mut reports = generate(plan, out, tag, 1, limit, pin, &argv)?;
    Ok(Measured::Latency(Box::new(reports.remove(0))))
}

/// Replicated latency: a local 3-node dev-cluster (one shard per node,
/// min.insync.replicas 2, placed by `dev-cluster --cores auto`) at a fixed
/// rate with RF 3. The figures from `shard-stats` are the three nodes'
/// together; the nodes' CPU is not sampled (they are the dev-cluster's
/// children).
fn rf3_row(plan: &Plan, out: &Path, round: usize, fixed: &FixedRate) -> Row {
    let mut row = Row {
        broker: "corelog 3 nodes".into(),
        workload: format!("{} msg/s RF 3", fixed.rate),
        shards: 1,
        partitions: 1,
        record_bytes: 1024,
        broker_cpus: "dev-cluster auto".into(),
        ..Row::default()
    };
    let tag = format!("r{round}-corelog-rf3-latency");
    match run_dev_cluster(plan, out, &tag, fixed) {
        Ok((report, logs)) => {
            row.fill_latency(&report, &CpuSeries::default());
            row.load = ShardLoadSummary::of(&parse_shard_stats(&logs));
            if row.load.is_none() {
                row.error = Some("no shard-stats from the nodes".into());
            }
        }
        Err(e) => row.error = Some(format!("{e:#}")),
    }
    row
}

/// Starts the dev-cluster, runs the fixed rate against it, stops it with
/// SIGTERM (which it forwards to the nodes) and returns the generator's
/// report with the nodes' logs.
fn run_dev_cluster(
    plan: &Plan,
    out: &Path,
    tag: &str,
    fixed: &FixedRate,
) -> Result<(RunReport, String)> {
    let dir = tempfile::Builder::new()
        .prefix("corelog-scaling-rf3-")
        .tempdir()?;
    // Node i serves on base + i - 1 and its controller on base + 100 + i.
    let base = 20_000 + (std::process::id() % 20_000) as u16;
    let log_path = out.join(format!("{tag}-dev-cluster.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(&plan.corelog)
        .args([
            "dev-cluster",
            "--nodes",
            "3",
            "--base-port",
            &base.to_string(),
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("spawn dev-cluster")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let ready = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("nodes running") {
            break Ok(());
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("dev-cluster exited with {status}"));
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("dev-cluster not running after 120 s"));
        }
        thread::sleep(Duration::from_millis(200));
    };
    let measured =
        ready.and_then(|()| latency_point(plan, out, tag, &format!("127.0.0.1:{base}"), fixed));
    // SAFETY-free libc call on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    if wait_bounded(&mut child, Duration::from_secs(90)).is_err() {
        eprintln!("{tag}: dev-cluster did not stop cleanly within 90 s");
    }
    let mut logs = String::new();
    for node in 1..=3 {
        let path = dir.path().join(format!("node{node}.log"));
        logs += &std::fs::read_to_string(path).unwrap_or_default();
    }
    let _ = std::fs::write(out.join(format!("{tag}-nodes.log")), &logs);
    match measured? {
        Measured::Latency(report) => Ok((*report, logs)),
        Measured::Throughput(..) => unreachable!("a fixed-rate run"),
    }
}

/// A fixed-rate row on a fresh broker.
fn fixed_rate_row(
    plan: &Plan,
    args: &Args,
    out: &Path,
    tag: &str,
    target: &Target,
    fixed: &FixedRate,
) -> Row {
    let mut row = Row {
        workload: format!("{} msg/s", fixed.rate),
        partitions: 1,
        record_bytes: 1024,
        ..Row::default()
    };
    on_fresh_broker(target, out, tag, args.rest_s, &mut row, |bootstrap| {
        latency_point(plan, out, tag, bootstrap, fixed)
    });
    row
}

/// librdkafka's mock broker as the client ceiling: produce only (it keeps
/// a bounded log), as many producers as generators, in one process that may
/// use the brokers' CPUs and the generators'.
fn ceiling_row(plan: &Plan, args: &Args, out: &Path, size: usize, round: usize) -> Row {
    let mut row = Row {
        broker: "librdkafka-mock".into(),
        workload: "client ceiling".into(),
        record_bytes: size,
        partitions: 8,
        ..Row::default()
    };
    let tag = format!("r{round}-mock-{size}b");
    let limit = Duration::from_secs_f64(args.mock_s + 60.0);
    let mut cpus = plan.broker_cpus.clone();
    cpus.extend(plan.loadgen_cpus.iter().flatten());
    row.broker_cpus = cpu_list(&cpus);
    let argv = words(&format!(
        "--mock --message-bytes {size} --partitions 8 --producers {} --acks all \
         --linger-ms 5 --duration-s {} --warmup-s 1",
        plan.generators, args.mock_s
    ));
    let result = generate(plan, out, &tag, 1, limit, None, &argv);
    match result {
        Ok(reports) => {
            row.produce_mb_s = Some(reports[0].produce.mb_per_s);
            row.produce_msgs_s = Some(reports[0].produce.msgs_per_s);
        }
        Err(e) => row.error = Some(format!("{e:#}")),
    }
    row
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} CPUs ({model}), Linux {}, {} allowed to this run",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel.trim(),
        allowed_cpus().len()
    )
}

fn utc_stamp() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d-%H%M"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("latest".into(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let plan = plan(&args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench/results").join(format!("scaling-{}", utc_stamp())));
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let load_before = loadavg();
    eprintln!("scaling: {}; placement: {}", machine(), plan.placement);
    let targets = targets(&plan);
    let mut rows: Vec<Row> = Vec::new();
    let save = |rows: &[Row]| {
        let _ = std::fs::write(
            out.join("rows.json"),
            serde_json::to_string_pretty(rows).unwrap_or_default(),
        );
    };
    for round in 1..=plan.rounds {
        if args.mock_s > 0.0 {
            for &size in &plan.record_bytes {
                eprintln!("--- round {round}: client ceiling, {size} B ---");
                rows.push(ceiling_row(&plan, &args, &out, size, round));
            }
        }
        for &partitions in &plan.partitions {
            for &size in &plan.record_bytes {
                for target in &targets {
                    let tag = format!("r{round}-{}-{partitions}p-{size}b", target.label());
                    eprintln!("--- {tag} ---");
                    let mut row = Row {
                        workload: THROUGHPUT.into(),
                        partitions,
                        record_bytes: size,
                        ..Row::default()
                    };
                    on_fresh_broker(target, &out, &tag, args.rest_s, &mut row, |bootstrap| {
                        throughput_point(&plan, &args, &out, &tag, bootstrap, partitions, size)
                    });
                    if let Some(e) = &row.error {
                        eprintln!("{tag}: {e}");
                    }
                    rows.push(row);
                    save(&rows);
                }
            }
        }
        if args.latency_s > 0.0 {
            let fixed = FixedRate {
                rate: args.latency_rate,
                seconds: args.latency_s,
                replicas: 1,
            };
            for target in &targets {
                let tag = format!("r{round}-{}-latency", target.label());
                eprintln!("--- {tag} ---");
                rows.push(fixed_rate_row(&plan, &args, &out, &tag, target, &fixed));
                save(&rows);
            }
        }
        if args.rf3_s > 0.0 && plan.brokers.iter().any(|b| b == "corelog") {
            let fixed = FixedRate {
                rate: args.rf3_rate,
                seconds: args.rf3_s,
                replicas: 3,
            };
            eprintln!("--- round {round}: RF 3 dev-cluster ---");
            rows.push(rf3_row(&plan, &out, round, &fixed));
            // The same rate on a single 1-shard node, for the ratio.
            let single = Target {
                broker: "corelog".into(),
                kind: Kind::Corelog {
                    bin: plan.corelog.clone(),
                    shards: 1,
                },
                shards: 1,
                cpus: plan.broker_cpus.clone(),
            };
            let fixed = FixedRate {
                replicas: 1,
                ..fixed
            };
            let tag = format!("r{round}-corelog-1s-rf1-latency");
            eprintln!("--- {tag} ---");
            rows.push(fixed_rate_row(&plan, &args, &out, &tag, &single, &fixed));
            save(&rows);
        }
    }
    let mut md = format!(
        "# Scaling run {}

Machine: {}.
Placement: {}.
{} generator process(es) per point, {} MiB produced then consumed per point (acks=all, linger 5 ms), {} round(s) (medians).

",
        utc_stamp(),
        machine(),
        plan.placement,
        plan.generators,
        plan.bytes >> 20,
        plan.rounds,
    );
    md += &markdown(&rows);
    let _ = writeln!(
        md,
        "
/proc/loadavg before the run: `{load_before}`; after: `{}` (anything but this run skews the figures).",
        loadavg()
    );
    std::fs::write(out.join("report.md"), &md)?;
    println!("{md}");
    eprintln!("wrote {}", out.join("report.md").display());
    Ok(())
}
