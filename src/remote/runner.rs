//! Running one piece of work per host, at most `--forks` at once, while the
//! event stream feeds the progress display; Ctrl-C and SIGTERM stop the fan-out.

use crate::inventory::Host;
use crate::output::error::HostError;
use crate::output::event::{Event, EventSender};
use crate::output::progress::Progress;
use crate::remote::known_hosts::Verdict;
use crate::remote::local::Local;
use crate::remote::ssh::{Connection, SshOptions};
use crate::remote::transport::{Connector, Transport};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Opens the host's one connection, announcing it on the event stream.
pub async fn connect(
    host: &Host,
    options: &SshOptions,
    events: &EventSender,
) -> Result<Connection, HostError> {
    let connection = Connection::open(host, options).await?;
    let learned_key = match &connection.host_key {
        Verdict::Learned { fingerprint } => Some(fingerprint.clone()),
        _ => None,
    };
    events.send(Event::HostConnected {
        host: host.name.clone(),
        learned_key,
    });
    Ok(connection)
}

/// Reaches hosts over SSH; the controller's own commands run locally.
pub struct SshConnector {
    pub options: SshOptions,
}

impl Connector for SshConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
        events: &'a EventSender,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, HostError>> {
        async move {
            let connection = connect(host, &self.options, events).await?;
            Ok(Arc::new(connection) as Arc<dyn Transport>)
        }
        .boxed()
    }

    fn local(&self) -> Arc<dyn Transport> {
        Arc::new(Local {
            command_timeout: self.options.command_timeout,
        })
    }
}

/// The signals that ask a run to stop: Ctrl-C (SIGINT), SIGTERM, SIGHUP (the
/// operator's terminal closed) and SIGQUIT. Each stops a backup the same
/// safe way: no new freeze, snapshots cancelled, everything thawed. They are
/// caught from the moment this is created (inside the runtime).
pub struct StopSignals {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl StopSignals {
    pub fn new() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                streams: [
                    SignalKind::interrupt(),
                    SignalKind::terminate(),
                    SignalKind::hangup(),
                    SignalKind::quit(),
                ]
                .into_iter()
                .filter_map(|kind| signal(kind).ok())
                .collect(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves at the next stop signal.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if !self.streams.is_empty() {
            let any =
                futures::future::select_all(self.streams.iter_mut().map(|s| Box::pin(s.recv())));
            let _ = any.await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Default for StopSignals {
    fn default() -> Self {
        StopSignals::new()
    }
}

/// Resolves when the run is asked to stop (see `StopSignals`).
pub async fn stop_requested() {
    StopSignals::new().next().await
}

/// An event channel whose events feed the progress display and are kept
/// for the reporters (the handle yields them once every sender is dropped).
pub fn event_stream(quiet: bool) -> (EventSender, tokio::task::JoinHandle<Vec<Event>>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = tokio::spawn(async move {
        let mut progress = Progress::new(quiet);
        let mut all = Vec::new();
        while let Some(event) = rx.recv().await {
            progress.on_event(&event);
            all.push(event);
        }
        all
    });
    (EventSender(tx), consumer)
}

/// Runs `work` for every host, `forks` at a time, and returns every event the
/// run emitted, and whether it was interrupted.
pub async fn run_hosts<F, Fut>(
    command: &'static str,
    hosts: Vec<Host>,
    forks: usize,
    quiet: bool,
    work: F,
) -> (Vec<Event>, bool)
where
    F: Fn(Host, EventSender) -> Fut,
    Fut: Future<Output = ()>,
{
    let (events, consumer) = event_stream(quiet);
    let started = Instant::now();
    events.send(Event::RunStarted {
        command,
        hosts: hosts.len(),
    });
    let all_hosts = futures::stream::iter(hosts.into_iter().map(|h| work(h, events.clone())))
        .buffer_unordered(forks.max(1))
        .collect::<Vec<()>>();
    let interrupted = tokio::select! {
        _ = all_hosts => false,
        _ = stop_requested() => true,
    };
    events.send(Event::RunFinished {
        elapsed: started.elapsed(),
        interrupted,
    });
    drop(events);
    (consumer.await.unwrap_or_default(), interrupted)
}
