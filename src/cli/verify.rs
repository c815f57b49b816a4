//! `quiesce verify RUN`: each valid backup of the run restored in a clone
//! and checked through its provider (see docs/verify.md), the outcome kept
//! in runs/RUN/verify.json for `status`, the metrics and retention.

use super::{print, runtime, ssh_options};
use crate::backup::host_run::{HostRun, Outcome};
use crate::backup::journal::now_ms;
use crate::backup::provider::VerifyRequest;
use crate::backup::verification::{HostVerification, InstanceVerdict, VerifyRecord};
use crate::cli::args::{Global, HostsFormat};
use crate::inventory::{Host, Inventory};
use crate::output::error::Error;
use crate::output::event::Event;
use crate::output::exit_code;
use crate::remote::runner;
use crate::review::backup_report::Results;
use futures::StreamExt;
use std::path::Path;

pub fn verify(
    global: &Global,
    inventory: &Inventory,
    limited: Vec<Host>,
    run: &str,
    playbook_path: &Path,
    jobs: usize,
    format: HostsFormat,
) -> Result<u8, Error> {
    let run_dir = if run == LATEST {
        let (_, _, hosts) = super::snapshots::playbook_hosts(inventory, &limited, playbook_path)?;
        latest(&global.runs_dir, &hosts)?
    } else {
        crate::backup::run_dir::resolve(&global.runs_dir, run)?
    };
    let results_path = run_dir.join("results.json");
    let results: Results = std::fs::read_to_string(&results_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| Error::Usage {
            message: format!(
                "run {run} has no readable results ({})",
                results_path.display()
            ),
            hint: "verify a run that ended (a crashed one: `quiesce recover RUN` first)".into(),
        })?;
    let (playbook, provider, hosts) =
        super::snapshots::playbook_hosts(inventory, &limited, playbook_path)?;
    let Some(settings) = playbook.verify.clone() else {
        return Err(Error::Usage {
            message: format!("the playbook {} has no verify settings", playbook_path.display()),
            hint: "add verify: { instance: VERIFY } (the verification instance on each VM; see docs/verify.md)".into(),
        });
    };
    // The run's valid backups of the playbook's hosts; the others have
    // nothing to restore.
    let valid: Vec<(&Host, &HostRun)> = hosts
        .iter()
        .filter_map(|h| {
            let r = results.hosts.iter().find(|r| r.host == h.name)?;
            (r.outcome == Outcome::Valid).then_some((*h, r))
        })
        .collect();
    if valid.is_empty() {
        return Err(Error::Usage {
            message: format!("run {} made no valid backup of the playbook's hosts", results.run_id),
            hint: "only a valid snapshot can be verified: `quiesce report RUN` shows each host's verdict".into(),
        });
    }
    let scratch = scratch_of(inventory, &settings)?;
    let ssh = ssh_options(global)?;
    runtime()?.block_on(async {
        let code = verify_hosts(
            &Verifier {
                ssh: &ssh,
                quiet: global.quiet,
                run_dir: &run_dir,
                run_id: &results.run_id,
                provider: &provider,
                settings: &settings,
                aws: playbook.snapshot.aws.as_ref(),
                scratch,
                jobs,
                format: Some(format),
            },
            &valid,
        )
        .await;
        provider.finish().await;
        code
    })
}

/// `verify latest`: the newest run that made a valid backup of one of the
/// playbook's hosts (what a verify timer checks).
pub const LATEST: &str = "latest";

fn results_of(dir: &Path) -> Option<Results> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).ok()?).ok()
}

fn latest(runs_dir: &Path, hosts: &[&Host]) -> Result<std::path::PathBuf, Error> {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(runs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("results.json").is_file())
        .collect();
    // Run ids begin with their start time: the name orders them.
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|d| {
            results_of(d).is_some_and(|r| {
                r.hosts
                    .iter()
                    .any(|h| h.outcome == Outcome::Valid && hosts.iter().any(|p| p.name == h.host))
            })
        })
        .ok_or_else(|| Error::Usage {
            message: format!(
                "no run in {} made a valid backup of the playbook's hosts",
                runs_dir.display()
            ),
            hint: "run a backup first, or name the run to verify".into(),
        })
}

/// What a verification of one run needs, besides its hosts.
pub struct Verifier<'a> {
    pub ssh: &'a crate::remote::ssh::SshOptions,
    pub quiet: bool,
    pub run_dir: &'a Path,
    pub run_id: &'a str,
    pub provider: &'a std::sync::Arc<dyn crate::backup::provider::Provider>,
    pub settings: &'a crate::inventory::playbook::VerifySettings,
    /// aws-ebs: how EC2 is reached (kept in the verify journal for recover).
    pub aws: Option<&'a crate::inventory::playbook::AwsSettings>,
    /// `verify.scratch`, from the inventory.
    pub scratch: Option<&'a Host>,
    pub jobs: usize,
    /// None: a backup's own --format json owns stdout; verify.json has it.
    pub format: Option<HostsFormat>,
}

/// Verifies `valid` (host, its result) of the run, records verify.json and
/// prints the outcome: what `verify` and a backup with
/// `verify.after_backup` run.
pub async fn verify_hosts(v: &Verifier<'_>, valid: &[(&Host, &HostRun)]) -> Result<u8, Error> {
    let Verifier {
        ssh,
        quiet,
        run_dir,
        run_id,
        provider,
        settings,
        aws,
        scratch,
        jobs,
        format,
    } = *v;
    let started = now_ms();
    let checked: Vec<HostVerification> = {
        let (events, consumer) = runner::event_stream(quiet);
        events.send(Event::RunStarted {
            command: "verify",
            hosts: valid.len(),
        });
        let connector = runner::SshConnector {
            options: ssh.clone(),
        };
        let checked = futures::stream::iter(valid.iter().map(|(host, result)| {
            let (connector, events) = (&connector, &events);
            async move {
                let started_at = now_ms();
                let mut done = HostVerification {
                    host: host.name.clone(),
                    started_at,
                    finished_at: started_at,
                    instances: Vec::new(),
                    error: None,
                    warnings: Vec::new(),
                };
                match crate::remote::transport::Connector::connect(connector, host, events).await {
                    Err(e) => {
                        done.error =
                            Some(e.to_string().lines().next().unwrap_or_default().to_string())
                    }
                    Ok(vm) => {
                        events.send(Event::StepStarted {
                            host: host.name.clone(),
                            step: "verify",
                        });
                        // Write-ahead: recover finds the clone if this dies.
                        let ebs =
                            provider.kind() == crate::inventory::playbook::ProviderKind::AwsEbs;
                        let cloning = crate::backup::verification::CloneEntry {
                            host: host.name.clone(),
                            at: now_ms(),
                            state: "cloning".into(),
                            platform: host.platform.as_str().into(),
                            clone_dir: settings.clone_dir.clone(),
                            instance: settings.instance.clone(),
                            attempt: format!("{}-{started_at}", std::process::id()),
                            provider: if ebs { "aws-ebs".into() } else { String::new() },
                            scratch_access: scratch
                                .filter(|_| ebs)
                                .map(|s| crate::backup::journal::HostAccess::new(s, String::new())),
                            aws_region: aws.and_then(|a| a.region.clone()),
                            aws_profile: aws.and_then(|a| a.profile.clone()),
                            aws_endpoint_url: aws.and_then(|a| a.endpoint_url.clone()),
                        };
                        if let Err(e) = cloning.append(run_dir) {
                            done.error = Some(format!(
                                "cannot write {}: {e}, so no clone is made",
                                run_dir.join(crate::backup::verification::JOURNAL).display()
                            ));
                            done.finished_at = now_ms();
                            vm.close().await;
                            events.send(Event::HostSummary {
                                host: host.name.clone(),
                                text: summary(&done),
                                ok: false,
                            });
                            return done;
                        }
                        // The scratch instance the clones go to, if any.
                        let scratch_vm = match scratch {
                            Some(s) => match crate::remote::transport::Connector::connect(
                                connector, s, events,
                            )
                            .await
                            {
                                Ok(c) => Some(c),
                                Err(e) => {
                                    done.error = Some(format!(
                                        "cannot reach the scratch instance {}: {}",
                                        s.name,
                                        e.to_string().lines().next().unwrap_or_default()
                                    ));
                                    None
                                }
                            },
                            None => None,
                        };
                        let request = VerifyRequest {
                            host,
                            vm: &*vm,
                            run_id,
                            settings,
                            snapshot_ids: &result.snapshot_ids,
                            restore: &result.restore,
                            scratch: scratch.zip(scratch_vm.as_deref()),
                        };
                        // Err: refused before any clone was made.
                        let outcome = if scratch.is_some() && scratch_vm.is_none() {
                            Err(done.error.clone().unwrap_or_default())
                        } else {
                            provider.verify(request).await
                        };
                        if let Some(s) = scratch_vm {
                            s.close().await;
                        }
                        let torn_down = match outcome {
                            Ok(v) => {
                                if v.instances.is_empty() {
                                    done.error =
                                        Some(v.warnings.first().cloned().unwrap_or_else(|| {
                                            "the verification gave no result".into()
                                        }));
                                }
                                done.instances = v.instances;
                                done.warnings = v.warnings;
                                v.torn_down
                            }
                            Err(why) => {
                                done.error = Some(why);
                                true
                            }
                        };
                        if torn_down {
                            let _ = crate::backup::verification::CloneEntry {
                                state: "torn-down".into(),
                                at: now_ms(),
                                ..cloning
                            }
                            .append(run_dir);
                        }
                        vm.close().await;
                    }
                }
                done.finished_at = now_ms();
                events.send(Event::HostSummary {
                    host: host.name.clone(),
                    text: summary(&done),
                    ok: done.ok(),
                });
                done
            }
        }))
        .buffered(jobs.max(1))
        .collect::<Vec<_>>()
        .await;
        events.send(Event::RunFinished {
            elapsed: std::time::Duration::from_millis(now_ms().saturating_sub(started)),
            interrupted: false,
        });
        drop(events);
        let _ = consumer.await;
        checked
    };
    let record = VerifyRecord {
        run_id: run_id.to_string(),
        verified_at: now_ms(),
        hosts: checked,
    };
    let saved = record.save(run_dir);
    // None: a backup's own --format json owns stdout; verify.json has it.
    match format {
        Some(HostsFormat::Json) => {
            print(&(serde_json::to_string_pretty(&record).unwrap_or_default() + "\n"))
        }
        Some(HostsFormat::Table) => print(&table(&record)),
        None => {}
    }
    if let Err(e) = saved {
        return Err(Error::Usage {
            message: format!("cannot write {}: {e}", run_dir.join(crate::backup::verification::FILE).display()),
            hint: "the verification ran (see above) but is not recorded: check the runs directory's space and permissions".into(),
        });
    }
    // 1: a backup that did not verify is a finding, like a non-compliant hook.
    Ok(if record.hosts.iter().all(HostVerification::ok) {
        exit_code::SUCCESS
    } else {
        exit_code::FINDINGS
    })
}

/// `verify.scratch`'s host, from the whole inventory (not only --limit's).
pub fn scratch_of<'a>(
    inventory: &'a Inventory,
    settings: &crate::inventory::playbook::VerifySettings,
) -> Result<Option<&'a Host>, Error> {
    match &settings.scratch {
        None => Ok(None),
        Some(name) => inventory.host(name).map(Some).ok_or_else(|| Error::Usage {
            message: format!("verify.scratch `{name}` is not a host of the inventory"),
            hint: "name the inventory host of the scratch instance in verify.scratch".into(),
        }),
    }
}

/// The progress line at a host's end: `3 of 3 instances verified (41.2s)`,
/// or what stopped it.
fn summary(h: &HostVerification) -> String {
    let secs = h.finished_at.saturating_sub(h.started_at) as f64 / 1000.0;
    match &h.error {
        Some(why) => format!("NOT VERIFIED ({secs:.1}s): {why}"),
        None => format!(
            "{} of {} instances verified ({secs:.1}s)",
            h.instances.iter().filter(|i| i.ok).count(),
            h.instances.len()
        ),
    }
}

/// One line per instance: `verified: HOST INSTANCE: …` or `NOT VERIFIED: …`,
/// then the steps and the evidence, indented.
fn table(record: &VerifyRecord) -> String {
    let mut text = String::new();
    for h in &record.hosts {
        if let Some(why) = &h.error {
            text.push_str(&format!("NOT VERIFIED: {}: {why}\n", h.host));
        }
        for i in &h.instances {
            text.push_str(&line(&h.host, i));
        }
        for w in &h.warnings {
            text.push_str(&format!("warning: {}: {w}\n", h.host));
        }
    }
    let total: usize = record.hosts.iter().map(|h| h.instances.len().max(1)).sum();
    let good: usize = record
        .hosts
        .iter()
        .map(|h| {
            if h.error.is_some() {
                0
            } else {
                h.instances.iter().filter(|i| i.ok).count()
            }
        })
        .sum();
    text.push_str(&format!(
        "run {}: {good} of {total} instances verified\n",
        record.run_id
    ));
    text
}

fn line(host: &str, i: &InstanceVerdict) -> String {
    let mut text = format!(
        "{}: {host} {}: {}\n",
        if i.ok { "verified" } else { "NOT VERIFIED" },
        i.instance,
        i.reason
    );
    for s in &i.steps {
        text.push_str(&format!(
            "  {} {} ({:.1}s): {}\n",
            s.name,
            if s.ok { "ok" } else { "FAILED" },
            s.seconds,
            s.detail
        ));
    }
    for e in &i.evidence {
        text.push_str(&format!("  | {e}\n"));
    }
    text
}
