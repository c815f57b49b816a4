//! Living in cron: shell completions that a real bash loads and uses, the
//! manual page, and `prune`, which never removes what `recover` needs.

use crate::common::quiesce;
use quiesce::backup::journal::{Entry, HostAccess, Journal};

#[test]
fn bash_completes_subcommands_and_format_values() {
    let run = quiesce(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{run:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiesce.bash");
    std::fs::write(&file, &run.stdout).unwrap();
    let complete = |words: &[&str]| -> Vec<String> {
        // As bash calls a completion function: the words, the current index.
        let words_text = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let script = format!(
            "source '{}'\nCOMP_WORDS=({words_text})\nCOMP_CWORD={}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n_quiesce quiesce '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            file.display(),
            words.len() - 1,
            words.join(" "),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let subcommands = complete(&["quiesce", ""]);
    for expected in [
        "backup",
        "deploy",
        "audit",
        "recover",
        "stun",
        "prune",
        "completions",
    ] {
        assert!(
            subcommands.iter().any(|s| s == expected),
            "{expected}: {subcommands:?}"
        );
    }
    assert_eq!(complete(&["quiesce", "aud"]), ["audit"]);
    let formats = complete(&["quiesce", "audit", "--format", ""]);
    assert_eq!(formats, ["table", "json", "junit"], "{formats:?}");
}

#[test]
fn the_manual_page_names_every_subcommand() {
    let run = quiesce(&["man"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "roff: {}",
        &run.stdout[..80]
    );
    for subcommand in ["deploy", "audit", "backup", "recover", "stun", "prune"] {
        assert!(run.stdout.contains(subcommand), "{subcommand}");
    }
}

/// A run directory started `age_ms` ago whose journal has `entries` after its start.
fn run(runs: &std::path::Path, id: &str, age_ms: u64, entries: &[Entry]) {
    let journal = Journal::create(&runs.join(id)).unwrap();
    let at = quiesce::backup::journal::now_ms() - age_ms;
    let inventory = quiesce::inventory::Inventory::parse(
        std::path::Path::new("i.yml"),
        "hosts:\n  db1: { address: 10.0.0.1 }\n",
    )
    .unwrap();
    journal
        .append(&Entry::RunStarted {
            run_id: id.into(),
            at,
            playbook: "p.yml".into(),
            inventory: "i.yml".into(),
            freeze_timeout_secs: 30,
            hosts: vec![HostAccess::new(&inventory.hosts[0], "0".into())],
        })
        .unwrap();
    for entry in entries {
        journal.append(entry).unwrap();
    }
}

#[test]
fn prune_removes_old_runs_but_never_one_recover_needs() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let day = 86_400_000;
    let finished = Entry::RunFinished {
        at: 1,
        outcome: "finished".into(),
    };
    let frozen = Entry::FreezeStarted {
        host: "db1".into(),
        at: 1,
        pauses_at: 2,
    };
    run(&runs, "old-done", 40 * day, std::slice::from_ref(&finished));
    run(
        &runs,
        "old-frozen",
        40 * day,
        &[frozen.clone(), finished.clone()],
    );
    run(&runs, "old-running", 40 * day, &[]);
    run(&runs, "young", day, &[finished]);
    let runs_arg = runs.display().to_string();
    let dry = quiesce(&[
        "--runs-dir",
        &runs_arg,
        "prune",
        "--keep",
        "30d",
        "--dry-run",
    ]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(runs.join("old-done").exists(), "a dry run removes nothing");
    let run = quiesce(&["--runs-dir", &runs_arg, "prune", "--keep", "30d"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "removed  old-done\n\
         kept     old-frozen: not thawed per its journal: db1\n\
         kept     old-running: it never finished (it may still be running)\n\
         prune: 1 run(s) removed older than 30d, 2 kept (not thawed or not finished: `quiesce recover RUN`)\n"
    );
    assert!(!runs.join("old-done").exists());
    for kept in ["old-frozen", "old-running", "young"] {
        assert!(runs.join(kept).exists(), "{kept}");
    }
}
