//! What `corelog serve --check-config` finds in a configuration beyond what
//! [`Config::build`] refuses: settings that are each valid but contradict
//! one another (a minimum ISR no topic can reach, listeners that clash, a
//! quorum without this node), keys corelog ignores, and a data directory
//! the broker could not use.
//!
//! [`contradictions`] is a pure function of the built config, the keys the
//! server file wrote and the cores this process may use, so it is tested
//! here on literal files. [`data_dir_findings`] looks at the file system,
//! read-only (metadata and `access(2)`): a check must not create or touch
//! the directory it checks. [`build_error`] turns the error that stopped
//! [`Config::build`] into the same one-line shape, naming its key.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use indexmap::IndexMap;

use super::{keys, parse_listeners, BrokerDefaults, Config, ConfigError};
use crate::shard::placement;

/// Whether a finding stops the configuration from passing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, about one key: printed as `error: KEY: MESSAGE` or
/// `warning: KEY: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub key: String,
    pub message: String,
}

impl Finding {
    fn error(key: &str, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            key: key.to_string(),
            message,
        }
    }

    fn warning(key: &str, message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            key: key.to_string(),
            message,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}: {}", self.key, self.message)
    }
}

/// The contradictions between the settings of `config`, and the keys of
/// `written` (the server file's entries, [`super::written_keys`]) that
/// corelog ignores. `allowed_cores` is this process's affinity mask
/// ([`placement::allowed_cores`]).
pub fn contradictions(
    config: &Config,
    written: &IndexMap<String, String>,
    allowed_cores: &[usize],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    replication(&config.broker, !config.cluster.has_quorum(), &mut findings);
    internal_topics(written, &mut findings);
    listeners(config, written, &mut findings);
    quorum(config, written, &mut findings);
    cores(config, allowed_cores, &mut findings);
    ignored_keys(written, &mut findings);
    findings
}

/// Replication factors against the minimum ISR, and against the one broker
/// of a single-node cluster.
fn replication(broker: &BrokerDefaults, single_node: bool, findings: &mut Vec<Finding>) {
    let min_isr = broker.min_insync_replicas;
    let factor = i32::from(broker.default_replication_factor);
    if min_isr > factor {
        findings.push(Finding::error(
            "min.insync.replicas",
            format!(
                "{min_isr} is larger than default.replication.factor ({factor}): acks=all \
                 writes to topics created with the default factor would fail with \
                 NOT_ENOUGH_REPLICAS; set min.insync.replicas to at most {factor} or raise \
                 default.replication.factor"
            ),
        ));
    }
    let offsets_factor = i32::from(broker.offsets_topic_replication_factor);
    if offsets_factor < min_isr {
        findings.push(Finding::error(
            "offsets.topic.replication.factor",
            format!(
                "{offsets_factor} is smaller than min.insync.replicas ({min_isr}): the group \
                 coordinator commits offsets with acks=all, so every commit would fail; set \
                 it to at least {min_isr}"
            ),
        ));
    }
    if single_node && factor > 1 {
        findings.push(Finding::error(
            "default.replication.factor",
            format!(
                "{factor} needs {factor} brokers, but without controller.quorum.voters this \
                 node is a single-node cluster: creating a topic without an explicit factor \
                 would fail with INVALID_REPLICATION_FACTOR; set it to 1"
            ),
        ));
    }
}

/// The transaction state topic's keys: corelog ignores them (no
/// transactions yet), but a file that contradicts itself is worth saying.
fn internal_topics(written: &IndexMap<String, String>, findings: &mut Vec<Finding>) {
    let number = |key: &str| written.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    if let (Some(min_isr), Some(factor)) = (
        number("transaction.state.log.min.isr"),
        number("transaction.state.log.replication.factor"),
    ) {
        if min_isr > factor {
            findings.push(Finding::warning(
                "transaction.state.log.min.isr",
                format!(
                    "{min_isr} is larger than transaction.state.log.replication.factor \
                     ({factor}); corelog ignores both (no transactions yet), but Kafka would \
                     fail every transaction; set it to at most {factor}"
                ),
            ));
        }
    }
}

/// Whether two bound addresses take the same port on a common address.
fn addresses_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Client and controller listeners that clash, advertised listeners
/// without a listener, a voter entry whose port is not the one bound.
fn listeners(config: &Config, written: &IndexMap<String, String>, findings: &mut Vec<Finding>) {
    let cluster = &config.cluster;
    // A controller-only node serves Kafka requests on its controller
    // listener: the two addresses are one listener there.
    if let Some(controller) = cluster.controller_listen.filter(|_| cluster.broker_role) {
        if addresses_clash(config.listen, controller) {
            findings.push(Finding::error(
                "listeners",
                format!(
                    "the client listener ({}) and the controller listener ({controller}) \
                     bind the same port; give each a port of its own (Kafka's are 9092 \
                     for clients and 9093 for the controller)",
                    config.listen,
                ),
            ));
        }
    }
    // The HTTP listener binds without sharing its port: on a port another
    // listener of this node takes, the node could not start.
    if let Some(http) = config.broker.http_listener.addr {
        let mut others = vec![("client", config.listen)];
        others.extend(cluster.controller_listen.map(|c| ("controller", c)));
        for (what, addr) in others {
            if addresses_clash(http, addr) {
                findings.push(Finding::error(
                    "http.listeners",
                    format!(
                        "the HTTP listener ({http}) and the {what} listener ({addr}) bind the \
                         same port; give the HTTP listener a port of its own (corelog's \
                         default is 9644)"
                    ),
                ));
            }
        }
    }
    // Names `listeners` defines; Kafka's default when it is not written.
    let defined: Vec<String> = match written.get("listeners").map(|v| parse_listeners(v)) {
        Some(Ok(list)) => list.into_iter().map(|l| l.name).collect(),
        Some(Err(_)) => Vec::new(),
        None => vec!["PLAINTEXT".to_string()],
    };
    if let Some(Ok(advertised)) = written
        .get("advertised.listeners")
        .map(|v| parse_listeners(v))
    {
        for listener in advertised.iter().filter(|l| !defined.contains(&l.name)) {
            findings.push(Finding::error(
                "advertised.listeners",
                format!(
                    "names {}, which listeners does not define ({}); every advertised \
                     listener must be one of listeners, by name",
                    listener.name,
                    defined.join(", ")
                ),
            ));
        }
    }
    let node_id = config.broker.node_id;
    let own = cluster.voters.iter().find(|v| v.id == node_id);
    if let (Some(own), Some(bind)) = (own, cluster.controller_listen) {
        if own.port != bind.port() {
            findings.push(Finding::warning(
                "controller.quorum.voters",
                format!(
                    "gives node {node_id} port {} but its controller listener binds port {}; \
                     the other voters would not reach it",
                    own.port,
                    bind.port()
                ),
            ));
        }
    }
}

/// process.roles against the quorum (what `Config::build` accepts but Kafka
/// refuses, or what leaves a cluster without a broker).
fn quorum(config: &Config, written: &IndexMap<String, String>, findings: &mut Vec<Finding>) {
    let cluster = &config.cluster;
    let Some(roles) = written.get("process.roles") else {
        return;
    };
    if cluster.has_quorum() {
        return;
    }
    if !cluster.broker_role {
        findings.push(Finding::error(
            "process.roles",
            format!(
                "{roles:?} without controller.quorum.voters is a controller quorum of one \
                 with no broker to serve clients; list the quorum in controller.quorum.voters \
                 (id@host:port of every controller) and run brokers against it"
            ),
        ));
    } else if cluster.controller_role {
        findings.push(Finding::error(
            "controller.quorum.voters",
            format!(
                "not set, but process.roles is ({roles}): Kafka refuses such a file, and \
                 corelog would run a single-node cluster, its own quorum; set \
                 controller.quorum.voters={}@<host>:<controller port>, or remove \
                 process.roles for a single node",
                config.broker.node_id
            ),
        ));
    }
}

/// The cores shards would be pinned to, against the affinity mask.
fn cores(config: &Config, allowed: &[usize], findings: &mut Vec<Finding>) {
    match placement::plan(config.shards, &config.cores, allowed) {
        Err(why) => findings.push(Finding::error("--cores", why)),
        Ok(plan) if plan.oversubscribed => findings.push(Finding::warning("--cores", plan.why)),
        Ok(_) => {}
    }
}

/// Keys a server file sets that corelog does not read: Kafka's thread
/// pools, flush policy, ZooKeeper, or typos.
fn ignored_keys(written: &IndexMap<String, String>, findings: &mut Vec<Finding>) {
    for key in written.keys() {
        let known = keys::find(key);
        if known.is_some_and(|k| matches!(k.kind, keys::Kind::Node))
            || BrokerDefaults::knows(key)
            || super::is_ssl_key(key)
        {
            continue;
        }
        let message = if key.starts_with("log.flush.") {
            "ignored: corelog does not flush by count or time; acks=1 and acks=all are \
             answered once the batch is fdatasync'ed (group commit)"
                .to_string()
        } else if key.starts_with("zookeeper.") {
            "ignored: corelog keeps its metadata in its own controller quorum (KRaft), no \
             ZooKeeper"
                .to_string()
        } else if let Some(key) = known.filter(|k| matches!(k.kind, keys::Kind::Ignored)) {
            lowercase_first(key.doc)
        } else {
            "ignored: not a config corelog knows (a Kafka key corelog does not implement, \
             or a typo); docs/configuration.md lists the keys"
                .to_string()
        };
        findings.push(Finding::warning(key, message));
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What stops `dir` from being this node's data directory, found without
/// writing: not a directory, or not writable (nor creatable) by this user.
/// `access(2)` answers for this process's user, so run the check as the
/// broker's user (`sudo -u corelog`); it also reports a read-only mount,
/// for root too.
pub fn data_dir_findings(dir: &Path) -> Vec<Finding> {
    let key = "log.dirs";
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => vec![Finding::error(
            key,
            format!(
                "{} is a file, not a directory; name a directory (it is created when missing)",
                dir.display()
            ),
        )],
        Ok(_) => writable(dir)
            .err()
            .map(|why| {
                Finding::error(
                    key,
                    format!(
                        "{} is not writable by this user: {why}; give it to the broker's user \
                         (chown) or name another directory",
                        dir.display()
                    ),
                )
            })
            .into_iter()
            .collect(),
        Err(e) if absent(&e) => missing_dir_findings(dir),
        Err(e) => vec![Finding::error(
            key,
            format!("cannot read {}: {e}", dir.display()),
        )],
    }
}

/// A data directory that does not exist yet is created at start: its
/// nearest existing ancestor must be a directory this user may write.
fn missing_dir_findings(dir: &Path) -> Vec<Finding> {
    let key = "log.dirs";
    // Bounded by the path's depth: each step drops one component.
    for ancestor in dir.ancestors().skip(1) {
        let meta = match std::fs::metadata(ancestor) {
            Ok(meta) => meta,
            Err(e) if absent(&e) => continue,
            Err(e) => {
                return vec![Finding::error(
                    key,
                    format!("cannot read {}: {e}", ancestor.display()),
                )]
            }
        };
        if !meta.is_dir() {
            return vec![Finding::error(
                key,
                format!(
                    "{} cannot be created: {} is a file, not a directory",
                    dir.display(),
                    ancestor.display()
                ),
            )];
        }
        return match writable(ancestor) {
            Ok(()) => Vec::new(),
            Err(why) => vec![Finding::error(
                key,
                format!(
                    "{} does not exist and cannot be created: {} is not writable by this \
                     user: {why}; create it for the broker's user or name another directory",
                    dir.display(),
                    ancestor.display()
                ),
            )],
        };
    }
    Vec::new()
}

/// Whether a path does not exist: not found, or under a file (ENOTDIR),
/// which the ancestors' walk then names.
fn absent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// `access(dir, W_OK | X_OK)`: whether this process's user may create
/// files in `dir`, asked without creating any.
#[allow(unsafe_code)]
fn writable(dir: &Path) -> Result<(), std::io::Error> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the
    // call; access(2) only reads it.
    let result = unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The error that stopped [`Config::build`], as a finding naming the key
/// (or the flag) it is about.
pub fn build_error(error: &ConfigError) -> Finding {
    match error {
        ConfigError::InvalidValue { key, value, source } => {
            Finding::error(key, format!("invalid value {value:?}: {source}"))
        }
        ConfigError::InFile { path, source } => {
            let inner = build_error(source);
            Finding::error(
                &inner.key,
                format!("{} (in {})", inner.message, path.display()),
            )
        }
        other => Finding::error(build_error_key(other), other.to_string()),
    }
}

/// The key (or flag) a build error is about, for the ones whose message
/// names no single key up front.
fn build_error_key(error: &ConfigError) -> &str {
    match error {
        ConfigError::InvalidValue { key, .. } => key,
        ConfigError::UnknownBrokerConfig(key) | ConfigError::UnknownTopicConfig(key) => key,
        ConfigError::InFile { source, .. } => build_error_key(source),
        ConfigError::Read { .. }
        | ConfigError::FileTooLarge { .. }
        | ConfigError::Toml(_)
        | ConfigError::PropertiesLine { .. }
        | ConfigError::Properties(_)
        | ConfigError::Value(_) => "--config",
        ConfigError::QueuedBelowRequestMax { .. } => "queued.max.request.bytes",
        ConfigError::Listener(_)
        | ConfigError::NoControllerListener(_)
        | ConfigError::ControllerListenerWithoutRole(_)
        | ConfigError::ManyControllerListeners
        | ConfigError::NoClientListener
        | ConfigError::ClientListenerWithoutRole(_)
        | ConfigError::ManyClientListeners(_) => "listeners",
        ConfigError::ControllerNotVoter(_) | ConfigError::BrokerWithoutVoters => {
            "controller.quorum.voters"
        }
        ConfigError::VoterWithoutRole(_) => "process.roles",
        ConfigError::TuningRead { .. }
        | ConfigError::TuningToml { .. }
        | ConfigError::TuningCores(_) => "--tuning",
        ConfigError::TuningBound { knob, .. } => knob,
        ConfigError::OverrideNotKeyValue(_) => "--override",
        ConfigError::Shards(_) => "--shards",
        ConfigError::CoresNotShards { .. } => "--cores",
        ConfigError::UnspecifiedListener(_) => "advertised.listeners",
        ConfigError::DataDir { .. } => "log.dirs",
    }
}

/// One line saying what the configuration runs: node, roles, listeners,
/// quorum, data directory and shards.
pub fn summary(config: &Config) -> String {
    let cluster = &config.cluster;
    let roles = match (cluster.broker_role, cluster.controller_role) {
        (true, true) => "broker,controller",
        (true, false) => "broker",
        _ => "controller",
    };
    let mut listeners = Vec::new();
    if cluster.broker_role {
        listeners.push(format!(
            "{}://{} (advertised {}:{})",
            cluster.advertised.name,
            config.listen,
            cluster.advertised.host,
            cluster.advertised.port
        ));
    }
    if let Some(controller) = cluster.controller_listen {
        listeners.push(format!("controller {controller}"));
    }
    if let Some(http) = config.broker.http_listener.addr {
        listeners.push(format!("http {http}"));
    }
    let quorum = if cluster.has_quorum() {
        let voters: Vec<String> = cluster
            .voters
            .iter()
            .map(|v| format!("{}@{}:{}", v.id, v.host, v.port))
            .collect();
        format!("voters {}", voters.join(","))
    } else {
        "single node (its own quorum)".to_string()
    };
    format!(
        "node {}, roles {roles}, listeners {}, {quorum}, log dir {}, shards {} (cores {})",
        config.broker.node_id,
        listeners.join(" + "),
        config.data_dir.display(),
        config.shards,
        config.cores
    )
}

#[cfg(test)]
mod tests;
