//! The run journal, `runs/<run-id>/journal.jsonl`: one JSON line per
//! transition, appended and fsync'd before the run moves on, so that
//! `quiesce recover` can finish what a crashed controller left frozen.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Everything `recover` needs to reach a host without the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostAccess {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<PathBuf>,
    pub r#become: bool,
    pub hook_dir: String,
    pub vm: String,
    /// The sha256 of the post-thaw-script deployed to the host.
    pub post_sha: String,
    #[serde(default = "default_log_dir")]
    pub log_dir: String,
}

fn default_log_dir() -> String {
    crate::inventory::DEFAULT_LOG_DIR.to_string()
}

impl HostAccess {
    pub fn new(host: &crate::inventory::Host, post_sha: String) -> HostAccess {
        HostAccess {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: host.user.clone(),
            identity_file: host.identity_file.clone(),
            r#become: host.r#become,
            hook_dir: host.hook_dir.clone(),
            vm: host.vm.clone(),
            post_sha,
            log_dir: host.log_dir.clone(),
        }
    }

    /// A host to connect to from the journal alone (no inventory needed).
    pub fn to_host(&self) -> crate::inventory::Host {
        crate::inventory::Host {
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone(),
            identity_file: self.identity_file.clone(),
            r#become: self.r#become,
            platform: crate::inventory::Platform::Iris,
            vm: self.vm.clone(),
            instances: Vec::new(),
            hook_dir: self.hook_dir.clone(),
            log_dir: self.log_dir.clone(),
            freeze_timeout: crate::inventory::DEFAULT_FREEZE_TIMEOUT,
            groups: Vec::new(),
            mirror: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    RunStarted {
        run_id: String,
        at: u64,
        playbook: String,
        inventory: String,
        freeze_timeout_secs: u64,
        hosts: Vec<HostAccess>,
    },
    FreezeStarted {
        host: String,
        at: u64,
        pauses_at: u64,
    },
    Frozen {
        host: String,
        at: u64,
    },
    FreezeFailed {
        host: String,
        at: u64,
        detail: String,
    },
    /// The freeze never ran (its hook did not match): nothing to thaw.
    NotFrozen {
        host: String,
        at: u64,
        detail: String,
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
    },
    ThawStarted {
        host: String,
        at: u64,
        action: String,
    },
    Thawed {
        host: String,
        at: u64,
        valid: bool,
    },
    ThawFailed {
        host: String,
        at: u64,
        detail: String,
    },
    Recovered {
        host: String,
        at: u64,
        detail: String,
    },
    RunFinished {
        at: u64,
        outcome: String,
    },
}

impl Entry {
    pub fn host(&self) -> Option<&str> {
        match self {
            Entry::FreezeStarted { host, .. }
            | Entry::Frozen { host, .. }
            | Entry::FreezeFailed { host, .. }
            | Entry::NotFrozen { host, .. }
            | Entry::SnapshotStarted { host, .. }
            | Entry::SnapshotFinished { host, .. }
            | Entry::ThawStarted { host, .. }
            | Entry::Thawed { host, .. }
            | Entry::ThawFailed { host, .. }
            | Entry::Recovered { host, .. } => Some(host),
            Entry::RunStarted { .. } | Entry::RunFinished { .. } => None,
        }
    }
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn create(run_dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(run_dir)?;
        Journal::open(&run_dir.join("journal.jsonl"))
    }

    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and syncs one entry. A journal that cannot be written is
    /// reported, but never stops a thaw.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    /// Reads every entry; a torn last line (crash mid-write) is skipped.
    pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

/// Hosts whose freeze started and that were never thawed (or recovered), in
/// the order their freezes started.
pub fn left_frozen(entries: &[Entry]) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    for entry in entries {
        match entry {
            Entry::FreezeStarted { host, .. } if !open.contains(host) => {
                open.push(host.clone());
            }
            Entry::Thawed { host, .. }
            | Entry::Recovered { host, .. }
            | Entry::NotFrozen { host, .. } => open.retain(|h| h != host),
            _ => {}
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_reads_and_finds_what_is_left_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::create(dir.path()).unwrap();
        for entry in [
            Entry::FreezeStarted {
                host: "a".into(),
                at: 1,
                pauses_at: 9,
            },
            Entry::Frozen {
                host: "a".into(),
                at: 2,
            },
            Entry::FreezeStarted {
                host: "b".into(),
                at: 3,
                pauses_at: 9,
            },
            Entry::Thawed {
                host: "a".into(),
                at: 4,
                valid: true,
            },
        ] {
            journal.append(&entry).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(journal.path())
            .unwrap()
            .write_all(b"{\"event\":\"thaw")
            .unwrap();
        let entries = Journal::read(journal.path()).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(left_frozen(&entries), ["b"]);
    }

    proptest::proptest! {
        #[test]
        fn reading_garbage_never_panics(text in "\\PC{0,200}") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j");
            std::fs::write(&path, text).unwrap();
            let entries = Journal::read(&path).unwrap();
            let _ = left_frozen(&entries);
        }
    }
}
