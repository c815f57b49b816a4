//! Measured VM stuns, per VM, kept in `runs/stun-history.json` across runs:
//! what the backup's QoS guard checks before snapshotting a mirror primary.
//! Each stun is kept once (by its time and length), written under a lock
//! through a temporary file of its own; a history that cannot be read is an
//! error that names the file, never silently replaced by an empty one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const KEPT_PER_VM: usize = 50;
const FILE: &str = "stun-history.json";

/// One stun: when it happened (ms since the epoch; 0 when unknown) and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Measured {
    pub at: u64,
    pub us: u64,
}

/// What the file holds per VM: stuns with their times, or (written before
/// stuns had times) bare lengths, oldest first.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Timed(Vec<Measured>),
    Legacy(Vec<u64>),
}

#[derive(Debug, Default, Clone)]
pub struct StunHistory {
    /// VM name → stuns, oldest first.
    pub stuns: BTreeMap<String, Vec<Measured>>,
}

/// The error that stops a command when the history cannot be read or written.
pub fn refusal(message: String) -> crate::output::error::Error {
    crate::output::error::Error::Usage {
        message,
        hint: "quiesce never replaces a stun history it cannot read; fix the file or move it away"
            .into(),
    }
}

pub fn path(runs_dir: &Path) -> PathBuf {
    runs_dir.join(FILE)
}

impl StunHistory {
    /// The history in `runs_dir`: empty when there is none yet; an error
    /// (naming the file and what to do) when it cannot be read.
    pub fn load(runs_dir: &Path) -> Result<StunHistory, String> {
        let file = path(runs_dir);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StunHistory::default()),
            Err(e) => {
                return Err(format!(
                    "cannot read the stun history {}: {e}",
                    file.display()
                ));
            }
        };
        let stored: BTreeMap<String, Stored> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "the stun history {} does not parse ({e}); the QoS guard needs it: fix it, or move it away to start a new one",
                file.display()
            )
        })?;
        let stuns = stored
            .into_iter()
            .map(|(vm, stored)| {
                let list = match stored {
                    Stored::Timed(list) => list,
                    Stored::Legacy(lengths) => lengths
                        .into_iter()
                        .map(|us| Measured { at: 0, us })
                        .collect(),
                };
                (vm, list)
            })
            .collect();
        Ok(StunHistory { stuns })
    }

    /// The VM's most recent stun by time (the last recorded among equals).
    pub fn last(&self, vm: &str) -> Option<u64> {
        self.stuns
            .get(vm)?
            .iter()
            .max_by_key(|m| m.at)
            .map(|m| m.us)
    }

    /// Adds `measured` (VM, stun) to the file in `runs_dir`: a stun already
    /// there is not added twice. Read, merge and write happen under a lock.
    pub fn record(runs_dir: &Path, measured: &[(String, Measured)]) -> Result<(), String> {
        if measured.is_empty() {
            return Ok(());
        }
        let file = path(runs_dir);
        std::fs::create_dir_all(runs_dir)
            .map_err(|e| format!("cannot create {}: {e}", runs_dir.display()))?;
        let lock_path = runs_dir.join(format!("{FILE}.lock"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        if !crate::backup::host_lock::lock_file(&lock, true) {
            return Err(format!("cannot lock {}", lock_path.display()));
        }
        let mut stuns = StunHistory::load(runs_dir)?.stuns;
        for (vm, m) in measured {
            let list = stuns.entry(vm.clone()).or_default();
            if !list.contains(m) {
                list.push(*m);
            }
            // Oldest first by time; stuns without a time keep their order before the rest.
            list.sort_by_key(|m| m.at);
            if list.len() > KEPT_PER_VM {
                list.drain(..list.len() - KEPT_PER_VM);
            }
        }
        let text = serde_json::to_string_pretty(&stuns).map_err(|e| e.to_string())?;
        let written = crate::output::atomic_write(&file, text.as_bytes());
        if let Err(e) = written {
            return Err(format!(
                "cannot write the stun history {}: {e}",
                file.display()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(at: u64, us: u64) -> Measured {
        Measured { at, us }
    }

    #[test]
    fn the_same_stun_is_kept_once_and_the_guard_sees_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let a = |list: &[Measured]| {
            list.iter()
                .map(|s| ("A".to_string(), *s))
                .collect::<Vec<_>>()
        };
        StunHistory::record(dir.path(), &a(&[m(2000, 9), m(1000, 5)])).unwrap();
        StunHistory::record(dir.path(), &a(&[m(1000, 5), m(2000, 9)])).unwrap();
        let history = StunHistory::load(dir.path()).unwrap();
        assert_eq!(history.stuns["A"], [m(1000, 5), m(2000, 9)]);
        assert_eq!(history.last("A"), Some(9));
    }

    #[test]
    fn a_history_that_does_not_parse_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{ torn").unwrap();
        let error = StunHistory::load(dir.path()).unwrap_err();
        assert!(
            error.contains("stun-history.json does not parse"),
            "{error}"
        );
        assert!(StunHistory::record(dir.path(), &[("A".into(), m(1, 1))]).is_err());
        assert_eq!(std::fs::read_to_string(path(dir.path())).unwrap(), "{ torn");
    }

    #[test]
    fn the_old_format_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), r#"{"A": [5, 7]}"#).unwrap();
        assert_eq!(StunHistory::load(dir.path()).unwrap().last("A"), Some(7));
    }
}
