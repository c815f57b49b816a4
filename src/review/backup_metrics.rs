//! A backup's Prometheus metrics: per host the last valid backup (from every
//! run kept under the runs directory, so a host that failed tonight still
//! shows when it last had one), this run's freeze window, stun and QoS
//! headroom, and the run's instances left frozen, hosts unreachable,
//! duration and exit code.

use crate::backup::host_run::Outcome;
use crate::output::metrics::{Family, seconds};
use crate::review::backup_report::Report;
use std::collections::BTreeMap;
use std::path::Path;

pub fn families(
    report: &Report<'_>,
    runs_dir: &Path,
    exit_code: u8,
    elapsed: std::time::Duration,
) -> Vec<Family> {
    let host = |name: &str| vec![("host", name.to_string())];
    let mut last_valid = Family::gauge(
        "quiesce_backup_last_valid_timestamp_seconds",
        "When the host's last valid backup (frozen, snapshot taken while suspended, thawed in time) ended.",
    );
    for (name, at) in last_valid_backups(runs_dir) {
        last_valid.push(host(&name), seconds(at));
    }
    let mut valid = Family::gauge(
        "quiesce_backup_valid",
        "1 when the host's snapshot in the last run is a valid backup, else 0.",
    );
    let mut window = Family::gauge(
        "quiesce_freeze_window_seconds",
        "From the start of the host's freeze to the end of its thaw, in the last run.",
    );
    let mut stun = Family::gauge(
        "quiesce_stun_seconds",
        "The host's VM stun in the last run.",
    );
    let mut headroom = Family::gauge(
        "quiesce_qos_headroom_seconds",
        "The mirror's QoS timeout minus the host's stun in the last run (negative: over it).",
    );
    let mut left_frozen = 0;
    for r in report.results {
        valid.push(
            host(&r.host),
            if r.outcome == Outcome::Valid {
                1.0
            } else {
                0.0
            },
        );
        if let Some(ms) = r.freeze_window_ms() {
            window.push(host(&r.host), seconds(ms));
        }
        if let Some(us) = r.stun_us {
            stun.push(host(&r.host), us as f64 / 1e6);
            if let Some(qos) = r.qos_timeout_ms {
                headroom.push(host(&r.host), (qos as f64 * 1000.0 - us as f64) / 1e6);
            }
        }
        if r.outcome == Outcome::LeftFrozen {
            left_frozen += r.instances.len().max(1);
        }
    }
    let mut families = vec![
        last_valid,
        valid,
        window,
        stun,
        headroom,
        Family::gauge(
            "quiesce_instances_left_frozen",
            "Instances the last run could not thaw: act now (`quiesce recover RUN`).",
        )
        .sample(vec![], left_frozen as f64),
    ];
    families.extend(crate::output::metrics::run_families(
        "backup",
        report.unreachable.len(),
        exit_code,
        elapsed,
    ));
    families
}

/// Per host, the end of its newest valid backup in the runs kept.
fn last_valid_backups(runs_dir: &Path) -> BTreeMap<String, u64> {
    let mut last = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return last;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("results.json")) else {
            continue;
        };
        let Ok(results) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for host in results["hosts"].as_array().into_iter().flatten() {
            if host["outcome"] == "valid"
                && let (Some(name), Some(at)) = (host["host"].as_str(), host["thawed_at"].as_u64())
            {
                let newest = last.entry(name.to_string()).or_insert(at);
                *newest = (*newest).max(at);
            }
        }
    }
    last
}
