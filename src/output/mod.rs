//! What every command shares on the way out: the one error type (and where
//! its messages are worded), exit codes, the typed event stream, the
//! progress display and plain tables.

pub mod atomic;
pub mod duration;
pub mod error;
pub mod event;
pub mod exit_code;
pub mod metrics;
pub mod progress;
pub mod table;
pub mod terminal;

pub use atomic::{atomic_write, exclusive_temp};
