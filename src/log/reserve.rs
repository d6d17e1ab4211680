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
//! exists"), so shards need no coordination. Blocking: call from a
//! blocking thread or where a short syscall is acceptable.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the reserve file in the data directory.
pub const RESERVE_FILE: &str = ".corelog-reserve";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(RESERVE_FILE)
}

/// Makes sure the reserve exists with its full size (written, not sparse:
/// a sparse file would reserve nothing). Ok(true) when it was (re)created.
/// On a disk too full to hold it, Err with ENOSPC and nothing left behind.
pub fn ensure(data_dir: &Path, bytes: u64) -> io::Result<bool> {
    let target = path(data_dir);
    if fs::metadata(&target).is_ok_and(|m| m.len() == bytes) {
        return Ok(false);
    }
    let tmp = data_dir.join(format!("{RESERVE_FILE}.tmp"));
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        let chunk = vec![0u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(true)
}

/// Deletes the reserve (and a half-written one), freeing its space.
/// Returns the bytes freed (0 when there was none).
pub fn release(data_dir: &Path) -> u64 {
    let target = path(data_dir);
    let size = fs::metadata(&target).map_or(0, |m| m.len());
    let _ = fs::remove_file(data_dir.join(format!("{RESERVE_FILE}.tmp")));
    match fs::remove_file(&target) {
        Ok(()) => size,
        Err(_) => 0,
    }
}

/// Runs `write`; when it fails because the disk is full, releases the
/// reserve (logging why) and runs it once more.
pub fn with_reserve<T>(
    data_dir: &Path,
    what: &str,
    mut write: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    match write() {
        Err(e) if crate::io::is_no_space(&e) => {
            let freed = release(data_dir);
            if freed == 0 {
                return Err(e);
            }
            log::warn!(
                "{}: disk full while writing {what}: released the {freed}-byte reserve {RESERVE_FILE} \
                 to make room (it is recreated once space returns)",
                data_dir.display()
            );
            write()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_created_released_and_used() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure(dir.path(), 8192).unwrap());
        assert!(!ensure(dir.path(), 8192).unwrap());
        assert_eq!(fs::metadata(path(dir.path())).unwrap().len(), 8192);
        let mut calls = 0;
        let result = with_reserve(dir.path(), "a test file", || {
            calls += 1;
            if calls == 1 {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            } else {
                Ok(7)
            }
        });
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 2);
        assert!(!path(dir.path()).exists());
        // Without a reserve left, the failure is returned as it is.
        let again: io::Result<()> = with_reserve(dir.path(), "a test file", || {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        });
        assert!(crate::io::is_no_space(&again.unwrap_err()));
        assert_eq!(release(dir.path()), 0);
    }
}
