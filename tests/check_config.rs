//! `corelog serve --check-config`: the same inputs as `serve`, checked
//! without starting anything or creating the data directory. A good file
//! exits 0 with `config OK: ...`; each bad one exits 1 with one line that
//! names the key; warnings do not fail.

mod common;

use std::path::{Path, PathBuf};

use common::{corelog, corelog_fails_in_one_line, corelog_ok};

/// A combined broker and controller, its own quorum's only voter, with its
/// data directory (not created) under `dir`.
fn good_file(dir: &Path) -> String {
    format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@127.0.0.1:9093\n\
         listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
         controller.listener.names=CONTROLLER\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:9092\n\
         log.dirs={}\n",
        data_dir(dir).display()
    )
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// `text` written to `dir/server.properties`, and that path.
fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("server.properties");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn check(config: &str) -> Vec<String> {
    [
        "serve",
        "--check-config",
        "--shards",
        "1",
        "--config",
        config,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The single error line a bad `text` gives; it must name `key`.
fn fails_naming(text: &str, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), text);
    let args = check(&config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = corelog_fails_in_one_line(&args);
    assert!(
        line.starts_with(&format!("error: {key}: ")),
        "expected an error naming {key}, got: {line}"
    );
    assert!(
        !data_dir(dir.path()).exists(),
        "the check created the data dir"
    );
    line
}

#[test]
fn a_good_file_passes_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &good_file(dir.path()));
    let args = check(&config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = corelog_ok(&args, "");
    assert!(
        run.stdout
            .starts_with("config OK: node 1, roles broker,controller"),
        "{run:?}"
    );
    assert!(run.stdout.contains("voters 1@127.0.0.1:9093"), "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    assert!(
        !data_dir(dir.path()).exists(),
        "the check created the data dir"
    );
}

#[test]
fn flags_and_overrides_are_checked_as_serve_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &good_file(dir.path()));
    let line = corelog_fails_in_one_line(&[
        "serve",
        "--check-config",
        "--shards",
        "1",
        "--config",
        &config,
        "--override",
        "min.insync.replicas=3",
    ]);
    assert!(
        line.starts_with("error: min.insync.replicas: 3 is larger"),
        "{line}"
    );
    let line = corelog_fails_in_one_line(&[
        "serve",
        "--check-config",
        "--config",
        &config,
        "--shards",
        "1",
        "--cores",
        "0,1",
    ]);
    assert!(line.starts_with("error: --cores: "), "{line}");
}

#[test]
fn a_minimum_isr_above_the_replication_factor_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}min.insync.replicas=2\n", good_file(dir.path()));
    let line = fails_naming(&text, "min.insync.replicas");
    assert!(line.contains("default.replication.factor (1)"), "{line}");
}

#[test]
fn clashing_listeners_fail() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_file(dir.path())
        .replace("CONTROLLER://127.0.0.1:9093", "CONTROLLER://127.0.0.1:9092")
        .replace("1@127.0.0.1:9093", "1@127.0.0.1:9092");
    let line = fails_naming(&text, "listeners");
    assert!(line.contains("same port"), "{line}");
    let text = good_file(dir.path()).replace(
        "advertised.listeners=PLAINTEXT://",
        "advertised.listeners=EXTERNAL://",
    );
    fails_naming(&text, "advertised.listeners");
}

#[test]
fn a_quorum_without_this_controller_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_file(dir.path()).replace("1@127.0.0.1:9093", "2@127.0.0.1:9093");
    let line = fails_naming(&text, "controller.quorum.voters");
    assert!(line.contains("node.id 1"), "{line}");
}

#[test]
fn a_data_dir_that_is_a_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let text = good_file(dir.path()).replace(
        &format!("log.dirs={}", data_dir(dir.path()).display()),
        &format!("log.dirs={}", file.display()),
    );
    let line = fails_naming(&text, "log.dirs");
    assert!(line.contains("is a file"), "{line}");
    // Under a file, the directory could not be created either.
    let text = good_file(dir.path()).replace(
        &format!("log.dirs={}", data_dir(dir.path()).display()),
        &format!("log.dirs={}/data", file.display()),
    );
    fails_naming(&text, "log.dirs");
}

#[test]
fn a_value_of_the_wrong_type_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}num.partitions=three\n", good_file(dir.path()));
    let line = fails_naming(&text, "num.partitions");
    assert!(line.contains("\"three\""), "{line}");
}

#[test]
fn warnings_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}log.flush.interval.messages=10000\nnum.network.threads=3\n",
        good_file(dir.path())
    );
    let config = write_config(dir.path(), &text);
    let args = check(&config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = corelog(&args, "");
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.starts_with("config OK: "), "{run:?}");
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{run:?}");
    assert!(warnings[0].starts_with("warning: log.flush.interval.messages: ignored"));
    assert!(warnings[1].starts_with("warning: num.network.threads: accepted and ignored"));
}
