//! The controller as a transport: remote scripts run under the local
//! /bin/sh in their own process group (snapshot commands with
//! `on: controller`). Closing a session's input also signals its group:
//! there is no sshd here to end what the script started.

use crate::output::error::HostError;
use crate::remote::transport::{ExitStatus, Output, Session, Transport, take_line};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// How long a closed session's process group has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

pub struct Local {
    pub command_timeout: Duration,
}

impl Local {
    fn spawn(&self, step: &str, script: &str, args: &[&str]) -> Result<LocalSession, HostError> {
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HostError::StepFailed {
                target: "controller".into(),
                step: step.to_string(),
                detail: format!("cannot start /bin/sh: {e}"),
            })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = child.stderr.take().map(|mut pipe| {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            })
        });
        Ok(LocalSession {
            stdin: child.stdin.take(),
            stdout_pipe: child.stdout.take(),
            group: child.id(),
            child,
            stdout: Vec::new(),
            read: 0,
            stderr,
            stderr_task,
            status: None,
        })
    }
}

impl Transport for Local {
    fn run<'a>(
        &'a self,
        step: &'a str,
        script: &'a str,
        args: &'a [&'a str],
        stdin: Option<&'a [u8]>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Output, HostError>> {
        async move {
            let session = Box::new(self.spawn(step, script, args)?);
            let input = stdin.unwrap_or_default().to_vec();
            match tokio::time::timeout(timeout, session.finish(input)).await {
                Ok(result) => result,
                Err(_) => Err(HostError::CommandTimeout {
                    target: "controller".into(),
                    step: step.to_string(),
                    after: timeout,
                }),
            }
        }
        .boxed()
    }

    fn arm<'a>(
        &'a self,
        step: &'a str,
        script: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Box<dyn Session>, HostError>> {
        async move { Ok(Box::new(self.spawn(step, script, args)?) as Box<dyn Session>) }.boxed()
    }

    fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

struct LocalSession {
    child: Child,
    /// Held until the session ends: when the controller dies (even by
    /// SIGKILL), the pipe closes and the script sees end-of-file.
    stdin: Option<ChildStdin>,
    stdout_pipe: Option<ChildStdout>,
    group: Option<u32>,
    stdout: Vec<u8>,
    read: usize,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl LocalSession {
    /// Reads more stdout; false at its end.
    async fn pump(&mut self) -> bool {
        let Some(pipe) = self.stdout_pipe.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 8192];
        match pipe.read(&mut buf).await {
            Ok(n) if n > 0 => {
                self.stdout.extend_from_slice(&buf[..n]);
                true
            }
            _ => {
                self.stdout_pipe = None;
                false
            }
        }
    }

    async fn wait_status(&mut self) -> Result<(), HostError> {
        while self.pump().await {}
        if let Some(task) = self.stderr_task.take() {
            let _ = task.await;
        }
        let status = self.child.wait().await.map_err(|e| HostError::StepFailed {
            target: "controller".into(),
            step: "wait".into(),
            detail: e.to_string(),
        })?;
        use std::os::unix::process::ExitStatusExt;
        self.status = Some(match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code as u32),
            (None, Some(signal)) => ExitStatus::Signal(signal.to_string()),
            _ => ExitStatus::Unknown,
        });
        Ok(())
    }

    fn signal_group(&self, signal: libc::c_int) {
        if let Some(pid) = self.group {
            // SAFETY: killpg only sends a signal to the process group this session started.
            #[allow(unsafe_code)]
            unsafe {
                libc::killpg(pid as libc::pid_t, signal);
            }
        }
    }
}

impl Session for LocalSession {
    fn read_line<'a>(&'a mut self, prefix: &'a str) -> BoxFuture<'a, Option<String>> {
        async move {
            loop {
                if let Some(line) = take_line(&self.stdout, &mut self.read, prefix) {
                    return Some(line);
                }
                if !self.pump().await {
                    return None;
                }
            }
        }
        .boxed()
    }

    fn wait_end(&mut self) -> BoxFuture<'_, Result<Output, HostError>> {
        async move {
            self.wait_status().await?;
            Ok(self.output())
        }
        .boxed()
    }

    /// Ends the input, then SIGTERM to the group (a hypervisor CLI may clean
    /// up) and SIGKILL when it has not ended after a grace period.
    fn close(&mut self) -> BoxFuture<'_, ()> {
        async move {
            self.stdin = None;
            self.signal_group(libc::SIGTERM);
            if tokio::time::timeout(KILL_GRACE, self.wait_status())
                .await
                .is_err()
            {
                self.signal_group(libc::SIGKILL);
            }
        }
        .boxed()
    }

    fn output(&self) -> Output {
        Output {
            status: self.status.clone().unwrap_or(ExitStatus::Unknown),
            stdout: self.stdout.clone(),
            stderr: self
                .stderr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    fn finish(
        mut self: Box<Self>,
        input: Vec<u8>,
    ) -> BoxFuture<'static, Result<Output, HostError>> {
        async move {
            if let Some(mut stdin) = self.stdin.take() {
                // A script that does not read its input is no error.
                let _ = stdin.write_all(&input).await;
            }
            self.wait_status().await?;
            let mut out = self.output();
            out.stdout.drain(..self.read);
            Ok(out)
        }
        .boxed()
    }
}
