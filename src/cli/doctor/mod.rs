//! `corelog doctor`: checks this host against what a broker with this
//! config needs (io_uring, locked memory, file descriptors, cores, the log
//! directory's filesystem and disk, kernel settings) and prints one line
//! per check with its verdict and the fix, or one JSON document. Like
//! `rpk redpanda check`, it only reads (and writes scratch files in the log
//! directory); `corelog tune` applies the fixes that can be applied.
//!
//! The host is read through `host::HostFiles`, so each verdict can be
//! tested against a fake /proc and /sys; each check judges its readings in
//! a function of its own. Split by concern: `process` (kernel, io_uring
//! and the process's limits), `cpu` (cores, governor, clock source),
//! `memory` (huge pages, swap), `disk` (the log directory), `network`
//! (socket buffer maxima); this file runs them and prints the verdicts.

mod cpu;
mod disk;
mod memory;
mod network;
mod process;

pub use cpu::{governors, shard_cores};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::host::{self, HostFiles};
use crate::config::{Config, Cores, ServeArgs};

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
        process::kernel_check(host.read("/proc/sys/kernel/osrelease").ok().as_deref()),
        process::io_uring_check(
            host.read("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .as_deref(),
            status.as_deref().and_then(host::effective_uid),
            host::probe_io_uring(64 * 1024),
        ),
        process::memlock_check(limits.as_deref(), status.as_deref(), config),
        process::open_files_check(limits.as_deref(), config),
        cpu::cpus_check(host, status.as_deref(), config),
        cpu::governor_check(host),
        memory::thp_check(
            host.read("/sys/kernel/mm/transparent_hugepage/enabled")
                .ok()
                .as_deref(),
        ),
    ];
    checks.extend(disk::log_dir_checks(&config.data_dir, log_dir.as_deref()));
    checks.push(cpu::clock_source_check(host));
    checks.push(memory::swap_check(
        host.read("/proc/meminfo").ok().as_deref(),
        host.read("/proc/sys/vm/swappiness").ok().as_deref(),
    ));
    checks.push(network::socket_buffers_check(host, config));
    checks
}

/// The data directory, or its nearest existing parent when `serve` has
/// not created it yet (the same filesystem, most likely).
fn existing_ancestor(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::disk::*;
    use super::memory::*;
    use super::process::*;
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
