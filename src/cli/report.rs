//! `report`: render a run's freeze-window report again (table, JSON, HTML).

use crate::cli::args::ReportFormat;
use crate::review::run_report::RunReport;

pub fn render_report(report: &RunReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Table => report.table(),
        ReportFormat::Json => report.json(),
        ReportFormat::Html => crate::review::html::page(report),
    }
}
