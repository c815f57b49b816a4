//! Whole files or none: every file quiesce replaces (results, metrics, stun
//! history, collected logs) is written to a new temporary beside it and renamed.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// created exclusively (`O_EXCL`: a name planted beforehand, a symlink
/// included, is never opened), synced, then renamed over `path`. A reader
/// sees the old file or the new one, never half of one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via(path, bytes, now_nanos)
}

fn now_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

fn write_via(path: &Path, bytes: &[u8], nanos: impl Fn() -> u32) -> std::io::Result<()> {
    let (mut file, tmp) = temp_via(path, nanos)?;
    let written = file
        .write_all(bytes)
        .and_then(|_| file.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A new file beside `path`, created exclusively under a unique name, for a
/// caller that streams into it and then renames it over `path`
/// (`std::fs::rename`, which replaces a planted symlink, never follows it).
pub fn exclusive_temp(path: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    temp_via(path, now_nanos)
}

/// `.NAME.PID.NANOS.ATTEMPT.tmp` beside `path`, opened with `O_EXCL`; a
/// name already there is passed over (16 tries).
fn temp_via(path: &Path, nanos: impl Fn() -> u32) -> std::io::Result<(std::fs::File, PathBuf)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempt = 0u32;
    loop {
        let tmp = dir.join(format!(
            ".{name}.{}.{:09}.{attempt}.tmp",
            std::process::id(),
            nanos()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            other => return other.map(|file| (file, tmp)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_never_opens_a_planted_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("results.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        atomic_write(&target, b"one").unwrap();
        atomic_write(&target, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two");
        // Plant symlinks at the first names it would pick: none is opened.
        for attempt in 0..4 {
            std::os::unix::fs::symlink(
                &victim,
                dir.path().join(format!(
                    ".results.json.{}.{:09}.{attempt}.tmp",
                    std::process::id(),
                    0
                )),
            )
            .unwrap();
        }
        write_via(&target, b"three", || 0).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "three");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp") && !e.path().is_symlink())
            .collect();
        assert!(left.is_empty());
    }
}
