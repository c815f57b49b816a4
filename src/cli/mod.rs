//! The subcommands: each loads what it needs, runs, prints its report and
//! returns the exit code.

pub mod args;
mod backup;
mod hooks;
mod hosts;
mod logs;
mod prune;
pub mod report;
mod snapshots;
mod status;
mod stun;
mod verify;

use crate::cli::args::{Cli, Command, Global, HostsFormat, SnapshotsAction};
use crate::hooks::HookKind;
use crate::hooks::reconcile::{Mode, Settings};
use crate::inventory::{Host, Inventory, limit};
use crate::output::duration;
use crate::output::error::Error;
use crate::output::exit_code;
use crate::remote::known_hosts::{AcceptNew, HostKeyPolicy};
use crate::remote::ssh::SshOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

pub fn execute(cli: Cli) -> Result<u8, Error> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = args::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut command, "quiesce", &mut out);
            print(&String::from_utf8_lossy(&out));
            return Ok(exit_code::SUCCESS);
        }
        Command::Man => {
            let command = args::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|source| Error::File {
                    path: "(standard output)".into(),
                    action: "write the manual page to",
                    source,
                })?;
            print(&String::from_utf8_lossy(&out));
            return Ok(exit_code::SUCCESS);
        }
        Command::Prune { keep, dry_run } => {
            return prune::prune(&cli.global.runs_dir, keep, *dry_run);
        }
        Command::Recover { run, force, format } => {
            let ssh = ssh_options(&cli.global)?;
            return runtime()?.block_on(crate::backup::recover::recover(
                &cli.global.runs_dir,
                run,
                &cli.global.inventory(),
                &ssh,
                cli.global.quiet,
                *force,
                *format == HostsFormat::Json,
            ));
        }
        Command::Report {
            run,
            format,
            output,
        } => {
            let report = crate::review::run_report::build(&crate::backup::run_dir::resolve(
                &cli.global.runs_dir,
                run,
            )?)?;
            let text = report::render_report(&report, *format);
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
        Command::Stun {
            files,
            qos,
            format,
            record,
            rotated,
        } => {
            return stun::stun(
                &cli.global,
                files,
                qos.as_deref(),
                *format == HostsFormat::Json,
                *record,
                *rotated,
            );
        }
        Command::Logs {
            run: Some(run),
            max_bytes,
            ..
        } => {
            let dir = crate::backup::run_dir::resolve(&cli.global.runs_dir, run)?;
            let (hosts, since) = logs::run_hosts(&dir)?;
            // The one --limit (with `!`), over the run's own hosts.
            let run_inventory = Inventory::new(
                dir.join("journal.jsonl"),
                hosts,
                Default::default(),
                Default::default(),
            );
            let hosts: Vec<Host> = limit::select(&run_inventory, cli.global.limit.as_deref())?
                .into_iter()
                .cloned()
                .collect();
            return logs::collect_logs(&cli.global, &hosts, since, *max_bytes, &dir);
        }
        _ => {}
    }
    let inventory = Inventory::load(&cli.global.inventory(), &cli.global.ssh_config()?)?;
    let hosts: Vec<Host> = limit::select(&inventory, cli.global.limit.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    match cli.command {
        Command::Hosts { format, origin } => {
            print(&if origin {
                hosts::origin_report(&hosts)
            } else {
                hosts::hosts_report(&hosts, format)
            });
            Ok(exit_code::SUCCESS)
        }
        Command::Render { host, hook } => {
            let Some(host) = inventory.host(&host) else {
                return Err(Error::Usage {
                    message: format!("no host `{host}` in {}", inventory.path.display()),
                    hint: "`quiesce hosts` lists the inventory's hosts".into(),
                });
            };
            for &kind in HookKind::of(host) {
                if hook.as_deref().is_none_or(|h| h == kind.file_name()) {
                    print(&crate::hooks::render(kind, host));
                }
            }
            Ok(exit_code::SUCCESS)
        }
        Command::Deploy {
            check,
            diff,
            force,
            format,
            metrics,
        } => {
            let mode = if check { Mode::Check } else { Mode::Apply };
            hooks::reconcile_hosts(
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
                metrics.as_deref(),
            )
        }
        Command::Verify {
            run,
            playbook,
            jobs,
            format,
        } => verify::verify(
            &cli.global,
            &inventory,
            hosts,
            &run,
            &playbook,
            jobs,
            format,
        ),
        Command::Snapshots { action } => match action {
            SnapshotsAction::List { playbook, format } => snapshots::snapshots(
                &cli.global,
                &inventory,
                hosts,
                &playbook,
                None,
                false,
                format,
            ),
            SnapshotsAction::Prune {
                playbook,
                check,
                force,
                format,
            } => snapshots::snapshots(
                &cli.global,
                &inventory,
                hosts,
                &playbook,
                Some(check),
                force,
                format,
            ),
        },
        Command::Plan { playbook, format } => backup::backup(
            &cli.global,
            &inventory,
            hosts,
            &playbook,
            false,
            format,
            backup::Then::Plan,
        ),
        Command::Backup {
            playbook,
            force,
            format,
            metrics,
        } => backup::backup(
            &cli.global,
            &inventory,
            hosts,
            &playbook,
            force,
            format,
            backup::Then::Backup {
                metrics: metrics.as_deref(),
            },
        ),
        Command::Logs {
            run: None,
            since,
            max_bytes,
        } => {
            let since = logs::since(&since)?;
            let dir = cli
                .global
                .runs_dir
                .join(format!("logs-{}", crate::backup::run_dir::new_run_id()));
            logs::collect_logs(&cli.global, &hosts, since, max_bytes, &dir)
        }
        Command::Status {
            max_age,
            max_age_of,
            last,
            format,
            metrics,
            playbook,
        } => {
            let code = status::status(
                &cli.global,
                &hosts,
                max_age.as_deref(),
                max_age_of,
                last,
                format,
                metrics.as_deref(),
            )?;
            with_health(
                code,
                &inventory,
                &hosts,
                playbook.as_deref(),
                format != args::ReportFormat::Table,
            )
        }
        Command::Recover { .. }
        | Command::Completions { .. }
        | Command::Man
        | Command::Prune { .. }
        | Command::Report { .. }
        | Command::Stun { .. }
        | Command::Logs { .. } => unreachable!("handled above"),
        Command::Audit {
            fix,
            force,
            format,
            metrics,
            playbook,
        } => {
            let mode = if fix { Mode::Apply } else { Mode::Audit };
            let code = hooks::reconcile_hosts(
                "audit",
                &cli.global,
                hosts.clone(),
                Settings {
                    mode,
                    force,
                    diff: false,
                    audit_labels: true,
                },
                format,
                metrics.as_deref(),
            )?;
            with_health(
                code,
                &inventory,
                &hosts,
                playbook.as_deref(),
                format != crate::hooks::report::Format::Table,
            )
        }
    }
}

/// `-p PLAYBOOK` on audit and status: the provider's findings follow, and
/// any of them turns a clean exit into FINDINGS.
fn with_health(
    code: u8,
    inventory: &crate::inventory::Inventory,
    hosts: &[Host],
    playbook: Option<&std::path::Path>,
    json: bool,
) -> Result<u8, Error> {
    let Some(playbook) = playbook else {
        return Ok(code);
    };
    let found = snapshots::health(inventory, hosts, playbook, json)?;
    Ok(if found > 0 && code == exit_code::SUCCESS {
        exit_code::FINDINGS
    } else {
        code
    })
}

/// Human output on stdout; what a VM said in it is shown, never obeyed
/// (JSON is written elsewhere, with its exact bytes).
pub(crate) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(crate::output::terminal::scrub(text).as_bytes());
    let _ = out.flush();
}

/// `--connect-timeout` when neither it nor ssh_config's ConnectTimeout is given.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) fn ssh_options(global: &Global) -> Result<SshOptions, Error> {
    let timeout = |flag: &str, text: &str| {
        let usage = |why: String| Error::Usage {
            message: format!("{flag} {text:?}: {why}"),
            hint: "write a duration such as 10s, 500ms or 2m".into(),
        };
        match duration::parse(text) {
            Ok(d) if d.is_zero() => Err(usage("a time limit must be more than zero".into())),
            Ok(d) => Ok(d),
            Err(why) => Err(usage(why)),
        }
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
        connect_timeout: match &global.connect_timeout {
            Some(text) => timeout("--connect-timeout", text)?,
            None => DEFAULT_CONNECT_TIMEOUT,
        },
        connect_timeout_given: global.connect_timeout.is_some(),
        known_hosts_given: global.known_hosts.is_some(),
        global_known_hosts_given: !global.global_known_hosts.is_empty(),
        jumps: Default::default(),
        command_timeout: timeout("--command-timeout", &global.command_timeout)?,
        policy: Arc::new({
            let mut policy = HostKeyPolicy::new(known_hosts, accept_new);
            policy.global_known_hosts = if global.global_known_hosts.is_empty() {
                vec![
                    PathBuf::from("/etc/ssh/ssh_known_hosts"),
                    PathBuf::from("/etc/ssh/ssh_known_hosts2"),
                ]
            } else {
                global
                    .global_known_hosts
                    .iter()
                    .filter(|p| p.as_os_str() != "none")
                    .cloned()
                    .collect()
            };
            policy
        }),
        use_agent: !global.no_agent,
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::File {
            path: PathBuf::from("(tokio runtime)"),
            action: "start",
            source,
        })
}
