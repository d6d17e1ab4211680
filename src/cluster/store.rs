//! Durable storage of the controller's Raft log: entries, hard state and the
//! latest snapshot of the metadata image, in `<data>/__cluster_metadata-0/`.
//!
//! Raft reads from memory ([`RaftStore`], raft-rs' MemStorage plus the
//! snapshot with its data); [`RaftFiles`] makes each step durable before
//! Raft may act on it. Files:
//! - `raft.log`: appended entry frames `[len u32][crc32c u32][Entry]`; a
//!   later frame with an index at or below an earlier one replaces that
//!   suffix (Raft overwrote an uncommitted tail). A torn last frame is cut.
//! - `hardstate`, `snapshot`: one frame each, replaced atomically.
//!
//! Nothing read back is trusted: every frame length is checked against the
//! bound and the bytes left before it is used, protobuf bodies are decoded
//! with prost (bounded nesting, lengths checked), files larger than their
//! bound are refused rather than read, and a log whose indexes jump is cut
//! at the jump (raft-rs panics on a gap). [`decode_log`], [`decode_snapshot`]
//! and [`decode_hard_state`] are the pure decoders (the fuzz targets' entry
//! points).

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use prost::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use crate::limits;

pub const METADATA_DIR: &str = "__cluster_metadata-0";

/// Raft's view of the log: entries in memory, the snapshot with its image.
#[derive(Clone)]
pub struct RaftStore {
    pub mem: MemStorage,
    snapshot: Rc<RefCell<Snapshot>>,
}

impl RaftStore {
    /// A store holding what `RaftFiles::load` found (or a fresh quorum of `voters`).
    pub fn new(voters: Vec<u64>, loaded: Loaded) -> raft::Result<RaftStore> {
        let mem = MemStorage::new_with_conf_state(ConfState::from((voters, vec![])));
        let snapshot = match loaded.snapshot {
            Some(snap) => {
                mem.wl().apply_snapshot(snap.clone())?;
                snap
            }
            None => Snapshot::default(),
        };
        let after = snapshot.get_metadata().index;
        let entries: Vec<Entry> = loaded
            .entries
            .into_iter()
            .filter(|e| e.index > after)
            .collect();
        for entry in entries {
            // raft-rs panics on a gap; a damaged log stops at it (what
            // follows is fetched again from the quorum's leader).
            let last = mem.last_index()?;
            if entry.index > last + 1 {
                log::warn!(
                    "metadata log: entry {} follows {last}; the entries from there are dropped",
                    entry.index
                );
                break;
            }
            mem.wl().append(std::slice::from_ref(&entry))?;
        }
        if let Some(mut hs) = loaded.hard_state {
            let last = mem.last_index()?;
            hs.commit = hs.commit.min(last).max(after);
            mem.wl().set_hardstate(hs);
        }
        Ok(RaftStore {
            mem,
            snapshot: Rc::new(RefCell::new(snapshot)),
        })
    }

    pub fn set_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.borrow_mut() = snapshot;
    }
}

impl Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }
    /// The latest snapshot, with the metadata image it was taken of.
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        Ok(self.snapshot.borrow().clone())
    }
}

/// What the files held at start.
#[derive(Default)]
pub struct Loaded {
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// The files; used from a blocking thread (they are Send), one writer.
pub struct RaftFiles {
    dir: PathBuf,
    log: File,
    /// Frames in `raft.log`, so a compaction can tell when to rewrite it.
    frames: usize,
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(bytes).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Splits `data` into valid frames; returns them and the length they cover
/// (a torn or corrupt frame and everything after it is not covered).
fn frames(data: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= 8 {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap());
        if len > limits::CONTROLLER_FRAME_BYTES_MAX || data.len() - pos - 8 < len {
            break;
        }
        let body = &data[pos + 8..pos + 8 + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        out.push(body);
        pos += 8 + len;
    }
    (out, pos)
}

/// Reads a whole file of at most `max` bytes; a larger one is refused.
fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds {len} bytes, more than {max}", path.display()),
        ));
    }
    let mut data = Vec::with_capacity(len as usize);
    (&mut file).take(max).read_to_end(&mut data)?;
    Ok(data)
}

fn read_single(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match read_bounded(
        &dir.join(name),
        limits::CONTROLLER_FRAME_BYTES_MAX as u64 + 8,
    ) {
        Ok(data) => {
            let (found, _) = frames(&data);
            match found.first() {
                Some(body) => Ok(Some(body.to_vec())),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is damaged", dir.join(name).display()),
                )),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The entries of a `raft.log` file's bytes and the length they cover (a
/// torn or corrupt frame and everything after it is not covered); an entry
/// that does not decode is an error.
pub fn decode_log(data: &[u8]) -> io::Result<(Vec<Entry>, usize)> {
    let (found, valid) = frames(data);
    let entries = found
        .iter()
        .map(|body| {
            let entry = Entry::decode(*body).map_err(invalid)?;
            check_entry(&entry).map_err(invalid)?;
            Ok(entry)
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok((entries, valid))
}

/// raft-rs reads an entry's type through a getter that panics on a value
/// it does not know (`Entry::get_entry_type`), and prost keeps whatever
/// number the bytes hold: an entry from a file or a peer is checked here
/// before raft-rs or the controller sees it.
pub fn check_entry(entry: &Entry) -> Result<(), UnknownEntryType> {
    if raft::prelude::EntryType::from_i32(entry.entry_type).is_none() {
        return Err(UnknownEntryType {
            index: entry.index,
            entry_type: entry.entry_type,
        });
    }
    Ok(())
}

/// A Raft entry whose type raft-rs does not know.
#[derive(Debug, thiserror::Error)]
#[error("raft entry {index} has unknown type {entry_type}")]
pub struct UnknownEntryType {
    pub index: u64,
    pub entry_type: i32,
}

/// A snapshot frame's body.
pub fn decode_snapshot(body: &[u8]) -> io::Result<Snapshot> {
    Snapshot::decode(body).map_err(invalid)
}

/// A hard state frame's body.
pub fn decode_hard_state(body: &[u8]) -> io::Result<HardState> {
    HardState::decode(body).map_err(invalid)
}

impl RaftFiles {
    /// Opens (creating) the directory and reads what it holds.
    pub fn open(data_dir: &Path) -> io::Result<(RaftFiles, Loaded)> {
        let dir = data_dir.join(METADATA_DIR);
        fs::create_dir_all(&dir)?;
        let mut loaded = Loaded::default();
        if let Some(bytes) = read_single(&dir, "snapshot")? {
            loaded.snapshot = Some(decode_snapshot(&bytes)?);
        }
        if let Some(bytes) = read_single(&dir, "hardstate")? {
            loaded.hard_state = Some(decode_hard_state(&bytes)?);
        }
        let path = dir.join("raft.log");
        let data = match read_bounded(&path, limits::CONTROLLER_LOG_BYTES_MAX) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (entries, valid) = decode_log(&data)?;
        let frames_found = entries.len();
        loaded.entries = entries;
        let log = OpenOptions::new().create(true).append(true).open(&path)?;
        if valid < data.len() {
            log::warn!(
                "{}: cut a torn tail of {} bytes",
                path.display(),
                data.len() - valid
            );
            log.set_len(valid as u64)?;
            log.sync_all()?;
        }
        Ok((
            RaftFiles {
                dir,
                log,
                frames: frames_found,
            },
            loaded,
        ))
    }

    /// Appends entries durably.
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        let mut out = Vec::new();
        for entry in entries {
            out.extend(frame(&entry.encode_to_vec()));
        }
        self.log.write_all(&out)?;
        self.log.sync_data()?;
        self.frames += entries.len();
        Ok(())
    }

    pub fn save_hard_state(&mut self, hs: &HardState) -> io::Result<()> {
        crate::io::replace_file_blocking(&self.dir, "hardstate", &frame(&hs.encode_to_vec()))
    }

    /// Saves `snapshot` and rewrites the log to hold only `kept` (the entries
    /// after it). Order matters for a crash in between: the snapshot first,
    /// then the shorter log (a longer old log is harmless: entries at or
    /// below the snapshot are skipped at load).
    pub fn save_snapshot(&mut self, snapshot: &Snapshot, kept: &[Entry]) -> io::Result<()> {
        crate::io::replace_file_blocking(&self.dir, "snapshot", &frame(&snapshot.encode_to_vec()))?;
        let mut out = Vec::new();
        for entry in kept {
            out.extend(frame(&entry.encode_to_vec()));
        }
        crate::io::replace_file_blocking(&self.dir, "raft.log", &out)?;
        self.log = OpenOptions::new()
            .append(true)
            .open(self.dir.join("raft.log"))?;
        self.frames = kept.len();
        Ok(())
    }

    pub fn frames(&self) -> usize {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_and_hard_state_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut files, loaded) = RaftFiles::open(dir.path()).unwrap();
            assert!(loaded.entries.is_empty());
            files
                .append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")])
                .unwrap();
            // Raft overwrote index 3 in a new term.
            files.append(&[entry(3, 2, b"C")]).unwrap();
            let hs = HardState {
                term: 2,
                vote: 1,
                commit: 3,
            };
            files.save_hard_state(&hs).unwrap();
        }
        let log = dir.path().join(METADATA_DIR).join("raft.log");
        let mut bytes = fs::read(&log).unwrap();
        bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2]);
        fs::write(&log, bytes).unwrap();
        let (files, loaded) = RaftFiles::open(dir.path()).unwrap();
        assert_eq!(files.frames(), 4);
        let store = RaftStore::new(vec![1, 2, 3], loaded).unwrap();
        assert_eq!(store.last_index().unwrap(), 3);
        assert_eq!(store.term(3).unwrap(), 2);
        let state = store.initial_state().unwrap();
        assert_eq!(state.hard_state.term, 2);
        assert_eq!(state.hard_state.commit, 3);
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    }

    #[test]
    fn a_snapshot_replaces_the_log_prefix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut files, _) = RaftFiles::open(dir.path()).unwrap();
            files
                .append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")])
                .unwrap();
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 2;
            snap.mut_metadata().term = 1;
            snap.mut_metadata()
                .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
            snap.data = b"image".to_vec();
            files.save_snapshot(&snap, &[entry(3, 1, b"c")]).unwrap();
            assert_eq!(files.frames(), 1);
        }
        let (_, loaded) = RaftFiles::open(dir.path()).unwrap();
        let store = RaftStore::new(vec![1, 2, 3], loaded).unwrap();
        assert_eq!(store.first_index().unwrap(), 3);
        assert_eq!(store.last_index().unwrap(), 3);
        assert_eq!(&store.snapshot(0, 0).unwrap().data[..], b"image");
    }

    #[test]
    fn a_log_with_a_gap_stops_at_the_gap_instead_of_panicking() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut files, _) = RaftFiles::open(dir.path()).unwrap();
            files
                .append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(5, 1, b"e")])
                .unwrap();
        }
        let (_, loaded) = RaftFiles::open(dir.path()).unwrap();
        let store = RaftStore::new(vec![1, 2, 3], loaded).unwrap();
        assert_eq!(store.last_index().unwrap(), 2);
    }

    /// fuzz target `controller` (files mode): a CRC-valid entry of an
    /// entry type raft-rs does not know made `get_entry_type` panic when
    /// the controller applied it; the log is refused at open instead.
    #[test]
    fn an_entry_of_an_unknown_type_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut files, _) = RaftFiles::open(dir.path()).unwrap();
            let mut odd = entry(2, 1, b"b");
            odd.entry_type = 8;
            files.append(&[entry(1, 1, b"a"), odd]).unwrap();
        }
        let err = RaftFiles::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("unknown type 8"), "{err}");
    }

    #[test]
    fn lying_frames_and_bodies_are_refused() {
        // A frame announcing more than the bound, or more than is there, ends
        // the valid part; nothing is allocated for it.
        let mut data = frame(&entry(1, 1, b"a").encode_to_vec());
        let valid = data.len();
        data.extend_from_slice(&u32::MAX.to_be_bytes());
        data.extend_from_slice(&[0; 12]);
        let (entries, covered) = decode_log(&data).unwrap();
        assert_eq!((entries.len(), covered), (1, valid));
        // A CRC-valid frame whose body is not an entry is an error.
        assert!(decode_log(&frame(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])).is_err());
        assert!(decode_snapshot(&[0x0a, 0x80, 0x80, 0x80, 0x80, 0x08]).is_err());
        assert!(decode_hard_state(&[0xff]).is_err());
    }
}
