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
        // The last refusal from a fresh connection: the fix printed depends on it.
        let mut last_error: Option<HostError> = None;
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
                        let error = self.hook_changed(name, HookKind::thawer(self.host(name)), why);
                        let detail = first_line(&error);
                        self.emit(BackupEvent::ThawFailed {
                            host: name.to_string(),
                            at,
                            attempt,
                            detail: detail.clone(),
                            retrying: false,
                        });
                        self.left_frozen(name, attempt, &detail, Some(&error));
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
                        self.left_frozen(name, attempt, &detail, None);
                        return false;
                    }
                    ThawVerdict::Retry { detail } => detail,
                },
                Ok(Some(Err(e))) => {
                    self.forget_connection(name).await;
                    let detail = first_line(&e);
                    last_error = Some(e);
                    detail
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
                self.left_frozen(name, attempt, &detail, last_error.as_ref());
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
            HookKind::thawer(self.host(name)),
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
    /// its cause (`error`, the last refusal seen): a changed hook must be
    /// redeployed before anything can thaw, and a host key refused must be
    /// verified and recorded, or `recover` is refused the same way.
    fn left_frozen(&self, name: &str, attempts: u32, detail: &str, error: Option<&HostError>) {
        let host = self.host(name);
        let quote = |p: &std::path::Path| crate::remote::shell::quote(&p.display().to_string());
        let quiesce = format!(
            "quiesce -i {} --runs-dir {} --known-hosts {}",
            quote(&self.inventory.path),
            quote(&self.options.runs_dir),
            quote(&self.ssh.policy.known_hosts)
        );
        let run = &self.run_id;
        let sudo = if host.r#become && host.user != "root" {
            "sudo "
        } else {
            ""
        };
        let on_the_vm = format!(
            "env QUIESCE_OWNER={run} {} freezeFail",
            crate::hooks::HookKind::thawer(host).path(host)
        );
        // How known_hosts names the host (ssh-keygen -R's argument).
        let known_as = if host.port == 22 {
            host.address.clone()
        } else {
            format!("[{}]:{}", host.address, host.port)
        };
        let verify = "check the VM's own key on its console first (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)";
        let manual = match error {
            Some(HostError::HookChanged { .. }) => format!(
                "{quiesce} deploy --force --limit {name} && {quiesce} recover {run}   # the hook was changed: redeploy it first, never run the changed one"
            ),
            Some(HostError::ChangedHostKey {
                fingerprint,
                known_hosts,
                ..
            }) => format!(
                "ssh-keygen -R {} -f {} && {quiesce} --accept-new={name} recover {run}   # only once the VM is known to offer {fingerprint}: {verify}; a changed key can be an attack, then thaw on its console: {sudo}{on_the_vm}",
                crate::remote::shell::quote(&known_as),
                quote(known_hosts)
            ),
            Some(HostError::UnknownHostKey { fingerprint, .. }) => format!(
                "{quiesce} --accept-new={name} recover {run}   # only once the VM is known to offer {fingerprint}: {verify}; else thaw on its console: {sudo}{on_the_vm}"
            ),
            Some(
                HostError::RevokedHostKey { fingerprint, .. }
                | HostError::UnevaluableHostKey { fingerprint, .. },
            ) => format!(
                "{sudo}{on_the_vm}   # on the VM's console: its key {fingerprint} is refused ({}), so recover cannot reach it until a key it can check is recorded",
                error.map(HostError::kind).unwrap_or_default()
            ),
            _ => format!(
                "{quiesce} recover {run}   # or on the VM: ssh -p {} {}@{} {sudo}{on_the_vm}",
                host.port, host.user, host.address
            ),
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
