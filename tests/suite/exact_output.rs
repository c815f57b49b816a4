//! What people read, pinned whole: the plan, deploy, audit, backup and
//! report tables of one lab fleet, and the error messages of bad command
//! lines, compared as snapshots (`snapshots/`) with what changes from run to
//! run masked (the lab's directory, clock times, measured seconds, run ids).

use crate::common::{Lab, Run, backup, deployed};

/// The run with the lab's directory masked. Progress lines on stderr come
/// in the order the hosts answer, so they are sorted.
fn shown(lab_dir: &str, run: &Run) -> String {
    let mut progress: Vec<&str> = run.stderr.lines().collect();
    progress.sort();
    let text = format!(
        "exit {}\n--- stdout\n{}--- stderr (sorted)\n{}",
        run.code,
        run.stdout,
        progress
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    text.replace(lab_dir, "[lab]")
}

/// A command line and what it printed, exactly, with `dir` masked.
fn error_shown(dir: &str, args: &[&str], run: &Run) -> String {
    format!(
        "$ quiesce {}\nexit {}\n--- stdout\n{}--- stderr\n{}\n",
        args.join(" "),
        run.code,
        run.stdout,
        run.stderr
    )
    .replace(dir, "[dir]")
}

fn masks() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(r"\d{8}T\d{6}Z-[0-9a-f]{4}", "[run-id]");
    settings.add_filter(r"\d{2}:\d{2}:\d{2}\.\d{3}", "[hh:mm:ss.mmm]");
    settings.add_filter(r"\b\d+\.\d{3}s\b", "[s.mmm]");
    settings
}

/// The report also shows the instances' own log times (whole seconds), their
/// journal files and markers, and windows of whole seconds.
fn report_masks() -> insta::Settings {
    let mut settings = masks();
    settings.add_filter(r"\b\d{2}:\d{2}:\d{2}\b", "[hh:mm:ss]");
    settings.add_filter(
        r"/iris/journal1/\d{8}\.\d+( +)\d+",
        "[journal file]$1[marker]",
    );
    // Whole-second freeze windows: 2 s happens on a loaded 2-core machine.
    settings.add_filter(r"\b[0-2]s\b", "[0-2s]");
    settings
}

#[test]
fn the_tables_of_one_fleet() {
    let lab = Lab::start(
        160,
        &["--mirror", "M1=p1,p2,p3", "p1", "p2", "p3", "solo=cache"],
    );
    let dir = lab.dir.path().display().to_string();
    let playbook = lab.path("playbook.yml").display().to_string();
    masks().bind(|| {
        insta::assert_snapshot!("deploy", shown(&dir, &lab.run(&["deploy"])));
        insta::assert_snapshot!("audit", shown(&dir, &lab.run(&["audit"])));
        insta::assert_snapshot!("plan", shown(&dir, &lab.run(&["plan", "-p", &playbook])));
        let run = backup(&lab, &[]);
        insta::assert_snapshot!("backup", shown(&dir, &run));
    });
    let (run_id, _) = lab.journal();
    report_masks().bind(|| {
        insta::assert_snapshot!("report", shown(&dir, &lab.run(&["report", &run_id])));
    });
}

#[test]
fn the_tables_of_a_failed_run() {
    let lab = deployed(161, &["--mirror", "M1=p1,p2", "p1", "p2", "solo"]);
    let dir = lab.dir.path().display().to_string();
    lab.lab("fault", &["p2", "IRIS", "freeze=fail"]);
    lab.lab("snapshot-fault", &["solo", "fail"]);
    masks().bind(|| {
        insta::assert_snapshot!("failed-backup", shown(&dir, &backup(&lab, &[])));
    });
}

#[test]
fn every_usage_error_says_what_where_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        path("inventory.yml"),
        "hosts:\n  db1: { address: 10.0.0.1 }\n  db2: { address: 10.0.0.2 }\n",
    )
    .unwrap();
    std::fs::write(
        path("playbook.yml"),
        "name: x\nhosts: db9\nsnapshot: { command: snap, timout: 1s }\n",
    )
    .unwrap();
    std::fs::write(
        path("elsewhere.yml"),
        "name: x\nhosts: db1\nsnapshot: { command: snap }\n",
    )
    .unwrap();
    std::fs::write(
        path("misspelt.yml"),
        "hosts:\n  db1: { address: 10.0.0.1 }\nmirrors:\n  M: { members: [db1], qos_timout: 4s }\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("db1")).unwrap();
    std::fs::write(
        path("db1/vmware.log"),
        "2023-01-01T00:00:01.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 2500000 us\n",
    )
    .unwrap();
    let inventory = path("inventory.yml");
    let cases: Vec<Vec<String>> = [
        vec!["-i", "missing.yml", "hosts"],
        vec!["-i", &inventory, "--limit", "db9", "hosts"],
        vec!["-i", &inventory, "--limit", "!db1,!db2", "hosts"],
        vec!["-i", &inventory, "--connect-timeout", "soon", "audit"],
        vec!["-i", &inventory, "--command-timeout", "0", "audit"],
        vec!["-i", &inventory, "render", "db9"],
        vec!["-i", &inventory, "plan", "-p", &path("playbook.yml")],
        vec![
            "-i",
            &inventory,
            "--limit",
            "db2",
            "plan",
            "-p",
            &path("elsewhere.yml"),
        ],
        vec!["-i", &inventory, "plan", "-p", &path("nothing.yml")],
        vec!["-i", &inventory, "logs", "--since", "yesterday"],
        vec![
            "--runs-dir",
            &path("runs"),
            "report",
            "20260101T000000Z-0000",
        ],
        vec![
            "--runs-dir",
            &path("runs"),
            "recover",
            "20260101T000000Z-0000",
        ],
        vec!["stun", &path("no-vmware.log")],
        vec!["stun", "--qos", "fast", &path("inventory.yml")],
        vec!["-i", &path("misspelt.yml"), "stun", &path("db1/vmware.log")],
        vec!["-i", &path("nothing.yml"), "stun", &path("db1/vmware.log")],
        vec!["frobnicate"],
    ]
    .iter()
    .map(|args| args.iter().map(|a| a.to_string()).collect())
    .collect();
    let mut text = String::new();
    let shown_dir = dir.path().display().to_string();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = crate::common::quiesce(&args);
        assert_ne!(run.code, 0, "{args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
        text.push_str(&error_shown(&shown_dir, &args, &run));
    }
    masks().bind(|| insta::assert_snapshot!("usage-errors", text));
}
