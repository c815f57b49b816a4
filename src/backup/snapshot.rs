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
}

/// A stun in microseconds from a vmware.log-style line:
/// `Checkpoint_Unstun: vm stopped for N us` or `CPT: vm was stunned for N us`.
pub fn stun_in_line(line: &str) -> Option<u64> {
    for marker in ["vm stopped for ", "vm was stunned for "] {
        if let Some(start) = line.find(marker) {
            let rest = &line[start + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && rest[digits.len()..].trim_start().starts_with("us") {
                return digits.parse().ok();
            }
        }
    }
    None
}

fn max_stun(text: &str) -> Option<u64> {
    text.lines().filter_map(stun_in_line).max()
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
    let failed = |detail: String| SnapshotResult {
        ok: false,
        detail,
        stun_us: None,
    };
    if *stop.borrow() {
        return failed("interrupted before the snapshot".into());
    }
    let Some(transport) = transport else {
        return failed("cannot reach the VM for the snapshot".into());
    };
    let command = crate::remote::shell::env_prelude(env) + command;
    // The guard's own time limit is a little over the run's.
    let secs = (timeout.as_secs() + 2).to_string();
    let mut session = match transport.arm("snapshot", GUARD, &[&secs, &command]).await {
        Ok(session) => session,
        Err(e) => {
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
        _ = tokio::time::sleep(timeout) => failed(format!("snapshot command timed out after {}", crate::output::duration::format(timeout))),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_stun_formats() {
        assert_eq!(
            stun_in_line(
                "2015-10-27T22:01:42.149Z| vcpu-0| I120: Checkpoint_Unstun: vm stopped for 188405 us"
            ),
            Some(188405)
        );
        assert_eq!(
            stun_in_line(
                "2023-01-01T00:00:00.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 18500 us"
            ),
            Some(18500)
        );
        assert_eq!(
            stun_in_line("CPT: vm was stunned for 414878 us"),
            Some(414878)
        );
        assert_eq!(stun_in_line("vm stopped for many us"), None);
        assert_eq!(stun_in_line("vm stopped for 12 ms"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,120}") {
            let _ = stun_in_line(&line);
        }
    }
}
