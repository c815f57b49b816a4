//! Starting a freeze: one session per host runs the checked freeze and
//! keeps the armed thaw (and the VM's dead-man's switch) waiting for its word.

use super::*;
use crate::backup::restore_point::RestorePoint;

/// How a freeze attempt on one host ended.
pub(super) enum FreezeStart {
    /// Frozen; the session holds the armed thaw (and the VM's dead-man's switch).
    /// `restore`: where a journal restore of each instance's backup starts.
    Frozen {
        session: Box<dyn Session>,
        restore: Vec<RestorePoint>,
    },
    /// Another owner's freeze (another run, VMware Tools) holds the VM: this
    /// run froze nothing there and sends no thaw.
    Held { holder: String, detail: String },
    /// The hook was never run (no connection, or it failed its check).
    NotRun(HostError),
    /// The freeze ran and failed, or its result is unknown: a thaw follows.
    Failed {
        detail: String,
        session: Option<Box<dyn Session>>,
    },
}

impl Run<'_> {
    /// Starts the freeze session on `name`: the checked freeze, then the armed
    /// thaw waiting for its word, with the VM's own deadline.
    pub(super) async fn start_freeze(&self, name: &str) -> FreezeStart {
        let host = self.host(name);
        let freeze_timeout = self.playbook.freeze_timeout();
        let connection = match self.connection(name).await {
            Ok(c) => c,
            Err(e) => return FreezeStart::NotRun(e),
        };
        let (pre_sha, post_sha) = expected_shas(host);
        let (pre, post) = (
            HookKind::freezer(host).path(host),
            HookKind::thawer(host).path(host),
        );
        let timeout_secs = freeze_timeout.as_secs().to_string();
        let deadline = vm_deadline(freeze_timeout, self.playbook.freeze_margin)
            .as_secs()
            .to_string();
        let args = [
            self.run_id.as_str(),
            &timeout_secs,
            &deadline,
            &pre,
            &pre_sha,
            &post,
            &post_sha,
        ];
        let script = hooks::freeze_session_script();
        let wait = self.ssh.command_timeout.min(freeze_timeout);
        let mut session =
            match tokio::time::timeout(wait, connection.arm("freeze", &script, &args)).await {
                Ok(Ok(session)) => session,
                Ok(Err(e)) => {
                    return FreezeStart::Failed {
                        detail: first_line(&e),
                        session: None,
                    };
                }
                Err(_) => {
                    return FreezeStart::Failed {
                        detail: format!(
                            "freeze did not start within {}",
                            crate::output::duration::format(wait)
                        ),
                        session: None,
                    };
                }
            };
        let line = match tokio::time::timeout(wait, session.read_line("quiesce-freeze ")).await {
            Ok(line) => line,
            Err(_) => {
                return FreezeStart::Failed {
                    detail: format!(
                        "freeze did not finish within {}",
                        crate::output::duration::format(wait)
                    ),
                    session: Some(session),
                };
            }
        };
        let out = session.output();
        let Some(line) = line else {
            // The session ended before its freeze said anything: a hook
            // failed its check (and nothing was frozen), or it broke.
            let kind = if out
                .stdout_text()
                .contains("quiesce-unchecked post-thaw-script")
            {
                HookKind::thawer(host)
            } else {
                HookKind::freezer(host)
            };
            return match out.code() {
                Some(hooks::MISMATCH) => {
                    FreezeStart::NotRun(self.hook_changed(name, kind, out.stderr_line()))
                }
                Some(hooks::UNCHECKABLE) => FreezeStart::NotRun(HostError::StepFailed {
                    target: host.target(),
                    step: "freeze".into(),
                    detail: format!(
                        "the {} could not be checked, so nothing was frozen: {}",
                        kind.file_name(),
                        out.stderr_line()
                    ),
                }),
                _ => FreezeStart::Failed {
                    detail: format!("freeze session ended early: {}", out.describe()),
                    session: None,
                },
            };
        };
        match line.trim_start_matches("quiesce-freeze ").trim() {
            "0" => {}
            "3" => {
                let holder = out
                    .stdout_text()
                    .lines()
                    .find_map(|l| l.strip_prefix("quiesce-holder ").map(str::to_string))
                    .unwrap_or_else(|| "another hook".into());
                return FreezeStart::Held {
                    detail: format!(
                        "not frozen by this run: a freeze by {holder} holds {name} (another quiesce run, or VMware Tools); this run sent it no thaw"
                    ),
                    holder,
                };
            }
            code => {
                // The freeze's messages come in band (see the session script).
                let text = out.stdout_text();
                let lines: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("quiesce-err "))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let stderr = if lines.is_empty() {
                    out.stderr_line()
                } else {
                    lines.join("; ")
                };
                let detail = if stderr.is_empty() {
                    format!("freeze failed: exit status {code}")
                } else {
                    format!("freeze failed: exit status {code}: {stderr}")
                };
                return FreezeStart::Failed {
                    detail,
                    session: Some(session),
                };
            }
        }
        FreezeStart::Frozen {
            restore: RestorePoint::parse(&out.stdout_text()),
            session,
        }
    }
}
