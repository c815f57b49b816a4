//! The process exit codes: named, documented constants (see README "Exit codes").

/// Everything done; everything compliant.
pub const SUCCESS: u8 = 0;
/// The run worked, but found something to report: a non-compliant hook
/// (`audit`), a change still to make (`deploy --check`).
pub const FINDINGS: u8 = 1;
/// Bad command line, inventory or playbook: nothing was contacted.
pub const USAGE: u8 = 2;
/// At least one host could not be reached (connection, host key, login).
pub const UNREACHABLE: u8 = 3;
/// A step failed on a reachable host (a write, a verification, sudo).
pub const FAILED: u8 = 4;
/// A backup left something frozen that quiesce could not thaw: act now
/// (the report and `quiesce recover RUN` say how).
pub const LEFT_FROZEN: u8 = 5;
/// Stopped by Ctrl-C or SIGTERM (after cleaning up).
pub const INTERRUPTED: u8 = 130;
