//! The backup's one event stream: every step the executor takes is one typed
//! `BackupEvent`, and its three consumers read the same value — the journal
//! writer (`journal_entry`, write-ahead), the results builder
//! (`HostRun::apply`) and the progress display (`progress`). Nothing is
//! written three times, and no decision is taken on a message's wording.

use crate::backup::host_run::{HostRun, Outcome};
use crate::backup::journal::Entry;
use crate::backup::restore_point::RestorePoint;
use crate::output::error::HostError;
use crate::output::event::Event;

/// What the thaw asks the hook to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThawAction {
    /// Thaw and record the backup (every snapshot of the job was taken).
    Thaw,
    /// Thaw, and record the backup only once the snapshot is durable (a
    /// later `history`): the provider's snapshot is not on durable storage
    /// yet when its point in time is fixed (EBS `pending`).
    ThawDeferred,
    /// Thaw without recording a backup (something failed).
    FreezeFail,
}

impl ThawAction {
    /// The hook's own word for it.
    pub fn word(self) -> &'static str {
        match self {
            ThawAction::Thaw => "thaw",
            ThawAction::ThawDeferred => "thawDeferred",
            ThawAction::FreezeFail => "freezeFail",
        }
    }
}

/// Why this run froze nothing on a host (it gets no thaw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFrozenBecause {
    /// Another owner's freeze (another run, VMware Tools) holds the VM.
    Held,
    /// The hook was never run: no connection, or it failed its check.
    NotRun,
}

#[derive(Debug, Clone)]
pub enum BackupEvent {
    FreezeStarted {
        host: String,
        at: u64,
        /// When the freeze would pause the instances.
        pauses_at: u64,
    },
    Frozen {
        host: String,
        at: u64,
        /// Where a journal restore of each instance's backup starts.
        restore: Vec<RestorePoint>,
    },
    /// The freeze ran and failed, or its answer never came: a thaw follows.
    FreezeFailed {
        host: String,
        at: u64,
        detail: String,
    },
    /// This run froze nothing on the host.
    NotFrozen {
        host: String,
        at: u64,
        detail: String,
        because: NotFrozenBecause,
    },
    SnapshotStarted {
        host: String,
        at: u64,
    },
    SnapshotFinished {
        host: String,
        at: u64,
        ok: bool,
        detail: String,
        stun_us: Option<u64>,
        /// What the provider made (snapshot ids, paths).
        ids: Vec<String>,
        attempt: u32,
        /// Another attempt follows.
        retrying: bool,
    },
    /// The export step after the thaw ended.
    ExportFinished {
        host: String,
        at: u64,
        ok: bool,
        detail: String,
    },
    /// After a deferred thaw: the snapshots are durable (or never became
    /// so), and whether the backup is now in the instances' history.
    Durable {
        host: String,
        at: u64,
        ok: bool,
        detail: String,
    },
    /// A problem beside the outcome (a stun over the mirror's QoS timeout).
    Finding {
        host: String,
        text: String,
    },
    /// Something to read now that changes nothing (a stun near the QoS timeout).
    Warning {
        host: String,
        text: String,
    },
    ThawStarted {
        host: String,
        at: u64,
        action: ThawAction,
    },
    /// One thaw attempt failed or got no answer.
    ThawFailed {
        host: String,
        at: u64,
        attempt: u32,
        detail: String,
        retrying: bool,
    },
    Thawed {
        host: String,
        at: u64,
        action: ThawAction,
        valid: bool,
        detail: String,
    },
    /// Could not be thawed: a person must act (`fix` is the command that works).
    LeftFrozen {
        host: String,
        at: u64,
        attempts: u32,
        detail: String,
        fix: String,
    },
    /// The host's settled outcome in this run.
    HostFinished {
        host: String,
        outcome: Outcome,
        detail: String,
    },
}

impl BackupEvent {
    pub fn host(&self) -> &str {
        match self {
            BackupEvent::FreezeStarted { host, .. }
            | BackupEvent::Frozen { host, .. }
            | BackupEvent::FreezeFailed { host, .. }
            | BackupEvent::NotFrozen { host, .. }
            | BackupEvent::SnapshotStarted { host, .. }
            | BackupEvent::SnapshotFinished { host, .. }
            | BackupEvent::Finding { host, .. }
            | BackupEvent::ExportFinished { host, .. }
            | BackupEvent::Durable { host, .. }
            | BackupEvent::Warning { host, .. }
            | BackupEvent::ThawStarted { host, .. }
            | BackupEvent::ThawFailed { host, .. }
            | BackupEvent::Thawed { host, .. }
            | BackupEvent::LeftFrozen { host, .. }
            | BackupEvent::HostFinished { host, .. } => host,
        }
    }

    /// What the write-ahead journal keeps of it (`recover` reads these).
    pub fn journal_entry(&self) -> Option<Entry> {
        let host = self.host().to_string();
        Some(match self {
            BackupEvent::FreezeStarted { at, pauses_at, .. } => Entry::FreezeStarted {
                host,
                at: *at,
                pauses_at: *pauses_at,
            },
            BackupEvent::Frozen { at, restore, .. } => Entry::Frozen {
                host,
                at: *at,
                restore: restore.clone(),
            },
            BackupEvent::FreezeFailed { at, detail, .. } => Entry::FreezeFailed {
                host,
                at: *at,
                detail: detail.clone(),
            },
            BackupEvent::NotFrozen { at, detail, .. } => Entry::NotFrozen {
                host,
                at: *at,
                detail: detail.clone(),
            },
            BackupEvent::SnapshotStarted { at, .. } => Entry::SnapshotStarted { host, at: *at },
            BackupEvent::SnapshotFinished {
                at,
                ok,
                detail,
                stun_us,
                ids,
                ..
            } => Entry::SnapshotFinished {
                host,
                at: *at,
                ok: *ok,
                detail: detail.clone(),
                stun_us: *stun_us,
                ids: ids.clone(),
            },
            BackupEvent::ThawStarted { at, action, .. } => Entry::ThawStarted {
                host,
                at: *at,
                action: action.word().into(),
            },
            BackupEvent::ThawFailed { at, detail, .. } => Entry::ThawFailed {
                host,
                at: *at,
                detail: detail.clone(),
            },
            BackupEvent::Thawed { at, valid, .. } => Entry::Thawed {
                host,
                at: *at,
                valid: *valid,
            },
            BackupEvent::ExportFinished { at, ok, detail, .. } => Entry::ExportFinished {
                host,
                at: *at,
                ok: *ok,
                detail: detail.clone(),
            },
            BackupEvent::Durable { at, ok, detail, .. } => Entry::Durable {
                host,
                at: *at,
                ok: *ok,
                detail: detail.clone(),
            },
            // The thaw-failed entry before it already keeps the host open.
            BackupEvent::LeftFrozen { .. }
            | BackupEvent::Finding { .. }
            | BackupEvent::Warning { .. }
            | BackupEvent::HostFinished { .. } => return None,
        })
    }

    /// What the progress display shows of it; `target` names the host in errors.
    pub fn progress(&self, target: &str) -> Vec<Event> {
        let host = self.host().to_string();
        let step = |step: &'static str| Event::StepStarted {
            host: host.clone(),
            step,
        };
        let done = |step: &'static str, ok: bool| Event::StepFinished {
            host: host.clone(),
            step,
            ok,
        };
        let note = |text: String| Event::Note {
            host: host.clone(),
            text,
        };
        match self {
            BackupEvent::FreezeStarted { .. } => vec![step("freeze")],
            BackupEvent::Frozen { .. } => vec![done("freeze", true)],
            BackupEvent::FreezeFailed { .. } | BackupEvent::NotFrozen { .. } => {
                vec![done("freeze", false)]
            }
            BackupEvent::SnapshotStarted { .. } => vec![step("snapshot")],
            BackupEvent::SnapshotFinished {
                ok,
                retrying,
                detail,
                attempt,
                ..
            } => {
                let mut events = vec![done("snapshot", *ok)];
                if *retrying {
                    events.push(note(format!(
                        "snapshot attempt {attempt} failed ({detail}); retrying"
                    )));
                }
                events
            }
            BackupEvent::Finding { text, .. } | BackupEvent::Warning { text, .. } => {
                vec![note(text.clone())]
            }
            BackupEvent::ExportFinished { ok, .. } => vec![done("export", *ok)],
            BackupEvent::Durable { ok, .. } => vec![done("durable", *ok)],
            BackupEvent::ThawStarted { .. } => vec![step("thaw")],
            BackupEvent::ThawFailed {
                attempt,
                detail,
                retrying: true,
                ..
            } => vec![note(format!(
                "thaw attempt {attempt} failed: {detail}; retrying"
            ))],
            BackupEvent::ThawFailed { .. } => Vec::new(),
            BackupEvent::Thawed { .. } => vec![done("thaw", true)],
            BackupEvent::LeftFrozen { .. } => vec![done("thaw", false)],
            BackupEvent::HostFinished {
                outcome, detail, ..
            } => vec![Event::HostFinished {
                host: host.clone(),
                error: (*outcome != Outcome::Valid).then(|| HostError::StepFailed {
                    target: target.to_string(),
                    step: "backup".into(),
                    detail: format!("{}: {detail}", outcome.label()),
                }),
            }],
        }
    }
}

impl HostRun {
    /// The results builder: folds one event into the host's result.
    pub fn apply(&mut self, event: &BackupEvent) {
        match event {
            BackupEvent::FreezeStarted { at, pauses_at, .. } => {
                self.freeze_started = Some(*at);
                self.pauses_at = Some(*pauses_at);
            }
            BackupEvent::Frozen { at, restore, .. } => {
                self.frozen_at = Some(*at);
                self.restore = restore.clone();
            }
            BackupEvent::FreezeFailed { detail, .. } => {
                self.outcome = Outcome::Failed;
                self.detail = detail.clone();
            }
            BackupEvent::NotFrozen {
                detail, because, ..
            } => {
                self.detail = detail.clone();
                match because {
                    NotFrozenBecause::Held => {
                        self.outcome = Outcome::Skipped;
                        self.freeze_started = None;
                    }
                    NotFrozenBecause::NotRun => self.outcome = Outcome::Failed,
                }
            }
            BackupEvent::SnapshotStarted { at, .. } => self.snapshot_started = Some(*at),
            BackupEvent::SnapshotFinished {
                at,
                ok,
                detail,
                stun_us,
                ids,
                ..
            } => {
                self.snapshot_finished = Some(*at);
                self.snapshot_ids.extend(ids.iter().cloned());
                self.stun_us = stun_us.or(self.stun_us);
                if !ok {
                    self.outcome = Outcome::Failed;
                    self.detail = detail.clone();
                }
            }
            BackupEvent::Finding { text, .. } => self.findings.push(text.clone()),
            BackupEvent::ExportFinished { at, ok, detail, .. } => {
                self.export = Some(crate::backup::host_run::Export {
                    at: *at,
                    ok: *ok,
                    detail: detail.clone(),
                });
                if !ok {
                    self.findings.push(format!("export failed: {detail}"));
                }
            }
            BackupEvent::Durable { at, ok, detail, .. } => {
                if *ok {
                    self.durable_at = Some(*at);
                    self.detail = format!("{}; {detail}", self.detail);
                } else if self.outcome == Outcome::Valid {
                    // Frozen at the right time, but never a backup: the
                    // snapshot did not become durable, and nothing recorded it.
                    self.outcome = Outcome::Failed;
                    self.detail = detail.clone();
                }
            }
            BackupEvent::Warning { .. } | BackupEvent::ThawFailed { .. } => {}
            BackupEvent::ThawStarted { at, .. } => self.thaw_started = Some(*at),
            BackupEvent::Thawed {
                at,
                action,
                valid,
                detail,
                ..
            } => {
                self.thawed_at = Some(*at);
                if matches!(action, ThawAction::Thaw | ThawAction::ThawDeferred) {
                    self.outcome = if *valid {
                        Outcome::Valid
                    } else {
                        Outcome::Invalid
                    };
                    self.detail = detail.clone();
                }
            }
            BackupEvent::LeftFrozen {
                attempts,
                detail,
                fix,
                ..
            } => {
                self.outcome = Outcome::LeftFrozen;
                self.detail = format!("COULD NOT THAW after {attempts} attempts: {detail}");
                self.manual_thaw = Some(fix.clone());
            }
            BackupEvent::HostFinished {
                outcome, detail, ..
            } => {
                self.outcome = *outcome;
                self.detail = detail.clone();
            }
        }
    }
}
