//! `corelog doctor`: checks this host against what a broker with this
//! config needs (io_uring, locked memory, file descriptors, cores, the log
//! directory's filesystem and disk, kernel settings) and prints one line
//! per check with its verdict and the fix, or one JSON document. Like
//! `rpk redpanda check`, it only reads (and writes scratch files in the log
//! directory); `corelog tune` applies the fixes that can be applied.
//!
//! The host is read through `host::HostFiles`, so each verdict can be
//! tested against a fake /proc and /sys; each check judges its readings in
//! a function of its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::host::{self, HostFiles};
use crate::config::{Config, Cores, ServeArgs};
use crate::shard::placement;

/// The deployment to check or tune: the inputs `corelog serve` takes.
#[derive(Args, Clone, Debug)]
pub struct DeploymentArgs {
    /// The server config `serve` runs with (server.properties format, or TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The tuning profile `serve` runs with (see tuning/).
    #[arg(long)]
    pub tuning: Option<PathBuf>,
    /// The data directory `serve` runs with.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The number of shards `serve` runs with; defaults to one per core.
    #[arg(long)]
    pub shards: Option<usize>,
    /// Where the shards run, as `serve --cores` takes it.
    #[arg(long, value_name = "auto|none|LIST")]
    pub cores: Option<Cores>,
    /// Read and write /proc and /sys under this directory instead of /
    /// (a copy of a host's files, or tests).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
}

impl DeploymentArgs {
    /// The config `serve` would build from the same inputs.
    pub fn build(&self) -> Result<Config, String> {
        let args = ServeArgs {
            config: self.config.clone(),
            tuning: self.tuning.clone(),
            data_dir: self.data_dir.clone(),
            shards: self.shards,
            cores: self.cores.clone(),
            ..ServeArgs::default()
        };
        Config::build(&args).map_err(|e| e.to_string())
    }

    pub fn host(&self) -> HostFiles {
        HostFiles::new(self.host_root.clone())
    }
}

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Print one JSON document instead of one line per check.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Works, but slower or less safe than it could be.
    Warn,
    /// The broker will not start or will lose data.
    Fatal,
    /// The host did not say (a file missing or unreadable).
    Unknown,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fatal => "fatal",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One check's outcome: what was read and, unless ok, how to fix it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub reading: String,
    pub fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, reading: String, fix: Option<String>) -> Check {
        Check {
            name,
            verdict,
            reading,
            fix,
        }
    }
    fn ok(name: &'static str, reading: String) -> Check {
        Check::new(name, Verdict::Ok, reading, None)
    }
    fn warn(name: &'static str, reading: String, fix: String) -> Check {
        Check::new(name, Verdict::Warn, reading, Some(fix))
    }
    fn fatal(name: &'static str, reading: String, fix: String) -> Check {
        Check::new(name, Verdict::Fatal, reading, Some(fix))
    }
    fn unknown(name: &'static str, reading: String) -> Check {
        Check::new(name, Verdict::Unknown, reading, None)
    }
}

/// Exit status when a check is fatal (0: none is; 2: usage errors).
pub const EXIT_FATAL: u8 = 1;

pub fn main(args: DoctorArgs) -> ExitCode {
    let config = match args.deployment.build() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("corelog: {e}");
            return ExitCode::from(2);
        }
    };
    let host = args.deployment.host();
    let checks = run_checks(&host, &config);
    if args.json {
        let document = serde_json::json!({
            "data_dir": config.data_dir,
            "shards": config.shards,
            "checks": checks,
            "fatal": checks.iter().filter(|c| c.verdict == Verdict::Fatal).count(),
            "warn": checks.iter().filter(|c| c.verdict == Verdict::Warn).count(),
        });
        println!("{document:#}");
    } else {
        for check in &checks {
            println!("{}", line(check));
        }
    }
    if checks.iter().any(|c| c.verdict == Verdict::Fatal) {
        ExitCode::from(EXIT_FATAL)
    } else {
        ExitCode::SUCCESS
    }
}

/// `warn    thp   always | fix: corelog tune`
pub fn line(check: &Check) -> String {
    let mut line = format!(
        "{:<8}{:<16}{}",
        check.verdict.word(),
        check.name,
        check.reading
    );
    if let Some(fix) = &check.fix {
        line.push_str(" | fix: ");
        line.push_str(fix);
    }
    line
}

/// Every check, in the order they print.
pub fn run_checks(host: &HostFiles, config: &Config) -> Vec<Check> {
    let status = host.read("/proc/self/status").ok();
    let limits = host.read("/proc/self/limits").ok();
    let log_dir = existing_ancestor(&config.data_dir);
    let mut checks = vec![
        kernel_check(host.read("/proc/sys/kernel/osrelease").ok().as_deref()),
        io_uring_check(
            host.read("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .as_deref(),
            status.as_deref().and_then(host::effective_uid),
            host::probe_io_uring(64 * 1024),
        ),
        memlock_check(limits.as_deref(), status.as_deref(), config),
        open_files_check(limits.as_deref(), config),
        cpus_check(host, status.as_deref(), config),
        governor_check(host),
        thp_check(
            host.read("/sys/kernel/mm/transparent_hugepage/enabled")
                .ok()
                .as_deref(),
        ),
    ];
    checks.extend(log_dir_checks(&config.data_dir, log_dir.as_deref()));
    checks.push(clock_source_check(host));
    checks.push(swap_check(
        host.read("/proc/meminfo").ok().as_deref(),
        host.read("/proc/sys/vm/swappiness").ok().as_deref(),
    ));
    checks.push(socket_buffers_check(host, config));
    checks
}

/// The data directory, or its nearest existing parent when `serve` has
/// not created it yet (the same filesystem, most likely).
fn existing_ancestor(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
}

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

/// The cores this process may use (its affinity), from /proc/self/status.
pub fn allowed_cores(host: &HostFiles, status: Option<&str>) -> Option<Vec<usize>> {
    let listed = status.and_then(|s| host::status_field(s, "Cpus_allowed_list"));
    match listed {
        Some(list) => host::parse_cpu_list(list),
        None => host::parse_cpu_list(&host.read("/sys/devices/system/cpu/online").ok()?),
    }
}

/// The cores the shards are pinned to, when they are.
pub fn shard_cores(host: &HostFiles, status: Option<&str>, config: &Config) -> Vec<usize> {
    let Some(allowed) = allowed_cores(host, status) else {
        return Vec::new();
    };
    placement::plan(config.shards, &config.cores, &allowed)
        .map(|plan| plan.cores.into_iter().flatten().collect())
        .unwrap_or_default()
}

pub fn cpus_check(host: &HostFiles, status: Option<&str>, config: &Config) -> Check {
    let Some(allowed) = allowed_cores(host, status) else {
        return Check::unknown("cpus", "no affinity in /proc/self/status".into());
    };
    let isolated = host
        .read("/sys/devices/system/cpu/isolated")
        .ok()
        .and_then(|text| host::parse_cpu_list(&text))
        .unwrap_or_default();
    let plan = match placement::plan(config.shards, &config.cores, &allowed) {
        Ok(plan) => plan,
        Err(e) => return Check::fatal("cpus", e, "--cores within the process's affinity".into()),
    };
    let reading = format!(
        "{} shards on allowed cores {} (isolated: {})",
        config.shards,
        host::format_cpu_list(&allowed),
        if isolated.is_empty() {
            "none".into()
        } else {
            host::format_cpu_list(&isolated)
        }
    );
    if plan.oversubscribed {
        return Check::warn(
            "cpus",
            format!("{reading}; more shards than cores: they take turns"),
            format!("--shards {}", allowed.len()),
        );
    }
    let pinned: Vec<usize> = plan.cores.iter().flatten().copied().collect();
    if !isolated.is_empty() && pinned.iter().any(|c| !isolated.contains(c)) {
        return Check::warn(
            "cpus",
            format!(
                "{reading}; shards pinned to {} outside the isolated cores",
                host::format_cpu_list(&pinned)
            ),
            format!("--cores {}", host::format_cpu_list(&isolated)),
        );
    }
    Check::ok("cpus", reading)
}

/// (cpu name, governor) of every CPU with cpufreq.
pub fn governors(host: &HostFiles) -> Vec<(String, String)> {
    let cpus = host.list("/sys/devices/system/cpu").unwrap_or_default();
    cpus.into_iter()
        .filter(|name| {
            name.strip_prefix("cpu")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|cpu| {
            let path = format!("/sys/devices/system/cpu/{cpu}/cpufreq/scaling_governor");
            host.read(&path).ok().map(|governor| (cpu, governor))
        })
        .collect()
}

pub fn governor_check(host: &HostFiles) -> Check {
    let governors = governors(host);
    if governors.is_empty() {
        return Check::unknown(
            "cpu_governor",
            "no cpufreq scaling_governor (a VM, or the firmware sets the frequency)".into(),
        );
    }
    let slow: Vec<String> = governors
        .iter()
        .filter(|(_, governor)| governor != "performance")
        .map(|(cpu, governor)| format!("{cpu}={governor}"))
        .collect();
    if slow.is_empty() {
        return Check::ok(
            "cpu_governor",
            format!("performance on {} cpus", governors.len()),
        );
    }
    Check::warn(
        "cpu_governor",
        slow.join(" "),
        "corelog tune (or cpupower frequency-set -g performance)".into(),
    )
}

pub fn thp_check(enabled: Option<&str>) -> Check {
    let Some((mode, _)) = enabled.and_then(host::bracketed_choice) else {
        return Check::unknown(
            "thp",
            "/sys/kernel/mm/transparent_hugepage/enabled unreadable".into(),
        );
    };
    if mode == "always" {
        return Check::warn(
            "thp",
            "always: khugepaged compaction stalls the shards".into(),
            "corelog tune (or echo madvise > /sys/kernel/mm/transparent_hugepage/enabled)".into(),
        );
    }
    Check::ok("thp", mode)
}

/// The filesystem, O_DIRECT, free space and fdatasync latency of the log
/// directory (`existing`: it or its nearest existing parent).
fn log_dir_checks(data_dir: &Path, existing: Option<&Path>) -> Vec<Check> {
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

pub fn clock_source_check(host: &HostFiles) -> Check {
    const CURRENT: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    let Ok(source) = host.read(CURRENT) else {
        return Check::unknown("clock_source", format!("{CURRENT} unreadable"));
    };
    if source == "tsc" {
        return Check::ok("clock_source", source);
    }
    let available = host
        .read("/sys/devices/system/clocksource/clocksource0/available_clocksource")
        .unwrap_or_default();
    let fix = if available.split_whitespace().any(|s| s == "tsc") {
        format!("echo tsc > {CURRENT} (and clocksource=tsc on the kernel command line)")
    } else {
        "none here: no tsc offered (a VM without a stable TSC)".into()
    };
    Check::warn(
        "clock_source",
        format!("{source}: clock reads are slower than tsc"),
        fix,
    )
}

pub fn swap_check(meminfo: Option<&str>, swappiness: Option<&str>) -> Check {
    let Some(meminfo) = meminfo else {
        return Check::unknown("swap", "/proc/meminfo unreadable".into());
    };
    let total = host::meminfo_bytes(meminfo, "SwapTotal").unwrap_or(0);
    let free = host::meminfo_bytes(meminfo, "SwapFree").unwrap_or(total);
    let swappiness: Option<u32> = swappiness.and_then(|s| s.parse().ok());
    if total == 0 {
        return Check::ok("swap", "no swap".into());
    }
    let used = total.saturating_sub(free);
    let reading = format!(
        "{} MiB in use of {} MiB, swappiness {}",
        used >> 20,
        total >> 20,
        swappiness.map_or("unknown".into(), |s| s.to_string())
    );
    if used > 0 || swappiness.is_some_and(|s| s > 1) {
        return Check::warn(
            "swap",
            reading,
            "sysctl -w vm.swappiness=1 (or swapoff -a); a swapped-out shard stalls every partition it owns".into(),
        );
    }
    Check::ok("swap", reading)
}

pub fn socket_buffers_check(host: &HostFiles, config: &Config) -> Check {
    let wanted = [
        ("rmem_max", config.tuning.socket_receive_buffer_bytes),
        ("wmem_max", config.tuning.socket_send_buffer_bytes),
    ];
    let mut readings = Vec::new();
    let mut short = Vec::new();
    for (key, want) in wanted {
        let current: Option<u64> = host
            .read(&format!("/proc/sys/net/core/{key}"))
            .ok()
            .and_then(|v| v.parse().ok());
        readings.push(format!(
            "{key} {} (tuning {})",
            current.map_or("unknown".into(), |c| c.to_string()),
            if want == 0 {
                "kernel default".into()
            } else {
                want.to_string()
            }
        ));
        if want > 0 && current.is_some_and(|c| c < want as u64) {
            short.push(format!("sysctl -w net.core.{key}={want}"));
        }
    }
    let reading = readings.join(", ");
    if !short.is_empty() {
        return Check::warn(
            "socket_buffers",
            format!("{reading}: the kernel caps SO_RCVBUF/SO_SNDBUF at these"),
            format!("corelog tune (or {})", short.join("; ")),
        );
    }
    Check::ok("socket_buffers", reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(shards: usize, io_memory_bytes: usize) -> Config {
        let mut config = Config::build(&ServeArgs {
            shards: Some(shards),
            cores: Some(Cores::Unpinned),
            data_dir: Some("/nonexistent/corelog-doctor".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        config.tuning.io_memory_bytes = io_memory_bytes;
        config
    }

    fn limits(memlock: &str, nofile: &str) -> String {
        format!(
            "Limit  Soft Limit  Hard Limit  Units\nMax open files            {nofile}  {nofile}  files\nMax locked memory         {memlock}  {memlock}  bytes\n"
        )
    }

    const NO_CAPS: &str = "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n";

    #[test]
    fn memlock_below_glommio_minimum_is_fatal_below_the_need_a_warning() {
        let config = config(2, 1 << 20);
        let low = memlock_check(Some(&limits("65536", "1024")), Some(NO_CAPS), &config);
        assert_eq!(low.verdict, Verdict::Fatal, "{low:?}");
        let short = memlock_check(Some(&limits("1048576", "1024")), Some(NO_CAPS), &config);
        assert_eq!(short.verdict, Verdict::Warn, "{short:?}");
        let enough = memlock_check(Some(&limits("6291456", "1024")), Some(NO_CAPS), &config);
        assert_eq!(enough.verdict, Verdict::Ok, "{enough:?}");
        let root = "Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n";
        let exempt = memlock_check(Some(&limits("1048576", "1024")), Some(root), &config);
        assert_eq!(exempt.verdict, Verdict::Ok, "{exempt:?}");
        assert_eq!(memlock_check(None, None, &config).verdict, Verdict::Unknown);
    }

    #[test]
    fn open_files_below_the_base_is_fatal() {
        let config = config(1, 1 << 20);
        assert_eq!(
            open_files_check(Some(&limits("unlimited", "256")), &config).verdict,
            Verdict::Fatal
        );
        assert_eq!(
            open_files_check(Some(&limits("unlimited", "4096")), &config).verdict,
            Verdict::Warn
        );
        assert_eq!(
            open_files_check(Some(&limits("unlimited", "unlimited")), &config).verdict,
            Verdict::Ok
        );
    }

    #[test]
    fn kernels_older_than_5_8_are_fatal() {
        assert_eq!(
            kernel_check(Some("5.4.0-150-generic")).verdict,
            Verdict::Fatal
        );
        assert_eq!(kernel_check(Some("5.8.0")).verdict, Verdict::Ok);
        assert_eq!(kernel_check(None).verdict, Verdict::Unknown);
    }

    #[test]
    fn io_uring_disabled_or_failing_is_fatal() {
        assert_eq!(
            io_uring_check(Some("2"), Some(0), Ok(())).verdict,
            Verdict::Fatal
        );
        assert_eq!(
            io_uring_check(Some("1"), Some(1000), Ok(())).verdict,
            Verdict::Fatal
        );
        assert_eq!(
            io_uring_check(Some("1"), Some(0), Ok(())).verdict,
            Verdict::Ok
        );
        let blocked = io_uring_check(Some("0"), Some(0), Err("Operation not permitted".into()));
        assert_eq!(blocked.verdict, Verdict::Fatal);
        assert!(blocked.reading.contains("Operation not permitted"));
    }

    #[test]
    fn a_filesystem_without_o_direct_is_fatal() {
        let dir = Path::new("/data");
        let failed = direct_io_check(dir, Err(std::io::Error::from_raw_os_error(libc::EINVAL)));
        assert_eq!(failed.verdict, Verdict::Fatal);
        assert!(failed.reading.contains("Invalid argument"), "{failed:?}");
        assert_eq!(direct_io_check(dir, Ok(())).verdict, Verdict::Ok);
    }

    #[test]
    fn filesystems_by_magic() {
        let dir = Path::new("/data");
        assert_eq!(
            filesystem_check(dir, Ok(host::XFS_MAGIC)).verdict,
            Verdict::Ok
        );
        assert_eq!(
            filesystem_check(dir, Ok(host::EXT4_MAGIC)).verdict,
            Verdict::Ok
        );
        for magic in [
            host::TMPFS_MAGIC,
            host::OVERLAYFS_MAGIC,
            host::NFS_MAGIC,
            0x1234,
        ] {
            assert_eq!(
                filesystem_check(dir, Ok(magic)).verdict,
                Verdict::Warn,
                "{magic:#x}"
            );
        }
        assert!(filesystem_check(dir, Ok(host::TMPFS_MAGIC))
            .reading
            .contains("tmpfs"));
        assert_eq!(
            filesystem_check(dir, Err("gone".into())).verdict,
            Verdict::Unknown
        );
    }

    #[test]
    fn thp_always_warns() {
        assert_eq!(
            thp_check(Some("[always] madvise never")).verdict,
            Verdict::Warn
        );
        assert_eq!(
            thp_check(Some("always [madvise] never")).verdict,
            Verdict::Ok
        );
        assert_eq!(
            thp_check(Some("always madvise [never]")).verdict,
            Verdict::Ok
        );
        assert_eq!(thp_check(None).verdict, Verdict::Unknown);
    }

    #[test]
    fn slow_fdatasync_and_swap_warn() {
        let dir = Path::new("/data");
        let fast = vec![Duration::from_micros(300); 200];
        assert_eq!(sync_latency_check(dir, Ok(fast)).verdict, Verdict::Ok);
        let slow = vec![Duration::from_millis(12); 200];
        assert_eq!(sync_latency_check(dir, Ok(slow)).verdict, Verdict::Warn);
        let meminfo = "SwapTotal: 1024 kB\nSwapFree: 512 kB\n";
        assert_eq!(swap_check(Some(meminfo), Some("1")).verdict, Verdict::Warn);
        let unused = "SwapTotal: 1024 kB\nSwapFree: 1024 kB\n";
        assert_eq!(swap_check(Some(unused), Some("60")).verdict, Verdict::Warn);
        assert_eq!(swap_check(Some(unused), Some("1")).verdict, Verdict::Ok);
        assert_eq!(
            swap_check(Some("SwapTotal: 0 kB\n"), None).verdict,
            Verdict::Ok
        );
    }
}
