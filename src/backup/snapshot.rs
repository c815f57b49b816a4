//! The snapshot step of a backup: the playbook's command, run on the
//! controller (a hypervisor CLI) or on the VM (an LVM snapshot), with a
//! timeout; a stun it reports (`vm stopped for N us`) is measured.

use crate::inventory::playbook::{RunOn, SnapshotStep};
use crate::remote::ssh::{Connection, ExitStatus};
use std::process::Stdio;

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

/// Runs the step's (already rendered) command once, within `timeout`;
/// stops it when `stop` turns true.
pub async fn run(
    step: &SnapshotStep,
    command: &str,
    env: &[(String, String)],
    connection: Option<&Connection>,
    timeout: Duration,
    stop: watch::Receiver<bool>,
) -> SnapshotResult {
    if *stop.borrow() {
        return SnapshotResult {
            ok: false,
            detail: "interrupted before the snapshot".into(),
            stun_us: None,
        };
    }
    match (step.on, connection) {
        (RunOn::Vm, Some(connection)) => {
            let command = crate::inventory::playbook::env_prelude(env) + command;
            on_vm(connection, &command, timeout, stop).await
        }
        _ => on_controller(command, env, timeout, stop).await,
    }
}

/// The guard's arguments: its own time limit (a little over the run's) and the command.
fn guard_args(command: &str, timeout: Duration) -> [String; 2] {
    [(timeout.as_secs() + 2).to_string(), command.to_string()]
}

async fn on_vm(
    connection: &Connection,
    command: &str,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> SnapshotResult {
    let [secs, command] = guard_args(command, timeout);
    let mut armed = match connection
        .arm_script("snapshot", GUARD, &[&secs, &command])
        .await
    {
        Ok(armed) => armed,
        Err(e) => {
            return SnapshotResult {
                ok: false,
                detail: e.to_string().lines().next().unwrap_or_default().to_string(),
                stun_us: None,
            };
        }
    };
    let failed = |detail: String| SnapshotResult {
        ok: false,
        detail,
        stun_us: None,
    };
    let result = tokio::select! {
        out = armed.wait_end() => match out {
            Ok(out) if out.status == ExitStatus::Code(0) => return SnapshotResult { ok: true, detail: "snapshot taken".into(), stun_us: max_stun(&out.stdout_text()) },
            Ok(out) => return SnapshotResult { ok: false, detail: format!("snapshot command failed: {}", out.describe()), stun_us: max_stun(&out.stdout_text()) },
            Err(e) => return failed(e.to_string().lines().next().unwrap_or_default().to_string()),
        },
        _ = tokio::time::sleep(timeout) => failed(format!("snapshot command timed out after {}", crate::inventory::duration::format(timeout))),
        _ = stop.wait_for(|s| *s) => failed("interrupted during the snapshot".into()),
    };
    // End of input: the guard on the VM kills the command's whole process group.
    armed.close().await;
    result
}

async fn on_controller(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> SnapshotResult {
    let [secs, command] = guard_args(command, timeout);
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(GUARD)
        .args(["sh", &secs, &command])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return SnapshotResult {
                ok: false,
                detail: format!("cannot start the snapshot command: {e}"),
                stun_us: None,
            };
        }
    };
    // Held until the command ends: when this process dies (even by SIGKILL),
    // the pipe closes and the guard ends the command's process group.
    let lifeline = child.stdin.take();
    let group = child.id();
    let output = child.wait_with_output();
    tokio::pin!(output);
    let stopped = tokio::select! {
        output = &mut output => {
            return match output {
                Ok(out) => {
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    let stun_us = max_stun(&stdout);
                    if out.status.success() {
                        SnapshotResult { ok: true, detail: "snapshot taken".into(), stun_us }
                    } else {
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
                        SnapshotResult { ok: false, detail: format!("snapshot command failed ({}){}", out.status, if last.is_empty() { String::new() } else { format!(": {last}") }), stun_us }
                    }
                }
                Err(e) => SnapshotResult { ok: false, detail: format!("snapshot command: {e}"), stun_us: None },
            };
        }
        _ = tokio::time::sleep(timeout) => format!("snapshot command timed out after {}", crate::inventory::duration::format(timeout)),
        _ = stop.wait_for(|s| *s) => "interrupted during the snapshot".to_string(),
    };
    // SIGTERM first (a hypervisor CLI may clean up), SIGKILL after a grace period.
    drop(lifeline);
    let signal_group = |signal| {
        if let Some(pid) = group {
            // SAFETY: killpg only sends a signal to the process group we started.
            unsafe {
                libc::killpg(pid as libc::pid_t, signal);
            }
        }
    };
    signal_group(libc::SIGTERM);
    if tokio::time::timeout(KILL_GRACE, &mut output).await.is_err() {
        signal_group(libc::SIGKILL);
    }
    SnapshotResult {
        ok: false,
        detail: stopped,
        stun_us: None,
    }
}

/// How long a stopped snapshot command has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

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
