//! The Debian package (`cargo deb`, metadata in Cargo.toml) and the files
//! it ships: built from the already-built `target/release/corelog`
//! (`--no-build`, so this test does not rebuild), unpacked into a scratch
//! root and checked there: the binary runs, the unit and the conffile are
//! where systemd and dpkg look, the maintainer scripts parse. Needs
//! cargo-deb (`packaging/setup.sh`); without it the test says so and
//! passes, except in CI where a skip is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{corelog_ok, in_ci};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program args`, which must succeed; its output.
fn run_ok(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `cargo deb` can run; if not, why (a failure in CI).
fn cargo_deb_installed() -> bool {
    let installed = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let why = "cargo-deb is not installed: run packaging/setup.sh";
        assert!(!in_ci(), "{why}");
        eprintln!("skipped: {why}");
    }
    installed
}

/// The .deb built into `out` from the binary the tests run.
fn build_deb(out: &Path) -> PathBuf {
    let manifest = repo().join("Cargo.toml");
    let out_arg = out.display().to_string();
    run_ok(
        "cargo",
        &[
            "deb",
            "--no-build",
            "--fast",
            "--manifest-path",
            &manifest.display().to_string(),
            "--output",
            &out_arg,
        ],
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one .deb expected in {out:?}: {debs:?}");
    debs[0].clone()
}

/// The unit file under `root`, wherever this cargo-deb puts units.
fn unit_in(root: &Path, name: &str) -> PathBuf {
    ["lib/systemd/system", "usr/lib/systemd/system"]
        .iter()
        .map(|dir| root.join(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} under {}", root.display()))
}

#[test]
fn the_deb_installs_binary_config_unit_and_scripts() {
    if !cargo_deb_installed() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_deb(&scratch.path().join("out"));
    let deb_arg = deb.display().to_string();
    let root = scratch.path().join("root");
    let root_arg = root.display().to_string();
    run_ok("dpkg-deb", &["-x", &deb_arg, &root_arg]);

    let version = run_ok(
        &root.join("usr/bin/corelog").display().to_string(),
        &["--version"],
    );
    assert_eq!(
        text(&version),
        format!("corelog {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/corelog/server.properties")).unwrap(),
        std::fs::read_to_string(repo().join("packaging/server.properties")).unwrap(),
    );
    assert!(root.join("usr/share/doc/corelog/packaging.md").exists());

    let unit_path = unit_in(&root, "corelog.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for line in [
        "ExecStart=/usr/bin/corelog serve --config /etc/corelog/server.properties",
        "User=corelog",
        "LimitMEMLOCK=infinity",
        "LimitNOFILE=1048576",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=60",
        // The broker reloads its dynamic broker configs on SIGHUP.
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    assert!(
        !unit.lines().any(|l| l.starts_with("SystemCallFilter=")),
        "a system call filter may block io_uring_setup:\n{unit}"
    );
    verify_unit(&unit_path, &root);
    // The boot-time tuning unit: shipped, run before the broker, not enabled.
    let tune_path = unit_in(&root, "corelog-tune.service");
    assert_eq!(
        tune_path.parent(),
        unit_path.parent(),
        "both units in one directory"
    );
    let tune = std::fs::read_to_string(&tune_path).unwrap();
    for line in [
        "ExecStart=/usr/bin/corelog tune --config /etc/corelog/server.properties",
        "Type=oneshot",
        "Before=corelog.service",
    ] {
        assert!(tune.lines().any(|l| l == line), "{line} missing:\n{tune}");
    }
    verify_unit(&tune_path, &root);
    assert!(root.join("usr/share/doc/corelog/doctor.md").exists());

    let conffiles = text(&run_ok("dpkg-deb", &["-I", &deb_arg, "conffiles"]));
    assert_eq!(conffiles.trim(), "/etc/corelog/server.properties");
    let depends = text(&run_ok("dpkg-deb", &["-f", &deb_arg, "Depends"]));
    assert!(depends.contains("adduser"), "{depends}");

    let control = scratch.path().join("control");
    run_ok(
        "dpkg-deb",
        &["-e", &deb_arg, &control.display().to_string()],
    );
    let postinst = control.join("postinst");
    let script = std::fs::read_to_string(&postinst).unwrap();
    assert!(
        script.contains("adduser --system --group"),
        "postinst creates no system user:\n{script}"
    );
    assert!(!script.contains("#DEBHELPER#"), "token left:\n{script}");
    for name in ["postinst", "postrm", "prerm"] {
        let path = control.join(name);
        if path.exists() {
            run_ok("sh", &["-n", &path.display().to_string()]);
        }
    }
}

/// `systemd-analyze verify` on the packaged unit, when the tool is here.
/// verify requires ExecStart's program to exist, and this machine has no
/// /usr/bin/corelog (nor, in a scratch root, the units systemd needs), so
/// it checks a copy whose only change is the binary's path: the one
/// unpacked into `root`. verify exits 0 on unknown keys and bad values
/// (it only complains), so any complaint fails the test.
fn verify_unit(unit: &Path, root: &Path) {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped systemd-analyze verify: systemd-analyze is not installed");
        return;
    };
    assert!(probe.status.success());
    let binary = root.join("usr/bin/corelog").display().to_string();
    let copy_dir = root.join("verify");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join(unit.file_name().unwrap());
    let text = std::fs::read_to_string(unit).unwrap();
    std::fs::write(&copy, text.replace("/usr/bin/corelog", &binary)).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify complains about the unit:\n{complaints}"
    );
}

#[test]
fn the_shipped_config_passes_its_check() {
    let data = tempfile::tempdir().unwrap();
    let config = repo().join("packaging/server.properties");
    let run = corelog_ok(
        &[
            "serve",
            "--check-config",
            "--config",
            &config.display().to_string(),
            "--data-dir",
            &data.path().join("data").display().to_string(),
        ],
        "",
    );
    assert!(run.stdout.starts_with("config OK: node 1"), "{run:?}");
    assert_eq!(run.stderr, "", "the shipped config warns:\n{run:?}");
}
