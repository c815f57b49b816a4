//! `deploy` and `audit`: reconcile each host's hooks with what quiesce
//! renders for it, then one report of every host.

use super::{print, runtime, ssh_options};
use crate::cli::args::Global;
use crate::hooks::reconcile::{self, Settings};
use crate::hooks::report::{self, Format};
use crate::inventory::Host;
use crate::output::error::Error;
use crate::remote::runner;

pub fn reconcile_hosts(
    command: &'static str,
    global: &Global,
    hosts: Vec<Host>,
    settings: Settings,
    format: Format,
) -> Result<u8, Error> {
    let connector = runner::SshConnector {
        options: ssh_options(global)?,
    };
    let order: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let (events, interrupted) = runtime()?.block_on(runner::run_hosts(
        command,
        hosts,
        global.forks as usize,
        global.quiet,
        |host, events| reconcile::host(host, &connector, settings, events),
    ));
    let records = report::records(&events, &order);
    print(&report::render(format, command, &records, interrupted));
    Ok(report::exit_code(&records, interrupted))
}
