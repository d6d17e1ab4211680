//! The formats of the files corelog keeps, and the versions this binary
//! reads (docs/storage-formats.md lists them for operators).
//!
//! Two kinds of version guard a data directory across upgrades:
//! - The **storage format** of the whole directory
//!   (`corelog.storage.format.version` in meta.properties): a binary refuses
//!   to start on a directory written by a newer one, before it opens a file.
//!   Files without a version of their own (raft.log frames, indexes,
//!   producer snapshots) would otherwise read as damaged to an older binary,
//!   which cuts or rebuilds damaged files. A directory written before the
//!   key existed is format 1.
//! - **Per-file versions** where the file has one: Kafka's own (batch magic,
//!   the checkpoints' version line, meta.properties' `version`,
//!   partition.metadata's `version:`) and the topic catalog's `format`
//!   (`metadata::CATALOG_FORMAT`).
//!
//! A newer binary reads every older format it lists here; the fixture test
//! (tests/storage_fixtures.rs) starts this binary on data directories
//! written by earlier versions and reads every record and committed offset
//! back.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

/// The storage format this binary writes.
pub const STORAGE_FORMAT: u32 = 1;
/// The oldest storage format this binary reads.
pub const STORAGE_FORMAT_OLDEST: u32 = 1;
/// The key in meta.properties that records it.
pub const STORAGE_FORMAT_KEY: &str = "corelog.storage.format.version";
/// A directory whose meta.properties predates the key.
pub const STORAGE_FORMAT_UNMARKED: u32 = 1;

/// Partition directories `inventory` looks into at most: enough to see
/// every kind of file, bounded however many partitions a node holds.
const PARTITION_DIRS_SAMPLED_MAX: usize = 10_000;
/// Files of one partition directory `inventory` looks at, at most.
const FILES_PER_DIR_MAX: usize = 10_000;

/// One kind of file and the versions of it found in a data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub files: u64,
    /// Version (as the file records it) -> how many files carry it.
    pub versions: BTreeMap<String, u64>,
}

/// What `corelog storage info` prints: per kind of file, how many there
/// are and the versions they carry. Read-only and bounded; a file that
/// cannot be read counts under the version "unreadable".
pub fn inventory(dir: &Path) -> BTreeMap<&'static str, Found> {
    let mut found: BTreeMap<&'static str, Found> = BTreeMap::new();
    let mut note = |kind: &'static str, version: String| {
        let entry = found.entry(kind).or_default();
        entry.files += 1;
        *entry.versions.entry(version).or_default() += 1;
    };
    if let Ok(text) = fs::read_to_string(dir.join(super::META_PROPERTIES)) {
        let key = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_string())
        };
        note(
            "meta.properties",
            key("version").map_or_else(|| "no version".into(), |v| format!("version {v}")),
        );
        note(
            "storage format (meta.properties)",
            key(STORAGE_FORMAT_KEY).map_or_else(
                || format!("format {STORAGE_FORMAT_UNMARKED} (not marked yet)"),
                |v| format!("format {v}"),
            ),
        );
    }
    if let Ok(bytes) = fs::read(dir.join(crate::metadata::CATALOG_FILE)) {
        note(
            "topic catalog (corelog-metadata.json)",
            catalog_format(&bytes),
        );
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten().take(PARTITION_DIRS_SAMPLED_MAX) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Ok(files) = fs::read_dir(&path) else {
            continue;
        };
        for file in files.flatten().take(FILES_PER_DIR_MAX) {
            let name = file.file_name().to_string_lossy().into_owned();
            let file = file.path();
            match classify(&name) {
                Some(Kind::Segment) => note("segments (.log)", batch_magic(&file)),
                Some(Kind::Index) => note("offset and time indexes", "no version (Kafka's)".into()),
                Some(Kind::Checkpoint(kind)) => note(kind, first_line(&file)),
                Some(Kind::PartitionMetadata) => {
                    note("partition.metadata", partition_metadata_version(&file))
                }
                Some(Kind::ProducerSnapshot) => {
                    note("producer snapshots (.snapshot)", "json, format 1".into())
                }
                Some(Kind::Raft(kind)) => note(kind, "frames, storage format".into()),
                None => {}
            }
        }
    }
    found
}

enum Kind {
    Segment,
    Index,
    Checkpoint(&'static str),
    PartitionMetadata,
    ProducerSnapshot,
    Raft(&'static str),
}

fn classify(name: &str) -> Option<Kind> {
    Some(match name {
        "leader-epoch-checkpoint" => Kind::Checkpoint("leader-epoch-checkpoint"),
        "log-start-offset-checkpoint" => Kind::Checkpoint("log-start-offset-checkpoint"),
        "log-truncation-intent" => Kind::Checkpoint("log-truncation-intent"),
        "partition.metadata" => Kind::PartitionMetadata,
        "raft.log" => Kind::Raft("controller raft.log"),
        "hardstate" => Kind::Raft("controller hardstate"),
        "snapshot" => Kind::Raft("controller snapshot"),
        _ if name.ends_with(".log") => Kind::Segment,
        _ if name.ends_with(".index") || name.ends_with(".timeindex") => Kind::Index,
        _ if name.ends_with(".snapshot") => Kind::ProducerSnapshot,
        _ => return None,
    })
}

/// The record-batch magic of a segment's first batch ("empty" for an empty
/// segment): 2 is the v2 format every batch is stored in.
fn batch_magic(path: &Path) -> String {
    let mut head = [0u8; 17];
    let Ok(mut file) = fs::File::open(path) else {
        return "unreadable".into();
    };
    match file.read_exact(&mut head) {
        Ok(()) => format!("batch magic {}", head[16] as i8),
        Err(_) => "empty".into(),
    }
}

/// A checkpoint's version line (Kafka's checkpoint files start with it).
fn first_line(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => match text.lines().next() {
            Some(line) => format!("version {}", line.trim()),
            None => "empty".into(),
        },
        Err(_) => "unreadable".into(),
    }
}

fn partition_metadata_version(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("version:"))
            .map(|v| format!("version {}", v.trim()))
            .unwrap_or_else(|| "no version".into()),
        Err(_) => "unreadable".into(),
    }
}

fn catalog_format(bytes: &[u8]) -> String {
    match crate::metadata::stored_catalog_format(bytes) {
        Ok(format) => format!("format {format}"),
        Err(_) => "unreadable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_classified_by_kind() {
        assert!(matches!(
            classify("00000000000000000000.log"),
            Some(Kind::Segment)
        ));
        assert!(matches!(
            classify("00000000000000000042.index"),
            Some(Kind::Index)
        ));
        assert!(matches!(
            classify("00000000000000000042.timeindex"),
            Some(Kind::Index)
        ));
        assert!(matches!(
            classify("00000000000000000042.snapshot"),
            Some(Kind::ProducerSnapshot)
        ));
        assert!(matches!(
            classify("partition.metadata"),
            Some(Kind::PartitionMetadata)
        ));
        assert!(matches!(
            classify("leader-epoch-checkpoint"),
            Some(Kind::Checkpoint(_))
        ));
        assert!(matches!(classify("raft.log"), Some(Kind::Raft(_))));
        assert!(classify(".corelog-reserve").is_none());
    }

    #[test]
    fn the_inventory_counts_files_and_their_versions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("orders-0");
        fs::create_dir_all(&p).unwrap();
        let mut batch = vec![0u8; 61];
        batch[16] = 2;
        fs::write(p.join("00000000000000000000.log"), &batch).unwrap();
        fs::write(p.join("00000000000000000005.log"), b"").unwrap();
        fs::write(p.join("00000000000000000000.index"), b"").unwrap();
        fs::write(p.join("leader-epoch-checkpoint"), "0\n1\n0 0\n").unwrap();
        fs::write(p.join("partition.metadata"), "version: 0\ntopic_id: x\n").unwrap();
        fs::write(
            dir.path().join("meta.properties"),
            "version=1\ncluster.id=x\nnode.id=1\n",
        )
        .unwrap();
        let found = inventory(dir.path());
        let segments = &found["segments (.log)"];
        assert_eq!(segments.files, 2);
        assert_eq!(segments.versions["batch magic 2"], 1);
        assert_eq!(segments.versions["empty"], 1);
        assert_eq!(found["leader-epoch-checkpoint"].versions["version 0"], 1);
        assert_eq!(found["partition.metadata"].versions["version 0"], 1);
        assert_eq!(found["meta.properties"].versions["version 1"], 1);
        assert_eq!(
            found["storage format (meta.properties)"].versions["format 1 (not marked yet)"],
            1
        );
    }
}
