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
//! - [`DmaDisk`] (`io/dma.rs`): glommio `DmaFile`s (O_DIRECT through io_uring). Writes must
//!   start at and span multiples of [`BLOCK_BYTES`]; buffers come from the
//!   file (`alloc_dma_buffer`, not zeroed). See docs/architecture.md (glommio facts): the first
//!   DMA file a thread opens on a device must not be empty, which
//!   [`prepare_disk`] (and [`Disk::prepare`]) guarantee.
//! - [`MemDisk`] (`io/mem.rs`): an in-memory twin for unit tests, with fault injection
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

mod dma;
mod mem;
mod std_disk;
pub use dma::*;
pub use mem::*;
pub use std_disk::StdDisk;

use std::io;
use std::path::Path;

use bytes::Bytes;

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
