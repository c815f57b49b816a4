//! The commands that look back: `logs` (collect), `report` (re-render a
//! run), `stun` (vmware.log analysis), and a backup's own collection at its end.

use crate::cli::{Global, ReportFormat};
use crate::error::Error;
use crate::event::EventSender;
use crate::exit_code;
use crate::inventory::{Host, Inventory};
use crate::journal::{Entry, Journal, now_ms};
use crate::logs::{self, Collected};
use crate::run_report::{self, RunReport};
use crate::ssh::SshOptions;
use crate::stun_history::{Measured, StunHistory};
use crate::stun_report::{self, Flag};
use std::path::{Path, PathBuf};

/// Log lines are at most this far before the first freeze of a run.
const WINDOW_LEAD: u64 = 60_000;

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

/// The directory of `run`: a run id under `runs_dir`, a run directory, or its journal file.
pub fn run_dir(runs_dir: &Path, run: &str) -> PathBuf {
    let given = PathBuf::from(run);
    if given.is_file() {
        given.parent().map(Path::to_path_buf).unwrap_or_default()
    } else if given.join("journal.jsonl").is_file() {
        given
    } else {
        runs_dir.join(run)
    }
}

/// Writes report.json and report.html into a run directory that has results.
pub fn write_report(run_dir: &Path) {
    if let Ok(report) = run_report::build(run_dir) {
        let _ = std::fs::write(run_dir.join("report.json"), report.json());
        let _ = std::fs::write(run_dir.join("report.html"), crate::html::page(&report));
    }
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
    write_report(run_dir);
    collected
}

pub fn since(text: &str) -> Result<u64, Error> {
    if let Ok(d) = crate::duration::parse(text) {
        return Ok(now_ms().saturating_sub(d.as_millis() as u64));
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond().max(0) as u64)
        .map_err(|_| Error::Usage {
            message: format!("--since {text:?} is neither a duration nor a timestamp"),
            hint: "write how long ago (2h, 30m) or an RFC 3339 time (2026-11-24T03:00:00Z)".into(),
        })
}

pub fn render_report(report: &RunReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Table => report.table(),
        ReportFormat::Json => report.json(),
        ReportFormat::Html => crate::html::page(report),
    }
}

/// `quiesce stun`: analyse, record into the stun history, print, exit code.
pub fn stun(
    global: &Global,
    files: &[PathBuf],
    qos: Option<&str>,
    json: bool,
) -> Result<u8, Error> {
    let qos = qos
        .map(|q| {
            crate::duration::parse(q).map_err(|why| Error::Usage {
                message: format!("--qos {q:?}: {why}"),
                hint: "the mirror's QoS timeout, e.g. 8s".into(),
            })
        })
        .transpose()?;
    // The inventory is optional here: only for the mirrors' QoS timeouts.
    let inventory = Inventory::load(&global.inventory).ok();
    let vms = stun_report::analyse(files, qos, inventory.as_ref())?;
    let measured: Vec<(String, Measured)> = vms
        .iter()
        .flat_map(|v| {
            v.timed.iter().map(|(at, us)| {
                let at = at.unwrap_or(0);
                (v.vm.clone(), Measured { at, us: *us })
            })
        })
        .collect();
    StunHistory::record(&global.runs_dir, &measured).map_err(crate::stun_history::refusal)?;
    let text = if json {
        serde_json::to_string_pretty(&vms).unwrap_or_default() + "\n"
    } else {
        stun_report::table(&vms)
    };
    print!("{text}");
    Ok(match vms.iter().map(|v| v.flag).max() {
        Some(Flag::Over) => exit_code::FAILED,
        Some(Flag::Near) => exit_code::FINDINGS,
        _ => exit_code::SUCCESS,
    })
}
