//! The executor: runs a plan. Lanes run in parallel, jobs inside a lane one
//! at a time; every host whose freeze was attempted goes through a thaw that
//! no failure, timeout or signal skips. Each step is one `BackupEvent`
//! (`emit`): journaled ahead, folded into the results, shown.

mod freeze;
mod snapshots;
mod thaw;

use freeze::FreezeStart;

use crate::backup::backup_event::{BackupEvent, NotFrozenBecause, ThawAction};
use crate::backup::host_run::{HostRun, Outcome};
use crate::backup::journal::{Entry, HostAccess, Journal, now_ms};
use crate::backup::plan::{Job, Lane, LaneKind, Plan};
use crate::backup::preflight::{Preflight, Role, expected_shas, read_facts};
use crate::backup::provider::{Create, Prepared, Provider};
use crate::backup::snapshot;
use crate::backup::stun_history::{Measured, StunHistory};
use crate::backup::thaw_verdict::{self, ThawVerdict};
use crate::hooks::{self, HookKind};
use crate::inventory::playbook::Playbook;
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
    /// Who takes the snapshots, and what it settled for each host before
    /// any freeze.
    provider: Arc<dyn Provider>,
    prepared: HashMap<String, Prepared>,
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
            for (name, role) in job.members.iter().map(|m| (&m.host, &m.role)) {
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
        .flat_map(|j| j.members.iter().map(|m| &m.host))
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
        provider: preflight
            .provider
            .clone()
            .unwrap_or_else(|| crate::backup::provider::of(&playbook.snapshot)),
        prepared: preflight.prepared,
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
    // After every thaw, outside any freeze: snapshots that settle later are
    // waited for and only then recorded, and each valid backup is exported.
    run.settle().await;
    run.exports().await;
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
    // A journal that missed any entry (run-finished included) is not one
    // `recover` can rely on: every host's result says so, and the run fails.
    let results = if run.journal_broken.load(Ordering::SeqCst) {
        for r in &results {
            run.emit(BackupEvent::Finding {
                host: r.host.clone(),
                text: format!(
                    "the journal {} could not be written completely: this run's record is not whole (free its disk, then check `quiesce status`)",
                    run.journal.path().display()
                ),
            });
        }
        run.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    } else {
        results
    };
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

    async fn lane(&self, lane: &Lane) {
        for (index, job) in lane.jobs.iter().enumerate() {
            if !self.job(lane, job).await {
                for later in &lane.jobs[index + 1..] {
                    for host in later.hosts() {
                        self.emit(BackupEvent::HostFinished {
                            host: host.to_string(),
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
        for (name, planned) in job.members.iter().map(|m| (&m.host, &m.role)) {
            if *self.stop.borrow() {
                failure = Some("interrupted before this host was frozen".into());
                break;
            }
            if let Err(why) = self.safe_to_freeze(lane, name, planned).await {
                // Journaled: why this host was not frozen.
                self.emit(BackupEvent::NotFrozen {
                    host: name.clone(),
                    at: now_ms(),
                    detail: why.clone(),
                    because: NotFrozenBecause::NotRun,
                });
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
                FreezeStart::Frozen { session, restore } => {
                    self.emit(BackupEvent::Frozen {
                        host: name.clone(),
                        at: now_ms(),
                        restore,
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
        let action = if snapshots_ok && self.provider.settles_later() {
            ThawAction::ThawDeferred
        } else if snapshots_ok {
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
        for name in job.members.iter().map(|m| &m.host) {
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
