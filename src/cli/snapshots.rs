//! `snapshots list` and `snapshots prune`: the snapshots the playbook's
//! provider made, read from the provider itself (not only runs/), each with
//! its run's verdict; and their removal by the playbook's retention.

use super::{print, runtime, ssh_options};
use crate::backup::host_run::Outcome;
use crate::backup::provider::{self, Listed};
use crate::cli::args::{Global, HostsFormat};
use crate::inventory::playbook::{Playbook, Retention};
use crate::inventory::{Host, Inventory, limit};
use crate::output::error::Error;
use crate::output::event::Event;
use crate::output::exit_code;
use crate::remote::runner;
use crate::review::backup_report::Results;
use serde::Serialize;
use std::path::Path;

/// One run's snapshots of one host: they are kept or removed together.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSet {
    pub host: String,
    pub run_id: String,
    /// Seconds since the run started (from its id).
    pub age_secs: Option<u64>,
    /// The run's verdict for the host: `valid`, `INVALID`, `FAILED`…, or
    /// `unknown` when runs/ has no results for it.
    pub verdict: String,
    /// No valid or invalid backup stands behind it: a crashed run, a failed
    /// snapshot, a run removed from runs/.
    pub orphan: bool,
    pub names: Vec<String>,
    pub ids: Vec<String>,
    /// What `quiesce verify` found for this host's backup of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Its run is still under way (its export, say): never pruned then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// `prune`: what the retention says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// The run id's time (`20261124T031500Z-4f2a`), in seconds since the epoch.
fn run_started(run_id: &str) -> Option<i64> {
    let stamp = run_id.split('-').next()?;
    let at = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", stamp).ok()?;
    Some(jiff::tz::TimeZone::UTC.to_timestamp(at).ok()?.as_second())
}

/// A run id as quiesce makes them: safe as a directory name under runs/.
fn plain_run(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn verdict(runs_dir: &Path, run_id: &str, host: &str) -> Option<Outcome> {
    if !plain_run(run_id) {
        return None;
    }
    let text = std::fs::read_to_string(runs_dir.join(run_id).join("results.json")).ok()?;
    let results: Results = serde_json::from_str(&text).ok()?;
    results
        .hosts
        .iter()
        .find(|h| h.host == host)
        .map(|h| h.outcome)
}

/// Groups one host's listed snapshots by run, newest run first.
fn sets(runs_dir: &Path, host: &str, listed: Vec<Listed>, now: i64) -> Vec<SnapshotSet> {
    let mut sets: Vec<SnapshotSet> = Vec::new();
    for l in listed {
        match sets.iter_mut().find(|s| s.run_id == l.run_id) {
            Some(set) => {
                set.names.push(l.name);
                set.ids.push(l.id);
            }
            None => {
                let outcome = verdict(runs_dir, &l.run_id, host);
                sets.push(SnapshotSet {
                    host: host.to_string(),
                    age_secs: run_started(&l.run_id).map(|t| (now - t).max(0) as u64),
                    verdict: outcome
                        .map(|o| o.label().to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    orphan: !matches!(outcome, Some(Outcome::Valid | Outcome::Invalid)),
                    verified: plain_run(&l.run_id)
                        .then(|| {
                            crate::backup::verification::VerifyRecord::load(
                                &runs_dir.join(&l.run_id),
                            )
                        })
                        .flatten()
                        .and_then(|v| v.host_ok(host)),
                    live: plain_run(&l.run_id)
                        && crate::backup::run_dir::live_holder(&runs_dir.join(&l.run_id)).is_some(),
                    run_id: l.run_id,
                    names: vec![l.name],
                    ids: vec![l.id],
                    decision: None,
                });
            }
        }
    }
    sets.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    sets
}

/// Marks each of one host's sets (newest first) keep or remove: the newest
/// valid one always stays; other valid ones by `keep` and `max_age`
/// (neither set: every valid one stays); invalid and orphaned ones go.
pub fn decide(sets: &mut [SnapshotSet], retention: &Retention) {
    let mut valid_seen = 0u32;
    for set in sets.iter_mut() {
        let decision = if set.live {
            "keep: its run is still under way".to_string()
        } else if set.orphan {
            "remove: orphan (no backup stands behind it)".to_string()
        } else if set.verdict != "valid" {
            format!("remove: the run's verdict is {}", set.verdict)
        } else if set.verified == Some(false) {
            // A backup that did not restore is no "newest valid" one.
            "remove: it failed verification (quiesce verify)".to_string()
        } else {
            valid_seen += 1;
            let young = match (retention.max_age_secs, set.age_secs) {
                (Some(max), Some(age)) => age <= max,
                _ => false,
            };
            let within = retention.keep.is_some_and(|k| valid_seen <= k);
            let unlimited = retention.keep.is_none() && retention.max_age_secs.is_none();
            if valid_seen == 1 {
                "keep: the newest valid backup".to_string()
            } else if unlimited || within || young {
                "keep: within the retention".to_string()
            } else {
                "remove: beyond the retention".to_string()
            }
        };
        set.decision = Some(decision);
    }
}

fn age_text(secs: Option<u64>) -> String {
    match secs {
        None => "?".into(),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// Why a removal on `host` must wait: a mirror's primary whose last
/// measured stun exceeded half its mirror's QoS timeout (a removal's
/// consolidation stuns the VM again), unless forced.
fn primary_guard(
    inventory: &Inventory,
    host: &Host,
    role: &crate::backup::role::Role,
    history: &crate::backup::stun_history::StunHistory,
) -> Option<String> {
    if *role != crate::backup::role::Role::Primary {
        return None;
    }
    let mirror = inventory.mirrors.get(host.mirror.as_deref()?)?;
    let last = history.last(&host.vm)?;
    let half = mirror.qos_timeout.as_micros() as u64 / 2;
    (last > half).then(|| {
        format!(
            "keep: {} is mirror {}'s primary and its last stun was {:.3}s, over half the QoS timeout ({}): a removal's consolidation could fail the mirror over (--force removes it anyway)",
            host.name,
            mirror.name,
            last as f64 / 1e6,
            crate::output::duration::format(mirror.qos_timeout)
        )
    })
}

/// `snapshots list` (prune: None) and `snapshots prune` (Some(check)).
pub fn snapshots(
    global: &Global,
    inventory: &Inventory,
    limited: Vec<Host>,
    playbook_path: &Path,
    prune: Option<bool>,
    force: bool,
    format: HostsFormat,
) -> Result<u8, Error> {
    let (playbook, provider, hosts) = playbook_hosts(inventory, &limited, playbook_path)?;
    let ssh = ssh_options(global)?;
    let runs_dir = global.runs_dir.clone();
    let history = crate::backup::stun_history::StunHistory::load(&runs_dir)
        .map_err(crate::backup::stun_history::refusal)?;
    let now = jiff::Timestamp::now().as_second();
    let (all, errors) = runtime()?.block_on(async {
        let (events, consumer) = runner::event_stream(global.quiet);
        events.send(Event::RunStarted {
            command: "snapshots",
            hosts: hosts.len(),
        });
        let connector = runner::SshConnector {
            options: ssh.clone(),
        };
        let mut all: Vec<SnapshotSet> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut measured: Vec<(String, crate::backup::stun_history::Measured)> = Vec::new();
        // Each host's role first (as preflight reads it), so that removals
        // go in mirror order: one host at a time (never two members of a
        // mirror consolidating at once), each mirror's primary last.
        let mut reached = Vec::new();
        for host in &hosts {
            match crate::remote::transport::Connector::connect(&connector, host, &events).await {
                Ok(c) => {
                    let role = match crate::backup::preflight::read_facts(&*c, host).await {
                        Ok(facts) => facts.role(),
                        Err(_) => crate::backup::role::Role::Unsettled {
                            detail: "its role could not be read".into(),
                        },
                    };
                    reached.push((*host, c, role));
                }
                Err(e) => errors.push(e.to_string().lines().next().unwrap_or_default().to_string()),
            }
        }
        reached.sort_by_key(|(h, _, role)| {
            (
                h.mirror.clone().unwrap_or_default(),
                matches!(role, crate::backup::role::Role::Primary),
            )
        });
        for (host, connection, role) in reached {
            let guard = if force {
                None
            } else {
                primary_guard(inventory, host, &role, &history)
            };
            match provider.list(host, &*connection).await {
                Err(why) => errors.push(format!("{}: {why}", host.target())),
                Ok(listed) => {
                    let mut host_sets = sets(&runs_dir, &host.name, listed, now);
                    if let Some(check) = prune {
                        decide(&mut host_sets, &playbook.snapshot.retention);
                        if let Some(why) = &guard {
                            for set in host_sets.iter_mut().filter(|s| {
                                s.decision
                                    .as_deref()
                                    .is_some_and(|d| d.starts_with("remove"))
                            }) {
                                set.decision = Some(why.clone());
                            }
                        }
                        if !check {
                            for set in host_sets.iter_mut().filter(|s| {
                                s.decision
                                    .as_deref()
                                    .is_some_and(|d| d.starts_with("remove"))
                            }) {
                                let started = crate::backup::journal::now_ms();
                                let removed = provider.remove(host, &*connection, &set.names).await;
                                let failed: Vec<String> = removed
                                    .iter()
                                    .filter_map(|(n, r)| {
                                        r.as_ref().err().map(|e| format!("{n}: {e}"))
                                    })
                                    .collect();
                                if failed.is_empty() {
                                    // The removal's consolidation stuns the VM too:
                                    // measured from vmware.log like the create's,
                                    // and kept for the next primary guard.
                                    let stun = match host.esxi {
                                        Some(_) => {
                                            removal_stun(host, &connector, &events, started).await
                                        }
                                        None => None,
                                    };
                                    set.decision = set.decision.as_ref().map(|d| {
                                        let d = d.replacen("remove", "removed", 1);
                                        match stun {
                                            Some(m) => format!(
                                                "{d} (consolidation stun {:.3}s, from vmware.log)",
                                                m.us as f64 / 1e6
                                            ),
                                            None => d,
                                        }
                                    });
                                    if let Some(m) = stun {
                                        measured.push((host.vm.clone(), m));
                                    }
                                } else {
                                    errors.push(format!(
                                        "{}: could not remove {}",
                                        host.target(),
                                        failed.join("; ")
                                    ));
                                }
                            }
                        }
                    }
                    all.extend(host_sets);
                }
            }
            connection.close().await;
        }
        provider.finish().await;
        drop(events);
        let _ = consumer.await;
        if let Err(why) = crate::backup::stun_history::StunHistory::record(&runs_dir, &measured) {
            errors.push(why);
        }
        (all, errors)
    });
    match format {
        HostsFormat::Json => print(
            &(serde_json::to_string_pretty(&serde_json::json!({
                "provider": provider.kind().as_str(),
                "snapshots": all,
                "errors": errors,
            }))
            .unwrap_or_default()
                + "\n"),
        ),
        HostsFormat::Table => {
            let mut headers = vec!["HOST", "RUN", "AGE", "VERDICT", "SNAPSHOTS"];
            if prune.is_some() {
                headers.push("DECISION");
            }
            let mut rows: Vec<Vec<String>> = Vec::new();
            for set in &all {
                let mut row = vec![
                    set.host.clone(),
                    set.run_id.clone(),
                    age_text(set.age_secs),
                    if set.orphan {
                        format!("{} (orphan)", set.verdict)
                    } else {
                        set.verdict.clone()
                    },
                    set.names.len().to_string(),
                ];
                if let Some(d) = &set.decision {
                    row.push(d.clone());
                }
                rows.push(row);
            }
            let mut text = crate::output::table::render(&headers, &rows);
            for e in &errors {
                text.push_str(&format!("error: {e}\n"));
            }
            print(&text);
        }
    }
    Ok(if errors.is_empty() {
        exit_code::SUCCESS
    } else {
        exit_code::UNREACHABLE
    })
}

/// A playbook with its provider and the hosts of it `--limit` kept.
pub(super) type PlaybookHosts<'i> = (
    Playbook,
    std::sync::Arc<dyn provider::Provider>,
    Vec<&'i Host>,
);

/// The playbook, its provider, and its hosts that `--limit` kept.
pub(super) fn playbook_hosts<'i>(
    inventory: &'i Inventory,
    limited: &[Host],
    playbook_path: &Path,
) -> Result<PlaybookHosts<'i>, Error> {
    let playbook = Playbook::load(playbook_path, inventory)?;
    let provider = provider::of(&playbook.snapshot);
    let hosts = limit::select(inventory, playbook.hosts.as_deref())?
        .into_iter()
        .filter(|h| limited.iter().any(|l| l.name == h.name))
        .collect();
    Ok((playbook, provider, hosts))
}

/// The longest consolidation stun vmware.log shows for `host` since
/// `since` (ms): what removing its snapshots cost. None when the log could
/// not be read or shows none.
async fn removal_stun(
    host: &Host,
    connector: &runner::SshConnector,
    events: &crate::output::event::EventSender,
    since: u64,
) -> Option<crate::backup::stun_history::Measured> {
    let fetched = crate::review::esxi::fetch(&[host], connector, 0, 1, events).await;
    let files = fetched.into_iter().next()?.files.ok()?;
    files
        .iter()
        .flat_map(|(_, bytes)| {
            crate::backup::vmware_log::parse(&String::from_utf8_lossy(bytes)).stuns
        })
        .filter(|s| {
            s.cause == crate::backup::vmware_log::Cause::Consolidation
                && s.at.is_some_and(|at| at >= since)
        })
        .max_by_key(|s| s.us)
        .map(|s| crate::backup::stun_history::Measured {
            at: s.at.unwrap_or(since),
            us: s.us,
        })
}

/// `audit -p` and `status -p`: what the playbook's provider finds wrong
/// with each host's snapshots on the hypervisor (VMware: a snapshot older
/// than 72 h, a chain deeper than 3, `consolidationNeeded`), printed as
/// `finding: HOST: TEXT` (on stderr beside JSON). The number of findings;
/// a host the provider cannot read is one too.
pub fn health(
    inventory: &Inventory,
    limited: &[Host],
    playbook_path: &Path,
    json: bool,
) -> Result<usize, Error> {
    let (_, provider, hosts) = playbook_hosts(inventory, limited, playbook_path)?;
    let lines: Vec<String> = runtime()?.block_on(async {
        let mut lines = Vec::new();
        for host in hosts {
            match provider.health(host).await {
                Ok(found) => lines.extend(
                    found
                        .into_iter()
                        .map(|f| format!("finding: {}: {f}", host.name)),
                ),
                Err(why) => lines.push(format!(
                    "finding: {}: the {} provider could not read its snapshots: {why}",
                    host.name,
                    provider.kind().as_str()
                )),
            }
        }
        provider.finish().await;
        lines
    });
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if json {
        eprint!("{}", crate::output::terminal::scrub(&text));
    } else {
        print(&text);
    }
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(run: &str, verdict: &str, orphan: bool, age: u64) -> SnapshotSet {
        SnapshotSet {
            host: "h".into(),
            run_id: run.into(),
            age_secs: Some(age),
            verdict: verdict.into(),
            orphan,
            names: vec![],
            ids: vec![],
            verified: None,
            live: false,
            decision: None,
        }
    }

    #[test]
    fn a_primary_whose_last_stun_was_long_keeps_its_snapshots() {
        use crate::backup::role::Role;
        use crate::backup::stun_history::{Measured, StunHistory};
        let inventory = Inventory::parse(
            Path::new("i.yml"),
            "hosts:\n  p: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\nmirrors:\n  M: { members: [p, b], qos_timeout: 8s }\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        StunHistory::record(
            dir.path(),
            &[
                (
                    "p".into(),
                    Measured {
                        at: 1,
                        us: 5_000_000,
                    },
                ),
                (
                    "b".into(),
                    Measured {
                        at: 1,
                        us: 5_000_000,
                    },
                ),
            ],
        )
        .unwrap();
        let history = StunHistory::load(dir.path()).unwrap();
        let p = inventory.host("p").unwrap();
        let b = inventory.host("b").unwrap();
        let why = primary_guard(&inventory, p, &Role::Primary, &history).unwrap();
        assert!(why.starts_with("keep: p is mirror M's primary and its last stun was 5.000s, over half the QoS timeout (8s)"), "{why}");
        // A backup member, or a short stun, is removed as the retention says.
        assert_eq!(primary_guard(&inventory, b, &Role::Backup, &history), None);
        let short = tempfile::tempdir().unwrap();
        StunHistory::record(
            short.path(),
            &[(
                "p".into(),
                Measured {
                    at: 1,
                    us: 1_000_000,
                },
            )],
        )
        .unwrap();
        assert_eq!(
            primary_guard(
                &inventory,
                p,
                &Role::Primary,
                &StunHistory::load(short.path()).unwrap()
            ),
            None
        );
    }

    #[test]
    fn retention_keeps_the_newest_valid_and_removes_orphans_and_invalid_first() {
        let mut sets = vec![
            set("R5", "unknown", true, 10),
            set("R4", "INVALID", false, 20),
            set("R3", "valid", false, 30),
            set("R2", "valid", false, 4000),
            set("R1", "valid", false, 9000),
        ];
        decide(
            &mut sets,
            &Retention {
                keep: Some(1),
                max_age_secs: Some(3600),
            },
        );
        let d: Vec<&str> = sets
            .iter()
            .map(|s| s.decision.as_deref().unwrap())
            .collect();
        assert_eq!(
            d,
            [
                "remove: orphan (no backup stands behind it)",
                "remove: the run's verdict is INVALID",
                "keep: the newest valid backup",
                "remove: beyond the retention",
                "remove: beyond the retention",
            ]
        );
        // keep 0 still keeps the newest valid; no policy keeps every valid one.
        decide(
            &mut sets,
            &Retention {
                keep: Some(0),
                max_age_secs: None,
            },
        );
        assert_eq!(
            sets[2].decision.as_deref(),
            Some("keep: the newest valid backup")
        );
        decide(&mut sets, &Retention::default());
        assert!(sets[3].decision.as_deref().unwrap().starts_with("keep"));
        // A valid backup that failed verification is never the newest valid one.
        sets[2].verified = Some(false);
        decide(
            &mut sets,
            &Retention {
                keep: Some(1),
                max_age_secs: None,
            },
        );
        let d: Vec<&str> = sets
            .iter()
            .map(|s| s.decision.as_deref().unwrap())
            .collect();
        assert_eq!(
            &d[2..4],
            [
                "remove: it failed verification (quiesce verify)",
                "keep: the newest valid backup"
            ]
        );
        assert_eq!(run_started("20261124T031500Z-4f2a"), Some(1795490100));
    }
}
