//! Start-up and stop at any stage: SIGTERM while the shards are still
//! opening their partitions ends the process cleanly and promptly, and a
//! start that overruns its bound ends the process with an error that names
//! the shard that did not start and its phase.
//!
//! The broker's data is made large enough (many partitions) that opening it
//! takes a while, so the signal lands during start-up, before any listener.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Broker, BrokerOptions};

/// Topics and partitions each whose opening makes a start take long enough
/// to interrupt (created a topic at a time, so each creation stays well
/// within the admin timeout on a loaded machine).
const TOPICS: usize = 4;
const PARTITIONS: i32 = 300;
/// The stop bound the broker promises after SIGTERM, with some slack.
const STOP_WITHIN: Duration = Duration::from_secs(40);

/// A broker data directory holding `TOPICS` x `PARTITIONS` partitions over 2 shards.
fn prepared_broker() -> Broker {
    let mut broker = Broker::start_with(BrokerOptions::default().shards(2));
    for topic in 0..TOPICS {
        broker.create_topic(&format!("many-{topic}"), PARTITIONS, &[]);
    }
    let (status, out) = broker.terminate();
    assert!(status.success(), "first broker: {status}\n{out}");
    broker
}

/// `corelog serve` on `data_dir` with 2 shards, debug logs of start phases.
fn spawn(data_dir: &Path, log: &Path, envs: &[(&str, &str)]) -> Child {
    let out = File::create(log).expect("create log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--shards")
        .arg("2")
        .arg("--override")
        .arg("http.listeners=")
        .env("RUST_LOG", "corelog=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out));
    for (key, value) in envs {
        cmd.env(key, value);
    }
    cmd.spawn().expect("spawn corelog")
}

/// Waits (bounded) until the log has a line containing `needle`.
fn wait_for_line(child: &mut Child, log: &Path, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let file = File::open(log).expect("open log");
        if BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains(needle))
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "broker exited ({status}) before logging {needle:?}:\n{}",
                std::fs::read_to_string(log).unwrap()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no {needle:?} within {within:?}:\n{}",
                std::fs::read_to_string(log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits (bounded) for the exit; kills and fails past the bound.
fn wait_exit(child: &mut Child, log: &Path, within: Duration) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "broker still running {within:?} later:\n{}",
                std::fs::read_to_string(log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

#[test]
fn sigterm_while_partitions_open_stops_cleanly_before_listening() {
    let broker = prepared_broker();
    let log = broker.data_dir().with_file_name("restart.log");
    let mut child = spawn(broker.data_dir(), &log, &[]);
    wait_for_line(
        &mut child,
        &log,
        "opening partitions",
        Duration::from_secs(30),
    );
    sigterm(&child);
    let (status, took) = wait_exit(&mut child, &log, STOP_WITHIN);
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit {status} after {took:?}:\n{out}");
    assert!(
        !out.contains("serving Kafka"),
        "the broker listened after SIGTERM:\n{out}"
    );
    // The shards closed what they had opened: shutdown stats were printed.
    assert_eq!(out.matches("shard-stats").count(), 2, "{out}");

    // The data is intact: the next start serves every partition.
    let mut broker = broker;
    broker.restart();
    let consumer: rdkafka::consumer::BaseConsumer =
        broker.consumer_config().create().expect("consumer");
    use rdkafka::consumer::Consumer;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata");
    let partitions: usize = metadata
        .topics()
        .iter()
        .filter(|t| t.name().starts_with("many-"))
        .map(|t| t.partitions().len())
        .sum();
    assert_eq!(partitions, TOPICS * PARTITIONS as usize);
}

#[test]
fn a_start_over_its_bound_exits_naming_the_shard_and_phase() {
    let broker = prepared_broker();
    let log = broker.data_dir().with_file_name("bounded.log");
    let mut child = spawn(
        broker.data_dir(),
        &log,
        &[("CORELOG_START_TIMEOUT_MS", "50")],
    );
    let (status, took) = wait_exit(&mut child, &log, STOP_WITHIN);
    let out = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(3), "after {took:?}:\n{out}");
    assert!(!out.contains("serving Kafka"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("did not start within 50 ms"))
        .unwrap_or_else(|| panic!("no start-bound line:\n{out}"));
    // Names a shard and what it was doing, e.g. "shard 1 (opening partitions for 48 ms)".
    assert!(
        line.contains("shard ") && line.contains(" ms)"),
        "the line names no shard and phase: {line}"
    );
}

#[test]
fn a_second_sigterm_during_a_slow_start_exits_at_once() {
    let broker = prepared_broker();
    let log = broker.data_dir().with_file_name("twice.log");
    let mut child = spawn(broker.data_dir(), &log, &[]);
    wait_for_line(
        &mut child,
        &log,
        "opening partitions",
        Duration::from_secs(30),
    );
    sigterm(&child);
    sigterm(&child);
    let (status, _) = wait_exit(&mut child, &log, Duration::from_secs(5));
    let out = std::fs::read_to_string(&log).unwrap();
    // Either the second signal ended it (5), or the first had already
    // stopped it cleanly (0) before the second arrived.
    assert!(
        matches!(status.code(), Some(5) | Some(0)),
        "exit {status}:\n{out}"
    );
}

/// A data directory where every shard's first write blocks in `open(2)`:
/// the DMA probe file each shard writes at start (`io::prepare_disk`,
/// named after the thread) is a FIFO with no reader, so the shard thread
/// sits in a system call no executor can interrupt, as on a hung disk.
fn data_dir_that_blocks_shards(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for thread in 1..64 {
        let fifo = dir.join(format!("{}-{thread}.tmp", corelog::io::DMA_PROBE_FILE));
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
}

#[test]
fn a_shard_stuck_in_a_system_call_cannot_keep_the_process_alive() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    data_dir_that_blocks_shards(&data);

    // Past the start bound: exit status 3, naming the stuck shard's phase.
    let log = dir.path().join("start.log");
    let mut child = spawn(&data, &log, &[("CORELOG_START_TIMEOUT_MS", "1000")]);
    let (status, took) = wait_exit(&mut child, &log, Duration::from_secs(20));
    let out = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(3), "after {took:?}:\n{out}");
    assert!(
        out.contains("did not start within 1000 ms")
            && out.contains("(preparing the data directory for"),
        "{out}"
    );

    // SIGTERM while stuck: the stop bound ends the process, status 4.
    let log = dir.path().join("stop.log");
    let mut child = spawn(&data, &log, &[]);
    wait_for_line(
        &mut child,
        &log,
        "preparing the data directory",
        Duration::from_secs(30),
    );
    sigterm(&child);
    let (status, took) = wait_exit(&mut child, &log, STOP_WITHIN);
    let out = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(4), "after {took:?}:\n{out}");
    assert!(out.contains("did not stop within"), "{out}");
}

/// glommio 0.9 parked an executor that noticed a preemption before it had run
/// anything, with the runnable tasks still queued (vendor/glommio/PATCHES.md).
/// A preempt timer of 1 ns makes every turn of the loop see a preemption, so
/// without the patch one of these thousand runs parks with nothing armed
/// and never returns: the thread would miss the deadline below.
#[test]
fn an_executor_preempted_before_its_first_task_still_runs_it() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let executor = glommio::LocalExecutorBuilder::default()
            .preempt_timer(Duration::from_nanos(1))
            .make()
            .expect("executor");
        for _ in 0..1_000 {
            executor.run(async {});
        }
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the executor parked with a runnable task and never ran it");
}
