//! Every error quiesce reports, and the one place where their messages are
//! worded: what went wrong, where (host, or file:line:column), what to do.

use crate::output::exit_code;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A 1-based line and column in a source file: the "where" of an input error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// An error that stops a whole command.
#[derive(Debug)]
pub enum Error {
    /// Bad input in an inventory or playbook file.
    Input {
        file: PathBuf,
        pos: Pos,
        message: String,
        hint: String,
    },
    /// A file quiesce needs could not be read or written.
    File {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// `--limit` selected nothing.
    LimitMatchesNothing { pattern: String, known: String },
    /// A bad command-line value that clap could not check.
    Usage { message: String, hint: String },
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. } | Error::LimitMatchesNothing { .. } | Error::Usage { .. } => {
                exit_code::USAGE
            }
            Error::File { .. } => exit_code::FAILED,
            Error::Interrupted => exit_code::INTERRUPTED,
        }
    }

    pub fn input(
        file: &std::path::Path,
        pos: Pos,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Input {
            file: file.to_path_buf(),
            pos,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input {
                file,
                pos,
                message,
                hint,
            } => {
                write!(
                    f,
                    "{}:{}:{}: {message}\n  hint: {hint}",
                    file.display(),
                    pos.line,
                    pos.column
                )
            }
            Error::File {
                path,
                action,
                source,
            } => {
                write!(
                    f,
                    "cannot {action} {}: {source}\n  hint: check that the path exists and that this user has permission",
                    path.display()
                )
            }
            Error::LimitMatchesNothing { pattern, known } => write!(
                f,
                "--limit {pattern:?} matches no host, group or mirror of the inventory\n  hint: use names from `quiesce hosts` or a glob such as 'db-*'; known: {known}"
            ),
            Error::Usage { message, hint } => write!(f, "{message}\n  hint: {hint}"),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}

/// Why one host could not be worked on. The host's name and address are part
/// of every message, so a line of output stands on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    Connect {
        target: String,
        reason: String,
    },
    ConnectTimeout {
        target: String,
        after: Duration,
    },
    UnknownHostKey {
        target: String,
        fingerprint: String,
        known_hosts: PathBuf,
        host: String,
    },
    ChangedHostKey {
        target: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    /// The offered key is on an `@revoked` line.
    RevokedHostKey {
        target: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    /// No key for the host, and a line that could be for it cannot be evaluated.
    UnevaluableHostKey {
        target: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    KnownHostsUnreadable {
        target: String,
        known_hosts: PathBuf,
        reason: String,
    },
    Auth {
        target: String,
        user: String,
        tried: String,
    },
    SudoNeedsPassword {
        target: String,
        user: String,
    },
    CommandTimeout {
        target: String,
        step: String,
        after: Duration,
    },
    ConnectionLost {
        target: String,
        step: String,
    },
    /// sshd refused to open one more session on the connection.
    ChannelRefused {
        target: String,
        step: String,
        reason: String,
    },
    StepFailed {
        target: String,
        step: String,
        detail: String,
    },
    /// The host sent more than the command's limit: it was ended there.
    OutputTooLarge {
        target: String,
        step: String,
        limit: usize,
    },
    /// A hook on the host is not what quiesce deployed: it was not run.
    HookChanged {
        target: String,
        path: String,
        /// Which check failed and what was found.
        why: String,
    },
    Interrupted {
        target: String,
    },
    /// The host is behind a bastion that could not be used.
    Bastion {
        target: String,
        /// `bastion NAME (address:port)`.
        bastion: String,
        /// Why, as that bastion's own error says it.
        reason: String,
    },
    /// An Ansible host reached by a connection other than SSH.
    NotSsh {
        target: String,
        connection: String,
    },
}

impl HostError {
    /// True when the host was never reached (as opposed to a failure on it).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            HostError::Connect { .. }
                | HostError::ConnectTimeout { .. }
                | HostError::UnknownHostKey { .. }
                | HostError::ChangedHostKey { .. }
                | HostError::RevokedHostKey { .. }
                | HostError::UnevaluableHostKey { .. }
                | HostError::KnownHostsUnreadable { .. }
                | HostError::Auth { .. }
                | HostError::Bastion { .. }
                | HostError::NotSsh { .. }
        )
    }

    /// A short machine-readable kind, for JSON and JUnit.
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Connect { .. } => "connect",
            HostError::ConnectTimeout { .. } => "connect-timeout",
            HostError::UnknownHostKey { .. } => "unknown-host-key",
            HostError::ChangedHostKey { .. } => "changed-host-key",
            HostError::RevokedHostKey { .. } => "revoked-host-key",
            HostError::UnevaluableHostKey { .. } => "unevaluable-host-key",
            HostError::KnownHostsUnreadable { .. } => "known-hosts",
            HostError::Auth { .. } => "auth",
            HostError::SudoNeedsPassword { .. } => "sudo-password",
            HostError::CommandTimeout { .. } => "command-timeout",
            HostError::ConnectionLost { .. } => "connection-lost",
            HostError::ChannelRefused { .. } => "channel-refused",
            HostError::StepFailed { .. } => "step-failed",
            HostError::OutputTooLarge { .. } => "output-too-large",
            HostError::HookChanged { .. } => "hook-changed",
            HostError::Interrupted { .. } => "interrupted",
            HostError::Bastion { .. } => "bastion",
            HostError::NotSsh { .. } => "not-ssh",
        }
    }
}

/// A byte count as people read it: `4 MiB`, `1000000 bytes`.
fn size_text(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Connect { target, reason } => write!(
                f,
                "{target}: cannot connect: {reason}\n  hint: check that the VM is up, sshd runs and the address and port in the inventory are right"
            ),
            HostError::ConnectTimeout { target, after } => write!(
                f,
                "{target}: no SSH answer within {}\n  hint: the VM may be down, stunned or firewalled; raise --connect-timeout for slow links",
                crate::output::duration::format(*after)
            ),
            HostError::UnknownHostKey {
                target,
                fingerprint,
                known_hosts,
                host,
            } => write!(
                f,
                "{target}: host key {fingerprint} is not in {}\n  hint: compare the fingerprint with the VM's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run again with --accept-new={host} to record it",
                known_hosts.display()
            ),
            HostError::ChangedHostKey {
                target,
                fingerprint,
                known_hosts,
                line,
            } => write!(
                f,
                "{target}: HOST KEY CHANGED: the server offers {fingerprint}, {}:{line} records another key; refusing to connect\n  hint: this can be an attack; if the VM was really rebuilt, remove line {line} of {} and accept the new key by name",
                known_hosts.display(),
                known_hosts.display()
            ),
            HostError::RevokedHostKey {
                target,
                fingerprint,
                known_hosts,
                line,
            } => write!(
                f,
                "{target}: host key {fingerprint} is REVOKED ({}:{line} marks it @revoked); refusing to connect\n  hint: a revoked key is never accepted, --accept-new neither; give the VM a new host key and record that one",
                known_hosts.display()
            ),
            HostError::UnevaluableHostKey {
                target,
                fingerprint,
                known_hosts,
                line,
            } => write!(
                f,
                "{target}: host key {fingerprint} is not in {}, and line {line} could be for this host but quiesce cannot evaluate it (a @cert-authority line or a key type it does not read); refusing to learn the key\n  hint: record the host's own key in {} (ssh-keyscan, checked against the VM's fingerprint)",
                known_hosts.display(),
                known_hosts.display()
            ),
            HostError::KnownHostsUnreadable {
                target,
                known_hosts,
                reason,
            } => write!(
                f,
                "{target}: cannot use {}: {reason}\n  hint: pass a readable file with --known-hosts",
                known_hosts.display()
            ),
            HostError::Auth {
                target,
                user,
                tried,
            } => write!(
                f,
                "{target}: login as {user} refused (tried: {tried})\n  hint: check `user` and `identity_file` in the inventory, the key in the VM's authorized_keys, or load the key into ssh-agent"
            ),
            HostError::SudoNeedsPassword { target, user } => write!(
                f,
                "{target}: sudo asks {user} for a password\n  hint: quiesce runs `sudo -n`; give {user} NOPASSWD rights for /bin/sh in sudoers, or connect as root"
            ),
            HostError::CommandTimeout {
                target,
                step,
                after,
            } => write!(
                f,
                "{target}: {step} did not finish within {}\n  hint: the VM may be stunned or overloaded; raise --command-timeout if it is just slow",
                crate::output::duration::format(*after)
            ),
            HostError::ConnectionLost { target, step } => write!(
                f,
                "{target}: connection lost during {step}\n  hint: check the VM and its sshd, then run the command again"
            ),
            HostError::ChannelRefused {
                target,
                step,
                reason,
            } => write!(
                f,
                "{target}: sshd refused a new session for {step} ({reason}): it allows fewer sessions per connection than quiesce holds at once (sshd_config MaxSessions)\n  hint: a backup keeps the freeze session open beside the snapshot and the thaw, so set MaxSessions 3 or more on the VM (OpenSSH's default is 10) and reload sshd, or take the snapshot from the controller (snapshot.on: controller)"
            ),
            HostError::StepFailed {
                target,
                step,
                detail,
            } => write!(f, "{target}: {step} failed: {detail}"),
            HostError::OutputTooLarge {
                target,
                step,
                limit,
            } => write!(
                f,
                "{target}: {step} sent more than {} of output, so quiesce stopped reading it and ended the command\n  hint: find what prints without end on the VM: a login shell's rc file (~/.bashrc, /etc/profile.d), or a tool that ignores its arguments; `ssh HOST true | wc -c` shows what the shell alone prints",
                size_text(*limit)
            ),
            HostError::HookChanged { target, path, why } => write!(
                f,
                "{target}: {path} no longer matches what quiesce deployed, so it was not run ({why})\n  hint: someone changed it; see how with `quiesce deploy --check --diff`, redeploy with `quiesce deploy`, then thaw with `quiesce recover RUN`"
            ),
            HostError::Interrupted { target } => {
                write!(f, "{target}: interrupted before it finished")
            }
            HostError::Bastion {
                target,
                bastion,
                reason,
            } => {
                // The bastion's own error, and its own hint first (a host key
                // to accept by name, a login to fix).
                let mut lines = reason.lines();
                let why = lines.next().unwrap_or_default();
                let hint = lines
                    .find_map(|l| l.trim_start().strip_prefix("hint: "))
                    .map(|h| format!("{h}; "))
                    .unwrap_or_default();
                write!(
                    f,
                    "{target}: unreachable through {bastion}: {why}\n  hint: {hint}every host behind this bastion is unreachable until it answers (`quiesce hosts` shows which go through it)"
                )
            }
            HostError::NotSsh { target, connection } => write!(
                f,
                "{target}: the inventory reaches it with ansible_connection {connection}; quiesce connects over SSH only\n  hint: give it an SSH address (ansible_host) and ansible_connection: ssh, or leave it out with --limit '!NAME'"
            ),
        }
    }
}
