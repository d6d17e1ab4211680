//! The `corelog` binary: parse the command line and hand it to `cli`. No
//! broker logic lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = corelog::cli::Cli::parse();
    corelog::logging::init(cli.log_format, cli.default_log_filter());
    corelog::cli::run(cli)
}
