//! Snapshot providers: what takes the snapshot between freeze and thaw, and
//! what it made. One trait for all of them, so the mirror order, the freeze
//! budget, always-thaw and the journal stay the executor's, the same for
//! every provider.

pub mod aws_ebs;
pub mod btrfs;
pub mod clone_script;
pub mod cpf;
pub mod ebs_clone;
pub mod vsphere;

use crate::backup::restore_point::RestorePoint;
use crate::backup::snapshot::{self, SnapshotResult};
use crate::backup::verification::InstanceVerdict;
use crate::inventory::Host;
use crate::inventory::playbook::{ProviderKind, SnapshotStep, VerifySettings, render_command};
use crate::remote::transport::Transport;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::Duration;
use tokio::sync::watch;

/// What a provider settled before any freeze: the snapshots it will make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// (what, its name's tail): for btrfs, the subvolume and `N@LABEL`
    /// (the run's id, known only once the run starts, goes before it).
    pub snapshots: Vec<(String, String)>,
}

impl Prepared {
    /// A provider that snapshots one object per host (a VM, an instance).
    pub fn one(id: String) -> Prepared {
        Prepared {
            snapshots: vec![(id, String::new())],
        }
    }

    /// That object, as `one` recorded it.
    pub fn first(prepared: Option<&Prepared>) -> Option<String> {
        prepared
            .and_then(|p| p.snapshots.first())
            .map(|(id, _)| id.clone())
    }
}

/// One snapshot to take, with everything it may use.
pub struct Create<'a> {
    pub step: &'a SnapshotStep,
    pub host: &'a Host,
    pub run_id: &'a str,
    pub run_dir: &'a str,
    pub prepared: Option<&'a Prepared>,
    /// The VM's connection (none: it could not be reached).
    pub vm: Option<&'a dyn Transport>,
    /// The controller itself.
    pub local: &'a dyn Transport,
    pub timeout: Duration,
    pub stop: watch::Receiver<bool>,
    /// Where a journal restore of each frozen instance starts, as its freeze
    /// said: the snapshot carries it (description, tags).
    pub restore: &'a [RestorePoint],
}

impl Create<'_> {
    /// `IRIS: journal /…/20261123.002, marker at offset 262272; …`, or
    /// `unknown` when no freeze said.
    pub fn restore_text(&self) -> String {
        if self.restore.is_empty() {
            return "unknown".into();
        }
        let all: Vec<String> = self.restore.iter().map(RestorePoint::describe).collect();
        all.join("; ")
    }

    /// The compact form (`IRIS=/…/20261123.002@262272,…`) within `limit`
    /// bytes, for a tag; what does not fit is cut at an instance boundary.
    pub fn restore_compact(&self, limit: usize) -> String {
        let mut out = String::new();
        for point in self.restore {
            let next = point.compact();
            let sep = if out.is_empty() { 0 } else { 1 };
            if out.len() + sep + next.len() > limit {
                break;
            }
            if sep == 1 {
                out.push(',');
            }
            out.push_str(&next);
        }
        out
    }
}

/// A snapshot a provider lists, with what its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub run_id: String,
    pub host: String,
    pub id: String,
    pub created: String,
}

pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Before any freeze, read-only: what the snapshot of `host` will hold.
    /// An error leaves the host out of the run, with nothing frozen.
    fn prepare<'a>(
        &'a self,
        host: &'a Host,
        vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Prepared, String>>;

    /// Between freeze and thaw: takes the snapshot within `timeout`. A
    /// success means the point in time is fixed and what was made is on
    /// durable storage (ExternalSetHistory follows only then).
    fn create<'a>(&'a self, create: Create<'a>) -> BoxFuture<'a, SnapshotResult>;

    /// Whether a created snapshot still settles after its point in time is
    /// fixed (EBS: `pending` for minutes). The thaw then records no backup
    /// (`thawDeferred`), and `settle` must succeed before the hook's
    /// `history` records it.
    fn settles_later(&self) -> bool {
        false
    }

    /// After the thaw: waits (bounded) until every snapshot in `ids` is
    /// durable; what it found, or why the backup never became one.
    fn settle<'a>(
        &'a self,
        _host: &'a Host,
        _ids: &'a [String],
    ) -> BoxFuture<'a, Result<String, String>> {
        async { Ok(String::new()) }.boxed()
    }

    /// Problems with what the hypervisor keeps for `host` that need a
    /// person (VMware: a snapshot left for days, a deep chain, disks that
    /// need consolidation), each worded as a finding.
    fn health<'a>(&'a self, _host: &'a Host) -> BoxFuture<'a, Result<Vec<String>, String>> {
        async { Ok(Vec::new()) }.boxed()
    }

    /// Every snapshot of this provider's making on `host`.
    fn list<'a>(
        &'a self,
        host: &'a Host,
        vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<Listed>, String>>;

    /// Removes the named snapshots; each one's outcome, in order.
    fn remove<'a>(
        &'a self,
        host: &'a Host,
        vm: &'a dyn Transport,
        names: &'a [String],
    ) -> BoxFuture<'a, Vec<(String, Result<(), String>)>>;

    /// `quiesce verify`: restores the run's snapshots of one host in a
    /// clone where production cannot be reached, and checks each instance
    /// (see docs/verify.md); the clone is gone when it returns.
    fn verify<'a>(&'a self, v: VerifyRequest<'a>) -> BoxFuture<'a, Result<Verified, String>> {
        let kind = self.kind();
        let _ = v;
        async move {
            Err(format!(
                "verify is built for the btrfs and aws-ebs providers; the {} provider's clones (docs/verify.md says how they will be made) are not built yet",
                kind.as_str()
            ))
        }
        .boxed()
    }

    /// The end of the run: a session the provider holds is closed.
    fn finish<'a>(&'a self) -> BoxFuture<'a, ()> {
        async {}.boxed()
    }
}

/// What a provider's verify of one host found.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    pub instances: Vec<InstanceVerdict>,
    pub warnings: Vec<String>,
    /// The clone's teardown said it ended; false when the session broke
    /// first: the verify journal then keeps the clone for `recover`.
    pub torn_down: bool,
}

/// What `verify` hands a provider for one host of a run.
pub struct VerifyRequest<'a> {
    pub host: &'a Host,
    pub vm: &'a dyn Transport,
    pub run_id: &'a str,
    pub settings: &'a VerifySettings,
    /// What the run's snapshots of the host were (results.json).
    pub snapshot_ids: &'a [String],
    /// Where each instance's journal restore starts (results.json).
    pub restore: &'a [RestorePoint],
    /// `verify.scratch` and its connection, when the playbook names one.
    pub scratch: Option<(&'a Host, &'a dyn Transport)>,
}

/// The provider the playbook's snapshot step names.
pub fn of(step: &SnapshotStep) -> std::sync::Arc<dyn Provider> {
    match step.provider {
        ProviderKind::Command => std::sync::Arc::new(CommandProvider),
        ProviderKind::Btrfs => std::sync::Arc::new(btrfs::Btrfs {
            dir: step.btrfs_dir.clone().unwrap_or_default(),
        }),
        ProviderKind::AwsEbs => std::sync::Arc::new(aws_ebs::AwsEbs::new(
            step.aws
                .clone()
                .expect("the playbook fills in aws settings"),
        )),
        ProviderKind::Vsphere => std::sync::Arc::new(vsphere::Vsphere::new(
            step.vsphere
                .clone()
                .expect("the playbook checks vsphere settings"),
        )),
    }
}

/// `snapshot.command`: the site's own command, on the controller or the VM.
pub struct CommandProvider;

const NO_RECORD: &str = "the command provider keeps no record of the snapshots its command makes: list and remove them with the hypervisor's own tools";

impl Provider for CommandProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Command
    }

    fn prepare<'a>(
        &'a self,
        _host: &'a Host,
        _vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        async { Ok(Prepared::default()) }.boxed()
    }

    fn create<'a>(&'a self, c: Create<'a>) -> BoxFuture<'a, SnapshotResult> {
        async move {
            let (command, env) = render_command(
                &c.step.command,
                &[
                    ("host", c.host.name.as_str()),
                    ("vm", c.host.vm.as_str()),
                    ("address", c.host.address.as_str()),
                    ("run_id", c.run_id),
                    ("run_dir", c.run_dir),
                ],
            );
            let transport = match c.step.on {
                crate::inventory::playbook::RunOn::Vm => c.vm,
                crate::inventory::playbook::RunOn::Controller => Some(c.local),
            };
            snapshot::run(c.step, &command, &env, transport, c.timeout, c.stop).await
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        _host: &'a Host,
        _vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<Listed>, String>> {
        async { Err(NO_RECORD.to_string()) }.boxed()
    }

    fn remove<'a>(
        &'a self,
        _host: &'a Host,
        _vm: &'a dyn Transport,
        names: &'a [String],
    ) -> BoxFuture<'a, Vec<(String, Result<(), String>)>> {
        async move {
            names
                .iter()
                .map(|n| (n.clone(), Err(NO_RECORD.to_string())))
                .collect()
        }
        .boxed()
    }
}
