//! [`MemDisk`]: the in-memory twin of the disk for unit tests, with fault
//! injection, holding to the same alignment rules as O_DIRECT.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::*;

/// Faults to inject into a [`MemDisk`].
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every write fails with ENOSPC while set.
    pub full: bool,
    /// The next `n` writes fail with ENOSPC.
    pub fail_writes: u32,
    /// The next `n` fdatasyncs fail with EIO.
    pub fail_syncs: u32,
    /// Every read fails with EIO while set (a failing device).
    pub fail_reads: bool,
    /// Renames still allowed before every further one fails with EIO
    /// (None: no limit); with `crash`, stops a file swap at any step.
    pub renames_left: Option<u32>,
    /// Changes (create, remove, rename, write, truncate, fdatasync, directory
    /// sync) still allowed before every further one fails with EIO (None:
    /// no limit); with `crash`, stops a job at any step.
    pub changes_left: Option<u32>,
}

#[derive(Default)]
struct MemData {
    /// What reads see now.
    data: Vec<u8>,
    /// What survives a crash: the content at the last fdatasync.
    durable: Vec<u8>,
}

#[derive(Default)]
struct MemFs {
    files: BTreeMap<PathBuf, Rc<RefCell<MemData>>>,
    dirs: HashSet<PathBuf>,
    faults: Faults,
    writes: u64,
    syncs: u64,
}

/// An in-memory file system for tests. Clones share the same files.
#[derive(Clone, Default)]
pub struct MemDisk {
    fs: Rc<RefCell<MemFs>>,
}

/// A file of a [`MemDisk`]; stays readable after removal, like an open fd.
pub struct MemFile {
    data: Rc<RefCell<MemData>>,
    fs: Rc<RefCell<MemFs>>,
}

/// A [`MemDisk`] write buffer, filled with garbage as DMA buffers may be.
pub struct MemBuf(Vec<u8>);

impl DiskBuf for MemBuf {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn trim(&mut self, len: usize) {
        self.0.truncate(len)
    }
}

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl MemFs {
    /// Counts one change against `Faults::changes_left`.
    fn change(&mut self) -> io::Result<()> {
        match &mut self.faults.changes_left {
            Some(0) => Err(os_error(libc::EIO)),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// Changes the injected faults.
    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.fs.borrow_mut().faults)
    }

    /// Writes and fdatasyncs done so far.
    pub fn counters(&self) -> (u64, u64) {
        let fs = self.fs.borrow();
        (fs.writes, fs.syncs)
    }

    /// Simulates power loss: every file keeps only what was fdatasync'd, or,
    /// with `torn_seed`, also a pseudo-random prefix of the unsynced bytes
    /// after it (a torn write).
    pub fn crash(&self, torn_seed: Option<u64>) {
        let fs = self.fs.borrow();
        let mut seed = torn_seed.unwrap_or(0);
        for file in fs.files.values() {
            let mut f = file.borrow_mut();
            let keep = if torn_seed.is_some() && f.data.len() > f.durable.len() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let extra = (f.data.len() - f.durable.len()) as u64;
                f.durable.len() + ((seed >> 33) % (extra + 1)) as usize
            } else {
                f.durable.len()
            };
            let content = if keep > f.durable.len() {
                f.data[..keep].to_vec()
            } else {
                f.durable.clone()
            };
            f.data = content.clone();
            f.durable = content;
        }
    }

    /// Flips bits of one byte of a file, durably (a media error).
    pub fn flip_byte(&self, path: &Path, pos: usize) {
        let fs = self.fs.borrow();
        let mut f = fs
            .files
            .get(path)
            .expect("flip_byte: no such file")
            .borrow_mut();
        f.data[pos] ^= 0x5a;
        if pos < f.durable.len() {
            f.durable[pos] ^= 0x5a;
        }
    }

    /// Cuts a file to `len` bytes, durably.
    pub fn cut(&self, path: &Path, len: usize) {
        let fs = self.fs.borrow();
        let mut f = fs.files.get(path).expect("cut: no such file").borrow_mut();
        f.data.truncate(len);
        f.durable.truncate(len);
    }

    /// Length of a file, if it exists.
    pub fn file_len(&self, path: &Path) -> Option<usize> {
        self.fs
            .borrow()
            .files
            .get(path)
            .map(|f| f.borrow().data.len())
    }

    /// Names of the files in `dir`.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let fs = self.fs.borrow();
        fs.files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect()
    }
}

impl DiskFile for MemFile {
    type Buf = MemBuf;

    fn alloc_buf(&self, len: usize) -> MemBuf {
        assert_eq!(len % BLOCK_BYTES, 0, "DMA buffers are whole blocks");
        MemBuf(vec![0xa5; len])
    }

    async fn write_at(&self, buf: MemBuf, pos: u64) -> io::Result<usize> {
        assert_eq!(pos % BLOCK_BYTES as u64, 0, "unaligned DMA write position");
        assert_eq!(buf.0.len() % BLOCK_BYTES, 0, "unaligned DMA write length");
        {
            let mut fs = self.fs.borrow_mut();
            fs.writes += 1;
            fs.change()?;
            if fs.faults.full {
                return Err(os_error(libc::ENOSPC));
            }
            if fs.faults.fail_writes > 0 {
                fs.faults.fail_writes -= 1;
                return Err(os_error(libc::ENOSPC));
            }
        }
        let mut f = self.data.borrow_mut();
        let end = pos as usize + buf.0.len();
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[pos as usize..end].copy_from_slice(&buf.0);
        Ok(buf.0.len())
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        if self.fs.borrow().faults.fail_reads {
            return Err(os_error(libc::EIO));
        }
        let f = self.data.borrow();
        let start = (pos as usize).min(f.data.len());
        let end = (pos as usize).saturating_add(len).min(f.data.len());
        Ok(Bytes::copy_from_slice(&f.data[start..end]))
    }

    async fn write_at_durable(&self, buf: MemBuf, pos: u64) -> io::Result<usize> {
        let written = self.write_at(buf, pos).await?;
        self.fdatasync().await?;
        Ok(written)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        {
            let mut fs = self.fs.borrow_mut();
            fs.syncs += 1;
            fs.change()?;
            if fs.faults.fail_syncs > 0 {
                fs.faults.fail_syncs -= 1;
                return Err(os_error(libc::EIO));
            }
        }
        let mut f = self.data.borrow_mut();
        f.durable = f.data.clone();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        // Size changes are treated as durable at once (metadata journaling).
        self.fs.borrow_mut().change()?;
        let mut f = self.data.borrow_mut();
        f.data.resize(len as usize, 0);
        let durable_len = f.durable.len().min(len as usize);
        f.durable.truncate(durable_len);
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.data.borrow().data.len() as u64)
    }
}

impl Disk for MemDisk {
    type File = MemFile;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fs.borrow_mut().dirs.insert(dir.to_path_buf());
        Ok(())
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        if !self.fs.borrow().dirs.contains(dir) {
            return Err(os_error(libc::ENOENT));
        }
        Ok(self.names(dir))
    }

    async fn open(&self, path: &Path) -> io::Result<MemFile> {
        let data = self.fs.borrow().files.get(path).cloned();
        match data {
            Some(data) => Ok(MemFile {
                data,
                fs: self.fs.clone(),
            }),
            None => Err(os_error(libc::ENOENT)),
        }
    }

    async fn create(&self, path: &Path) -> io::Result<MemFile> {
        // Names are durable at once (as after sync_dir); contents are not.
        self.fs.borrow_mut().change()?;
        let data = Rc::new(RefCell::new(MemData::default()));
        self.fs
            .borrow_mut()
            .files
            .insert(path.to_path_buf(), data.clone());
        Ok(MemFile {
            data,
            fs: self.fs.clone(),
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        if fs.faults.renames_left == Some(0) {
            // A stopped swap stops every later name change too.
            return Err(os_error(libc::EIO));
        }
        fs.change()?;
        match fs.files.remove(path) {
            Some(_) => Ok(()),
            None => Err(os_error(libc::ENOENT)),
        }
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // Names are durable at once, as after sync_dir.
        let mut fs = self.fs.borrow_mut();
        fs.change()?;
        match &mut fs.faults.renames_left {
            Some(0) => return Err(os_error(libc::EIO)),
            Some(n) => *n -= 1,
            None => {}
        }
        let data = fs
            .files
            .remove(from)
            .ok_or_else(|| os_error(libc::ENOENT))?;
        fs.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    async fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.fs.borrow_mut().change()
    }
}
