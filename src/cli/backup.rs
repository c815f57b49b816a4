//! `plan` (read-only: preflight and plan) and `backup` (preflight, plan,
//! execute, results, then the logs and the report of the run).

use super::{logs, print, runtime, ssh_options};
use crate::backup::executor;
use crate::backup::plan;
use crate::backup::run_dir;
use crate::cli::args::{Global, HostsFormat};
use crate::inventory::playbook::Playbook;
use crate::inventory::{Host, Inventory, limit};
use crate::output::error::Error;
use crate::output::event::Event;
use crate::output::exit_code;
use crate::remote::runner;
use crate::review::backup_report::{self, Ending, Report as BackupReport};

/// What follows preflight and the plan.
pub enum Then<'a> {
    /// `plan`: print it, change nothing.
    Plan,
    /// `backup`: run it (and write metrics there, if asked).
    Backup {
        metrics: Option<&'a std::path::Path>,
    },
}

/// `plan` (read-only) and `backup`: preflight, plan, then execute.
pub fn backup(
    global: &Global,
    inventory: &Inventory,
    limited: Vec<Host>,
    playbook_path: &std::path::Path,
    force: bool,
    format: HostsFormat,
    then: Then<'_>,
) -> Result<u8, Error> {
    let started = std::time::Instant::now();
    let (plan_only, metrics) = match then {
        Then::Plan => (true, None),
        Then::Backup { metrics } => (false, metrics),
    };
    let playbook = Playbook::load(playbook_path, inventory)?;
    let in_playbook = limit::select(inventory, playbook.hosts.as_deref())?;
    let named: Vec<&str> = in_playbook.iter().map(|h| h.name.as_str()).collect();
    let hosts: Vec<&Host> = in_playbook
        .into_iter()
        .filter(|h| limited.iter().any(|l| l.name == h.name))
        .collect();
    if hosts.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "the playbook {} selects {} (hosts: {}), and --limit {} leaves none of them",
                playbook_path.display(),
                match named.len() {
                    0..=5 => named.join(", "),
                    n => format!("{} and {} more", named[..5].join(", "), n - 5),
                },
                playbook.hosts.as_deref().unwrap_or("all"),
                global.limit.as_deref().unwrap_or("(none)")
            ),
            hint: "widen --limit or the playbook's `hosts:`".into(),
        });
    }
    let ssh = ssh_options(global)?;
    let connector = runner::SshConnector {
        options: ssh.clone(),
    };
    let forks = global.backup_forks();
    // The QoS guard's history, read before anything is contacted: one that
    // cannot be read stops the run rather than turning the guard off.
    let history = crate::backup::stun_history::StunHistory::load(&global.runs_dir)
        .map_err(crate::backup::stun_history::refusal)?;
    runtime()?.block_on(async {
        // Stop signals are caught from the start: one that comes during
        // preflight stops the run before anything is frozen, never kills it.
        let mut stop_signals = runner::StopSignals::new();
        let (events, consumer) = runner::event_stream(global.quiet);
        events.send(Event::RunStarted { command: if plan_only { "plan" } else { "backup" }, hosts: hosts.len() });
        // One backup per host on this controller, from before preflight on.
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let _locks = if plan_only { None } else {
            match crate::backup::host_lock::HostLocks::acquire(&global.runs_dir, &names) {
                Ok(locks) => Some(locks),
                Err(refusal) => {
                    drop(events);
                    let _ = consumer.await;
                    crate::output::terminal::eprint_line(&format!("error: refusing to start: {refusal}\n  hint: wait for that run to finish (or, if it is gone, `quiesce recover` it); nothing was frozen by this run"));
                    return Ok(backup_report::exit_code(Ending::Refused));
                }
            }
        };
        let mut preflight = crate::backup::preflight::preflight(&hosts, &connector, forks, &events).await;
        let provider = crate::backup::provider::of(&playbook.snapshot);
        let refused = crate::backup::preflight::prepare_snapshots(&hosts, &mut preflight, &provider, forks).await;
        let mut checked = crate::backup::preflight::check(&hosts, &preflight);
        for (name, why) in refused {
            if checked.left_out.iter().any(|(h, ..)| *h == name) {
                continue;
            }
            let target = hosts.iter().find(|h| h.name == name).map(|h| h.target()).unwrap_or(name.clone());
            checked.left_out.push((name, format!("{target}: the {} provider cannot snapshot it: {why}; nothing of it is frozen", provider.kind().as_str()), plan::SkipKind::Problem));
        }
        let left_out: Vec<&str> = checked.left_out.iter().map(|(h, ..)| h.as_str()).collect();
        let unreachable: Vec<String> = checked.left_out.iter().filter(|(.., why)| *why == plan::SkipKind::Unreachable).map(|(h, ..)| h.clone()).collect();
        let plannable: Vec<&Host> = hosts.iter().copied().filter(|h| !left_out.contains(&h.name.as_str())).collect();
        let mut plan = plan::plan(inventory, &playbook, &plannable, &checked.roles).map_err(|message| Error::Usage { message, hint: "fix the playbook's consistency groups or --limit".into() })?;
        for (host, reason, why) in &checked.left_out {
            plan.skipped.push(plan::Skipped { host: host.clone(), reason: reason.lines().next().unwrap_or("").to_string(), why: *why });
        }
        if !checked.blockers.is_empty() {
            provider.finish().await;
            drop(events);
            let _ = consumer.await;
            for blocker in &checked.blockers {
                crate::output::terminal::eprint_line(&format!("error: {blocker}"));
            }
            crate::output::terminal::eprint_line(&format!("error: refusing to start: {} host(s) already have a freeze in place (nothing was frozen by this run)", checked.blockers.len()));
            return Ok(backup_report::exit_code(Ending::Refused));
        }
        if plan_only {
            provider.finish().await;
            drop(events);
            let _ = consumer.await;
            match format {
                HostsFormat::Table => print(&plan.render(&playbook)),
                HostsFormat::Json => print(&(serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n")),
            }
            return Ok(backup_report::exit_code(Ending::Planned { unreachable: !unreachable.is_empty() }));
        }
        let (run_id, journal, _run_lock) = run_dir::create(&global.runs_dir)?;
        let run_dir = global.runs_dir.join(&run_id);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signal_events = events.clone();
        let signals = tokio::spawn(async move {
            stop_signals.next().await;
            let _ = stop_tx.send(true);
            signal_events.send(Event::Note { host: String::new(), text: "stopping: no new freezes, snapshots cancelled, thawing everything frozen".into() });
            loop {
                stop_signals.next().await;
                signal_events.send(Event::Note { host: String::new(), text: "still thawing: quiesce stops when everything frozen is thawed".into() });
            }
        });
        let options = executor::Options { force, forks, runs_dir: global.runs_dir.clone(), history };
        let journal_path = journal.path().display().to_string();
        let mut results = executor::execute(inventory, &playbook, &plan, preflight, &ssh, &connector, &options, run_id.clone(), journal, stop_rx.clone(), events.clone()).await;
        provider.finish().await;
        signals.abort();
        let interrupted = *stop_rx.borrow();
        let order: Vec<&str> = plan.lanes.iter().flat_map(|l| &l.jobs).flat_map(|j| j.members.iter().map(|m| &m.host)).map(String::as_str).collect();
        results.sort_by_key(|r| order.iter().position(|h| *h == r.host));
        events.send(Event::RunFinished { elapsed: std::time::Duration::ZERO, interrupted });
        drop(events);
        let _ = consumer.await;
        let report = BackupReport { run_id: &run_id, playbook: &playbook.name, journal: journal_path, results: &results, skipped: &plan.skipped, unreachable: &unreachable, interrupted };
        // The results are on disk before anything is rendered for people.
        let json = report.json();
        // Whole or not at all: a reader never sees a torn results.json.
        let results_written = match crate::output::atomic_write(&run_dir.join("results.json"), json.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                crate::output::terminal::eprint_line(&format!("error: cannot write {}: {e}; the run's results are only in its journal (free the disk, then `quiesce report {run_id}`)", run_dir.join("results.json").display()));
                false
            }
        };
        print(&match format {
            HostsFormat::Table => report.table(),
            HostsFormat::Json => json,
        });
        // Collect the logs of every host the run touched, and write the freeze-window report.
        let touched: Vec<Host> = results.iter().filter(|r| r.freeze_started.is_some()).filter_map(|r| inventory.host(&r.host).cloned()).collect();
        if !touched.is_empty() {
            let since = results.iter().filter_map(|r| r.freeze_started).min().unwrap_or(0).saturating_sub(60_000);
            let (events, consumer) = runner::event_stream(true);
            let collected = logs::after_backup(&run_dir, &touched, since, &ssh, forks, &events).await;
            drop(events);
            let _ = consumer.await;
            let missing: Vec<&str> = collected.iter().filter(|c| c.error.is_some()).map(|c| c.host.as_str()).collect();
            let note = if missing.is_empty() { String::new() } else { format!(" (logs not collected from {}: `quiesce logs {run_id}` retries)", missing.join(", ")) };
            let line = format!("report: {}{note}", run_dir.join("report.html").display());
            // --format json: stdout is one JSON document, and nothing else.
            match format {
                HostsFormat::Table => print(&(line + "\n")),
                HostsFormat::Json => crate::output::terminal::eprint_line(&line),
            }
        }
        let mut code = backup_report::exit_code(Ending::Ran(&report));
        if !results_written && code == exit_code::SUCCESS {
            code = exit_code::FAILED;
        }
        // verify.after_backup: each valid host restored and checked now.
        if let Some(settings) = playbook.verify.as_ref().filter(|v| v.after_backup && !interrupted) {
            let valid: Vec<(&Host, &crate::backup::host_run::HostRun)> = results
                .iter()
                .filter(|r| r.outcome == crate::backup::host_run::Outcome::Valid)
                .filter_map(|r| Some((inventory.host(&r.host)?, r)))
                .collect();
            if !valid.is_empty() {
                // The run's own provider: its session, if it keeps one, is
                // opened again when needed and closed after.
                let shown = matches!(format, HostsFormat::Table).then_some(format);
                let verified = match super::verify::scratch_of(inventory, settings) {
                    Err(e) => Err(e),
                    Ok(scratch) => {
                        let verifier = super::verify::Verifier {
                            ssh: &ssh,
                            quiet: global.quiet,
                            run_dir: &run_dir,
                            run_id: &run_id,
                            provider: &provider,
                            settings,
                            aws: playbook.snapshot.aws.as_ref(),
                            scratch,
                            jobs: 2,
                            format: shown,
                        };
                        super::verify::verify_hosts(&verifier, &valid).await
                    }
                };
                provider.finish().await;
                match verified {
                    Ok(c) if code == exit_code::SUCCESS => code = c,
                    Ok(_) => {}
                    Err(e) => crate::output::terminal::eprint_line(&format!("error: {e}")),
                }
            }
        }
        if let Some(path) = metrics {
            let families = crate::review::backup_metrics::families(&report, &global.runs_dir, code, started.elapsed());
            if let Err(e) = crate::output::metrics::write(path, &families) {
                crate::output::terminal::eprint_line(&format!("warning: cannot write the metrics {}: {e}", path.display()));
            }
        }
        Ok(code)
    })
}
