//! The value formats of Kafka's cluster keys: `process.roles`, listeners
//! (`NAME://host:port`), `listener.security.protocol.map`
//! (`NAME:PROTOCOL`), `controller.quorum.voters` (`id@host:port`) and
//! `controller.quorum.bootstrap.servers` (`host:port`).
//!
//! Pure parsing, run once at start-up on the main thread; a bad value
//! returns a [`ListenerError`], and the caller names the key.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::{Listener, Voter};
use crate::security::SecurityProtocol;

/// Why a cluster key's value (roles, listeners, protocols, voters) is
/// refused; the caller names the key.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("unknown role {0:?}: expected broker and/or controller")]
    UnknownRole(String),
    #[error("{0} is listed twice")]
    RoleTwice(String),
    #[error("{0:?} is not NAME://host:port")]
    NotListener(String),
    #[error("{0:?}: a listener name is letters, digits and _")]
    ListenerName(String),
    /// One item of a list, and what is wrong with it.
    #[error("{item:?}: {source}")]
    Item {
        item: String,
        source: Box<ListenerError>,
    },
    #[error("listener name {0} is used twice")]
    ListenerTwice(String),
    #[error("expected at least one NAME://host:port")]
    NoListener,
    #[error("expected host:port")]
    NotHostPort,
    #[error("{0:?} is not a host name")]
    NotHostName(String),
    #[error("{0:?} is not a port number")]
    NotPort(String),
    #[error("port 0 is not supported: every shard must share one known port")]
    PortZero,
    #[error("{0:?} is not NAME:PROTOCOL")]
    NotProtocolEntry(String),
    #[error("unknown security protocol {0:?}")]
    UnknownProtocol(String),
    #[error(
        "listener {0} has no security protocol: add {0}:PLAINTEXT to \
         listener.security.protocol.map"
    )]
    NoProtocol(String),
    #[error(
        "listener {name} uses {protocol}, which corelog does not serve yet (it serves {})",
        served_names()
    )]
    NotPlaintext {
        name: String,
        protocol: &'static str,
    },
    #[error(
        "the controller listener {name} uses {protocol}, but the controller quorum's traffic \
         is plaintext only: map {name} to PLAINTEXT and keep it on a private network"
    )]
    ControllerNotPlaintext {
        name: String,
        protocol: &'static str,
    },
    /// A listener whose host does not resolve.
    #[error("listener {name}: {source}")]
    Bind {
        name: String,
        source: Box<ListenerError>,
    },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("{0:?} is not id@host:port")]
    NotVoter(String),
    #[error("{0:?}: the node id must be a number >= 0")]
    VoterId(String),
    #[error("{0:?}: a voter needs a host")]
    VoterHost(String),
    #[error("node id {0} is listed twice")]
    VoterTwice(i32),
    #[error("expected at least one id@host:port")]
    NoVoter,
    #[error(
        "corelog cannot discover the controllers' node ids yet; list the quorum as \
         controller.quorum.voters=id@host:port,... (or write the bootstrap servers as \
         id@host:port)"
    )]
    BootstrapWithoutIds,
}

impl ListenerError {
    fn in_item(item: &str) -> impl FnOnce(ListenerError) -> ListenerError + '_ {
        move |source| ListenerError::Item {
            item: item.to_string(),
            source: Box::new(source),
        }
    }
}

/// The items of a Kafka list value: comma separated, trimmed, empty ones
/// skipped.
pub fn comma_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Which KRaft roles a node runs (`process.roles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

impl Roles {
    pub const BOTH: Roles = Roles {
        broker: true,
        controller: true,
    };
}

/// `broker`, `controller` or both, comma separated, each at most once.
pub fn parse_roles(value: &str) -> Result<Roles, ListenerError> {
    let mut roles = Roles {
        broker: false,
        controller: false,
    };
    for role in value.split(',').map(str::trim) {
        let seen = match role {
            "broker" => std::mem::replace(&mut roles.broker, true),
            "controller" => std::mem::replace(&mut roles.controller, true),
            _ => return Err(ListenerError::UnknownRole(role.to_string())),
        };
        if seen {
            return Err(ListenerError::RoleTwice(role.to_string()));
        }
    }
    Ok(roles)
}

/// `NAME://host:port,...`: an empty host means every address, an IPv6
/// host is written in brackets. Names are case-insensitive (upper-cased,
/// as Kafka normalises them) and unique.
pub fn parse_listeners(value: &str) -> Result<Vec<Listener>, ListenerError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for item in comma_list(value) {
        let (name, address) = item
            .split_once("://")
            .ok_or_else(|| ListenerError::NotListener(item.to_string()))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ListenerError::ListenerName(item.to_string()));
        }
        let (host, port) = host_port(address).map_err(ListenerError::in_item(item))?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(ListenerError::ListenerTwice(name));
        }
        listeners.push(Listener { name, host, port });
    }
    if listeners.is_empty() {
        return Err(ListenerError::NoListener);
    }
    Ok(listeners)
}

/// `host:port` or `[v6]:port`, with a port in [1, 65535].
fn host_port(address: &str) -> Result<(String, u16), ListenerError> {
    let (host, port) = address.rsplit_once(':').ok_or(ListenerError::NotHostPort)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.contains(['/', '@', ' ']) {
        return Err(ListenerError::NotHostName(host.to_string()));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| ListenerError::NotPort(port.to_string()))?;
    if port == 0 {
        return Err(ListenerError::PortZero);
    }
    Ok((host.to_string(), port))
}

/// `NAME:PROTOCOL,...`.
pub fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, String>, ListenerError> {
    let mut map = BTreeMap::new();
    for item in comma_list(value) {
        let (name, protocol) = item
            .split_once(':')
            .ok_or_else(|| ListenerError::NotProtocolEntry(item.to_string()))?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if SecurityProtocol::parse(&protocol).is_none() {
            return Err(ListenerError::UnknownProtocol(protocol));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// The security protocol of `listener`: from the map, else the listener's
/// own name when it is a protocol's name, else PLAINTEXT for a controller
/// listener (as KRaft does). A protocol corelog does not serve yet is
/// refused here, before a client could expect TLS or SASL from it.
pub fn security_protocol(
    listener: &Listener,
    map: &BTreeMap<String, String>,
    controller_names: &[String],
) -> Result<SecurityProtocol, ListenerError> {
    let protocol = match map.get(&listener.name) {
        Some(p) => p.as_str(),
        None if SecurityProtocol::parse(&listener.name).is_some() => listener.name.as_str(),
        None if controller_names.contains(&listener.name) => "PLAINTEXT",
        None => return Err(ListenerError::NoProtocol(listener.name.clone())),
    };
    let protocol = SecurityProtocol::parse(protocol)
        .ok_or_else(|| ListenerError::UnknownProtocol(protocol.to_string()))?;
    if !SERVED_PROTOCOLS.contains(&protocol) {
        return Err(ListenerError::NotPlaintext {
            name: listener.name.clone(),
            protocol: protocol.name(),
        });
    }
    Ok(protocol)
}

/// The names of [`SERVED_PROTOCOLS`], for the error that refuses others.
fn served_names() -> String {
    SERVED_PROTOCOLS
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The security protocols a listener may use today.
const SERVED_PROTOCOLS: &[SecurityProtocol] = &[
    SecurityProtocol::Plaintext,
    SecurityProtocol::Ssl,
    SecurityProtocol::SaslPlaintext,
    SecurityProtocol::SaslSsl,
];

/// The address a listener binds: its host resolved (IPv4 preferred), or
/// every IPv4 address when the host is empty.
pub fn bind_address(listener: &Listener) -> Result<SocketAddr, ListenerError> {
    if listener.host.is_empty() {
        return Ok(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            listener.port,
        ));
    }
    resolve(&listener.host, listener.port).map_err(|e| ListenerError::Bind {
        name: listener.name.clone(),
        source: Box::new(e),
    })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, ListenerError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| ListenerError::Resolve {
            host: host.to_string(),
            source,
        })?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| ListenerError::NoAddress(host.to_string()))
}

/// `id@host:port,...` with unique ids >= 0 (Kafka 3.9's static quorum).
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, ListenerError> {
    let mut voters: Vec<Voter> = Vec::new();
    for item in comma_list(value) {
        let (id, address) = item
            .split_once('@')
            .ok_or_else(|| ListenerError::NotVoter(item.to_string()))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| ListenerError::VoterId(item.to_string()))?;
        let (host, port) = host_port(address).map_err(ListenerError::in_item(item))?;
        if host.is_empty() {
            return Err(ListenerError::VoterHost(item.to_string()));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(ListenerError::VoterTwice(id));
        }
        voters.push(Voter { id, host, port });
    }
    if voters.is_empty() {
        return Err(ListenerError::NoVoter);
    }
    Ok(voters)
}

/// `controller.quorum.bootstrap.servers` as voters. The entries carry no
/// node ids, and corelog has no dynamic quorum to learn them from, so they
/// resolve only when they are knowable without asking: a single entry that
/// is this node's own controller listener (a standalone controller, as
/// `kafka-storage format --standalone`), or entries written `id@host:port`.
pub fn resolve_bootstrap_servers(
    value: &str,
    node_id: Option<i32>,
    controller_listen: Option<SocketAddr>,
) -> Result<Vec<Voter>, ListenerError> {
    if value.contains('@') {
        return parse_voters(value);
    }
    let servers: Vec<(String, u16)> = comma_list(value).map(host_port).collect::<Result<_, _>>()?;
    if let ([(host, port)], Some(id), Some(own)) = (servers.as_slice(), node_id, controller_listen)
    {
        let same_port = *port == own.port();
        let same_host = resolve(host, *port).is_ok_and(|a| a.ip() == own.ip());
        if same_port && (same_host || own.ip().is_unspecified()) {
            return Ok(vec![Voter {
                id,
                host: host.clone(),
                port: *port,
            }]);
        }
    }
    Err(ListenerError::BootstrapWithoutIds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_reject_unknown_or_repeated() {
        assert_eq!(parse_roles("broker,controller").unwrap(), Roles::BOTH);
        assert_eq!(
            parse_roles(" controller ").unwrap(),
            Roles {
                broker: false,
                controller: true
            }
        );
        assert!(parse_roles("broker,broker").is_err());
        assert!(parse_roles("zookeeper").is_err());
        assert!(parse_roles("").is_err());
    }

    #[test]
    fn listeners_parse_names_hosts_and_ports() {
        let parsed =
            parse_listeners("PLAINTEXT://127.0.0.1:9092, controller://:9093,EXT://[::1]:9094")
                .unwrap();
        assert_eq!(
            parsed,
            vec![
                Listener {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9092
                },
                Listener {
                    name: "CONTROLLER".into(),
                    host: String::new(),
                    port: 9093
                },
                Listener {
                    name: "EXT".into(),
                    host: "::1".into(),
                    port: 9094
                },
            ]
        );
        assert_eq!(
            bind_address(&parsed[1]).unwrap(),
            "0.0.0.0:9093".parse().unwrap()
        );
        assert_eq!(
            bind_address(&parsed[2]).unwrap(),
            "[::1]:9094".parse().unwrap()
        );
        for bad in [
            "127.0.0.1:9092",
            "PLAINTEXT://127.0.0.1",
            "PLAINTEXT://127.0.0.1:0",
            "PLAINTEXT://127.0.0.1:70000",
            "A://h:1,a://h:2",
            "://h:1",
            "",
        ] {
            assert!(parse_listeners(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn served_protocols_are_accepted_and_others_refused() {
        let map =
            parse_protocol_map("INTERNAL:PLAINTEXT,SECURE:SASL_SSL,SP:SASL_PLAINTEXT").unwrap();
        let listener = |name: &str| Listener {
            name: name.into(),
            host: String::new(),
            port: 1,
        };
        let controllers = vec!["CONTROLLER".to_string()];
        let protocol = |name: &str| security_protocol(&listener(name), &map, &controllers);
        assert_eq!(protocol("INTERNAL").unwrap(), SecurityProtocol::Plaintext);
        assert_eq!(protocol("PLAINTEXT").unwrap(), SecurityProtocol::Plaintext);
        assert_eq!(protocol("CONTROLLER").unwrap(), SecurityProtocol::Plaintext);
        assert_eq!(protocol("SSL").unwrap(), SecurityProtocol::Ssl);
        assert_eq!(protocol("SECURE").unwrap(), SecurityProtocol::SaslSsl);
        for p in SecurityProtocol::ALL {
            if !SERVED_PROTOCOLS.contains(&p) {
                let map = parse_protocol_map(&format!("X:{}", p.name())).unwrap();
                let err = security_protocol(&listener("X"), &map, &controllers)
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.contains(p.name()) && err.contains("does not serve"),
                    "{err}"
                );
            }
        }
        let err = protocol("OTHER").unwrap_err().to_string();
        assert!(err.contains("listener.security.protocol.map"), "{err}");
        assert!(parse_protocol_map("A:TLS").is_err());
        assert!(parse_protocol_map("A").is_err());
    }

    #[test]
    fn voters_parse_and_reject_duplicates() {
        let voters = parse_voters("1@127.0.0.1:9193,2@node-2.example:9194").unwrap();
        assert_eq!(
            voters,
            vec![
                Voter {
                    id: 1,
                    host: "127.0.0.1".into(),
                    port: 9193
                },
                Voter {
                    id: 2,
                    host: "node-2.example".into(),
                    port: 9194
                },
            ]
        );
        for bad in [
            "1@h:1,1@h:2",
            "-1@h:1",
            "x@h:1",
            "1@:9193",
            "1@h",
            "h:1",
            "",
        ] {
            assert!(parse_voters(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bootstrap_servers_resolve_only_when_ids_are_known() {
        let own: SocketAddr = "127.0.0.1:9193".parse().unwrap();
        assert_eq!(
            resolve_bootstrap_servers("127.0.0.1:9193", Some(4), Some(own)).unwrap(),
            vec![Voter {
                id: 4,
                host: "127.0.0.1".into(),
                port: 9193
            }]
        );
        assert_eq!(
            resolve_bootstrap_servers("1@h:1,2@h:2", None, None)
                .unwrap()
                .len(),
            2
        );
        let err = resolve_bootstrap_servers("127.0.0.1:9193,127.0.0.1:9194", Some(1), Some(own))
            .unwrap_err()
            .to_string();
        assert!(err.contains("controller.quorum.voters"), "{err}");
        assert!(resolve_bootstrap_servers("127.0.0.1:9999", Some(1), Some(own)).is_err());
    }
}
