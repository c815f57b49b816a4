//! Turning a run's event stream into what the user reads: a table, JSON or
//! JUnit XML on stdout, and the run's exit code.

use crate::output::event::{Event, HookRecord, Status};
use crate::output::exit_code;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
}

/// The hook records of a run, in inventory order (host, then hook).
pub fn records(events: &[Event], host_order: &[String]) -> Vec<HookRecord> {
    let mut records: Vec<HookRecord> = events
        .iter()
        .filter_map(|e| match e {
            Event::Hook(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let position = |host: &str| {
        host_order
            .iter()
            .position(|h| h == host)
            .unwrap_or(usize::MAX)
    };
    records.sort_by_key(|a| (position(&a.host), a.hook));
    records
}

/// Failures first, then unreachable hosts, then findings (see `exit_code`).
pub fn exit_code(records: &[HookRecord], interrupted: bool) -> u8 {
    if interrupted {
        exit_code::INTERRUPTED
    } else if records
        .iter()
        .any(|r| matches!(r.status, Status::Failed | Status::Refused))
    {
        exit_code::FAILED
    } else if records
        .iter()
        .any(|r| matches!(r.status, Status::Unreachable))
    {
        exit_code::UNREACHABLE
    } else if records.iter().any(|r| r.status.is_problem()) {
        exit_code::FINDINGS
    } else {
        exit_code::SUCCESS
    }
}

/// How many records have each status, in the order statuses are declared.
fn counts(records: &[HookRecord]) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(usize, &'static str, usize)> = Vec::new();
    for r in records {
        match counts
            .iter_mut()
            .find(|(_, label, _)| *label == r.status.label())
        {
            Some(entry) => entry.2 += 1,
            None => counts.push((r.status.rank(), r.status.label(), 1)),
        }
    }
    counts.sort();
    counts.into_iter().map(|(_, label, n)| (label, n)).collect()
}

fn summary_line(command: &str, records: &[HookRecord], interrupted: bool) -> String {
    let mut hosts: Vec<&str> = records.iter().map(|r| r.host.as_str()).collect();
    hosts.dedup();
    let parts: Vec<String> = counts(records)
        .iter()
        .map(|(label, n)| format!("{n} {}", label.to_lowercase()))
        .collect();
    let tail = if interrupted {
        " (INTERRUPTED: hosts not listed were not done)"
    } else {
        ""
    };
    format!(
        "{command}: {} hosts, {} hooks: {}{tail}",
        hosts.len(),
        records.len(),
        parts.join(", ")
    )
}

fn record_text(r: &HookRecord) -> String {
    let mut parts: Vec<String> = r.findings.iter().map(|f| f.message()).collect();
    if let Some(detail) = &r.detail
        && (!matches!(r.status, Status::Created | Status::Updated) || parts.is_empty())
    {
        parts.push(detail.clone());
    }
    parts.join("; ")
}

pub fn table(command: &str, records: &[HookRecord], interrupted: bool) -> String {
    let host_w = records
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let status_w = records
        .iter()
        .map(|r| r.status.label().len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:host_w$}  {:17}  {:status_w$}  DETAIL",
        "HOST", "HOOK", "STATUS"
    );
    for r in records {
        let line = format!(
            "{:host_w$}  {:17}  {:status_w$}  {}",
            r.host,
            r.hook.file_name(),
            r.status.label(),
            record_text(r)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for r in records {
        if let Some(diff) = &r.diff {
            out.push('\n');
            out.push_str(diff);
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(command, records, interrupted));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    command: &'a str,
    interrupted: bool,
    exit_code: u8,
    counts: BTreeMap<String, usize>,
    records: &'a [HookRecord],
}

pub fn json(command: &str, records: &[HookRecord], interrupted: bool) -> String {
    let report = JsonReport {
        command,
        interrupted,
        exit_code: exit_code(records, interrupted),
        counts: counts(records)
            .into_iter()
            .map(|(l, n)| (l.to_lowercase(), n))
            .collect(),
        records,
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        + "\n"
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// One testsuite per run, one testcase per host and hook; findings are
/// failures, unreachable hosts and failed steps are errors.
pub fn junit(command: &str, records: &[HookRecord]) -> String {
    let failures = records
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                Status::NonCompliant | Status::WouldChange | Status::Refused
            )
        })
        .count();
    let errors = records
        .iter()
        .filter(|r| matches!(r.status, Status::Unreachable | Status::Failed))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"quiesce {command}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        records.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"quiesce {command}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        records.len()
    );
    for r in records {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&r.host),
            xml_escape(&r.path)
        );
        let text = xml_escape(&record_text(r));
        match r.status {
            Status::NonCompliant | Status::WouldChange | Status::Refused => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{text}\" type=\"{}\">{text}</failure>\n    </testcase>",
                    r.status.label()
                );
            }
            Status::Unreachable | Status::Failed => {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{text}\" type=\"{}\">{text}</error>\n    </testcase>",
                    r.error_kind.unwrap_or("failed")
                );
            }
            _ => {
                let _ = writeln!(out, "/>");
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

pub fn render(format: Format, command: &str, records: &[HookRecord], interrupted: bool) -> String {
    match format {
        Format::Table => table(command, records, interrupted),
        Format::Json => json(command, records, interrupted),
        Format::Junit => junit(command, records),
    }
}

/// The run's metrics: per host whether its hooks are compliant, the hosts
/// unreachable, and the run's duration, exit code and time.
pub fn metrics(
    command: &'static str,
    records: &[HookRecord],
    exit_code: u8,
    elapsed: std::time::Duration,
) -> Vec<crate::output::metrics::Family> {
    use crate::output::metrics::Family;
    let mut compliant = Family::gauge(
        "quiesce_hooks_compliant",
        "1 when both hooks of the host are exactly what quiesce deploys (after this run), else 0.",
    );
    let mut hosts: Vec<&str> = records.iter().map(|r| r.host.as_str()).collect();
    hosts.dedup();
    let mut unreachable = 0;
    for host in &hosts {
        let of_host: Vec<&HookRecord> = records.iter().filter(|r| r.host == *host).collect();
        if of_host
            .iter()
            .any(|r| matches!(r.status, Status::Unreachable))
        {
            unreachable += 1;
        }
        let ok = of_host.iter().all(|r| {
            matches!(
                r.status,
                Status::Compliant | Status::Unchanged | Status::Created | Status::Updated
            )
        });
        compliant.push(vec![("host", host.to_string())], if ok { 1.0 } else { 0.0 });
    }
    let mut families = vec![compliant];
    families.extend(crate::output::metrics::run_families(
        command,
        unreachable,
        exit_code,
        elapsed,
    ));
    families
}
