//! The typed events every command emits while it runs. The progress display
//! and the table, JSON and JUnit reporters all consume this one stream.

use crate::hooks::HookKind;
use crate::hooks::facts::Finding;
use crate::output::error::HostError;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The result for one hook on one host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// audit: everything as deployed.
    Compliant,
    /// audit: at least one finding.
    NonCompliant,
    /// deploy: already right, nothing written.
    Unchanged,
    /// deploy: written where there was none.
    Created,
    /// deploy: rewritten (content, owner, mode or directory fixed).
    Updated,
    /// deploy --check: would be written.
    WouldChange,
    /// deploy: a symlink or other non-regular file is in the way (use --force).
    Refused,
    /// a step failed on the reachable host.
    Failed,
    /// the host could not be reached.
    Unreachable,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Compliant => "compliant",
            Status::NonCompliant => "NON-COMPLIANT",
            Status::Unchanged => "unchanged",
            Status::Created => "created",
            Status::Updated => "updated",
            Status::WouldChange => "would change",
            Status::Refused => "REFUSED",
            Status::Failed => "FAILED",
            Status::Unreachable => "UNREACHABLE",
        }
    }

    /// The order statuses are listed in summaries.
    pub fn rank(&self) -> usize {
        match self {
            Status::Compliant => 0,
            Status::Unchanged => 1,
            Status::Created => 2,
            Status::Updated => 3,
            Status::WouldChange => 4,
            Status::NonCompliant => 5,
            Status::Refused => 6,
            Status::Failed => 7,
            Status::Unreachable => 8,
        }
    }

    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            Status::NonCompliant
                | Status::WouldChange
                | Status::Refused
                | Status::Failed
                | Status::Unreachable
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HookRecord {
    pub host: String,
    pub address: String,
    pub hook: HookKind,
    pub path: String,
    pub status: Status,
    pub findings: Vec<Finding>,
    /// The error or the change, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `deploy --diff`: the unified diff from what was there to what is deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub enum Event {
    RunStarted {
        command: &'static str,
        hosts: usize,
    },
    HostConnected {
        host: String,
        learned_key: Option<String>,
    },
    StepStarted {
        host: String,
        step: &'static str,
    },
    StepFinished {
        host: String,
        step: &'static str,
        ok: bool,
    },
    Hook(HookRecord),
    HostFinished {
        host: String,
        error: Option<HostError>,
    },
    /// A host's end told in words (verify: what it found), `ok` false when
    /// it counts as a failure.
    HostSummary {
        host: String,
        text: String,
        ok: bool,
    },
    /// Something the user should read now (a warning, a retry).
    Note {
        host: String,
        text: String,
    },
    RunFinished {
        elapsed: Duration,
        interrupted: bool,
    },
}

/// Where commands send their events; sending never blocks and never fails
/// the run (a closed receiver only means nobody listens any more).
#[derive(Debug, Clone)]
pub struct EventSender(pub UnboundedSender<Event>);

impl EventSender {
    pub fn send(&self, event: Event) {
        let _ = self.0.send(event);
    }
}
