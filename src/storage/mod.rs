//! The storage identity of a node, as Kafka's `kafka-storage.sh` keeps it:
//! `meta.properties` in the data directory says which cluster (cluster.id)
//! and which node (node.id) the data belongs to, and names the directory
//! (directory.id).
//!
//! Runs on the main thread before any shard starts ([`prepare`]) and in the
//! `corelog storage` tool. Invariants: a node never starts on data of
//! another cluster or another node; the topic catalog's cluster id equals
//! meta.properties'; a node that shares a quorum never invents a cluster
//! id (it is given one by `corelog storage format`), while a single node
//! on embedded defaults formats itself on first start.

pub mod formats;

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::config::{parse_properties, Config, ConfigError};
use crate::metadata::{kafka_uuid, Catalog};

pub const META_PROPERTIES: &str = "meta.properties";

/// Why a node's storage identity cannot be read, written or trusted. The
/// messages are what an operator reads at start-up and from `corelog
/// storage`, so each names the file or directory and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `meta.properties` exists but does not parse.
    #[error("{} is damaged: {source}", path.display())]
    Damaged {
        path: PathBuf,
        source: Box<StorageError>,
    },
    /// `meta.properties` is not in the properties format (boxed: a config
    /// error is large, and this one is rare).
    #[error(transparent)]
    Properties(Box<ConfigError>),
    #[error("no {0}")]
    MissingKey(&'static str),
    #[error("unsupported version {0}")]
    UnsupportedVersion(String),
    /// The directory was written by a newer corelog: nothing in it is
    /// opened (an older binary would read its newer files as damaged).
    #[error(
        "{} says storage format {found}, written by a newer corelog; this binary reads \
         formats {oldest} to {newest}: run the newer version (or restore this directory from \
         before the upgrade)",
        path.display()
    )]
    NewerStorageFormat {
        path: PathBuf,
        found: u32,
        oldest: u32,
        newest: u32,
    },
    #[error("{0} is not a number")]
    NotNumber(&'static str),
    #[error(
        "cluster id {0:?} is not a valid Kafka Uuid (22 characters of URL-safe base64; \
         `corelog storage random-uuid` makes one)"
    )]
    InvalidClusterId(String),
    #[error("cluster id {0:?} is the reserved all-zero id")]
    ReservedClusterId(String),
    #[error(
        "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
         directory and format the others.",
        .0.display()
    )]
    AlreadyFormatted(PathBuf),
    #[error(
        "{} already holds data of cluster {stored}; format it with -t {stored}, or \
         choose an empty directory",
        dir.display()
    )]
    HoldsOtherCluster { dir: PathBuf, stored: String },
    /// The topic catalog could not be read for its cluster id.
    #[error("{}: {source}", dir.display())]
    Catalog {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is formatted for node.id {found}, but this node's node.id is {expected}",
        path.display()
    )]
    OtherNode {
        path: PathBuf,
        found: i32,
        expected: i32,
    },
    #[error(
        "{} is formatted for cluster {found}, but this node belongs to cluster {expected}; \
         use a data directory of this cluster, or format an empty one with \
         `corelog storage format -t {expected} -c <config>`",
        path.display()
    )]
    OtherCluster {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "{} is formatted for cluster {formatted}, but the topic catalog in {} belongs to \
         cluster {stored}",
        path.display(),
        dir.display()
    )]
    CatalogOfOtherCluster {
        path: PathBuf,
        formatted: String,
        dir: PathBuf,
        stored: String,
    },
    #[error(
        "{} is not formatted: a node with controller.quorum.voters needs its cluster's id. \
         Run once per node, with one id for the whole cluster: \
         `corelog storage format -t <cluster-id> -c {}` (`corelog storage random-uuid` \
         makes an id)",
        dir.display(),
        config.display()
    )]
    NotFormatted { dir: PathBuf, config: PathBuf },
}

/// The contents of `meta.properties` (Kafka's version 1, KRaft).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: String,
    /// The directory's storage format (`formats::STORAGE_FORMAT_KEY`);
    /// `formats::STORAGE_FORMAT_UNMARKED` when the file predates the key.
    pub storage_format: u32,
    /// Whether the file names the storage format (it is written at start
    /// when it does not).
    pub storage_format_marked: bool,
}

impl MetaProperties {
    /// A new identity for `node_id` in `cluster_id`, with a fresh directory id.
    pub fn new(cluster_id: &str, node_id: i32) -> MetaProperties {
        MetaProperties {
            cluster_id: cluster_id.to_string(),
            node_id,
            directory_id: random_uuid(),
            storage_format: formats::STORAGE_FORMAT,
            storage_format_marked: true,
        }
    }

    /// Reads `dir/meta.properties`; None when the directory is not formatted.
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>, StorageError> {
        let path = dir.join(META_PROPERTIES);
        let text = match crate::io::read_whole_file_blocking(&path) {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    let source = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
                    return Err(StorageError::Read { path, source });
                }
            },
            Ok(None) => return Ok(None),
            Err(source) => return Err(StorageError::Read { path, source }),
        };
        let meta = MetaProperties::parse(&text).map_err(|e| StorageError::Damaged {
            path: path.clone(),
            source: Box::new(e),
        })?;
        if !(formats::STORAGE_FORMAT_OLDEST..=formats::STORAGE_FORMAT)
            .contains(&meta.storage_format)
        {
            return Err(StorageError::NewerStorageFormat {
                path,
                found: meta.storage_format,
                oldest: formats::STORAGE_FORMAT_OLDEST,
                newest: formats::STORAGE_FORMAT,
            });
        }
        Ok(Some(meta))
    }

    fn parse(text: &str) -> Result<MetaProperties, StorageError> {
        let entries = parse_properties(text).map_err(|e| StorageError::Properties(Box::new(e)))?;
        let get = |key: &'static str| {
            entries
                .get(key)
                .map(String::as_str)
                .ok_or(StorageError::MissingKey(key))
        };
        // Version 0 is what ZooKeeper-era Kafka wrote (broker.id, no
        // directory id); version 1 is KRaft's.
        let (node_key, directory_id) = match get("version")? {
            "0" => ("broker.id", String::new()),
            "1" => ("node.id", get("directory.id")?.to_string()),
            other => return Err(StorageError::UnsupportedVersion(other.to_string())),
        };
        let cluster_id = get("cluster.id")?.to_string();
        validate_cluster_id(&cluster_id)?;
        let node_id = get(node_key)?
            .parse()
            .map_err(|_| StorageError::NotNumber(node_key))?;
        let (storage_format, storage_format_marked) = match entries.get(formats::STORAGE_FORMAT_KEY)
        {
            Some(v) => (
                v.trim()
                    .parse()
                    .map_err(|_| StorageError::NotNumber(formats::STORAGE_FORMAT_KEY))?,
                true,
            ),
            None => (formats::STORAGE_FORMAT_UNMARKED, false),
        };
        Ok(MetaProperties {
            cluster_id,
            node_id,
            directory_id,
            storage_format,
            storage_format_marked,
        })
    }

    /// The directory id as a Uuid (None for a malformed one).
    pub fn directory_uuid(&self) -> Option<Uuid> {
        crate::metadata::parse_kafka_uuid(&self.directory_id)
    }

    /// The file's text, in Kafka's layout.
    pub fn to_text(&self) -> String {
        format!(
            "#\n#Written by corelog\ncluster.id={}\n{}={}\ndirectory.id={}\nnode.id={}\n\
             version=1\n",
            self.cluster_id,
            formats::STORAGE_FORMAT_KEY,
            self.storage_format,
            self.directory_id,
            self.node_id
        )
    }

    /// The one-line summary `storage info` prints, as Kafka's tool does.
    pub fn summary(&self) -> String {
        format!(
            "{{cluster.id={}, directory.id={}, node.id={}, version=1}}",
            self.cluster_id, self.directory_id, self.node_id
        )
    }

    /// [`MetaProperties::write`], its error naming the file.
    fn store(&self, dir: &Path) -> Result<(), StorageError> {
        self.write(dir).map_err(|source| StorageError::Write {
            path: dir.join(META_PROPERTIES),
            source,
        })
    }

    /// Writes `dir/meta.properties` durably: temp file, fsync, rename,
    /// directory fsync, so a crash leaves the old file or the new one.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        crate::io::create_dir_all_blocking(dir)?;
        crate::io::replace_file_blocking(dir, META_PROPERTIES, self.to_text().as_bytes())
    }
}

/// A new cluster or directory id as Kafka makes one (`Uuid.randomUuid`):
/// URL-safe base64 of a v4 UUID, 22 characters, never starting with `-`
/// (it would read as a command-line flag) and never the reserved all-zero
/// id.
pub fn random_uuid() -> String {
    loop {
        let id = Uuid::new_v4();
        let text = kafka_uuid(id);
        if !text.starts_with('-') && !id.is_nil() {
            return text;
        }
    }
}

/// Whether `id` is a Kafka Uuid in its string form: 22 characters of the
/// URL-safe base64 alphabet, which decode to 16 bytes, and not all zero.
pub fn validate_cluster_id(id: &str) -> Result<(), StorageError> {
    let well_formed = id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(StorageError::InvalidClusterId(id.to_string()));
    }
    if id.bytes().all(|b| b == b'A') {
        return Err(StorageError::ReservedClusterId(id.to_string()));
    }
    Ok(())
}

/// What [`format`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum FormatOutcome {
    Formatted(MetaProperties),
    /// The directory was formatted already and `--ignore-formatted` was given.
    LeftAlone(MetaProperties),
}

/// `corelog storage format`: writes meta.properties for `node_id` of
/// `cluster_id` into `dir`, creating it. A formatted directory is refused
/// unless `ignore_formatted`, and then left as it is. A directory holding a
/// catalog of another cluster (written before meta.properties existed) is
/// refused: formatting it would hand that data to a different cluster.
pub fn format(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
    ignore_formatted: bool,
) -> Result<FormatOutcome, StorageError> {
    validate_cluster_id(cluster_id)?;
    if let Some(existing) = MetaProperties::read(dir)? {
        if ignore_formatted {
            return Ok(FormatOutcome::LeftAlone(existing));
        }
        return Err(StorageError::AlreadyFormatted(dir.to_path_buf()));
    }
    if let Some(stored) = catalog_cluster_id(dir)? {
        if stored != cluster_id {
            return Err(StorageError::HoldsOtherCluster {
                dir: dir.to_path_buf(),
                stored,
            });
        }
    }
    let meta = MetaProperties::new(cluster_id, node_id);
    meta.write(dir).map_err(|source| StorageError::Write {
        path: dir.join(META_PROPERTIES),
        source,
    })?;
    Ok(FormatOutcome::Formatted(meta))
}

fn catalog_cluster_id(dir: &Path) -> Result<Option<String>, StorageError> {
    Catalog::stored_cluster_id(dir).map_err(|source| StorageError::Catalog {
        dir: dir.to_path_buf(),
        source,
    })
}

/// The problems `storage info` and start-up find in `dir` for `config`.
pub fn check(dir: &Path, meta: &MetaProperties, config: &Config) -> Result<(), StorageError> {
    let path = dir.join(META_PROPERTIES);
    if meta.node_id != config.broker.node_id {
        return Err(StorageError::OtherNode {
            path,
            found: meta.node_id,
            expected: config.broker.node_id,
        });
    }
    if let Some(expected) = &config.cluster_id {
        if *expected != meta.cluster_id {
            return Err(StorageError::OtherCluster {
                path,
                found: meta.cluster_id.clone(),
                expected: expected.clone(),
            });
        }
    }
    if let Some(stored) = catalog_cluster_id(dir)? {
        if stored != meta.cluster_id {
            return Err(StorageError::CatalogOfOtherCluster {
                path,
                formatted: meta.cluster_id.clone(),
                dir: dir.to_path_buf(),
                stored,
            });
        }
    }
    Ok(())
}

/// At start, before any shard: checks this node's storage identity, or
/// creates it for a single node, and returns it. A ZooKeeper-era
/// meta.properties (version 0, no directory id) is rewritten as version 1
/// with a new directory id, as Kafka does when such a directory joins
/// KRaft.
///
/// A node configured with a controller quorum must have been formatted
/// (the cluster id is shared and comes from `corelog storage format`). A
/// single node formats its own storage on first start, keeping the cluster
/// id of a catalog written before meta.properties existed.
pub fn prepare(
    config: &Config,
    config_file: Option<&Path>,
) -> Result<MetaProperties, StorageError> {
    let dir = &config.data_dir;
    if let Some(mut meta) = MetaProperties::read(dir)? {
        check(dir, &meta, config)?;
        // Older files are brought up to date in one write: a directory id
        // for a ZooKeeper-era file, the storage format key for a file
        // written before it existed (that is storage format 1).
        let unmarked = !meta.storage_format_marked;
        let unnamed = meta.directory_id.is_empty();
        if unmarked || unnamed {
            meta.storage_format_marked = true;
            if unnamed {
                meta.directory_id = random_uuid();
            }
            meta.store(dir)?;
            log::info!(
                "{}: meta.properties now names the storage format ({}) and the log directory \
                 ({})",
                dir.display(),
                meta.storage_format,
                meta.directory_id
            );
        }
        return Ok(meta);
    }
    if config.cluster.has_quorum() {
        return Err(not_formatted(dir, config_file));
    }
    let cluster_id = match catalog_cluster_id(dir)? {
        Some(stored) => stored,
        None => config.cluster_id.clone().unwrap_or_else(random_uuid),
    };
    validate_cluster_id(&cluster_id)?;
    let meta = MetaProperties::new(&cluster_id, config.broker.node_id);
    meta.store(dir)?;
    log::info!(
        "formatted {} for cluster {cluster_id}, node {}, directory id {}",
        dir.display(),
        meta.node_id,
        meta.directory_id
    );
    Ok(meta)
}

fn not_formatted(dir: &Path, config_file: Option<&Path>) -> StorageError {
    StorageError::NotFormatted {
        dir: dir.to_path_buf(),
        config: config_file.map_or_else(|| PathBuf::from("<config>"), Path::to_path_buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_log_dir_gets_a_directory_id_that_stays() {
        let config = |dir: &Path| {
            Config::build(&crate::config::ServeArgs {
                data_dir: Some(dir.to_path_buf()),
                shards: Some(1),
                ..Default::default()
            })
            .unwrap()
        };
        // First start: formatted with a new id, kept by the next starts.
        let a = tempfile::tempdir().unwrap();
        let first = prepare(&config(a.path()), None).unwrap();
        let id = first.directory_uuid().expect("a valid directory id");
        assert!(!id.is_nil());
        assert_eq!(prepare(&config(a.path()), None).unwrap(), first);
        // Another directory, another id.
        let b = tempfile::tempdir().unwrap();
        let other = prepare(&config(b.path()), None).unwrap();
        assert_ne!(other.directory_id, first.directory_id);
        // A ZooKeeper-era file gets one, written as version 1, and keeps it.
        let c = tempfile::tempdir().unwrap();
        std::fs::write(
            c.path().join(META_PROPERTIES),
            format!("version=0\nbroker.id=1\ncluster.id={}\n", first.cluster_id),
        )
        .unwrap();
        let upgraded = prepare(&config(c.path()), None).unwrap();
        assert!(upgraded.directory_uuid().is_some());
        let text = std::fs::read_to_string(c.path().join(META_PROPERTIES)).unwrap();
        assert!(text.contains("version=1"), "{text}");
        assert_eq!(prepare(&config(c.path()), None).unwrap(), upgraded);
    }

    #[test]
    fn random_ids_are_valid_kafka_uuids() {
        for _ in 0..1000 {
            let id = random_uuid();
            assert_eq!(id.len(), 22);
            assert!(!id.starts_with('-'));
            validate_cluster_id(&id).unwrap();
        }
        assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qg").is_ok());
        for bad in [
            "",
            "short",
            "MkU3OEVBNTcwNTJENDM2Qg=",
            "MkU3OEVBNTcwNTJENDM2Q+",
            "AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(validate_cluster_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn meta_properties_round_trip_and_kafka_files_parse() {
        let meta = MetaProperties::new("MkU3OEVBNTcwNTJENDM2Qg", 3);
        assert_eq!(MetaProperties::parse(&meta.to_text()).unwrap(), meta);
        let kafka = "#\n#Tue Nov 21 10:00:00 UTC 2023\nnode.id=1\n\
                     directory.id=J8aAPcfLQt2bqs1JT_rMgQ\nversion=1\n\
                     cluster.id=MkU3OEVBNTcwNTJENDM2Qg\n";
        let parsed = MetaProperties::parse(kafka).unwrap();
        assert_eq!(parsed.node_id, 1);
        assert_eq!(parsed.directory_id, "J8aAPcfLQt2bqs1JT_rMgQ");
        let zk = "version=0\nbroker.id=5\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n";
        assert_eq!(MetaProperties::parse(zk).unwrap().node_id, 5);
        assert!(MetaProperties::parse("version=2\n").is_err());
        assert!(MetaProperties::parse("version=1\nnode.id=1\n").is_err());
    }

    /// A directory written by a newer corelog is refused before anything
    /// in it is opened, naming the format; one written before the storage
    /// format key existed reads as format 1.
    #[test]
    fn storage_formats_newer_than_this_binary_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = MetaProperties::new("MkU3OEVBNTcwNTJENDM2Qg", 1);
        assert!(meta
            .to_text()
            .contains("corelog.storage.format.version=1\n"));
        meta.storage_format = formats::STORAGE_FORMAT + 1;
        meta.write(dir.path()).unwrap();
        let e = MetaProperties::read(dir.path()).unwrap_err();
        assert!(
            matches!(e, StorageError::NewerStorageFormat { found: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("written by a newer corelog"), "{e}");

        let unmarked = "version=1\nnode.id=1\ndirectory.id=J8aAPcfLQt2bqs1JT_rMgQ\n\
                        cluster.id=MkU3OEVBNTcwNTJENDM2Qg\n";
        let parsed = MetaProperties::parse(unmarked).unwrap();
        assert_eq!(parsed.storage_format, formats::STORAGE_FORMAT_UNMARKED);
        assert!(!parsed.storage_format_marked);
    }

    #[test]
    fn format_refuses_formatted_dirs_unless_told_to_ignore_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node1");
        let id = random_uuid();
        let FormatOutcome::Formatted(meta) = format(&data, &id, 1, false).unwrap() else {
            panic!("not formatted")
        };
        assert_eq!(MetaProperties::read(&data).unwrap(), Some(meta.clone()));
        let err = format(&data, &random_uuid(), 1, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already formatted"), "{err}");
        assert_eq!(
            format(&data, &random_uuid(), 1, true).unwrap(),
            FormatOutcome::LeftAlone(meta)
        );
        assert!(format(&dir.path().join("x"), "not-an-id", 1, false).is_err());
        assert!(!dir.path().join("x").exists());
    }
}
