//! Run directories: each backup gets a new one, created exclusively and
//! named by a sortable run id; commands that look back (`report`, `logs`,
//! `recover`) find one by its id, its path or its journal's path.

use crate::backup::journal::Journal;
use crate::output::error::Error;
use std::path::{Path, PathBuf};

/// The lock a live run holds on its directory (`RUN/run.lock`, flock),
/// released by the kernel when the process ends however it ends: `recover`
/// tells a run still under way from one whose controller is gone.
pub struct RunLock {
    _file: std::fs::File,
}

const RUN_LOCK: &str = "run.lock";

fn lock_run(run_dir: &Path) -> std::io::Result<RunLock> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(run_dir.join(RUN_LOCK))?;
    if !crate::backup::host_lock::lock_file(&file, false) {
        return Err(std::io::Error::other("cannot lock it"));
    }
    write!(file, "process {}", std::process::id())?;
    Ok(RunLock { _file: file })
}

/// Who holds `run_dir`'s lock (`process PID`), when a live process does.
pub fn live_holder(run_dir: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(run_dir.join(RUN_LOCK)).ok()?;
    if crate::backup::host_lock::lock_file(&file, false) {
        return None;
    }
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    Some(if holder.trim().is_empty() {
        "a process".to_string()
    } else {
        holder.trim().to_string()
    })
}

/// A new run id and its run directory with an empty journal, locked for as
/// long as this process lives; the directory is created exclusively, so two
/// runs never share one.
pub fn create(runs_dir: &std::path::Path) -> Result<(String, Journal, RunLock), Error> {
    let mut last = None;
    for _ in 0..16 {
        let run_id = new_run_id();
        let run_dir = runs_dir.join(&run_id);
        match Journal::create(&run_dir) {
            Ok(journal) => {
                let lock = lock_run(&run_dir).map_err(|source| Error::File {
                    path: run_dir.join(RUN_LOCK),
                    action: "create the run's lock",
                    source,
                })?;
                return Ok((run_id, journal, lock));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((run_dir, e)),
            Err(source) => {
                return Err(Error::File {
                    path: run_dir,
                    action: "create the run directory",
                    source,
                });
            }
        }
    }
    let (path, source) = last.expect("at least one attempt");
    Err(Error::File {
        path,
        action: "create a new run directory",
        source,
    })
}

/// `20261124T031500Z-4f2a`: sortable, unique enough for one controller.
pub fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        (now.subsec_nanosecond() as u32 ^ std::process::id()) & 0xffff
    )
}

/// The directory of `run`: a run id under `runs_dir`, a run directory, or
/// its journal file. A run that is not there is a usage error naming the
/// newest runs that are.
pub fn resolve(runs_dir: &Path, run: &str) -> Result<PathBuf, Error> {
    let given = PathBuf::from(run);
    if given.is_file() {
        return Ok(given.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    if given.join("journal.jsonl").is_file() {
        return Ok(given);
    }
    let dir = runs_dir.join(run);
    if dir.is_dir() {
        return Ok(dir);
    }
    let mut known: Vec<String> = std::fs::read_dir(runs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("journal.jsonl").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    known.sort();
    let newest: Vec<String> = known.into_iter().rev().take(3).collect();
    Err(Error::Usage {
        message: format!("no run `{run}` in {}", runs_dir.display()),
        hint: if newest.is_empty() {
            "name a run by its id (a backup prints it), its directory or its journal; check --runs-dir".into()
        } else {
            format!(
                "name a run by its id (a backup prints it), its directory or its journal; the newest here: {}",
                newest.join(", ")
            )
        },
    })
}
