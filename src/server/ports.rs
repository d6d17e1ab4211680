//! Refuses listener ports another process listens on, before any shard
//! binds.
//!
//! The shards bind with SO_REUSEPORT, and Linux lets every socket of the
//! same user that sets it share the port, so a second broker on the same
//! port would not fail to bind: the kernel would silently split new
//! connections between the two processes, and clients would get answers
//! from the wrong broker, or none. So: try to connect first. (A test bind
//! without SO_REUSEPORT would also trip over the closing connections a
//! killed broker leaves on its port, which must not stop its restart.)
//!
//! One connection that succeeds is not yet proof: a broker restarted by a
//! supervisor may probe while something on the port is going away. The
//! port counts as taken only when every probe over `PROBE_WINDOW` connects,
//! and the error then names the process that holds it, read from /proc.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::Config;

/// How long a port must keep accepting to count as taken.
const PROBE_WINDOW: Duration = Duration::from_secs(1);
/// The pause between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The bound on one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A listener's port is taken by another process.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({what} listener): {holder} listens there (another broker?)")]
pub struct PortInUse {
    addr: SocketAddr,
    what: &'static str,
    holder: String,
}

/// Checks every client listener's port, on a controller the controller
/// listener's, and the HTTP listener's when there is one.
pub fn check_free(config: &Config) -> Result<(), PortInUse> {
    let mut ports: Vec<(&'static str, SocketAddr)> = config
        .client_listeners()
        .iter()
        .map(|l| ("client", l.bind))
        .collect();
    if config.cluster.controller_role {
        if let Some(controller) = config.cluster.controller_listen {
            ports.push(("controller", controller));
        }
    }
    if let Some(http) = config.broker.http_listener.addr {
        ports.push(("HTTP", http));
    }
    // A listener whose port is another listener's is refused here too:
    // with SO_REUSEPORT the two sockets would silently share connections.
    for (i, (_, addr)) in ports.iter().enumerate() {
        if ports[..i]
            .iter()
            .any(|(_, a)| a.port() == addr.port() && a.ip() == addr.ip())
        {
            return Err(PortInUse {
                addr: *addr,
                what: "client",
                holder: "another listener of this node".into(),
            });
        }
    }
    for (what, addr) in ports {
        if addr.port() != 0 && taken(probe_target(addr)) {
            let holder = holder_of(addr.port()).unwrap_or_else(|| "another process".to_string());
            return Err(PortInUse { addr, what, holder });
        }
    }
    Ok(())
}

/// Where to connect to reach a listener on `addr`: the loopback address
/// of its family when it listens on all addresses.
fn probe_target(addr: SocketAddr) -> SocketAddr {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match addr {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    target
}

/// Whether every connection attempt over `PROBE_WINDOW` is accepted.
fn taken(target: SocketAddr) -> bool {
    let deadline = Instant::now() + PROBE_WINDOW;
    loop {
        if !crate::net::listener_accepts(target, CONNECT_TIMEOUT) {
            return false;
        }
        if Instant::now() >= deadline {
            return true;
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}

/// "process N (name)" for the process with a socket listening on `port`,
/// found through /proc/net/tcp{,6} and /proc/*/fd; None when /proc does
/// not tell (another user's process, or no /proc).
fn holder_of(port: u16) -> Option<String> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|link| wanted.iter().any(|w| link.as_os_str() == w.as_str()))
        });
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(format!("process {pid} ({})", name.trim()));
        }
    }
    None
}

/// The inodes of sockets listening on `port` in one /proc/net/tcp table:
/// lines `sl local_address rem_address st ... inode`, the local address
/// as hex `ADDR:PORT`, state 0A for LISTEN.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == "0A";
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_taken_and_its_holder_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(taken(addr));
        let holder = holder_of(addr.port()).expect("this process holds the port");
        assert!(
            holder.starts_with(&format!("process {} (", std::process::id())),
            "{holder}"
        );
        drop(listener);
        assert!(!taken(addr));
        assert_eq!(holder_of(addr.port()), None);
    }

    #[test]
    fn only_listening_lines_of_the_port_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:86AF 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0 100 0 0 10 0\n\
           1: 0100007F:86AF 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1\n\
           2: 0100007F:86B0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1 0 100 0 0 10 0\n\
           garbage\n";
        assert_eq!(listening_inodes(table, 0x86AF), vec![111]);
        assert_eq!(listening_inodes(table, 0x86B0), vec![333]);
        assert!(listening_inodes(table, 1).is_empty());
    }
}
