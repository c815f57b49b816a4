//! Thawing: the word goes to the armed session; when no answer comes, the
//! thaw goes out again over new connections until the freeze would pause the
//! instance, and a host that cannot be thawed is reported with the fix that
//! works for its cause.

use super::*;

const THAW_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A command bounded by the caller's own waiting rather than by itself.
const UNBOUNDED: Duration = Duration::from_secs(24 * 3600);
/// Thaws of one host in flight at once: the first (maybe on a hung session)
/// and fresh ones over new connections.
const MAX_THAWS_IN_FLIGHT: usize = 3;

impl Run<'_> {
    /// Thaws one host: the word goes to its armed session; when no answer
    /// comes in time (a hung or half-open session), the thaw goes out again
    /// over a new connection (this run's owner token makes that safe) while
    /// the first stays in flight. Retries until the freeze would pause the
    /// instance. Returns whether the snapshot is valid.
    pub(super) async fn thaw(
        &self,
        name: &str,
        action: ThawAction,
        pauses_at: u64,
        session: Option<Box<dyn Session>>,
    ) -> bool {
        self.emit(BackupEvent::ThawStarted {
            host: name.to_string(),
            at: now_ms(),
            action,
        });
        let mut in_flight: FuturesUnordered<BoxFuture<'_, Result<Output, HostError>>> =
            FuturesUnordered::new();
        let mut attempt = 0u32;
        let mut resend = true;
        if let Some(session) = session {
            attempt += 1;
            resend = false;
            let word = format!("{}\n", action.word());
            in_flight.push(session.finish(word.into_bytes()));
        }
        loop {
            if resend || in_flight.is_empty() {
                attempt += 1;
                resend = false;
                in_flight.push(self.fresh_thaw(name, action, attempt).boxed());
            }
            // A quarter of the time left: a hung session leaves time for
            // three more tries before the freeze would pause the instance.
            let left = Duration::from_millis(pauses_at.saturating_sub(now_ms()));
            let wait = (left / 4).clamp(
                Duration::from_secs(3),
                self.ssh.command_timeout.max(Duration::from_secs(3)),
            );
            let answer = tokio::time::timeout(wait, in_flight.next()).await;
            let at = now_ms();
            let mut answered = true;
            let detail = match answer {
                Ok(Some(Ok(out))) => match thaw_verdict::judge(&out, action.word()) {
                    ThawVerdict::Thawed { valid, detail } => {
                        return self.thawed(name, action, pauses_at, at, valid, detail);
                    }
                    ThawVerdict::HookMismatch { why } => {
                        // Retrying cannot help: a person has to redeploy the hook.
                        let detail = first_line(&self.hook_changed(name, HookKind::PostThaw, why));
                        self.emit(BackupEvent::ThawFailed {
                            host: name.to_string(),
                            at,
                            attempt,
                            detail: detail.clone(),
                            retrying: false,
                        });
                        self.left_frozen(name, attempt, &detail, true);
                        return false;
                    }
                    ThawVerdict::LeftFrozen { detail } => {
                        self.emit(BackupEvent::ThawFailed {
                            host: name.to_string(),
                            at,
                            attempt,
                            detail: detail.clone(),
                            retrying: false,
                        });
                        self.left_frozen(name, attempt, &detail, false);
                        return false;
                    }
                    ThawVerdict::Retry { detail } => detail,
                },
                Ok(Some(Err(e))) => {
                    self.forget_connection(name).await;
                    first_line(&e)
                }
                Ok(None) => continue,
                Err(_) => {
                    // No answer (a hung or half-open session): it stays in
                    // flight, and the thaw goes out again over a new connection.
                    answered = false;
                    self.forget_connection(name).await;
                    first_line(&HostError::CommandTimeout {
                        target: self.host(name).target(),
                        step: "thaw".into(),
                        after: wait,
                    })
                }
            };
            let give_up =
                now_ms() + THAW_RETRY_INTERVAL.as_millis() as u64 >= pauses_at && attempt >= 3;
            self.emit(BackupEvent::ThawFailed {
                host: name.to_string(),
                at,
                attempt,
                detail: detail.clone(),
                retrying: !give_up,
            });
            if give_up {
                self.left_frozen(name, attempt, &detail, false);
                return false;
            }
            resend = in_flight.len() < MAX_THAWS_IN_FLIGHT;
            if answered {
                tokio::time::sleep(THAW_RETRY_INTERVAL).await;
            }
        }
    }

    /// A thaw over a (new) connection, not through the armed session.
    async fn fresh_thaw(
        &self,
        name: &str,
        action: ThawAction,
        attempt: u32,
    ) -> Result<Output, HostError> {
        let reason = format!("retry {attempt} of the controller's thaw");
        self.run_hook(
            name,
            HookKind::PostThaw,
            &reason,
            &[action.word()],
            UNBOUNDED,
        )
        .await
    }

    /// Records a finished thaw. A freeze that outlived its timeout paused
    /// the instance: never a valid snapshot, whatever the VM said.
    fn thawed(
        &self,
        name: &str,
        action: ThawAction,
        pauses_at: u64,
        at: u64,
        valid: bool,
        detail: String,
    ) -> bool {
        let (valid, detail) = if valid && at > pauses_at {
            (
                false,
                format!(
                    "the thaw came {:.3}s after the freeze timeout, so the instances paused (an outage): this snapshot is INVALID",
                    (at - pauses_at) as f64 / 1000.0
                ),
            )
        } else {
            (valid, detail)
        };
        self.emit(BackupEvent::Thawed {
            host: name.to_string(),
            at,
            action,
            valid,
            detail,
        });
        valid
    }

    /// Reports a host that could not be thawed, with the fix that works for
    /// its cause: a changed hook must be redeployed before anything can thaw.
    fn left_frozen(&self, name: &str, attempts: u32, detail: &str, hook_changed: bool) {
        let host = self.host(name);
        let quiesce = format!(
            "quiesce -i {} --runs-dir {} --known-hosts {}",
            crate::remote::shell::quote(&self.inventory.path.display().to_string()),
            crate::remote::shell::quote(&self.options.runs_dir.display().to_string()),
            crate::remote::shell::quote(&self.ssh.policy.known_hosts.display().to_string())
        );
        let manual = if hook_changed {
            format!(
                "{quiesce} deploy --force --limit {name} && {quiesce} recover {}   # the hook was changed: redeploy it first, never run the changed one",
                self.run_id
            )
        } else {
            let sudo = if host.r#become && host.user != "root" {
                "sudo "
            } else {
                ""
            };
            format!(
                "{quiesce} recover {}   # or on the VM: ssh -p {} {}@{} {sudo}env QUIESCE_OWNER={} {}/post-thaw-script freezeFail",
                self.run_id,
                host.port,
                host.user,
                host.address,
                self.run_id,
                host.hook_dir.trim_end_matches('/')
            )
        };
        self.emit(BackupEvent::LeftFrozen {
            host: name.to_string(),
            at: now_ms(),
            attempts,
            detail: detail.to_string(),
            fix: manual,
        });
    }
}
