//! What the broker process needs of the kernel: a kernel with glommio's
//! io_uring, io_uring allowed, and the locked-memory and open-file limits.

use std::path::Path;

use super::Check;
use crate::cli::host;
use crate::config::Config;

/// glommio needs 5.8 (io_uring opcodes and registered buffers it uses).
pub const KERNEL_MIN: (u32, u32) = (5, 8);

pub fn kernel_check(release: Option<&str>) -> Check {
    let Some(release) = release else {
        return Check::unknown("kernel", "/proc/sys/kernel/osrelease unreadable".into());
    };
    match host::kernel_version(release) {
        Some(version) if version >= KERNEL_MIN => Check::ok("kernel", release.into()),
        Some(_) => Check::fatal(
            "kernel",
            format!("{release}: older than 5.8, too old for glommio's io_uring"),
            "run on Linux 5.8 or newer (5.15+ recommended)".into(),
        ),
        None => Check::unknown("kernel", format!("{release:?}: not a version")),
    }
}

pub fn io_uring_check(
    disabled: Option<&str>,
    euid: Option<u32>,
    probe: Result<(), String>,
) -> Check {
    let fix_sysctl = "sysctl -w kernel.io_uring_disabled=0".to_string();
    match disabled {
        Some("2") => {
            return Check::fatal("io_uring", "kernel.io_uring_disabled=2".into(), fix_sysctl)
        }
        Some("1") if euid != Some(0) => {
            return Check::fatal(
                "io_uring",
                "kernel.io_uring_disabled=1: only root and kernel.io_uring_group may use it".into(),
                format!("{fix_sysctl}, or run as a member of kernel.io_uring_group"),
            )
        }
        _ => {}
    }
    match probe {
        Ok(()) => Check::ok("io_uring", "io_uring_setup works (a glommio executor started)".into()),
        Err(e) => Check::fatal(
            "io_uring",
            format!("a glommio executor did not start: {e}"),
            "check seccomp (containers block io_uring_setup by default: --security-opt seccomp=unconfined) and the memlock limit".into(),
        ),
    }
}

/// The rings of one glommio executor that each register its io memory;
/// the kernel charges every registration to RLIMIT_MEMLOCK.
pub const RINGS_PER_SHARD: u64 = 3;
/// Below this glommio refuses to start an executor at all.
pub const GLOMMIO_MEMLOCK_MIN: u64 = 512 * 1024;

pub fn memlock_check(limits: Option<&str>, status: Option<&str>, config: &Config) -> Check {
    let need = config.tuning.io_memory_bytes as u64 * config.shards as u64 * RINGS_PER_SHARD;
    let Some(limit) = limits.and_then(|l| host::soft_limit(l, "Max locked memory")) else {
        return Check::unknown("memlock", "/proc/self/limits unreadable".into());
    };
    let fix = format!(
        "raise RLIMIT_MEMLOCK to {need} bytes or more: LimitMEMLOCK={need} in the systemd unit, \
         `ulimit -l {}` before serve, or memlock in /etc/security/limits.conf",
        need.div_ceil(1024)
    );
    let reading = format!(
        "limit {limit} bytes; io memory {} x {} shards x {RINGS_PER_SHARD} rings = {need}",
        config.tuning.io_memory_bytes, config.shards
    );
    if !limit.at_least(GLOMMIO_MEMLOCK_MIN) {
        return Check::fatal(
            "memlock",
            format!("{reading}; below 512 KiB glommio refuses to start"),
            fix,
        );
    }
    let exempt = status.and_then(|s| host::has_capability(s, host::CAP_IPC_LOCK)) == Some(true);
    if limit.at_least(need) || exempt {
        let why = if exempt {
            " (CAP_IPC_LOCK: not charged)"
        } else {
            ""
        };
        return Check::ok("memlock", format!("{reading}{why}"));
    }
    Check::warn(
        "memlock",
        format!("{reading}; io buffers go unregistered (slower writes)"),
        fix,
    )
}

/// Descriptors beside the logs: listeners, rings, eventfds, snapshots,
/// the metadata log.
const BASE_FILES: u64 = 1024;
/// Connections assumed when `max.connections` does not bound them.
const CONNECTIONS_ASSUMED: u64 = 10_000;

pub fn open_files_check(limits: Option<&str>, config: &Config) -> Check {
    let Some(limit) = limits.and_then(|l| host::soft_limit(l, "Max open files")) else {
        return Check::unknown("open_files", "/proc/self/limits unreadable".into());
    };
    let (partitions, segments) = count_log_files(&config.data_dir);
    let connections = match config.broker.max_connections {
        n if n > 0 && n < i32::MAX => n as u64,
        _ => CONNECTIONS_ASSUMED,
    };
    // Each open segment holds its .log open; a partition has at least one.
    let logs = segments.max(partitions);
    let need = logs + connections + BASE_FILES;
    let reading = format!(
        "limit {limit}; {partitions} partitions, {segments} segments, {connections} connections: need {need}"
    );
    let fix = format!(
        "raise RLIMIT_NOFILE: LimitNOFILE={} in the systemd unit or `ulimit -n {}`",
        need.max(65_536),
        need.max(65_536)
    );
    if !limit.at_least(logs + BASE_FILES) {
        Check::fatal(
            "open_files",
            format!("{reading}; too few to open the logs"),
            fix,
        )
    } else if !limit.at_least(need) {
        Check::warn("open_files", reading, fix)
    } else {
        Check::ok("open_files", reading)
    }
}

/// Most directory entries counted under the data directory.
const LOG_FILES_COUNTED_MAX: usize = 1_000_000;

/// (partition directories, segment .log files) under the data directory.
fn count_log_files(data_dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return (0, 0);
    };
    let (mut partitions, mut segments, mut seen) = (0, 0, 0);
    for entry in entries.filter_map(|e| e.ok()).take(host::DIR_ENTRIES_MAX) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_partition = name
            .rsplit_once('-')
            .is_some_and(|(_, index)| index.parse::<u32>().is_ok());
        if !is_partition || !entry.path().is_dir() {
            continue;
        }
        partitions += 1;
        let Ok(files) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        for file in files.filter_map(|f| f.ok()).take(host::DIR_ENTRIES_MAX) {
            seen += 1;
            if file.file_name().to_string_lossy().ends_with(".log") {
                segments += 1;
            }
        }
        if seen > LOG_FILES_COUNTED_MAX {
            break;
        }
    }
    (partitions, segments)
}
