//! The cores: how the shards fit the allowed and isolated ones, their
//! frequency governor, and the clock source every timestamp reads.

use super::Check;
use crate::cli::host::{self, HostFiles};
use crate::config::Config;
use crate::shard::placement;

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
