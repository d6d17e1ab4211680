//! Reading a server file (`--config`): Kafka's properties format, or TOML
//! when its name ends in `.toml`, bounded in size, into [`FileSettings`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::{properties, ConfigError, Roles, Voter};
use crate::limits;

/// What a server file sets, whichever its format (properties or TOML).
/// Flags go over it; it goes over the embedded defaults.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// Where the client listener binds.
    pub listen: Option<SocketAddr>,
    /// The client listener's name and host as `listeners` writes them.
    pub listener_name: Option<String>,
    /// The client listener's security protocol.
    pub listener_protocol: Option<crate::security::SecurityProtocol>,
    pub listener_host: Option<String>,
    /// What clients are told (advertised.listeners, TOML advertised_host).
    pub advertised_host: Option<String>,
    pub advertised_port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub tuning: Option<PathBuf>,
    /// Broker configs by Kafka name, in the order they apply.
    pub broker: Vec<(String, String)>,
    pub roles: Option<Roles>,
    pub controller_listen: Option<SocketAddr>,
    pub voters: Vec<Voter>,
    /// The client listeners other than the main (inter-broker) one.
    pub other_listeners: Vec<super::ClientListener>,
    /// The controller listener's security protocol.
    pub controller_protocol: Option<crate::security::SecurityProtocol>,
    /// The `ssl.*` and `listener.name.<name>.ssl.*` keys, as written (read
    /// by the `tls` module).
    pub ssl: BTreeMap<String, String>,
}

impl FileSettings {
    /// Reads `--config FILE`: TOML when the name ends in `.toml`, else
    /// Kafka's properties format. Keys a properties file sets that corelog
    /// does not use are reported in one warning.
    pub fn load(path: &Path) -> Result<FileSettings, ConfigError> {
        let text = read_config_file(path)?;
        if path.extension().is_some_and(|e| e == "toml") {
            let file: ServerFile = toml::from_str(&text)
                .map_err(|e| ConfigError::in_file(path)(ConfigError::Toml(e)))?;
            return Ok(file.into_settings());
        }
        let entries = properties::parse_properties(&text).map_err(ConfigError::in_file(path))?;
        let (settings, ignored) =
            properties::settings_from_properties(&entries).map_err(ConfigError::in_file(path))?;
        if !ignored.is_empty() {
            log::warn!(
                "{}: ignoring {} config(s) corelog does not use: {}",
                path.display(),
                ignored.len(),
                ignored.join(", ")
            );
        }
        if entries.contains_key("zookeeper.connect") {
            log::warn!(
                "{}: zookeeper.connect is ignored: corelog keeps its metadata in its own \
                 controller quorum (KRaft), no ZooKeeper needed; without process.roles and \
                 controller.quorum.voters this node is a single-node cluster",
                path.display()
            );
        }
        Ok(settings)
    }
}

/// The Kafka keys a server file writes, as written and in its order: every
/// entry of a properties file, the `[kafka]` table of a TOML file.
/// `serve --check-config` reads them for what the built [`super::Config`]
/// no longer shows: the keys corelog ignores and the listeners by name.
pub fn written_keys(path: &Path) -> Result<IndexMap<String, String>, ConfigError> {
    let text = read_config_file(path)?;
    if path.extension().is_some_and(|e| e == "toml") {
        let file: ServerFile =
            toml::from_str(&text).map_err(|e| ConfigError::in_file(path)(ConfigError::Toml(e)))?;
        return Ok(file.into_settings().broker.into_iter().collect());
    }
    properties::parse_properties(&text).map_err(ConfigError::in_file(path))
}

/// A config file's text, bounded in size; a file that is not UTF-8 is
/// read as ISO-8859-1, java.util.Properties' own encoding.
fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let cannot = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(limits::CONFIG_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limits::CONFIG_FILE_BYTES_MAX {
        return Err(ConfigError::FileTooLarge {
            path: path.to_path_buf(),
            max: limits::CONFIG_FILE_BYTES_MAX,
        });
    }
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => encoding_rs::WINDOWS_1252
            .decode(e.as_bytes())
            .0
            .into_owned(),
    })
}

/// The TOML server file (`--config FILE.toml`): the same settings as the
/// flags, and Kafka broker configs by their `server.properties` names.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<SocketAddr>,
    pub advertised_host: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub tuning: Option<PathBuf>,
    pub kafka: BTreeMap<String, toml::Value>,
}

impl ServerFile {
    pub(super) fn into_settings(self) -> FileSettings {
        let broker = self
            .kafka
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                (key, value)
            })
            .collect();
        FileSettings {
            listen: self.listen,
            advertised_host: self.advertised_host,
            data_dir: self.data_dir,
            shards: self.shards,
            tuning: self.tuning,
            broker,
            ..FileSettings::default()
        }
    }
}
