//! Host-key checking against known_hosts: known keys pass, unknown keys are
//! refused unless the user named the host in `--accept-new`, changed keys never pass.

use crate::remote::known_hosts_file::{
    Decision, Line, authorities_for, decide, parse_file, revoked,
};
use russh::keys::{HashAlg, PublicKey};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A file's length and modification time (None: missing), as last parsed.
type Stamp = Option<(u64, Option<std::time::SystemTime>)>;

/// The parsed lines of each set of known_hosts files, with the stamps they
/// were read at.
type Parsed = std::collections::HashMap<Vec<PathBuf>, (Vec<Stamp>, Arc<Vec<Line>>)>;
static PARSED: std::sync::LazyLock<Mutex<Parsed>> = std::sync::LazyLock::new(Default::default);

/// Which hosts may have a new key recorded (OpenSSH's `accept-new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptNew {
    Never,
    AnyHost,
    Hosts(Vec<String>),
}

#[derive(Debug)]
pub struct HostKeyPolicy {
    /// The user's file: read, and where learned keys are written.
    pub known_hosts: PathBuf,
    /// The user's other files (ssh_config's UserKnownHostsFile after the
    /// first): read, never written.
    pub more_known_hosts: Vec<PathBuf>,
    /// Read too, never written (OpenSSH's GlobalKnownHostsFile).
    pub global_known_hosts: Vec<PathBuf>,
    pub accept_new: AcceptNew,
    /// Serialises appends to known_hosts from concurrent connections (shared
    /// by the per-host policies made from this one).
    write_lock: Arc<Mutex<()>>,
}

/// What the check decided, kept for the error message when it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Learned {
        fingerprint: String,
    },
    Unknown {
        fingerprint: String,
    },
    Changed {
        fingerprint: String,
        /// The file the line is in.
        file: PathBuf,
        line: usize,
    },
    /// An `@revoked` line holds this key: refused always, even with --accept-new.
    Revoked {
        fingerprint: String,
        /// The file the line is in.
        file: PathBuf,
        line: usize,
    },
    /// Unknown, and a line that could be for the host cannot be evaluated:
    /// --accept-new learns nothing past it.
    Unevaluable {
        fingerprint: String,
        /// The file the line is in.
        file: PathBuf,
        line: usize,
    },
    Unreadable {
        reason: String,
    },
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
            more_known_hosts: Vec::new(),
            global_known_hosts: Vec::new(),
            accept_new,
            write_lock: Arc::new(Mutex::new(())),
        }
    }

    /// This policy with a host's own files (ssh_config's UserKnownHostsFile,
    /// GlobalKnownHostsFile) or its own `accept-new`.
    pub fn with_files(
        &self,
        user: Option<Vec<PathBuf>>,
        global: Option<Vec<PathBuf>>,
        accept_new: Option<AcceptNew>,
    ) -> HostKeyPolicy {
        let (known_hosts, more_known_hosts) = match user {
            Some(files) if !files.is_empty() => (files[0].clone(), files[1..].to_vec()),
            _ => (self.known_hosts.clone(), self.more_known_hosts.clone()),
        };
        HostKeyPolicy {
            known_hosts,
            more_known_hosts,
            global_known_hosts: global.unwrap_or_else(|| self.global_known_hosts.clone()),
            accept_new: accept_new.unwrap_or_else(|| self.accept_new.clone()),
            write_lock: self.write_lock.clone(),
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
        self.check_in(self.lines(), name, address, port, key)
    }

    /// `check` against the files' lines, already read.
    fn check_in(
        &self,
        lines: Result<Arc<Vec<Line>>, String>,
        name: &str,
        address: &str,
        port: u16,
        key: &PublicKey,
    ) -> Verdict {
        let fingerprint = fingerprint(key);
        match lines.map(|lines| decide(&lines, address, port, key)) {
            Ok(Decision::Known) => Verdict::Known,
            Ok(Decision::Changed { file, line }) => Verdict::Changed {
                fingerprint,
                file,
                line,
            },
            Ok(Decision::Revoked { file, line }) => Verdict::Revoked {
                fingerprint,
                file,
                line,
            },
            Ok(Decision::Unevaluable { file, line }) => Verdict::Unevaluable {
                fingerprint,
                file,
                line,
            },
            Ok(Decision::Nothing) if self.may_learn(name, address) => {
                let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
                // Another connection to the same address may have recorded it meanwhile.
                if let Ok(Decision::Known) = self.recorded(address, port, key) {
                    return Verdict::Known;
                }
                match self.append(address, port, key) {
                    Ok(()) => Verdict::Learned { fingerprint },
                    Err(e) => Verdict::Unreadable {
                        reason: format!("cannot record the new key: {e}"),
                    },
                }
            }
            Ok(Decision::Nothing) => Verdict::Unknown { fingerprint },
            Err(reason) => Verdict::Unreadable { reason },
        }
    }

    /// Whether an `@cert-authority` line is for `address:port`.
    pub fn has_authority_for(&self, address: &str, port: u16) -> bool {
        !authorities_for(&self.lines().unwrap_or_default(), address, port).is_empty()
    }

    /// Checks a host certificate: signed by a CA an `@cert-authority` line
    /// trusts for the host, in its validity period, a host certificate naming
    /// the host; neither the CA's key nor the host's revoked. Without a CA
    /// line for the host, the certificate's plain key is checked instead.
    pub fn check_certificate(
        &self,
        name: &str,
        address: &str,
        port: u16,
        cert: &russh::keys::Certificate,
    ) -> Verdict {
        let key = PublicKey::from(cert.public_key().clone());
        let fingerprint = fingerprint(&key);
        let lines = match self.lines() {
            Ok(lines) => lines,
            Err(reason) => return Verdict::Unreadable { reason },
        };
        if authorities_for(&lines, address, port).is_empty() {
            return self.check_in(Ok(lines), name, address, port, &key);
        }
        let authorities = authorities_for(&lines, address, port);
        let ca_key = PublicKey::from(cert.signature_key().clone());
        if let Some(line) = revoked(&lines, &key).or_else(|| revoked(&lines, &ca_key)) {
            return Verdict::Revoked {
                fingerprint,
                file: line.file.clone(),
                line: line.number,
            };
        }
        let trusted: Vec<russh::keys::ssh_key::Fingerprint> = authorities
            .iter()
            .filter_map(|l| l.key.as_ref())
            .map(|k| k.fingerprint(HashAlg::Sha256))
            .collect();
        let principals = cert.valid_principals();
        let names_host =
            principals.is_empty() || principals.iter().any(|p| p.eq_ignore_ascii_case(address));
        if cert.cert_type().is_host() && names_host && cert.validate(trusted.iter()).is_ok() {
            Verdict::Known
        } else {
            Verdict::Changed {
                fingerprint: format!(
                    "{fingerprint} (a host certificate the trusted CA did not sign for {address}, or out of date)"
                ),
                file: authorities[0].file.clone(),
                line: authorities[0].number,
            }
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
        // Never through a link planted where known_hosts should be, nor into
        // anything but one plain file (a hard link would write elsewhere too).
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.known_hosts)?;
        let meta = file.metadata()?;
        if !meta.is_file() || meta.nlink() != 1 {
            return Err(std::io::Error::other(format!(
                "{} is not one plain file (a device, a FIFO or a hard link): not written",
                self.known_hosts.display()
            )));
        }
        file.write_all(format!("{separator}{host} {key}\n").as_bytes())?;
        file.sync_all()
    }

    /// Every line of the user file and the global ones, as OpenSSH reads
    /// them together (a missing file holds nothing). Parsed once per set of
    /// files and kept while no file's length or time changes, so that a
    /// fleet's checks do not parse its known_hosts once per host (O(n²)),
    /// and a key another connection just recorded is still seen.
    fn lines(&self) -> Result<Arc<Vec<Line>>, String> {
        let files: Vec<&PathBuf> = std::iter::once(&self.known_hosts)
            .chain(&self.more_known_hosts)
            .chain(&self.global_known_hosts)
            .collect();
        let mut stamps = Vec::with_capacity(files.len());
        for file in &files {
            stamps.push(match std::fs::metadata(file) {
                Ok(m) => Some((m.len(), m.modified().ok())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(format!("{}: {e}", file.display())),
            });
        }
        let key: Vec<PathBuf> = files.iter().map(|f| (*f).clone()).collect();
        let mut cache = PARSED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, lines)) = cache.get(&key)
            && *seen == stamps
        {
            return Ok(lines.clone());
        }
        let mut lines = Vec::new();
        for file in &files {
            match std::fs::read(file) {
                Ok(bytes) => lines.extend(parse_file(file, &String::from_utf8_lossy(&bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", file.display())),
            }
        }
        let lines = Arc::new(lines);
        cache.insert(key, (stamps, lines.clone()));
        Ok(lines)
    }

    /// What the files say of `key` for `address:port`, as OpenSSH decides it.
    fn recorded(&self, address: &str, port: u16, key: &PublicKey) -> Result<Decision, String> {
        Ok(decide(&self.lines()?, address, port, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTfLdEhh35WzIQsvKC9qW0SdXSJ93etOShtXg6GaxKQ";

    /// A key accepted by name is appended to known_hosts itself, never
    /// through a link or a hard link planted in its place.
    #[test]
    fn a_new_key_is_never_written_through_a_planted_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = PublicKey::from_openssh(KEY).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("known_hosts");
        let policy = HostKeyPolicy::new(path.clone(), AcceptNew::AnyHost);

        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(policy.append("10.0.0.1", 22, &key).is_err());
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&victim, &path).unwrap();
        assert!(policy.append("10.0.0.1", 22, &key).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

        std::fs::remove_file(&path).unwrap();
        policy.append("10.0.0.1", 2222, &key).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("[10.0.0.1]:2222 {KEY}\n")
        );
    }
}
