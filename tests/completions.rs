//! `corelog completions SHELL`: a completion script generated from the
//! command line's definition, for each shell clap_complete knows.

mod common;

use std::process::Command;

const SUBCOMMANDS: [&str; 9] = [
    "serve",
    "topics",
    "console-producer",
    "console-consumer",
    "consumer-groups",
    "dev-cluster",
    "metadata-quorum",
    "completions",
    "top",
];

#[test]
fn the_bash_script_names_the_subcommands_and_parses() {
    let run = common::corelog(&["completions", "bash"], "");
    assert!(run.success(), "{run:?}");
    for name in SUBCOMMANDS {
        assert!(
            run.stdout.contains(name),
            "{name} missing from:\n{}",
            run.stdout
        );
    }
    // Flags of a subcommand complete too.
    assert!(run.stdout.contains("--bootstrap-server"), "{}", run.stdout);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corelog.bash");
    std::fs::write(&path, &run.stdout).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(checked.status.success(), "bash -n: {checked:?}");
    // Sourced, it registers a completion function for corelog.
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p corelog", path.display()))
        .output()
        .unwrap();
    assert!(sourced.status.success(), "{sourced:?}");
    assert!(
        String::from_utf8_lossy(&sourced.stdout).contains("corelog"),
        "{sourced:?}"
    );
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_one_an_error() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = common::corelog(&["completions", shell], "");
        assert!(run.success(), "{shell}: {run:?}");
        assert!(
            run.stdout.contains("dev-cluster"),
            "{shell}: {}",
            run.stdout
        );
    }
    let run = common::corelog(&["completions", "tcsh"], "");
    assert!(!run.success());
    assert!(run.stderr.contains("invalid value 'tcsh'"), "{run:?}");
}
