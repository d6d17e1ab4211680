//! Memory settings that stall a shard: transparent huge pages
//! (compaction) and swap.

use super::Check;
use crate::cli::host;

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
