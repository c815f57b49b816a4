//! `report`: render a run's freeze-window report again (table, JSON, HTML).

use crate::cli::args::ReportFormat;
use crate::review::run_report::RunReport;
use std::path::{Path, PathBuf};

/// The directory of `run`: a run id under `runs_dir`, a run directory, or its journal file.
pub fn run_dir(runs_dir: &Path, run: &str) -> PathBuf {
    let given = PathBuf::from(run);
    if given.is_file() {
        given.parent().map(Path::to_path_buf).unwrap_or_default()
    } else if given.join("journal.jsonl").is_file() {
        given
    } else {
        runs_dir.join(run)
    }
}

pub fn render_report(report: &RunReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Table => report.table(),
        ReportFormat::Json => report.json(),
        ReportFormat::Html => crate::review::html::page(report),
    }
}
