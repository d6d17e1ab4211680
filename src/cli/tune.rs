//! `corelog tune`: applies the fixes `corelog doctor` names that are kernel
//! settings (as `rpk redpanda tune` does): the CPU frequency governor,
//! transparent huge pages, interrupts away from the shard cores, the log
//! disk's I/O scheduler, the socket buffer maxima. Each change is printed
//! with its old and new value and the command that undoes it; the old
//! value is read before anything is written, and a write that fails is
//! reported and the rest goes on. The changes last until reboot.
//!
//! Everything goes through `host::HostFiles`, so a test can tune a fake
//! root and look at the files.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::doctor::{self, DeploymentArgs};
use super::host::{self, HostFiles};
use crate::config::Config;

#[derive(Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Print what would change and change nothing (needs no root).
    #[arg(long)]
    pub dry_run: bool,
}

/// One setting to change: a host file, its value now and the one wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub old: String,
    pub new: String,
}

impl Change {
    /// The shell command that puts the old value back.
    pub fn undo(&self) -> String {
        format!("echo {} > {}", self.old, self.path)
    }
}

/// Exit status when a change could not be written, or tune refused.
pub const EXIT_FAILED: u8 = 1;

pub fn main(args: TuneArgs) -> ExitCode {
    let config = match args.deployment.build() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("corelog: {e}");
            return ExitCode::from(2);
        }
    };
    let host = args.deployment.host();
    if !args.dry_run {
        let euid = host
            .read("/proc/self/status")
            .ok()
            .and_then(|s| host::effective_uid(&s));
        if euid != Some(0) {
            eprintln!(
                "corelog: tune writes kernel settings and needs root (euid 0); --dry-run shows what it would change"
            );
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let (changes, notes) = plan(&host, &config);
    for note in &notes {
        println!("skip     {note}");
    }
    if changes.is_empty() {
        println!("nothing to change");
    }
    let mut failed = false;
    for change in &changes {
        let what = format!("{}: {} -> {}", change.path, change.old, change.new);
        if args.dry_run {
            println!("would    {what} | undo: {}", change.undo());
            continue;
        }
        match host.write(&change.path, &change.new) {
            Ok(()) => println!("changed  {what} | undo: {}", change.undo()),
            Err(e) => {
                failed = true;
                println!("failed   {what}: {e} (left as it was)");
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every change this host needs for `config`, and why others are skipped.
pub fn plan(host: &HostFiles, config: &Config) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    changes.extend(governor_changes(host));
    changes.extend(thp_change(host));
    match irq_changes(host, config) {
        Ok(irqs) => changes.extend(irqs),
        Err(note) => notes.push(note),
    }
    match scheduler_change(host, &config.data_dir) {
        Ok(change) => changes.extend(change),
        Err(note) => notes.push(note),
    }
    changes.extend(socket_buffer_changes(host, config));
    (changes, notes)
}

fn governor_changes(host: &HostFiles) -> Vec<Change> {
    doctor::governors(host)
        .into_iter()
        .filter(|(_, governor)| governor != "performance")
        .filter(|(cpu, _)| {
            // Only where the driver offers it (intel_pstate offers
            // performance and powersave; a file that does not say is tried).
            let offered =
                format!("/sys/devices/system/cpu/{cpu}/cpufreq/scaling_available_governors");
            host.read(&offered)
                .map(|list| list.split_whitespace().any(|g| g == "performance"))
                .unwrap_or(true)
        })
        .map(|(cpu, governor)| Change {
            path: format!("/sys/devices/system/cpu/{cpu}/cpufreq/scaling_governor"),
            old: governor,
            new: "performance".into(),
        })
        .collect()
}

const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

fn thp_change(host: &HostFiles) -> Option<Change> {
    let (mode, _) = host::bracketed_choice(&host.read(THP_ENABLED).ok()?)?;
    (mode == "always").then(|| Change {
        path: THP_ENABLED.into(),
        old: mode,
        new: "madvise".into(),
    })
}

/// Interrupts that may land on a shard core are moved to the other cores.
fn irq_changes(host: &HostFiles, config: &Config) -> Result<Vec<Change>, String> {
    let online = host
        .read("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| host::parse_cpu_list(&text))
        .ok_or("irq affinity: /sys/devices/system/cpu/online unreadable")?;
    if online.len() <= config.shards {
        return Err(format!(
            "irq affinity: {} cores for {} shards, no core to move interrupts to",
            online.len(),
            config.shards
        ));
    }
    let status = host.read("/proc/self/status").ok();
    let shard_cores = doctor::shard_cores(host, status.as_deref(), config);
    if shard_cores.is_empty() {
        return Err(
            "irq affinity: the shards are not pinned (--cores), so no core is theirs".into(),
        );
    }
    let others: Vec<usize> = online
        .iter()
        .copied()
        .filter(|c| !shard_cores.contains(c))
        .collect();
    let irqs = host
        .list("/proc/irq")
        .map_err(|e| format!("irq affinity: /proc/irq: {e}"))?;
    let mut changes = Vec::new();
    for irq in irqs.iter().filter(|name| name.parse::<u32>().is_ok()) {
        let path = format!("/proc/irq/{irq}/smp_affinity_list");
        let Some(current) = host.read(&path).ok() else {
            continue;
        };
        let Some(cpus) = host::parse_cpu_list(&current) else {
            continue;
        };
        if !cpus.iter().any(|c| shard_cores.contains(c)) {
            continue;
        }
        let kept: Vec<usize> = cpus
            .iter()
            .copied()
            .filter(|c| !shard_cores.contains(c))
            .collect();
        let new = if kept.is_empty() { &others } else { &kept };
        changes.push(Change {
            path,
            old: current,
            new: host::format_cpu_list(new),
        });
    }
    Ok(changes)
}

/// Schedulers that leave ordering to the device (what NVMe and virtio want).
const GOOD_SCHEDULERS: [&str; 2] = ["none", "mq-deadline"];

/// The log directory's disk scheduler to `none` (else `mq-deadline`).
fn scheduler_change(host: &HostFiles, data_dir: &Path) -> Result<Option<Change>, String> {
    let dir = data_dir
        .ancestors()
        .find(|p| p.is_dir())
        .ok_or_else(|| format!("scheduler: no part of {} exists", data_dir.display()))?;
    let dev = std::fs::metadata(dir)
        .map_err(|e| format!("scheduler: {}: {e}", dir.display()))?
        .dev();
    let (major, minor) = device_numbers(dev);
    let block = host
        .resolve(&format!("/sys/dev/block/{major}:{minor}"))
        .map_err(|_| {
            format!(
                "scheduler: {} is not on a block device ({major}:{minor})",
                dir.display()
            )
        })?;
    // A partition's queue is its disk's, one directory up.
    let disk = if host.path(&format!("{block}/partition")).exists() {
        Path::new(&block)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or(block)
    } else {
        block
    };
    let path = format!("{disk}/queue/scheduler");
    let line = host
        .read(&path)
        .map_err(|e| format!("scheduler: {path}: {e}"))?;
    let Some((current, offered)) = host::bracketed_choice(&line) else {
        return Ok(None);
    };
    if GOOD_SCHEDULERS.contains(&current.as_str()) {
        return Ok(None);
    }
    let Some(new) = GOOD_SCHEDULERS
        .iter()
        .find(|s| offered.iter().any(|o| o == *s))
    else {
        return Err(format!(
            "scheduler: {path} offers neither none nor mq-deadline ({line})"
        ));
    };
    Ok(Some(Change {
        path,
        old: current,
        new: new.to_string(),
    }))
}

/// (major, minor) of a `st_dev`, as glibc's gnu_dev_major/minor split it.
pub fn device_numbers(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// rmem_max/wmem_max up to the tuning's SO_RCVBUF/SO_SNDBUF, which the
/// kernel would otherwise cap.
fn socket_buffer_changes(host: &HostFiles, config: &Config) -> Vec<Change> {
    [
        ("rmem_max", config.tuning.socket_receive_buffer_bytes),
        ("wmem_max", config.tuning.socket_send_buffer_bytes),
    ]
    .into_iter()
    .filter(|(_, want)| *want > 0)
    .filter_map(|(key, want)| {
        let path = format!("/proc/sys/net/core/{key}");
        let old = host.read(&path).ok()?;
        let current: u64 = old.parse().ok()?;
        (current < want as u64).then(|| Change {
            path,
            old,
            new: want.to_string(),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_as_glibc_does() {
        // makedev(8, 1) and makedev(259, 65536)
        assert_eq!(device_numbers(0x801), (8, 1));
        let big = (259u64 & 0xfff) << 8 | ((65536u64 & !0xff) << 12);
        assert_eq!(device_numbers(big), (259, 65536));
    }

    #[test]
    fn undo_puts_the_old_value_back() {
        let change = Change {
            path: "/sys/kernel/mm/transparent_hugepage/enabled".into(),
            old: "always".into(),
            new: "madvise".into(),
        };
        assert_eq!(
            change.undo(),
            "echo always > /sys/kernel/mm/transparent_hugepage/enabled"
        );
    }
}
