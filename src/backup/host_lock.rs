//! One backup at a time per host on this controller: a lock file per host
//! under `RUNS_DIR/.locks/`, held (flock) for the whole run and released by
//! the kernel when the process ends, however it ends. Controllers on other
//! machines are kept apart by the hook's own lock and freeze ownership.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

pub struct HostLocks {
    _files: Vec<File>,
}

impl HostLocks {
    /// Locks every host, or none: the error names a host already locked and
    /// the process holding it.
    pub fn acquire(runs_dir: &Path, hosts: &[&str]) -> Result<HostLocks, String> {
        let dir = runs_dir.join(".locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for host in hosts {
            let path = dir.join(format!("{host}.lock"));
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let locked = lock_file(&file, false);
            if !locked {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(format!(
                    "host {host} is being backed up by another quiesce on this machine ({}; lock {})",
                    if holder.is_empty() {
                        "process unknown"
                    } else {
                        holder
                    },
                    path.display()
                ));
            }
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "process {}", std::process::id());
            files.push(file);
        }
        Ok(HostLocks { _files: files })
    }
}

/// An exclusive flock(2) on `file`, released when it closes; `wait` blocks
/// until it is free, otherwise a lock held elsewhere returns false at once.
pub fn lock_file(file: &std::fs::File, wait: bool) -> bool {
    let operation = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock only reads the descriptor, which `file` keeps open for
    // the length of the call.
    #[allow(unsafe_code)]
    let status = unsafe { libc::flock(file.as_raw_fd(), operation) };
    status == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let first = HostLocks::acquire(dir.path(), &["a", "b"]).unwrap();
        let refused = HostLocks::acquire(dir.path(), &["c", "b"]).err().unwrap();
        assert!(
            refused.starts_with(
                "host b is being backed up by another quiesce on this machine (process "
            ),
            "{refused}"
        );
        drop(first);
        assert!(HostLocks::acquire(dir.path(), &["b"]).is_ok());
    }
}
