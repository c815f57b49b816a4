//! What happened to one host in a backup run (`HostRun`) and how it ended
//! (`Outcome`): what the reports print and `results.json` keeps.

use crate::backup::plan::{Lane, LaneKind};
use crate::backup::restore_point::RestorePoint;
use crate::backup::role::Role;
use crate::inventory::Host;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Frozen, snapshotted, thawed: the snapshot is a usable backup.
    Valid,
    /// Thawed, but the write daemon had resumed before: the snapshot is not a backup.
    Invalid,
    /// Something failed; everything frozen was thawed.
    Failed,
    /// Could not be thawed: act now (see `manual_thaw`).
    LeftFrozen,
    /// Not run: preflight, plan or an earlier failure in its lane.
    Skipped,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "INVALID",
            Outcome::Failed => "FAILED",
            Outcome::LeftFrozen => "LEFT FROZEN",
            Outcome::Skipped => "skipped",
        }
    }
}

/// What happened to one host; times are milliseconds since the epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRun {
    pub host: String,
    pub vm: String,
    pub lane: String,
    pub role: Role,
    /// The QoS timeout of the host's mirror, when it is in one.
    #[serde(default)]
    pub qos_timeout_ms: Option<u64>,
    pub instances: Vec<String>,
    pub freeze_started: Option<u64>,
    pub frozen_at: Option<u64>,
    pub snapshot_started: Option<u64>,
    pub snapshot_finished: Option<u64>,
    pub thaw_started: Option<u64>,
    pub thawed_at: Option<u64>,
    pub stun_us: Option<u64>,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_thaw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pauses_at: Option<u64>,
    /// Problems beside the outcome, e.g. a stun over the mirror's QoS timeout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// What the snapshot provider made (ids, paths), every attempt's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshot_ids: Vec<String>,
    /// When the snapshots were on durable storage, for a provider whose
    /// snapshot settles after the thaw (EBS `completed`); the others' are
    /// durable when they end (`snapshot_finished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_at: Option<u64>,
    /// Where a journal restore of each instance's backup starts, as its
    /// freeze said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore: Vec<RestorePoint>,
    /// The export step after the thaw (snapshot.export), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
}

/// How the export step of one host ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub at: u64,
    pub ok: bool,
    pub detail: String,
}

impl HostRun {
    pub fn new(host: &Host, lane: &Lane, role: Role) -> HostRun {
        let qos_timeout_ms = match &lane.kind {
            LaneKind::Mirror { qos_timeout, .. } => Some(qos_timeout.as_millis() as u64),
            _ => None,
        };
        HostRun {
            host: host.name.clone(),
            vm: host.vm.clone(),
            lane: lane.name.clone(),
            role,
            qos_timeout_ms,
            snapshot_ids: Vec::new(),
            export: None,
            durable_at: None,
            restore: Vec::new(),
            instances: Vec::new(),
            freeze_started: None,
            frozen_at: None,
            snapshot_started: None,
            snapshot_finished: None,
            thaw_started: None,
            thawed_at: None,
            stun_us: None,
            outcome: Outcome::Skipped,
            detail: String::new(),
            manual_thaw: None,
            pauses_at: None,
            findings: Vec::new(),
        }
    }

    /// From the start of the freeze to the end of the thaw.
    pub fn freeze_window_ms(&self) -> Option<u64> {
        Some(self.thawed_at?.saturating_sub(self.freeze_started?))
    }

    pub fn snapshot_ms(&self) -> Option<u64> {
        Some(
            self.snapshot_finished?
                .saturating_sub(self.snapshot_started?),
        )
    }
}
