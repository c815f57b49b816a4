//! One SSH connection per host (russh): connect with a timeout, check the host
//! key, log in (agent or key files), and run commands as typed outcomes.

use crate::inventory::Host;
use crate::inventory::reach::JumpHost;
use crate::output::error::HostError;
use crate::remote::framing::Framing;
use crate::remote::known_hosts::{AcceptNew, HostKeyPolicy, Verdict};
use crate::remote::shell;
use crate::remote::transport::{ExitStatus, Output, Session, Transport, take_line};
use futures::FutureExt;
use futures::future::BoxFuture;
use russh::ChannelMsg;
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connection settings shared by every host of a run.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub policy: Arc<HostKeyPolicy>,
    pub use_agent: bool,
    /// Given on the command line: wins over ssh_config (as `ssh -o`).
    pub connect_timeout_given: bool,
    pub known_hosts_given: bool,
    pub global_known_hosts_given: bool,
    /// The bastions' connections, shared by every host behind them.
    pub jumps: Arc<JumpPool>,
}

impl SshOptions {
    /// Options where nothing is given on the command line but these.
    pub fn new(
        connect_timeout: Duration,
        command_timeout: Duration,
        policy: Arc<HostKeyPolicy>,
        use_agent: bool,
    ) -> SshOptions {
        SshOptions {
            connect_timeout,
            command_timeout,
            policy,
            use_agent,
            connect_timeout_given: false,
            known_hosts_given: false,
            global_known_hosts_given: false,
            jumps: Arc::default(),
        }
    }

    /// The host-key policy for a host or bastion whose ssh_config names its
    /// own known_hosts files or `accept-new` (the command line still wins).
    fn policy_for(
        &self,
        name: &str,
        known_hosts: Option<&Vec<PathBuf>>,
        global: Option<&Vec<PathBuf>>,
        accept_new: bool,
    ) -> Arc<HostKeyPolicy> {
        let user = known_hosts.filter(|f| !self.known_hosts_given && !f.is_empty());
        let global = global.filter(|_| !self.global_known_hosts_given);
        let learn = accept_new && self.policy.accept_new == AcceptNew::Never;
        if user.is_none() && global.is_none() && !learn {
            return self.policy.clone();
        }
        Arc::new(self.policy.with_files(
            user.cloned(),
            global.cloned(),
            learn.then(|| AcceptNew::Hosts(vec![name.to_string()])),
        ))
    }

    fn connect_timeout_for(&self, configured: Option<u64>) -> Duration {
        match configured {
            Some(secs) if !self.connect_timeout_given => Duration::from_secs(secs),
            _ => self.connect_timeout,
        }
    }
}

/// A bastion's connection (or why there is none) and when it was settled.
type Shared = Arc<
    tokio::sync::OnceCell<(
        Result<Arc<client::Handle<Client>>, HostError>,
        std::time::Instant,
    )>,
>;

/// One connection per bastion chain (`[b1]`, `[b1, b2]`, ...), opened once
/// and shared. A bastion that could not be reached is remembered for one
/// connect time limit, so every host behind it fails at once with the
/// bastion named, not after N timeouts; after that, and whenever the
/// connection has closed (a network split), the next host tries again, so
/// a thaw retried later in a run is not refused by an old failure.
#[derive(Default)]
pub struct JumpPool {
    chains: Mutex<std::collections::HashMap<Vec<JumpHost>, Shared>>,
}

impl std::fmt::Debug for JumpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JumpPool")
    }
}

impl JumpPool {
    /// The connection to the last bastion of `chain`, through the others.
    fn through<'a>(
        &'a self,
        chain: &'a [JumpHost],
        for_host: &'a Host,
        options: &'a SshOptions,
    ) -> BoxFuture<'a, Result<Arc<client::Handle<Client>>, HostError>> {
        async move {
            let cell = {
                let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
                let entry = chains.entry(chain.to_vec()).or_default();
                let stale = match entry.get() {
                    Some((Ok(handle), _)) => handle.is_closed(),
                    Some((Err(_), at)) => at.elapsed() >= options.connect_timeout,
                    None => false,
                };
                if stale {
                    *entry = Shared::default();
                }
                entry.clone()
            };
            cell.get_or_init(|| async {
                let (hop, before) = chain.split_last().expect("a chain has a bastion");
                let via = if before.is_empty() {
                    None
                } else {
                    match self.through(before, for_host, options).await {
                        Ok(handle) => Some(handle),
                        Err(e) => return (Err(e), std::time::Instant::now()),
                    }
                };
                let mut keys: Vec<PathBuf> = hop.identity_files.clone();
                if keys.is_empty() {
                    keys = candidate_keys(for_host);
                }
                let endpoint = Endpoint {
                    name: &hop.name,
                    target: hop.target(),
                    address: &hop.address,
                    port: hop.port,
                    user: &hop.user,
                    keys,
                    use_agent: options.use_agent && !for_host.ssh.identities_only,
                    policy: options.policy_for(
                        &hop.name,
                        hop.known_hosts.as_ref(),
                        None,
                        hop.accept_new,
                    ),
                    connect_timeout: options.connect_timeout,
                    keepalive: (Some(Duration::from_secs(5)), 3),
                };
                let opened = endpoint
                    .open(via.as_deref())
                    .await
                    .map(|(handle, _)| Arc::new(handle))
                    .map_err(|e| {
                        // The bastion's error without its name, which leads ours.
                        let reason = e.to_string();
                        let prefix = format!("{}: ", hop.target());
                        HostError::Bastion {
                            target: String::new(),
                            bastion: hop.target(),
                            reason: reason.strip_prefix(&prefix).unwrap_or(&reason).to_string(),
                        }
                    });
                (opened, std::time::Instant::now())
            })
            .await
            .0
            .clone()
        }
        .boxed()
    }
}

struct Client {
    policy: Arc<HostKeyPolicy>,
    name: String,
    address: String,
    port: u16,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is checked against the @cert-authority lines
        // for the host; without one, by its plain key (as OpenSSH does).
        let verdict = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                self.policy.check(&self.name, &self.address, self.port, key)
            }
            PublicKeyOrCertificate::Certificate(cert) => {
                self.policy
                    .check_certificate(&self.name, &self.address, self.port, cert)
            }
        };
        let accepted = verdict.accepted();
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
        Ok(accepted)
    }
}

/// One end to log in to: a host or a bastion.
struct Endpoint<'a> {
    /// The name `--accept-new` takes.
    name: &'a str,
    /// How it is named in messages.
    target: String,
    address: &'a str,
    port: u16,
    user: &'a str,
    keys: Vec<PathBuf>,
    use_agent: bool,
    policy: Arc<HostKeyPolicy>,
    connect_timeout: Duration,
    keepalive: (Option<Duration>, usize),
}

impl Endpoint<'_> {
    /// Connects (directly, or through `via`'s forwarding), checks the host
    /// key and logs in, within the connect time limit; with the host-key
    /// verdict (a key learned is announced by the caller).
    async fn open(
        &self,
        via: Option<&client::Handle<Client>>,
    ) -> Result<(client::Handle<Client>, Verdict), HostError> {
        let verdict = Arc::new(Mutex::new(None));
        let attempt = self.connect_and_login(via, verdict.clone());
        let outcome = tokio::time::timeout(self.connect_timeout, attempt).await;
        let verdict = verdict.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let fallback = match outcome {
            Ok(Ok(handle)) => return Ok((handle, verdict.unwrap_or(Verdict::Known))),
            Err(_) => HostError::ConnectTimeout {
                target: self.target.clone(),
                after: self.connect_timeout,
            },
            Ok(Err(e)) => e,
        };
        Err(self.refusal(verdict, fallback))
    }

    fn refusal(&self, verdict: Option<Verdict>, fallback: HostError) -> HostError {
        let target = self.target.clone();
        match verdict {
            Some(Verdict::Unknown { fingerprint }) => HostError::UnknownHostKey {
                target,
                fingerprint,
                known_hosts: self.policy.known_hosts.clone(),
                host: self.name.to_string(),
            },
            Some(Verdict::Changed {
                fingerprint,
                file,
                line,
            }) => HostError::ChangedHostKey {
                target,
                fingerprint,
                known_hosts: file,
                line,
            },
            Some(Verdict::Revoked {
                fingerprint,
                file,
                line,
            }) => HostError::RevokedHostKey {
                target,
                fingerprint,
                known_hosts: file,
                line,
            },
            Some(Verdict::Unevaluable {
                fingerprint,
                file,
                line,
            }) => HostError::UnevaluableHostKey {
                target,
                fingerprint,
                known_hosts: file,
                line,
            },
            Some(Verdict::Unreadable { reason }) => HostError::KnownHostsUnreadable {
                target,
                known_hosts: self.policy.known_hosts.clone(),
                reason,
            },
            _ => fallback,
        }
    }

    async fn connect_and_login(
        &self,
        via: Option<&client::Handle<Client>>,
        verdict: Arc<Mutex<Option<Verdict>>>,
    ) -> Result<client::Handle<Client>, HostError> {
        let target = self.target.clone();
        let mut preferred = russh::Preferred::default();
        // Host certificates are asked for only where a CA is trusted for the
        // host; elsewhere a certificate would only be checked by its key.
        if self.policy.has_authority_for(self.address, self.port) {
            preferred.host_key_certificates = std::borrow::Cow::Borrowed(&[
                russh::keys::Algorithm::Ed25519,
                russh::keys::Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP256,
                },
                russh::keys::Algorithm::Rsa {
                    hash: Some(russh::keys::HashAlg::Sha512),
                },
            ]);
        }
        let config = Arc::new(client::Config {
            keepalive_interval: self.keepalive.0,
            keepalive_max: self.keepalive.1,
            nodelay: true,
            preferred,
            // What a host may have in flight to us on one channel (window)
            // and what waits unread (32 messages of 32 KiB): with
            // MAX_CAPTURE, what a flooding host costs the controller.
            window_size: 1 << 20,
            channel_buffer_size: 32,
            ..Default::default()
        });
        let handler = Client {
            policy: self.policy.clone(),
            name: self.name.to_string(),
            address: self.address.to_string(),
            port: self.port,
            verdict,
        };
        let connect_error = |e: russh::Error| HostError::Connect {
            target: target.clone(),
            reason: e.to_string(),
        };
        let mut handle = match via {
            None => client::connect(config, (self.address, self.port), handler)
                .await
                .map_err(connect_error)?,
            Some(bastion) => {
                // The bastion's sshd opens the TCP connection (direct-tcpip).
                let channel = bastion
                    .channel_open_direct_tcpip(self.address, u32::from(self.port), "127.0.0.1", 0)
                    .await
                    .map_err(|e| HostError::Connect {
                        target: target.clone(),
                        reason: format!("the bastion would not forward to it: {e}"),
                    })?;
                client::connect_stream(config, channel.into_stream(), handler)
                    .await
                    .map_err(connect_error)?
            }
        };
        let mut tried = Vec::new();
        // RSA keys sign with the best SHA-2 the server accepts (never SHA-1 when it offers better).
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        for key_file in &self.keys {
            match russh::keys::load_secret_key(key_file, None) {
                Ok(key) => {
                    let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
                    match handle.authenticate_publickey(self.user, key).await {
                        Ok(r) if r.success() => return Ok(handle),
                        Ok(_) => tried.push(format!("key {}", key_file.display())),
                        Err(e) => {
                            return Err(HostError::Connect {
                                target,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                Err(e) if key_file.exists() => {
                    tried.push(format!("key {} ({e})", key_file.display()))
                }
                Err(_) => tried.push(format!("key {} (missing)", key_file.display())),
            }
        }
        if self.use_agent
            && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
        {
            let identities = agent.request_identities().await.unwrap_or_default();
            for identity in identities {
                let public = identity.public_key().into_owned();
                match handle
                    .authenticate_publickey_with(self.user, public, hash, &mut agent)
                    .await
                {
                    Ok(r) if r.success() => return Ok(handle),
                    _ => tried.push("an ssh-agent key".to_string()),
                }
            }
        }
        if tried.is_empty() {
            tried.push("no key: none found and no ssh-agent".into());
        }
        Err(HostError::Auth {
            target,
            user: self.user.to_string(),
            tried: tried.join(", "),
        })
    }
}

pub struct Connection {
    handle: client::Handle<Client>,
    pub target: String,
    pub user: String,
    r#become: bool,
    command_timeout: Duration,
    pub host_key: Verdict,
    /// The last bastion's connection, kept open while this one lives.
    _via: Option<Arc<client::Handle<Client>>>,
}

impl Connection {
    pub async fn open(host: &Host, options: &SshOptions) -> Result<Connection, HostError> {
        let target = host.target();
        if let Some(connection) = &host.ssh.connection {
            return Err(HostError::NotSsh {
                target,
                connection: connection.clone(),
            });
        }
        let via = if host.ssh.jump.is_empty() {
            None
        } else {
            let bastion = options
                .jumps
                .through(&host.ssh.jump, host, options)
                .await
                .map_err(|e| match e {
                    HostError::Bastion {
                        bastion, reason, ..
                    } => HostError::Bastion {
                        target: target.clone(),
                        bastion,
                        reason,
                    },
                    other => other,
                })?;
            Some(bastion)
        };
        let endpoint = Endpoint {
            name: &host.name,
            target: target.clone(),
            address: &host.address,
            port: host.port,
            user: &host.user,
            keys: candidate_keys(host),
            use_agent: options.use_agent && !host.ssh.identities_only,
            policy: options.policy_for(
                &host.name,
                host.ssh.known_hosts.as_ref(),
                host.ssh.global_known_hosts.as_ref(),
                host.ssh.accept_new,
            ),
            connect_timeout: options.connect_timeout_for(host.ssh.connect_timeout_secs),
            // ServerAliveInterval 0 turns keepalives off, as in OpenSSH.
            keepalive: (
                match host.ssh.server_alive_interval_secs {
                    Some(0) => None,
                    Some(secs) => Some(Duration::from_secs(secs)),
                    None => Some(Duration::from_secs(5)),
                },
                host.ssh.server_alive_count_max.unwrap_or(3) as usize,
            ),
        };
        let (handle, host_key) = endpoint.open(via.as_deref()).await?;
        Ok(Connection {
            handle,
            target,
            user: host.user.clone(),
            r#become: host.r#become && host.user != "root",
            command_timeout: options.command_timeout,
            host_key,
            _via: via,
        })
    }

    /// Runs `script` with `args` under /bin/sh, through `sudo -n` when the
    /// host's user is not root and `become` is set (`Transport::run`; the
    /// default time limit: `run_script` on `dyn Transport`).
    pub async fn run_script_timeout(
        &self,
        step: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, HostError> {
        let line = shell::sh_command(script, args);
        let line = if self.r#become {
            format!("sudo -n -- {line}")
        } else {
            line
        };
        let output = self.exec(step, &line, stdin, timeout).await?;
        if self.r#become && output.code() == Some(1) {
            let err = String::from_utf8_lossy(&output.stderr);
            if err.contains("a password is required") || err.contains("a terminal is required") {
                return Err(HostError::SudoNeedsPassword {
                    target: self.target.clone(),
                    user: self.user.clone(),
                });
            }
        }
        Ok(output)
    }

    /// Runs one command line; a timeout or a lost connection is an error, any
    /// exit status is an `Output`.
    pub async fn exec(
        &self,
        step: &str,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, HostError> {
        let run = async {
            let armed = self.start(step, command).await?;
            armed.finish(stdin.unwrap_or_default()).await
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(HostError::CommandTimeout {
                target: self.target.clone(),
                step: step.to_string(),
                after: timeout,
            }),
        }
    }

    /// Starts `script` now (through sudo when needed) and leaves it waiting
    /// for its input: see `Armed`.
    pub async fn arm_script(
        &self,
        step: &str,
        script: &str,
        args: &[&str],
    ) -> Result<Armed, HostError> {
        let line = shell::sh_command(script, args);
        let line = if self.r#become {
            format!("sudo -n -- {line}")
        } else {
            line
        };
        self.start(step, &line).await
    }

    async fn start(&self, step: &str, command: &str) -> Result<Armed, HostError> {
        let lost = HostError::ConnectionLost {
            target: self.target.clone(),
            step: step.to_string(),
        };
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| match e {
                // sshd answered, and said no: most often its MaxSessions is
                // smaller than the sessions quiesce holds at once.
                russh::Error::ChannelOpenFailure(reason) => HostError::ChannelRefused {
                    target: self.target.clone(),
                    step: step.to_string(),
                    reason: match reason {
                        russh::ChannelOpenFailure::AdministrativelyProhibited => {
                            "administratively prohibited".to_string()
                        }
                        russh::ChannelOpenFailure::ConnectFailed => "open failed".to_string(),
                        russh::ChannelOpenFailure::UnknownChannelType => {
                            "unknown channel type".to_string()
                        }
                        russh::ChannelOpenFailure::ResourceShortage => {
                            "resource shortage".to_string()
                        }
                        russh::ChannelOpenFailure::Other { code, reason } => {
                            format!("code {code}: {}", reason.escape_debug())
                        }
                    },
                },
                _ => lost.clone(),
            })?;
        channel
            .exec(true, command)
            .await
            .map_err(|_| lost.clone())?;
        Ok(Armed::new(channel, lost))
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// A remote command already running and waiting for its standard input; it
/// ends when `finish` sends the input and end-of-file. Dropping it closes
/// the channel, which the command sees as end-of-file too. What it prints
/// before that can be read as it comes (`read_line`).
pub struct Armed {
    channel: russh::Channel<client::Msg>,
    lost: HostError,
    stdout: Vec<u8>,
    /// How much of `stdout` `read_line` has handed out.
    read: usize,
    stderr: Vec<u8>,
    /// How much of `stderr` had arrived when `read_line` last returned.
    stderr_read: usize,
    status: ExitStatus,
    closed: bool,
    ended: bool,
    /// What the login shell printed before the script is dropped.
    stdout_framing: Framing,
    stderr_framing: Framing,
    /// Every byte the host sends on either stream counts against `limit`;
    /// past it the command is ended and reported (`OutputTooLarge`).
    limit: usize,
    received: usize,
    overflowed: bool,
}

impl Armed {
    fn new(channel: russh::Channel<client::Msg>, lost: HostError) -> Armed {
        Armed {
            channel,
            lost,
            stdout: Vec::new(),
            read: 0,
            stderr: Vec::new(),
            stderr_read: 0,
            status: ExitStatus::Unknown,
            closed: false,
            ended: false,
            stdout_framing: Framing::default(),
            stderr_framing: Framing::default(),
            limit: MAX_CAPTURE,
            received: 0,
            overflowed: false,
        }
    }

    /// At most `bytes` from the host on both streams together (the default
    /// is `MAX_CAPTURE`), whether kept in memory or streamed to a sink.
    pub fn limit(mut self, bytes: usize) -> Armed {
        self.limit = bytes;
        self
    }

    /// Counts `n` more bytes from the host; false once past the limit.
    fn admit(&mut self, n: usize) -> bool {
        self.received = self.received.saturating_add(n);
        if self.received > self.limit {
            self.overflowed = true;
        }
        !self.overflowed
    }

    /// The error for a command that sent more than its limit.
    fn too_large(&self) -> HostError {
        let (target, step) = match &self.lost {
            HostError::ConnectionLost { target, step } => (target.clone(), step.clone()),
            other => (other.to_string(), String::new()),
        };
        HostError::OutputTooLarge {
            target,
            step,
            limit: self.limit,
        }
    }

    /// Takes one message from the channel; false once it has ended.
    async fn pump(&mut self) -> bool {
        if self.ended {
            return false;
        }
        if self.overflowed {
            // Nothing more is read: the channel is closed, and the command
            // (a hook traps HUP and PIPE) goes on or ends without us.
            let _ = self.channel.close().await;
            self.ended = true;
            return false;
        }
        match self.channel.wait().await {
            None => {
                self.ended = true;
                self.stdout_framing.end(&mut self.stdout, push_capped);
                self.stderr_framing.end(&mut self.stderr, push_capped);
                false
            }
            Some(msg) => {
                match msg {
                    ChannelMsg::Data { data } if self.admit(data.len()) => self
                        .stdout_framing
                        .feed(&data, &mut self.stdout, push_capped),
                    ChannelMsg::ExtendedData { data, ext: 1 } if self.admit(data.len()) => self
                        .stderr_framing
                        .feed(&data, &mut self.stderr, push_capped),
                    ChannelMsg::ExitStatus { exit_status } => {
                        self.status = ExitStatus::Code(exit_status)
                    }
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        self.status = ExitStatus::Signal(format!("{signal_name:?}"))
                    }
                    ChannelMsg::Close => self.closed = true,
                    _ => {}
                }
                true
            }
        }
    }

    /// The next complete stdout line that starts with `prefix` (earlier
    /// lines are kept in the output); None when the command ended first.
    pub async fn read_line(&mut self, prefix: &str) -> Option<String> {
        loop {
            if let Some(line) = take_line(&self.stdout, &mut self.read, prefix) {
                self.stderr_read = self.stderr.len();
                return Some(line);
            }
            if !self.pump().await {
                return None;
            }
        }
    }

    /// Waits for the command to end by itself, sending no input and no
    /// end-of-file (the command may take closed input as a signal).
    pub async fn wait_end(&mut self) -> Result<Output, HostError> {
        while self.pump().await {}
        if self.overflowed {
            return Err(self.too_large());
        }
        if !self.closed && self.status == ExitStatus::Unknown {
            return Err(self.lost.clone());
        }
        Ok(self.output())
    }

    /// Sends end-of-file and closes the channel, without waiting.
    pub async fn close(&self) {
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }

    /// What the command printed so far, and how it ended if it has.
    pub fn output(&self) -> Output {
        Output {
            status: self.status.clone(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }

    /// Sends `input`, then end-of-file, and collects the output and status:
    /// what came after the last line `read_line` returned.
    pub async fn finish(self, input: &[u8]) -> Result<Output, HostError> {
        let mut stdout = Vec::new();
        let mut output = self.finish_into(input, &mut stdout, usize::MAX).await?;
        output.stdout = stdout;
        Ok(output)
    }

    /// Like `finish`, but standard output goes to `sink` as it arrives
    /// (the returned `Output` has an empty stdout).
    /// At most `sink_limit` bytes go to `sink`: more is `OutputTooLarge`,
    /// with what fitted written.
    pub async fn finish_into<W: tokio::io::AsyncWrite + Unpin>(
        mut self,
        input: &[u8],
        sink: &mut W,
        sink_limit: usize,
    ) -> Result<Output, HostError> {
        use tokio::io::AsyncWriteExt;
        let write_error = |e: std::io::Error| HostError::StepFailed {
            target: String::new(),
            step: "write locally".into(),
            detail: e.to_string(),
        };
        // A command may end without reading all its input (deploy's script
        // reads a hook's bytes only to write it), and its channel may close
        // before the input is sent: not a lost connection. Whether the
        // connection held is told by how the command ended, below.
        if !self.ended {
            if !input.is_empty() {
                let _ = self.channel.data(input).await;
            }
            let _ = self.channel.eof().await;
        }
        self.stdout.drain(..self.read);
        self.stderr.drain(..self.stderr_read);
        let mut written = 0usize;
        loop {
            // Last round: what the end released (a script that never
            // began: the shell's words).
            let more = self.pump().await;
            if !self.stdout.is_empty() {
                let room = sink_limit.saturating_sub(written);
                let take = self.stdout.len().min(room);
                sink.write_all(&self.stdout[..take])
                    .await
                    .map_err(write_error)?;
                written += take;
                if take < self.stdout.len() {
                    self.overflowed = true;
                    self.limit = sink_limit;
                }
                self.stdout.clear();
            }
            if !more {
                break;
            }
        }
        sink.flush().await.map_err(write_error)?;
        if self.overflowed {
            return Err(self.too_large());
        }
        if !self.closed && self.status == ExitStatus::Unknown {
            return Err(self.lost);
        }
        Ok(Output {
            status: self.status,
            stdout: Vec::new(),
            stderr: self.stderr,
        })
    }
}

impl Transport for Connection {
    fn run<'a>(
        &'a self,
        step: &'a str,
        script: &'a str,
        args: &'a [&'a str],
        stdin: Option<&'a [u8]>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Output, HostError>> {
        self.run_script_timeout(step, script, args, stdin, timeout)
            .boxed()
    }

    fn arm<'a>(
        &'a self,
        step: &'a str,
        script: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Box<dyn Session>, HostError>> {
        async move {
            let armed = self.arm_script(step, script, args).await?;
            Ok(Box::new(armed) as Box<dyn Session>)
        }
        .boxed()
    }

    fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        async move {
            let _ = self
                .handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
        .boxed()
    }
}

impl Session for Armed {
    fn read_line<'a>(&'a mut self, prefix: &'a str) -> BoxFuture<'a, Option<String>> {
        Armed::read_line(self, prefix).boxed()
    }

    fn wait_end(&mut self) -> BoxFuture<'_, Result<Output, HostError>> {
        Armed::wait_end(self).boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Armed::close(self).boxed()
    }

    fn output(&self) -> Output {
        Armed::output(self)
    }

    fn finish(self: Box<Self>, input: Vec<u8>) -> BoxFuture<'static, Result<Output, HostError>> {
        async move { Armed::finish(*self, &input).await }.boxed()
    }
}

/// The most a command may send, stdout and stderr together, unless its
/// caller sets another `limit` (a log fetch: what it asked for). Twenty hosts
/// that print without end hold at most this much each.
pub const MAX_CAPTURE: usize = 2 << 20;

/// Appends what still fits under `MAX_CAPTURE`; a host that prints without
/// end cannot exhaust the controller's memory.
fn push_capped(buffer: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_CAPTURE.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
}

/// The key files to try: the inventory's, then ssh_config's IdentityFile
/// lines; with neither, QUIESCE_IDENTITY_FILE (a key a job runner such as
/// AWX injects as a file), else OpenSSH's default names.
fn candidate_keys(host: &Host) -> Vec<PathBuf> {
    let given: Vec<PathBuf> = host
        .identity_file
        .iter()
        .chain(&host.ssh.identity_files)
        .cloned()
        .collect();
    if !given.is_empty() {
        return given;
    }
    if let Some(file) = std::env::var_os("QUIESCE_IDENTITY_FILE").filter(|f| !f.is_empty()) {
        return vec![PathBuf::from(file)];
    }
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| ssh.join(n))
        .filter(|p| p.exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_stops_at_its_cap() {
        let mut buffer = vec![0u8; MAX_CAPTURE - 3];
        push_capped(&mut buffer, b"abcdef");
        assert_eq!(buffer.len(), MAX_CAPTURE);
        assert_eq!(&buffer[MAX_CAPTURE - 3..], b"abc");
        push_capped(&mut buffer, b"more");
        assert_eq!(buffer.len(), MAX_CAPTURE);
    }
}
