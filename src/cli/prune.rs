//! `prune --keep AGE`: removes run directories older than AGE. A run whose
//! journal shows something not thawed (an open host, a torn line naming one)
//! or that never finished (it may be running) is never removed: it is what
//! `recover` needs.

use super::print;
use crate::backup::journal::{Entry, Journal, left_frozen, now_ms};
use crate::output::duration;
use crate::output::error::Error;
use crate::output::exit_code;
use std::path::Path;

pub fn prune(runs_dir: &Path, keep: &str, dry_run: bool) -> Result<u8, Error> {
    let keep = duration::parse(keep).map_err(|why| Error::Usage {
        message: format!("--keep {keep:?}: {why}"),
        hint: "how long to keep runs, e.g. 30d or 12h".into(),
    })?;
    let cutoff = now_ms().saturating_sub(keep.as_millis() as u64);
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            print(&format!("prune: no runs in {}\n", runs_dir.display()));
            return Ok(exit_code::SUCCESS);
        }
        Err(source) => {
            return Err(Error::File {
                path: runs_dir.to_path_buf(),
                action: "read",
                source,
            });
        }
    };
    let mut dirs: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    let (mut removed, mut kept) = (0, 0);
    let mut text = String::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let journal = dir.join("journal.jsonl");
        let started = run_started(&dir, &journal);
        if started.is_none_or(|at| at >= cutoff) {
            continue;
        }
        if let Some(why) = must_keep(&journal) {
            kept += 1;
            text.push_str(&format!("kept     {name}: {why}\n"));
            continue;
        }
        if !dry_run {
            std::fs::remove_dir_all(&dir).map_err(|source| Error::File {
                path: dir.clone(),
                action: "remove",
                source,
            })?;
        }
        removed += 1;
        let verb = if dry_run { "would remove" } else { "removed" };
        text.push_str(&format!("{verb:<8} {name}\n"));
    }
    text.push_str(&format!(
        "prune: {removed} run(s) {} older than {}, {kept} kept (not thawed or not finished: `quiesce recover RUN`)\n",
        if dry_run { "would be removed" } else { "removed" },
        duration::format(keep)
    ));
    print(&text);
    Ok(exit_code::SUCCESS)
}

/// When the run started: its journal's first entry, else the directory's age.
fn run_started(dir: &Path, journal: &Path) -> Option<u64> {
    if let Ok(text) = Journal::read_text(journal)
        && let Some(Entry::RunStarted { at, .. }) = text.entries.first()
    {
        return Some(*at);
    }
    let modified = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
    let ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    u64::try_from(ms).ok()
}

/// Why a run must stay, if it must: its journal shows a host not thawed, a
/// torn line, or no end.
fn must_keep(journal: &Path) -> Option<String> {
    if !journal.exists() {
        // `logs` directories and other collections have no journal.
        return None;
    }
    let text = match Journal::read_text(journal) {
        Ok(text) => text,
        Err(e) => return Some(format!("its journal cannot be read ({e})")),
    };
    let open = left_frozen(&text.entries);
    if !open.is_empty() {
        return Some(format!("not thawed per its journal: {}", open.join(", ")));
    }
    if !text.uncertain_hosts.is_empty() || text.damaged_lines > 0 {
        return Some(format!("{} damaged journal line(s)", text.damaged_lines));
    }
    if !text
        .entries
        .iter()
        .any(|e| matches!(e, Entry::RunFinished { .. }))
    {
        return Some("it never finished (it may still be running)".into());
    }
    None
}
