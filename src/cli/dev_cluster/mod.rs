//! `corelog dev-cluster --nodes N`: a cluster of N nodes on this machine
//! for development, from the same pieces a user would use by hand: it
//! writes one Kafka `server.properties` per node (broker and controller,
//! all nodes voters), formats each node's storage with one cluster id as
//! `corelog storage format` does, and runs `corelog serve --config` once
//! per node as child processes.
//!
//! It forwards SIGINT and SIGTERM to the nodes and exits once all have
//! stopped. A node that dies on its own is reported, with the command that
//! restarts it, and the others keep running, so a developer can kill one to
//! watch failover; `corelog dev-cluster restart N` (`control.rs`) has the
//! supervisor start it again with its config and data. Run again on the
//! same directory, it restarts the same cluster (same id, same data).

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::Cores;
use crate::limits;
use crate::shard::placement::allowed_cores;
use crate::storage::{self, MetaProperties};

mod control;

/// How long every node may take to accept client connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes may take to stop after a forwarded signal before
/// they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the supervisor looks at signals and children.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DevClusterArgs {
    #[command(subcommand)]
    action: Option<DevClusterAction>,
    /// Nodes to run; each is a broker and a controller voter.
    #[arg(long, required = true)]
    nodes: Option<usize>,
    /// Where the node configs, data and logs go.
    #[arg(long, default_value = "dev-cluster")]
    dir: PathBuf,
    /// Node i (from 1) serves clients on base-port + i - 1, its
    /// controller listener on base-port + 100 + i and its HTTP listener
    /// (/metrics, /health, /ready) on base-port + 200 + i.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// Shards per node. Nodes on one machine share its cores, so 1 by default.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Where the nodes' shards run: auto (distinct cores for every node when
    /// this machine has enough, else unpinned), none, or a core list every
    /// node is given as its `serve --cores`.
    #[arg(long, default_value = "auto", value_name = "auto|none|LIST")]
    cores: Cores,
}

#[derive(clap::Subcommand)]
enum DevClusterAction {
    /// Start node N of the dev cluster running in --dir again (stopping it
    /// first if it runs), with its config and data.
    Restart {
        /// The node's id (1 to --nodes).
        node: i32,
        /// The running dev cluster's directory.
        #[arg(long, default_value = "dev-cluster")]
        dir: PathBuf,
    },
}

/// One node's place in the dev cluster.
#[derive(Clone, Debug)]
pub struct DevNode {
    pub id: i32,
    pub client_port: u16,
    pub controller_port: u16,
    /// Its HTTP listener's port (`http.listeners`).
    pub http_port: u16,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

/// The nodes of an `n`-node cluster under `dir` with ports from `base_port`.
pub fn plan(n: usize, dir: &Path, base_port: u16) -> Result<Vec<DevNode>, String> {
    if !(1..=limits::DEV_CLUSTER_NODES_MAX).contains(&n) {
        return Err(format!(
            "--nodes must be in [1, {}]",
            limits::DEV_CLUSTER_NODES_MAX
        ));
    }
    (1..=n as u16)
        .map(|id| {
            let port = |offset: u16| {
                base_port
                    .checked_add(offset)
                    .ok_or_else(|| format!("--base-port {base_port} leaves no room for {n} nodes"))
            };
            Ok(DevNode {
                id: i32::from(id),
                client_port: port(id - 1)?,
                controller_port: port(100 + id)?,
                http_port: port(200 + id)?,
                config: dir.join(format!("node{id}.properties")),
                data_dir: dir.join(format!("node{id}")),
                log: dir.join(format!("node{id}.log")),
            })
        })
        .collect()
}

/// The server.properties of `node` in a cluster of `nodes`.
pub fn node_properties(node: &DevNode, nodes: &[DevNode]) -> String {
    let voters: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
        .collect();
    format!(
        "# Written by `corelog dev-cluster`; rewritten on every run.\n\
         process.roles=broker,controller\n\
         node.id={id}\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{client}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=PLAINTEXT\n\
         http.listeners=127.0.0.1:{http}\n\
         log.dirs={data}\n\
         default.replication.factor={rf}\n\
         offsets.topic.replication.factor={rf}\n\
         min.insync.replicas={isr}\n",
        id = node.id,
        voters = voters.join(","),
        client = node.client_port,
        controller = node.controller_port,
        http = node.http_port,
        data = absolute(&node.data_dir).display(),
        rf = nodes.len().min(3),
        isr = if nodes.len() >= 3 { 2 } else { 1 },
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn main(args: DevClusterArgs) -> ExitCode {
    if let Some(DevClusterAction::Restart { node, dir }) = &args.action {
        return match control::restart(dir, *node) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sets the cluster up, runs it until a signal, and says whether every
/// node stopped cleanly.
fn run(args: &DevClusterArgs) -> Result<bool, String> {
    let count = args
        .nodes
        .expect("clap requires --nodes without a subcommand");
    let nodes = plan(count, &args.dir, args.base_port)?;
    fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let cluster_id = cluster_id_of(&nodes)?;
    for node in &nodes {
        fs::write(&node.config, node_properties(node, &nodes))
            .map_err(|e| format!("cannot write {}: {e}", node.config.display()))?;
        super::storage::format(&cluster_id, &node.config, true)?;
    }
    let tuning = tuning_path(&args.dir);
    fs::write(&tuning, node_tuning(nodes.len(), args.shards))
        .map_err(|e| format!("cannot write {}: {e}", tuning.display()))?;
    let signal = forward_signals()?;
    let (cores, placement) = match &args.cores {
        Cores::Auto => node_cores(nodes.len(), args.shards, &allowed_cores()),
        asked => (
            vec![asked.clone(); nodes.len()],
            format!("every node with --cores {asked}"),
        ),
    };
    println!("dev-cluster placement: {placement}");
    let mut children = Vec::with_capacity(nodes.len());
    for (node, cores) in nodes.iter().zip(&cores) {
        match spawn(node, args.shards, cores) {
            Ok(child) => {
                println!(
                    "dev-cluster: started node {} (pid {}, log {})",
                    node.id,
                    child.id(),
                    node.log.display()
                );
                children.push(child)
            }
            Err(e) => {
                stop_all(&mut children, Signal::SIGTERM);
                return Err(e);
            }
        }
    }
    if let Err(e) = wait_ready(&nodes, &mut children, &signal) {
        stop_all(&mut children, Signal::SIGTERM);
        return Err(e);
    }
    let supervisor_pid = control::supervisor_pid_path(&args.dir);
    if let Err(e) = fs::write(&supervisor_pid, format!("{}\n", std::process::id())) {
        eprintln!(
            "dev-cluster: cannot write {} ({e}); `dev-cluster restart` will not find this \
             cluster",
            supervisor_pid.display()
        );
    }
    let bootstrap: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client_port))
        .collect();
    println!(
        "dev-cluster {cluster_id}: {} nodes running (configs, data and logs in {})",
        nodes.len(),
        args.dir.display()
    );
    println!("bootstrap servers: {}", bootstrap.join(","));
    let metrics: Vec<String> = nodes
        .iter()
        .map(|n| format!("http://127.0.0.1:{}/metrics", n.http_port))
        .collect();
    println!("metrics: {}", metrics.join(" "));
    let spawning = Spawning {
        dir: &args.dir,
        shards: args.shards,
        cores: &cores,
    };
    let clean = supervise(&nodes, &mut children, &signal, &spawning);
    let _ = fs::remove_file(&supervisor_pid);
    for node in &nodes {
        let _ = fs::remove_file(control::node_pid_path(&args.dir, node.id));
        let _ = fs::remove_file(control::request_path(&args.dir, node.id));
    }
    Ok(clean)
}

/// What starting a node again takes.
struct Spawning<'a> {
    dir: &'a Path,
    shards: usize,
    cores: &'a [Cores],
}

/// The cluster id already on the nodes' storage (a rerun), else a new one.
fn cluster_id_of(nodes: &[DevNode]) -> Result<String, String> {
    for node in nodes {
        if let Some(meta) = MetaProperties::read(&node.data_dir).map_err(|e| e.to_string())? {
            return Ok(meta.cluster_id);
        }
    }
    Ok(storage::random_uuid())
}

/// SIGINT and SIGTERM are recorded (to be forwarded) instead of ending
/// this process.
fn forward_signals() -> Result<Arc<AtomicI32>, String> {
    let received = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let record = received.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                record.store(signal, Ordering::Relaxed);
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(received)
}

/// Each node's `--cores`: distinct cores for every node's shards when this
/// process may use enough of them, else nobody pinned (nodes that each pin
/// shard 0 to the first core would all run on it). And the choice in words.
fn node_cores(nodes: usize, shards: usize, allowed: &[usize]) -> (Vec<Cores>, String) {
    if nodes * shards <= allowed.len() {
        let cores: Vec<Cores> = allowed
            .chunks(shards)
            .take(nodes)
            .map(|chunk| Cores::List(chunk.to_vec()))
            .collect();
        let text: Vec<String> = cores
            .iter()
            .enumerate()
            .map(|(i, c)| format!("node {} on cores {c}", i + 1))
            .collect();
        (cores, text.join(", "))
    } else {
        (
            vec![Cores::Unpinned; nodes],
            format!(
                "{nodes} nodes x {shards} shards on {} allowed cores: not pinned, the kernel \
                 spreads them",
                allowed.len()
            ),
        )
    }
}

/// The tuning profile every node starts with, beside their configs.
fn tuning_path(dir: &Path) -> PathBuf {
    dir.join("tuning.toml")
}

/// The nodes' tuning profile: the default one, but the read caches that
/// `shard_memory_bytes = "auto"` gives one node on this machine are split
/// over all of them (each node would take a quarter of the machine).
fn node_tuning(nodes: usize, shards: usize) -> String {
    let mut tuning = crate::config::Tuning::default();
    tuning.resolve_shard_memory(nodes * shards, crate::config::process_memory_bytes());
    format!(
        "# Written by corelog dev-cluster: the default profile, with the read caches of\n\
         # shard_memory_bytes = \"auto\" split over {nodes} nodes x {shards} shards.\n\
         shard_memory_bytes = {}\n",
        tuning.shard_memory_bytes
    )
}

/// Starts node `node` (`corelog serve --config`), appending to its log,
/// and notes its pid in `node<N>.pid` beside its config.
fn spawn(node: &DevNode, shards: usize, cores: &Cores) -> Result<Child, String> {
    let child = spawn_serve(node, shards, cores)?;
    let dir = node.config.parent().unwrap_or(Path::new("."));
    let _ = fs::write(
        control::node_pid_path(dir, node.id),
        format!("{}\n", child.id()),
    );
    Ok(child)
}

fn spawn_serve(node: &DevNode, shards: usize, cores: &Cores) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find corelog itself: {e}"))?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(&node.log)
        .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
    Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&node.config)
        .arg("--tuning")
        .arg(node.config.with_file_name("tuning.toml"))
        .arg("--shards")
        .arg(shards.to_string())
        .arg("--cores")
        .arg(cores.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        // Its own process group: a terminal's Ctrl-C reaches dev-cluster,
        // which forwards it, rather than every node at once behind its back.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start node {}: {e}", node.id))
}

/// How often the start reports the nodes it still waits for.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// Whether something accepts connections on `addr` now.
fn accepts(addr: SocketAddr) -> bool {
    crate::net::listener_accepts(addr, Duration::from_millis(200))
}

/// Waits (bounded) until every node accepts client connections, saying
/// when each comes up and, every few seconds, which it still waits for.
fn wait_ready(nodes: &[DevNode], children: &mut [Child], signal: &AtomicI32) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + READY_TIMEOUT;
    let mut up = vec![false; nodes.len()];
    let mut reported = started;
    loop {
        for (i, (node, child)) in nodes.iter().zip(children.iter_mut()).enumerate() {
            if up[i] {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "node {} exited during start-up with {status}; its log ({}):\n{}",
                    node.id,
                    node.log.display(),
                    log_tail(&node.log)
                ));
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], node.client_port));
            if accepts(addr) {
                up[i] = true;
                println!(
                    "dev-cluster: node {} is up on {addr} after {:.1} s ({} of {})",
                    node.id,
                    started.elapsed().as_secs_f64(),
                    up.iter().filter(|u| **u).count(),
                    nodes.len()
                );
            }
        }
        if up.iter().all(|u| *u) {
            return Ok(());
        }
        if signal.load(Ordering::Relaxed) != 0 {
            return Err("interrupted during start-up".into());
        }
        let waiting: Vec<&DevNode> = nodes
            .iter()
            .zip(&up)
            .filter(|(_, u)| !**u)
            .map(|(n, _)| n)
            .collect();
        if Instant::now() > deadline {
            let node = waiting[0];
            return Err(format!(
                "node {} did not accept connections on 127.0.0.1:{} within {READY_TIMEOUT:?}; \
                 its log ({}):\n{}",
                node.id,
                node.client_port,
                node.log.display(),
                log_tail(&node.log)
            ));
        }
        if reported.elapsed() >= PROGRESS_INTERVAL {
            reported = Instant::now();
            let ids: Vec<String> = waiting.iter().map(|n| n.id.to_string()).collect();
            println!(
                "dev-cluster: waiting for node {} after {:.0} s (their logs say why)",
                ids.join(", "),
                started.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Until every node has exited: forwards signals, reports nodes that stop
/// on their own (with the command that restarts them) and serves restart
/// requests (`control.rs`). True when every node exited cleanly after a
/// signal.
fn supervise(
    nodes: &[DevNode],
    children: &mut [Child],
    signal: &AtomicI32,
    spawning: &Spawning,
) -> bool {
    let mut exited: Vec<Option<ExitStatus>> = vec![None; children.len()];
    // Nodes asked to restart: stopped (SIGTERM) and started again once
    // they exited, or killed past this deadline.
    let mut restarting: Vec<Option<Instant>> = vec![None; children.len()];
    let mut forwarded = 0;
    let mut stop_deadline: Option<Instant> = None;
    loop {
        let received = signal.swap(0, Ordering::Relaxed);
        if received != 0 {
            let sig = Signal::try_from(received).unwrap_or(Signal::SIGTERM);
            println!("dev-cluster: forwarding {sig} to the nodes");
            signal_running(children, &exited, sig);
            forwarded += 1;
            stop_deadline.get_or_insert(Instant::now() + STOP_TIMEOUT);
        }
        for (i, node) in nodes.iter().enumerate() {
            let request = control::request_path(spawning.dir, node.id);
            if !request.exists() {
                continue;
            }
            let _ = fs::remove_file(&request);
            if forwarded > 0 {
                answer(spawning.dir, node.id, "failed the dev cluster is stopping");
            } else if exited[i].is_some() {
                restart_node(node, i, children, &mut exited, spawning);
            } else if restarting[i].is_none() {
                println!("dev-cluster: stopping node {} to restart it", node.id);
                let _ = kill(Pid::from_raw(children[i].id() as i32), Signal::SIGTERM);
                restarting[i] = Some(Instant::now() + STOP_TIMEOUT);
            }
        }
        let mut stopped_to_restart = Vec::new();
        for (i, child) in children.iter_mut().enumerate() {
            if exited[i].is_some() {
                continue;
            }
            if restarting[i].is_some_and(|d| Instant::now() > d) {
                let _ = child.kill();
            }
            if let Ok(Some(status)) = child.try_wait() {
                exited[i] = Some(status);
                if restarting[i].take().is_some() && forwarded == 0 {
                    println!("dev-cluster: node {} stopped with {status}", nodes[i].id);
                    stopped_to_restart.push(i);
                    continue;
                }
                if forwarded == 0 {
                    eprintln!(
                        "dev-cluster: node {} exited with {status}; the others keep running \
                         (its log: {}). Restart it with: {}",
                        nodes[i].id,
                        nodes[i].log.display(),
                        control::restart_command(spawning.dir, nodes[i].id)
                    );
                }
            }
        }
        for i in stopped_to_restart {
            restart_node(&nodes[i], i, children, &mut exited, spawning);
        }
        if exited.iter().all(Option::is_some) {
            break;
        }
        if stop_deadline.is_some_and(|d| Instant::now() > d) {
            eprintln!(
                "dev-cluster: nodes still running {STOP_TIMEOUT:?} after the signal; killing them"
            );
            signal_running(children, &exited, Signal::SIGKILL);
            for (i, child) in children.iter_mut().enumerate() {
                if exited[i].is_none() {
                    exited[i] = child.wait().ok();
                }
            }
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    forwarded > 0 && exited.iter().all(|s| s.is_some_and(|s| s.success()))
}

/// Starts `node` (the `i`-th, whose process has exited) again, and
/// answers the restart request.
fn restart_node(
    node: &DevNode,
    i: usize,
    children: &mut [Child],
    exited: &mut [Option<ExitStatus>],
    spawning: &Spawning,
) {
    match spawn(node, spawning.shards, &spawning.cores[i]) {
        Ok(child) => {
            println!(
                "dev-cluster: restarted node {} (pid {}, log {})",
                node.id,
                child.id(),
                node.log.display()
            );
            answer(spawning.dir, node.id, &format!("started {}", child.id()));
            children[i] = child;
            exited[i] = None;
        }
        Err(e) => {
            eprintln!("dev-cluster: cannot restart node {}: {e}", node.id);
            answer(spawning.dir, node.id, &format!("failed {e}"));
        }
    }
}

/// Writes the answer to a restart request (whole, then renamed, so the
/// waiting command never reads half of it).
fn answer(dir: &Path, id: i32, text: &str) {
    let path = control::answer_path(dir, id);
    let partial = path.with_extension("restarted.partial");
    let written =
        fs::write(&partial, format!("{text}\n")).and_then(|()| fs::rename(&partial, &path));
    if let Err(e) = written {
        eprintln!("dev-cluster: cannot answer the restart of node {id}: {e}");
    }
}

fn signal_running(children: &[Child], exited: &[Option<ExitStatus>], sig: Signal) {
    for (child, status) in children.iter().zip(exited) {
        if status.is_none() {
            // The child may have exited since it was last polled; an
            // unreaped child still owns its pid, so this cannot hit a
            // stranger.
            let _ = kill(Pid::from_raw(child.id() as i32), sig);
        }
    }
}

/// Start-up failed: stops the nodes already started, bounded.
fn stop_all(children: &mut [Child], sig: Signal) {
    let exited = vec![None; children.len()];
    signal_running(children, &exited, sig);
    let deadline = Instant::now() + STOP_TIMEOUT;
    for child in children.iter_mut() {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(POLL_INTERVAL);
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last lines of a node's log, for an error message.
fn log_tail(path: &Path) -> String {
    const LINES: usize = 20;
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn nodes_get_distinct_cores_or_none_are_pinned() {
        let (cores, why) = node_cores(3, 1, &[0, 1, 2, 3]);
        assert_eq!(
            cores,
            vec![
                Cores::List(vec![0]),
                Cores::List(vec![1]),
                Cores::List(vec![2])
            ]
        );
        assert!(why.contains("node 3 on cores 2"), "{why}");
        let (cores, _) = node_cores(2, 2, &[4, 5, 6, 7]);
        assert_eq!(
            cores,
            vec![Cores::List(vec![4, 5]), Cores::List(vec![6, 7])]
        );
        // 3 nodes on 2 cores: pinning would stack them; nobody is pinned.
        let (cores, why) = node_cores(3, 1, &[0, 1]);
        assert_eq!(cores, vec![Cores::Unpinned; 3]);
        assert!(why.contains("not pinned"), "{why}");
    }

    use super::*;

    #[test]
    fn nodes_share_the_read_caches_of_one_auto_node() {
        let text = node_tuning(3, 2);
        let tuning: crate::config::Tuning = toml::from_str(&text).unwrap();
        let mut one = crate::config::Tuning::default();
        one.resolve_shard_memory(2, crate::config::process_memory_bytes());
        let crate::config::ShardMemory::Bytes(share) = tuning.shard_memory else {
            panic!("a size, not auto: {text}");
        };
        // A third of one node's, unless that is below the least a shard gets.
        let third = one.shard_memory_bytes / 3;
        assert!(
            share.abs_diff(third) < 1024 * 1024 || share == 64 * 1024 * 1024,
            "{share} against {third}"
        );
    }

    #[test]
    fn node_configs_parse_as_a_quorum() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = plan(3, dir.path(), 9092).unwrap();
        assert_eq!(
            nodes
                .iter()
                .map(|n| (n.client_port, n.controller_port, n.http_port))
                .collect::<Vec<_>>(),
            vec![(9092, 9193, 9293), (9093, 9194, 9294), (9094, 9195, 9295)]
        );
        for node in &nodes {
            fs::write(&node.config, node_properties(node, &nodes)).unwrap();
            let config = crate::config::Config::build(&crate::config::ServeArgs {
                config: Some(node.config.clone()),
                shards: Some(1),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(config.broker.node_id, node.id);
            assert_eq!(config.cluster.voters.len(), 3);
            assert_eq!(config.listen.port(), node.client_port);
            assert_eq!(
                config.cluster.controller_listen.map(|a| a.port()),
                Some(node.controller_port)
            );
            assert_eq!(
                config.broker.http_listener.addr.map(|a| a.port()),
                Some(node.http_port)
            );
            assert_eq!(config.broker.offsets_topic_replication_factor, 3);
            assert_eq!(config.data_dir, absolute(&node.data_dir));
        }
        assert!(plan(0, dir.path(), 9092).is_err());
        assert!(plan(limits::DEV_CLUSTER_NODES_MAX + 1, dir.path(), 9092).is_err());
        assert!(plan(3, dir.path(), 65_500).is_err());
    }
}
