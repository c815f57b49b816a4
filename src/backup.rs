//! `quiesce backup`: preflight → plan → execute → report. Lanes run in
//! parallel, jobs inside a lane one at a time; every host whose freeze was
//! attempted goes through a thaw that no failure, timeout or signal skips.

use crate::error::HostError;
use crate::event::{Event, EventSender};
use crate::hook::{self, HookKind};
use crate::host_run::{HostRun, Outcome};
use crate::inventory::{Host, Inventory};
use crate::journal::{Entry, HostAccess, Journal, now_ms};
use crate::plan::{Job, Lane, LaneKind, Plan};
use crate::playbook::{Playbook, render_command};
use crate::preflight::{Preflight, Role, expected_shas, read_facts};
use crate::runner;
use crate::snapshot;
use crate::ssh::{Armed, Connection, ExitStatus, Output, SshOptions};
use crate::stun_history::StunHistory;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const THAW_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A command bounded by the caller's own waiting rather than by itself.
const UNBOUNDED: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct Options {
    pub force: bool,
    pub forks: usize,
    pub runs_dir: PathBuf,
}

struct Run<'a> {
    playbook: &'a Playbook,
    inventory: &'a Inventory,
    ssh: &'a SshOptions,
    options: &'a Options,
    run_id: String,
    run_dir: PathBuf,
    journal: Journal,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    results: Mutex<HashMap<String, HostRun>>,
    stop: watch::Receiver<bool>,
    events: EventSender,
    history: StunHistory,
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
    options: &Options,
    run_id: String,
    journal: Journal,
    stop: watch::Receiver<bool>,
    events: EventSender,
) -> Vec<HostRun> {
    let run_dir = options.runs_dir.join(&run_id);
    let history = StunHistory::load(&options.runs_dir);
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
        options,
        run_id: run_id.clone(),
        run_dir,
        journal,
        connections: tokio::sync::Mutex::new(preflight.connections),
        results: Mutex::new(results),
        stop,
        events,
        history,
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
    let measured: Vec<(String, u64)> = results
        .iter()
        .filter_map(|r| Some((r.vm.clone(), r.stun_us?)))
        .collect();
    run.history.save_with(&options.runs_dir, &measured);
    for connection in run.connections.into_inner().into_values() {
        if let Ok(connection) = Arc::try_unwrap(connection) {
            connection.close().await;
        }
    }
    results
}

impl Run<'_> {
    fn record(&self, entry: &Entry) {
        if let Err(e) = self.journal.append(entry) {
            self.note(
                "journal",
                format!(
                    "cannot write the journal {}: {e}",
                    self.journal.path().display()
                ),
            );
        }
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

    async fn connection(&self, name: &str) -> Result<Arc<Connection>, HostError> {
        let mut connections = self.connections.lock().await;
        if let Some(c) = connections.get(name) {
            return Ok(c.clone());
        }
        let connection = Arc::new(runner::connect(self.host(name), self.ssh, &self.events).await?);
        connections.insert(name.to_string(), connection.clone());
        Ok(connection)
    }

    async fn forget_connection(&self, name: &str) {
        self.connections.lock().await.remove(name);
    }

    async fn run_hook(
        &self,
        name: &str,
        kind: HookKind,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Output, HostError> {
        let host = self.host(name);
        let connection = self.connection(name).await?;
        let path = kind.path(host);
        let sha = hook::sha256_hex(hook::render(kind, host).as_bytes());
        let mut full = vec![path.as_str(), sha.as_str()];
        full.extend_from_slice(args);
        let step = match kind {
            HookKind::PreFreeze => "freeze",
            HookKind::PostThaw => "thaw",
        };
        let out = connection
            .run_script_timeout(step, &hook::checked_run_script(), &full, None, timeout)
            .await?;
        self.check_hook_output(name, step, out)
    }

    fn check_hook_output(&self, name: &str, step: &str, out: Output) -> Result<Output, HostError> {
        if out.status == ExitStatus::Code(hook::MISMATCH) {
            let kind = if step == "freeze" {
                HookKind::PreFreeze
            } else {
                HookKind::PostThaw
            };
            let host = self.host(name);
            return Err(HostError::HookChanged {
                target: host.target(),
                path: kind.path(host),
            });
        }
        Ok(out)
    }

    async fn lane(&self, lane: &Lane) {
        for (index, job) in lane.jobs.iter().enumerate() {
            if !self.job(lane, job).await {
                for later in &lane.jobs[index + 1..] {
                    for host in &later.hosts {
                        self.update(host, |r| r.detail = "not run: an earlier job of this lane failed; nothing of it was frozen".into());
                        self.finished(host);
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
        let timeout_arg = freeze_timeout.as_secs().to_string();
        let mut attempted: Vec<(String, u64)> = Vec::new();
        let mut failure: Option<String> = None;
        for (name, planned) in job.hosts.iter().zip(&job.roles) {
            if *self.stop.borrow() {
                failure = Some("interrupted before this host was frozen".into());
                break;
            }
            if let Err(why) = self.safe_to_freeze(lane, name, planned).await {
                self.update(name, |r| {
                    r.outcome = Outcome::Failed;
                    r.detail = why.clone();
                });
                failure = Some(why);
                break;
            }
            let started = now_ms();
            let pauses_at = started + freeze_timeout.as_millis() as u64;
            self.record(&Entry::FreezeStarted {
                host: name.clone(),
                at: started,
                pauses_at,
            });
            self.update(name, |r| {
                r.freeze_started = Some(started);
                r.pauses_at = Some(pauses_at);
            });
            attempted.push((name.clone(), pauses_at));
            self.events.send(Event::StepStarted {
                host: name.clone(),
                step: "freeze",
            });
            let result = self
                .run_hook(
                    name,
                    HookKind::PreFreeze,
                    &["freeze", &timeout_arg],
                    self.ssh.command_timeout.min(freeze_timeout),
                )
                .await;
            let ok = matches!(&result, Ok(out) if out.success());
            self.events.send(Event::StepFinished {
                host: name.clone(),
                step: "freeze",
                ok,
            });
            if ok {
                let at = now_ms();
                self.record(&Entry::Frozen {
                    host: name.clone(),
                    at,
                });
                self.update(name, |r| r.frozen_at = Some(at));
            } else {
                let not_run = matches!(result, Err(HostError::HookChanged { .. }));
                let detail = match result {
                    Ok(out) => format!("freeze failed: {}", out.describe()),
                    Err(e) => e.to_string().lines().next().unwrap_or_default().to_string(),
                };
                self.record(&Entry::FreezeFailed {
                    host: name.clone(),
                    at: now_ms(),
                    detail: detail.clone(),
                });
                if not_run {
                    // The hook was not run, so nothing of this host is frozen.
                    attempted.pop();
                    self.record(&Entry::NotFrozen {
                        host: name.clone(),
                        at: now_ms(),
                        detail: detail.clone(),
                    });
                }
                self.update(name, |r| {
                    r.outcome = Outcome::Failed;
                    r.detail = detail.clone();
                });
                failure = Some(format!("{name}: {detail}"));
                break;
            }
        }

        let mut snapshots_ok = false;
        let mut armed: HashMap<String, Armed> = HashMap::new();
        if failure.is_none() {
            armed = self.arm_thaws(&attempted).await;
            snapshots_ok = self.snapshots(lane, job, &attempted).await;
            if !snapshots_ok {
                failure = Some("a snapshot of this job failed".into());
            }
        }

        // Thaw: newest freeze first; `thaw` records the backup, `freezeFail` does not.
        let action = if snapshots_ok { "thaw" } else { "freezeFail" };
        let mut all_valid = snapshots_ok;
        for (name, pauses_at) in attempted.iter().rev() {
            let valid = self
                .thaw(name, action, *pauses_at, armed.remove(name))
                .await;
            all_valid &= valid;
        }
        if let Some(why) = &failure {
            for name in &job.hosts {
                self.update(name, |r| match r.outcome {
                    Outcome::LeftFrozen | Outcome::Failed => {}
                    _ if r.freeze_started.is_some() => {
                        r.outcome = Outcome::Failed;
                        r.detail = format!("thawed without a backup: {why}");
                    }
                    _ => r.detail = format!("not frozen: {why}"),
                });
            }
        }
        for name in &job.hosts {
            self.finished(name);
        }
        all_valid && failure.is_none()
    }

    /// Reports a host that could not be thawed, with how to thaw it by hand.
    fn left_frozen(&self, name: &str, attempts: u32, detail: &str) {
        let host = self.host(name);
        let sudo = if host.r#become && host.user != "root" {
            "sudo "
        } else {
            ""
        };
        let manual = format!(
            "ssh -p {} {}@{} {sudo}{}/post-thaw-script freezeFail   # or: quiesce recover {}",
            host.port, host.user, host.address, host.hook_dir, self.run_id
        );
        self.events.send(Event::StepFinished {
            host: name.to_string(),
            step: "thaw",
            ok: false,
        });
        self.update(name, |r| {
            r.outcome = Outcome::LeftFrozen;
            r.detail = format!("COULD NOT THAW after {attempts} attempts: {detail}");
            r.manual_thaw = Some(manual);
        });
    }

    /// Tells the progress display that `name` is done, with its failure if any.
    fn finished(&self, name: &str) {
        let outcome = self
            .results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|r| (r.outcome, r.detail.clone()));
        let error = match outcome {
            Some((Outcome::Valid, _)) | None => None,
            Some((outcome, detail)) => Some(HostError::StepFailed {
                target: self.host(name).target(),
                step: "backup".into(),
                detail: format!("{}: {detail}", outcome.label()),
            }),
        };
        self.events.send(Event::HostFinished {
            host: name.to_string(),
            error,
        });
    }

    /// Starts every frozen host's thaw now, waiting for its word, so that no
    /// new SSH command has to start inside the freeze window. A host whose
    /// thaw cannot be armed is thawed the ordinary way.
    async fn arm_thaws(&self, attempted: &[(String, u64)]) -> HashMap<String, Armed> {
        let armed = futures::future::join_all(attempted.iter().map(|(name, _)| async move {
            let host = self.host(name);
            let path = HookKind::PostThaw.path(host);
            let sha = hook::sha256_hex(hook::render(HookKind::PostThaw, host).as_bytes());
            let connection = self.connection(name).await.ok()?;
            let args = [path.as_str(), sha.as_str()];
            let script = hook::armed_thaw_script();
            let arming = connection.arm_script("thaw", &script, &args);
            let armed = tokio::time::timeout(self.ssh.command_timeout, arming)
                .await
                .ok()?
                .ok()?;
            Some((name.clone(), armed))
        }))
        .await;
        armed.into_iter().flatten().collect()
    }

    /// Mirror safety right before a freeze: the role must still be the planned
    /// one, and a primary's last stun must have stayed under half the QoS timeout.
    async fn safe_to_freeze(&self, lane: &Lane, name: &str, planned: &Role) -> Result<(), String> {
        let LaneKind::Mirror {
            mirror,
            qos_timeout,
        } = &lane.kind
        else {
            return Ok(());
        };
        let host = self.host(name);
        if host.mirror.as_deref() == Some(mirror.as_str()) {
            let connection = self
                .connection(name)
                .await
                .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
            let facts = read_facts(&connection, host)
                .await
                .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
            let now = facts.role();
            if now != *planned {
                return Err(format!(
                    "mirror {mirror} changed since planning: {name} is now {}, was {}; stopped this mirror before freezing it (nothing of it is left frozen); run again to plan with the new roles",
                    now.describe(),
                    planned.describe()
                ));
            }
        }
        if *planned == Role::Primary
            && let Some(last) = self.history.last(&host.vm)
        {
            let half = qos_timeout.as_micros() as u64 / 2;
            if last > half && !self.options.force {
                return Err(format!(
                    "refused to snapshot primary {name}: its last stun was {:.3}s, over half the mirror's QoS timeout ({}); a longer stun would fail the mirror over (use --force to take it anyway)",
                    last as f64 / 1e6,
                    crate::duration::format(*qos_timeout)
                ));
            }
        }
        Ok(())
    }

    async fn snapshots(&self, lane: &Lane, job: &Job, attempted: &[(String, u64)]) -> bool {
        // Give up on snapshots early enough to thaw before any freeze pauses
        // its instance: half the margin is kept for thawing.
        let keep_for_thaw = self.playbook.freeze_margin.as_millis() as u64 / 2;
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
            let command = render_command(&step.command, &[("host", &host.name), ("vm", &host.vm), ("address", &host.address), ("run_id", &self.run_id), ("run_dir", &run_dir)]);
            let connection = if step.on == crate::playbook::RunOn::Vm { self.connection(name).await.ok() } else { None };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let left = Duration::from_millis(deadline.saturating_sub(now_ms()));
                let timeout = step.timeout.min(left);
                let started = now_ms();
                self.record(&Entry::SnapshotStarted { host: name.clone(), at: started });
                self.update(name, |r| r.snapshot_started = Some(started));
                self.events.send(Event::StepStarted { host: name.clone(), step: "snapshot" });
                let result = if timeout.is_zero() {
                    snapshot::SnapshotResult { ok: false, detail: "no time left before the freeze timeout".into(), stun_us: None }
                } else {
                    snapshot::run(step, &command, connection.as_deref(), timeout, self.stop.clone()).await
                };
                let finished = now_ms();
                self.events.send(Event::StepFinished { host: name.clone(), step: "snapshot", ok: result.ok });
                self.record(&Entry::SnapshotFinished { host: name.clone(), at: finished, ok: result.ok, detail: result.detail.clone(), stun_us: result.stun_us });
                self.update(name, |r| {
                    r.snapshot_finished = Some(finished);
                    r.stun_us = result.stun_us.or(r.stun_us);
                    if !result.ok {
                        r.outcome = Outcome::Failed;
                        r.detail = result.detail.clone();
                    }
                });
                if let (Some(stun), LaneKind::Mirror { mirror, qos_timeout }) = (result.stun_us, &lane.kind) {
                    let limit = qos_timeout.as_micros() as f64 * self.playbook.qos_warn_fraction;
                    if stun as f64 >= limit {
                        self.note(name, format!("warning: stunned {:.3}s, {:.0}% of mirror {mirror}'s QoS timeout {}", stun as f64 / 1e6, stun as f64 * 100.0 / qos_timeout.as_micros() as f64, crate::duration::format(*qos_timeout)));
                    }
                }
                if result.ok || attempt > step.retries || *self.stop.borrow() || result.detail.contains("no time left") {
                    return result.ok;
                }
                self.note(name, format!("snapshot attempt {attempt} failed ({}); retrying", result.detail));
            }
        }))
        .await;
        results.into_iter().all(|ok| ok)
    }

    /// Thaws one host, retrying with fresh connections until the freeze
    /// would pause the instance. Returns whether the snapshot is valid.
    async fn thaw(
        &self,
        name: &str,
        action: &str,
        pauses_at: u64,
        mut armed: Option<Armed>,
    ) -> bool {
        let started = now_ms();
        self.record(&Entry::ThawStarted {
            host: name.to_string(),
            at: started,
            action: action.into(),
        });
        self.update(name, |r| r.thaw_started = Some(started));
        self.events.send(Event::StepStarted {
            host: name.to_string(),
            step: "thaw",
        });
        let mut attempt = 0u32;
        let mut in_flight: Option<BoxFuture<'_, Result<Output, HostError>>> = None;
        loop {
            attempt += 1;
            let left = Duration::from_millis(pauses_at.saturating_sub(now_ms()));
            let timeout = self
                .ssh
                .command_timeout
                .min(left)
                .max(Duration::from_secs(3));
            // One thaw in flight at a time: one that has not answered yet is
            // waited for again, not replaced, so its answer is never lost.
            let mut thawing = match (in_flight.take(), armed.take()) {
                (Some(pending), _) => pending,
                (None, Some(armed)) => async move {
                    let out = armed.finish(format!("{action}\n").as_bytes()).await?;
                    self.check_hook_output(name, "thaw", out)
                }
                .boxed(),
                (None, None) => async move {
                    self.run_hook(name, HookKind::PostThaw, &[action], UNBOUNDED)
                        .await
                }
                .boxed(),
            };
            let result = match tokio::time::timeout(timeout, &mut thawing).await {
                Ok(result) => result,
                Err(_) => {
                    in_flight = Some(thawing);
                    Err(HostError::CommandTimeout {
                        target: self.host(name).target(),
                        step: "thaw".into(),
                        after: timeout,
                    })
                }
            };
            let at = now_ms();
            match result {
                Ok(out) if matches!(out.code(), Some(0) | Some(4)) => {
                    // Nothing recorded: an earlier attempt whose answer was lost
                    // (a stunned VM) thawed it, so validity cannot be known.
                    let unknown = out.stdout_text().contains("nothing recorded");
                    let valid = out.code() == Some(0) && action == "thaw" && !unknown;
                    self.record(&Entry::Thawed {
                        host: name.to_string(),
                        at,
                        valid,
                    });
                    self.events.send(Event::StepFinished {
                        host: name.to_string(),
                        step: "thaw",
                        ok: true,
                    });
                    self.update(name, |r| {
                        r.thawed_at = Some(at);
                        if action == "thaw" {
                            if valid {
                                r.outcome = Outcome::Valid;
                                r.detail = "snapshot taken while frozen".into();
                            } else if unknown {
                                r.outcome = Outcome::Invalid;
                                r.detail = "thawed by an earlier attempt whose answer was lost, so whether the write daemon stayed suspended is unknown: treat this snapshot as INVALID".into();
                            } else {
                                r.outcome = Outcome::Invalid;
                                r.detail = "the write daemon resumed before the thaw (WDSuspendLimit): this snapshot is INVALID".into();
                            }
                        }
                    });
                    return valid;
                }
                Err(changed @ HostError::HookChanged { .. }) => {
                    // Retrying cannot help: a person has to look at the hook.
                    let detail = changed
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    self.record(&Entry::ThawFailed {
                        host: name.to_string(),
                        at,
                        detail: detail.clone(),
                    });
                    self.left_frozen(name, attempt, &detail);
                    return false;
                }
                other => {
                    let detail = match other {
                        Ok(out) => format!("thaw failed: {}", out.describe()),
                        Err(e) => {
                            if in_flight.is_none() {
                                self.forget_connection(name).await;
                            }
                            e.to_string().lines().next().unwrap_or_default().to_string()
                        }
                    };
                    self.record(&Entry::ThawFailed {
                        host: name.to_string(),
                        at,
                        detail: detail.clone(),
                    });
                    if now_ms() + THAW_RETRY_INTERVAL.as_millis() as u64 >= pauses_at
                        && attempt >= 3
                    {
                        self.left_frozen(name, attempt, &detail);
                        return false;
                    }
                    self.note(
                        name,
                        format!("thaw attempt {attempt} failed: {detail}; retrying"),
                    );
                    tokio::time::sleep(THAW_RETRY_INTERVAL).await;
                }
            }
        }
    }
}
