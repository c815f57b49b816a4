//! The subcommands: each loads what it needs, runs, prints its report and
//! returns the exit code.

use crate::cli::{Cli, Command, Global, HostsFormat};
use crate::error::Error;
use crate::hook::{self, HookKind};
use crate::inventory::{Host, Inventory};
use crate::known_hosts::{AcceptNew, HostKeyPolicy};
use crate::reconcile::{self, Mode, Settings};
use crate::report::{self, Format};
use crate::ssh::SshOptions;
use crate::{duration, exit_code, limit, runner};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

pub fn execute(cli: Cli) -> Result<u8, Error> {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::File {
            path: PathBuf::from("(tokio runtime)"),
            action: "start",
            source,
        })?;
    let (events, interrupted) = runtime.block_on(runner::run_hosts(
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

fn hosts_report(hosts: &[Host], format: HostsFormat) -> String {
    match format {
        HostsFormat::Json => serde_json::to_string_pretty(hosts).unwrap_or_default() + "\n",
        HostsFormat::Table => {
            let rows: Vec<[String; 10]> = hosts
                .iter()
                .map(|h| {
                    [
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
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let text: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:w$}"))
                    .collect();
                text.join("  ").trim_end().to_string() + "\n"
            };
            let mut out = line(header.to_vec());
            for row in &rows {
                out.push_str(&line(row.iter().map(String::as_str).collect()));
            }
            out
        }
    }
}
