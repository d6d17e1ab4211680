//! Durable storage of the controller's Raft log: entries, hard state and the
//! latest snapshot of the metadata image, in `<data>/__cluster_metadata-0/`.
//!
//! Raft reads from memory ([`RaftStore`], raft-rs' MemStorage plus the
//! snapshot with its data); [`RaftFiles`] makes each step durable before
//! Raft may act on it, through the disk seam (`crate::io::Disk`: glommio
//! DMA files on the reactor in the broker, `MemDisk` with its crashes, torn
//! writes and failed fsyncs in tests and the simulation). Files:
//! - `raft.log`: appended entry frames `[len u32][crc32c u32][Entry]`; a
//!   later frame with an index at or below an earlier one replaces that
//!   suffix (Raft overwrote an uncommitted tail). A torn last frame is cut.
//! - `hardstate`, `snapshot`: one frame each, replaced atomically.
//!
//! Nothing read back is trusted: every frame length is checked against the
//! bound and the bytes left before it is used, protobuf bodies are decoded
//! with prost (bounded nesting, lengths checked), files larger than their
//! bound are refused rather than read, and a log whose indexes jump is cut
//! at the jump (raft-rs panics on a gap). [`decode_files`], [`decode_log`],
//! [`decode_snapshot`] and [`decode_hard_state`] are the pure decoders (the
//! fuzz targets' entry points).

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use prost::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use crate::io::{align_down, align_up, replace_file, short_write, Disk, DiskBuf, DiskFile};
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

/// The files, written through the disk seam (`DmaDisk` in the broker,
/// `MemDisk` in tests and the simulation); one writer, on the thread that
/// opened them.
pub struct RaftFiles<D: Disk> {
    disk: D,
    dir: PathBuf,
    log: D::File,
    /// Bytes of valid frames in `raft.log`: the file's length.
    log_bytes: u64,
    /// The bytes of `raft.log` from its last block boundary to its end: an
    /// append rewrites that partial block (O_DIRECT writes whole blocks).
    tail: Vec<u8>,
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

/// Reads a whole file of at most `max` bytes through the seam, in bounded
/// reads; a larger one is refused before anything is read. `None` when it
/// does not exist.
async fn read_bounded<D: Disk>(disk: &D, path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match disk.open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.size().await?;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds {len} bytes, more than {max}", path.display()),
        ));
    }
    let mut data = Vec::with_capacity(len as usize);
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64).min(limits::CONTROLLER_READ_CHUNK_BYTES as u64);
        let chunk = file.read_at(data.len() as u64, want as usize).await?;
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Some(data))
}

/// The body of a file holding one frame (`hardstate`, `snapshot`).
fn single_frame<'a>(name: &str, data: &'a [u8]) -> io::Result<&'a [u8]> {
    match frames(data).0.first() {
        Some(body) => Ok(body),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{METADATA_DIR}/{name} is damaged"),
        )),
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

/// What the three files' bytes hold (`None`: the file does not exist), and
/// the length of `raft.log` its valid frames cover. Pure: the loader of
/// [`RaftFiles::open`] and the fuzz targets' entry point for whole files.
pub fn decode_files(
    log: &[u8],
    hard_state: Option<&[u8]>,
    snapshot: Option<&[u8]>,
) -> io::Result<(Loaded, usize)> {
    let mut loaded = Loaded::default();
    if let Some(data) = snapshot {
        loaded.snapshot = Some(decode_snapshot(single_frame("snapshot", data)?)?);
    }
    if let Some(data) = hard_state {
        loaded.hard_state = Some(decode_hard_state(single_frame("hardstate", data)?)?);
    }
    let (entries, valid) = decode_log(log)?;
    loaded.entries = entries;
    Ok((loaded, valid))
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

impl<D: Disk> RaftFiles<D> {
    /// Opens (creating) `<data_dir>/__cluster_metadata-0` on `disk` and reads
    /// what it holds; a torn tail of `raft.log` is cut, durably.
    pub async fn open(disk: D, data_dir: &Path) -> io::Result<(RaftFiles<D>, Loaded)> {
        let dir = data_dir.join(METADATA_DIR);
        disk.prepare(&dir).await?;
        disk.create_dir_all(&dir).await?;
        let single = limits::CONTROLLER_FRAME_BYTES_MAX as u64 + 8;
        let snapshot = read_bounded(&disk, &dir.join("snapshot"), single).await?;
        let hard_state = read_bounded(&disk, &dir.join("hardstate"), single).await?;
        let path = dir.join("raft.log");
        let data = read_bounded(&disk, &path, limits::CONTROLLER_LOG_BYTES_MAX).await?;
        let (log, data) = match data {
            Some(data) => (disk.open(&path).await?, data),
            None => {
                let log = disk.create(&path).await?;
                disk.sync_dir(&dir).await?;
                (log, Vec::new())
            }
        };
        let (loaded, valid) = decode_files(&data, hard_state.as_deref(), snapshot.as_deref())?;
        if valid < data.len() {
            log::warn!(
                "{}: cut a torn tail of {} bytes",
                path.display(),
                data.len() - valid
            );
            log.truncate(valid as u64).await?;
            log.fdatasync().await?;
        }
        let block_start = align_down(valid as u64) as usize;
        let files = RaftFiles {
            disk,
            dir,
            log,
            log_bytes: valid as u64,
            tail: data[block_start..valid].to_vec(),
            frames: loaded.entries.len(),
        };
        Ok((files, loaded))
    }

    /// Appends entries durably: the partial last block and the new frames
    /// are written from that block's start, the file is cut to the frames'
    /// end (no padding is ever read as a frame) and synced.
    pub async fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut bytes = std::mem::take(&mut self.tail);
        let kept = bytes.len();
        for entry in entries {
            bytes.extend(frame(&entry.encode_to_vec()));
        }
        let start = self.log_bytes - kept as u64;
        let written = write_padded(&self.log, start, &bytes).await;
        let end = start + bytes.len() as u64;
        // Until the write is known good the tail stays as it was on disk.
        let block_start = align_down(end) - start;
        let new_tail = bytes[block_start as usize..].to_vec();
        bytes.truncate(kept);
        self.tail = bytes;
        written?;
        self.log.truncate(end).await?;
        self.log.fdatasync().await?;
        self.log_bytes = end;
        self.tail = new_tail;
        self.frames += entries.len();
        Ok(())
    }

    pub async fn save_hard_state(&mut self, hs: &HardState) -> io::Result<()> {
        replace_file(
            &self.disk,
            &self.dir,
            "hardstate",
            &frame(&hs.encode_to_vec()),
        )
        .await
    }

    /// Saves `snapshot` and rewrites the log to hold only `kept` (the entries
    /// after it). Order matters for a crash in between: the snapshot first,
    /// then the shorter log (a longer old log is harmless: entries at or
    /// below the snapshot are skipped at load).
    pub async fn save_snapshot(&mut self, snapshot: &Snapshot, kept: &[Entry]) -> io::Result<()> {
        let snapshot_frame = frame(&snapshot.encode_to_vec());
        replace_file(&self.disk, &self.dir, "snapshot", &snapshot_frame).await?;
        let mut out = Vec::new();
        for entry in kept {
            out.extend(frame(&entry.encode_to_vec()));
        }
        replace_file(&self.disk, &self.dir, "raft.log", &out).await?;
        self.log = self.disk.open(&self.dir.join("raft.log")).await?;
        let block_start = align_down(out.len() as u64) as usize;
        self.log_bytes = out.len() as u64;
        self.tail = out[block_start..].to_vec();
        self.frames = kept.len();
        Ok(())
    }

    pub fn frames(&self) -> usize {
        self.frames
    }
}

/// Writes `bytes` at the block-aligned `pos`, the last block zero padded.
async fn write_padded<F: DiskFile>(file: &F, pos: u64, bytes: &[u8]) -> io::Result<()> {
    let len = align_up(bytes.len() as u64) as usize;
    let mut buf = file.alloc_buf(len);
    buf.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
    buf.bytes_mut()[bytes.len()..].fill(0);
    let written = file.write_at(buf, pos).await?;
    if written != len {
        return Err(short_write(written, len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDisk;
    use futures_lite::future::block_on;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec(),
            ..Default::default()
        }
    }

    fn open(disk: &MemDisk) -> (RaftFiles<MemDisk>, Loaded) {
        block_on(RaftFiles::open(disk.clone(), Path::new("/data"))).unwrap()
    }

    fn log_path() -> PathBuf {
        Path::new("/data").join(METADATA_DIR).join("raft.log")
    }

    /// Replaces the whole content of `path` on `disk`, durably.
    fn put(disk: &MemDisk, path: &Path, bytes: &[u8]) {
        block_on(async {
            disk.create_dir_all(path.parent().unwrap()).await.unwrap();
            crate::io::write_whole_file(disk, path, bytes)
                .await
                .unwrap();
        })
    }

    #[test]
    fn entries_and_hard_state_survive_reopen_and_a_torn_tail_is_cut() {
        let disk = MemDisk::new();
        {
            let (mut files, loaded) = open(&disk);
            assert!(loaded.entries.is_empty());
            block_on(files.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")]))
                .unwrap();
            // Raft overwrote index 3 in a new term.
            block_on(files.append(&[entry(3, 2, b"C")])).unwrap();
            let hs = HardState {
                term: 2,
                vote: 1,
                commit: 3,
            };
            block_on(files.save_hard_state(&hs)).unwrap();
        }
        let mut bytes = block_on(crate::io::read_whole_file(&disk, &log_path()))
            .unwrap()
            .unwrap();
        let valid = bytes.len();
        bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2]);
        put(&disk, &log_path(), &bytes);
        let (files, loaded) = open(&disk);
        assert_eq!(files.frames(), 4);
        assert_eq!(disk.file_len(&log_path()), Some(valid));
        let store = RaftStore::new(vec![1, 2, 3], loaded).unwrap();
        assert_eq!(store.last_index().unwrap(), 3);
        assert_eq!(store.term(3).unwrap(), 2);
        let state = store.initial_state().unwrap();
        assert_eq!(state.hard_state.term, 2);
        assert_eq!(state.hard_state.commit, 3);
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    }

    #[test]
    fn appends_across_block_boundaries_read_back_whole() {
        let disk = MemDisk::new();
        let big = vec![7u8; 3000];
        {
            let (mut files, _) = open(&disk);
            for index in 1..=10 {
                block_on(files.append(&[entry(index, 1, &big)])).unwrap();
            }
        }
        let (mut files, loaded) = open(&disk);
        assert_eq!(loaded.entries.len(), 10);
        block_on(files.append(&[entry(11, 1, b"k")])).unwrap();
        let (_, loaded) = open(&disk);
        let indexes: Vec<u64> = loaded.entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, (1..=11).collect::<Vec<_>>());
        assert!(loaded.entries[..10].iter().all(|e| e.data == big));
    }

    /// A crash keeps exactly what was synced: every append returned before
    /// the crash survives, whether or not the crash tears what followed.
    #[test]
    fn a_crash_loses_exactly_the_unsynced_suffix() {
        for torn in [None, Some(1), Some(2), Some(3), Some(99)] {
            let disk = MemDisk::new();
            let (mut files, _) = open(&disk);
            block_on(files.append(&[entry(1, 1, b"a"), entry(2, 1, &[2; 5000])])).unwrap();
            block_on(files.save_hard_state(&HardState {
                term: 1,
                vote: 1,
                commit: 2,
            }))
            .unwrap();
            // The next append's write lands but its sync fails: not durable.
            disk.faults(|f| f.fail_syncs = 1);
            assert!(block_on(files.append(&[entry(3, 1, &[3; 6000])])).is_err());
            disk.crash(torn);
            let (files, loaded) = open(&disk);
            let indexes: Vec<u64> = loaded.entries.iter().map(|e| e.index).collect();
            assert_eq!(indexes, vec![1, 2], "torn {torn:?}");
            assert_eq!(files.frames(), 2);
            assert_eq!(loaded.hard_state.unwrap().commit, 2);
        }
    }

    #[test]
    fn a_snapshot_replaces_the_log_prefix() {
        let disk = MemDisk::new();
        {
            let (mut files, _) = open(&disk);
            block_on(files.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")]))
                .unwrap();
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 2;
            snap.mut_metadata().term = 1;
            snap.mut_metadata()
                .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
            snap.data = b"image".to_vec();
            block_on(files.save_snapshot(&snap, &[entry(3, 1, b"c")])).unwrap();
            assert_eq!(files.frames(), 1);
            block_on(files.append(&[entry(4, 1, b"d")])).unwrap();
        }
        disk.crash(None);
        let (_, loaded) = open(&disk);
        let store = RaftStore::new(vec![1, 2, 3], loaded).unwrap();
        assert_eq!(store.first_index().unwrap(), 3);
        assert_eq!(store.last_index().unwrap(), 4);
        assert_eq!(&store.snapshot(0, 0).unwrap().data[..], b"image");
    }

    #[test]
    fn a_log_with_a_gap_stops_at_the_gap_instead_of_panicking() {
        let disk = MemDisk::new();
        {
            let (mut files, _) = open(&disk);
            block_on(files.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(5, 1, b"e")]))
                .unwrap();
        }
        let (_, loaded) = open(&disk);
        let store = RaftStore::new(vec![1, 2, 3], loaded).unwrap();
        assert_eq!(store.last_index().unwrap(), 2);
    }

    /// fuzz target `controller` (files mode): a CRC-valid entry of an
    /// entry type raft-rs does not know made `get_entry_type` panic when
    /// the controller applied it; the log is refused at open instead.
    #[test]
    fn an_entry_of_an_unknown_type_is_refused_at_open() {
        let disk = MemDisk::new();
        {
            let (mut files, _) = open(&disk);
            let mut odd = entry(2, 1, b"b");
            odd.entry_type = 8;
            block_on(files.append(&[entry(1, 1, b"a"), odd])).unwrap();
        }
        let err = block_on(RaftFiles::open(disk.clone(), Path::new("/data")))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("unknown type 8"), "{err}");
    }

    #[test]
    fn a_damaged_hard_state_is_refused() {
        let disk = MemDisk::new();
        open(&disk);
        put(
            &disk,
            &Path::new("/data").join(METADATA_DIR).join("hardstate"),
            b"\0\0\0\x04junk",
        );
        let err = block_on(RaftFiles::open(disk.clone(), Path::new("/data")))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("hardstate is damaged"), "{err}");
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
