//! What a backup run prints: a table per host (frozen at, thawed at, freeze
//! window, snapshot time, stun, result) or JSON, and the run's exit code.

use crate::backup::host_run::{HostRun, Outcome};
use crate::backup::plan::{SkipKind, Skipped};
use crate::output::exit_code;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub fn clock(ms: Option<u64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms as i64).ok())
        .map(|t| t.strftime("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn seconds(ms: Option<u64>) -> String {
    ms.map(|ms| format!("{:.3}s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

pub struct Report<'a> {
    pub run_id: &'a str,
    pub playbook: &'a str,
    pub journal: String,
    pub results: &'a [HostRun],
    pub skipped: &'a [Skipped],
    pub unreachable: &'a [String],
    pub interrupted: bool,
}

/// How a `plan` or `backup` ended.
pub enum Ending<'a> {
    /// Refused before anything was frozen: another run holds a host, or a
    /// freeze is already in place.
    Refused,
    /// `plan`: nothing was run.
    Planned { unreachable: bool },
    /// A run, with every host's outcome.
    Ran(&'a Report<'a>),
}

/// The one place a backup's exit code is decided, from the run's outcomes
/// (the codes are documented in `output/exit_code.rs` and the README).
pub fn exit_code(ending: Ending<'_>) -> u8 {
    let report = match ending {
        Ending::Refused => return exit_code::FAILED,
        Ending::Planned { unreachable: true } => return exit_code::UNREACHABLE,
        Ending::Planned { unreachable: false } => return exit_code::SUCCESS,
        Ending::Ran(report) => report,
    };
    let any = |o: Outcome| report.results.iter().any(|r| r.outcome == o);
    if any(Outcome::LeftFrozen) {
        exit_code::LEFT_FROZEN
    } else if report.interrupted {
        exit_code::INTERRUPTED
    } else if any(Outcome::Failed)
        || any(Outcome::Invalid)
        || any(Outcome::Skipped)
        || report.results.iter().any(|r| !r.findings.is_empty())
        || report
            .skipped
            .iter()
            .any(|s| matches!(s.why, SkipKind::Problem | SkipKind::HooksDiffer))
    {
        exit_code::FAILED
    } else if report
        .skipped
        .iter()
        .any(|s| s.why == SkipKind::Unreachable)
        || !report.unreachable.is_empty()
    {
        exit_code::UNREACHABLE
    } else {
        exit_code::SUCCESS
    }
}

impl Report<'_> {
    pub fn table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .results
            .iter()
            .map(|r| {
                vec![
                    r.host.clone(),
                    r.lane.clone(),
                    r.role
                        .describe()
                        .replace(" failover member", "")
                        .replace("async member: ", "async ")
                        .replace("not a mirror member", "-"),
                    if r.instances.is_empty() {
                        "-".into()
                    } else {
                        r.instances.join(",")
                    },
                    clock(r.frozen_at),
                    clock(r.thawed_at),
                    seconds(r.freeze_window_ms()),
                    seconds(r.snapshot_ms()),
                    r.stun_us
                        .map(|us| format!("{:.3}s", us as f64 / 1e6))
                        .unwrap_or_else(|| "-".into()),
                    format!(
                        "{}{}",
                        r.outcome.label(),
                        if r.outcome == Outcome::Valid {
                            String::new()
                        } else {
                            format!(": {}", r.detail)
                        }
                    ),
                ]
            })
            .collect();
        let header = [
            "HOST",
            "LANE",
            "ROLE",
            "INSTANCES",
            "FROZEN AT",
            "THAWED AT",
            "WINDOW",
            "SNAPSHOT",
            "STUN",
            "RESULT",
        ];
        let mut out = crate::output::table::render(&header, &rows);
        for s in self.skipped {
            let _ = writeln!(
                out,
                "{}  skipped: {}",
                s.host,
                s.reason.lines().next().unwrap_or("")
            );
        }
        for r in self.results {
            for finding in &r.findings {
                let _ = writeln!(out, "{}  {finding}", r.host);
            }
        }
        for r in self.results {
            // A failed export is among the findings above.
            if let Some(e) = r.export.as_ref().filter(|e| e.ok) {
                let _ = writeln!(
                    out,
                    "{}  export {} at {} UTC: {}",
                    r.host,
                    if e.ok { "done" } else { "FAILED" },
                    clock(Some(e.at)),
                    e.detail
                );
            }
        }
        // What the provider made, with when its point in time was fixed
        // (the snapshot's end, before the thaw) and, for a provider whose
        // snapshots settle after the thaw (EBS), when they were durable.
        for r in self.results.iter().filter(|r| !r.snapshot_ids.is_empty()) {
            let _ = writeln!(
                out,
                "{}  snapshot{} fixed at {} UTC{}: {}",
                r.host,
                if r.snapshot_ids.len() == 1 { "" } else { "s" },
                clock(r.snapshot_finished),
                r.durable_at
                    .map(|d| format!(", durable at {} UTC", clock(Some(d))))
                    .unwrap_or_default(),
                r.snapshot_ids.join(", ")
            );
        }
        for r in self
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::LeftFrozen)
        {
            let _ = writeln!(
                out,
                "\n!! {} IS STILL FROZEN{}.\n   Thaw it now: {}",
                r.host,
                r.pauses_at
                    .map(|p| format!(
                        ": its instances pause all user activity at {} UTC",
                        clock(Some(p))
                    ))
                    .unwrap_or_default(),
                r.manual_thaw.as_deref().unwrap_or("")
            );
        }
        let count = |o: Outcome| self.results.iter().filter(|r| r.outcome == o).count();
        let mut parts = vec![format!("{} valid", count(Outcome::Valid))];
        for (o, n) in [
            (Outcome::Invalid, "INVALID"),
            (Outcome::Failed, "failed"),
            (Outcome::LeftFrozen, "LEFT FROZEN"),
            (Outcome::Skipped, "not run"),
        ] {
            if count(o) > 0 {
                parts.push(format!("{} {n}", count(o)));
            }
        }
        if !self.skipped.is_empty() {
            parts.push(format!("{} skipped", self.skipped.len()));
        }
        let _ = writeln!(
            out,
            "\nbackup {} (run {}): {} hosts: {}{}; times are UTC\njournal: {}",
            self.playbook,
            self.run_id,
            self.results.len() + self.skipped.len(),
            parts.join(", "),
            if self.interrupted {
                " (INTERRUPTED)"
            } else {
                ""
            },
            self.journal
        );
        out
    }

    pub fn json(&self) -> String {
        let json = Results {
            run_id: self.run_id.to_string(),
            playbook: self.playbook.to_string(),
            journal: self.journal.clone(),
            interrupted: self.interrupted,
            exit_code: exit_code(Ending::Ran(self)),
            hosts: self.results.to_vec(),
            skipped: self.skipped.to_vec(),
        };
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
    }
}

/// A backup's results as `--format json` prints them and `runs/<run>/results.json` keeps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub run_id: String,
    pub playbook: String,
    pub journal: String,
    pub interrupted: bool,
    pub exit_code: u8,
    pub hosts: Vec<HostRun>,
    pub skipped: Vec<Skipped>,
}
