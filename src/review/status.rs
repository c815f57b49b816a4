//! `quiesce status`: did every database get a consistent backup recently
//! enough? Per instance, every backup the kept runs and the collected logs
//! show — quiesce's own runs (`results.json`), and freezes VMware Tools or a
//! backup product started through the hooks (`snapshot.log` under
//! `hosts/HOST/` of any run or `logs` directory) — the last valid one, its
//! age, and with `--max-age` a finding for each instance without one in time.

use crate::backup::host_run::{HostRun, Outcome};
use crate::backup::plan::SkipKind;
use crate::review::hook_logs::{HookEventKind, parse_snapshot_log};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One backup attempt of one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backup {
    /// When it ended (the thaw), ms since the epoch.
    pub at: u64,
    pub valid: bool,
    /// `quiesce run RUN-ID`, or `VMware Tools / backup product`.
    pub by: String,
    pub window_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stun_us: Option<u64>,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What `quiesce verify` found (none: never verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub host: String,
    pub instance: String,
    pub last_valid: Option<u64>,
    pub age_ms: Option<u64>,
    /// The newest valid backup that `quiesce verify` also restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<u64>,
    /// The newest first, at most `--last`.
    pub backups: Vec<Backup>,
    /// With `--max-age`: why the instance has no valid backup in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    /// The last 30 days (UTC), oldest first: `v` a valid backup that day,
    /// `x` only failed or invalid ones, `.` none.
    pub days: String,
}

/// How many days `days` covers.
pub const DAYS: u64 = 30;

#[derive(Deserialize)]
struct Results {
    run_id: String,
    hosts: Vec<HostRun>,
    #[serde(default)]
    skipped: Vec<crate::backup::plan::Skipped>,
}

/// What `--max-age` is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgeOf {
    /// The last valid backup.
    Valid,
    /// The last valid backup that `quiesce verify` restored.
    Verified,
}

/// Everything the runs directory knows, for the hosts named.
pub fn gather(
    runs_dir: &Path,
    hosts: &[(String, Vec<String>)],
    now: u64,
    max_age: Option<(u64, AgeOf)>,
    last: usize,
) -> Vec<InstanceStatus> {
    // (host, instance) → backups; host → the newest reason it was left out.
    let mut found: BTreeMap<(String, String), Vec<Backup>> = BTreeMap::new();
    // host → (run, why in words, why as a kind) of the newest run that left it out.
    let mut left_out: BTreeMap<String, (String, String, SkipKind)> = BTreeMap::new();
    // The windows quiesce's runs covered, so their log lines are not counted twice.
    let mut covered: Vec<(String, u64, u64)> = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(runs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in &dirs {
        let Some(results) = std::fs::read_to_string(dir.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Results>(&t).ok())
        else {
            continue;
        };
        let verification = crate::backup::verification::VerifyRecord::load(dir);
        for run in &results.hosts {
            let Some(start) = run.freeze_started else {
                continue;
            };
            let end = run.thawed_at.or(run.thaw_started).unwrap_or(start);
            covered.push((run.host.clone(), start, end));
            let why = (run.outcome != Outcome::Valid)
                .then(|| format!("{}: {}", run.outcome.label(), run.detail));
            for instance in &run.instances {
                found
                    .entry((run.host.clone(), instance.clone()))
                    .or_default()
                    .push(Backup {
                        at: end,
                        valid: run.outcome == Outcome::Valid,
                        by: format!("quiesce run {}", results.run_id),
                        window_ms: run.freeze_window_ms(),
                        stun_us: run.stun_us,
                        why: why.clone(),
                        verified: verification
                            .as_ref()
                            .and_then(|v| v.verdict(&run.host, instance)),
                    });
            }
        }
        for skipped in &results.skipped {
            left_out.insert(
                skipped.host.clone(),
                (results.run_id.clone(), skipped.reason.clone(), skipped.why),
            );
        }
    }
    // Freezes the hooks logged that no quiesce run covers: VMware Tools, or a
    // backup product calling the hooks.
    for dir in &dirs {
        let Ok(hosts_dir) = std::fs::read_dir(dir.join("hosts")) else {
            continue;
        };
        for host_dir in hosts_dir.flatten() {
            let host = host_dir.file_name().to_string_lossy().into_owned();
            let Ok(text) = std::fs::read_to_string(host_dir.path().join("snapshot.log")) else {
                continue;
            };
            // The VM's stuns, if its vmware.log was read from the ESXi host.
            let stuns = std::fs::read(host_dir.path().join("vmware.log"))
                .map(|bytes| {
                    crate::backup::vmware_log::parse(&String::from_utf8_lossy(&bytes)).stuns
                })
                .unwrap_or_default();
            for (instance, mut backup) in hook_cycles(&text) {
                let frozen = backup.at.saturating_sub(backup.window_ms.unwrap_or(0));
                // The instance's own LogFile: from suspended to resumed.
                if let Ok(log) = std::fs::read_to_string(
                    host_dir.path().join(format!("{instance}-pre_post.log")),
                ) && let Some(window) = instance_window(&log, frozen, backup.at)
                {
                    backup.window_ms = Some(window);
                }
                backup.stun_us = stuns
                    .iter()
                    .filter(|s| {
                        s.at.is_some_and(|t| t + 1000 >= frozen && t <= backup.at + 1000)
                    })
                    .map(|s| s.us)
                    .max();
                // The log's whole seconds are at most a second before the run's clock.
                let ours = covered
                    .iter()
                    .any(|(h, s, e)| *h == host && backup.at + 1000 >= *s && backup.at <= *e);
                let list = found.entry((host.clone(), instance)).or_default();
                if !ours && !list.iter().any(|b| b.at == backup.at) {
                    list.push(backup);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (host, instances) in hosts {
        let mut names: Vec<String> = instances.clone();
        for (h, i) in found.keys() {
            if h == host && !names.contains(i) {
                names.push(i.clone());
            }
        }
        if names.is_empty() {
            names.push("(any)".into());
        }
        for instance in names {
            let mut backups = found
                .get(&(host.clone(), instance.clone()))
                .cloned()
                .unwrap_or_default();
            backups.sort_by_key(|b| std::cmp::Reverse(b.at));
            let last_valid = backups.iter().find(|b| b.valid).map(|b| b.at);
            let age_ms = last_valid.map(|at| now.saturating_sub(at));
            let last_verified = backups
                .iter()
                .find(|b| b.valid && b.verified == Some(true))
                .map(|b| b.at);
            let finding = max_age.and_then(|(max, of)| {
                let measured = match of {
                    AgeOf::Valid => age_ms,
                    AgeOf::Verified => last_verified.map(|at| now.saturating_sub(at)),
                };
                if measured.is_some_and(|age| age <= max) {
                    return None;
                }
                if of == AgeOf::Verified && age_ms.is_some_and(|age| age <= max) {
                    let newest = backups.iter().find(|b| b.valid);
                    return Some(match newest.and_then(|b| b.verified) {
                        Some(false) => format!(
                            "the last valid backup ({}) FAILED verification (quiesce verify: see runs/…/verify.json)",
                            newest.map(|b| b.by.as_str()).unwrap_or("-")
                        ),
                        _ => format!(
                            "no backup verified within {} (run quiesce verify RUN)",
                            crate::output::duration::format(std::time::Duration::from_millis(max))
                        ),
                    });
                }
                Some(match (backups.first(), left_out.get(host)) {
                    (_, Some((run, reason, SkipKind::HooksDiffer))) => {
                        format!("hooks not compliant (run {run}: {reason})")
                    }
                    (None, _) => "never backed up".to_string(),
                    (Some(newest), _) if !newest.valid => newest
                        .why
                        .clone()
                        .unwrap_or_else(|| "the last backup is not valid".into()),
                    (Some(_), _) => format!(
                        "the last valid backup is older than {}",
                        crate::output::duration::format(std::time::Duration::from_millis(max))
                    ),
                })
            });
            let days = day_strip(&backups, now);
            backups.truncate(last.max(1));
            out.push(InstanceStatus {
                host: host.clone(),
                instance,
                last_valid,
                age_ms,
                last_verified,
                backups,
                finding,
                days,
            });
        }
    }
    out
}

fn day_strip(backups: &[Backup], now: u64) -> String {
    const DAY: u64 = 86_400_000;
    let today = now / DAY;
    (0..DAYS)
        .rev()
        .map(|back| {
            let day = today.saturating_sub(back);
            let that_day = backups.iter().filter(|b| b.at / DAY == day);
            let (mut any, mut valid) = (false, false);
            for b in that_day {
                any = true;
                valid |= b.valid;
            }
            match (any, valid) {
                (_, true) => 'v',
                (true, false) => 'x',
                _ => '.',
            }
        })
        .collect()
}

/// The instance's suspended-to-resumed window from its LogFile, for the cycle
/// suspended between `from` and `to`. The LogFile's zone-less times are
/// matched as UTC here: on a VM in another zone no cycle matches, and the
/// hook's own window (snapshot.log) stands.
fn instance_window(log: &str, from: u64, to: u64) -> Option<u64> {
    let cycles = crate::review::hook_logs::parse_instance_log(log);
    let within = |c: &crate::review::hook_logs::InstanceCycle| {
        c.suspended
            .is_some_and(|t| t + 1000 >= from && t <= to + 1000)
    };
    cycles
        .iter()
        .rev()
        .find(|c| within(c))
        .and_then(|c| c.window_ms())
}

/// The freeze/thaw cycles `snapshot.log` shows, per instance: a freeze the
/// instance reached (`IS FROZEN`), thawed (`IS THAWED`) by a `thaw` (not a
/// freezeFail), with no INVALID line, is a valid backup.
fn hook_cycles(text: &str) -> Vec<(String, Backup)> {
    let mut out = Vec::new();
    // instance → (frozen at, invalid seen)
    let mut open: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    let mut failing = false;
    for event in parse_snapshot_log(text) {
        match (&event.kind, event.instance) {
            (HookEventKind::ThawScriptStarted, _) => failing = false,
            (HookEventKind::FreezeFailStarted, _) => failing = true,
            (HookEventKind::Frozen, Some(i)) => {
                open.insert(i, (event.at, false));
            }
            (HookEventKind::Invalid, Some(i)) => {
                if let Some(cycle) = open.get_mut(&i) {
                    cycle.1 = true;
                }
            }
            (HookEventKind::Thawed, Some(i)) => {
                if let Some((frozen, invalid)) = open.remove(&i) {
                    let why = if failing {
                        Some("thawed without a backup (freezeFail: the snapshot failed)".into())
                    } else if invalid {
                        Some("snapshot INVALID (see snapshot.log)".into())
                    } else {
                        None
                    };
                    out.push((
                        i,
                        Backup {
                            at: event.at,
                            valid: why.is_none(),
                            by: "VMware Tools / backup product".into(),
                            window_ms: Some(event.at.saturating_sub(frozen)),
                            stun_us: None,
                            why,
                            verified: None,
                        },
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// The table people read.
pub fn table(statuses: &[InstanceStatus], now: u64) -> String {
    let clock = |ms: u64| {
        jiff::Timestamp::from_millisecond(ms as i64)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let newest = s.backups.iter().find(|b| b.valid);
            vec![
                s.host.clone(),
                s.instance.clone(),
                s.last_valid.map(clock).unwrap_or_else(|| "-".into()),
                s.age_ms
                    .map(|a| {
                        crate::output::duration::format(std::time::Duration::from_secs(a / 1000))
                    })
                    .unwrap_or_else(|| "-".into()),
                newest.map(|b| b.by.clone()).unwrap_or_else(|| "-".into()),
                newest
                    .and_then(|b| b.window_ms)
                    .map(|w| format!("{:.3}s", w as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into()),
                newest
                    .and_then(|b| b.stun_us)
                    .map(|u| format!("{:.3}s", u as f64 / 1e6))
                    .unwrap_or_else(|| "-".into()),
                match &s.finding {
                    Some(why) => format!("FINDING: {why}"),
                    None => "ok".into(),
                },
            ]
        })
        .collect();
    let findings = statuses.iter().filter(|s| s.finding.is_some()).count();
    let mut headers = vec![
        "HOST",
        "INSTANCE",
        "LAST VALID",
        "AGE",
        "BY",
        "WINDOW",
        "STUN",
        "STATUS",
    ];
    let mut rows = rows;
    // LAST VERIFIED only once some backup was verified (or tried).
    if statuses
        .iter()
        .any(|s| s.backups.iter().any(|b| b.verified.is_some()) || s.last_verified.is_some())
    {
        headers.insert(4, "LAST VERIFIED");
        for (row, s) in rows.iter_mut().zip(statuses) {
            let failed = s.backups.iter().find(|b| b.valid).and_then(|b| b.verified) == Some(false);
            let mut cell = s.last_verified.map(clock).unwrap_or_else(|| "-".into());
            if failed {
                cell.push_str(" (newest FAILED)");
            }
            row.insert(4, cell);
        }
    }
    let mut text = crate::output::table::render(&headers, &rows);
    text.push_str(&format!(
        "\nstatus: {} instance(s), {findings} finding(s); as of {}\n",
        statuses.len(),
        clock(now)
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_cycles_tell_valid_invalid_and_freezefail() {
        let log = "Wed Nov 25 10:00:00 UTC +0000 2026: Pre freeze script started
Wed Nov 25 10:00:01 UTC +0000 2026: IRIS IS FROZEN
Wed Nov 25 10:00:05 UTC +0000 2026: Post thaw script started (thaw)
Wed Nov 25 10:00:06 UTC +0000 2026: IRIS IS THAWED
Wed Nov 25 11:00:01 UTC +0000 2026: IRIS IS FROZEN
Wed Nov 25 11:00:05 UTC +0000 2026: Post thaw script started (freezeFail: the controller went away)
Wed Nov 25 11:00:06 UTC +0000 2026: IRIS IS THAWED
Wed Nov 25 12:00:01 UTC +0000 2026: IRIS IS FROZEN
Wed Nov 25 12:00:05 UTC +0000 2026: Post thaw script started (thaw)
Wed Nov 25 12:00:05 UTC +0000 2026: IRIS: the write daemon resumed before the thaw: the snapshot of IRIS is INVALID
Wed Nov 25 12:00:06 UTC +0000 2026: IRIS IS THAWED
";
        let cycles = hook_cycles(log);
        let got: Vec<(bool, Option<u64>)> =
            cycles.iter().map(|(_, b)| (b.valid, b.window_ms)).collect();
        assert_eq!(
            got,
            [(true, Some(5000)), (false, Some(5000)), (false, Some(5000))]
        );
    }
}
