//! `corelog serve --check-config`: builds the configuration `serve` would
//! run with (the same flags, server file, tuning profile and overrides),
//! runs the checks of [`crate::config::check`] and prints what it found,
//! one line each, without starting anything or touching the data
//! directory. Exit 0 with `config OK: <summary>` on stdout when nothing is
//! an error; otherwise exit 1. Findings go to stderr as
//! `error: KEY: ...` or `warning: KEY: ...`.

use std::process::ExitCode;

use crate::config::check::{self, Finding};
use crate::config::{written_keys, Config, ServeArgs};
use crate::shard::placement;

pub fn run(args: &ServeArgs) -> ExitCode {
    let config = match Config::build(args) {
        Ok(config) => config,
        Err(e) => return report(&[check::build_error(&e)], None),
    };
    let written = match &args.config {
        Some(path) => match written_keys(path) {
            Ok(written) => written,
            Err(e) => return report(&[check::build_error(&e)], None),
        },
        None => Default::default(),
    };
    let mut findings = check::contradictions(&config, &written, &placement::allowed_cores());
    findings.extend(check::data_dir_findings(&config.data_dir));
    report(&findings, Some(&config))
}

/// Warnings first, then errors, so the last line says why it failed.
fn report(findings: &[Finding], config: Option<&Config>) -> ExitCode {
    for finding in findings.iter().filter(|f| !f.is_error()) {
        eprintln!("{finding}");
    }
    let mut failed = false;
    for finding in findings.iter().filter(|f| f.is_error()) {
        eprintln!("{finding}");
        failed = true;
    }
    match config {
        Some(config) if !failed => {
            println!("config OK: {}", check::summary(config));
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}
