//! `quiesce stun VMWARE.LOG...`: per VM the count, max and p95 of its stuns
//! and the headroom to its mirror's QoS timeout; VMs over it, or within half
//! of it, are flagged. The stuns also feed the backup's QoS guard.

use crate::backup::vmware_log::{self, Snapshot, SnapshotEnd, Stun};
use crate::inventory::{DEFAULT_QOS_TIMEOUT, Inventory};
use crate::output::error::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    Ok,
    /// At least half the QoS timeout: one slower snapshot from a failover.
    Near,
    /// Longer than the QoS timeout: the mirror would have failed over.
    Over,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmStuns {
    pub vm: String,
    pub files: Vec<PathBuf>,
    pub count: usize,
    pub max_us: Option<u64>,
    pub p95_us: Option<u64>,
    pub qos_timeout_ms: u64,
    /// Where the QoS timeout comes from: `--qos`, `mirror NAME` or `default`.
    pub qos_source: String,
    pub headroom_ms: Option<i64>,
    pub flag: Flag,
    /// Every stun (time when the log gave one, µs, cause), oldest first.
    pub stuns: Vec<Stun>,
    /// Every snapshot the logs show (name, quiesced or not, how it ended).
    pub snapshots: Vec<Snapshot>,
}

/// The VM a vmware.log belongs to: the directory it sits in (beside the .vmx).
fn vm_of(file: &Path) -> String {
    file.parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

pub fn analyse(
    files: &[PathBuf],
    qos: Option<Duration>,
    inventory: Option<&Inventory>,
) -> Result<Vec<VmStuns>, Error> {
    // VM → (its files, its stuns, its snapshots).
    type Found = (Vec<PathBuf>, Vec<Stun>, Vec<Snapshot>);
    let mut by_vm: BTreeMap<String, Found> = BTreeMap::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|source| Error::File {
            path: file.clone(),
            action: "read",
            source,
        })?;
        let log = vmware_log::parse(&String::from_utf8_lossy(&bytes));
        let entry = by_vm.entry(vm_of(file)).or_default();
        entry.0.push(file.clone());
        entry.1.extend(log.stuns);
        entry.2.extend(log.snapshots);
    }
    Ok(by_vm
        .into_iter()
        .map(|(vm, (files, mut stuns, mut snapshots))| {
            // Stable: stuns without a time keep their order in the file.
            stuns.sort_by_key(|s| s.at);
            snapshots.sort_by_key(|s| s.at);
            let mirror = inventory.and_then(|inv| {
                let host = inv.hosts.iter().find(|h| h.vm == vm || h.name == vm)?;
                inv.mirrors.get(host.mirror.as_ref()?)
            });
            let (qos_timeout, qos_source) = match (qos, mirror) {
                (Some(q), _) => (q, "--qos".to_string()),
                (None, Some(m)) => (m.qos_timeout, format!("mirror {}", m.name)),
                (None, None) => (DEFAULT_QOS_TIMEOUT, "default".to_string()),
            };
            let mut sorted: Vec<u64> = stuns.iter().map(|s| s.us).collect();
            sorted.sort_unstable();
            let max_us = sorted.last().copied();
            let p95_us = sorted
                .len()
                .checked_sub(1)
                .map(|last| sorted[((last as f64) * 0.95).round() as usize]);
            let qos_us = qos_timeout.as_micros() as u64;
            let flag = match max_us {
                Some(m) if m > qos_us => Flag::Over,
                Some(m) if m * 2 >= qos_us => Flag::Near,
                _ => Flag::Ok,
            };
            VmStuns {
                vm,
                files,
                count: stuns.len(),
                max_us,
                p95_us,
                qos_timeout_ms: qos_timeout.as_millis() as u64,
                qos_source,
                headroom_ms: max_us.map(|m| qos_timeout.as_millis() as i64 - (m / 1000) as i64),
                flag,
                stuns,
                snapshots,
            }
        })
        .collect())
}

pub fn table(vms: &[VmStuns]) -> String {
    let s = |us: Option<u64>| {
        us.map(|u| format!("{:.3}s", u as f64 / 1e6))
            .unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "{:<24} {:>6} {:>9} {:>9} {:>9} {:>10}  {:<14} {}\n",
        "VM", "STUNS", "MAX", "P95", "QOS", "HEADROOM", "QOS FROM", "FLAG"
    );
    for v in vms {
        let flag = match v.flag {
            Flag::Ok => "ok".to_string(),
            Flag::Near => "NEAR: at least half the QoS timeout".to_string(),
            Flag::Over => "OVER: longer than the QoS timeout (a failover)".to_string(),
        };
        let headroom = v
            .headroom_ms
            .map(|h| format!("{:.3}s", h as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<24} {:>6} {:>9} {:>9} {:>9} {:>10}  {:<14} {}",
            v.vm,
            v.count,
            s(v.max_us),
            s(v.p95_us),
            format!("{:.3}s", v.qos_timeout_ms as f64 / 1000.0),
            headroom,
            v.qos_source,
            flag
        );
    }
    for v in vms
        .iter()
        .filter(|v| !v.stuns.is_empty() || !v.snapshots.is_empty())
    {
        let _ = writeln!(
            out,
            "\n{}: {} stun{}, {} snapshot{}",
            v.vm,
            v.stuns.len(),
            if v.stuns.len() == 1 { "" } else { "s" },
            v.snapshots.len(),
            if v.snapshots.len() == 1 { "" } else { "s" }
        );
        // Stuns and snapshots in time order (those without a time in file order, first).
        let mut lines: Vec<(Option<u64>, String)> = v
            .stuns
            .iter()
            .map(|stun| {
                let cause = match &stun.snapshot {
                    Some(name) => format!("{} '{name}'", stun.cause.label()),
                    None => stun.cause.label().to_string(),
                };
                (stun.at, format!("stun {}  {cause}", s(Some(stun.us))))
            })
            .chain(v.snapshots.iter().map(|snap| {
                let mut what = vec![match snap.quiesced {
                    Some(true) => "quiesced",
                    Some(false) => "not quiesced",
                    None => "quiesced: not logged",
                }];
                if snap.memory == Some(true) {
                    what.push("with memory");
                }
                what.push(match snap.end {
                    SnapshotEnd::Done => "done",
                    SnapshotEnd::QuiesceTimedOut => "QUIESCE TIMED OUT",
                    SnapshotEnd::Unknown => "end not logged",
                });
                (
                    snap.at,
                    format!("snapshot '{}'  {}", snap.name, what.join(", ")),
                )
            }))
            .collect();
        lines.sort_by_key(|(at, _)| *at);
        for (at, line) in lines {
            let _ = writeln!(out, "  {:<24}  {line}", when(at));
        }
    }
    out
}

/// A log time as UTC, or `-` where the log gave none.
fn when(at: Option<u64>) -> String {
    at.and_then(|ms| jiff::Timestamp::from_millisecond(ms as i64).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_qos_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let write = |vm: &str, us: &[u64]| {
            std::fs::create_dir_all(dir.path().join(vm)).unwrap();
            let text: String = us.iter().map(|u| format!("2023-01-01T00:00:00.000Z| vcpu-0| I125: Checkpoint_Unstun: vm stopped for {u} us\n")).collect();
            let file = dir.path().join(vm).join("vmware.log");
            std::fs::write(&file, text).unwrap();
            file
        };
        let files = [
            write("A", &[38123, 100_000]),
            write("B", &[4_500_000]),
            write("C", &[9_000_000]),
        ];
        let vms = analyse(&files, None, None).unwrap();
        assert_eq!(
            vms.iter().map(|v| v.flag).collect::<Vec<_>>(),
            [Flag::Ok, Flag::Near, Flag::Over]
        );
        assert_eq!(
            (vms[0].count, vms[0].max_us, vms[0].qos_source.as_str()),
            (2, Some(100_000), "default")
        );
        assert_eq!(vms[0].headroom_ms, Some(7900));
        let vms = analyse(&files[..1], Some(Duration::from_millis(150)), None).unwrap();
        assert_eq!(vms[0].flag, Flag::Near);
    }
}
