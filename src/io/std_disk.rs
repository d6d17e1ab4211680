//! [`StdDisk`]: the seam over blocking `std::fs` calls, for the code that
//! runs where no executor does: start-up before the shards exist
//! (`meta.properties`, the topic catalog's first load), the CLI's offline
//! tools, and the blocking pool. Same trait as the shards' `DmaDisk`, so
//! those files share the log's routines (`replace_file`, `read_whole_file`)
//! and the tests can swap in `MemDisk` with its faults. Never used on a
//! reactor thread: each call blocks until the kernel answers.

use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Disk, DiskBuf, DiskFile};

/// Blocking file system access (see the module doc).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdDisk;

/// A buffer of a `StdFile`: plain memory (no alignment is needed, but the
/// callers keep the seam's rules anyway).
pub struct StdBuf(Vec<u8>);

impl DiskBuf for StdBuf {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn trim(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

pub struct StdFile {
    file: File,
}

impl DiskFile for StdFile {
    type Buf = StdBuf;

    fn alloc_buf(&self, len: usize) -> StdBuf {
        StdBuf(vec![0; len])
    }

    async fn write_at(&self, buf: StdBuf, pos: u64) -> io::Result<usize> {
        self.file.write_all_at(&buf.0, pos)?;
        Ok(buf.0.len())
    }

    async fn write_at_durable(&self, buf: StdBuf, pos: u64) -> io::Result<usize> {
        let written = self.write_at(buf, pos).await?;
        self.file.sync_data()?;
        Ok(written)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        // Memory follows the file: never more than what is there.
        let size = self.file.metadata()?.len();
        let len = len.min(size.saturating_sub(pos) as usize);
        let mut out = vec![0; len];
        let mut read = 0;
        while read < len {
            match self.file.read_at(&mut out[read..], pos + read as u64)? {
                0 => break,
                n => read += n,
            }
        }
        out.truncate(read);
        Ok(Bytes::from(out))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

impl Disk for StdDisk {
    type File = StdFile;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    async fn open(&self, path: &Path) -> io::Result<StdFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(StdFile { file })
    }

    async fn create(&self, path: &Path) -> io::Result<StdFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(StdFile { file })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
