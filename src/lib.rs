//! quiesce: deploy, audit and drive the freeze/thaw hooks that make VM
//! snapshots of Caché/IRIS servers consistent. `run` is the whole program.

pub mod backup;
pub mod backup_report;
pub mod cli;
pub mod duration;
pub mod error;
pub mod event;
pub mod exit_code;
pub mod facts;
pub mod hook;
pub mod hook_logs;
pub mod host_lock;
pub mod host_run;
pub mod html;
pub mod inventory;
pub mod journal;
pub mod known_hosts;
pub mod limit;
pub mod log_time;
pub mod logs;
pub mod observe;
pub mod plan;
pub mod playbook;
pub mod preflight;
pub mod progress;
pub mod reconcile;
pub mod recover;
pub mod report;
pub mod role;
pub mod run_report;
pub mod runner;
pub mod shell;
pub mod snapshot;
pub mod source_map;
pub mod ssh;
pub mod stun_history;
pub mod stun_report;
pub mod table;
pub mod thaw_verdict;
pub mod vmware_log;

mod command;

use clap::Parser;
use std::process::ExitCode;

/// Parses the command line, runs the command and prints its errors.
pub fn run() -> Result<(), ExitCode> {
    let cli = cli::Cli::parse();
    match command::execute(cli) {
        Ok(0) => Ok(()),
        Ok(code) => Err(ExitCode::from(code)),
        Err(error) => {
            eprintln!("error: {error}");
            Err(ExitCode::from(error.exit_code()))
        }
    }
}
