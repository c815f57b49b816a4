//! The snapshot step of a backup: the playbook's command, run on the
//! controller (a hypervisor CLI) or on the VM (an LVM snapshot), with a
//! timeout; a stun it reports (`vm stopped for N us`) is measured.

use crate::inventory::playbook::{RunOn, SnapshotStep};
use crate::remote::transport::{ExitStatus, Output, Transport};

/// Runs a snapshot command so that it dies with the run: see the script.
const GUARD: &str = include_str!("../remote/scripts/snapshot_guard.sh");
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotResult {
    pub ok: bool,
    pub detail: String,
    /// The longest stun the command reported, in microseconds.
    pub stun_us: Option<u64>,
    /// What was made: the `quiesce-snapshot-id ID` lines the command (or
    /// the provider's script) printed, in order.
    pub ids: Vec<String>,
}

impl SnapshotResult {
    /// A snapshot not taken, and why.
    pub fn failed(detail: String) -> SnapshotResult {
        SnapshotResult {
            ok: false,
            detail,
            stun_us: None,
            ids: Vec::new(),
        }
    }
}

/// The ids a snapshot command printed (`quiesce-snapshot-id ID`, one per
/// line; outside input: printable, at most 200 characters, 64 of them).
pub fn ids_of(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("quiesce-snapshot-id "))
        .map(|id| {
            id.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|id| !id.is_empty())
        .take(64)
        .collect()
}

/// The longest stun the command reported, read as vmware.log is (an ESXi 8
/// Checkpoint_Unstun/CPT pair is one stun).
fn max_stun(text: &str) -> Option<u64> {
    crate::backup::vmware_log::parse(text)
        .stuns
        .iter()
        .map(|s| s.us)
        .max()
}

/// Runs the step's (already rendered) command once, within `timeout`, on
/// `transport` (the VM's, or the controller's own); stops it when `stop`
/// turns true. None: the VM could not be reached.
pub async fn run(
    step: &SnapshotStep,
    command: &str,
    env: &[(String, String)],
    transport: Option<&dyn Transport>,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> SnapshotResult {
    let failed = SnapshotResult::failed;
    if *stop.borrow() {
        return failed("interrupted before the snapshot".into());
    }
    let Some(transport) = transport else {
        return failed("cannot reach the VM for the snapshot".into());
    };
    let command = crate::remote::shell::env_prelude(env) + command;
    // The guard's own time limit is a little over the run's.
    let secs = (timeout.as_secs() + 2).to_string();
    // The whole step, its start included, within `timeout`: a session slow
    // to open must not stretch the freeze past what was budgeted.
    let started = tokio::time::Instant::now();
    let args = [secs.as_str(), command.as_str()];
    let arming = tokio::time::timeout(timeout, transport.arm("snapshot", GUARD, &args));
    let mut session = match arming.await {
        Err(_) => {
            return failed(format!(
                "snapshot timed out after {} before its command started",
                crate::output::duration::format(timeout)
            ));
        }
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            let detail = e.to_string().lines().next().unwrap_or_default().to_string();
            return failed(match step.on {
                RunOn::Controller => format!("cannot start the snapshot command: {detail}"),
                RunOn::Vm => detail,
            });
        }
    };
    let result = tokio::select! {
        out = session.wait_end() => match out {
            Ok(out) => return judge(step.on, &out),
            Err(e) => return failed(e.to_string().lines().next().unwrap_or_default().to_string()),
        },
        _ = tokio::time::sleep(timeout.saturating_sub(started.elapsed())) => failed(format!("snapshot command timed out after {}", crate::output::duration::format(timeout))),
        _ = stop.wait_for(|s| *s) => failed("interrupted during the snapshot".into()),
    };
    // End of input: the guard kills the command's whole process group
    // (SIGTERM, then SIGKILL), on the VM and on the controller alike.
    session.close().await;
    result
}

/// A finished snapshot command: taken or failed, and the longest stun it reported.
fn judge(on: RunOn, out: &Output) -> SnapshotResult {
    let stun_us = max_stun(&out.stdout_text());
    if out.status == ExitStatus::Code(0) {
        return SnapshotResult {
            ok: true,
            detail: "snapshot taken".into(),
            stun_us,
            ids: ids_of(&out.stdout_text()),
        };
    }
    let detail = match on {
        RunOn::Vm => format!("snapshot command failed: {}", out.describe()),
        // Worded as the controller's own process status.
        RunOn::Controller => {
            let status = match &out.status {
                ExitStatus::Code(c) => format!("exit status: {c}"),
                ExitStatus::Signal(s) => format!("signal: {s}"),
                ExitStatus::Unknown => "no exit status".into(),
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(last) => format!("snapshot command failed ({status}): {}", last.trim()),
                None => format!("snapshot command failed ({status})"),
            }
        }
    };
    SnapshotResult {
        ok: false,
        detail,
        stun_us,
        // What a failed command made is still named: an orphan to remove.
        ids: ids_of(&out.stdout_text()),
    }
}
