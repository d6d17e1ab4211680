//! Shared harness for the black-box tests: a real `corelog` process on
//! loopback, driven by librdkafka (the `rdkafka` crate) and by raw Kafka
//! requests encoded with `kafka-protocol`.
//!
//! Every wait here has a deadline, so a broken broker fails a test with its
//! stderr instead of hanging the suite.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod http;
pub mod load;
pub mod raw;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// How long a broker may take to start listening.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for one admin operation (CreateTopics and the like).
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a broker.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    pub shards: usize,
    /// `--override key=value` pairs.
    pub overrides: Vec<(String, String)>,
    /// Use this data dir instead of `<tempdir>/data` (for example a tmpfs mount).
    pub data_dir: Option<PathBuf>,
    /// Create the data dir before the first start (a fresh machine has none).
    pub create_data_dir: bool,
    /// Start with `--config FILE` on this port instead of `--listen` and
    /// `--data-dir`: the file names the listener and the log dir (the
    /// caller passes the same port and dir here).
    pub config_file: Option<(PathBuf, u16)>,
    /// A tuning profile (TOML text) passed with `--tuning`.
    pub tuning: Option<String>,
    /// Environment variables set for the broker process (test-only fault
    /// injection, log levels).
    pub env: Vec<(String, String)>,
    /// More `serve` arguments (for example `--log-format json`).
    pub args: Vec<String>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            shards: 1,
            overrides: Vec::new(),
            data_dir: None,
            create_data_dir: true,
            config_file: None,
            tuning: None,
            env: Vec::new(),
            args: Vec::new(),
        }
    }
}

impl BrokerOptions {
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    pub fn override_config(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    pub fn create_data_dir(mut self, create: bool) -> Self {
        self.create_data_dir = create;
        self
    }

    pub fn config_file(mut self, path: PathBuf, port: u16) -> Self {
        self.config_file = Some((path, port));
        self
    }

    pub fn tuning(mut self, toml: &str) -> Self {
        self.tuning = Some(toml.to_string());
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

/// A `corelog serve` child process with its own temporary directory. The
/// directory outlives restarts, so a restart reopens the same data; the child
/// is killed on drop.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// The HTTP listener's port (`http.listeners`): a free one of its own
    /// unless the options set the key (None: they turned it off, or gave
    /// an address this harness does not read).
    pub http_port: Option<u16>,
    pub options: BrokerOptions,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    starts: usize,
    // Last: dropped after the child is gone.
    tempdir: tempfile::TempDir,
}

impl Broker {
    /// One shard, default config.
    pub fn start() -> Broker {
        Broker::start_with(BrokerOptions::default())
    }

    pub fn start_with(options: BrokerOptions) -> Broker {
        let tempdir = tempfile::Builder::new()
            .prefix("corelog-test-")
            .tempdir()
            .expect("create tempdir");
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| tempdir.path().join("data"));
        if options.create_data_dir {
            fs::create_dir_all(&data_dir).expect("create data dir");
        }
        let stderr_path = tempdir.path().join("broker.stderr");
        let port = match &options.config_file {
            Some((_, port)) => *port,
            None => free_port(),
        };
        // Brokers of one test binary run at once: each gets an HTTP port
        // of its own instead of the default 9644 (which would also refuse
        // to start next to a broker a developer runs).
        let http_port = match options
            .overrides
            .iter()
            .find(|(k, _)| k == "http.listeners")
        {
            Some((_, value)) => value.rsplit_once(':').and_then(|(_, p)| p.parse().ok()),
            None => Some(free_port()),
        };
        let mut broker = Broker {
            child: None,
            port,
            http_port,
            options,
            data_dir,
            stderr_path,
            starts: 0,
            tempdir,
        };
        broker.spawn();
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The HTTP listener's address (panics when it is off).
    pub fn http_addr(&self) -> SocketAddr {
        let port = self.http_port.expect("the broker has an HTTP listener");
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// Everything the broker wrote to stdout and stderr, over all starts.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("open broker log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
        cmd.arg("serve");
        match &self.options.config_file {
            Some((path, _)) => cmd.arg("--config").arg(path),
            None => cmd
                .arg("--listen")
                .arg(self.bootstrap())
                .arg("--data-dir")
                .arg(&self.data_dir),
        };
        cmd.arg("--shards").arg(self.options.shards.to_string());
        // Tests run many brokers at once on a small machine: pinned, every
        // one's shard 0 would share the first core while the others idle.
        // A test that is about placement passes its own --cores.
        if !self.options.args.iter().any(|a| a == "--cores") {
            cmd.arg("--cores").arg("none");
        }
        for (key, value) in &self.options.overrides {
            cmd.arg("--override").arg(format!("{key}={value}"));
        }
        let http_set = self
            .options
            .overrides
            .iter()
            .any(|(k, _)| k == "http.listeners");
        if let (false, Some(http)) = (http_set, self.http_port) {
            cmd.arg("--override")
                .arg(format!("http.listeners=127.0.0.1:{http}"));
        }
        if let Some(tuning) = &self.options.tuning {
            let path = self.tempdir.path().join("tuning.toml");
            fs::write(&path, tuning).expect("write tuning profile");
            cmd.arg("--tuning").arg(path);
        }
        cmd.args(&self.options.args);
        for (key, value) in &self.options.env {
            cmd.env(key, value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log fd")))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().expect("spawn corelog");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls a TCP connect every 50 ms until the port answers.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "broker exited during start-up with {status}; its output:\n{}",
                    self.stderr()
                );
            }
            if listening(self.addr()) {
                return;
            }
            if Instant::now() > deadline {
                let out = self.stderr();
                self.kill9();
                panic!("broker not ready after {READY_TIMEOUT:?}; its output:\n{out}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reap the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.wait_port_closed();
        }
    }

    /// Waits (bounded) until nothing accepts on the port any more. A killed
    /// io_uring process can keep its listening socket alive for a moment
    /// after it is reaped (the ring is torn down asynchronously), and a
    /// connection queued on that socket is reset, not served; so a restart
    /// must not mistake the old socket for the new broker.
    fn wait_port_closed(&self) {
        let started = Instant::now();
        let mut accepted = 0;
        while listening(self.addr()) {
            accepted += 1;
            if started.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "port {} still accepts 10 s after the broker died",
                    self.port
                );
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Tens of milliseconds are normal; say so only when it is unusual.
        if accepted > 0 && started.elapsed() > Duration::from_millis(500) {
            eprintln!(
                "port {} kept accepting for {:?} after the broker died",
                self.port,
                started.elapsed()
            );
        }
    }

    /// Starts the broker again on the same port and data dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM, wait for the exit (bounded), and return the exit status and
    /// the broker's whole output.
    pub fn terminate(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("broker is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for broker") {
                self.wait_port_closed();
                return (status, self.stderr());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {EXIT_TIMEOUT:?} of SIGTERM; its output:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, assert a clean exit, then start again on the same dir.
    pub fn graceful_restart(&mut self) {
        let (status, out) = self.terminate();
        assert!(
            status.success(),
            "broker exited with {status}; output:\n{out}"
        );
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Panics with the broker's output if it is no longer running.
    pub fn assert_running(&mut self) {
        if !self.is_running() {
            panic!("broker is not running; its output:\n{}", self.stderr());
        }
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("broker.address.family", "v4")
            .set("socket.timeout.ms", "10000");
        config
    }

    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("linger.ms", "5")
            .set("acks", "all")
            .set("message.timeout.ms", "30000");
        config
    }

    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        // Partitions are assigned explicitly, with offsets from the start,
        // so no group is joined and nothing is committed. librdkafka still
        // refuses assign() without a group.id, hence a placeholder one.
        config
            .set("group.id", "corelog-tests-assign")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100");
        config
    }

    /// CreateTopics through librdkafka's AdminClient; panics on any error.
    pub fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let result = self.try_create_topic(name, partitions, configs);
        if let Err(err) = result {
            panic!("create topic {name}: {err}");
        }
    }

    pub fn try_create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("create admin client");
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let options = AdminOptions::new()
            .request_timeout(Some(ADMIN_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime");
        let results = runtime
            .block_on(async {
                tokio::time::timeout(
                    ADMIN_TIMEOUT + Duration::from_secs(5),
                    admin.create_topics([&topic], &options),
                )
                .await
            })
            .map_err(|_| "CreateTopics timed out".to_string())?
            .map_err(|e| format!("CreateTopics failed: {e}"))?;
        for result in results {
            result.map_err(|(topic, code)| format!("{topic}: {code:?}"))?;
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let state = match self.child.as_mut().map(|c| c.try_wait()) {
            None => "not running".to_string(),
            Some(Ok(None)) => "still running".to_string(),
            Some(Ok(Some(status))) => format!("exited with {status}"),
            Some(Err(e)) => format!("unknown ({e})"),
        };
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "---- broker output ({}; the broker was {state} at the end of the test) ----\n{}\n---- end of broker output ----",
                self.stderr_path.display(),
                self.stderr()
            );
        }
    }
}

/// Longest one CLI run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Waits for `child` to exit, at most `timeout`; past it, kills it and
/// answers None.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `corelog <args>` with `stdin`, which must succeed.
pub fn corelog_ok(args: &[&str], stdin: &str) -> Run {
    let run = corelog(args, stdin);
    assert!(run.success(), "corelog {args:?} failed:\n{run:?}");
    run
}

/// Runs `corelog <args>`, which must fail with exactly one line on
/// stderr; that line.
pub fn corelog_fails_in_one_line(args: &[&str]) -> String {
    let run = corelog(args, "");
    assert!(!run.success(), "corelog {args:?} should fail:\n{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error expected:\n{run:?}");
    lines[0].to_string()
}

/// `corelog topics --create` of `partitions` partitions, replication
/// factor 1, which must print Kafka's `Created topic T.`
pub fn cli_create_topic(bootstrap: &str, topic: &str, partitions: &str) {
    let run = corelog_ok(
        &[
            "topics",
            "--bootstrap-server",
            bootstrap,
            "--create",
            "--topic",
            topic,
            "--partitions",
            partitions,
            "--replication-factor",
            "1",
        ],
        "",
    );
    assert_eq!(run.stdout, format!("Created topic {topic}.\n"));
}

/// Runs `corelog <args>` with `stdin`, killing it after `RUN_TIMEOUT`.
pub fn corelog(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corelog");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let Some(status) = wait_bounded(&mut child, RUN_TIMEOUT) else {
        panic!(
            "corelog {args:?} did not finish within {RUN_TIMEOUT:?}; stderr:\n{}",
            stderr.join().unwrap_or_default()
        );
    };
    writer.join().expect("stdin writer");
    Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Whether something accepts TCP connections on `addr`. A connect to a
/// loopback port in the ephemeral range with nothing listening can succeed
/// by itself: the kernel may pick that same port as the source, and the
/// socket then connects to itself (TCP simultaneous open). `free_port` hands
/// out ports from that range, so a start-up poll would take such a connect
/// for a broker that is not listening yet; it is not counted.
pub fn listening(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        Ok(stream) => stream.local_addr().ok() != Some(addr),
        Err(_) => false,
    }
}

/// A port that was free a moment ago (bind to port 0, read it, close).
/// A port nothing listens on now, never handed out before in this test
/// process: tests of one binary run concurrently, and the kernel may give
/// a just-released port again, so two brokers could be handed the same one
/// (the second then refuses to start and the first answers for it).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no unused port in 100 tries");
}

/// One message as a consumer saw it, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

/// Reads partitions `0..partitions` of `topic` from the beginning until
/// `expected` messages arrived (or the deadline passes; then it returns what
/// it has, and the caller's assertions say what is missing).
pub fn consume(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = broker.consumer_config().create().expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(err)) => eprintln!("consumer error (continuing): {err}"),
            Some(Ok(message)) => out.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: message.timestamp().to_millis(),
            }),
        }
    }
    out
}

/// Parses `shard-stats shard=<S> partitions=<P> produce_local=<X>
/// produce_forwarded=<Y> commit_rounds=<R> cache_hits=<H> cache_misses=<M>
/// ...` lines out of the broker's output, with the load figures
/// (`server::broker::ShardLoad`) the tests check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardStats {
    pub shard: u64,
    pub partitions: u64,
    pub produce_local: u64,
    pub produce_forwarded: u64,
    pub fetch_local: u64,
    pub fetch_forwarded: u64,
    pub commit_rounds: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub requests_produce: u64,
    pub requests_fetch: u64,
    pub requests_other: u64,
    pub busy_us: u64,
    pub cpu_us: u64,
    pub busy_requests_us: u64,
    pub mesh_sent: u64,
    pub mesh_received: u64,
    pub mesh_delay_us: u64,
    pub commit_us: u64,
    pub produce_waits: u64,
    pub produce_wait_us: u64,
    pub fetch_waits: u64,
    pub fetch_wait_us: u64,
    pub disk_reads: u64,
    pub disk_read_bytes: u64,
    pub sched_probes: u64,
    pub sched_delay_us: u64,
}

pub fn parse_shard_stats(output: &str) -> Vec<ShardStats> {
    let mut stats = Vec::new();
    for line in output.lines() {
        let Some(start) = line.find("shard-stats ") else {
            continue;
        };
        let mut fields = std::collections::HashMap::new();
        for pair in line[start + "shard-stats ".len()..].split_whitespace() {
            if let Some((key, value)) = pair.split_once('=') {
                if let Ok(value) = value.parse::<u64>() {
                    fields.insert(key.to_string(), value);
                }
            }
        }
        let get = |key: &str| {
            *fields
                .get(key)
                .unwrap_or_else(|| panic!("shard-stats line without {key}: {line}"))
        };
        stats.push(ShardStats {
            shard: get("shard"),
            partitions: get("partitions"),
            produce_local: get("produce_local"),
            produce_forwarded: get("produce_forwarded"),
            fetch_local: get("fetch_local"),
            fetch_forwarded: get("fetch_forwarded"),
            commit_rounds: get("commit_rounds"),
            cache_hits: get("cache_hits"),
            cache_misses: get("cache_misses"),
            requests_produce: get("requests_produce"),
            requests_fetch: get("requests_fetch"),
            requests_other: get("requests_other"),
            busy_us: get("busy_us"),
            cpu_us: get("cpu_us"),
            busy_requests_us: get("busy_requests_us"),
            mesh_sent: get("mesh_sent"),
            mesh_received: get("mesh_received"),
            mesh_delay_us: get("mesh_delay_us"),
            commit_us: get("commit_us"),
            produce_waits: get("produce_waits"),
            produce_wait_us: get("produce_wait_us"),
            fetch_waits: get("fetch_waits"),
            fetch_wait_us: get("fetch_wait_us"),
            disk_reads: get("disk_reads"),
            disk_read_bytes: get("disk_read_bytes"),
            sched_probes: get("sched_probes"),
            sched_delay_us: get("sched_delay_us"),
        });
    }
    stats
}

/// Partition directory `<data-dir>/<topic>-<partition>`.
pub fn partition_dir(broker: &Broker, topic: &str, partition: i32) -> PathBuf {
    broker.data_dir().join(format!("{topic}-{partition}"))
}

/// The `.log` files of a partition, sorted by base offset.
pub fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs
}

/// One batch's place in a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPosition {
    pub base_offset: i64,
    pub position: usize,
    /// Whole batch: the 12-byte offset+length prefix plus `batchLength`.
    pub size: usize,
}

/// Splits a segment into its v2 batches (baseOffset i64, batchLength i32 at
/// byte 8, magic at byte 16). Panics if the file is not batches back to back.
pub fn parse_segment(path: &Path) -> Vec<BatchPosition> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut batches = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        assert!(
            bytes.len() - position >= 61,
            "{}: {} trailing bytes at {position}, shorter than a batch header",
            path.display(),
            bytes.len() - position
        );
        let base_offset = i64::from_be_bytes(bytes[position..position + 8].try_into().unwrap());
        let length = i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap());
        let magic = bytes[position + 16];
        assert!(
            length >= 49 && magic == 2,
            "{}: no v2 batch at {position} (batchLength {length}, magic {magic})",
            path.display()
        );
        let size = 12 + length as usize;
        assert!(
            position + size <= bytes.len(),
            "{}: batch at {position} runs past the end of the file",
            path.display()
        );
        batches.push(BatchPosition {
            base_offset,
            position,
            size,
        });
        position += size;
    }
    batches
}

/// A tmpfs mounted for one test, unmounted on drop.
pub struct TmpfsMount {
    pub path: PathBuf,
}

impl TmpfsMount {
    /// `mount -t tmpfs -o size=<size> tmpfs <path>`; `Err` with the reason if
    /// mounting is not permitted here.
    pub fn mount(path: &Path, size: &str) -> Result<TmpfsMount, String> {
        fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(TmpfsMount {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            // Something still holds it open; detach it so it goes away later.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// True when running in CI, where a skipped precondition is a failure.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A producer context that records every delivery report by message id (the
/// delivery opaque): `Ok((partition, offset))` or the error text.
/// A delivery report: `(partition, offset)` or the error text.
pub type Delivery = Result<(i32, i64), String>;

#[derive(Default)]
pub struct DeliveryLog {
    pub results: std::sync::Mutex<std::collections::HashMap<usize, Delivery>>,
    pub acked: std::sync::atomic::AtomicUsize,
    pub failed: std::sync::atomic::AtomicUsize,
}

impl rdkafka::ClientContext for DeliveryLog {}

impl rdkafka::producer::ProducerContext for DeliveryLog {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, id: usize) {
        use std::sync::atomic::Ordering;
        let outcome = match result {
            Ok(message) => {
                self.acked.fetch_add(1, Ordering::SeqCst);
                Ok((message.partition(), message.offset()))
            }
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                Err(err.to_string())
            }
        };
        self.results.lock().unwrap().insert(id, outcome);
    }
}

pub type LoggedProducer = rdkafka::producer::BaseProducer<DeliveryLog>;

pub fn logged_producer(config: &ClientConfig) -> LoggedProducer {
    config
        .create_with_context(DeliveryLog::default())
        .expect("create producer")
}

/// Enqueues a record, serving delivery reports while librdkafka's queue is
/// full; panics if the queue stays full for 60 s.
pub fn send_record<K, P>(
    producer: &LoggedProducer,
    mut record: rdkafka::producer::BaseRecord<'_, K, P, usize>,
) where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                assert!(Instant::now() < deadline, "producer queue full for 60 s");
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((err, _)) => panic!("enqueue failed: {err}"),
        }
    }
}

/// Waits (bounded) until every enqueued message has a delivery report.
pub fn flush(producer: &LoggedProducer, timeout: Duration) {
    use rdkafka::producer::Producer;
    if let Err(err) = producer.flush(timeout) {
        panic!(
            "flush: {err}; {} messages still in flight",
            producer.in_flight_count()
        );
    }
}

/// Produces records `from..from + count` round-robin over `partitions`
/// (record i to partition i % partitions, value "<i>"); panics on a failure.
pub fn produce_numbered(broker: &Broker, topic: &str, partitions: i32, from: usize, count: usize) {
    let producer = logged_producer(&broker.producer_config());
    for i in from..from + count {
        let value = i.to_string();
        send_record(
            &producer,
            rdkafka::producer::BaseRecord::<str, str, usize>::with_opaque_to(topic, i)
                .partition((i as i32) % partitions)
                .payload(value.as_str()),
        );
    }
    flush(&producer, Duration::from_secs(30));
    let failed = rdkafka::producer::Producer::context(&producer)
        .failed
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(failed, 0, "produce failures");
}

/// The partitions a group consumer holds now.
pub fn assigned(consumer: &BaseConsumer) -> std::collections::BTreeSet<i32> {
    consumer
        .assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}
