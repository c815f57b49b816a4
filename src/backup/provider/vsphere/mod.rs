//! The vSphere provider: a snapshot per VM through vCenter (or ESXi) over
//! vim25 SOAP, one session per run. The VM is the inventory's `vm` (a
//! name, an instance UUID or a managed object id); a name two VMs share is
//! refused with both listed. `CreateSnapshot_Task` without memory and
//! without VMware's quiesce (quiesce froze the instances itself), named
//! `quiesce-RUN`; on the snapshot timeout the task is cancelled and a
//! snapshot that still appears is removed: no orphan is left behind.

pub mod client;
pub mod tls;
pub mod xml;

use super::{Create, Listed, Prepared, Provider};
use crate::backup::snapshot::SnapshotResult;
use crate::inventory::Host;
use crate::inventory::playbook::{ProviderKind, VsphereSettings};
use crate::remote::transport::Transport;
use client::{Client, TaskEnd};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::Duration;

/// How long a removal (with its consolidation) may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the end of a run looks for a snapshot whose creation was given
/// up on (vCenter may still make it after it stopped answering).
const LATE_SWEEP: Duration = Duration::from_secs(60);

/// A VMware snapshot older than this is a finding: its delta disks keep
/// growing, and the consolidation at its removal is the longest stun.
pub const MAX_SNAPSHOT_AGE_SECS: i64 = 72 * 3600;
/// A chain deeper than this is a finding (VMware's own guidance: 2–3).
pub const MAX_CHAIN_DEPTH: usize = 3;

/// The findings for one VM's snapshot tree (any snapshot, not only
/// quiesce's: a forgotten manual one stuns the VM the same way).
pub fn findings(
    vm: &str,
    snapshots: &[client::Snapshot],
    consolidation_needed: bool,
    now: jiff::Timestamp,
) -> Vec<String> {
    let mut out = Vec::new();
    for s in snapshots {
        let Ok(created) = s.created.parse::<jiff::Timestamp>() else {
            continue;
        };
        let age = now.as_second() - created.as_second();
        if age > MAX_SNAPSHOT_AGE_SECS {
            out.push(format!(
                "VMware snapshot `{}` of VM {vm} is {}h old (over 72h): its delta disks keep growing and its removal will stun the VM longest; remove it (quiesce snapshots prune, or the vSphere client) in a quiet hour",
                s.name,
                age / 3600
            ));
        }
    }
    if let Some(deepest) = snapshots.iter().map(|s| s.depth).max()
        && deepest > MAX_CHAIN_DEPTH
    {
        out.push(format!(
            "the snapshot chain of VM {vm} is {deepest} deep (over {MAX_CHAIN_DEPTH}): every read walks the chain; set snapshot.retention and run quiesce snapshots prune"
        ));
    }
    if consolidation_needed {
        out.push(format!(
            "VM {vm} needs disk consolidation (consolidationNeeded): a removal left snapshot data behind; consolidate it in a quiet hour (the consolidation stuns the VM; for a mirror primary, after a failover)"
        ));
    }
    out
}

/// A VM as vCenter lists it: (moid, name, instance UUID).
type VmRow = (String, String, String);

pub struct Vsphere {
    pub settings: VsphereSettings,
    client: tokio::sync::OnceCell<Result<Client, String>>,
    /// Every VM (moid, name, instance UUID), read once per run.
    vms: tokio::sync::OnceCell<Result<Vec<VmRow>, String>>,
    /// (VM, snapshot name) of creations given up on with nothing found:
    /// looked for again, and removed, at the end of the run.
    late: std::sync::Mutex<Vec<(String, String)>>,
}

impl Vsphere {
    pub fn new(settings: VsphereSettings) -> Vsphere {
        Vsphere {
            settings,
            client: tokio::sync::OnceCell::new(),
            vms: tokio::sync::OnceCell::new(),
            late: std::sync::Mutex::new(Vec::new()),
        }
    }

    async fn client(&self) -> Result<&Client, String> {
        let made = self
            .client
            .get_or_init(|| async {
                let (user, password) = self.settings.credentials()?;
                let client = Client::new(
                    &self.settings.url,
                    &self.settings.trust,
                    Duration::from_secs(90),
                    user,
                    password,
                )?;
                client.connect().await?;
                Ok(client)
            })
            .await;
        made.as_ref().map_err(Clone::clone)
    }

    /// The VM the inventory's `vm` names: its moid.
    async fn vm(&self, host: &Host) -> Result<String, String> {
        let client = self.client().await?;
        let vms = self
            .vms
            .get_or_init(|| async { client.vms().await })
            .await
            .as_ref()
            .map_err(Clone::clone)?;
        let wanted = host.vm.as_str();
        let by_id: Vec<&VmRow> = vms
            .iter()
            .filter(|(moid, _, uuid)| moid == wanted || uuid.eq_ignore_ascii_case(wanted))
            .collect();
        let matches = if by_id.is_empty() {
            vms.iter().filter(|(_, name, _)| name == wanted).collect()
        } else {
            by_id
        };
        match matches.as_slice() {
            [(moid, ..)] => Ok(moid.clone()),
            [] => Err(format!(
                "no VM `{wanted}` in {} (the inventory's vm: a name, an instance UUID or a managed object id such as vm-42)",
                self.settings.url
            )),
            many => Err(format!(
                "{} VMs are named `{wanted}` in {} ({}): give the inventory's vm as one of their instance UUIDs or managed object ids",
                many.len(),
                self.settings.url,
                many.iter()
                    .map(|(m, _, u)| format!("{m} {u}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Removes every snapshot of `vm` named `name` (an orphan a late task
    /// made); what was removed.
    async fn remove_named(&self, vm: &str, name: &str) -> Vec<String> {
        let Ok(client) = self.client().await else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for snap in client.snapshots(vm).await.unwrap_or_default() {
            if snap.name == name
                && let Ok(task) = client.remove_snapshot(&snap.moid).await
                && matches!(
                    client.wait_task(&task, REMOVE_TIMEOUT).await,
                    Ok(TaskEnd::Success(_))
                )
            {
                removed.push(snap.moid);
            }
        }
        removed
    }
}

impl Provider for Vsphere {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Vsphere
    }

    fn prepare<'a>(
        &'a self,
        host: &'a Host,
        _vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        async move {
            let moid = self.vm(host).await?;
            Ok(Prepared::one(moid))
        }
        .boxed()
    }

    fn create<'a>(&'a self, c: Create<'a>) -> BoxFuture<'a, SnapshotResult> {
        async move {
            let Some(vm) = Prepared::first(c.prepared) else {
                return SnapshotResult::failed("the VM was not found before the freeze".into());
            };
            let client = match self.client().await {
                Ok(client) => client,
                Err(e) => return SnapshotResult::failed(e),
            };
            let name = format!("quiesce-{}", c.run_id);
            let description = format!(
                "quiesce run {} of host {} (instances {}); journal {}/journal.jsonl; restore from {}",
                c.run_id,
                c.host.name,
                if c.host.instances.is_empty() {
                    "all".to_string()
                } else {
                    c.host.instances.join(",")
                },
                c.run_dir,
                c.restore_text()
            );
            let started = tokio::time::Instant::now();
            let task = match tokio::time::timeout(
                c.timeout,
                client.create_snapshot(&vm, &name, &description),
            )
            .await
            {
                Ok(Ok(task)) => task,
                Ok(Err(fault)) => {
                    return SnapshotResult::failed(format!(
                        "vSphere refused the snapshot: {fault}"
                    ));
                }
                Err(_) => {
                    let removed = self.remove_named(&vm, &name).await;
                    if removed.is_empty() {
                        self.late
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((vm.clone(), name.clone()));
                    }
                    return SnapshotResult::failed(format!(
                        "vSphere did not answer CreateSnapshot_Task within {}{}",
                        crate::output::duration::format(c.timeout),
                        if removed.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (the snapshot it made later, {}, was removed)",
                                removed.join(", ")
                            )
                        }
                    ));
                }
            };
            let left = c.timeout.saturating_sub(started.elapsed());
            let mut stop = c.stop.clone();
            let end = tokio::select! {
                end = client.wait_task(&task, left) => end,
                _ = stop.wait_for(|s| *s) => Ok(TaskEnd::Running),
            };
            match end {
                Ok(TaskEnd::Success(Some(snapshot))) => SnapshotResult {
                    ok: true,
                    detail: format!("vSphere snapshot {snapshot} ({name})"),
                    stun_us: None,
                    ids: vec![snapshot],
                },
                Ok(TaskEnd::Success(None)) => SnapshotResult::failed(
                    "CreateSnapshot_Task succeeded without naming its snapshot".into(),
                ),
                Ok(TaskEnd::Error(message)) => {
                    SnapshotResult::failed(format!("vSphere: {message}"))
                }
                Ok(TaskEnd::Running) | Err(_) => {
                    // Cancelled, and whatever it still made is removed.
                    let _ = client.cancel_task(&task).await;
                    let _ = client.wait_task(&task, Duration::from_secs(10)).await;
                    let removed = self.remove_named(&vm, &name).await;
                    if removed.is_empty() {
                        self.late
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((vm.clone(), name.clone()));
                    }
                    let why = match end {
                        Err(fault) => format!("lost track of the snapshot task ({fault})"),
                        _ if *c.stop.borrow() => "interrupted during the snapshot".to_string(),
                        _ => format!(
                            "snapshot timed out after {}",
                            crate::output::duration::format(c.timeout)
                        ),
                    };
                    SnapshotResult::failed(format!(
                        "{why}: task {task} cancelled{}",
                        if removed.is_empty() {
                            String::new()
                        } else {
                            format!(", the snapshot it made ({}) removed", removed.join(", "))
                        }
                    ))
                }
            }
        }
        .boxed()
    }

    fn health<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, Result<Vec<String>, String>> {
        async move {
            let vm = self.vm(host).await?;
            let client = self.client().await?;
            let (tree, consolidate) = client.snapshot_health(&vm).await?;
            Ok(findings(
                &host.vm,
                &tree,
                consolidate,
                jiff::Timestamp::now(),
            ))
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        host: &'a Host,
        _vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<Listed>, String>> {
        async move {
            let vm = self.vm(host).await?;
            let client = self.client().await?;
            Ok(client
                .snapshots(&vm)
                .await?
                .into_iter()
                .filter_map(|s| {
                    let run_id = s.name.strip_prefix("quiesce-")?.to_string();
                    Some(Listed {
                        name: s.name.clone(),
                        run_id,
                        host: host.name.clone(),
                        id: s.moid,
                        created: s.created,
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn remove<'a>(
        &'a self,
        host: &'a Host,
        _vm: &'a dyn Transport,
        names: &'a [String],
    ) -> BoxFuture<'a, Vec<(String, Result<(), String>)>> {
        async move {
            let mut out = Vec::new();
            let (vm, client) = match (self.vm(host).await, self.client().await) {
                (Ok(vm), Ok(client)) => (vm, client),
                (Err(e), _) | (_, Err(e)) => {
                    return names.iter().map(|n| (n.clone(), Err(e.clone()))).collect();
                }
            };
            let tree = client.snapshots(&vm).await.unwrap_or_default();
            for name in names {
                let mut result = Err(format!("no snapshot {name} on the VM"));
                for snap in tree.iter().filter(|s| &s.name == name) {
                    result = match client.remove_snapshot(&snap.moid).await {
                        Err(f) => Err(f),
                        Ok(task) => match client.wait_task(&task, REMOVE_TIMEOUT).await {
                            Ok(TaskEnd::Success(_)) => Ok(()),
                            Ok(TaskEnd::Error(m)) => Err(m),
                            Ok(TaskEnd::Running) => Err(format!(
                                "still removing after {} s",
                                REMOVE_TIMEOUT.as_secs()
                            )),
                            Err(f) => Err(f),
                        },
                    };
                }
                out.push((name.clone(), result));
            }
            out
        }
        .boxed()
    }

    fn finish<'a>(&'a self) -> BoxFuture<'a, ()> {
        async move {
            // A creation given up on may still be carried out: its snapshot
            // is looked for (a bounded sweep) and removed, never left behind.
            let late: Vec<(String, String)> =
                std::mem::take(&mut *self.late.lock().unwrap_or_else(|e| e.into_inner()));
            let deadline = tokio::time::Instant::now() + LATE_SWEEP;
            for (vm, name) in late {
                while self.remove_named(&vm, &name).await.is_empty()
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
            if let Some(Ok(client)) = self.client.get() {
                client.logout().await;
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, created: &str, depth: usize) -> client::Snapshot {
        client::Snapshot {
            moid: format!("snapshot-{depth}"),
            name: name.into(),
            created: created.into(),
            depth,
        }
    }

    #[test]
    fn old_snapshots_deep_chains_and_consolidation_are_findings() {
        let now: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let fresh = [snap("quiesce-a", "2026-12-06T12:00:00.5Z", 1)];
        assert!(findings("vm1", &fresh, false, now).is_empty());
        let old = [
            snap("manual", "2026-12-04T11:00:00Z", 1),
            snap("quiesce-b", "2026-12-07T11:00:00Z", 2),
        ];
        let f = findings("vm1", &old, false, now);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("VMware snapshot `manual` of VM vm1 is 73h old"),
            "{f:?}"
        );
        let deep: Vec<client::Snapshot> = (1..=4)
            .map(|d| snap(&format!("s{d}"), "2026-12-07T11:00:00Z", d))
            .collect();
        let f = findings("vm1", &deep, true, now);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("is 4 deep"), "{f:?}");
        assert!(f[1].contains("consolidationNeeded"), "{f:?}");
        // A time vCenter wrote that cannot be read is no finding, no panic.
        assert!(findings("vm1", &[snap("x", "yesterday", 1)], false, now).is_empty());
    }
}
