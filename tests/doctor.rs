//! `corelog doctor` and `corelog tune`: on this machine, and against a fake
//! root laid out like /proc and /sys (`--host-root`), where the failing
//! cases can be set up and the files tune writes looked at.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{corelog, corelog_fails_in_one_line, in_ci, TmpfsMount};

/// Every check doctor runs, in the order it prints them.
const CHECKS: [&str; 14] = [
    "kernel",
    "io_uring",
    "memlock",
    "open_files",
    "cpus",
    "cpu_governor",
    "thp",
    "filesystem",
    "direct_io",
    "free_space",
    "sync_latency",
    "clock_source",
    "swap",
    "socket_buffers",
];

fn check_names() -> Vec<&'static str> {
    CHECKS.to_vec()
}

const VERDICTS: [&str; 4] = ["ok", "warn", "fatal", "unknown"];

/// A directory of its own for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("corelog-doctor-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("{text}\n")).unwrap();
}

/// A host of four cores, every one on powersave, THP always, the log
/// disk on bfq, small socket buffer maxima, three interrupts: everything
/// tune changes is there to change. `uid` is the process's effective uid.
fn fake_host(root: &Path, data_dir: &Path, memlock: &str, uid: u32) {
    put(root, "proc/sys/kernel/osrelease", "6.1.0-18-amd64");
    put(root, "proc/sys/kernel/io_uring_disabled", "0");
    put(
        root,
        "proc/self/status",
        &format!("Name:\tcorelog\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nCpus_allowed_list:\t0-3\nCapEff:\t0000000000000000"),
    );
    put(
        root,
        "proc/self/limits",
        &format!(
            "Limit                     Soft Limit           Hard Limit           Units\n\
             Max open files            1048576              1048576              files\n\
             Max locked memory         {memlock}            {memlock}            bytes"
        ),
    );
    put(root, "sys/devices/system/cpu/online", "0-3");
    put(root, "sys/devices/system/cpu/isolated", "");
    for cpu in 0..4 {
        let dir = format!("sys/devices/system/cpu/cpu{cpu}/cpufreq");
        put(root, &format!("{dir}/scaling_governor"), "powersave");
        put(
            root,
            &format!("{dir}/scaling_available_governors"),
            "performance powersave",
        );
    }
    put(
        root,
        "sys/kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never",
    );
    put(
        root,
        "sys/devices/system/clocksource/clocksource0/current_clocksource",
        "tsc",
    );
    put(
        root,
        "proc/meminfo",
        "MemTotal: 8000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB",
    );
    put(root, "proc/sys/vm/swappiness", "60");
    put(root, "proc/sys/net/core/rmem_max", "212992");
    put(root, "proc/sys/net/core/wmem_max", "212992");
    put(root, "proc/irq/24/smp_affinity_list", "0-3");
    put(root, "proc/irq/25/smp_affinity_list", "1");
    put(root, "proc/irq/26/smp_affinity_list", "3");
    let (major, minor) = corelog::cli::tune::device_numbers(fs::metadata(data_dir).unwrap().dev());
    put(
        root,
        &format!("sys/dev/block/{major}:{minor}/queue/scheduler"),
        "mq-deadline [bfq] none",
    );
}

/// Every file under `root` and its contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.insert(path.clone(), fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

/// Two shards pinned to cores 0 and 1, socket buffers of 4 MiB.
fn deployment(scratch: &Path, root: &Path, data_dir: &Path) -> Vec<String> {
    let tuning = scratch.join("tuning.toml");
    fs::write(
        &tuning,
        "socket_receive_buffer_bytes = 4194304\nsocket_send_buffer_bytes = 4194304\n",
    )
    .unwrap();
    [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--tuning",
        tuning.to_str().unwrap(),
        "--shards",
        "2",
        "--cores",
        "0,1",
        "--host-root",
        root.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn args<'a>(command: &'a str, rest: &'a [String], extra: &'a [&'a str]) -> Vec<&'a str> {
    let mut args = vec![command];
    args.extend(rest.iter().map(String::as_str));
    args.extend_from_slice(extra);
    args
}

/// (verdict, name) of each doctor line.
fn verdicts(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let verdict = words.next().unwrap_or_default().to_string();
            let name = words.next().unwrap_or_default().to_string();
            (verdict, name)
        })
        .collect()
}

fn verdict_of(stdout: &str, check: &str) -> String {
    verdicts(stdout)
        .into_iter()
        .find(|(_, name)| name == check)
        .unwrap_or_else(|| panic!("no {check} line in:\n{stdout}"))
        .0
}

#[test]
fn doctor_on_this_machine_prints_one_line_per_check() {
    let scratch = Scratch::new("here");
    let run = corelog(&["doctor", "--data-dir", scratch.0.to_str().unwrap()], "");
    let lines = verdicts(&run.stdout);
    let names: Vec<&str> = lines.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, check_names(), "{run:?}");
    for (verdict, name) in &lines {
        assert!(
            VERDICTS.contains(&verdict.as_str()),
            "{name}: {verdict}\n{run:?}"
        );
    }
    let fatal = lines.iter().any(|(verdict, _)| verdict == "fatal");
    assert_eq!(
        run.status.code(),
        Some(if fatal { 1 } else { 0 }),
        "{run:?}"
    );
    // Each line not ok names its fix.
    for line in run
        .stdout
        .lines()
        .filter(|l| l.starts_with("warn") || l.starts_with("fatal"))
    {
        assert!(line.contains(" | fix: "), "{line}");
    }
    // The probes cleaned up after themselves.
    assert_eq!(fs::read_dir(&scratch.0).unwrap().count(), 0);
}

#[test]
fn doctor_json_has_every_check() {
    let scratch = Scratch::new("json");
    let run = corelog(
        &[
            "doctor",
            "--json",
            "--data-dir",
            scratch.0.to_str().unwrap(),
        ],
        "",
    );
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let checks = document["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, check_names());
    for check in checks {
        assert!(
            VERDICTS.contains(&check["verdict"].as_str().unwrap()),
            "{check}"
        );
        assert!(check["reading"].is_string(), "{check}");
    }
    let fatal = document["fatal"].as_u64().unwrap();
    assert_eq!(
        run.status.code(),
        Some(if fatal > 0 { 1 } else { 0 }),
        "{run:?}"
    );
}

#[test]
fn doctor_with_a_low_memlock_is_fatal_and_exits_1() {
    let scratch = Scratch::new("memlock");
    let (root, data) = (scratch.0.join("root"), scratch.0.join("data"));
    fs::create_dir_all(&data).unwrap();
    fake_host(&root, &data, "65536", 1000);
    let deployment = deployment(&scratch.0, &root, &data);
    let run = corelog(&args("doctor", &deployment, &[]), "");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(verdict_of(&run.stdout, "memlock"), "fatal", "{run:?}");
    assert!(run.stdout.contains("LimitMEMLOCK="), "{run:?}");
    // The rest of the fake host is read too.
    assert_eq!(verdict_of(&run.stdout, "cpu_governor"), "warn", "{run:?}");
    assert_eq!(verdict_of(&run.stdout, "thp"), "warn", "{run:?}");
    assert_eq!(verdict_of(&run.stdout, "socket_buffers"), "warn", "{run:?}");
    assert_eq!(verdict_of(&run.stdout, "kernel"), "ok", "{run:?}");

    // Enough locked memory: 2 shards x 10 MiB x 3 rings.
    fake_host(&root, &data, "67108864", 1000);
    let run = corelog(&args("doctor", &deployment, &[]), "");
    assert_eq!(verdict_of(&run.stdout, "memlock"), "ok", "{run:?}");
}

#[test]
fn doctor_reports_a_tmpfs_log_dir() {
    let scratch = Scratch::new("tmpfs");
    let mount_point = scratch.0.join("tmpfs");
    let mount = match TmpfsMount::mount(&mount_point, "64m") {
        Ok(mount) => mount,
        Err(why) => {
            assert!(!in_ci(), "cannot mount a tmpfs in CI: {why}");
            eprintln!("SKIPPED doctor_reports_a_tmpfs_log_dir: {why}");
            return;
        }
    };
    let data = mount.path.join("data");
    let run = corelog(&["doctor", "--data-dir", data.to_str().unwrap()], "");
    let line = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("filesystem"))
        .unwrap_or_else(|| panic!("{run:?}"))
        .to_string();
    assert!(line.starts_with("warn"), "{line}");
    assert!(line.contains("tmpfs"), "{line}");
    drop(mount);
}

#[test]
fn tune_dry_run_lists_the_changes_and_changes_nothing() {
    let scratch = Scratch::new("dry");
    let (root, data) = (scratch.0.join("root"), scratch.0.join("data"));
    fs::create_dir_all(&data).unwrap();
    // Not root: a dry run needs no privileges.
    fake_host(&root, &data, "67108864", 1000);
    let before = snapshot(&root);
    let deployment = deployment(&scratch.0, &root, &data);
    let run = corelog(&args("tune", &deployment, &["--dry-run"]), "");
    assert!(run.success(), "{run:?}");
    let would: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("would"))
        .collect();
    // 4 governors, THP, IRQs 24 and 25 (26 is on core 3 already), the
    // scheduler, rmem_max and wmem_max.
    assert_eq!(would.len(), 10, "{run:?}");
    for expected in [
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor: powersave -> performance",
        "/sys/kernel/mm/transparent_hugepage/enabled: always -> madvise",
        "/proc/irq/24/smp_affinity_list: 0-3 -> 2-3",
        "/proc/irq/25/smp_affinity_list: 1 -> 2-3",
        "/queue/scheduler: bfq -> none",
        "/proc/sys/net/core/rmem_max: 212992 -> 4194304",
    ] {
        assert!(run.stdout.contains(expected), "{expected}\n{run:?}");
    }
    assert!(!run.stdout.contains("/proc/irq/26"), "{run:?}");
    assert_eq!(snapshot(&root), before, "a dry run changed a file");
}

#[test]
fn tune_changes_the_files_and_prints_how_to_undo() {
    let scratch = Scratch::new("apply");
    let (root, data) = (scratch.0.join("root"), scratch.0.join("data"));
    fs::create_dir_all(&data).unwrap();
    fake_host(&root, &data, "67108864", 0);
    let deployment = deployment(&scratch.0, &root, &data);
    let run = corelog(&args("tune", &deployment, &[]), "");
    assert!(run.success(), "{run:?}");
    let read = |path: &str| {
        fs::read_to_string(root.join(path))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("sys/devices/system/cpu/cpu3/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        read("sys/kernel/mm/transparent_hugepage/enabled"),
        "madvise"
    );
    assert_eq!(read("proc/irq/24/smp_affinity_list"), "2-3");
    assert_eq!(read("proc/irq/26/smp_affinity_list"), "3");
    assert_eq!(read("proc/sys/net/core/wmem_max"), "4194304");
    assert!(
        run.stdout.contains(
            "changed  /sys/kernel/mm/transparent_hugepage/enabled: always -> madvise | undo: echo always > /sys/kernel/mm/transparent_hugepage/enabled"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("undo: echo 212992 > /proc/sys/net/core/rmem_max"),
        "{run:?}"
    );
    // Tuned, doctor has nothing left to say about them.
    let doctor = corelog(&args("doctor", &deployment, &[]), "");
    for check in ["cpu_governor", "thp", "socket_buffers"] {
        assert_eq!(verdict_of(&doctor.stdout, check), "ok", "{doctor:?}");
    }
    // And a second run changes nothing.
    let again = corelog(&args("tune", &deployment, &[]), "");
    assert!(again.stdout.contains("nothing to change"), "{again:?}");
}

#[test]
fn tune_without_root_refuses_and_changes_nothing() {
    let scratch = Scratch::new("refuse");
    let (root, data) = (scratch.0.join("root"), scratch.0.join("data"));
    fs::create_dir_all(&data).unwrap();
    fake_host(&root, &data, "67108864", 1000);
    let before = snapshot(&root);
    let deployment = deployment(&scratch.0, &root, &data);
    let line = corelog_fails_in_one_line(&args("tune", &deployment, &[]));
    assert!(line.contains("needs root"), "{line}");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn doctor_with_a_bad_config_is_a_usage_error() {
    let run = corelog(&["doctor", "--shards", "0"], "");
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}

#[test]
fn tune_reports_a_failed_write_and_goes_on() {
    let scratch = Scratch::new("failed");
    let (root, data) = (scratch.0.join("root"), scratch.0.join("data"));
    fs::create_dir_all(&data).unwrap();
    fake_host(&root, &data, "67108864", 0);
    // cpu1's governor: a file nobody may write, not even root.
    let governor = root.join("sys/devices/system/cpu/cpu1/cpufreq/scaling_governor");
    fs::remove_file(&governor).unwrap();
    std::os::unix::fs::symlink("/proc/version", &governor).unwrap();
    let deployment = deployment(&scratch.0, &root, &data);
    let run = corelog(&args("tune", &deployment, &[]), "");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let failed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{run:?}");
    assert!(
        failed[0].contains("cpu1/cpufreq/scaling_governor"),
        "{run:?}"
    );
    assert!(failed[0].ends_with("(left as it was)"), "{run:?}");
    // The changes after it were made.
    let read = |path: &str| {
        fs::read_to_string(root.join(path))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("sys/devices/system/cpu/cpu2/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(read("proc/sys/net/core/wmem_max"), "4194304");
}
