//! Server configuration: command-line flags, an optional server file
//! (Kafka's `server.properties` format, or TOML when it ends in `.toml`),
//! Kafka-named overrides and a tuning profile, folded into one validated
//! [`Config`]. `properties` reads the Kafka file; `listeners` parses the
//! values of its cluster keys (roles, listeners, voters).
//!
//! The config is built once on the main thread before any shard starts and
//! each shard gets its own clone. SIGHUP builds it again the same way
//! (`server::reload`); `reload` says which changes a running broker takes
//! (the dynamic broker keys) and which need a restart.
//!
//! Split by concern: `broker` (Kafka's broker configs and their rules),
//! `topic` (per-topic configs resolved against them), `tuning` (the TOML
//! profile), `cluster` (roles, voters, listeners), `file` (reading a server
//! file of either format), `check` (what `serve --check-config` finds
//! beyond what building refuses), `reload` (what a re-read changes); this
//! file folds them into [`Config`]. What can be refused is typed in
//! `error`: [`ValueError`] for one value (the caller names the key),
//! [`ConfigError`] for the whole configuration, and [`ListenerError`] for
//! the formats of the cluster keys.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::limits;

mod broker;
pub mod check;
mod cluster;
mod error;
mod file;
pub mod keys;
mod listeners;
mod properties;
mod reload;
mod topic;
mod tuning;

pub use crate::shard::placement::Cores;
pub use broker::{BrokerDefaults, HttpListener, IpOverrides};
pub use cluster::{ClientListener, ClusterConfig, Listener, Voter};
pub use error::{ConfigError, ValueError};
pub use file::{written_keys, FileSettings, ServerFile};
pub use listeners::{parse_listeners, parse_voters, ListenerError, Roles};
pub use properties::parse_properties;
pub use reload::ConfigChanges;
pub use topic::{timestamp_type_name, validate_topic_config, TopicConfig};
pub use tuning::{process_memory_bytes, ShardMemory, Tuning};

/// The one validated configuration every shard runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the client listener binds (every shard, SO_REUSEPORT).
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Shards to run; each one a glommio executor.
    pub shards: usize,
    /// Where they run (`shard::placement`): `serve --cores`, else the
    /// tuning profile's `cores`, else one per allowed core when there are
    /// enough.
    pub cores: Cores,
    pub tuning: Tuning,
    pub broker: BrokerDefaults,
    pub cluster: ClusterConfig,
    /// The cluster id from this node's `meta.properties`, filled in at start
    /// once the storage identity is checked (None until then).
    pub cluster_id: Option<String>,
    /// This node's log directory id (`directory.id` in `meta.properties`),
    /// filled in with `cluster_id`.
    pub directory_id: Option<uuid::Uuid>,
    /// The `ssl.*` and `listener.name.<name>.ssl.*` keys of the server file
    /// and `--override`, as written; the `tls` module reads and checks them.
    pub ssl: std::collections::BTreeMap<String, String>,
}

/// A key the `tls` module reads: `ssl.*`, or a listener's own
/// `listener.name.<name>.ssl.*`.
pub fn is_ssl_key(key: &str) -> bool {
    key.starts_with("ssl.")
        || key
            .strip_prefix("listener.name.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(_, key)| key.starts_with("ssl."))
}

impl Config {
    /// Every client listener every shard serves (the inter-broker one
    /// first).
    pub fn client_listeners(&self) -> Vec<ClientListener> {
        if !self.cluster.listeners.is_empty() {
            return self.cluster.listeners.clone();
        }
        vec![ClientListener {
            name: self.cluster.advertised.name.clone(),
            bind: self.listen,
            protocol: self.cluster.listener_protocol,
            advertised_host: self.cluster.advertised.host.clone(),
            advertised_port: self.cluster.advertised.port,
        }]
    }
}

/// Everything `corelog serve` takes from its command line.
#[derive(Clone, Debug, Default)]
pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub tuning: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub advertised_host: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub cores: Option<Cores>,
    pub overrides: Vec<String>,
}

impl Config {
    /// Folds flags over the file over the embedded defaults, then validates.
    pub fn build(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        let mut tuning = match args.tuning.as_ref().or(file.tuning.as_ref()) {
            Some(path) => Tuning::load(path)?,
            None => Tuning::default(),
        };
        let mut broker = BrokerDefaults::default();
        let mut ssl = file.ssl.clone();
        for (key, value) in &file.broker {
            broker.set(key, value).map_err(|e| match &args.config {
                Some(path) => ConfigError::in_file(path)(e),
                None => e,
            })?;
        }
        for pair in &args.overrides {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::OverrideNotKeyValue(pair.clone()))?;
            if is_ssl_key(key.trim()) {
                ssl.insert(key.trim().to_string(), value.trim().to_string());
                continue;
            }
            broker.set(key.trim(), value.trim())?;
        }
        broker.check()?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9092)));
        let cores = match &args.cores {
            Some(cores) => cores.clone(),
            None if !tuning.cores.is_empty() => Cores::List(tuning.cores.clone()),
            None => Cores::Auto,
        };
        let shards = shard_count(args.shards.or(file.shards), &cores)?;
        tuning.resolve_shard_memory(shards, tuning::process_memory_bytes());
        let advertised_host = match args.advertised_host.clone().or(file.advertised_host) {
            Some(host) => host,
            None if args.listen.is_some() => listen.ip().to_string(),
            None => advertised_from_listener(file.listener_host.as_deref(), listen)?,
        };
        let roles = file.roles.unwrap_or(Roles::BOTH);
        let main_name = file.listener_name.unwrap_or_else(|| "PLAINTEXT".into());
        let main_protocol = file
            .listener_protocol
            .unwrap_or(crate::security::SecurityProtocol::Plaintext);
        let main_port = file.advertised_port.unwrap_or(listen.port());
        let mut listeners = vec![ClientListener {
            name: main_name.clone(),
            bind: listen,
            protocol: main_protocol,
            advertised_host: advertised_host.clone(),
            advertised_port: main_port,
        }];
        listeners.extend(file.other_listeners);
        let cluster = ClusterConfig {
            broker_role: roles.broker,
            controller_role: roles.controller,
            controller_listen: file.controller_listen,
            voters: file.voters,
            advertised: Listener {
                name: main_name,
                host: advertised_host,
                port: main_port,
            },
            listener_protocol: main_protocol,
            listeners,
            controller_protocol: file
                .controller_protocol
                .unwrap_or(crate::security::SecurityProtocol::Plaintext),
        };
        cluster.check_quorum(broker.node_id)?;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        // Absolute: glommio's directory sync fails with EBADF on a relative
        // path, which made every topic creation under the default `data`
        // fail with KAFKA_STORAGE_ERROR.
        let data_dir = std::path::absolute(&data_dir).map_err(|source| ConfigError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        Ok(Config {
            listen,
            cluster,
            cluster_id: None,
            directory_id: None,
            ssl,
            data_dir,
            shards,
            cores,
            tuning,
            broker,
        })
    }
}

/// Shards asked for (flag or file), else one per listed core, else one
/// per core this process may use.
fn shard_count(asked: Option<usize>, cores: &Cores) -> Result<usize, ConfigError> {
    let listed = match cores {
        Cores::List(list) => Some(list.len()),
        Cores::Auto | Cores::Unpinned => None,
    };
    let shards = asked.or(listed).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if shards == 0 || shards > limits::SHARDS_MAX {
        return Err(ConfigError::Shards(limits::SHARDS_MAX));
    }
    if let Some(cores) = listed.filter(|&n| n != shards) {
        return Err(ConfigError::CoresNotShards { cores, shards });
    }
    Ok(shards)
}

/// The host clients are told when advertised.listeners does not name one:
/// the host `listeners` wrote, or this machine's host name for an empty
/// host (as Kafka does). A wildcard address cannot be advertised.
pub(super) fn advertised_from_listener(
    written: Option<&str>,
    listen: SocketAddr,
) -> Result<String, ConfigError> {
    match written {
        None => Ok(listen.ip().to_string()),
        Some("") => Ok(machine_host_name()),
        Some(host)
            if host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified()) =>
        {
            Err(ConfigError::UnspecifiedListener(host.to_string()))
        }
        Some(host) => Ok(host.to_string()),
    }
}

fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn parse_in<T>(value: &str, min: T, max: T) -> Result<T, ValueError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = value
        .trim()
        .parse()
        .map_err(|_| ValueError::NotNumber(value.to_string()))?;
    if v < min || v > max {
        return Err(ValueError::out_of_range(v, min, max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
