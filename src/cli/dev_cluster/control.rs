//! How `corelog dev-cluster restart N` reaches the running dev cluster's
//! supervisor: through files in the cluster's directory, which the
//! supervisor looks at on every tick (no socket to secure, nothing to
//! clean up but files).
//!
//! - `dev-cluster.pid`: the supervisor's pid, while it runs;
//! - `node<N>.pid`: node N's current process;
//! - `node<N>.restart`: a restart request (written by the command, taken
//!   by the supervisor);
//! - `node<N>.restarted`: the supervisor's answer, `started <pid>` or
//!   `failed <why>`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::{log_tail, POLL_INTERVAL};

/// How long the command waits for the supervisor to answer: it stops a
/// running node first, which may take its whole stop bound.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the restarted node may take to accept client connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub fn supervisor_pid_path(dir: &Path) -> PathBuf {
    dir.join("dev-cluster.pid")
}

pub fn node_pid_path(dir: &Path, id: i32) -> PathBuf {
    dir.join(format!("node{id}.pid"))
}

pub fn request_path(dir: &Path, id: i32) -> PathBuf {
    dir.join(format!("node{id}.restart"))
}

pub fn answer_path(dir: &Path, id: i32) -> PathBuf {
    dir.join(format!("node{id}.restarted"))
}

/// The exact command that restarts node `id` of the cluster in `dir`, as
/// this program was invoked.
pub fn restart_command(dir: &Path, id: i32) -> String {
    let program = std::env::args().next().unwrap_or_else(|| "corelog".into());
    format!("{program} dev-cluster restart {id} --dir {}", dir.display())
}

/// Whether process `pid` exists.
pub fn alive(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok()
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `corelog dev-cluster restart N --dir DIR`: asks the cluster's
/// supervisor to (stop and) start node N again with its config and data
/// dir, then waits (bounded) until it accepts client connections.
pub fn restart(dir: &Path, id: i32) -> Result<(), String> {
    let config = dir.join(format!("node{id}.properties"));
    if !config.exists() {
        return Err(format!(
            "{} has no node {id} ({} does not exist)",
            dir.display(),
            config.display()
        ));
    }
    let supervisor = read_pid(&supervisor_pid_path(dir)).filter(|pid| alive(*pid));
    let Some(supervisor) = supervisor else {
        return Err(format!(
            "no dev cluster is running in {}; start it again with `corelog dev-cluster --nodes N \
             --dir {}` (its nodes keep their data)",
            dir.display(),
            dir.display()
        ));
    };
    let answer = answer_path(dir, id);
    let _ = fs::remove_file(&answer);
    fs::write(request_path(dir, id), "restart\n")
        .map_err(|e| format!("cannot write the restart request in {}: {e}", dir.display()))?;
    println!("Asked the dev-cluster supervisor (pid {supervisor}) to restart node {id}");
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let text = loop {
        if let Ok(text) = fs::read_to_string(&answer) {
            if text.ends_with('\n') {
                break text;
            }
        }
        if !alive(supervisor) {
            let _ = fs::remove_file(request_path(dir, id));
            return Err(format!(
                "the dev-cluster supervisor (pid {supervisor}) stopped before restarting node {id}"
            ));
        }
        if Instant::now() > deadline {
            let _ = fs::remove_file(request_path(dir, id));
            return Err(format!(
                "the dev-cluster supervisor (pid {supervisor}) did not restart node {id} within \
                 {ANSWER_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let _ = fs::remove_file(&answer);
    let pid = match text.trim().split_once(' ') {
        Some(("started", pid)) => pid
            .parse::<i32>()
            .map_err(|_| format!("unexpected answer from the supervisor: {text:?}"))?,
        Some(("failed", why)) => return Err(format!("node {id} was not restarted: {why}")),
        _ => return Err(format!("unexpected answer from the supervisor: {text:?}")),
    };
    let port = client_port(&config)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let log = dir.join(format!("node{id}.log"));
    let deadline = Instant::now() + READY_TIMEOUT;
    while !super::accepts(addr) {
        if !alive(pid) {
            return Err(format!(
                "node {id} (pid {pid}) exited during start-up; its log ({}):\n{}",
                log.display(),
                log_tail(&log)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "node {id} (pid {pid}) did not accept connections on {addr} within \
                 {READY_TIMEOUT:?}; its log: {}",
                log.display()
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    println!("Node {id} restarted (pid {pid}), serving on {addr}");
    Ok(())
}

/// The client port of a dev-cluster node's config (`listeners`' PLAINTEXT).
fn client_port(config: &Path) -> Result<u16, String> {
    let text =
        fs::read_to_string(config).map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    text.lines()
        .filter_map(|l| l.strip_prefix("listeners="))
        .flat_map(|l| l.split(','))
        .filter_map(|l| l.strip_prefix("PLAINTEXT://"))
        .find_map(|hp| hp.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .ok_or_else(|| format!("{} names no PLAINTEXT listener", config.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_port_comes_from_the_node_config() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = super::super::plan(2, dir.path(), 9092).unwrap();
        let path = dir.path().join("n.properties");
        fs::write(&path, super::super::node_properties(&nodes[1], &nodes)).unwrap();
        assert_eq!(client_port(&path), Ok(9093));
    }

    #[test]
    fn restart_without_a_supervisor_says_how_to_start_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let err = restart(dir.path(), 1).unwrap_err();
        assert!(err.contains("has no node 1"), "{err}");
        fs::write(dir.path().join("node1.properties"), "").unwrap();
        let err = restart(dir.path(), 1).unwrap_err();
        assert!(err.contains("no dev cluster is running"), "{err}");
    }
}
