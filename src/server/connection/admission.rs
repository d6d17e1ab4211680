//! Admission: the node-wide connection counts behind `max.connections`
//! and `max.connections.per.ip`, the only connection state shared between
//! shards.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Open client connections of the whole node, by peer address. Shards
/// accept connections independently (SO_REUSEPORT spreads them by a hash
/// of the peer, not by load), so a per-shard share of `max.connections`
/// would refuse connections on one shard while another has room; instead
/// the shards share these counts. They are touched once on accept and once
/// on close, never on the data path, so a mutex is cheap here. One broker
/// per process (corelog runs one; `dev-cluster` runs each node as its own
/// process).
pub(super) static NODE_CONNECTIONS: Mutex<NodeConnections> = Mutex::new(NodeConnections {
    total: 0,
    per_ip: BTreeMap::new(),
    since_summary: ConnectionCounts {
        opened: 0,
        closed: 0,
        refused: 0,
        open: 0,
    },
});

pub struct NodeConnections {
    pub(super) total: usize,
    pub(super) per_ip: BTreeMap<IpAddr, usize>,
    /// Counted since the last [`take_counts`], for the periodic summary.
    since_summary: ConnectionCounts,
}

/// Client connections of the node over a period, for the log's summary
/// (each connection is logged only at DEBUG).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    pub opened: u64,
    pub closed: u64,
    pub refused: u64,
    /// Open at the end of the period.
    pub open: usize,
}

/// The node's connection counts since the last call, which starts a new
/// period.
pub fn take_counts() -> ConnectionCounts {
    let mut node = NODE_CONNECTIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let counts = ConnectionCounts {
        open: node.total,
        ..node.since_summary
    };
    node.since_summary = ConnectionCounts::default();
    counts
}

/// Why a new connection was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("max.connections ({0}) reached")]
    MaxConnections(usize),
    #[error("max.connections.per.ip ({0}) reached for this address")]
    MaxConnectionsPerIp(usize),
}

/// One admitted connection's place in [`NODE_CONNECTIONS`]; dropping it
/// (when the connection's task ends, however it ends) frees the place.
pub struct ConnectionSlot {
    pub(super) ip: IpAddr,
}

impl ConnectionSlot {
    pub fn admit(ip: IpAddr, max_total: usize, max_for_ip: usize) -> Result<Self, Refusal> {
        let mut node = NODE_CONNECTIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if node.total >= max_total {
            node.since_summary.refused += 1;
            return Err(Refusal::MaxConnections(max_total));
        }
        let from_ip = node.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= max_for_ip {
            node.since_summary.refused += 1;
            return Err(Refusal::MaxConnectionsPerIp(max_for_ip));
        }
        node.total += 1;
        node.since_summary.opened += 1;
        node.per_ip.insert(ip, from_ip + 1);
        Ok(ConnectionSlot { ip })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut node = NODE_CONNECTIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        node.total = node.total.saturating_sub(1);
        node.since_summary.closed += 1;
        if let Some(count) = node.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                node.per_ip.remove(&self.ip);
            }
        }
    }
}
