//! `quiesce verify` against a real btrfs file system in a lab VM and the
//! simulated instance's tearable data: a writer updates its blocks (in two
//! halves) and journal without end, so only a snapshot taken frozen holds
//! whole blocks. Ground truth: the simulator's own integrity check of the
//! snapshot, its events, and the VM's file system after the teardown.

use crate::common::Lab;
use crate::providers::Btrfs;

/// A lab VM whose IRIS writes its database on btrfs, with a verification
/// instance VERIFY (down, not mirrored) beside it.
fn setup<'a>(lab: &'a Lab, verify: &str) -> (Btrfs<'a>, String, String) {
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let fs = Btrfs::new(lab, "vm1");
    let settings = verify;
    let verify = lab.path("vms/vm1/verify").display().to_string();
    let cpf = format!(
        "[Databases]\nIRISSYS={verify}/mgr/\n[Journal]\nCurrentDirectory={verify}/journal/\n[MirrorMember]\nSystemName=VERIFY\n[Startup]\nDefaultPort=1973\n"
    );
    let (code, out) = lab.sh(
        "vm1",
        &format!(
            "set -e; rm -f {m}/db/user/IRIS.DAT; mkdir -p {verify}/mgr; printf '%s' '{cpf}' > {verify}/iris.cpf",
            m = fs.mount
        ),
    );
    assert_eq!(code, 0, "{out}");
    for (inst, kv) in [
        ("IRIS", "data=on".to_string()),
        ("VERIFY", "status=down".to_string()),
        ("VERIFY", format!("dir={verify}")),
    ] {
        assert!(lab.lab("set", &["vm1", inst, &kv]).status.success());
    }
    let (code, out) = lab.sh(
        "vm1",
        "setsid iris writer IRIS > /dev/null 2>&1 < /dev/null & sleep 1",
    );
    assert_eq!(code, 0, "{out}");
    let playbook = fs.playbook(&format!(
        "verify:\n  instance: VERIFY\n  timeout: 2m\n{settings}"
    ));
    (fs, playbook, cpf)
}

/// The run's snapshot of the subvolume whose label is `label`.
fn snapshot_of(fs: &Btrfs<'_>, run: &str, label: &str) -> String {
    let name = fs
        .snapshots("vm1")
        .into_iter()
        .map(|(n, _)| n)
        .find(|n| n.starts_with(&format!("quiesce@{run}@")) && n.ends_with(&format!("@{label}")))
        .unwrap_or_else(|| panic!("no snapshot @{label} of {run}"));
    format!("{}/.snapshots/{name}", fs.mount)
}

/// Until `vm`'s events show the verification instance started `n` times.
pub(crate) fn wait_for_start(lab: &Lab, vm: &str, n: usize) {
    let started = std::time::Instant::now();
    while lab.events(vm).matches("VERIFY started journal=").count() < n {
        assert!(started.elapsed().as_secs() < 60, "{}", lab.events(vm));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Kills harder than a hang-up, so that no teardown runs on the VM: its
/// verify script (only this lab's, whose arguments name `path`: other
/// tests' VMs share the process table) and the controller, `child`.
pub(crate) fn kill_hard(lab: &Lab, vm: &str, path: &str, mut child: std::process::Child) {
    lab.sh(vm, &format!("pkill -9 -f 'verify-clean[e]d.*{path}'"));
    crate::common::signal(&child, libc::SIGKILL);
    let _ = child.wait();
}

/// Nothing of the verification is left: no clone, VERIFY down, its CPF as it was.
fn assert_torn_down(lab: &Lab, fs: &Btrfs<'_>, cpf: &str) {
    let (_, out) = lab.sh(
        "vm1",
        &format!(
            "ls -A {m}/.snapshots/.verify; btrfs subvolume list -o {m} | grep -c verify; iris qlist VERIFY | cut -d^ -f4; cat {v}/iris.cpf",
            m = fs.mount,
            v = lab.path("vms/vm1/verify").display()
        ),
    );
    assert_eq!(
        out,
        format!("0\ndown, last used Mon Nov 23 09:00:00 2026\n{cpf}")
    );
}

#[test]
fn a_valid_run_verifies_and_a_snapshot_taken_unfrozen_does_not() {
    let lab = Lab::start(192, &["vm1=iris:IRIS,VERIFY"]);
    let (fs, playbook, cpf) = setup(&lab, "");
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("vm1");
    let (run_id, _) = lab.journal();

    let verified = lab.run(&["verify", &run_id, "-p", &playbook]);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified
            .stdout
            .starts_with("verified: vm1 IRIS: restored from ")
            && verified.stdout.contains("  integrity ok")
            && verified.stdout.contains("run ")
            && verified.stdout.ends_with(": 1 of 1 instances verified\n"),
        "{verified:?}"
    );
    // What a verify timer runs: the newest run with a valid backup.
    let latest = lab.run(&["verify", "latest", "-p", &playbook]);
    assert!(
        latest.code == 0
            && latest
                .stdout
                .ends_with(&format!("run {run_id}: 1 of 1 instances verified\n")),
        "{latest:?}"
    );
    // The simulator saw the verification instance started without user
    // access, the journal restored and the check pass.
    let events = lab.events("vm1");
    assert!(
        events.contains("VERIFY started journal=") && events.contains(" emergency nostu"),
        "{events}"
    );
    assert!(
        events.contains("VERIFY journal_restore from=") && events.contains("ok=1"),
        "{events}"
    );
    assert!(events.contains("VERIFY integrity ok=1"), "{events}");
    assert!(!events.contains("emergency_login_refused"), "{events}");
    assert_torn_down(&lab, &fs, &cpf);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.path(&format!("runs/{run_id}/verify.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["hosts"][0]["instances"][0]["ok"], true, "{record}");
    // status tells taken from verified; the metrics too.
    let metrics = lab.path("status.prom").display().to_string();
    let status = lab.run(&[
        "status",
        "--max-age",
        "1h",
        "--max-age-of",
        "verified",
        "--metrics",
        &metrics,
    ]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("LAST VERIFIED"), "{status:?}");
    // promtool judges the textfile with the new family in it.
    let prom = crate::operations::assert_metrics_clean(std::path::Path::new(&metrics));
    assert!(
        prom.contains(
            "quiesce_last_verified_backup_timestamp_seconds{host=\"vm1\",instance=\"IRIS\"}"
        ),
        "{prom}"
    );
    let report = lab.run(&["report", &run_id]);
    assert!(
        report
            .stdout
            .contains("  vm1 IRIS: verified: restored from "),
        "{report:?}"
    );

    // The same run's database snapshot replaced by one taken unfrozen, while
    // a block was half written (the simulator's own check says so).
    let db = snapshot_of(&fs, &run_id, "db");
    let mut torn = false;
    for _ in 0..30 {
        let (_, out) = lab.sh(
            "vm1",
            &format!(
                "btrfs -q subvolume delete {db}; btrfs -q subvolume snapshot -r {m}/db {db}; iris integrity {db}/user",
                m = fs.mount
            ),
        );
        if out.contains("is damaged") {
            torn = true;
            break;
        }
    }
    assert!(
        torn,
        "no snapshot taken unfrozen held a torn block in 30 tries"
    );
    let failed = lab.run(&["verify", &run_id, "-p", &playbook]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        failed.stdout.starts_with("NOT VERIFIED: vm1 IRIS: ")
            && failed.stdout.contains("is damaged")
            && failed.stdout.ends_with(": 0 of 1 instances verified\n"),
        "{failed:?}"
    );
    assert_torn_down(&lab, &fs, &cpf);
    // Taken but not verified now: a finding for the verified RPO only; and
    // retention never keeps it as the newest valid backup.
    assert_eq!(lab.run(&["status", "--max-age", "1h"]).code, 0);
    let status = lab.run(&["status", "--max-age", "1h", "--max-age-of", "verified"]);
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stdout.contains("FAILED verification"), "{status:?}");
    let prune = lab.run(&["snapshots", "prune", "-p", &playbook, "--check"]);
    assert!(
        prune
            .stdout
            .contains("remove: it failed verification (quiesce verify)"),
        "{prune:?}"
    );
}

#[test]
fn a_missing_journal_file_and_a_clone_that_cannot_start_fail_with_the_reason() {
    let lab = Lab::start(193, &["vm1=iris:IRIS,VERIFY"]);
    let (fs, playbook, cpf) = setup(&lab, "  after_backup: true\n");
    // The backup verifies its valid hosts as soon as it ends.
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("\nverified: vm1 IRIS: restored from "),
        "{run:?}"
    );
    assert_torn_down(&lab, &fs, &cpf);
    let (run_id, _) = lab.journal();

    // The verification instance fails to start on the clone.
    assert!(
        lab.lab("fault", &["vm1", "VERIFY", "start=fail"])
            .status
            .success()
    );
    let failed = lab.run(&["verify", &run_id, "-p", &playbook]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        failed.stdout.starts_with(
            "NOT VERIFIED: vm1 IRIS: the verification instance VERIFY did not start on the clone: "
        ) && failed.stdout.contains("startup failed"),
        "{failed:?}"
    );
    assert_torn_down(&lab, &fs, &cpf);
    assert!(lab.lab("clear-faults", &["vm1", "VERIFY"]).status.success());

    // The site's own check runs with the verification instance up on the
    // clone, told which one and how to log in; its failure fails the verify.
    let site = |command: &str| {
        let text = std::fs::read_to_string(&playbook).unwrap().replace(
            "verify:\n",
            &format!("verify:\n  command: '{command}'\n  command_timeout: 5s\n"),
        );
        let path = lab.path("site.yml").display().to_string();
        std::fs::write(&path, text).unwrap();
        path
    };
    let checks = site(
        "test -n \"$QUIESCE_VERIFY_PASSWORD\" && echo \"app on $QUIESCE_VERIFY_INSTANCE for $QUIESCE_INSTANCE: $(iris qlist $QUIESCE_VERIFY_INSTANCE | cut -d^ -f4 | cut -d, -f1) in $QUIESCE_CLONE_DIR\"",
    );
    let passed = lab.run(&["verify", &run_id, "-p", &checks]);
    assert_eq!(passed.code, 0, "{passed:?}");
    assert!(
        passed.stdout.contains("; verify.command passed\n")
            && passed.stdout.contains(&format!(
                "  | command app on VERIFY for IRIS: running in {}/.snapshots/.verify/{run_id}@vm1\n",
                fs.mount
            ))
            && passed.stdout.contains("  command ok ("),
        "{passed:?}"
    );
    assert_torn_down(&lab, &fs, &cpf);
    let refused = lab.run(&[
        "verify",
        &run_id,
        "-p",
        &site("echo orders: 0 rows; exit 3"),
    ]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stdout.starts_with(
            "NOT VERIFIED: vm1 IRIS: the site's verify.command exited 3: orders: 0 rows\n"
        ),
        "{refused:?}"
    );
    let slow = lab.run(&["verify", &run_id, "-p", &site("sleep 60")]);
    assert!(
        slow.stdout.starts_with(
            "NOT VERIFIED: vm1 IRIS: the site's verify.command did not finish within 5s (verify.command_timeout)\n"
        ),
        "{slow:?}"
    );
    assert_torn_down(&lab, &fs, &cpf);

    // The journal file the run recorded is gone from its snapshot.
    let journal = snapshot_of(&fs, &run_id, "journal");
    let (code, out) = lab.sh(
        "vm1",
        &format!(
            "set -e; btrfs property set -ts {journal} ro false; f=$(ls {journal}/2026* | tail -n 1); rm -f \"$f\"; btrfs property set -ts {journal} ro true; echo \"${{f##*/}}\""
        ),
    );
    assert_eq!(code, 0, "{out}");
    let failed = lab.run(&["verify", &run_id, "-p", &playbook]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        failed.stdout.starts_with(&format!(
            "NOT VERIFIED: vm1 IRIS: journal file {}/journal/{} recorded by the run is missing from the copy",
            fs.mount,
            out.trim()
        )),
        "{failed:?}"
    );
    assert_torn_down(&lab, &fs, &cpf);
}

/// A verify killed hard in the middle (the controller and the VM's script
/// both SIGKILLed while the verification instance runs on the clone):
/// `recover RUN` finds the clone from the verify journal and puts the VM
/// right.
#[test]
fn a_verify_killed_mid_way_leaves_a_journal_that_recover_cleans_up_from() {
    let lab = Lab::start(194, &["vm1=iris:IRIS,VERIFY"]);
    let (fs, playbook, cpf) = setup(&lab, "");
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    let (run_id, _) = lab.journal();
    // The verification instance's session waits: the kill comes then.
    assert!(
        lab.lab("fault", &["vm1", "VERIFY", "hang=60"])
            .status
            .success()
    );
    let child = crate::common::spawn_quiet(&lab, &["verify", &run_id, "-p", &playbook], &[]);
    wait_for_start(&lab, "vm1", 1);
    // A second verify meanwhile leaves the first one's clone alone.
    let second = lab.run(&["verify", &run_id, "-p", &playbook]);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second.stdout.starts_with(
            "NOT VERIFIED: vm1 IRIS: another verify is using the verification instance VERIFY on vm1 now: wait for it to end"
        ),
        "{second:?}"
    );
    let (_, busy) = lab.sh("vm1", "iris qlist VERIFY | cut -d^ -f4 | cut -d, -f1");
    assert_eq!(busy.trim(), "running", "{second:?}");
    kill_hard(&lab, "vm1", &fs.mount, child);
    let (_, left) = lab.sh(
        "vm1",
        &format!(
            "ls {}/.snapshots/.verify; iris qlist VERIFY | cut -d^ -f4",
            fs.mount
        ),
    );
    assert!(
        left.contains(&format!("{run_id}@vm1")) && left.contains("running"),
        "{left}"
    );

    assert!(lab.lab("clear-faults", &["vm1", "VERIFY"]).status.success());
    let recovered = lab.run(&["recover", &run_id]);
    assert_eq!(recovered.code, 0, "{recovered:?}");
    let journal = std::fs::read_to_string(lab.path(&format!("runs/{run_id}/verify.jsonl")))
        .unwrap_or_default();
    assert!(
        recovered.stdout.starts_with(&format!(
            "vm1: removed the clone a killed `quiesce verify {run_id}` left in {}/.snapshots/.verify, and stopped the verification instance VERIFY\n",
            fs.mount
        )),
        "{recovered:?}\n{journal}"
    );
    assert_torn_down(&lab, &fs, &cpf);
    // Said once: a second recover has nothing of it left.
    let again = lab.run(&["recover", &run_id]);
    assert!(!again.stdout.contains("removed the clone"), "{again:?}");
}
