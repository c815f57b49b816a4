//! Measured VM stuns, per VM, kept in `runs/stun-history.json` across runs:
//! what the backup's QoS guard checks before snapshotting a mirror primary.

use std::collections::BTreeMap;
use std::path::Path;

const KEPT_PER_VM: usize = 50;
const FILE: &str = "stun-history.json";

#[derive(Debug, Default, Clone)]
pub struct StunHistory {
    /// VM name → stuns in microseconds, oldest first.
    pub stuns: BTreeMap<String, Vec<u64>>,
}

impl StunHistory {
    /// The history in `runs_dir`; an absent or unreadable file is an empty history.
    pub fn load(runs_dir: &Path) -> StunHistory {
        let stuns = std::fs::read_to_string(runs_dir.join(FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        StunHistory { stuns }
    }

    pub fn last(&self, vm: &str) -> Option<u64> {
        self.stuns.get(vm).and_then(|s| s.last().copied())
    }

    /// Adds `measured` (VM, µs) and writes the file atomically.
    pub fn save_with(&self, runs_dir: &Path, measured: &[(String, u64)]) {
        if measured.is_empty() {
            return;
        }
        let mut stuns = StunHistory::load(runs_dir).stuns;
        for (vm, us) in measured {
            let list = stuns.entry(vm.clone()).or_default();
            list.push(*us);
            if list.len() > KEPT_PER_VM {
                list.drain(..list.len() - KEPT_PER_VM);
            }
        }
        let _ = std::fs::create_dir_all(runs_dir);
        let tmp = runs_dir.join(format!("{FILE}.tmp"));
        if let Ok(text) = serde_json::to_string_pretty(&stuns)
            && std::fs::write(&tmp, text).is_ok()
        {
            let _ = std::fs::rename(&tmp, runs_dir.join(FILE));
        }
    }
}
