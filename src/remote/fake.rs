//! A scripted fleet for table tests: each host answers each step the way
//! its script says (an exit status and output, a hang, a lost connection),
//! and every call is recorded, so a test states facts in and checks the
//! commands and outcomes that come out — without root, sshd or a lab.

use crate::inventory::Host;
use crate::output::error::HostError;
use crate::output::event::EventSender;
use crate::remote::transport::{Connector, ExitStatus, Output, Session, Transport, take_line};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How one call is answered.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The script ends with `code`, having printed `stdout` and `stderr`.
    Exit {
        code: u32,
        stdout: String,
        stderr: String,
    },
    /// No answer ever comes (a hung VM, a half-open connection).
    Hang,
    /// The connection drops during the call.
    Lost,
    /// The answer comes after a while.
    After(Duration, Box<Reply>),
}

impl Reply {
    pub fn ok(stdout: &str) -> Reply {
        Reply::Exit {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    pub fn fail(code: u32, stderr: &str) -> Reply {
        Reply::Exit {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

/// How an armed session (the freeze session, a snapshot on the VM) behaves.
#[derive(Debug, Clone)]
pub enum Armed {
    /// Prints `lines` at once, then waits for its input; `finish` is answered
    /// by `then` (the reply to the word it was sent).
    Waits { lines: String, then: Reply },
    /// Ends by itself with `reply`, reading no input.
    Ends(Reply),
    /// Cannot be started.
    Refused,
    /// Takes this long to start, then behaves as the inner one.
    Slow(Duration, Box<Armed>),
}

/// One host's script: replies per step, taken in order; the last one of a
/// step repeats.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Connecting fails with this (e.g. "connection refused").
    pub unreachable: Option<String>,
    pub runs: HashMap<String, VecDeque<Reply>>,
    pub arms: HashMap<String, VecDeque<Armed>>,
}

impl Script {
    /// `step` is answered with `reply` (replacing earlier answers).
    pub fn on_run(mut self, step: &str, reply: Reply) -> Script {
        self.runs.insert(step.into(), VecDeque::from([reply]));
        self
    }

    /// `step` is next answered with `reply`, after the answers already given.
    pub fn then_run(mut self, step: &str, reply: Reply) -> Script {
        self.runs.entry(step.into()).or_default().push_back(reply);
        self
    }

    /// `step`'s sessions behave as `armed` (replacing earlier behaviour).
    pub fn on_arm(mut self, step: &str, armed: Armed) -> Script {
        self.arms.insert(step.into(), VecDeque::from([armed]));
        self
    }

    /// `step`'s next session behaves as `armed`, after those already given.
    pub fn then_arm(mut self, step: &str, armed: Armed) -> Script {
        self.arms.entry(step.into()).or_default().push_back(armed);
        self
    }
}

/// What a host was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub host: String,
    /// The step; `STEP <word` for the input sent to an armed session.
    pub step: String,
    pub args: Vec<String>,
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, Script>,
    calls: Vec<Call>,
}

/// The fleet: a `Connector` whose transports follow the hosts' scripts.
#[derive(Clone, Default)]
pub struct FakeFleet {
    state: Arc<Mutex<State>>,
}

impl FakeFleet {
    pub fn host(&self, name: &str, script: Script) {
        self.lock().scripts.insert(name.into(), script);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls of one host as `step args…` lines (script texts left out).
    pub fn log(&self, host: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.host == host)
            .map(|c| {
                let mut line = c.step;
                for arg in c.args {
                    line.push(' ');
                    line.push_str(&arg);
                }
                line
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, host: &str, step: &str, args: &[&str]) {
        self.lock().calls.push(Call {
            host: host.into(),
            step: step.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
    }

    fn next_run(&self, host: &str, step: &str) -> Reply {
        let mut state = self.lock();
        let queue = state
            .scripts
            .get_mut(host)
            .and_then(|s| s.runs.get_mut(step));
        match queue {
            Some(q) if q.len() > 1 => q.pop_front().expect("len > 1"),
            Some(q) if q.len() == 1 => q[0].clone(),
            _ => Reply::ok(""),
        }
    }

    fn next_arm(&self, host: &str, step: &str) -> Armed {
        let mut state = self.lock();
        let queue = state
            .scripts
            .get_mut(host)
            .and_then(|s| s.arms.get_mut(step));
        match queue {
            Some(q) if q.len() > 1 => q.pop_front().expect("len > 1"),
            Some(q) if q.len() == 1 => q[0].clone(),
            _ => Armed::Ends(Reply::ok("")),
        }
    }
}

impl Connector for FakeFleet {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
        _events: &'a EventSender,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, HostError>> {
        async move {
            self.record(&host.name, "connect", &[]);
            let unreachable = self
                .lock()
                .scripts
                .get(&host.name)
                .and_then(|s| s.unreachable.clone());
            match unreachable {
                Some(reason) => Err(HostError::Connect {
                    target: host.target(),
                    reason,
                }),
                None => Ok(Arc::new(FakeHost {
                    fleet: self.clone(),
                    host: host.name.clone(),
                    target: host.target(),
                }) as Arc<dyn Transport>),
            }
        }
        .boxed()
    }

    fn local(&self) -> Arc<dyn Transport> {
        Arc::new(FakeHost {
            fleet: self.clone(),
            host: "controller".into(),
            target: "controller".into(),
        })
    }
}

struct FakeHost {
    fleet: FakeFleet,
    host: String,
    target: String,
}

impl FakeHost {
    fn lost(&self, step: &str) -> HostError {
        HostError::ConnectionLost {
            target: self.target.clone(),
            step: step.into(),
        }
    }
}

/// Plays a reply: the output, or a hang, or a lost connection.
async fn play(reply: Reply, lost: HostError) -> Result<Output, HostError> {
    let mut reply = reply;
    loop {
        match reply {
            Reply::Exit {
                code,
                stdout,
                stderr,
            } => {
                return Ok(Output {
                    status: ExitStatus::Code(code),
                    stdout: stdout.into_bytes(),
                    stderr: stderr.into_bytes(),
                });
            }
            Reply::Hang => futures::future::pending::<()>().await,
            Reply::Lost => return Err(lost),
            Reply::After(wait, then) => {
                tokio::time::sleep(wait).await;
                reply = *then;
            }
        }
    }
}

impl Transport for FakeHost {
    fn run<'a>(
        &'a self,
        step: &'a str,
        _script: &'a str,
        args: &'a [&'a str],
        _stdin: Option<&'a [u8]>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Output, HostError>> {
        async move {
            self.fleet.record(&self.host, step, args);
            let reply = self.fleet.next_run(&self.host, step);
            match tokio::time::timeout(timeout, play(reply, self.lost(step))).await {
                Ok(result) => result,
                Err(_) => Err(HostError::CommandTimeout {
                    target: self.target.clone(),
                    step: step.into(),
                    after: timeout,
                }),
            }
        }
        .boxed()
    }

    fn arm<'a>(
        &'a self,
        step: &'a str,
        _script: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Box<dyn Session>, HostError>> {
        async move {
            self.fleet.record(&self.host, step, args);
            let lost = self.lost(step);
            let mut armed = self.fleet.next_arm(&self.host, step);
            while let Armed::Slow(wait, inner) = armed {
                tokio::time::sleep(wait).await;
                armed = *inner;
            }
            let (lines, then, waits) = match armed {
                Armed::Slow(..) => unreachable!("unwrapped above"),
                Armed::Refused => return Err(lost),
                Armed::Waits { lines, then } => (lines, Some(then), true),
                Armed::Ends(reply) => (String::new(), Some(reply), false),
            };
            Ok(Box::new(FakeSession {
                fleet: self.fleet.clone(),
                host: self.host.clone(),
                step: step.into(),
                lost,
                stdout: lines.into_bytes(),
                read: 0,
                then,
                waits,
                ended: None,
            }) as Box<dyn Session>)
        }
        .boxed()
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

struct FakeSession {
    fleet: FakeFleet,
    host: String,
    step: String,
    lost: HostError,
    stdout: Vec<u8>,
    read: usize,
    then: Option<Reply>,
    /// Waits for input (`Armed::Waits`) rather than ending by itself.
    waits: bool,
    ended: Option<Result<Output, HostError>>,
}

impl FakeSession {
    /// Ends the session by itself (an `Armed::Ends` script).
    async fn end(&mut self) -> Result<Output, HostError> {
        if let Some(ended) = &self.ended {
            return ended.clone();
        }
        let reply = self.then.take().unwrap_or(Reply::Lost);
        let mut result = play(reply, self.lost.clone()).await;
        if let Ok(out) = &mut result {
            let mut stdout = std::mem::take(&mut self.stdout);
            stdout.extend_from_slice(&out.stdout);
            out.stdout = stdout.clone();
            self.stdout = stdout;
        }
        self.ended = Some(result.clone());
        result
    }
}

impl Session for FakeSession {
    fn read_line<'a>(&'a mut self, prefix: &'a str) -> BoxFuture<'a, Option<String>> {
        async move {
            loop {
                if let Some(line) = take_line(&self.stdout, &mut self.read, prefix) {
                    return Some(line);
                }
                if self.waits || self.ended.is_some() {
                    // Waiting for input: nothing more comes until `finish`.
                    if self.waits {
                        futures::future::pending::<()>().await;
                    }
                    return None;
                }
                let _ = self.end().await;
            }
        }
        .boxed()
    }

    fn wait_end(&mut self) -> BoxFuture<'_, Result<Output, HostError>> {
        async move {
            if self.waits {
                futures::future::pending::<()>().await;
            }
            self.end().await
        }
        .boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        async move {
            let step = format!("{} <eof", self.step);
            self.fleet.record(&self.host, &step, &[]);
        }
        .boxed()
    }

    fn output(&self) -> Output {
        match &self.ended {
            Some(Ok(out)) => out.clone(),
            _ => Output {
                status: ExitStatus::Unknown,
                stdout: self.stdout.clone(),
                stderr: Vec::new(),
            },
        }
    }

    fn finish(
        mut self: Box<Self>,
        input: Vec<u8>,
    ) -> BoxFuture<'static, Result<Output, HostError>> {
        async move {
            let word = String::from_utf8_lossy(&input).trim().to_string();
            let step = format!("{} <{word}", self.step);
            self.fleet.record(&self.host, &step, &[]);
            self.waits = false;
            let read = self.read;
            let mut out = self.end().await?;
            out.stdout.drain(..read.min(out.stdout.len()));
            Ok(out)
        }
        .boxed()
    }
}
