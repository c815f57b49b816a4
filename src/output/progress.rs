//! Live progress on stderr: an indicatif bar on a terminal, plain lines
//! otherwise. Never writes to stdout, which belongs to the reports.

use crate::output::event::{Event, Status};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

pub struct Progress {
    bar: Option<ProgressBar>,
    failures: u64,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            bar: None,
            failures: 0,
            quiet,
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
                if let Some(e) = error {
                    self.failures += 1;
                    self.line(e.to_string());
                } else if self.bar.is_none() {
                    self.line(format!("{host}: done"));
                }
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    if self.failures > 0 {
                        bar.set_message(format!("{} failed", self.failures));
                    }
                }
            }
            Event::Note { host, text } if host.is_empty() => self.line(text.clone()),
            Event::Note { host, text } => self.line(format!("{host}: {text}")),
            Event::StepStarted { host, step } if self.failures == 0 => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{host}: {step}…"));
                }
            }
            Event::StepFinished { host, step, ok } if self.bar.is_none() || !ok => {
                self.line(format!(
                    "{host}: {step} {}",
                    if *ok { "done" } else { "FAILED" }
                ));
            }
            Event::RunFinished { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}
