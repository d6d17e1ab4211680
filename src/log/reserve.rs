//! The data directory's disk-space reserve: a file of
//! `limits::DISK_RESERVE_BYTES` that is deleted when the disk is full, so
//! the writes that free space still find room.
//!
//! Why a reserve: deleting a topic must rewrite the topic catalog, and
//! DeleteRecords must make the new log start offset durable before it
//! deletes segments (else a crash would bring deleted records back); both
//! write a new file before anything is freed. On a full disk those writes
//! failed with KAFKA_STORAGE_ERROR, so an operator could not free space
//! through Kafka's own API. Alternatives considered: rewriting the catalog
//! in place is not atomic, and deleting partitions before the catalog
//! names them deleted would let a crash resurrect the topic empty. The
//! reserve keeps both writes atomic and ordered as they are.
//!
//! The file is shared by every shard of the process; every operation here
//! is idempotent (create through a temp file and rename, remove "if
//! exists"), so shards need no coordination. Every operation goes through
//! the disk seam (`crate::io::Disk`), so none blocks a reactor and the
//! simulated disk can fill up.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use crate::io::{Disk, DiskBuf, DiskFile, BLOCK_BYTES};

/// Name of the reserve file in the data directory.
pub const RESERVE_FILE: &str = ".corelog-reserve";

/// The reserve is written in chunks of this size (a multiple of the block).
const CHUNK_BYTES: usize = 64 * 1024;
const _: () = assert!(CHUNK_BYTES.is_multiple_of(BLOCK_BYTES));

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(RESERVE_FILE)
}

fn temp_path(data_dir: &Path) -> PathBuf {
    data_dir.join(format!("{RESERVE_FILE}.tmp"))
}

/// The size of the file at `path`, or None when there is none.
async fn size_of<D: Disk>(disk: &D, path: &Path) -> Option<u64> {
    disk.open(path).await.ok()?.size().await.ok()
}

/// Makes sure the reserve exists with its full size (written, not sparse:
/// a sparse file would reserve nothing). Ok(true) when it was (re)created.
/// On a disk too full to hold it, Err with ENOSPC and nothing left behind.
pub async fn ensure<D: Disk>(disk: &D, data_dir: &Path, bytes: u64) -> io::Result<bool> {
    let target = path(data_dir);
    if size_of(disk, &target).await == Some(bytes) {
        return Ok(false);
    }
    let tmp = temp_path(data_dir);
    let written = async {
        let file = disk.create(&tmp).await?;
        let mut at = 0;
        while at < bytes {
            let len = (bytes - at).min(CHUNK_BYTES as u64);
            let mut buf = file.alloc_buf(crate::io::align_up(len) as usize);
            buf.bytes_mut().fill(0);
            let n = file.write_at(buf, at).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the reserve took no bytes",
                ));
            }
            at += n as u64;
        }
        file.truncate(bytes).await?;
        file.fdatasync().await?;
        disk.rename(&tmp, &target).await?;
        disk.sync_dir(data_dir).await
    }
    .await;
    if let Err(e) = written {
        let _ = disk.remove(&tmp).await;
        return Err(e);
    }
    Ok(true)
}

/// Deletes the reserve (and a half-written one), freeing its space.
/// Returns the bytes freed (0 when there was none).
pub async fn release<D: Disk>(disk: &D, data_dir: &Path) -> u64 {
    let target = path(data_dir);
    let size = size_of(disk, &target).await.unwrap_or(0);
    let _ = disk.remove(&temp_path(data_dir)).await;
    match disk.remove(&target).await {
        Ok(()) => size,
        Err(_) => 0,
    }
}

/// Runs `write`; when it fails because the disk is full, releases the
/// reserve (logging why) and runs it once more.
pub async fn with_reserve<D: Disk, T, F: Future<Output = io::Result<T>>>(
    disk: &D,
    data_dir: &Path,
    what: &str,
    mut write: impl FnMut() -> F,
) -> io::Result<T> {
    match write().await {
        Err(e) if crate::io::is_no_space(&e) => {
            let freed = release(disk, data_dir).await;
            if freed == 0 {
                return Err(e);
            }
            log::warn!(
                "{}: disk full while writing {what}: released the {freed}-byte reserve {RESERVE_FILE} \
                 to make room (it is recreated once space returns)",
                data_dir.display()
            );
            write().await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDisk;

    fn run<T>(f: impl Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap()
            .run(f)
    }

    #[test]
    fn reserve_is_created_released_and_used() {
        run(async {
            let disk = MemDisk::new();
            let dir = Path::new("/data");
            disk.create_dir_all(dir).await.unwrap();
            assert!(ensure(&disk, dir, 8192).await.unwrap());
            assert!(!ensure(&disk, dir, 8192).await.unwrap());
            assert_eq!(size_of(&disk, &path(dir)).await, Some(8192));
            let mut calls = 0;
            let result = with_reserve(&disk, dir, "a test file", || {
                calls += 1;
                let first = calls == 1;
                async move {
                    if first {
                        Err(io::Error::from_raw_os_error(libc::ENOSPC))
                    } else {
                        Ok(7)
                    }
                }
            })
            .await;
            assert_eq!(result.unwrap(), 7);
            assert_eq!(calls, 2);
            assert_eq!(size_of(&disk, &path(dir)).await, None);
            // Without a reserve left, the failure is returned as it is.
            let again: io::Result<()> = with_reserve(&disk, dir, "a test file", || async {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            })
            .await;
            assert!(crate::io::is_no_space(&again.unwrap_err()));
            assert_eq!(release(&disk, dir).await, 0);
        });
    }

    #[test]
    fn a_reserve_that_does_not_fit_leaves_nothing_behind() {
        run(async {
            let disk = MemDisk::new();
            let dir = Path::new("/data");
            disk.create_dir_all(dir).await.unwrap();
            disk.faults(|f| f.full = true);
            let err = ensure(&disk, dir, 64 * 1024).await.unwrap_err();
            assert!(crate::io::is_no_space(&err), "{err}");
            assert!(disk.list_dir(dir).await.unwrap().is_empty());
        });
    }
}
