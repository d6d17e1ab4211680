//! CPU and memory use of a process, from /proc: utime + stime of all its
//! threads (io_uring workers included, they belong to the process) and
//! VmRSS. Cores used = CPU seconds / wall seconds.

use std::time::Instant;

/// Clock ticks per second for /proc/<pid>/stat times.
fn ticks_per_s() -> f64 {
    // SAFETY-free: sysconf is a plain libc query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) used so far by `pid` (`None` = this process).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; fields after ')' are fixed.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is index 0, utime is field 14 overall → index 11, stime → 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_s())
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A before/after sample of one process's CPU time.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    at: Instant,
    cpu_s: Option<f64>,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            cpu_s: cpu_seconds(pid),
        }
    }

    /// A sample that yields no figure (for a process without a pid of its own).
    pub fn none() -> CpuSample {
        CpuSample {
            at: Instant::now(),
            cpu_s: None,
        }
    }

    /// Average cores used between `self` and `later`.
    pub fn cores_until(&self, later: &CpuSample) -> Option<f64> {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        match (self.cpu_s, later.cpu_s) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
            _ => None,
        }
    }
}

/// The CPUs this process may run on (its affinity mask).
pub fn allowed_cpus() -> Vec<usize> {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .map(|l| parse_cpu_list(l.split(':').nth(1).unwrap_or("").trim()))
        .unwrap_or_default()
}

/// Parses a cpu list such as "0-2,5".
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Pins the calling process (and every thread it starts afterwards) to `cpus`.
pub fn pin_self(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is its empty value, and
    // sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
