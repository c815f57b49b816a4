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
    metrics: Option<&std::path::Path>,
) -> Result<u8, Error> {
    let started = std::time::Instant::now();
    let connector = runner::SshConnector {
        options: ssh_options(global)?,
    };
    let order: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let (events, interrupted) = runtime()?.block_on(runner::run_hosts(
        command,
        hosts,
        global.forks(),
        global.quiet,
        |host, events| reconcile::host(host, &connector, settings, events),
    ));
    let records = report::records(&events, &order);
    print(&report::render(format, command, &records, interrupted));
    let code = report::exit_code(&records, interrupted);
    if let Some(path) = metrics {
        let families = report::metrics(command, &records, code, started.elapsed());
        if let Err(e) = crate::output::metrics::write(path, &families) {
            crate::output::terminal::eprint_line(&format!(
                "warning: cannot write the metrics {}: {e}",
                path.display()
            ));
        }
    }
    Ok(code)
}
