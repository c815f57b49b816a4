//! Host-key checking against known_hosts: known keys pass, unknown keys are
//! refused unless the user named the host in `--accept-new`, changed keys never pass.

use russh::keys::{HashAlg, PublicKey};
use std::path::PathBuf;
use std::sync::Mutex;

/// Which hosts may have a new key recorded (OpenSSH's `accept-new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptNew {
    Never,
    AnyHost,
    Hosts(Vec<String>),
}

#[derive(Debug)]
pub struct HostKeyPolicy {
    pub known_hosts: PathBuf,
    pub accept_new: AcceptNew,
    /// Serialises appends to known_hosts from concurrent connections.
    write_lock: Mutex<()>,
}

/// What the check decided, kept for the error message when it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Learned { fingerprint: String },
    Unknown { fingerprint: String },
    Changed { fingerprint: String, line: usize },
    Unreadable { reason: String },
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Known | Verdict::Learned { .. })
    }
}

pub fn fingerprint(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

impl HostKeyPolicy {
    pub fn new(known_hosts: PathBuf, accept_new: AcceptNew) -> HostKeyPolicy {
        HostKeyPolicy {
            known_hosts,
            accept_new,
            write_lock: Mutex::new(()),
        }
    }

    fn may_learn(&self, name: &str, address: &str) -> bool {
        match &self.accept_new {
            AcceptNew::Never => false,
            AcceptNew::AnyHost => true,
            AcceptNew::Hosts(names) => names.iter().any(|n| n == name || n == address),
        }
    }

    /// Checks `key` offered by `address:port` (inventory host `name`). Any
    /// recorded key for the host that is not this one, whatever its algorithm,
    /// counts as a changed key: OpenSSH's accept-new would not add a second one.
    pub fn check(&self, name: &str, address: &str, port: u16, key: &PublicKey) -> Verdict {
        let fingerprint = fingerprint(key);
        match self.recorded(address, port, key) {
            Ok(Recorded::Match) => Verdict::Known,
            Ok(Recorded::Other { line }) => Verdict::Changed { fingerprint, line },
            Ok(Recorded::Nothing) if self.may_learn(name, address) => {
                let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
                // Another connection to the same address may have recorded it meanwhile.
                if let Ok(Recorded::Match) = self.recorded(address, port, key) {
                    return Verdict::Known;
                }
                match self.append(address, port, key) {
                    Ok(()) => Verdict::Learned { fingerprint },
                    Err(e) => Verdict::Unreadable {
                        reason: format!("cannot record the new key: {e}"),
                    },
                }
            }
            Ok(Recorded::Nothing) => Verdict::Unknown { fingerprint },
            Err(reason) => Verdict::Unreadable { reason },
        }
    }

    /// Appends `HOST KEY` (or `[HOST]:PORT KEY`) as OpenSSH writes it, flushed to disk.
    fn append(&self, address: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(dir) = self
            .known_hosts
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        let existing = std::fs::read(&self.known_hosts).unwrap_or_default();
        let separator = if existing.is_empty() || existing.ends_with(b"\n") {
            ""
        } else {
            "\n"
        };
        let host = if port == 22 {
            address.to_string()
        } else {
            format!("[{address}]:{port}")
        };
        let key = key
            .to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.known_hosts)?;
        file.write_all(format!("{separator}{host} {key}\n").as_bytes())?;
        file.sync_all()
    }

    fn recorded(&self, address: &str, port: u16, key: &PublicKey) -> Result<Recorded, String> {
        if !self.known_hosts.exists() {
            return Ok(Recorded::Nothing);
        }
        let entries =
            russh::keys::known_hosts::known_host_keys_path(address, port, &self.known_hosts)
                .map_err(|e| e.to_string())?;
        if entries
            .iter()
            .any(|(_, recorded)| recorded.key_data() == key.key_data())
        {
            return Ok(Recorded::Match);
        }
        match entries.first() {
            None => Ok(Recorded::Nothing),
            Some((counted, _)) => Ok(Recorded::Other {
                line: self.physical_line(*counted),
            }),
        }
    }

    /// russh numbers known_hosts lines without counting `#` comment lines;
    /// messages name the line as an editor shows it.
    fn physical_line(&self, counted: usize) -> usize {
        let text = std::fs::read_to_string(&self.known_hosts).unwrap_or_default();
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.starts_with('#'))
            .nth(counted.saturating_sub(1))
            .map(|(i, _)| i + 1)
            .unwrap_or(counted)
    }
}

enum Recorded {
    Match,
    Other { line: usize },
    Nothing,
}
