//! [`DmaDisk`]: the production disk, glommio `DmaFile`s (O_DIRECT through
//! io_uring), and the first-file rule `prepare_disk` keeps.

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use super::*;

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
