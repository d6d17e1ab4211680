//! `corelog completions SHELL`: the shell completion script for every
//! command and flag, generated from the command line's own definition, so
//! it never falls behind it. For example `source <(corelog completions
//! bash)`, or `corelog completions zsh > ~/.zfunc/_corelog`.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::client::{CliError, CliResult};

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> CliResult<()> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "corelog", &mut script);
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| CliError(format!("cannot write the completion script: {e}")))
}
