//! `corelog dev-cluster`: its start says when each node comes up, a node
//! that dies is reported with the exact command that restarts it, and
//! `corelog dev-cluster restart N` starts it again with its data while the
//! cluster runs (the start and stop themselves: storage_config.rs).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::raw::Conn;

/// A base port where `nodes` dev-cluster nodes find their client,
/// controller and HTTP ports free.
fn base_port(nodes: u16) -> u16 {
    for _ in 0..50 {
        let base = common::free_port();
        if base > 65_000 {
            continue;
        }
        let ports = (0..nodes).flat_map(|i| [base + i, base + 101 + i, base + 201 + i]);
        let held: Result<Vec<TcpListener>, _> = ports
            .map(|p| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))))
            .collect();
        if held.is_ok() {
            return base;
        }
    }
    panic!("no free port range for a dev cluster");
}

fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) on a process this test started (directly or through
    // the dev-cluster it runs).
    unsafe { libc::kill(pid, sig) };
}

/// The dev-cluster process, stopped (then killed) if the test fails.
struct DevCluster(Option<Child>);

impl Drop for DevCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            signal(child.id(), libc::SIGTERM);
            if common::wait_bounded(&mut child, Duration::from_secs(30)).is_none() {
                eprintln!("dev-cluster did not stop within 30 s; killed");
            }
        }
    }
}

/// Lines of a child's pipe, read on a thread.
fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line of `lines` that contains `what`, within `timeout`; the
/// lines before it go to `seen`.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no line with {what:?} ({e}); seen:\n{}", seen.join("\n")),
        }
    }
}

fn node_pid(dir: &Path, id: i32) -> u32 {
    let text = fs::read_to_string(dir.join(format!("node{id}.pid"))).expect("node pid file");
    text.trim().parse().expect("a pid")
}

/// The cluster id node `id` (listening on `port`) serves; a node that
/// does not accept connections fails the test with its log's tail and
/// whether its process still runs.
fn cluster_id_served(dir: &Path, id: i32, port: u16) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        let pid = node_pid(dir, id);
        let running = Path::new(&format!("/proc/{pid}")).exists();
        let log = fs::read_to_string(dir.join(format!("node{id}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "node {id} (pid {pid}, running: {running}) refuses {addr}: {e}; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let mut conn = Conn::connect(addr);
    conn.metadata(12, &[]).cluster_id.map(|c| c.to_string())
}

#[test]
fn a_dead_node_is_told_with_its_restart_command_and_restarts_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_port(2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args([
            "dev-cluster",
            "--nodes",
            "2",
            "--base-port",
            &base.to_string(),
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dev-cluster");
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let mut cluster = DevCluster(Some(child));
    let mut seen = Vec::new();
    wait_for_line(
        &out,
        "bootstrap servers: ",
        Duration::from_secs(90),
        &mut seen,
    );
    // The start said when each node came up.
    for id in [1, 2] {
        assert!(
            seen.iter()
                .any(|l| l.contains(&format!("dev-cluster: node {id} is up on 127.0.0.1:"))),
            "{seen:?}"
        );
    }
    let id = cluster_id_served(dir.path(), 2, base + 1).expect("node 2 serves");

    let first = node_pid(dir.path(), 2);
    signal(first, libc::SIGKILL);
    let told = wait_for_line(&err, "node 2 exited", Duration::from_secs(10), &mut seen);
    let command = format!("dev-cluster restart 2 --dir {}", dir.path().display());
    assert!(told.contains(&command), "{told}");

    // The command it printed restarts node 2 with its data.
    let restart = common::corelog(
        &[
            "dev-cluster",
            "restart",
            "2",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert!(restart.success(), "{restart:?}");
    assert!(
        restart.stdout.contains("Node 2 restarted (pid "),
        "{restart:?}"
    );
    let second = node_pid(dir.path(), 2);
    assert_ne!(second, first);
    assert_eq!(cluster_id_served(dir.path(), 2, base + 1), Some(id.clone()));
    wait_for_line(
        &out,
        "dev-cluster: restarted node 2",
        Duration::from_secs(10),
        &mut seen,
    );

    // A running node restarts too: stopped, then started again.
    let restart = common::corelog(
        &[
            "dev-cluster",
            "restart",
            "1",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert!(restart.success(), "{restart:?}");
    assert_eq!(cluster_id_served(dir.path(), 1, base), Some(id));
    let log = fs::read_to_string(dir.path().join("node1.log")).unwrap();
    assert!(
        log.contains("shard-stats"),
        "node 1 stopped cleanly first:\n{log}"
    );

    // The cluster still stops cleanly as a whole.
    let mut child = cluster.0.take().unwrap();
    signal(child.id(), libc::SIGTERM);
    let status = common::wait_bounded(&mut child, Duration::from_secs(60))
        .expect("dev-cluster stops within 60 s of SIGTERM");
    assert!(status.success(), "dev-cluster exited with {status}");
    assert!(!dir.path().join("dev-cluster.pid").exists());

    // Without a running cluster, restart says how to start it.
    let restart = common::corelog(
        &[
            "dev-cluster",
            "restart",
            "2",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert!(!restart.success());
    assert!(
        restart.stderr.contains("no dev cluster is running"),
        "{restart:?}"
    );
}
