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

#[test]
fn the_systemd_units_verify_clean() {
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        // As installed: the binary where the units expect it.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/quiesce", env!("CARGO_BIN_EXE_quiesce"));
        std::fs::write(dir.path().join(&name), text).unwrap();
        names.push(dir.path().join(&name));
    }
    assert_eq!(names.len(), 6, "{names:?}");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&names)
        .output()
        .expect("systemd-analyze (tests/lab/install-deps.sh installs it)");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{out:?}");
}

#[test]
fn the_example_alert_rules_check_clean() {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/prometheus/quiesce-alerts.yml");
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool (tests/lab/install-deps.sh installs it)");
    assert!(out.status.success(), "{out:?}");
}

/// `promtool check metrics` on a metrics file: clean means no output at all.
pub(crate) fn assert_metrics_clean(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (tests/lab/install-deps.sh installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}\n{text}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{text}");
    text
}

#[test]
fn backup_and_audit_metrics_pass_promtool() {
    let lab = crate::common::deployed(175, &["--mirror", "M=p,b", "p", "b", "solo"]);
    let audit = lab.path("audit.prom");
    let run = lab.quiesce(&["audit", "--quiet", "--metrics", audit.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = assert_metrics_clean(&audit);
    assert!(
        text.contains("quiesce_hooks_compliant{host=\"p\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("quiesce_hosts_unreachable{command=\"audit\"} 0"),
        "{text}"
    );

    let backup = lab.path("backup.prom");
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&[
        "backup",
        "-p",
        &playbook,
        "--quiet",
        "--metrics",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = assert_metrics_clean(&backup);
    for host in ["p", "b", "solo"] {
        assert!(
            text.contains(&format!("quiesce_backup_valid{{host=\"{host}\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "quiesce_backup_last_valid_timestamp_seconds{{host=\"{host}\"}} "
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("quiesce_qos_headroom_seconds{host=\"p\"} 7.9"),
        "{text}"
    );
    assert!(text.contains("quiesce_instances_left_frozen 0"), "{text}");
    assert!(
        text.contains("quiesce_run_exit_code{command=\"backup\"} 0"),
        "{text}"
    );
    // Written atomically: no temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn status_covers_quiesce_runs_and_freezes_vmware_started_and_finds_what_is_too_old() {
    let lab = crate::common::deployed(176, &["--esxi", "esx1", "vm1", "vm2"]);
    let playbook = lab.path("playbook.yml").display().to_string();
    // A quiesce backup of vm1 only; vm2 is never backed up.
    let run = lab.run(&["backup", "-p", &playbook, "--quiet", "--limit", "vm1"]);
    assert_eq!(run.code, 0, "{run:?}");
    // VMware Tools (or a backup product) freezes vm1 through the hooks, takes
    // its snapshot (a stun in vmware.log on the datastore) and thaws.
    let (code, out) = lab.sh("vm1", "sleep 2; /usr/sbin/pre-freeze-script freeze");
    assert_eq!(code, 0, "{out}");
    lab.lab("snapshot", &["vm1"]);
    let (code, out) = lab.sh("vm1", "/usr/sbin/post-thaw-script thaw");
    assert_eq!(code, 0, "{out}");
    // `quiesce logs` collects what the hooks logged.
    let run = lab.run(&["logs", "--quiet", "--since", "1h"]);
    assert_eq!(run.code, 0, "{run:?}");

    let metrics = lab.path("status.prom");
    let run = lab.run(&[
        "status",
        "--max-age",
        "1h",
        "--format",
        "json",
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "vm2 was never backed up: {run:?}");
    let statuses: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let of = |host: &str| {
        statuses
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == host)
            .unwrap()
            .clone()
    };
    let vm1 = of("vm1");
    assert_eq!(vm1["instance"], "IRIS");
    assert!(vm1["finding"].is_null(), "{vm1}");
    let by: Vec<&str> = vm1["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["by"].as_str().unwrap())
        .collect();
    assert_eq!(by.len(), 2, "{vm1}");
    assert_eq!(
        by[0], "VMware Tools / backup product",
        "the newest first: {vm1}"
    );
    assert!(by[1].starts_with("quiesce run "), "{vm1}");
    assert!(vm1["backups"][0]["valid"].as_bool().unwrap());
    // Its stun, from the vmware.log `quiesce logs` read from the ESXi host.
    assert!(vm1["backups"][0]["stun_us"].as_u64().unwrap() > 0, "{vm1}");
    let vm2 = of("vm2");
    assert_eq!(vm2["finding"], "never backed up", "{vm2}");
    let text = assert_metrics_clean(&metrics);
    assert!(
        text.contains("quiesce_backup_rpo_finding{host=\"vm2\",instance=\"(any)\"} 1"),
        "{text}"
    );

    let run = lab.run(&["status"]);
    assert_eq!(run.code, 0, "no --max-age, no finding: {run:?}");
    assert!(
        run.stdout.contains("VMware Tools / backup product"),
        "{run:?}"
    );

    // The HTML page, as a real browser draws it: a row per instance and a
    // 30-day strip, today's cell green for vm1 and grey for vm2.
    let run = lab.run(&["status", "--max-age", "1h", "--format", "html"]);
    let page = lab.path("status.html");
    std::fs::write(&page, &run.stdout).unwrap();
    let dom = crate::common::chromium_dom(&lab, &page);
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(
        count("<tr class=\"ok\" data-instance=\"vm1/IRIS\">"),
        1,
        "{dom}"
    );
    assert_eq!(
        count("<tr class=\"finding\" data-instance=\"vm2/(any)\">"),
        1,
        "{dom}"
    );
    assert_eq!(count("data-instance=\"vm1/IRIS\" title="), 30, "{dom}");
    assert_eq!(
        count("<span class=\"day valid\" data-instance=\"vm1/IRIS\" title=\"0 day(s) ago\">"),
        1,
        "{dom}"
    );
    assert_eq!(
        count("<span class=\"day\" data-instance=\"vm2/(any)\""),
        30,
        "{dom}"
    );
    assert!(dom.contains("FINDING: never backed up"), "{dom}");

    // A host whose hooks were changed is left out of the next backup, and
    // status says so (from the kind the run recorded, not its wording).
    lab.sh("vm2", "echo '# changed' >> /usr/sbin/post-thaw-script");
    let run = lab.run(&["backup", "-p", &playbook, "--quiet", "--limit", "vm2"]);
    assert_eq!(run.code, 4, "{run:?}");
    let run = lab.run(&[
        "status",
        "--max-age",
        "1h",
        "--format",
        "json",
        "--limit",
        "vm2",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let statuses: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        statuses[0]["finding"]
            .as_str()
            .unwrap()
            .starts_with("hooks not compliant (run "),
        "{statuses}"
    );
}

#[test]
fn each_subcommand_lists_only_the_options_it_uses() {
    let help = |args: &[&str]| {
        let run = quiesce(args);
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    };
    for sub in ["report", "prune", "man", "completions"] {
        let text = help(&[sub, "--help"]);
        for unused in [
            "--known-hosts",
            "--connect-timeout",
            "--forks",
            "--accept-new",
            "--limit",
        ] {
            assert!(
                !text.contains(unused),
                "{sub} --help lists {unused}:\n{text}"
            );
        }
    }
    for sub in ["audit", "deploy", "backup", "recover", "logs"] {
        let text = help(&[sub, "--help"]);
        assert!(text.contains("--known-hosts"), "{sub}:\n{text}");
        assert!(text.contains("--connect-timeout"), "{sub}:\n{text}");
    }
    assert!(!help(&["audit", "--help"]).contains("--runs-dir"));
    assert!(help(&["report", "--help"]).contains("--runs-dir"));
    // Global options stay global: accepted before any subcommand.
    let run = quiesce(&[
        "--known-hosts",
        "/nonexistent",
        "--forks",
        "3",
        "prune",
        "--keep",
        "1d",
        "--runs-dir",
        "/nonexistent-runs",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
}
