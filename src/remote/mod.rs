//! Reaching the VMs: SSH connections and host-key trust, quoting for the
//! remote shell, the fan-out over hosts, and the remote scripts (`scripts/`)
//! every step runs on a VM.

pub mod fake;
pub mod framing;
pub mod known_hosts;
pub mod known_hosts_file;
pub mod local;
pub mod runner;
pub mod shell;
pub mod ssh;
pub mod ssh_config;
pub mod transport;
