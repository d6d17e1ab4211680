//! Kafka's `server.properties` format for `corelog serve --config FILE`:
//! parsing the file (java.util.Properties rules, by the `java-properties`
//! crate) and turning the Kafka keys corelog supports into [`FileSettings`].
//!
//! Runs once on the main thread before any shard starts. The node keys of
//! the key table (`keys.rs`) are read here; the broker keys go to
//! [`BrokerDefaults`]. Unknown keys are collected, not rejected, because Kafka's own files carry many keys
//! corelog has no use for (thread pools, socket buffers); the caller warns
//! about them once. A key corelog does support with a bad value is an error
//! that names the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use indexmap::IndexMap;

use super::listeners::{
    bind_address, comma_list, parse_listeners, parse_protocol_map, parse_roles, parse_voters,
    resolve_bootstrap_servers, security_protocol, Roles,
};
use super::{keys, BrokerDefaults, ConfigError, FileSettings, Listener, ListenerError, ValueError};
use crate::limits;

/// Parses properties text as java.util.Properties does: `key=value`,
/// `key: value` or `key value`; `#` and `!` comments; a trailing backslash
/// continues a line; `\t`, `\n`, `\uXXXX` and `\:` style escapes. A key
/// given twice keeps its last value (and its first position). Values are
/// trimmed, as Kafka trims them.
pub fn parse_properties(text: &str) -> Result<IndexMap<String, String>, ConfigError> {
    let mut entries = IndexMap::new();
    let mut lines =
        java_properties::PropertiesIter::new_with_encoding(text.as_bytes(), encoding_rs::UTF_8);
    lines
        .read_into(|key, value| {
            entries.insert(key, value.trim().to_string());
        })
        .map_err(|e| match e.line_number() {
            Some(line) => ConfigError::PropertiesLine { line, source: e },
            None => ConfigError::Properties(e),
        })?;
    Ok(entries)
}

/// What a properties file sets, and the keys it ignores (sorted).
pub fn settings_from_properties(
    entries: &IndexMap<String, String>,
) -> Result<(FileSettings, Vec<String>), ConfigError> {
    let mut settings = FileSettings::default();
    let mut ignored = Vec::new();
    let mut broker: Vec<(String, String)> = Vec::new();
    for (key, value) in entries {
        // Said once, on its own line (`FileSettings::load`).
        if key.starts_with("zookeeper.") {
            continue;
        }
        // TLS keys go whole to the `tls` module, which checks them.
        if super::is_ssl_key(key) {
            settings.ssl.insert(key.clone(), value.clone());
            continue;
        }
        // Node keys are read below by apply_cluster_keys.
        if keys::find(key).is_some_and(|k| matches!(k.kind, keys::Kind::Node)) {
            continue;
        }
        if BrokerDefaults::knows(key) {
            broker.push((key.clone(), value.clone()));
        } else {
            ignored.push(key.clone());
        }
    }
    // Kafka gives the finer unit precedence whatever the order in the file:
    // log.retention.ms over .minutes over .hours, log.roll.ms over .hours.
    broker.sort_by_key(|(key, _)| keys::unit_precedence(key));
    settings.broker = broker;
    ignored.sort();
    apply_cluster_keys(entries, &mut settings)?;
    Ok((settings, ignored))
}

/// Roles, listeners, the quorum and the data directory.
fn apply_cluster_keys(
    entries: &IndexMap<String, String>,
    settings: &mut FileSettings,
) -> Result<(), ConfigError> {
    let get = |key: &str| entries.get(key).map(String::as_str);
    let roles = match get("process.roles") {
        Some(value) => parse_roles(value).map_err(|e| named("process.roles", value, e))?,
        None => Roles::BOTH,
    };
    // A file without process.roles and without a quorum (a ZooKeeper-era
    // server.properties, or a minimal one) describes a single node, which
    // is its own quorum and needs no controller listener.
    let quorum_named = [
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
    ]
    .iter()
    .any(|key| get(key).is_some_and(|v| !v.trim().is_empty()));
    let single_node = get("process.roles").is_none() && !quorum_named;
    settings.roles = Some(roles);
    settings.data_dir = data_dir(get("log.dirs"), get("log.dir"))?;

    let protocols = match get("listener.security.protocol.map") {
        Some(value) => parse_protocol_map(value)
            .map_err(|e| named("listener.security.protocol.map", value, e))?,
        None => BTreeMap::new(),
    };
    let controller_names: Vec<String> = get("controller.listener.names")
        .map(|v| comma_list(v).map(str::to_ascii_uppercase).collect())
        .unwrap_or_default();
    let listeners = match get("listeners") {
        Some(value) => parse_listeners(value).map_err(|e| named("listeners", value, e))?,
        // Kafka's default: one PLAINTEXT listener on every address, port 9092.
        None => vec![Listener {
            name: "PLAINTEXT".into(),
            host: String::new(),
            port: 9092,
        }],
    };
    let mut listener_protocols = BTreeMap::new();
    for listener in &listeners {
        let protocol = security_protocol(listener, &protocols, &controller_names)?;
        listener_protocols.insert(listener.name.clone(), protocol);
    }
    let (controller, clients): (Vec<&Listener>, Vec<&Listener>) = listeners
        .iter()
        .partition(|l| controller_names.contains(&l.name));
    check_roles_against_listeners(roles, single_node, &controller_names, &controller, &clients)?;

    if let Some(listener) = controller.first() {
        settings.controller_listen = Some(bind_address(listener)?);
        settings.controller_protocol = listener_protocols.get(&listener.name).copied();
        // The quorum's own listener speaks plaintext: refuse rather than
        // serve plaintext where the map asks for TLS or SASL.
        if let Some(protocol) = settings.controller_protocol {
            if protocol != crate::security::SecurityProtocol::Plaintext {
                let value = get("listener.security.protocol.map").unwrap_or_default();
                return Err(named(
                    "listener.security.protocol.map",
                    value,
                    ListenerError::ControllerNotPlaintext {
                        name: listener.name.clone(),
                        protocol: protocol.name(),
                    },
                ));
            }
        }
    }
    // A controller-only node has no client listener: Kafka requests (such
    // as ApiVersions and DescribeQuorum) reach it on its controller listener.
    let main_listeners: Vec<&Listener> = if clients.is_empty() {
        controller.clone()
    } else {
        clients.clone()
    };
    // The listener other brokers reach this one on: inter.broker.listener.name,
    // else the first client listener.
    let main = match get("inter.broker.listener.name") {
        Some(value) if roles.broker => {
            let wanted = value.trim().to_ascii_uppercase();
            *main_listeners
                .iter()
                .find(|l| l.name == wanted)
                .ok_or_else(|| {
                    let names: Vec<&str> = clients.iter().map(|l| l.name.as_str()).collect();
                    named(
                        "inter.broker.listener.name",
                        value,
                        ValueError::InterBrokerListener(names.join(", ")),
                    )
                })?
        }
        _ => *main_listeners.first().expect("checked: a listener exists"),
    };
    settings.listen = Some(bind_address(main)?);
    settings.listener_name = Some(main.name.clone());
    settings.listener_protocol = listener_protocols.get(&main.name).copied();
    settings.listener_host = Some(main.host.clone());
    let advertised = match get("advertised.listeners") {
        Some(value) => {
            let advertised =
                parse_listeners(value).map_err(|e| named("advertised.listeners", value, e))?;
            if advertised.iter().any(|l| {
                l.host.is_empty()
                    || l.host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_unspecified())
            }) {
                return Err(named(
                    "advertised.listeners",
                    value,
                    ValueError::UnspecifiedHost,
                ));
            }
            advertised
        }
        None => Vec::new(),
    };
    if let Some(found) = advertised.iter().find(|l| l.name == main.name) {
        settings.advertised_host = Some(found.host.clone());
        settings.advertised_port = Some(found.port);
    }
    for listener in clients.iter().filter(|l| l.name != main.name) {
        let (host, port) = match advertised.iter().find(|l| l.name == listener.name) {
            Some(found) => (found.host.clone(), found.port),
            None => (
                super::advertised_from_listener(Some(&listener.host), bind_address(listener)?)?,
                listener.port,
            ),
        };
        settings.other_listeners.push(super::ClientListener {
            name: listener.name.clone(),
            bind: bind_address(listener)?,
            protocol: listener_protocols[&listener.name],
            advertised_host: host,
            advertised_port: port,
        });
    }
    settings.voters = quorum(
        get("controller.quorum.voters"),
        get("controller.quorum.bootstrap.servers"),
        &settings.controller_listen,
        entries,
    )?;
    Ok(())
}

/// Kafka's rules for which listeners each role needs.
fn check_roles_against_listeners(
    roles: Roles,
    single_node: bool,
    controller_names: &[String],
    controller: &[&Listener],
    clients: &[&Listener],
) -> Result<(), ConfigError> {
    if roles.controller && controller.is_empty() && !single_node {
        return Err(ConfigError::NoControllerListener(
            if controller_names.is_empty() {
                "unset".to_string()
            } else {
                controller_names.join(",")
            },
        ));
    }
    if !roles.controller && !controller.is_empty() {
        return Err(ConfigError::ControllerListenerWithoutRole(
            controller[0].name.clone(),
        ));
    }
    if controller.len() > 1 {
        return Err(ConfigError::ManyControllerListeners);
    }
    if roles.broker && clients.is_empty() {
        return Err(ConfigError::NoClientListener);
    }
    if !roles.broker && !clients.is_empty() {
        return Err(ConfigError::ClientListenerWithoutRole(
            clients[0].name.clone(),
        ));
    }
    Ok(())
}

/// The one data directory: log.dirs, else log.dir.
fn data_dir(dirs: Option<&str>, dir: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    let (key, value) = match (dirs, dir) {
        (Some(v), _) => ("log.dirs", v),
        (None, Some(v)) => ("log.dir", v),
        (None, None) => return Ok(None),
    };
    let listed: Vec<&str> = comma_list(value).collect();
    match listed.as_slice() {
        [one] => Ok(Some(PathBuf::from(one))),
        [] => Err(named(key, value, ValueError::NoDirectory)),
        many => Err(named(key, value, ValueError::ManyDirectories(many.len()))),
    }
}

/// controller.quorum.voters, else controller.quorum.bootstrap.servers.
fn quorum(
    voters: Option<&str>,
    bootstrap: Option<&str>,
    controller_listen: &Option<SocketAddr>,
    entries: &IndexMap<String, String>,
) -> Result<Vec<super::Voter>, ConfigError> {
    let node_id = entries.get("node.id").or(entries.get("broker.id"));
    if let Some(value) = voters.filter(|v| !v.trim().is_empty()) {
        let parsed =
            parse_voters(value).map_err(|e| named("controller.quorum.voters", value, e))?;
        if parsed.len() > limits::CONTROLLER_VOTERS_MAX {
            return Err(named(
                "controller.quorum.voters",
                value,
                ValueError::TooManyVoters(limits::CONTROLLER_VOTERS_MAX),
            ));
        }
        return Ok(parsed);
    }
    match bootstrap.filter(|v| !v.trim().is_empty()) {
        Some(value) => {
            let node_id = node_id.and_then(|id| id.trim().parse().ok());
            resolve_bootstrap_servers(value, node_id, *controller_listen)
                .map_err(|e| named("controller.quorum.bootstrap.servers", value, e))
        }
        None => Ok(Vec::new()),
    }
}

/// An error about one key's value, naming the key.
fn named(key: &str, value: &str, reason: impl Into<ValueError>) -> ConfigError {
    ConfigError::invalid(key, value, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::SecurityProtocol;

    #[test]
    fn a_controller_listener_must_be_plaintext() {
        let err = settings(
            "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
             controller.listener.names=CONTROLLER\n\
             controller.quorum.voters=1@127.0.0.1:9093\nnode.id=1\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("CONTROLLER") && err.contains("PLAINTEXT"),
            "{err}"
        );
    }

    fn settings(text: &str) -> Result<(FileSettings, Vec<String>), ConfigError> {
        settings_from_properties(&parse_properties(text)?)
    }

    #[test]
    fn java_properties_syntax() {
        let text = "# a comment\n\
                    ! another comment\n\
                    \n\
                    plain=value\n\
                    colon: spaced value  \n\
                    \x20  indented   whitespace separated\n\
                    continued=first, \\\n\
                    \x20         second\n\
                    escaped\\=key=tab\\there\\u0041\n\
                    empty=\n\
                    bare\n\
                    dup=1\n\
                    dup=2\n";
        let entries = parse_properties(text).unwrap();
        let get = |k: &str| entries.get(k).map(String::as_str);
        assert_eq!(get("plain"), Some("value"));
        assert_eq!(get("colon"), Some("spaced value"));
        assert_eq!(get("indented"), Some("whitespace separated"));
        assert_eq!(get("continued"), Some("first, second"));
        assert_eq!(get("escaped=key"), Some("tab\thereA"));
        assert_eq!(get("empty"), Some(""));
        assert_eq!(get("bare"), Some(""));
        assert_eq!(get("dup"), Some("2"));
        assert!(!entries.keys().any(|k| k.contains("comment")));
        let err = parse_properties("bad=\\u12\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_zookeeper_era_server_properties_runs_a_single_node() {
        let text = "broker.id=0\n\
                    listeners=PLAINTEXT://localhost:9092\n\
                    log.dirs=/tmp/kafka-logs\n\
                    num.partitions=1\n\
                    offsets.topic.replication.factor=1\n\
                    log.retention.hours=168\n\
                    zookeeper.connect=localhost:2181\n\
                    zookeeper.connection.timeout.ms=18000\n";
        let (s, ignored) = settings(text).unwrap();
        assert!(s.voters.is_empty(), "no quorum: a single node");
        assert_eq!(s.controller_listen, None);
        assert_eq!(s.listener_name.as_deref(), Some("PLAINTEXT"));
        assert_eq!(s.data_dir, Some(PathBuf::from("/tmp/kafka-logs")));
        assert!(
            !ignored.iter().any(|k| k.starts_with("zookeeper.")),
            "zookeeper.* keys get their own warning: {ignored:?}"
        );
        // A file that names a quorum still needs its controller listener.
        let err = settings("controller.quorum.voters=1@127.0.0.1:9093\nnode.id=1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("controller.listener.names"), "{err}");
    }

    #[test]
    fn kafka_server_properties_become_settings() {
        let text = "process.roles=broker,controller\n\
                    node.id=1\n\
                    controller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.1:9194,3@127.0.0.1:9195\n\
                    listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9193\n\
                    advertised.listeners=PLAINTEXT://broker1.example:19092\n\
                    controller.listener.names=CONTROLLER\n\
                    listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                    inter.broker.listener.name=PLAINTEXT\n\
                    log.dirs=/var/lib/corelog/node1\n\
                    num.partitions=3\n\
                    log.retention.ms=1000\n\
                    log.retention.hours=168\n\
                    num.network.threads=3\n\
                    socket.send.buffer.bytes=102400\n";
        let (s, ignored) = settings(text).unwrap();
        assert_eq!(s.roles, Some(Roles::BOTH));
        assert_eq!(s.listen, Some("127.0.0.1:9092".parse().unwrap()));
        assert_eq!(s.controller_listen, Some("127.0.0.1:9193".parse().unwrap()));
        assert_eq!(s.advertised_host.as_deref(), Some("broker1.example"));
        assert_eq!(s.advertised_port, Some(19092));
        assert_eq!(s.listener_name.as_deref(), Some("PLAINTEXT"));
        assert_eq!(s.voters.len(), 3);
        assert_eq!(s.voters[2].port, 9195);
        assert_eq!(s.data_dir, Some(PathBuf::from("/var/lib/corelog/node1")));
        assert_eq!(
            ignored,
            vec!["num.network.threads", "socket.send.buffer.bytes"]
        );
        // The finer unit wins whatever the order in the file.
        let keys: Vec<&str> = s.broker.iter().map(|(k, _)| k.as_str()).collect();
        let hours = keys.iter().position(|k| *k == "log.retention.hours");
        let ms = keys.iter().position(|k| *k == "log.retention.ms");
        assert!(hours < ms, "{keys:?}");
    }

    #[test]
    fn invalid_cluster_values_name_their_key() {
        let cases = [
            ("process.roles=broker,zookeeper\n", "process.roles"),
            ("listeners=PLAINTEXT://h\n", "listeners"),
            ("log.dirs=/a,/b\n", "log.dirs"),
            ("log.dir=\n", "log.dir"),
            (
                "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
                 controller.listener.names=CONTROLLER\n\
                 controller.quorum.voters=1@h\n",
                "controller.quorum.voters",
            ),
            (
                "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
                 controller.listener.names=CONTROLLER\n\
                 advertised.listeners=PLAINTEXT://0.0.0.0:9092\n",
                "advertised.listeners",
            ),
            (
                "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
                 controller.listener.names=CONTROLLER\n\
                 inter.broker.listener.name=INTERNAL\n",
                "inter.broker.listener.name",
            ),
            (
                "listener.security.protocol.map=PLAINTEXT:KERBEROS\n",
                "listener.security.protocol.map",
            ),
        ];
        for (text, key) in cases {
            let err = settings(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err}");
        }
    }

    #[test]
    fn ssl_keys_go_to_the_tls_module_not_to_the_ignored_list() {
        let (s, ignored) = settings(
            "listeners=SSL://127.0.0.1:9093\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location=/k.pem\n\
             listener.name.ssl.ssl.client.auth=required\n",
        )
        .unwrap();
        assert!(ignored.is_empty(), "{ignored:?}");
        assert_eq!(s.ssl.len(), 3);
        assert_eq!(s.listener_protocol, Some(SecurityProtocol::Ssl));
    }

    #[test]
    fn listener_rules_of_each_role() {
        let sasl = "listeners=KERB://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
                    listener.security.protocol.map=KERB:SASL_PLAINTEXT\n\
                    controller.listener.names=CONTROLLER\n";
        let (s, _) = settings(sasl).unwrap();
        assert_eq!(s.listener_protocol, Some(SecurityProtocol::SaslPlaintext));
        // Without process.roles and a quorum: a single node, no controller
        // listener needed; with process.roles naming controller, one is.
        let (s, _) = settings("listeners=PLAINTEXT://127.0.0.1:9092\n").unwrap();
        assert_eq!(s.controller_listen, None);
        let err =
            settings("process.roles=broker,controller\nlisteners=PLAINTEXT://127.0.0.1:9092\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("controller.listener.names"), "{err}");
        let two_clients = "listeners=A://127.0.0.1:1,B://:2,CONTROLLER://127.0.0.1:3\n\
                           listener.security.protocol.map=A:PLAINTEXT,B:SSL\n\
                           advertised.listeners=B://b.example:20002\n\
                           inter.broker.listener.name=B\n\
                           controller.listener.names=CONTROLLER\n";
        let (s, _) = settings(two_clients).unwrap();
        assert_eq!(
            s.listener_name.as_deref(),
            Some("B"),
            "the inter-broker one is main"
        );
        assert_eq!(s.listener_protocol, Some(SecurityProtocol::Ssl));
        assert_eq!(s.advertised_host.as_deref(), Some("b.example"));
        assert_eq!(s.other_listeners.len(), 1);
        assert_eq!(s.other_listeners[0].name, "A");
        assert_eq!(s.other_listeners[0].advertised_port, 1);
        assert_eq!(s.other_listeners[0].protocol, SecurityProtocol::Plaintext);
        let wrong_inter = two_clients.replace(
            "inter.broker.listener.name=B",
            "inter.broker.listener.name=C",
        );
        let err = settings(&wrong_inter).unwrap_err().to_string();
        assert!(
            err.contains("inter.broker.listener.name") && err.contains("A, B"),
            "{err}"
        );
        let broker_only = "process.roles=broker\n\
                           listeners=PLAINTEXT://127.0.0.1:9092\n\
                           controller.listener.names=CONTROLLER\n\
                           controller.quorum.voters=2@127.0.0.1:9193\n";
        let (s, _) = settings(broker_only).unwrap();
        assert_eq!(s.controller_listen, None);
        assert_eq!(s.voters[0].id, 2);
        let controller_only = "process.roles=controller\n\
                               listeners=CONTROLLER://127.0.0.1:9193\n\
                               controller.listener.names=CONTROLLER\n";
        let (s, _) = settings(controller_only).unwrap();
        assert_eq!(s.listen, s.controller_listen);
        let controller_with_client = "process.roles=controller\n\
                                      listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9193\n\
                                      controller.listener.names=CONTROLLER\n";
        assert!(settings(controller_with_client)
            .unwrap_err()
            .to_string()
            .contains("broker"));
    }
}
