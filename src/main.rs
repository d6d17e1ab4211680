//! The `corelog` binary: parse the command line and hand it to `cli`. No
//! broker logic lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    corelog::cli::run(corelog::cli::Cli::parse())
}
