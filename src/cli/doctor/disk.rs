//! The log directory: its filesystem, O_DIRECT, free space and the
//! disk's fdatasync latency.

use std::path::Path;
use std::time::Duration;

use super::Check;
use crate::cli::host;

/// The filesystem, O_DIRECT, free space and fdatasync latency of the log
/// directory (`existing`: it or its nearest existing parent).
pub fn log_dir_checks(data_dir: &Path, existing: Option<&Path>) -> Vec<Check> {
    let Some(dir) = existing else {
        let reading = format!("{}: no part of it exists", data_dir.display());
        return ["filesystem", "direct_io", "free_space", "sync_latency"]
            .into_iter()
            .map(|name| Check::unknown(name, reading.clone()))
            .collect();
    };
    let fs = host::statfs(dir);
    vec![
        filesystem_check(dir, fs.as_ref().map(|f| f.magic).map_err(|e| e.to_string())),
        direct_io_check(dir, host::probe_direct_io(dir)),
        free_space_check(dir, fs.as_ref().map_err(|e| e.to_string())),
        sync_latency_check(
            dir,
            host::measure_sync_latency(dir, SYNC_WRITES, SYNC_BUDGET),
        ),
    ]
}

pub fn filesystem_check(dir: &Path, magic: Result<u64, String>) -> Check {
    let magic = match magic {
        Ok(magic) => magic,
        Err(e) => return Check::unknown("filesystem", format!("statfs {}: {e}", dir.display())),
    };
    let name = host::filesystem_name(magic);
    let reading = format!("{} on {name}", dir.display());
    let fix = "put log.dirs on ext4 or xfs on a local disk".to_string();
    match magic {
        host::EXT4_MAGIC | host::XFS_MAGIC => Check::ok("filesystem", reading),
        host::TMPFS_MAGIC => Check::warn(
            "filesystem",
            format!("{reading}: memory, lost at reboot"),
            fix,
        ),
        host::OVERLAYFS_MAGIC => Check::warn(
            "filesystem",
            format!("{reading}: a container layer; mount a volume"),
            fix,
        ),
        host::NFS_MAGIC => Check::warn("filesystem", format!("{reading}: over the network"), fix),
        _ => Check::warn("filesystem", format!("{reading}: untested"), fix),
    }
}

pub fn direct_io_check(dir: &Path, probe: std::io::Result<()>) -> Check {
    match probe {
        Ok(()) => Check::ok(
            "direct_io",
            format!("O_DIRECT write of 4 KiB in {}", dir.display()),
        ),
        Err(e) => Check::fatal(
            "direct_io",
            format!("O_DIRECT write in {} failed: {e}", dir.display()),
            "put log.dirs on a filesystem with O_DIRECT (ext4, xfs)".into(),
        ),
    }
}

/// Free space below this, or below 10%, is worth a warning.
const FREE_BYTES_LOW: u64 = 10 * 1024 * 1024 * 1024;

pub fn free_space_check(dir: &Path, fs: Result<&host::FsInfo, String>) -> Check {
    let fs = match fs {
        Ok(fs) => fs,
        Err(e) => return Check::unknown("free_space", format!("statfs {}: {e}", dir.display())),
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let reading = format!(
        "{:.1} GiB free of {:.1} GiB",
        gib(fs.available_bytes),
        gib(fs.total_bytes)
    );
    if fs.available_bytes < FREE_BYTES_LOW || fs.available_bytes < fs.total_bytes / 10 {
        return Check::warn(
            "free_space",
            reading,
            "free space or lower retention (log.retention.bytes, retention.ms)".into(),
        );
    }
    Check::ok("free_space", reading)
}

const SYNC_WRITES: usize = 200;
const SYNC_BUDGET: Duration = Duration::from_secs(5);
/// A p99 fdatasync slower than this makes acks=all produce slow.
const SYNC_P99_SLOW: Duration = Duration::from_millis(5);

pub fn sync_latency_check(dir: &Path, measured: std::io::Result<Vec<Duration>>) -> Check {
    let sorted = match measured {
        Ok(sorted) if !sorted.is_empty() => sorted,
        Ok(_) => return Check::unknown("sync_latency", "no write measured".into()),
        Err(e) => {
            return Check::fatal(
                "sync_latency",
                format!("write+fdatasync in {} failed: {e}", dir.display()),
                "make the log directory writable".into(),
            )
        }
    };
    let (p50, p99) = (host::percentile(&sorted, 50), host::percentile(&sorted, 99));
    let reading = format!(
        "{} x 4 KiB write+fdatasync: p50 {:.2} ms, p99 {:.2} ms",
        sorted.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    if p99 > SYNC_P99_SLOW {
        return Check::warn(
            "sync_latency",
            reading,
            "a local NVMe disk, or a write-back cache with power-loss protection".into(),
        );
    }
    Check::ok("sync_latency", reading)
}
