//! `quiesce backup`: preflight → plan → execute → report. Lanes run in
//! parallel, jobs inside a lane one at a time; every host whose freeze was
//! attempted goes through a thaw that no failure, timeout or signal skips.

use crate::backup::backup_event::{BackupEvent, NotFrozenBecause, ThawAction};
use crate::backup::host_run::{HostRun, Outcome};
use crate::backup::journal::{Entry, HostAccess, Journal, now_ms};
use crate::backup::plan::{Job, Lane, LaneKind, Plan};
use crate::backup::preflight::{Preflight, Role, expected_shas, read_facts};
use crate::backup::snapshot;
use crate::backup::stun_history::{Measured, StunHistory};
use crate::backup::thaw_verdict::{self, ThawVerdict};
use crate::hooks::{self, HookKind};
use crate::inventory::playbook::{Playbook, render_command};
use crate::inventory::{Host, Inventory};
use crate::output::error::HostError;
use crate::output::event::{Event, EventSender};
use crate::remote::ssh::SshOptions;
use crate::remote::transport::{Connector, Output, Session, Transport};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const THAW_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A command bounded by the caller's own waiting rather than by itself.
const UNBOUNDED: Duration = Duration::from_secs(24 * 3600);
/// Thaws of one host in flight at once: the first (maybe on a hung session)
/// and fresh ones over new connections.
const MAX_THAWS_IN_FLIGHT: usize = 3;

/// How a freeze attempt on one host ended.
enum FreezeStart {
    /// Frozen; the session holds the armed thaw (and the VM's dead-man's switch).
    Frozen(Box<dyn Session>),
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

/// A host whose freeze was attempted: it gets a thaw, whatever happens.
struct Attempt {
    host: String,
    /// When its instances would pause (ms since the epoch).
    pauses_at: u64,
    /// The freeze session holding its armed thaw, if it got that far.
    session: Option<Box<dyn Session>>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub force: bool,
    pub forks: usize,
    pub runs_dir: PathBuf,
    /// The measured stuns the QoS guard reads (loaded before preflight).
    pub history: StunHistory,
}

struct Run<'a> {
    playbook: &'a Playbook,
    inventory: &'a Inventory,
    ssh: &'a SshOptions,
    connector: &'a dyn Connector,
    options: &'a Options,
    run_id: String,
    run_dir: PathBuf,
    journal: Journal,
    connections: tokio::sync::Mutex<HashMap<String, Arc<dyn Transport>>>,
    results: Mutex<HashMap<String, HostRun>>,
    stop: watch::Receiver<bool>,
    events: EventSender,
    history: StunHistory,
    /// Set when a journal append failed: no new freeze starts, thaws go on.
    journal_broken: AtomicBool,
}

/// Executes `plan`; returns every host's result. `stop` turns true on
/// Ctrl-C or SIGTERM: no new freeze starts, snapshots are cancelled, thaws run.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    inventory: &Inventory,
    playbook: &Playbook,
    plan: &Plan,
    preflight: Preflight,
    ssh: &SshOptions,
    connector: &dyn Connector,
    options: &Options,
    run_id: String,
    journal: Journal,
    stop: watch::Receiver<bool>,
    events: EventSender,
) -> Vec<HostRun> {
    let run_dir = options.runs_dir.join(&run_id);
    let history = options.history.clone();
    let mut results = HashMap::new();
    for lane in &plan.lanes {
        for job in &lane.jobs {
            for (name, role) in job.hosts.iter().zip(&job.roles) {
                if let Some(host) = inventory.host(name) {
                    let mut result = HostRun::new(host, lane, role.clone());
                    if let Some(Ok(facts)) = preflight.facts.get(name) {
                        result.instances = facts
                            .instances
                            .iter()
                            .filter(|i| i.running)
                            .map(|i| i.name.clone())
                            .collect();
                    }
                    result.detail = "not run".into();
                    results.insert(name.clone(), result);
                }
            }
        }
    }
    let accesses: Vec<HostAccess> = plan
        .lanes
        .iter()
        .flat_map(|l| &l.jobs)
        .flat_map(|j| &j.hosts)
        .filter_map(|h| inventory.host(h))
        .map(|h| HostAccess::new(h, expected_shas(h).1))
        .collect();
    let run = Run {
        playbook,
        inventory,
        ssh,
        connector,
        options,
        run_id: run_id.clone(),
        run_dir,
        journal,
        connections: tokio::sync::Mutex::new(preflight.connections),
        results: Mutex::new(results),
        stop,
        events,
        history,
        journal_broken: AtomicBool::new(false),
    };
    run.record(&Entry::RunStarted {
        run_id,
        at: now_ms(),
        playbook: playbook.path.display().to_string(),
        inventory: inventory.path.display().to_string(),
        freeze_timeout_secs: playbook.freeze_timeout().as_secs(),
        hosts: accesses,
    });
    futures::stream::iter(plan.lanes.iter().map(|lane| run.lane(lane)))
        .buffer_unordered(options.forks.max(1))
        .collect::<Vec<()>>()
        .await;
    let interrupted = *run.stop.borrow();
    let results: Vec<HostRun> = run
        .results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    let outcome = if results.iter().any(|r| r.outcome == Outcome::LeftFrozen) {
        "left-frozen"
    } else if interrupted {
        "interrupted"
    } else {
        "finished"
    };
    run.record(&Entry::RunFinished {
        at: now_ms(),
        outcome: outcome.into(),
    });
    let measured: Vec<(String, Measured)> = results
        .iter()
        .filter_map(|r| {
            let at = r.snapshot_finished.unwrap_or_else(now_ms);
            Some((r.vm.clone(), Measured { at, us: r.stun_us? }))
        })
        .collect();
    if let Err(why) = StunHistory::record(&options.runs_dir, &measured) {
        run.note(
            "stun history",
            format!("{why}; the stuns of this run are not recorded"),
        );
    }
    for connection in run.connections.into_inner().into_values() {
        connection.close().await;
    }
    results
}

impl Run<'_> {
    /// Appends to the journal; false when that failed. The first failure is
    /// reported and stops every new freeze (thaws go on).
    fn record(&self, entry: &Entry) -> bool {
        match self.journal.append(entry) {
            Ok(()) => true,
            Err(e) => {
                if !self.journal_broken.swap(true, Ordering::SeqCst) {
                    self.note(
                        "journal",
                        format!(
                            "cannot write the journal {}: {e}; no new freeze starts (thaws go on)",
                            self.journal.path().display()
                        ),
                    );
                }
                false
            }
        }
    }

    /// One step of the run: journaled (write-ahead), folded into the host's
    /// result, shown. False when its journal entry could not be written; a
    /// freeze-started event that is not on disk changes nothing else.
    fn emit(&self, event: BackupEvent) -> bool {
        let journaled = match event.journal_entry() {
            Some(entry) => self.record(&entry),
            None => true,
        };
        if !journaled && matches!(event, BackupEvent::FreezeStarted { .. }) {
            return false;
        }
        let host = event.host().to_string();
        self.update(&host, |r| r.apply(&event));
        for shown in event.progress(&self.host(&host).target()) {
            self.events.send(shown);
        }
        journaled
    }

    fn note(&self, host: &str, text: String) {
        self.events.send(Event::Note {
            host: host.to_string(),
            text,
        });
    }

    fn update(&self, host: &str, change: impl FnOnce(&mut HostRun)) {
        if let Some(result) = self
            .results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(host)
        {
            change(result);
        }
    }

    fn host(&self, name: &str) -> &Host {
        self.inventory
            .host(name)
            .expect("planned hosts come from the inventory")
    }

    /// The host's connection, opened when there is none. The map is not
    /// locked while connecting: one unreachable host never stalls the others.
    async fn connection(&self, name: &str) -> Result<Arc<dyn Transport>, HostError> {
        if let Some(c) = self.connections.lock().await.get(name) {
            return Ok(c.clone());
        }
        let connection = self
            .connector
            .connect(self.host(name), &self.events)
            .await?;
        Ok(self
            .connections
            .lock()
            .await
            .entry(name.to_string())
            .or_insert(connection)
            .clone())
    }

    async fn forget_connection(&self, name: &str) {
        self.connections.lock().await.remove(name);
    }

    /// Runs a checked copy of `kind` on the host as this run's owner.
    async fn run_hook(
        &self,
        name: &str,
        kind: HookKind,
        reason: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Output, HostError> {
        let host = self.host(name);
        let connection = self.connection(name).await?;
        let path = kind.path(host);
        let sha = hooks::sha256_hex(hooks::render(kind, host).as_bytes());
        let mut full = vec![self.run_id.as_str(), reason, path.as_str(), sha.as_str()];
        full.extend_from_slice(args);
        connection
            .run("thaw", &hooks::checked_run_script(), &full, None, timeout)
            .await
    }

    fn hook_changed(&self, name: &str, kind: HookKind, why: String) -> HostError {
        let host = self.host(name);
        HostError::HookChanged {
            target: host.target(),
            path: kind.path(host),
            why,
        }
    }

    /// Starts the freeze session on `name`: the checked freeze, then the armed
    /// thaw waiting for its word, with the VM's own deadline.
    async fn start_freeze(&self, name: &str) -> FreezeStart {
        let host = self.host(name);
        let freeze_timeout = self.playbook.freeze_timeout();
        let connection = match self.connection(name).await {
            Ok(c) => c,
            Err(e) => return FreezeStart::NotRun(e),
        };
        let (pre_sha, post_sha) = expected_shas(host);
        let (pre, post) = (
            HookKind::PreFreeze.path(host),
            HookKind::PostThaw.path(host),
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
                            crate::inventory::duration::format(wait)
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
                        crate::inventory::duration::format(wait)
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
                HookKind::PostThaw
            } else {
                HookKind::PreFreeze
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
        FreezeStart::Frozen(session)
    }

    async fn lane(&self, lane: &Lane) {
        for (index, job) in lane.jobs.iter().enumerate() {
            if !self.job(lane, job).await {
                for later in &lane.jobs[index + 1..] {
                    for host in &later.hosts {
                        self.emit(BackupEvent::HostFinished {
                            host: host.clone(),
                            outcome: Outcome::Skipped,
                            detail: "not run: an earlier job of this lane failed; nothing of it was frozen".into(),
                        });
                    }
                }
                return;
            }
        }
    }

    /// Freeze the job's hosts in order, snapshot them, thaw in reverse.
    /// Returns whether every snapshot of the job is valid.
    async fn job(&self, lane: &Lane, job: &Job) -> bool {
        let freeze_timeout = self.playbook.freeze_timeout();
        let mut attempted: Vec<Attempt> = Vec::new();
        let mut failure: Option<String> = None;
        // A host the mirror check refused (with why), or another owner's freeze holds.
        let mut refused: Option<(String, String)> = None;
        let mut held: Option<String> = None;
        for (name, planned) in job.hosts.iter().zip(&job.roles) {
            if *self.stop.borrow() {
                failure = Some("interrupted before this host was frozen".into());
                break;
            }
            if let Err(why) = self.safe_to_freeze(lane, name, planned).await {
                refused = Some((name.clone(), why.clone()));
                failure = Some(why);
                break;
            }
            // The re-read above takes time: a stop asked meanwhile wins.
            if *self.stop.borrow() {
                failure = Some("interrupted before this host was frozen".into());
                break;
            }
            let started = now_ms();
            let pauses_at = started + freeze_timeout.as_millis() as u64;
            // Write-ahead: no freeze starts unless its entry is on disk.
            if self.journal_broken.load(Ordering::SeqCst)
                || !self.emit(BackupEvent::FreezeStarted {
                    host: name.clone(),
                    at: started,
                    pauses_at,
                })
            {
                failure = Some(format!(
                    "the journal {} cannot be written, so no new freeze starts",
                    self.journal.path().display()
                ));
                break;
            }
            match self.start_freeze(name).await {
                FreezeStart::Frozen(session) => {
                    self.emit(BackupEvent::Frozen {
                        host: name.clone(),
                        at: now_ms(),
                    });
                    attempted.push(Attempt {
                        host: name.clone(),
                        pauses_at,
                        session: Some(session),
                    });
                }
                FreezeStart::Held { holder, detail } => {
                    self.emit(BackupEvent::NotFrozen {
                        host: name.clone(),
                        at: now_ms(),
                        detail,
                        because: NotFrozenBecause::Held,
                    });
                    held = Some(name.clone());
                    failure = Some(format!("{name} is held by a freeze of {holder}"));
                    break;
                }
                FreezeStart::NotRun(error) => {
                    let detail = first_line(&error);
                    self.emit(BackupEvent::FreezeFailed {
                        host: name.clone(),
                        at: now_ms(),
                        detail: detail.clone(),
                    });
                    self.emit(BackupEvent::NotFrozen {
                        host: name.clone(),
                        at: now_ms(),
                        detail: detail.clone(),
                        because: NotFrozenBecause::NotRun,
                    });
                    failure = Some(format!("{name}: {detail}"));
                    break;
                }
                FreezeStart::Failed { detail, session } => {
                    self.emit(BackupEvent::FreezeFailed {
                        host: name.clone(),
                        at: now_ms(),
                        detail: detail.clone(),
                    });
                    attempted.push(Attempt {
                        host: name.clone(),
                        pauses_at,
                        session,
                    });
                    failure = Some(format!("{name}: {detail}"));
                    break;
                }
            }
        }

        let mut snapshots_ok = false;
        if failure.is_none() {
            let pauses: Vec<(String, u64)> = attempted
                .iter()
                .map(|a| (a.host.clone(), a.pauses_at))
                .collect();
            snapshots_ok = self.snapshots(lane, job, &pauses).await;
            if !snapshots_ok {
                failure = Some("a snapshot of this job failed".into());
            }
        }

        // Thaw: newest freeze first; `thaw` records the backup, `freezeFail` does not.
        let action = if snapshots_ok {
            ThawAction::Thaw
        } else {
            ThawAction::FreezeFail
        };
        let mut all_valid = snapshots_ok;
        for attempt in attempted.into_iter().rev() {
            let valid = self
                .thaw(&attempt.host, action, attempt.pauses_at, attempt.session)
                .await;
            all_valid &= valid;
        }
        for name in &job.hosts {
            let (outcome, detail) = self.settled(name, failure.as_deref(), &refused, &held);
            self.emit(BackupEvent::HostFinished {
                host: name.clone(),
                outcome,
                detail,
            });
        }
        all_valid && failure.is_none()
    }

    /// A job's host's outcome once everything of the job is thawed: when the
    /// job failed, a host thawed without its backup failed too, and one never
    /// frozen says why.
    fn settled(
        &self,
        name: &str,
        failure: Option<&str>,
        refused: &Option<(String, String)>,
        held: &Option<String>,
    ) -> (Outcome, String) {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = results.get(name) else {
            return (Outcome::Skipped, "not run".into());
        };
        let Some(why) = failure else {
            return (r.outcome, r.detail.clone());
        };
        if let Some((host, refusal)) = refused
            && host == name
        {
            return (Outcome::Failed, refusal.clone());
        }
        match r.outcome {
            Outcome::LeftFrozen | Outcome::Failed => (r.outcome, r.detail.clone()),
            _ if held.as_deref() == Some(name) => (r.outcome, r.detail.clone()),
            _ if r.freeze_started.is_some() => {
                (Outcome::Failed, format!("thawed without a backup: {why}"))
            }
            outcome => (outcome, format!("not frozen: {why}")),
        }
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

    /// Mirror safety right before a freeze: every member of the mirror in
    /// this run must still have its planned role (a primary "In Trouble", a
    /// failover in progress stop it), and a primary's last stun must have
    /// stayed under half the QoS timeout.
    async fn safe_to_freeze(&self, lane: &Lane, name: &str, planned: &Role) -> Result<(), String> {
        let LaneKind::Mirror {
            mirror,
            qos_timeout,
        } = &lane.kind
        else {
            return Ok(());
        };
        let members: Vec<(&String, &Role)> = lane
            .jobs
            .iter()
            .flat_map(|j| j.hosts.iter().zip(&j.roles))
            .filter(|(h, _)| self.host(h).mirror.as_deref() == Some(mirror.as_str()))
            .collect();
        let reread = futures::future::join_all(members.iter().map(|(member, was)| async move {
            let host = self.host(member);
            let facts = async {
                let connection = self.connection(member).await?;
                read_facts(&*connection, host).await
            }
            .await
            .map_err(|e| format!("mirror {mirror}: cannot re-read the role of {member} before freezing {name} ({}); stopped this mirror before freezing it (nothing of it is left frozen)", first_line(&e)))?;
            let now = facts.role();
            if now != **was {
                return Err(format!(
                    "mirror {mirror} changed since planning: {member} is now {}, was {}; stopped this mirror before freezing it (nothing of it is left frozen); run again to plan with the new roles",
                    now.describe(),
                    was.describe()
                ));
            }
            Ok(())
        }))
        .await;
        // The member about to be frozen is reported first.
        let mut errors: Vec<(bool, String)> = members
            .iter()
            .zip(reread)
            .filter_map(|((m, _), r)| r.err().map(|e| (*m != name, e)))
            .collect();
        errors.sort();
        if let Some((_, why)) = errors.into_iter().next() {
            return Err(why);
        }
        let host = self.host(name);
        if *planned == Role::Primary
            && let Some(last) = self.history.last(&host.vm)
        {
            let half = qos_timeout.as_micros() as u64 / 2;
            if last > half && !self.options.force {
                return Err(format!(
                    "refused to snapshot primary {name}: its last stun was {:.3}s, over half the mirror's QoS timeout ({}); a longer stun would fail the mirror over (use --force to take it anyway)",
                    last as f64 / 1e6,
                    crate::inventory::duration::format(*qos_timeout)
                ));
            }
        }
        Ok(())
    }

    async fn snapshots(&self, lane: &Lane, job: &Job, attempted: &[(String, u64)]) -> bool {
        // Give up on snapshots early enough to thaw before any freeze pauses
        // its instance, and before the VMs' own dead-man's switches fire
        // (half the margin before the pause): three quarters are kept.
        let keep_for_thaw = self.playbook.freeze_margin.as_millis() as u64 * 3 / 4;
        let deadline = attempted
            .iter()
            .map(|(_, p)| *p)
            .min()
            .unwrap_or(u64::MAX)
            .saturating_sub(keep_for_thaw);
        let results = futures::future::join_all(job.hosts.iter().map(|name| async move {
            let host = self.host(name);
            let step = &self.playbook.snapshot;
            let run_dir = self.run_dir.display().to_string();
            let (command, env) = render_command(&step.command, &[("host", &host.name), ("vm", &host.vm), ("address", &host.address), ("run_id", &self.run_id), ("run_dir", &run_dir)]);
            let transport = if step.on == crate::inventory::playbook::RunOn::Vm { self.connection(name).await.ok() } else { Some(self.connector.local()) };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let left = Duration::from_millis(deadline.saturating_sub(now_ms()));
                let timeout = step.timeout.min(left);
                self.emit(BackupEvent::SnapshotStarted { host: name.clone(), at: now_ms() });
                let result = if timeout.is_zero() {
                    snapshot::SnapshotResult { ok: false, detail: "no time left before the freeze timeout".into(), stun_us: None }
                } else {
                    snapshot::run(step, &command, &env, transport.as_deref(), timeout, self.stop.clone()).await
                };
                let last = result.ok || attempt > step.retries || *self.stop.borrow() || timeout.is_zero();
                self.emit(BackupEvent::SnapshotFinished { host: name.clone(), at: now_ms(), ok: result.ok, detail: result.detail.clone(), stun_us: result.stun_us, attempt, retrying: !last });
                if let (Some(stun), LaneKind::Mirror { mirror, qos_timeout }) = (result.stun_us, &lane.kind) {
                    let limit = qos_timeout.as_micros() as f64 * self.playbook.qos_warn_fraction;
                    if stun as u128 >= qos_timeout.as_micros() {
                        let finding = format!("STUN OVER QOS: stunned {:.3}s, {:.0}% of mirror {mirror}'s QoS timeout {}: the mirror may have failed over", stun as f64 / 1e6, stun as f64 * 100.0 / qos_timeout.as_micros() as f64, crate::inventory::duration::format(*qos_timeout));
                        self.emit(BackupEvent::Finding { host: name.clone(), text: finding });
                    } else if stun as f64 >= limit {
                        self.emit(BackupEvent::Warning { host: name.clone(), text: format!("warning: stunned {:.3}s, {:.0}% of mirror {mirror}'s QoS timeout {}", stun as f64 / 1e6, stun as f64 * 100.0 / qos_timeout.as_micros() as f64, crate::inventory::duration::format(*qos_timeout)) });
                    }
                }
                if last {
                    return result.ok;
                }
            }
        }))
        .await;
        results.into_iter().all(|ok| ok)
    }

    /// Thaws one host: the word goes to its armed session; when no answer
    /// comes in time (a hung or half-open session), the thaw goes out again
    /// over a new connection (this run's owner token makes that safe) while
    /// the first stays in flight. Retries until the freeze would pause the
    /// instance. Returns whether the snapshot is valid.
    async fn thaw(
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
}

/// When the VM's dead-man's switch fires, counted from the start of the
/// freeze: before the instance would pause, with half the margin to spare.
pub fn vm_deadline(freeze_timeout: Duration, margin: Duration) -> Duration {
    freeze_timeout
        .saturating_sub(margin / 2)
        .max(Duration::from_secs(1))
}

/// An error's first line: what went wrong, without the hint.
fn first_line(e: &HostError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
