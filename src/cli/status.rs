//! `status`: the last valid backup of every selected instance, its age, who
//! ran it, and with `--max-age` (the RPO) a finding for each one without.

use super::print;
use crate::backup::journal::now_ms;
use crate::cli::args::{Global, ReportFormat};
use crate::inventory::Host;
use crate::output::error::Error;
use crate::output::exit_code;
use crate::output::metrics::{Family, seconds};
use crate::review::status;
use std::path::Path;

pub fn status(
    global: &Global,
    hosts: &[Host],
    max_age: Option<&str>,
    age_of: status::AgeOf,
    last: usize,
    format: ReportFormat,
    metrics: Option<&Path>,
) -> Result<u8, Error> {
    let started = std::time::Instant::now();
    let max_age_ms = max_age
        .map(|text| {
            crate::output::duration::parse(text)
                .map(|d| d.as_millis() as u64)
                .map_err(|why| Error::Usage {
                    message: format!("--max-age {text:?}: {why}"),
                    hint: "the RPO, e.g. 26h or 2d".into(),
                })
        })
        .transpose()?;
    let named: Vec<(String, Vec<String>)> = hosts
        .iter()
        .map(|h| (h.name.clone(), h.instances.clone()))
        .collect();
    let now = now_ms();
    let statuses = status::gather(
        &global.runs_dir,
        &named,
        now,
        max_age_ms.map(|m| (m, age_of)),
        last,
    );
    print(&match format {
        ReportFormat::Table => status::table(&statuses, now),
        ReportFormat::Json => serde_json::to_string_pretty(&statuses).unwrap_or_default() + "\n",
        ReportFormat::Html => {
            let when = jiff::Timestamp::from_millisecond(now as i64)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            crate::review::status_html::page(&statuses, &when)
        }
    });
    let code = if statuses.iter().any(|s| s.finding.is_some()) {
        exit_code::FINDINGS
    } else {
        exit_code::SUCCESS
    };
    if let Some(path) = metrics {
        let mut last_valid = Family::gauge(
            "quiesce_instance_last_valid_backup_timestamp_seconds",
            "When the instance's last valid backup (by quiesce, VMware Tools or a backup product) ended.",
        );
        let mut finding = Family::gauge(
            "quiesce_backup_rpo_finding",
            "1 when the instance has no valid backup within --max-age, else 0.",
        );
        for s in &statuses {
            let labels = || vec![("host", s.host.clone()), ("instance", s.instance.clone())];
            if let Some(at) = s.last_valid {
                last_valid.push(labels(), seconds(at));
            }
            finding.push(labels(), if s.finding.is_some() { 1.0 } else { 0.0 });
        }
        let mut last_verified = Family::gauge(
            "quiesce_last_verified_backup_timestamp_seconds",
            "When the instance's last valid backup that quiesce verify restored and checked ended.",
        );
        for s in &statuses {
            if let Some(at) = s.last_verified {
                last_verified.push(
                    vec![("host", s.host.clone()), ("instance", s.instance.clone())],
                    seconds(at),
                );
            }
        }
        let mut families = vec![last_valid, last_verified, finding];
        families.extend(crate::output::metrics::run_families(
            "status",
            0,
            code,
            started.elapsed(),
        ));
        if let Err(e) = crate::output::metrics::write(path, &families) {
            crate::output::terminal::eprint_line(&format!(
                "warning: cannot write the metrics {}: {e}",
                path.display()
            ));
        }
    }
    Ok(code)
}
