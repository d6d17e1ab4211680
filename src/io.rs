//! The one seam between corelog and the disk.
//!
//! Owns every file operation the log makes: open/create, aligned writes,
//! reads, fdatasync, truncate, size, remove, directory listing and sync;
//! and the one routine that replaces a small file atomically and durably
//! ([`replace_file`]; [`replace_file_blocking`] runs it over [`StdDisk`]
//! where no executor runs yet: start-up and the CLI; docs/architecture.md
//! section 9 lists what goes through the seam).
//!
//! Three implementations of the seam:
//!
//! - [`DmaDisk`]: glommio `DmaFile`s (O_DIRECT through io_uring). Writes must
//!   start at and span multiples of [`BLOCK_BYTES`]; buffers come from the
//!   file (`alloc_dma_buffer`, not zeroed). See docs/architecture.md (glommio facts): the first
//!   DMA file a thread opens on a device must not be empty, which
//!   [`prepare_disk`] (and [`Disk::prepare`]) guarantee.
//! - [`MemDisk`]: an in-memory twin for unit tests, with fault injection
//!   (ENOSPC on writes, failing fdatasync, failing reads, crash that keeps
//!   only synced bytes or a torn prefix of the unsynced ones, byte flips). It asserts the same
//!   alignment rules as O_DIRECT and hands out garbage-filled buffers, so the
//!   log cannot rely on what the real disk does not promise.
//! - [`StdDisk`] (`io/std_disk.rs`): blocking `std::fs`, for start-up before
//!   the executors exist and the CLI, never on a reactor thread.
//!
//! The log is generic over [`Disk`] (`PartitionLog<D: Disk = DmaDisk>`): a
//! trait with associated types keeps the DMA path free of dynamic dispatch
//! and of an enum match per I/O, and the default parameter keeps the
//! broker's code naming just `PartitionLog`.
//!
//! Every handle lives on the shard (executor thread) that opened it; the
//! futures here are `!Send` by design, which is why the traits use `async fn`
//! without `Send` bounds.

#![forbid(unsafe_code)]

mod std_disk;
pub use std_disk::StdDisk;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

/// Unit of O_DIRECT I/O: write positions and lengths are multiples of it.
pub const BLOCK_BYTES: usize = crate::limits::DISK_BLOCK_BYTES;

/// Rounds `v` up to a multiple of [`BLOCK_BYTES`].
pub fn align_up(v: u64) -> u64 {
    v.div_ceil(BLOCK_BYTES as u64) * BLOCK_BYTES as u64
}

/// Rounds `v` down to a multiple of [`BLOCK_BYTES`].
pub fn align_down(v: u64) -> u64 {
    v - v % BLOCK_BYTES as u64
}

/// True when an error means the device is full (ENOSPC or EDQUOT).
pub fn is_no_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// A buffer that can be written to a file of the same disk.
pub trait DiskBuf: 'static {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Shortens the buffer; only the first `len` bytes are written.
    fn trim(&mut self, len: usize);
}

/// One open file. Handles are shared as `Rc<F>` between the log and its jobs.
#[allow(async_fn_in_trait)] // executor-local futures: never sent between threads
pub trait DiskFile: 'static {
    type Buf: DiskBuf;
    /// A writable buffer of `len` bytes (a multiple of [`BLOCK_BYTES`]),
    /// contents unspecified.
    fn alloc_buf(&self, len: usize) -> Self::Buf;
    /// Writes the whole buffer at `pos`; both aligned to [`BLOCK_BYTES`].
    async fn write_at(&self, buf: Self::Buf, pos: u64) -> io::Result<usize>;
    /// As `write_at`, and durable when it returns, as after `fdatasync`
    /// (data and the metadata needed to read it back, the size included).
    /// A failure other than ENOSPC must be treated as a failed sync.
    async fn write_at_durable(&self, buf: Self::Buf, pos: u64) -> io::Result<usize>;
    /// Reads up to `len` bytes at `pos` (any alignment); short at end of file.
    /// The bytes may be sent to other shards (a fetch's records are).
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes>;
    async fn fdatasync(&self) -> io::Result<()>;
    async fn truncate(&self, len: u64) -> io::Result<()>;
    async fn size(&self) -> io::Result<u64>;
}

/// A file system holding partition directories.
#[allow(async_fn_in_trait)] // executor-local futures: never sent between threads
pub trait Disk: Clone + 'static {
    type File: DiskFile;
    /// Makes DMA usable on `dir`'s device from this thread (trap 1); no-op
    /// where nothing needs preparing.
    async fn prepare(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    async fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    async fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates (or truncates) a file for reading and writing.
    async fn create(&self, path: &Path) -> io::Result<Self::File>;
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically if it exists.
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes created and removed names in `dir` durable.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// Writes `bytes` as the whole content of `path`, durably: create, one
/// aligned write (zero padded), truncate to the exact length, fdatasync.
pub async fn write_whole_file<D: Disk>(disk: &D, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = disk.create(path).await?;
    if !bytes.is_empty() {
        let len = align_up(bytes.len() as u64) as usize;
        let mut buf = file.alloc_buf(len);
        buf.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        buf.bytes_mut()[bytes.len()..].fill(0);
        let written = file.write_at(buf, 0).await?;
        if written != len {
            return Err(short_write(written, len));
        }
        file.truncate(bytes.len() as u64).await?;
    }
    file.fdatasync().await
}

/// Replaces `dir/name` atomically and durably with `bytes`: a temp file
/// written and fdatasync'd, renamed over it, then the directory synced.
pub async fn replace_file<D: Disk>(
    disk: &D,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let replaced = async {
        write_whole_file(disk, &tmp, bytes).await?;
        disk.rename(&tmp, &dir.join(name)).await
    }
    .await;
    if let Err(e) = replaced {
        // No temp file left behind by a failed write (a full disk).
        let _ = remove_if_exists(disk, &tmp).await;
        return Err(e);
    }
    disk.sync_dir(dir).await
}

/// [`replace_file`] for callers off the reactor (the blocking pool, start-up
/// before the executors, the CLI), through [`StdDisk`]: the same routine,
/// so a crash leaves the old content or the new, never a torn file, and the
/// new name survives (the directory is synced).
pub fn replace_file_blocking(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    futures_lite::future::block_on(replace_file(&StdDisk, dir, name, bytes))
}

/// Creates `dir` and its parents off the reactor, through [`StdDisk`].
pub fn create_dir_all_blocking(dir: &Path) -> io::Result<()> {
    futures_lite::future::block_on(StdDisk.create_dir_all(dir))
}

/// [`read_whole_file`] off the reactor, through [`StdDisk`].
pub fn read_whole_file_blocking(path: &Path) -> io::Result<Option<Vec<u8>>> {
    futures_lite::future::block_on(read_whole_file(&StdDisk, path))
}

/// Reads the whole content of `path`; `None` when it does not exist.
pub async fn read_whole_file<D: Disk>(disk: &D, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match disk.open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.size().await?;
    if size == 0 {
        return Ok(Some(Vec::new()));
    }
    file.read_at(0, size as usize).await.map(|b| Some(b.into()))
}

/// Removes `path`, treating "already gone" as success.
pub async fn remove_if_exists<D: Disk>(disk: &D, path: &Path) -> io::Result<()> {
    match disk.remove(path).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A short O_DIRECT write almost always means the device filled up.
pub fn short_write(written: usize, wanted: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!("short write: {written} of {wanted} bytes"),
    )
}

// ---------------------------------------------------------------------------
// glommio DMA implementation

/// The production disk: glommio DMA files. Stateless; one per shard is fine.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaDisk;

/// A glommio `DmaFile` opened read-write, and for durable writes a second
/// handle on the same file opened with O_DSYNC.
///
/// Why two handles: `write_at` then `fdatasync` are two io_uring round
/// trips, the second run by an io-wq worker, and a produce waits for both.
/// A write through an O_DSYNC handle is durable when it completes, so a
/// flush that is one write (the common case at modest rates) costs one
/// round trip; flushes of several writes still sync once at the end
/// (an O_DSYNC write each would flush the device's cache each time).
pub struct DmaDiskFile {
    file: DmaFile,
    path: PathBuf,
    /// Opened at the first durable write.
    dsync: RefCell<Option<Rc<DmaFile>>>,
}

impl DmaDiskFile {
    fn new(file: DmaFile, path: &Path) -> DmaDiskFile {
        DmaDiskFile {
            file,
            path: path.to_path_buf(),
            dsync: RefCell::new(None),
        }
    }

    async fn dsync_handle(&self) -> io::Result<Rc<DmaFile>> {
        if let Some(handle) = self.dsync.borrow().clone() {
            return Ok(handle);
        }
        let handle = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .dma_open(&self.path)
            .await
            .map_err(glommio_error)?;
        // Two writes may race to open it; either handle works.
        Ok(self
            .dsync
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(handle))
            .clone())
    }
}

fn glommio_error<T>(e: glommio::GlommioError<T>) -> io::Error {
    io::Error::from(e)
}

thread_local! {
    /// Devices on which this executor thread already opened a non-empty DMA
    /// file, so glommio's poll probe has its right answer (trap 1).
    static PREPARED_DEVICES: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

thread_local! {
    /// Reads this thread's DMA files made, and the bytes they returned.
    static DMA_READS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Reads of DMA files made on this thread so far, and their bytes (what
/// the shard asked of the disk, to compare with what it served).
pub fn dma_read_totals() -> (u64, u64) {
    DMA_READS.with(Cell::get)
}

/// Name of the marker file [`prepare_disk`] writes into the data directory.
pub const DMA_PROBE_FILE: &str = ".corelog-dma-probe";

/// The first-DMA-file probe (docs/architecture.md, glommio facts): before the first DMA file of this thread on the data
/// directory's device, open and read a non-empty file there, so glommio's
/// poll-support probe reads real bytes. Call on every executor before any
/// log opens (PartitionLog::open also does it once per device and thread).
pub async fn prepare_disk(data_dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    // One marker per thread: shards start together, and a shard that opened
    // a marker another shard was still rewriting would probe an empty file,
    // the very trap this avoids.
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let marker = data_dir.join(format!("{DMA_PROBE_FILE}-{thread}"));
    let tmp = data_dir.join(format!("{DMA_PROBE_FILE}-{thread}.tmp"));
    std::fs::write(&tmp, vec![0x5a_u8; BLOCK_BYTES])?;
    std::fs::rename(&tmp, &marker)?;
    let file = DmaFile::open(&marker).await.map_err(glommio_error)?;
    let read = file.read_at(0, BLOCK_BYTES).await.map_err(glommio_error);
    let closed = file.close().await.map_err(glommio_error);
    let _ = std::fs::remove_file(&marker);
    let read = read?;
    closed?;
    if read.len() != BLOCK_BYTES || read.iter().any(|&b| b != 0x5a) {
        return Err(io::Error::other(format!(
            "DMA probe read of {} returned {} unexpected bytes",
            marker.display(),
            read.len()
        )));
    }
    mark_prepared(data_dir);
    Ok(())
}

fn device_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.dev())
}

fn mark_prepared(dir: &Path) {
    if let Some(dev) = device_of(dir) {
        PREPARED_DEVICES.with(|p| p.borrow_mut().insert(dev));
    }
}

impl DiskBuf for DmaBuffer {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
    fn trim(&mut self, len: usize) {
        self.trim_to_size(len)
    }
}

impl DiskFile for DmaDiskFile {
    type Buf = DmaBuffer;

    fn alloc_buf(&self, len: usize) -> DmaBuffer {
        assert_eq!(len % BLOCK_BYTES, 0, "DMA buffers are whole blocks");
        self.file.alloc_dma_buffer(len)
    }

    async fn write_at(&self, buf: DmaBuffer, pos: u64) -> io::Result<usize> {
        assert_eq!(pos % BLOCK_BYTES as u64, 0, "unaligned DMA write position");
        assert_eq!(buf.len() % BLOCK_BYTES, 0, "unaligned DMA write length");
        self.file.write_at(buf, pos).await.map_err(glommio_error)
    }

    async fn write_at_durable(&self, buf: DmaBuffer, pos: u64) -> io::Result<usize> {
        assert_eq!(pos % BLOCK_BYTES as u64, 0, "unaligned DMA write position");
        assert_eq!(buf.len() % BLOCK_BYTES, 0, "unaligned DMA write length");
        let handle = self.dsync_handle().await?;
        handle.write_at(buf, pos).await.map_err(glommio_error)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        // Into a buffer the read owns (not the ring's registered pool, which
        // belongs to this thread), so the records go out without a copy.
        let read = self
            .file
            .read_at_owned(pos, len)
            .await
            .map_err(glommio_error)?;
        DMA_READS.with(|t| {
            let (reads, bytes) = t.get();
            t.set((reads + 1, bytes + read.len() as u64));
        });
        Ok(Bytes::from_owner(read))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(glommio_error)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(glommio_error)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(glommio_error)
    }
}

impl Disk for DmaDisk {
    type File = DmaDiskFile;

    async fn prepare(&self, dir: &Path) -> io::Result<()> {
        let probe_dir = if dir.exists() {
            dir.to_path_buf()
        } else {
            // The partition directory does not exist yet: probe its parent
            // (the data directory), creating it if needed.
            dir.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.to_path_buf())
        };
        std::fs::create_dir_all(&probe_dir)?;
        let done = device_of(&probe_dir)
            .is_some_and(|dev| PREPARED_DEVICES.with(|p| p.borrow().contains(&dev)));
        if done {
            return Ok(());
        }
        prepare_disk(&probe_dir).await
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // Directory creation is rare (a partition's first open) and tiny.
        std::fs::create_dir_all(dir)
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        // Listing happens once per partition at open; std is fine there.
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    async fn open(&self, path: &Path) -> io::Result<DmaDiskFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(glommio_error)?;
        Ok(DmaDiskFile::new(file, path))
    }

    async fn create(&self, path: &Path) -> io::Result<DmaDiskFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(path)
            .await
            .map_err(glommio_error)?;
        Ok(DmaDiskFile::new(file, path))
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        glommio::io::remove(path).await.map_err(glommio_error)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        glommio::io::rename(from, to).await.map_err(glommio_error)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = glommio::io::Directory::open(dir)
            .await
            .map_err(glommio_error)?;
        let synced = d.sync().await.map_err(glommio_error);
        d.close().await.map_err(glommio_error)?;
        synced
    }
}

// ---------------------------------------------------------------------------
// In-memory twin with fault injection

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_file_blocking_replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        replace_file_blocking(dir.path(), "f", b"first, longer content").unwrap();
        replace_file_blocking(dir.path(), "f", b"second").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"second");
        // A rename that fails (the name is a non-empty directory) leaves the
        // target as it was and no temp file behind.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d").join("x"), b"x").unwrap();
        assert!(replace_file_blocking(dir.path(), "d", b"new").is_err());
        assert!(dir.path().join("d").join("x").exists());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    /// The blocking seam reads what it wrote, says "none" for a missing
    /// file, and its files obey the same trait as the shards' disks.
    #[test]
    fn std_disk_reads_back_and_knows_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all_blocking(&nested).unwrap();
        assert_eq!(read_whole_file_blocking(&nested.join("f")).unwrap(), None);
        // Longer than a block: the padded aligned write is cut back.
        let bytes: Vec<u8> = (0..BLOCK_BYTES as u32 + 7).map(|i| i as u8).collect();
        replace_file_blocking(&nested, "f", &bytes).unwrap();
        assert_eq!(
            read_whole_file_blocking(&nested.join("f")).unwrap(),
            Some(bytes)
        );
        replace_file_blocking(&nested, "f", b"").unwrap();
        assert_eq!(
            read_whole_file_blocking(&nested.join("f")).unwrap(),
            Some(Vec::new())
        );
    }
}
