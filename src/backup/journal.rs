//! The run journal, `runs/<run-id>/journal.jsonl`: one JSON line per
//! transition, appended and fsync'd before the run moves on, so that
//! `quiesce recover` can finish what a crashed controller left frozen.

use crate::backup::restore_point::RestorePoint;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the wall clock read once, then
/// advanced by the monotonic clock, so a wall-clock step during a run (NTP)
/// cannot move a freeze's deadline; under tokio's paused test clock, the
/// executor's deadlines follow that clock.
pub fn now_ms() -> u64 {
    static ANCHOR: std::sync::OnceLock<(u64, std::time::Instant)> = std::sync::OnceLock::new();
    let (wall, at) = *ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (wall, std::time::Instant::now())
    });
    let now = tokio::time::Instant::now().into_std();
    wall + now.saturating_duration_since(at).as_millis() as u64
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
    /// What the hooks are rendered from, so that `recover` after an upgrade
    /// and redeploy accepts the hook the current quiesce deploys.
    #[serde(default)]
    pub platform: Option<crate::inventory::Platform>,
    #[serde(default)]
    pub instances: Vec<String>,
    #[serde(default)]
    pub freeze_timeout_secs: Option<u64>,
    /// How the instance commands run (so that `recover` reaches them too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iris_container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_engine: Option<crate::inventory::ContainerEngine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iris_user: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refuse_vmware_primary: bool,
    #[serde(
        default,
        skip_serializing_if = "crate::inventory::Framework::is_vmware"
    )]
    pub framework: crate::inventory::Framework,
    /// Bastions, key and known_hosts files: `recover` goes the same way.
    #[serde(default)]
    pub ssh: crate::inventory::reach::SshReach,
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
            platform: Some(host.platform),
            instances: host.instances.clone(),
            freeze_timeout_secs: Some(host.freeze_timeout.as_secs()),
            iris_container: host.iris_container.clone(),
            container_log_dir: host.container_log_dir.clone(),
            container_engine: host.container_engine,
            iris_user: host.iris_user.clone(),
            refuse_vmware_primary: host.refuse_vmware_primary,
            framework: host.framework,
            ssh: host.ssh.clone(),
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
            platform: self.platform.unwrap_or(crate::inventory::Platform::Iris),
            vm: self.vm.clone(),
            instances: self.instances.clone(),
            hook_dir: self.hook_dir.clone(),
            log_dir: self.log_dir.clone(),
            freeze_timeout: self
                .freeze_timeout_secs
                .map(std::time::Duration::from_secs)
                .unwrap_or(crate::inventory::DEFAULT_FREEZE_TIMEOUT),
            groups: Vec::new(),
            mirror: None,
            iris_container: self.iris_container.clone(),
            container_log_dir: self.container_log_dir.clone(),
            container_engine: self.container_engine,
            iris_user: self.iris_user.clone(),
            refuse_vmware_primary: self.refuse_vmware_primary,
            framework: self.framework,
            esxi: None,
            ssh: self.ssh.clone(),
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
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        restore: Vec<RestorePoint>,
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
        /// What the provider made: `recover` names them (orphans to remove).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ids: Vec<String>,
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
    /// The export step after the thaw (snapshot.export).
    ExportFinished {
        host: String,
        at: u64,
        ok: bool,
        detail: String,
    },
    /// A deferred thaw's snapshots became durable (or did not).
    Durable {
        host: String,
        at: u64,
        ok: bool,
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
            | Entry::Recovered { host, .. }
            | Entry::ExportFinished { host, .. }
            | Entry::Durable { host, .. } => Some(host),
            Entry::RunStarted { .. } | Entry::RunFinished { .. } => None,
        }
    }
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    /// A fault injected by the executor's table tests (see `fill_disk_at`).
    full_from: std::sync::OnceLock<String>,
    full: std::sync::atomic::AtomicBool,
}

/// A journal as read back: the entries that parse, and what a crash tore.
#[derive(Debug, Default)]
pub struct JournalText {
    pub entries: Vec<Entry>,
    /// Lines that do not parse (a torn write, an edit).
    pub damaged_lines: usize,
    /// Hosts named in damaged lines: `recover` treats them as possibly frozen.
    pub uncertain_hosts: Vec<String>,
}

impl Journal {
    /// Creates `run_dir` and its journal; both must be new, so that two runs
    /// never share a run directory.
    pub fn create(run_dir: &Path) -> std::io::Result<Journal> {
        if let Some(parent) = run_dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::create_dir(run_dir)?;
        let path = run_dir.join("journal.jsonl");
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        // The new file's name is durable before the first entry counts on it.
        File::open(run_dir)?.sync_all()?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
            full_from: Default::default(),
            full: Default::default(),
        })
    }

    /// Opens an existing journal to append to it (`recover`).
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            full_from: Default::default(),
            full: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fault injection for the executor's table tests: from the first entry
    /// of kind `event` (e.g. `run-finished`) on, every append fails as on a
    /// full disk. A lab cannot time a full disk to one given entry.
    #[doc(hidden)]
    pub fn fill_disk_at(&self, event: &str) {
        let _ = self.full_from.set(event.to_string());
    }

    /// Appends and syncs one entry: when this returns Ok, the entry is on disk.
    /// A torn earlier line (a crash mid-write) is closed first, so that this
    /// entry starts a line of its own.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        if let Some(event) = self.full_from.get() {
            use std::sync::atomic::Ordering;
            if line.starts_with(&format!("{{\"event\":\"{event}\"")) {
                self.full.store(true, Ordering::SeqCst);
            }
            if self.full.load(Ordering::SeqCst) {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let len = file.metadata()?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            let mut reader = File::open(&self.path)?;
            reader.seek(SeekFrom::Start(len - 1))?;
            reader.read_exact(&mut last)?;
            if last[0] != b'\n' {
                line.insert(0, '\n');
            }
        }
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    /// Reads every entry that parses; see `read_text` for what was torn.
    pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
        Ok(Journal::read_text(path)?.entries)
    }

    /// Reads the journal as bytes, line by line: a line torn anywhere (even
    /// inside a UTF-8 character) costs that line only, and the hosts it names
    /// are kept as uncertain.
    pub fn read_text(path: &Path) -> std::io::Result<JournalText> {
        let bytes = std::fs::read(path)?;
        let mut text = JournalText::default();
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Entry>(line) {
                Ok(entry) => text.entries.push(entry),
                Err(_) => {
                    text.damaged_lines += 1;
                    for host in hosts_named(line) {
                        if !text.uncertain_hosts.contains(&host) {
                            text.uncertain_hosts.push(host);
                        }
                    }
                }
            }
        }
        Ok(text)
    }
}

/// Every `"host":"NAME"` in a damaged line.
fn hosts_named(line: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    text.split("\"host\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| !name.is_empty() && name.len() < 256 && !name.contains('\u{fffd}'))
        .map(str::to_string)
        .collect()
}

/// Hosts that may still be frozen, in the order they first appear: any
/// entry about a host opens it (its freeze-started entry may be the torn
/// one), and only `thawed`, `recovered` or `not-frozen` closes it.
pub fn left_frozen(entries: &[Entry]) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    for entry in entries {
        let Some(host) = entry.host() else { continue };
        match entry {
            Entry::Thawed { .. } | Entry::Recovered { .. } | Entry::NotFrozen { .. } => {
                open.retain(|h| h != host)
            }
            _ if !open.iter().any(|h| h == host) => open.push(host.to_string()),
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
        let journal = Journal::create(&dir.path().join("run")).unwrap();
        for entry in [
            Entry::FreezeStarted {
                host: "a".into(),
                at: 1,
                pauses_at: 9,
            },
            Entry::Frozen {
                host: "a".into(),
                at: 2,
                restore: vec![],
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
        // The next append starts a line of its own after the torn one.
        journal
            .append(&Entry::Thawed {
                host: "b".into(),
                at: 5,
                valid: true,
            })
            .unwrap();
        let text = Journal::read_text(journal.path()).unwrap();
        assert_eq!((text.entries.len(), text.damaged_lines), (5, 1));
        assert!(left_frozen(&text.entries).is_empty());
    }

    #[test]
    fn a_run_directory_is_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/r1");
        Journal::create(&run).unwrap();
        assert_eq!(
            Journal::create(&run).err().map(|e| e.kind()),
            Some(std::io::ErrorKind::AlreadyExists)
        );
    }

    #[test]
    fn torn_writes_open_the_hosts_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let started = serde_json::to_string(&Entry::FreezeStarted {
            host: "bé".into(),
            at: 1,
            pauses_at: 9,
        })
        .unwrap();
        let frozen = serde_json::to_string(&Entry::Frozen {
            host: "c".into(),
            at: 2,
            restore: vec![],
        })
        .unwrap();
        // A freeze-started torn and merged with the next entry, and a last
        // line cut inside a UTF-8 character.
        let cut = started.find('é').unwrap() + 1;
        let mut bytes = started.as_bytes()[..20].to_vec();
        bytes.extend_from_slice(frozen.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(&started.as_bytes()[..cut]);
        std::fs::write(&path, &bytes).unwrap();
        let text = Journal::read_text(&path).unwrap();
        assert_eq!(text.entries.len(), 0);
        assert_eq!(text.damaged_lines, 2);
        assert_eq!(text.uncertain_hosts, ["c"]);
        // Any entry opens its host, even without a freeze-started.
        assert_eq!(
            left_frozen(&[Entry::SnapshotStarted {
                host: "x".into(),
                at: 1
            }]),
            ["x"]
        );
    }

    proptest::proptest! {
        #[test]
        fn reading_garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j");
            std::fs::write(&path, bytes).unwrap();
            let text = Journal::read_text(&path).unwrap();
            let _ = left_frozen(&text.entries);
        }
    }
}
