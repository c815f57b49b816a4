//! Between freeze and thaw: the mirror check right before each freeze (every
//! member still has its planned role, the primary's last stun was short) and
//! the job's snapshots, given up early enough to thaw before any pause; and,
//! after every thaw, the export of each valid backup.

use super::*;
use crate::inventory::playbook::render_command;

impl Run<'_> {
    /// Mirror safety right before a freeze: every member of the mirror in
    /// this run must still have its planned role (a primary "In Trouble", a
    /// failover in progress stop it), and a primary's last stun must have
    /// stayed under half the QoS timeout.
    pub(super) async fn safe_to_freeze(
        &self,
        lane: &Lane,
        name: &str,
        planned: &Role,
    ) -> Result<(), String> {
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
            .flat_map(|j| j.members.iter().map(|m| (&m.host, &m.role)))
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
            // A hook that changed since preflight: the roles it would report
            // are not to be trusted, and it would not be run anyway.
            if let Some(problem) = facts.hook_problems.first() {
                return Err(format!(
                    "mirror {mirror}: {}; stopped this mirror before freezing it (nothing of it is left frozen)",
                    first_line(&self.hook_changed(member, problem.hook, problem.why.clone()))
                ));
            }
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
                    crate::output::duration::format(*qos_timeout)
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn snapshots(
        &self,
        lane: &Lane,
        job: &Job,
        attempted: &[(String, u64)],
    ) -> bool {
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
        let results = futures::future::join_all(job.members.iter().map(|m| &m.host).map(|name| async move {
            let host = self.host(name);
            let step = &self.playbook.snapshot;
            let run_dir = self.run_dir.display().to_string();
            let needs_vm = step.on == crate::inventory::playbook::RunOn::Vm || step.provider != crate::inventory::playbook::ProviderKind::Command;
            let vm = if needs_vm { self.connection(name).await.ok() } else { None };
            let local = self.connector.local();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let left = Duration::from_millis(deadline.saturating_sub(now_ms()));
                let timeout = step.timeout.min(left);
                self.emit(BackupEvent::SnapshotStarted { host: name.clone(), at: now_ms() });
                let result = if timeout.is_zero() {
                    snapshot::SnapshotResult::failed("no time left before the freeze timeout".into())
                } else {
                    let restore = self.results.lock().unwrap().get(name).map(|r| r.restore.clone()).unwrap_or_default();
                    self.provider.create(Create { step, host, run_id: &self.run_id, run_dir: &run_dir, prepared: self.prepared.get(name), vm: vm.as_deref(), local: &*local, timeout, stop: self.stop.clone(), restore: &restore }).await
                };
                let last = result.ok || attempt > step.retries || *self.stop.borrow() || timeout.is_zero();
                self.emit(BackupEvent::SnapshotFinished { host: name.clone(), at: now_ms(), ok: result.ok, detail: result.detail.clone(), stun_us: result.stun_us, ids: result.ids.clone(), attempt, retrying: !last });
                if let (Some(stun), LaneKind::Mirror { mirror, qos_timeout }) = (result.stun_us, &lane.kind) {
                    let limit = qos_timeout.as_micros() as f64 * self.playbook.qos_warn_fraction;
                    if stun as u128 >= qos_timeout.as_micros() {
                        let finding = format!("STUN OVER QOS: stunned {:.3}s, {:.0}% of mirror {mirror}'s QoS timeout {}: the mirror may have failed over", stun as f64 / 1e6, stun as f64 * 100.0 / qos_timeout.as_micros() as f64, crate::output::duration::format(*qos_timeout));
                        self.emit(BackupEvent::Finding { host: name.clone(), text: finding });
                    } else if stun as f64 >= limit {
                        self.emit(BackupEvent::Warning { host: name.clone(), text: format!("warning: stunned {:.3}s, {:.0}% of mirror {mirror}'s QoS timeout {}", stun as f64 / 1e6, stun as f64 * 100.0 / qos_timeout.as_micros() as f64, crate::output::duration::format(*qos_timeout)) });
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
}

/// How long `history` may take on one VM (a session per instance).
const HISTORY_TIMEOUT: Duration = Duration::from_secs(120);

impl Run<'_> {
    /// Each host whose backup is valid so far, with what its snapshot made.
    fn valid_backups(&self) -> Vec<(String, Vec<String>)> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.outcome == Outcome::Valid)
            .map(|r| (r.host.clone(), r.snapshot_ids.clone()))
            .collect()
    }

    /// For a provider whose snapshots settle after the thaw (EBS): waits
    /// until each valid host's snapshots are durable, then has its hook
    /// record the backup (`history`: ExternalSetHistory). A snapshot that
    /// never becomes durable is no backup: the host fails, nothing is
    /// recorded. Hosts are settled side by side; nothing is frozen now.
    pub(super) async fn settle(&self) {
        if !self.provider.settles_later() {
            return;
        }
        let valid = self.valid_backups();
        futures::stream::iter(valid.into_iter().map(|(name, ids)| async move {
            let host = self.host(&name);
            let mut stop = self.stop.clone();
            let settled = tokio::select! {
                s = self.provider.settle(host, &ids) => s,
                _ = stop.wait_for(|s| *s) => Err("interrupted while waiting for the snapshots to complete: no backup recorded".into()),
            };
            let (ok, detail) = match settled {
                Err(why) => (false, why),
                Ok(found) => match self
                    .run_hook(&name, HookKind::thawer(host), "the snapshot is durable", &["history"], HISTORY_TIMEOUT)
                    .await
                {
                    Ok(out) if out.code() == Some(0) => (true, format!("{found}; backup recorded (ExternalSetHistory)")),
                    Ok(out) => (true, format!("{found}; but ExternalSetHistory failed: {}", out.describe())),
                    Err(e) => (true, format!("{found}; but the backup could not be recorded: {}", first_line(&e))),
                },
            };
            if ok && detail.contains("; but ") {
                self.emit(BackupEvent::Finding { host: name.clone(), text: detail.clone() });
            }
            self.emit(BackupEvent::Durable { host: name.clone(), at: now_ms(), ok, detail });
        }))
        .buffer_unordered(self.options.forks.max(1))
        .collect::<Vec<()>>()
        .await;
    }

    /// `snapshot.export` for each host whose backup is valid, on the
    /// controller, with QUIESCE_SNAPSHOT_IDS: after every thaw, so no freeze
    /// waits for a copy. Its end is journaled; a failure is a finding (the
    /// backup itself stays valid).
    pub(super) async fn exports(&self) {
        let Some(export) = &self.playbook.snapshot.export else {
            return;
        };
        if *self.stop.borrow() {
            return;
        }
        let valid = self.valid_backups();
        let run_dir = self.run_dir.display().to_string();
        let step = crate::inventory::playbook::SnapshotStep {
            on: crate::inventory::playbook::RunOn::Controller,
            ..self.playbook.snapshot.clone()
        };
        futures::stream::iter(valid.into_iter().map(|(name, ids)| {
            let step = &step;
            let run_dir = &run_dir;
            async move {
                let host = self.host(&name);
                let (command, mut env) = render_command(
                    export,
                    &[
                        ("host", &host.name),
                        ("vm", &host.vm),
                        ("address", &host.address),
                        ("run_id", &self.run_id),
                        ("run_dir", run_dir),
                    ],
                );
                env.push(("QUIESCE_SNAPSHOT_IDS".into(), ids.join(" ")));
                let local = self.connector.local();
                let result = snapshot::run(
                    step,
                    &command,
                    &env,
                    Some(&*local),
                    self.playbook.snapshot.export_timeout,
                    self.stop.clone(),
                )
                .await;
                let detail = match result.detail.strip_prefix("snapshot command failed") {
                    Some(rest) => format!("export command failed{rest}"),
                    None if result.ok => "exported".to_string(),
                    None => result.detail.replace("snapshot command", "export command"),
                };
                self.emit(BackupEvent::ExportFinished {
                    host: name.clone(),
                    at: now_ms(),
                    ok: result.ok,
                    detail,
                });
            }
        }))
        .buffer_unordered(self.options.forks.max(1))
        .collect::<Vec<()>>()
        .await;
    }
}
