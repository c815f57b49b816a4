//! Live progress on stderr: on a terminal one bar with counts and the
//! slowest hosts still working (readable at 1000 hosts); otherwise one line
//! per host when it ends, and what failed. Never writes to stdout, which
//! belongs to the reports.

use crate::output::event::{Event, Status};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// How many of the slowest hosts still working the bar names.
const SLOWEST: usize = 3;

pub struct Progress {
    bar: Option<ProgressBar>,
    failures: u64,
    quiet: bool,
    /// Hosts working now: since when, and their current step.
    working: HashMap<String, (Instant, &'static str)>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            bar: None,
            failures: 0,
            quiet,
            working: HashMap::new(),
        }
    }

    /// `3 failed · 20 working, slowest: db7 freeze 4.1s, ...`
    fn bar_message(&self) -> String {
        let mut parts = Vec::new();
        if self.failures > 0 {
            parts.push(format!("{} failed", self.failures));
        }
        if !self.working.is_empty() {
            let mut slowest: Vec<(&String, &(Instant, &str))> = self.working.iter().collect();
            slowest.sort_by_key(|(host, (since, _))| (*since, host.as_str()));
            let named: Vec<String> = slowest
                .iter()
                .take(SLOWEST)
                .map(|(host, (since, step))| {
                    format!("{host} {step} {:.1}s", since.elapsed().as_secs_f64())
                })
                .collect();
            parts.push(format!(
                "{} working, slowest: {}",
                self.working.len(),
                named.join(", ")
            ));
        }
        parts.join(" · ")
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(crate::output::terminal::scrub(&self.bar_message()).into_owned());
        }
    }

    pub fn on_event(&mut self, event: &Event) {
        if self.quiet {
            return;
        }
        match event {
            Event::RunStarted { command, hosts } => {
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::with_draw_target(
                        Some(*hosts as u64),
                        ProgressDrawTarget::stderr(),
                    );
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix} [{bar:30}] {pos}/{len} hosts  {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(*command);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.bar = Some(bar);
                } else {
                    self.line(format!("{command}: {hosts} hosts"));
                }
            }
            Event::HostConnected {
                host,
                learned_key: Some(fp),
            } => self.line(format!("{host}: recorded new host key {fp}")),
            Event::Hook(record) if matches!(record.status, Status::Failed | Status::Refused) => {
                if let Some(detail) = &record.detail {
                    self.line(format!(
                        "{}: {}: {detail}",
                        record.host,
                        record.hook.file_name()
                    ));
                }
            }
            Event::HostFinished { host, error } => {
                self.working.remove(host);
                if let Some(e) = error {
                    self.failures += 1;
                    self.line(e.to_string());
                } else if self.bar.is_none() {
                    self.line(format!("{host}: done"));
                }
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.refresh();
            }
            Event::HostSummary { host, text, ok } => {
                self.working.remove(host);
                if !ok {
                    self.failures += 1;
                }
                self.line(format!("{host}: {text}"));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.refresh();
            }
            Event::Note { host, text } if host.is_empty() => self.line(text.clone()),
            Event::Note { host, text } => self.line(format!("{host}: {text}")),
            Event::StepStarted { host, step } => {
                let since = self
                    .working
                    .get(host)
                    .map_or_else(Instant::now, |(since, _)| *since);
                self.working.insert(host.clone(), (since, step));
                self.refresh();
            }
            // One line per host at its end; a step only when it failed.
            Event::StepFinished {
                host,
                step,
                ok: false,
            } => self.line(format!("{host}: {step} FAILED")),
            Event::RunFinished { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }

    fn line(&self, text: String) {
        let text = crate::output::terminal::scrub(&text).into_owned();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}
