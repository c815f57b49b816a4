//! The seam between what quiesce decides and how it reaches a machine: a
//! `Transport` runs a remote script to its end (`run`) or starts one and
//! leaves it waiting for its input (`arm`, the armed thaw of a freeze
//! session). Three implementations: SSH (`ssh.rs`), the controller itself
//! (`local.rs`, for snapshot commands run there) and a scripted fake
//! (`fake.rs`) that lets the executor's decisions be tested without sshd.

use crate::inventory::Host;
use crate::output::error::HostError;
use crate::output::event::EventSender;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// How a remote command ended when the connection held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(u32),
    Signal(String),
    /// The channel closed without a status (e.g. sshd killed the session).
    Unknown,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0)
    }

    pub fn code(&self) -> Option<u32> {
        match self.status {
            ExitStatus::Code(c) => Some(c),
            _ => None,
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Every non-empty stderr line, joined with `; ` (at most 400 characters).
    pub fn stderr_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let joined = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match joined.char_indices().nth(400) {
            Some((cut, _)) => format!("{}…", &joined[..cut]),
            None => joined,
        }
    }

    pub fn describe(&self) -> String {
        let status = match &self.status {
            ExitStatus::Code(c) => format!("exit status {c}"),
            ExitStatus::Signal(s) => format!("killed by signal {s}"),
            ExitStatus::Unknown => "no exit status".to_string(),
        };
        match self.stderr_line() {
            line if line.is_empty() => status,
            line => format!("{status}: {line}"),
        }
    }
}

/// One remote script run: `step` names it in errors and events ("freeze",
/// "thaw", "preflight", "snapshot", "probe", …); `script` runs under
/// /bin/sh with `args` as its positional parameters, never through a
/// command line built from them.
pub trait Transport: Send + Sync {
    /// Runs the script to its end; a timeout or a lost connection is an
    /// error, any exit status an `Output`.
    fn run<'a>(
        &'a self,
        step: &'a str,
        script: &'a str,
        args: &'a [&'a str],
        stdin: Option<&'a [u8]>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Output, HostError>>;

    /// Starts the script now and leaves it waiting for its input.
    fn arm<'a>(
        &'a self,
        step: &'a str,
        script: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Box<dyn Session>, HostError>>;

    /// The default time limit of `run` for this host.
    fn command_timeout(&self) -> Duration;

    /// Ends the connection politely (a no-op where there is none).
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// A command started by `arm`, waiting for its standard input. Dropping it
/// ends its input, which the command sees as end-of-file.
pub trait Session: Send {
    /// The next complete stdout line that starts with `prefix` (earlier lines
    /// stay in the output); None when the command ended first.
    fn read_line<'a>(&'a mut self, prefix: &'a str) -> BoxFuture<'a, Option<String>>;

    /// Waits for the command to end by itself, sending no input.
    fn wait_end(&mut self) -> BoxFuture<'_, Result<Output, HostError>>;

    /// Ends the command's input without waiting for its answer.
    fn close(&mut self) -> BoxFuture<'_, ()>;

    /// What the command printed so far, and how it ended if it has.
    fn output(&self) -> Output;

    /// Sends `input` then end-of-file, and collects what came after the last
    /// line `read_line` returned, and the exit status.
    fn finish(self: Box<Self>, input: Vec<u8>) -> BoxFuture<'static, Result<Output, HostError>>;
}

/// Opens the transport to one host (checking its host key, logging in),
/// and gives the controller's own for commands that run there.
pub trait Connector: Send + Sync {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
        events: &'a EventSender,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, HostError>>;

    /// The controller itself (snapshot commands with `on: controller`).
    fn local(&self) -> Arc<dyn Transport>;
}

impl dyn Transport + '_ {
    /// `run` within the transport's default time limit.
    pub async fn run_script(
        &self,
        step: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Output, HostError> {
        self.run(step, script, args, stdin, self.command_timeout())
            .await
    }
}

/// The next complete line of `buffer` after `read` that starts with
/// `prefix`; lines before it are passed over (they stay in the output).
/// `read` moves past every complete line looked at.
pub fn take_line(buffer: &[u8], read: &mut usize, prefix: &str) -> Option<String> {
    while let Some(end) = buffer[*read..].iter().position(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(&buffer[*read..*read + end]).into_owned();
        *read += end + 1;
        if line.starts_with(prefix) {
            return Some(line);
        }
    }
    None
}
