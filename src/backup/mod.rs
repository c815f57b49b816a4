//! The backup pipeline: preflight (read-only facts and checks) → plan (lanes
//! and jobs in mirror-safe order) → executor (freeze, snapshot, thaw, with
//! the write-ahead journal) → recover (finishing a run a crash left behind).

pub mod backup_event;
pub mod executor;
pub mod host_lock;
pub mod host_run;
pub mod journal;
pub mod plan;
pub mod preflight;
pub mod provider;
pub mod recover;
pub mod restore_point;
pub mod role;
pub mod run_dir;
pub mod snapshot;
pub mod stun_history;
pub mod thaw_verdict;
pub mod verification;
pub mod vmware_log;
