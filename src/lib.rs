//! quiesce: deploy, audit and drive the freeze/thaw hooks that make VM
//! snapshots of Caché/IRIS servers consistent. `run` is the whole program.

pub mod backup;
pub mod cli;
pub mod hooks;
pub mod inventory;
pub mod output;
pub mod remote;
pub mod review;

use std::process::ExitCode;

/// Parses the command line, runs the command and prints its errors.
pub fn run() -> Result<(), ExitCode> {
    let cli = match cli::args::command()
        .try_get_matches()
        .and_then(|m| <cli::args::Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli::execute(cli) {
        Ok(0) => Ok(()),
        Ok(code) => Err(ExitCode::from(code)),
        Err(error) => {
            output::terminal::eprint_line(&format!("error: {error}"));
            Err(ExitCode::from(error.exit_code()))
        }
    }
}
