//! Looking back at what happened: collecting the VMs' logs, reading them
//! (hook logs, instance LogFiles, vmware.log stuns, their times), and the
//! run reports built from a run's results, journal and logs.

pub mod backup_metrics;
pub mod backup_report;
pub mod esxi;
pub mod hook_logs;
pub mod html;
pub mod log_time;
pub mod logs;
pub mod run_report;
pub mod status;
pub mod status_html;
pub mod stun_report;
