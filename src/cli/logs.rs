//! `logs`: collect the hooks' and instances' logs from the VMs, for a time
//! window or for one run; also the collection at the end of a backup.

use super::{print, runtime, ssh_options};
use crate::backup::journal::{Entry, Journal, now_ms};
use crate::cli::args::Global;
use crate::inventory::Host;
use crate::output::error::Error;
use crate::output::event::{Event, EventSender};
use crate::output::exit_code;
use crate::remote::runner;
use crate::remote::ssh::SshOptions;
use crate::review::logs::{self, Collected};
use crate::review::run_report;
use std::path::Path;

/// Log lines are at most this far before the first freeze of a run.
const WINDOW_LEAD: u64 = 60_000;

pub fn collect_logs(
    global: &Global,
    hosts: &[Host],
    since_ms: u64,
    max_bytes: u64,
    dir: &std::path::Path,
) -> Result<u8, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::File {
        path: dir.to_path_buf(),
        action: "create",
        source,
    })?;
    let ssh = ssh_options(global)?;
    let collected = runtime()?.block_on(async {
        let (events, consumer) = runner::event_stream(global.quiet);
        events.send(Event::RunStarted {
            command: "logs",
            hosts: hosts.len(),
        });
        let collected = crate::review::logs::collect(
            hosts,
            &ssh,
            global.forks(),
            since_ms / 1000,
            max_bytes,
            dir,
            &events,
        )
        .await;
        fetch_vmware_logs(dir, hosts, &ssh, global.forks(), &events).await;
        drop(events);
        let _ = consumer.await;
        collected
    });
    print(&crate::review::logs::render(&collected, dir));
    if dir.join("results.json").is_file() {
        write_report(dir);
    }
    Ok(if collected.iter().any(|c| c.error.is_some()) {
        exit_code::UNREACHABLE
    } else {
        exit_code::SUCCESS
    })
}

/// A run's hosts (from its journal) and the earliest moment its logs matter.
pub fn run_hosts(run_dir: &Path) -> Result<(Vec<Host>, u64), Error> {
    let path = run_dir.join("journal.jsonl");
    let entries = Journal::read(&path).map_err(|source| Error::File {
        path: path.clone(),
        action: "read the journal",
        source,
    })?;
    let Some(Entry::RunStarted { hosts, at, .. }) = entries.first() else {
        return Err(Error::Usage {
            message: format!("{} does not start with a run-started entry", path.display()),
            hint: "pass a run id under --runs-dir".into(),
        });
    };
    Ok((
        hosts.iter().map(|h| h.to_host()).collect(),
        at.saturating_sub(WINDOW_LEAD),
    ))
}

/// After a backup: collect its hosts' logs and write report.json and report.html.
pub async fn after_backup(
    run_dir: &Path,
    hosts: &[Host],
    since_ms: u64,
    ssh: &SshOptions,
    forks: usize,
    events: &EventSender,
) -> Vec<Collected> {
    let collected = logs::collect(
        hosts,
        ssh,
        forks,
        since_ms / 1000,
        logs::DEFAULT_MAX_BYTES,
        run_dir,
        events,
    )
    .await;
    fetch_vmware_logs(run_dir, hosts, ssh, forks, events).await;
    write_report(run_dir);
    collected
}

/// The VMs' vmware.log, read from their ESXi hosts where the inventory says,
/// into DIR/hosts/HOST/ beside the hooks' logs.
async fn fetch_vmware_logs(
    dir: &Path,
    hosts: &[Host],
    ssh: &SshOptions,
    forks: usize,
    events: &EventSender,
) {
    let located: Vec<&Host> = hosts.iter().filter(|h| h.esxi.is_some()).collect();
    if located.is_empty() {
        return;
    }
    let connector = crate::remote::runner::SshConnector {
        options: ssh.clone(),
    };
    for vm in crate::review::esxi::fetch(&located, &connector, 0, forks, events).await {
        let host_dir = dir.join("hosts").join(&vm.host);
        match vm.files {
            Ok(files) => {
                for (name, bytes) in files {
                    let _ = std::fs::create_dir_all(&host_dir);
                    let _ = crate::output::atomic_write(&host_dir.join(name), &bytes);
                }
            }
            Err(e) => events.send(Event::Note {
                host: vm.host.clone(),
                text: format!("vmware.log not read: {e}"),
            }),
        }
    }
}

/// Writes report.json and report.html into a run directory that has results.
pub fn write_report(run_dir: &Path) {
    if let Ok(report) = run_report::build(run_dir) {
        let _ = crate::output::atomic_write(&run_dir.join("report.json"), report.json().as_bytes());
        let _ = crate::output::atomic_write(
            &run_dir.join("report.html"),
            crate::review::html::page(&report).as_bytes(),
        );
    }
}

pub fn since(text: &str) -> Result<u64, Error> {
    if let Ok(d) = crate::output::duration::parse(text) {
        return Ok(now_ms().saturating_sub(d.as_millis() as u64));
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond().max(0) as u64)
        .map_err(|_| Error::Usage {
            message: format!("--since {text:?} is neither a duration nor a timestamp"),
            hint: "write how long ago (2h, 30m) or an RFC 3339 time (2026-11-24T03:00:00Z)".into(),
        })
}
