//! The host as `corelog doctor` and `corelog tune` see it: every reading
//! and writing of /proc and /sys goes through [`HostFiles`], which resolves
//! those paths under a root directory (`/` normally, a directory laid out
//! like /proc and /sys in tests or for a host mounted elsewhere), plus the
//! parsers of what those files hold. The probes that must touch the real
//! kernel (statfs, O_DIRECT, fdatasync timing, an io_uring ring) are here
//! too, as plain functions whose outcomes the checks judge.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest host file read: /proc and /sys values are a line or a table.
const HOST_FILE_BYTES_MAX: u64 = 64 * 1024;
/// Most entries read from one host directory (CPUs, IRQs, partitions).
pub const DIR_ENTRIES_MAX: usize = 16_384;
/// Most CPUs a CPU list may name (the kernel's NR_CPUS ceiling).
const CPUS_MAX: usize = 8192;

/// /proc and /sys under a root directory.
#[derive(Clone, Debug)]
pub struct HostFiles {
    root: PathBuf,
}

impl HostFiles {
    pub fn new(root: PathBuf) -> HostFiles {
        HostFiles { root }
    }

    /// Whether this is the machine itself rather than a copy of its files.
    pub fn is_real(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Where a host path such as `/proc/sys/vm/swappiness` lives under the root.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// The file's text, trimmed; bounded, since a fake root may hold anything.
    pub fn read(&self, host_path: &str) -> io::Result<String> {
        use std::io::Read;
        let mut text = String::new();
        fs::File::open(self.path(host_path))?
            .take(HOST_FILE_BYTES_MAX)
            .read_to_string(&mut text)?;
        Ok(text.trim().to_string())
    }

    /// Writes `value` the way `echo value > path` does (sysfs and procfs
    /// take one write of the whole value).
    pub fn write(&self, host_path: &str, value: &str) -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.path(host_path))?;
        file.write_all(format!("{value}\n").as_bytes())
    }

    /// Names in a host directory, sorted, at most [`DIR_ENTRIES_MAX`].
    pub fn list(&self, host_dir: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.path(host_dir))?
            .filter_map(|entry| entry.ok())
            .take(DIR_ENTRIES_MAX)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort_by(|a, b| natural_order(a, b));
        Ok(names)
    }

    /// The host path a symlink such as `/sys/dev/block/8:1` resolves to,
    /// as a host path (without the root).
    pub fn resolve(&self, host_path: &str) -> io::Result<String> {
        let real = fs::canonicalize(self.path(host_path))?;
        let root = fs::canonicalize(&self.root)?;
        let inside = real
            .strip_prefix(&root)
            .map_err(|_| io::Error::other(format!("{host_path} leads outside the host root")))?;
        Ok(format!("/{}", inside.display()))
    }
}

/// `cpu10` after `cpu9`, IRQ 100 after IRQ 99.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head.to_string(), tail.parse::<u64>().ok())
    };
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// A limit from /proc/self/limits: a number, or no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    Value(u64),
}

impl Limit {
    pub fn at_least(self, need: u64) -> bool {
        match self {
            Limit::Unlimited => true,
            Limit::Value(v) => v >= need,
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Unlimited => f.write_str("unlimited"),
            Limit::Value(v) => write!(f, "{v}"),
        }
    }
}

/// The soft limit of the row `name` (e.g. "Max locked memory") in the
/// text of /proc/<pid>/limits.
pub fn soft_limit(limits: &str, name: &str) -> Option<Limit> {
    let rest = limits.lines().find_map(|line| line.strip_prefix(name))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(Limit::Unlimited),
        number => number.parse().ok().map(Limit::Value),
    }
}

/// A field of /proc/<pid>/status, e.g. `Cpus_allowed_list`.
pub fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == field).then(|| value.trim())
    })
}

/// The effective user id in /proc/<pid>/status (`Uid: real effective ...`).
pub fn effective_uid(status: &str) -> Option<u32> {
    status_field(status, "Uid")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether the capability numbered `bit` is in `CapEff` of /proc/<pid>/status.
pub fn has_capability(status: &str, bit: u32) -> Option<bool> {
    let mask = u64::from_str_radix(status_field(status, "CapEff")?, 16).ok()?;
    Some(bit < 64 && mask & (1 << bit) != 0)
}

/// CAP_IPC_LOCK: pinned memory (io_uring's registered buffers) is not
/// charged against RLIMIT_MEMLOCK for a process that has it.
pub const CAP_IPC_LOCK: u32 = 14;

/// A CPU list as the kernel writes it (`0-3,8,10-11`; empty for none).
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.trim().is_empty()) {
        let (first, last) = match part.trim().split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let cpu: usize = part.trim().parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last || last >= CPUS_MAX || cpus.len() + (last - first) >= CPUS_MAX {
            return None;
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// A CPU list in the kernel's form, ranges folded: `0-3,8`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if start == cpus[i] {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// The selected choice of a sysfs file that brackets it, as
/// `always [madvise] never` or `[mq-deadline] kyber none`, and every choice.
/// A lone word is the choice itself (a queue without schedulers shows
/// `none`).
pub fn bracketed_choice(text: &str) -> Option<(String, Vec<String>)> {
    if let [only] = text.split_whitespace().collect::<Vec<_>>()[..] {
        let only = only.trim_start_matches('[').trim_end_matches(']');
        return Some((only.to_string(), vec![only.to_string()]));
    }
    let mut selected = None;
    let mut choices = Vec::new();
    for word in text.split_whitespace() {
        match word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
            Some(chosen) => {
                selected = Some(chosen.to_string());
                choices.push(chosen.to_string());
            }
            None => choices.push(word.to_string()),
        }
    }
    Some((selected?, choices))
}

/// (major, minor) of /proc/sys/kernel/osrelease (`6.1.0-18-amd64`).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.split(|c: char| !c.is_ascii_digit());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

/// A `kB` row of /proc/meminfo, in bytes.
pub fn meminfo_bytes(meminfo: &str, row: &str) -> Option<u64> {
    let rest = meminfo
        .lines()
        .find_map(|line| line.strip_prefix(row)?.strip_prefix(':'))?;
    let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The filesystem under a path: its statfs magic, in words, and its space.
#[derive(Clone, Debug)]
pub struct FsInfo {
    pub magic: u64,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

pub fn statfs(path: &Path) -> io::Result<FsInfo> {
    let stat = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    let block = stat.block_size() as u64;
    Ok(FsInfo {
        magic: stat.filesystem_type().0 as u64,
        total_bytes: (stat.blocks() as u64).saturating_mul(block),
        available_bytes: (stat.blocks_available() as u64).saturating_mul(block),
    })
}

pub const EXT4_MAGIC: u64 = 0xEF53;
pub const XFS_MAGIC: u64 = 0x5846_5342;
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
pub const OVERLAYFS_MAGIC: u64 = 0x794C_7630;
pub const NFS_MAGIC: u64 = 0x6969;
pub const BTRFS_MAGIC: u64 = 0x9123_683E;
pub const ZFS_MAGIC: u64 = 0x2FC1_2FC1;
pub const FUSE_MAGIC: u64 = 0x6573_5546;

/// A filesystem's name from its statfs magic.
pub fn filesystem_name(magic: u64) -> String {
    match magic {
        EXT4_MAGIC => "ext4".into(),
        XFS_MAGIC => "xfs".into(),
        TMPFS_MAGIC => "tmpfs".into(),
        OVERLAYFS_MAGIC => "overlay".into(),
        NFS_MAGIC => "nfs".into(),
        BTRFS_MAGIC => "btrfs".into(),
        ZFS_MAGIC => "zfs".into(),
        FUSE_MAGIC => "fuse".into(),
        other => format!("magic {other:#x}"),
    }
}

/// The block O_DIRECT probes write: the largest logical block size in use.
const DIRECT_BLOCK_BYTES: usize = 4096;

/// A scratch file in `dir`, removed when dropped.
struct ScratchFile(PathBuf);

impl ScratchFile {
    fn new(dir: &Path, what: &str) -> ScratchFile {
        ScratchFile(dir.join(format!(".corelog-doctor-{what}-{}", std::process::id())))
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Opens a scratch file in `dir` with O_DIRECT and writes one aligned
/// block, as the broker's segment writes do.
pub fn probe_direct_io(dir: &Path) -> io::Result<()> {
    let scratch = ScratchFile::new(dir, "direct");
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&scratch.0)?;
    // An aligned block out of a larger buffer: O_DIRECT wants the memory
    // aligned as well as the offset and length.
    let buffer = vec![0x5a_u8; 2 * DIRECT_BLOCK_BYTES];
    let start = buffer.as_ptr().align_offset(DIRECT_BLOCK_BYTES);
    let block = buffer
        .get(start..start + DIRECT_BLOCK_BYTES)
        .ok_or_else(|| io::Error::other("no aligned block in the buffer"))?;
    file.write_all_at(block, 0)?;
    file.sync_data()
}

/// fdatasync latencies of `writes` 4 KiB writes to a scratch file in
/// `dir`, sorted; stops early once `budget` is spent.
pub fn measure_sync_latency(
    dir: &Path,
    writes: usize,
    budget: Duration,
) -> io::Result<Vec<Duration>> {
    let scratch = ScratchFile::new(dir, "fsync");
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&scratch.0)?;
    let block = [0xa5_u8; 4096];
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(writes);
    for i in 0..writes {
        let begin = Instant::now();
        file.write_all_at(&block, (i * block.len()) as u64)?;
        file.sync_data()?;
        latencies.push(begin.elapsed());
        if started.elapsed() > budget {
            break;
        }
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// The latency at `percent` of sorted latencies.
pub fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = (sorted.len() * percent.min(100))
        .div_ceil(100)
        .saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

/// Starts a glommio executor (its io_uring rings) with `io_memory_bytes`
/// and runs one task on it, as each shard does at start.
pub fn probe_io_uring(io_memory_bytes: usize) -> Result<(), String> {
    let builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("doctor-probe")
        .io_memory(io_memory_bytes);
    match builder.spawn(|| async {}) {
        Ok(handle) => handle.join().map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max open files            1024                 524288               files
Max locked memory         65536                65536                bytes
Max address space         unlimited            unlimited            bytes
";

    #[test]
    fn soft_limits_are_read_from_proc_limits() {
        assert_eq!(
            soft_limit(LIMITS, "Max open files"),
            Some(Limit::Value(1024))
        );
        assert_eq!(
            soft_limit(LIMITS, "Max locked memory"),
            Some(Limit::Value(65536))
        );
        assert_eq!(
            soft_limit(LIMITS, "Max address space"),
            Some(Limit::Unlimited)
        );
        assert_eq!(soft_limit(LIMITS, "Max processes"), None);
        assert!(Limit::Unlimited.at_least(u64::MAX));
        assert!(!Limit::Value(10).at_least(11));
    }

    #[test]
    fn status_fields_uid_and_capabilities() {
        let status = "Name:\tcorelog\nUid:\t1000\t0\t0\t0\nCpus_allowed_list:\t0-3,6\nCapEff:\t0000000000004000\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(status_field(status, "Cpus_allowed_list"), Some("0-3,6"));
        assert_eq!(has_capability(status, CAP_IPC_LOCK), Some(true));
        assert_eq!(has_capability(status, 21), Some(false));
        assert_eq!(effective_uid("Name: x"), None);
    }

    #[test]
    fn cpu_lists_parse_and_fold() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("0-99999999"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpu_list(&[5]), "5");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn bracketed_choices_of_scheduler_and_thp() {
        let (chosen, all) = bracketed_choice("[mq-deadline] kyber bfq none").unwrap();
        assert_eq!(chosen, "mq-deadline");
        assert_eq!(all, ["mq-deadline", "kyber", "bfq", "none"]);
        let (chosen, _) = bracketed_choice("always [madvise] never").unwrap();
        assert_eq!(chosen, "madvise");
        assert_eq!(
            bracketed_choice("none"),
            Some(("none".to_string(), vec!["none".to_string()]))
        );
        assert_eq!(bracketed_choice("always madvise never"), None);
        assert_eq!(bracketed_choice(""), None);
    }

    #[test]
    fn kernel_versions_and_meminfo_rows() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(
            kernel_version("5.15.153.1-microsoft-standard-WSL2"),
            Some((5, 15))
        );
        assert_eq!(kernel_version("garbage"), None);
        let meminfo = "MemTotal:  1000 kB\nSwapTotal:   2048 kB\nSwapFree:  1024 kB\n";
        assert_eq!(meminfo_bytes(meminfo, "SwapTotal"), Some(2048 * 1024));
        assert_eq!(meminfo_bytes(meminfo, "Swap"), None);
    }

    #[test]
    fn percentiles_of_sorted_latencies() {
        let sorted: Vec<Duration> = (1..=200).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 50), Duration::from_micros(100));
        assert_eq!(percentile(&sorted, 99), Duration::from_micros(198));
        assert_eq!(percentile(&[], 99), Duration::ZERO);
    }

    #[test]
    fn host_files_resolve_under_the_root() {
        let root = std::env::temp_dir().join(format!("corelog-host-{}", std::process::id()));
        fs::create_dir_all(root.join("sys/block/vda/queue")).unwrap();
        fs::create_dir_all(root.join("sys/devices/system/cpu/cpu10")).unwrap();
        fs::create_dir_all(root.join("sys/devices/system/cpu/cpu9")).unwrap();
        let host = HostFiles::new(root.clone());
        // Writes replace a value; like sysfs, they never create a file.
        assert!(host
            .write("/sys/block/vda/queue/scheduler", "none")
            .is_err());
        fs::write(root.join("sys/block/vda/queue/scheduler"), "[bfq] none\n").unwrap();
        host.write("/sys/block/vda/queue/scheduler", "none")
            .unwrap();
        assert_eq!(host.read("/sys/block/vda/queue/scheduler").unwrap(), "none");
        assert_eq!(
            host.list("/sys/devices/system/cpu").unwrap(),
            ["cpu9", "cpu10"]
        );
        assert_eq!(host.resolve("/sys/block/vda").unwrap(), "/sys/block/vda");
        assert!(host.read("/sys/missing").is_err());
        assert!(!host.is_real());
        fs::remove_dir_all(root).unwrap();
    }
}
