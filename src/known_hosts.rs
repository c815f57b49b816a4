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

    /// Checks `key` offered by `address:port` (inventory host `name`).
    pub fn check(&self, name: &str, address: &str, port: u16, key: &PublicKey) -> Verdict {
        let fingerprint = fingerprint(key);
        let known = if self.known_hosts.exists() {
            russh::keys::check_known_hosts_path(address, port, key, &self.known_hosts)
        } else {
            Ok(false)
        };
        match known {
            Ok(true) => Verdict::Known,
            Ok(false) if self.may_learn(name, address) => {
                let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
                // Another connection to the same address may have learned it meanwhile.
                if let Ok(true) =
                    russh::keys::check_known_hosts_path(address, port, key, &self.known_hosts)
                {
                    return Verdict::Known;
                }
                match russh::keys::known_hosts::learn_known_hosts_path(
                    address,
                    port,
                    key,
                    &self.known_hosts,
                ) {
                    Ok(()) => Verdict::Learned { fingerprint },
                    Err(e) => Verdict::Unreadable {
                        reason: format!("cannot record the new key: {e}"),
                    },
                }
            }
            Ok(false) => Verdict::Unknown { fingerprint },
            Err(russh::keys::Error::KeyChanged { line }) => Verdict::Changed { fingerprint, line },
            Err(e) => Verdict::Unreadable {
                reason: e.to_string(),
            },
        }
    }
}
