//! The subcommands: each loads what it needs, runs, prints its report and
//! returns the exit code.

use crate::backup_report::Report as BackupReport;
use crate::cli::{Cli, Command, Global, HostsFormat};
use crate::error::Error;
use crate::event::Event;
use crate::hook::{self, HookKind};
use crate::inventory::{Host, Inventory};
use crate::journal::Journal;
use crate::known_hosts::{AcceptNew, HostKeyPolicy};
use crate::playbook::Playbook;
use crate::reconcile::{self, Mode, Settings};
use crate::report::{self, Format};
use crate::ssh::SshOptions;
use crate::{backup, duration, exit_code, limit, observe, plan, runner};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

pub fn execute(cli: Cli) -> Result<u8, Error> {
    match &cli.command {
        Command::Recover { run } => {
            let ssh = ssh_options(&cli.global)?;
            return runtime()?.block_on(crate::recover::recover(
                &cli.global.runs_dir,
                run,
                &cli.global.inventory,
                &ssh,
                cli.global.quiet,
            ));
        }
        Command::Report {
            run,
            format,
            output,
        } => {
            let report = crate::run_report::build(&observe::run_dir(&cli.global.runs_dir, run))?;
            let text = observe::render_report(&report, *format);
            match output {
                Some(path) => std::fs::write(path, text).map_err(|source| Error::File {
                    path: path.clone(),
                    action: "write",
                    source,
                })?,
                None => print(&text),
            }
            return Ok(exit_code::SUCCESS);
        }
        Command::Stun { files, qos, format } => {
            return observe::stun(
                &cli.global,
                files,
                qos.as_deref(),
                *format == HostsFormat::Json,
            );
        }
        Command::Logs {
            run: Some(run),
            max_bytes,
            ..
        } => {
            let dir = observe::run_dir(&cli.global.runs_dir, run);
            let (hosts, since) = observe::run_hosts(&dir)?;
            // The one --limit (with `!`), over the run's own hosts.
            let run_inventory = Inventory {
                path: dir.join("journal.jsonl"),
                hosts,
                groups: Default::default(),
                mirrors: Default::default(),
            };
            let hosts: Vec<Host> = limit::select(&run_inventory, cli.global.limit.as_deref())?
                .into_iter()
                .cloned()
                .collect();
            return collect_logs(&cli.global, &hosts, since, *max_bytes, &dir);
        }
        _ => {}
    }
    let inventory = Inventory::load(&cli.global.inventory)?;
    let hosts: Vec<Host> = limit::select(&inventory, cli.global.limit.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    match cli.command {
        Command::Hosts { format } => {
            print(&hosts_report(&hosts, format));
            Ok(exit_code::SUCCESS)
        }
        Command::Render { host, hook } => {
            let Some(host) = inventory.host(&host) else {
                return Err(Error::Usage {
                    message: format!("no host `{host}` in {}", inventory.path.display()),
                    hint: "`quiesce hosts` lists the inventory's hosts".into(),
                });
            };
            for kind in HookKind::ALL {
                if hook.as_deref().is_none_or(|h| h == kind.file_name()) {
                    print(&hook::render(kind, host));
                }
            }
            Ok(exit_code::SUCCESS)
        }
        Command::Deploy {
            check,
            diff,
            force,
            format,
        } => {
            let mode = if check { Mode::Check } else { Mode::Apply };
            reconcile_hosts(
                "deploy",
                &cli.global,
                hosts,
                Settings {
                    mode,
                    force,
                    diff,
                    audit_labels: false,
                },
                format,
            )
        }
        Command::Plan { playbook, format } => backup(
            &cli.global,
            &inventory,
            hosts,
            &playbook,
            false,
            format,
            true,
        ),
        Command::Backup {
            playbook,
            force,
            format,
        } => backup(
            &cli.global,
            &inventory,
            hosts,
            &playbook,
            force,
            format,
            false,
        ),
        Command::Logs {
            run: None,
            since,
            max_bytes,
        } => {
            let since = observe::since(&since)?;
            let dir = cli.global.runs_dir.join(format!("logs-{}", new_run_id()));
            collect_logs(&cli.global, &hosts, since, max_bytes, &dir)
        }
        Command::Recover { .. }
        | Command::Report { .. }
        | Command::Stun { .. }
        | Command::Logs { .. } => unreachable!("handled above"),
        Command::Audit { fix, force, format } => {
            let mode = if fix { Mode::Apply } else { Mode::Audit };
            reconcile_hosts(
                "audit",
                &cli.global,
                hosts,
                Settings {
                    mode,
                    force,
                    diff: false,
                    audit_labels: true,
                },
                format,
            )
        }
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn ssh_options(global: &Global) -> Result<SshOptions, Error> {
    let timeout = |flag: &str, text: &str| {
        duration::parse(text).map_err(|why| Error::Usage {
            message: format!("{flag} {text:?}: {why}"),
            hint: "write a duration such as 10s, 500ms or 2m".into(),
        })
    };
    let known_hosts = match &global.known_hosts {
        Some(path) => path.clone(),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".ssh/known_hosts"),
            None => {
                return Err(Error::Usage {
                    message: "HOME is not set, so there is no default known_hosts".into(),
                    hint: "pass --known-hosts FILE".into(),
                });
            }
        },
    };
    let accept_new = match global.accept_new.as_deref() {
        None => AcceptNew::Never,
        Some("*") => AcceptNew::AnyHost,
        Some(list) => AcceptNew::Hosts(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    Ok(SshOptions {
        connect_timeout: timeout("--connect-timeout", &global.connect_timeout)?,
        command_timeout: timeout("--command-timeout", &global.command_timeout)?,
        policy: Arc::new(HostKeyPolicy::new(known_hosts, accept_new)),
        use_agent: !global.no_agent,
    })
}

fn reconcile_hosts(
    command: &'static str,
    global: &Global,
    hosts: Vec<Host>,
    settings: Settings,
    format: Format,
) -> Result<u8, Error> {
    let ssh = ssh_options(global)?;
    let order: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let (events, interrupted) = runtime()?.block_on(runner::run_hosts(
        command,
        hosts,
        global.forks as usize,
        global.quiet,
        |host, events| reconcile::host(host, &ssh, settings, events),
    ));
    let records = report::records(&events, &order);
    print(&report::render(format, command, &records, interrupted));
    Ok(report::exit_code(&records, interrupted))
}

fn collect_logs(
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
        let collected = crate::logs::collect(
            hosts,
            &ssh,
            global.forks as usize,
            since_ms / 1000,
            max_bytes,
            dir,
            &events,
        )
        .await;
        drop(events);
        let _ = consumer.await;
        collected
    });
    print(&crate::logs::render(&collected, dir));
    if dir.join("results.json").is_file() {
        observe::write_report(dir);
    }
    Ok(if collected.iter().any(|c| c.error.is_some()) {
        exit_code::UNREACHABLE
    } else {
        exit_code::SUCCESS
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::File {
            path: PathBuf::from("(tokio runtime)"),
            action: "start",
            source,
        })
}

/// `plan` (read-only) and `backup`: preflight, plan, then execute.
fn backup(
    global: &Global,
    inventory: &Inventory,
    limited: Vec<Host>,
    playbook_path: &std::path::Path,
    force: bool,
    format: HostsFormat,
    plan_only: bool,
) -> Result<u8, Error> {
    let playbook = Playbook::load(playbook_path, inventory)?;
    let in_playbook = limit::select(inventory, playbook.hosts.as_deref())?;
    let hosts: Vec<&Host> = in_playbook
        .into_iter()
        .filter(|h| limited.iter().any(|l| l.name == h.name))
        .collect();
    if hosts.is_empty() {
        return Err(Error::Usage {
            message: "the playbook's hosts and --limit have no host in common".into(),
            hint: "check `hosts:` in the playbook and --limit".into(),
        });
    }
    let ssh = ssh_options(global)?;
    let forks = global.forks as usize;
    // The QoS guard's history, read before anything is contacted: one that
    // cannot be read stops the run rather than turning the guard off.
    let history = crate::stun_history::StunHistory::load(&global.runs_dir)
        .map_err(crate::stun_history::refusal)?;
    runtime()?.block_on(async {
        // Stop signals are caught from the start: one that comes during
        // preflight stops the run before anything is frozen, never kills it.
        let mut stop_signals = runner::StopSignals::new();
        let (events, consumer) = runner::event_stream(global.quiet);
        events.send(Event::RunStarted { command: if plan_only { "plan" } else { "backup" }, hosts: hosts.len() });
        // One backup per host on this controller, from before preflight on.
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let _locks = if plan_only { None } else {
            match crate::host_lock::HostLocks::acquire(&global.runs_dir, &names) {
                Ok(locks) => Some(locks),
                Err(refusal) => {
                    drop(events);
                    let _ = consumer.await;
                    eprintln!("error: refusing to start: {refusal}\n  hint: wait for that run to finish (or, if it is gone, `quiesce recover` it); nothing was frozen by this run");
                    return Ok(exit_code::FAILED);
                }
            }
        };
        let preflight = crate::preflight::preflight(&hosts, &ssh, forks, &events).await;
        let checked = crate::preflight::check(&hosts, &preflight);
        let left_out: Vec<&str> = checked.left_out.iter().map(|(h, ..)| h.as_str()).collect();
        let unreachable: Vec<String> = checked.left_out.iter().filter(|(.., u)| *u).map(|(h, ..)| h.clone()).collect();
        let plannable: Vec<&Host> = hosts.iter().copied().filter(|h| !left_out.contains(&h.name.as_str())).collect();
        let mut plan = plan::plan(inventory, &playbook, &plannable, &checked.roles).map_err(|message| Error::Usage { message, hint: "fix the playbook's consistency groups or --limit".into() })?;
        for (host, reason, _) in &checked.left_out {
            plan.skipped.push(plan::Skipped { host: host.clone(), reason: reason.lines().next().unwrap_or("").to_string() });
        }
        if !checked.blockers.is_empty() {
            drop(events);
            let _ = consumer.await;
            for blocker in &checked.blockers {
                eprintln!("error: {blocker}");
            }
            eprintln!("error: refusing to start: {} host(s) already have a freeze in place (nothing was frozen by this run)", checked.blockers.len());
            return Ok(exit_code::FAILED);
        }
        if plan_only {
            drop(events);
            let _ = consumer.await;
            match format {
                HostsFormat::Table => print(&plan.render(&playbook)),
                HostsFormat::Json => print(&(serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n")),
            }
            return Ok(if !unreachable.is_empty() { exit_code::UNREACHABLE } else { exit_code::SUCCESS });
        }
        let (run_id, journal) = create_run(&global.runs_dir)?;
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
        let options = backup::Options { force, forks, runs_dir: global.runs_dir.clone(), history };
        let journal_path = journal.path().display().to_string();
        let mut results = backup::execute(inventory, &playbook, &plan, preflight, &ssh, &options, run_id.clone(), journal, stop_rx.clone(), events.clone()).await;
        signals.abort();
        let interrupted = *stop_rx.borrow();
        let order: Vec<&str> = plan.lanes.iter().flat_map(|l| &l.jobs).flat_map(|j| &j.hosts).map(String::as_str).collect();
        results.sort_by_key(|r| order.iter().position(|h| *h == r.host));
        events.send(Event::RunFinished { elapsed: std::time::Duration::ZERO, interrupted });
        drop(events);
        let _ = consumer.await;
        let report = BackupReport { run_id: &run_id, playbook: &playbook.name, journal: journal_path, results: &results, skipped: &plan.skipped, unreachable: &unreachable, interrupted };
        // The results are on disk before anything is rendered for people.
        let json = report.json();
        if let Err(e) = std::fs::write(run_dir.join("results.json"), &json) {
            eprintln!("warning: cannot write {}: {e}", run_dir.join("results.json").display());
        }
        print(&match format {
            HostsFormat::Table => report.table(),
            HostsFormat::Json => json,
        });
        // Collect the logs of every host the run touched, and write the freeze-window report.
        let touched: Vec<Host> = results.iter().filter(|r| r.freeze_started.is_some()).filter_map(|r| inventory.host(&r.host).cloned()).collect();
        if !touched.is_empty() {
            let since = results.iter().filter_map(|r| r.freeze_started).min().unwrap_or(0).saturating_sub(60_000);
            let (events, consumer) = runner::event_stream(true);
            let collected = observe::after_backup(&run_dir, &touched, since, &ssh, forks, &events).await;
            drop(events);
            let _ = consumer.await;
            let missing: Vec<&str> = collected.iter().filter(|c| c.error.is_some()).map(|c| c.host.as_str()).collect();
            let note = if missing.is_empty() { String::new() } else { format!(" (logs not collected from {}: `quiesce logs {run_id}` retries)", missing.join(", ")) };
            print(&format!("report: {}{note}\n", run_dir.join("report.html").display()));
        }
        Ok(report.exit_code())
    })
}

/// A new run id and its run directory with an empty journal; the directory
/// is created exclusively, so two runs never share one.
fn create_run(runs_dir: &std::path::Path) -> Result<(String, Journal), Error> {
    let mut last = None;
    for _ in 0..16 {
        let run_id = new_run_id();
        let run_dir = runs_dir.join(&run_id);
        match Journal::create(&run_dir) {
            Ok(journal) => return Ok((run_id, journal)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((run_dir, e)),
            Err(source) => {
                return Err(Error::File {
                    path: run_dir,
                    action: "create the run directory",
                    source,
                });
            }
        }
    }
    let (path, source) = last.expect("at least one attempt");
    Err(Error::File {
        path,
        action: "create a new run directory",
        source,
    })
}

/// `20261124T031500Z-4f2a`: sortable, unique enough for one controller.
fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        (now.subsec_nanosecond() as u32 ^ std::process::id()) & 0xffff
    )
}

fn hosts_report(hosts: &[Host], format: HostsFormat) -> String {
    match format {
        HostsFormat::Json => serde_json::to_string_pretty(hosts).unwrap_or_default() + "\n",
        HostsFormat::Table => {
            let rows: Vec<Vec<String>> = hosts
                .iter()
                .map(|h| {
                    vec![
                        h.name.clone(),
                        format!("{}:{}", h.address, h.port),
                        if h.r#become {
                            format!("{} (sudo)", h.user)
                        } else {
                            h.user.clone()
                        },
                        h.platform.as_str().to_string(),
                        h.vm.clone(),
                        if h.instances.is_empty() {
                            "(running)".into()
                        } else {
                            h.instances.join(",")
                        },
                        h.hook_dir.clone(),
                        h.log_dir.clone(),
                        duration::format(h.freeze_timeout),
                        h.mirror.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            let header = [
                "HOST",
                "ADDRESS",
                "USER",
                "PLATFORM",
                "VM",
                "INSTANCES",
                "HOOK_DIR",
                "LOG_DIR",
                "FREEZE_TIMEOUT",
                "MIRROR",
            ];
            crate::table::render(&header, &rows)
        }
    }
}
