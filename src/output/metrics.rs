//! `--metrics FILE`: Prometheus metrics in node_exporter's textfile format,
//! written atomically (a temporary file in the same directory, then a
//! rename), so the collector never reads half a file. Names follow the
//! Prometheus conventions (`quiesce_` prefix, base units, `_seconds`,
//! `_timestamp_seconds`); labels are host and instance names only.

use std::fmt::Write as _;
use std::path::Path;

/// One metric family: its help, type and samples (labels, value).
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    pub fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: "gauge",
            samples: Vec::new(),
        }
    }

    pub fn sample(mut self, labels: Vec<(&'static str, String)>, value: f64) -> Family {
        self.samples.push((labels, value));
        self
    }

    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }
}

/// The exposition text of `families` (families without samples are left out).
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for (labels, value) in &family.samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(out, "{}{labels} {}", family.name, number(*value));
        }
    }
    out
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `families` to `path` atomically.
pub fn write(path: &Path, families: &[Family]) -> std::io::Result<()> {
    crate::output::atomic_write(path, render(families).as_bytes())
}

/// The families every command's metrics end with: hosts unreachable, and
/// the run's duration, exit code and end.
pub fn run_families(
    command: &str,
    unreachable: usize,
    exit_code: u8,
    elapsed: std::time::Duration,
) -> Vec<Family> {
    let label = || vec![("command", command.to_string())];
    vec![
        Family::gauge(
            "quiesce_hosts_unreachable",
            "Hosts the last run could not reach.",
        )
        .sample(label(), unreachable as f64),
        Family::gauge(
            "quiesce_run_duration_seconds",
            "How long the last run took.",
        )
        .sample(label(), elapsed.as_secs_f64()),
        Family::gauge(
            "quiesce_run_exit_code",
            "The last run's exit code (see the README).",
        )
        .sample(label(), exit_code as f64),
        Family::gauge("quiesce_run_timestamp_seconds", "When the last run ended.")
            .sample(label(), seconds(crate::backup::journal::now_ms())),
    ]
}

/// Milliseconds since the epoch as Prometheus seconds.
pub fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let families = [
            Family::gauge(
                "quiesce_hosts_unreachable",
                "Hosts that could not be reached.",
            )
            .sample(vec![], 2.0),
            Family::gauge("quiesce_stun_seconds", "The last stun.")
                .sample(vec![("host", "db\"1".into())], 0.0625),
            Family::gauge("quiesce_empty", "Left out."),
        ];
        assert_eq!(
            render(&families),
            "# HELP quiesce_hosts_unreachable Hosts that could not be reached.\n\
             # TYPE quiesce_hosts_unreachable gauge\n\
             quiesce_hosts_unreachable 2\n\
             # HELP quiesce_stun_seconds The last stun.\n\
             # TYPE quiesce_stun_seconds gauge\n\
             quiesce_stun_seconds{host=\"db\\\"1\"} 0.0625\n"
        );
    }
}
