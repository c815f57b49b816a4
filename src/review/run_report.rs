//! The freeze-window report of a backup run, built from what its run
//! directory holds: the results, the journal and the collected logs. Per host
//! and instance: freeze requested, suspended, resume requested, resumed, the
//! window, the journal file and marker a restore starts from, warnings,
//! validity, the VM's stun; a fleet summary (max, median, p95 window).

use crate::backup::host_run::{HostRun, Outcome};
use crate::output::error::Error;
use crate::review::backup_report::{Results, clock};
use crate::review::hook_logs::{
    HookEventKind, InstanceCycle, parse_instance_log, parse_snapshot_log,
};
use crate::review::logs::{Collected, read_collected};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// Log lines carry whole seconds: a cycle belongs to a run when it starts
/// within this much of the run's own (millisecond) times.
const SLACK_MS: u64 = 2_000;

#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub instance: String,
    pub freeze_requested: Option<u64>,
    pub suspended: Option<u64>,
    pub resume_requested: Option<u64>,
    pub resumed: Option<u64>,
    /// Suspended to resumed, from the instance's LogFile (whole seconds).
    pub window_ms: Option<u64>,
    pub journal_file: Option<String>,
    pub marker_offset: Option<u64>,
    pub marker_file: Option<String>,
    pub warnings: Vec<String>,
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    #[serde(flatten)]
    pub run: HostRun,
    pub instances: Vec<InstanceReport>,
    /// What the VM's vmware.log (read from its ESXi host) says of this run:
    /// the stuns and snapshots from the freeze to the thaw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmware_log: Option<crate::backup::vmware_log::VmwareLog>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub instances: usize,
    pub max_window_ms: Option<u64>,
    pub median_window_ms: Option<u64>,
    pub p95_window_ms: Option<u64>,
    /// The controller's own (millisecond) host windows, freeze start to thaw end.
    pub max_host_window_ms: Option<u64>,
    pub median_host_window_ms: Option<u64>,
    pub p95_host_window_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub playbook: String,
    pub hosts: Vec<HostReport>,
    pub summary: Summary,
    /// What `quiesce verify` found, once it ran for this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::backup::verification::VerifyRecord>,
}

fn percentile(values: &[u64], p: f64) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * p).round() as usize).copied()
}

fn within(at: Option<u64>, start: u64, end: u64) -> bool {
    at.is_some_and(|t| t + SLACK_MS >= start && t <= end + SLACK_MS)
}

/// The instance's cycle that belongs to this host's freeze, if its log has one.
fn instance_report(
    dir: &Path,
    instance: &str,
    host: &HostRun,
    truncated: &dyn Fn(&str) -> bool,
) -> InstanceReport {
    let (start, end) = (
        host.freeze_started.unwrap_or(0),
        host.thawed_at
            .or(host.thaw_started)
            .unwrap_or(u64::MAX - SLACK_MS),
    );
    let snapshot_log = read_collected(&dir.join("snapshot.log"), truncated("snapshot.log"));
    let events = parse_snapshot_log(&snapshot_log);
    let marked_invalid = events.iter().any(|e| {
        e.kind == HookEventKind::Invalid
            && e.instance.as_deref() == Some(instance)
            && within(Some(e.at), start, end)
    });
    // The instance's LogFile has local times without a zone: the hook's line
    // right before its ExternalFreeze states the VM's offset (the old hooks
    // and the article's scripts a zone abbreviation; none: read as UTC).
    let offset = events
        .iter()
        .filter(|e| e.instance.as_deref() == Some(instance))
        .filter(|e| within(Some(e.at), start, end))
        .find_map(|e| e.offset_minutes)
        .unwrap_or(0);
    let name = format!("{instance}-pre_post.log");
    let text = read_collected(&dir.join(&name), truncated(&name));
    let cycle: InstanceCycle = parse_instance_log(&text)
        .into_iter()
        .map(|c| c.shifted(offset))
        .rev()
        .find(|c| within(c.freeze_requested, start, end))
        .unwrap_or_default();
    InstanceReport {
        instance: instance.to_string(),
        freeze_requested: cycle.freeze_requested,
        suspended: cycle.suspended,
        resume_requested: cycle.resume_requested,
        resumed: cycle.resumed,
        window_ms: cycle.window_ms(),
        journal_file: cycle.journal_file.clone(),
        marker_offset: cycle.marker_offset,
        marker_file: cycle.marker_file.clone(),
        warnings: cycle.warnings.clone(),
        valid: host.outcome == Outcome::Valid && !marked_invalid,
    }
}

pub fn build(run_dir: &Path) -> Result<RunReport, Error> {
    let path = run_dir.join("results.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::File {
        path: path.clone(),
        action: "read the run's results",
        source,
    })?;
    let results: Results = serde_json::from_str(&text).map_err(|e| Error::Usage {
        message: format!("{}: {e}", path.display()),
        hint: "pass the directory of a `quiesce backup` run".into(),
    })?;
    let collected: Vec<Collected> = std::fs::read_to_string(run_dir.join("logs.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let hosts: Vec<HostReport> = results
        .hosts
        .iter()
        .map(|run| {
            let dir = run_dir.join("hosts").join(&run.host);
            let truncated = |file: &str| {
                collected
                    .iter()
                    .filter(|c| c.host == run.host)
                    .flat_map(|c| &c.files)
                    .any(|f| f.name == file && f.truncated)
            };
            let instances = run
                .instances
                .iter()
                .map(|i| instance_report(&dir, i, run, &truncated))
                .collect();
            let vmware_log = std::fs::read(dir.join("vmware.log")).ok().map(|bytes| {
                let mut log = crate::backup::vmware_log::parse(&String::from_utf8_lossy(&bytes));
                let (start, end) = (
                    run.freeze_started.unwrap_or(0),
                    run.thawed_at
                        .or(run.thaw_started)
                        .unwrap_or(u64::MAX - SLACK_MS),
                );
                log.stuns.retain(|s| within(s.at, start, end));
                log.snapshots.retain(|s| within(s.at, start, end));
                log
            });
            HostReport {
                run: run.clone(),
                instances,
                vmware_log,
            }
        })
        .collect();
    let windows: Vec<u64> = hosts
        .iter()
        .flat_map(|h| &h.instances)
        .filter_map(|i| i.window_ms)
        .collect();
    let host_windows: Vec<u64> = hosts
        .iter()
        .filter_map(|h| h.run.freeze_window_ms())
        .collect();
    let summary = Summary {
        instances: hosts.iter().map(|h| h.instances.len()).sum(),
        max_window_ms: windows.iter().max().copied(),
        median_window_ms: percentile(&windows, 0.5),
        p95_window_ms: percentile(&windows, 0.95),
        max_host_window_ms: host_windows.iter().max().copied(),
        median_host_window_ms: percentile(&host_windows, 0.5),
        p95_host_window_ms: percentile(&host_windows, 0.95),
    };
    Ok(RunReport {
        run_id: results.run_id,
        playbook: results.playbook,
        hosts,
        summary,
        verification: crate::backup::verification::VerifyRecord::load(run_dir),
    })
}

fn secs(ms: Option<u64>) -> String {
    ms.map(|ms| {
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.3}s", ms as f64 / 1000.0)
        }
    })
    .unwrap_or_else(|| "-".into())
}

fn hms(ms: Option<u64>) -> String {
    let text = clock(ms);
    text.split('.').next().unwrap_or("-").to_string()
}

impl RunReport {
    pub fn table(&self) -> String {
        let header = [
            "HOST",
            "INSTANCE",
            "FREEZE REQ",
            "SUSPENDED",
            "RESUME REQ",
            "RESUMED",
            "WINDOW",
            "JOURNAL FILE",
            "MARKER",
            "STUN",
            "VALID",
            "WARNINGS",
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for host in &self.hosts {
            let stun = host
                .run
                .stun_us
                .map(|us| format!("{:.3}s", us as f64 / 1e6))
                .unwrap_or_else(|| "-".into());
            if host.instances.is_empty() {
                rows.push(vec![
                    host.run.host.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    stun.clone(),
                    host.run.outcome.label().into(),
                    String::new(),
                ]);
            }
            for i in &host.instances {
                rows.push(vec![
                    host.run.host.clone(),
                    i.instance.clone(),
                    hms(i.freeze_requested),
                    hms(i.suspended),
                    hms(i.resume_requested),
                    hms(i.resumed),
                    secs(i.window_ms),
                    i.journal_file.clone().unwrap_or_else(|| "-".into()),
                    i.marker_offset
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "-".into()),
                    stun.clone(),
                    if i.valid {
                        "yes".into()
                    } else {
                        format!("NO ({})", host.run.outcome.label())
                    },
                    i.warnings.join("; "),
                ]);
            }
        }
        let mut out = crate::output::table::render(&header, &rows);
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\nrun {} ({}): {} hosts, {} instances; freeze window from the instance logs: max {}, median {}, p95 {}; from the controller (freeze start to thaw end): max {}, median {}, p95 {}; times are UTC",
            self.run_id,
            self.playbook,
            self.hosts.len(),
            s.instances,
            secs(s.max_window_ms),
            secs(s.median_window_ms),
            secs(s.p95_window_ms),
            secs(s.max_host_window_ms),
            secs(s.median_host_window_ms),
            secs(s.p95_host_window_ms)
        );
        if let Some(v) = &self.verification {
            let _ = writeln!(
                out,
                "verified at {} (quiesce verify):",
                hms(Some(v.verified_at))
            );
            for h in &v.hosts {
                if let Some(why) = &h.error {
                    let _ = writeln!(out, "  {}: NOT VERIFIED: {why}", h.host);
                }
                for i in &h.instances {
                    let _ = writeln!(
                        out,
                        "  {} {}: {}: {}",
                        h.host,
                        i.instance,
                        if i.ok { "verified" } else { "NOT VERIFIED" },
                        i.reason
                    );
                }
            }
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}
