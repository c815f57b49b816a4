//! The red-team matrix: attacks and bad luck against a backup on the lab,
//! each checked against the simulator's ground truth (every instance's real
//! state, the freeze intervals it logged) and not only against what quiesce
//! printed. Numbers in the test names refer to the defects of the
//! field-proof safety issue they prove closed.

use crate::common::*;
use quiesce::backup::journal::{Entry, left_frozen};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn spawn(lab: &Lab, extra: &[&str]) -> Child {
    spawn_backup_with(lab, extra)
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits up to `secs` for `cond`; false if it never held.
fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Replaces the playbook's whole snapshot line (see `set_snapshot_command`
/// for LAB and DIR).
fn snapshot_command(lab: &Lab, command: &str) {
    let lab_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
    let command = command
        .replace("LAB", &format!("bash {lab_sh}"))
        .replace("DIR", &lab.dir.path().display().to_string());
    let text = std::fs::read_to_string(lab.path("playbook.yml")).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("snapshot:") {
                format!("snapshot: {{ on: controller, command: '{command}', timeout: 20s }}")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(lab.path("playbook.yml"), text.join("\n") + "\n").unwrap();
}

fn short_playbook(lab: &Lab, snapshot_timeout: &str, margin: &str) {
    set_playbook(lab, "timeout: 20s", &format!("timeout: {snapshot_timeout}"));
    set_playbook(
        lab,
        "freeze_margin: 10s",
        &format!("freeze_margin: {margin}"),
    );
}

fn recover_latest(lab: &Lab) -> Run {
    let (run_id, _) = lab.journal();
    lab.run(&["recover", &run_id])
}

// ---- 1. freezes are owned ----

#[test]
fn d1_a_freeze_held_by_vmware_tools_is_never_thawed_by_a_run() {
    let lab = deployed(100, &["--mirror", "M=p,b,d", "p", "b", "d"]);
    lab.lab("fault", &["d", "IRIS", "hang_freeze=2"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::FreezeStarted { host, .. } if host == "d"),
    );
    // VMware Tools quiesces b (no owner token) after preflight.
    assert_eq!(lab.sh("b", "/usr/sbin/pre-freeze-script freeze").0, 0);
    let run = finish(child);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("not frozen by this run: a freeze by vmware holds b"),
        "{run:?}"
    );
    assert!(run.stdout.contains("b     M     backup"), "{run:?}");
    // Ground truth: VMware's freeze still holds, untouched; p was never frozen.
    assert!(lab.is_frozen("b", "IRIS"), "the run thawed VMware's freeze");
    assert_eq!(lab.freeze_intervals("p").len(), 0);
    let (_, entries) = lab.journal();
    assert!(entries.iter().any(|e| matches!(e, Entry::NotFrozen { host, detail, .. } if host == "b" && detail.contains("vmware"))));
    assert!(
        !entries
            .iter()
            .any(|e| matches!(e, Entry::ThawStarted { host, .. } if host == "b")),
        "no thaw was sent to b"
    );
    assert!(left_frozen(&entries).is_empty(), "{entries:?}");
    // VMware finishes its own snapshot.
    assert_eq!(lab.sh("b", "/usr/sbin/post-thaw-script thaw").0, 0);
    for vm in ["p", "b", "d"] {
        lab.assert_truly_thawed(vm);
    }
}

#[test]
fn d1_a_thaw_thaws_only_its_owners_instances() {
    let lab = deployed(101, &["x=iris:IRIS,IRIS2"]);
    // Run A froze IRIS, run B froze IRIS2 (the state a hook leaves, made by hand).
    lab.sh("x", "for i in IRIS IRIS2; do iris session $i -U %SYS '##Class(Backup.General).ExternalFreeze(\"/dev/null\")'; done; mkdir -p /run/quiesce; printf 'frozen:IRIS:runA\\nfrozen:IRIS2:runB\\n' > /run/quiesce/frozen");
    let (code, out) = lab.sh(
        "x",
        "QUIESCE_OWNER=runB /usr/sbin/post-thaw-script freezeFail",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("quiesce-outcome IRIS2 thawed"), "{out}");
    assert!(lab.is_frozen("x", "IRIS"), "run B thawed run A's freeze");
    assert!(!lab.is_frozen("x", "IRIS2"));
    // VMware Tools' own thaw (no owner) leaves run A's freeze alone too.
    let (code, out) = lab.sh("x", "/usr/sbin/post-thaw-script thaw");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("nothing recorded: vmware has nothing frozen"),
        "{out}"
    );
    assert!(lab.is_frozen("x", "IRIS"));
    let (code, out) = lab.sh("x", "QUIESCE_OWNER=runA /usr/sbin/post-thaw-script thaw");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "quiesce-outcome IRIS valid");
    lab.assert_truly_thawed("x");
}

#[test]
fn d1_two_backups_started_one_second_apart() {
    let lab = deployed(102, &["x", "y"]);
    lab.lab("snapshot-fault", &["x", "hang 3"]);
    let first = spawn(&lab, &[]);
    std::thread::sleep(Duration::from_secs(1));
    // Same controller, same runs dir: refused politely before anything is touched.
    let second = backup(&lab, &[]);
    assert_eq!(second.code, 4, "{second:?}");
    assert!(second.stderr.contains("error: refusing to start: host x is being backed up by another quiesce on this machine (process "), "{second:?}");
    // Another controller (another runs dir) is kept off by the VM itself.
    let other_runs = lab.path("other-runs").display().to_string();
    let third = lab.quiesce(&[
        "--runs-dir",
        &other_runs,
        "backup",
        "-p",
        lab.path("playbook.yml").to_str().unwrap(),
    ]);
    assert_eq!(third.code, 4, "{third:?}");
    let first = finish(first);
    assert_eq!(first.code, 0, "{first:?}");
    for vm in ["x", "y"] {
        lab.assert_truly_thawed(vm);
        assert_eq!(
            lab.freeze_intervals(vm).len(),
            1,
            "only the first run froze {vm}"
        );
    }
}

// ---- 2. hooks are checked and run as private copies ----

fn tampered_during_the_snapshot(net: u8, tamper: &str, why: &str) {
    let lab = deployed(net, &["x"]);
    set_snapshot_command(
        &lab,
        &format!("LAB snapshot DIR {{host}} && LAB exec DIR {{host}} sh -c \"{tamper}\""),
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stdout.contains("/usr/sbin/post-thaw-script no longer matches what quiesce deployed, so it was not run ("), "{run:?}");
    assert!(run.stdout.contains(why), "{run:?}");
    assert!(lab.is_frozen("x", "IRIS"), "the tampered hook was run");
    assert!(!lab.events("x").contains(" thawed"));
    // The printed fix redeploys first, then recovers: it works.
    let fix = printed_fix(&run.stdout);
    assert!(fix.contains(" deploy --force --limit x && "), "{fix}");
    let (code, stdout) = run_printed_fix(&fix);
    assert_eq!(code, 0, "{stdout}");
    lab.assert_truly_thawed("x");
}

#[test]
fn d2_a_thaw_hook_replaced_by_a_symlink_is_never_run() {
    tampered_during_the_snapshot(
        103,
        "cp /usr/sbin/post-thaw-script /tmp/evil && ln -sf /tmp/evil /usr/sbin/post-thaw-script",
        "is not a regular file owned by root:root with mode 0700 (found: 0:0 777 symbolic link)",
    );
}

#[test]
fn d2_a_thaw_hook_chmodded_is_never_run() {
    tampered_during_the_snapshot(
        104,
        "chmod 0755 /usr/sbin/post-thaw-script",
        "(found: 0:0 755 regular file)",
    );
}

#[test]
fn d2_a_thaw_hook_given_away_is_never_run() {
    tampered_during_the_snapshot(
        105,
        "chown quiesce-lab /usr/sbin/post-thaw-script",
        "is not a regular file owned by root:root with mode 0700",
    );
}

#[test]
fn d2_a_hook_in_a_writable_directory_is_never_run() {
    let lab = deployed(106, &["x"]);
    lab.sh("x", "chmod 0777 /usr/sbin");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("directory /usr/sbin is group- or other-writable (mode 777)"),
        "{run:?}"
    );
    assert_eq!(
        lab.freeze_intervals("x").len(),
        0,
        "a hook in a writable directory was run"
    );
    lab.sh("x", "chmod 0755 /usr/sbin");
}

#[test]
fn d2_a_hook_swapped_between_check_and_run_never_runs() {
    let lab = deployed(107, &["x"]);
    // As fast as it can, something swaps the freeze hook (atomically, by
    // rename) between the deployed one and one that leaves a mark.
    lab.sh("x", "cd /usr/sbin && cp -p pre-freeze-script .good && printf '#!/bin/sh\\ntouch /var/log/pwned\\n' > .evil && chmod 0700 .evil && (while :; do cp -p .evil .t1 && mv -f .t1 pre-freeze-script; cp -p .good .t2 && mv -f .t2 pre-freeze-script; done > /dev/null 2>&1 & echo $! > /run/swapper.pid)");
    let host = quiesce::inventory::Inventory::load(&lab.inventory(), &Default::default())
        .unwrap()
        .hosts
        .remove(0);
    let sha = quiesce::hooks::sha256_hex(
        quiesce::hooks::render(quiesce::hooks::HookKind::PreFreeze, &host).as_bytes(),
    );
    let script = quiesce::hooks::checked_run_script();
    std::fs::write(lab.path("checked_run.sh"), &script).unwrap();
    let (_, counts) = lab.sh("x", &format!("ran=0 refused=0 unchecked=0; for i in $(seq 1 150); do sh {} owner test /usr/sbin/pre-freeze-script {sha} status > /dev/null 2>&1; case $? in 0) ran=$((ran+1)) ;; 97) refused=$((refused+1)) ;; 98) unchecked=$((unchecked+1)) ;; *) echo \"other $?\" >&2 ;; esac; done; echo $ran $refused $unchecked", lab.path("checked_run.sh").display()));
    lab.sh("x", "kill $(cat /run/swapper.pid); cd /usr/sbin && mv -f .good pre-freeze-script; rm -f .evil .t1 .t2");
    let counts: Vec<u32> = counts
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(
        counts.iter().sum::<u32>(),
        150,
        "every try ran the deployed hook or refused: {counts:?}"
    );
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "the race was real: {counts:?}"
    );
    assert_eq!(
        lab.sh("x", "test -e /var/log/pwned").0,
        1,
        "the swapped-in hook ran"
    );
}

// ---- 3. a check that cannot be made is retried; recover after a redeploy ----

#[test]
fn d3_a_checksum_that_fails_once_is_retried_not_reported_changed() {
    let lab = deployed(108, &["x"]);
    // A sha256sum that fails (as a failed fork would) the first time after the snapshot.
    std::fs::write(lab.path("fake-sha256sum"), "#!/bin/sh\nif [ ! -e /run/failed-once ]; then touch /run/failed-once; exit 1; fi\nexec /usr/bin/sha256sum \"$@\"\n").unwrap();
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && LAB exec DIR {host} install -m 0755 DIR/fake-sha256sum /usr/sbin/sha256sum",
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("thaw attempt 1 failed: the thaw hook could not be checked, so it was not run: cannot checksum /usr/sbin/post-thaw-script; not running it; retrying"), "{run:?}");
    lab.assert_truly_thawed("x");
    lab.sh("x", "rm -f /usr/sbin/sha256sum");
}

#[test]
fn d3_recover_accepts_the_hook_of_a_redeploy() {
    let lab = deployed(109, &["x"]);
    set_snapshot_command(&lab, "LAB kill-vm DIR {host}");
    short_playbook(&lab, "3s", "5s");
    let run = backup(&lab, &["--connect-timeout", "1s"]);
    assert_eq!(run.code, 5, "{run:?}");
    lab.lab("restart-sshd", &["x"]);
    // The site upgrades its settings (another freeze timeout renders another
    // hook) and redeploys before recovering.
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "platform: iris }\n",
        "platform: iris, freeze_timeout: 7m }\n",
    );
    std::fs::write(lab.inventory(), inventory).unwrap();
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let run = recover_latest(&lab);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("x: thawed (freezeFail: no backup recorded)"),
        "{run:?}"
    );
    lab.assert_truly_thawed("x");
}

// ---- 4. the dead-man's switch holds from the first freeze ----

#[test]
fn d4_sigkill_while_a_consistency_group_is_still_freezing() {
    let lab = deployed(110, &["--group", "g=a,b", "a", "b"]);
    lab.lab("fault", &["b", "IRIS", "hang_freeze=3"]);
    let mut child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::FreezeStarted { host, .. } if host == "b"),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lab.is_frozen("a", "IRIS"), "a froze before the kill");
    assert!(
        eventually(15, || !lab.is_frozen("a", "IRIS")
            && !lab.is_frozen("b", "IRIS")),
        "the VMs did not thaw themselves"
    );
    let run = recover_latest(&lab);
    assert_eq!(run.code, 0, "{run:?}");
    for vm in ["a", "b"] {
        lab.assert_truly_thawed(vm);
    }
}

#[test]
fn d4_sigkill_while_a_two_instance_vm_is_mid_freeze() {
    let lab = deployed(111, &["x=iris:IRIS,IRIS2"]);
    lab.lab("fault", &["x", "IRIS2", "hang_freeze=3"]);
    let mut child = spawn(&lab, &[]);
    assert!(eventually(15, || lab.is_frozen("x", "IRIS")));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        eventually(15, || !lab.is_frozen("x", "IRIS")
            && !lab.is_frozen("x", "IRIS2")
            && !lab
                .sh("x", "/usr/sbin/pre-freeze-script status")
                .1
                .contains("recorded")),
        "the VM did not thaw itself"
    );
    lab.assert_truly_thawed("x");
    assert_eq!(recover_latest(&lab).code, 0);
}

#[test]
fn d4_a_network_split_fires_the_switch_at_its_deadline() {
    let lab = deployed(112, &["x"]);
    // freeze timeout 3s + 5s = 8s; the VM's deadline is 8s - 2.5s, in whole seconds 5s.
    short_playbook(&lab, "3s", "5s");
    lab.lab("snapshot-fault", &["x", "hang 30"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(&lab, |e| matches!(e, Entry::Frozen { .. }));
    // Stop the controller itself: no end of input ever reaches the VM.
    let cgroup = format!("/sys/fs/cgroup/freezer/quiesce-red-team-{}", child.id());
    std::fs::create_dir_all(&cgroup).unwrap();
    std::fs::write(format!("{cgroup}/cgroup.procs"), child.id().to_string()).unwrap();
    std::fs::write(format!("{cgroup}/freezer.state"), "FROZEN").unwrap();
    let frozen_at = Instant::now();
    let thawed = eventually(10, || !lab.is_frozen("x", "IRIS"));
    let took = frozen_at.elapsed();
    std::fs::write(format!("{cgroup}/freezer.state"), "THAWED").unwrap();
    let run = finish(child);
    let _ = std::fs::remove_dir(&cgroup);
    assert!(thawed, "the VM stayed frozen through the split: {run:?}");
    assert!(took < Duration::from_secs(6), "thawed after {took:?}");
    assert!(!lab.events("x").contains("paused"), "the instance paused");
    assert!(lab.sh("x", "cat /var/log/snapshot.log").1.contains("Post thaw script started (freezeFail: no word from the controller 5s after the freeze started (network split?))"));
    lab.assert_truly_thawed("x");
    assert_ne!(run.code, 0, "{run:?}");
}

// ---- 5. every stop signal thaws ----

fn signalled_during_the_snapshot(net: u8, signals: &[i32]) {
    let lab = deployed(net, &["x", "y"]);
    lab.lab("snapshot-fault", &["x", "hang 30"]);
    lab.lab("snapshot-fault", &["y", "hang 30"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::SnapshotStarted { host, .. } if host == "y"),
    );
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::SnapshotStarted { host, .. } if host == "x"),
    );
    for s in signals {
        signal(&child, *s);
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = finish(child);
    assert_eq!(run.code, 130, "{run:?}");
    for vm in ["x", "y"] {
        lab.assert_truly_thawed(vm);
    }
    let (_, entries) = lab.journal();
    assert!(left_frozen(&entries).is_empty(), "{entries:?}");
}

#[test]
fn d5_sighup_thaws_everything() {
    signalled_during_the_snapshot(113, &[libc::SIGHUP]);
}

#[test]
fn d5_sigquit_thaws_everything() {
    signalled_during_the_snapshot(114, &[libc::SIGQUIT]);
}

#[test]
fn d5_a_double_ctrl_c_never_interrupts_the_thaw() {
    signalled_during_the_snapshot(115, &[libc::SIGINT, libc::SIGINT, libc::SIGTERM]);
}

// ---- 6. the journal is a write-ahead log ----

#[test]
fn d6_a_full_runs_directory_freezes_nothing() {
    let lab = deployed(116, &["x", "y"]);
    let runs = lab.path("full");
    std::fs::create_dir_all(&runs).unwrap();
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&runs)
            .status()
            .unwrap()
            .success()
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat /dev/zero > {}/fill 2>/dev/null",
            runs.display()
        ))
        .status();
    let run = lab.quiesce(&[
        "--runs-dir",
        runs.to_str().unwrap(),
        "backup",
        "-p",
        lab.path("playbook.yml").to_str().unwrap(),
    ]);
    let _ = Command::new("umount").arg(&runs).status();
    assert_ne!(run.code, 0, "{run:?}");
    for vm in ["x", "y"] {
        assert_eq!(
            lab.freeze_intervals(vm).len(),
            0,
            "{vm} was frozen without a journal: {run:?}"
        );
        lab.assert_truly_thawed(vm);
    }
}

#[test]
fn d6_a_torn_freeze_started_still_opens_the_host_for_recover() {
    let lab = deployed(117, &["x"]);
    lab.lab("snapshot-fault", &["x", "hang 60"]);
    let mut child = spawn(&lab, &[]);
    wait_for_entry(&lab, |e| matches!(e, Entry::SnapshotStarted { .. }));
    // Stop the VM so that its dead-man's switch cannot fire, then kill the controller.
    lab.lab("stun", &["x"]);
    child.kill().unwrap();
    child.wait().unwrap();
    // Tear the journal: cut its freeze-started line and glue it to the next one.
    let (run_id, _) = lab.journal();
    let path = lab.path("runs").join(&run_id).join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let torn: Vec<String> = text
        .lines()
        .filter(|l| !l.contains("\"event\":\"run-finished\""))
        .map(|l| {
            if l.contains("freeze-started") {
                l[..l.len() / 2].to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&path, torn.concat()).unwrap();
    lab.lab("unstun", &["x"]);
    let run = lab.run(&["recover", &run_id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("note: 1 line(s) of"), "{run:?}");
    assert!(run.stdout.contains("x: "), "x was not checked: {run:?}");
    lab.assert_truly_thawed("x");
}

// ---- 7. nothing on the VM dies of a broken pipe ----

#[test]
fn d7_sigkill_during_a_thaw_that_fails_once() {
    let lab = deployed(118, &["x=iris:IRIS,IRIS2"]);
    lab.lab("fault", &["x", "IRIS2", "thaw=fail_once"]);
    lab.lab("fault", &["x", "IRIS2", "hang_thaw=2"]);
    let mut child = spawn(&lab, &[]);
    wait_for_entry(&lab, |e| matches!(e, Entry::ThawStarted { .. }));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    // The older instance is thawed although the controller is gone.
    assert!(
        eventually(10, || !lab.is_frozen("x", "IRIS")),
        "IRIS stayed frozen"
    );
    let run = recover_latest(&lab);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("x");
}

// ---- 8. a freeze someone else ended ----

#[test]
fn d8_a_dba_thaws_by_hand_during_the_snapshot() {
    let lab = deployed(119, &["x"]);
    set_snapshot_command(
        &lab,
        "LAB exec DIR {host} iris session IRIS -U %SYS \"##Class(Backup.General).ExternalThaw(\\\"/dev/null\\\")\"; LAB snapshot DIR {host}",
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("INVALID: someone else ended the freeze of IRIS before the thaw"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("STILL FROZEN"), "{run:?}");
    lab.assert_truly_thawed("x");
    // Nothing is left behind: the next backup runs.
    snapshot_command(&lab, "LAB snapshot DIR {host}");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn d8_a_freeze_replaced_during_the_snapshot_is_never_valid() {
    let lab = deployed(190, &["x"]);
    let call = |m: &str| {
        format!(
            "LAB exec DIR {{host}} iris session IRIS -U %SYS \"##Class(Backup.General).{m}(\\\"/dev/null\\\")\""
        )
    };
    set_snapshot_command(
        &lab,
        &format!(
            "{}; LAB snapshot DIR {{host}}; {}; true",
            call("ExternalThaw"),
            call("ExternalFreeze")
        ),
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("INVALID: someone else ended this run's freeze of IRIS and froze it again"),
        "{run:?}"
    );
    // Ground truth: the snapshot copy caught the instance running, and the
    // other party's freeze still holds (quiesce did not thaw it).
    let copies: Vec<_> = std::fs::read_dir(lab.path("vms/x/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let snap = std::fs::read_to_string(copies[0].join("irissim/IRIS/state")).unwrap();
    assert!(snap.contains("frozen=0"), "{snap}");
    assert!(lab.is_frozen("x", "IRIS"));
    assert!(!lab.events("x").contains("history_set"));
}

#[test]
fn d8_the_vms_record_removed_during_the_snapshot_is_still_thawed() {
    let lab = deployed(187, &["x"]);
    set_snapshot_command(
        &lab,
        "LAB exec DIR {host} rm -f /run/quiesce/frozen; LAB snapshot DIR {host}",
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("STILL FROZEN"), "{run:?}");
    assert!(lab.sh("x", "cat /var/log/snapshot.log").1.contains(
        "IRIS is frozen and its record is gone; this run's freeze froze it, so it is thawed"
    ));
    lab.assert_truly_thawed("x");
}

#[test]
fn d4_a_clock_stepped_back_during_a_split_moves_no_deadline() {
    let lab = deployed(188, &["x"]);
    short_playbook(&lab, "3s", "5s");
    lab.lab("snapshot-fault", &["x", "hang 30"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(&lab, |e| matches!(e, Entry::Frozen { .. }));
    // NTP or VMware time sync steps the VM's clock back 10 minutes (a `date`
    // of its own, first on the hooks' PATH), and the controller is cut off.
    lab.sh(
        "x",
        r#"printf '#!/bin/sh\nexec /usr/bin/date -d "@$(( $(/usr/bin/date +%%s) - 600 ))" "$@"\n' > /usr/sbin/date && chmod 755 /usr/sbin/date && date +%s"#,
    );
    let cgroup = format!("/sys/fs/cgroup/freezer/quiesce-red-team-{}", child.id());
    std::fs::create_dir_all(&cgroup).unwrap();
    std::fs::write(format!("{cgroup}/cgroup.procs"), child.id().to_string()).unwrap();
    std::fs::write(format!("{cgroup}/freezer.state"), "FROZEN").unwrap();
    let frozen_at = Instant::now();
    let thawed = eventually(10, || !lab.is_frozen("x", "IRIS"));
    let took = frozen_at.elapsed();
    std::fs::write(format!("{cgroup}/freezer.state"), "THAWED").unwrap();
    let run = finish(child);
    let _ = std::fs::remove_dir(&cgroup);
    assert!(thawed, "the VM stayed frozen through the split: {run:?}");
    assert!(took < Duration::from_secs(6), "thawed after {took:?}");
    assert!(!lab.events("x").contains("paused"), "the instance paused");
    lab.assert_truly_thawed("x");
}

// ---- 9. half-open sessions ----

#[test]
fn d9_a_hung_session_is_bypassed_and_its_stale_thaw_never_hits_the_next_run() {
    let lab = deployed(120, &["x"]);
    // After the snapshot, the run's freeze session on the VM stops (as a
    // half-open connection would): the thaw word gets no answer.
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && LAB signal DIR {host} STOP quiesce-freeze",
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("x: thaw attempt 1 failed: x ("),
        "{run:?}"
    );
    assert!(run.stdout.contains("1 hosts: 1 valid"), "{run:?}");
    lab.assert_truly_thawed("x");
    // The next run's snapshot resumes the stale session: its thaw belongs to
    // the first run and must not thaw the second run's freeze.
    snapshot_command(
        &lab,
        "LAB signal DIR {host} CONT quiesce-freeze; sleep 1; LAB snapshot DIR {host}",
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let intervals = lab.freeze_intervals("x");
    assert_eq!(intervals.len(), 2, "{intervals:?}");
    let events = lab.events("x");
    let second_freeze = events
        .lines()
        .filter(|l| l.contains(" frozen "))
        .nth(1)
        .unwrap()
        .to_string();
    let after: Vec<&str> = events
        .split(&second_freeze)
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.contains("thawed"))
        .collect();
    assert_eq!(
        after.len(),
        1,
        "one thaw after the second freeze, the run's own: {events}"
    );
    lab.assert_truly_thawed("x");
}

// ---- 10. validity needs this run's freeze to hold ----

#[test]
fn d10_a_thaw_after_the_freeze_timeout_is_an_outage_not_valid() {
    let lab = deployed(121, &["x"]);
    // freeze timeout 2s + 5s = 7s; the VM hangs 9 s right after the snapshot.
    short_playbook(&lab, "2s", "5s");
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && LAB stun DIR {host} && ( (sleep 9; LAB unstun DIR {host}) >/dev/null 2>&1 & )",
    );
    let run = backup(
        &lab,
        &["--command-timeout", "2s", "--connect-timeout", "1s"],
    );
    assert!(run.stdout.contains("1 hosts: 0 valid"), "{run:?}");
    assert_ne!(run.code, 0, "{run:?}");
    if run.code == 5 {
        assert_eq!(recover_latest(&lab).code, 0);
    }
    lab.assert_truly_thawed("x");
}

// ---- 11. ordering and the snapshot's lifetime ----

#[test]
fn d11_ctrl_c_during_the_primarys_role_reread_freezes_nothing_more() {
    let lab = deployed(122, &["--mirror", "M=p,b", "p", "b"]);
    // Every session on the primary takes 3 s: so does re-reading its role.
    lab.lab("fault", &["p", "IRIS", "hang=3"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::Thawed { host, .. } if host == "b"),
    );
    std::thread::sleep(Duration::from_millis(800));
    signal(&child, libc::SIGINT);
    let run = finish(child);
    assert_eq!(run.code, 130, "{run:?}");
    assert_eq!(
        lab.freeze_intervals("p").len(),
        0,
        "the primary was frozen after Ctrl-C: {run:?}"
    );
    lab.lab("clear-faults", &["p", "IRIS"]);
    lab.assert_truly_thawed("p");
    lab.assert_truly_thawed("b");
}

#[test]
fn d11_a_snapshot_command_dies_with_a_killed_controller() {
    let lab = deployed(123, &["x"]);
    let marker = lab.path("late-snapshot");
    set_snapshot_command(&lab, &format!("sleep 3; touch {}", marker.display()));
    let mut child = spawn(&lab, &[]);
    wait_for_entry(&lab, |e| matches!(e, Entry::SnapshotStarted { .. }));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !marker.exists(),
        "the snapshot was taken after the controller died"
    );
    assert!(eventually(10, || !lab.is_frozen("x", "IRIS")));
    assert_eq!(recover_latest(&lab).code, 0);
    lab.assert_truly_thawed("x");
}

#[test]
fn d11_a_snapshot_on_the_vm_is_killed_at_its_timeout() {
    let lab = deployed(124, &["x"]);
    let lab_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
    let dir = lab.dir.path().display().to_string();
    set_playbook(
        &lab,
        &format!("on: controller, command: 'bash {lab_sh} snapshot {dir} {{host}}'"),
        "on: vm, command: 'sleep 4; touch /var/log/late-snapshot'",
    );
    set_playbook(&lab, "timeout: 20s", "timeout: 2s");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout.contains("snapshot command timed out after 2s"),
        "{run:?}"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        lab.sh("x", "test -e /var/log/late-snapshot").0,
        1,
        "the VM's snapshot ran on after its timeout"
    );
    lab.assert_truly_thawed("x");
}

// ---- 12. the whole mirror is re-read before each freeze ----

#[test]
fn d12_a_primary_in_trouble_stops_the_backup_members_freeze() {
    let lab = deployed(125, &["--mirror", "M=p,b,d", "p", "b", "d"]);
    lab.lab("fault", &["d", "IRIS", "hang_freeze=2"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::FreezeStarted { host, .. } if host == "d"),
    );
    lab.lab("set", &["p", "IRIS", "member_status=In Trouble"]);
    let run = finish(child);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("mirror M changed since planning: p is now unsettled: failover member with status `In Trouble`, was primary"), "{run:?}");
    assert_eq!(
        lab.freeze_intervals("b").len() + lab.freeze_intervals("p").len(),
        0,
        "a failover member was frozen"
    );
    for vm in ["p", "b", "d"] {
        lab.assert_truly_thawed(vm);
    }
}

// ---- 13. a stun over the QoS timeout fails the run ----

#[test]
fn d13_a_stun_over_the_qos_timeout_is_a_finding() {
    let lab = deployed(126, &["--mirror", "M=p,b", "p", "b"]);
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "M: { members: [p, b] }",
        "M: { members: [p, b], qos_timeout: 1s }",
    );
    std::fs::write(lab.inventory(), inventory).unwrap();
    lab.lab("snapshot-fault", &["b", "stun 1.2"]);
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout.contains("b  STUN OVER QOS: stunned 1.2"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("of mirror M's QoS timeout 1s: the mirror may have failed over"),
        "{run:?}"
    );
    let results =
        std::fs::read_to_string(lab.path("runs").join(lab.journal().0).join("results.json"))
            .unwrap();
    assert!(results.contains("\"findings\""), "{results}");
    for vm in ["p", "b"] {
        lab.assert_truly_thawed(vm);
    }
}

// ---- more bad luck ----

#[test]
fn sshd_killed_after_the_freeze_and_never_restarted() {
    let lab = deployed(127, &["x"]);
    set_snapshot_command(&lab, "LAB snapshot DIR {host} && LAB kill-sshd DIR {host}");
    short_playbook(&lab, "3s", "5s");
    let run = backup(&lab, &["--connect-timeout", "1s"]);
    // The session survives sshd's listener: the armed thaw still answers.
    assert_eq!(run.code, 0, "{run:?}");
    lab.lab("restart-sshd", &["x"]);
    lab.assert_truly_thawed("x");
}

#[test]
fn a_snapshot_that_succeeds_after_the_freeze_budget_is_not_valid() {
    let lab = deployed(128, &["x"]);
    // freeze timeout 2s + 5s = 7s: the snapshot's own timeout (2s) ends it.
    short_playbook(&lab, "2s", "5s");
    set_snapshot_command(&lab, "sleep 5; LAB snapshot DIR {host}");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("FAILED: snapshot command timed out after "),
        "{run:?}"
    );
    assert_eq!(history_sets(&lab, "x"), 0);
    lab.assert_truly_thawed("x");
}

#[test]
fn the_vm_stunned_during_the_thaw() {
    let lab = deployed(129, &["x"]);
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && (sleep 0.2; LAB stun DIR {host}; sleep 3; LAB unstun DIR {host}) >/dev/null 2>&1 &",
    );
    let run = backup(
        &lab,
        &["--command-timeout", "2s", "--connect-timeout", "1s"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("x");
}

#[test]
fn sigkill_during_the_thaw_of_a_consistency_group() {
    let lab = deployed(130, &["--group", "g=a,b", "a", "b"]);
    lab.lab("fault", &["a", "IRIS", "hang_thaw=2"]);
    let mut child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::ThawStarted { host, .. } if host == "a"),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(eventually(10, || !lab.is_frozen("a", "IRIS")
        && !lab.is_frozen("b", "IRIS")));
    assert_eq!(recover_latest(&lab).code, 0);
    for vm in ["a", "b"] {
        lab.assert_truly_thawed(vm);
    }
}

#[test]
fn d2_a_vm_whose_thaw_hook_cannot_run_is_never_frozen() {
    let lab = deployed(131, &["--mirror", "M=p,b,d", "p", "b", "d"]);
    lab.lab("fault", &["d", "IRIS", "hang_freeze=2"]);
    let child = spawn(&lab, &[]);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::FreezeStarted { host, .. } if host == "d"),
    );
    // After preflight, b's thaw hook changes: b could not be thawed, so it is not frozen.
    lab.sh("b", "echo 'exit 0' >> /usr/sbin/post-thaw-script");
    let run = finish(child);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("/usr/sbin/post-thaw-script no longer matches what quiesce deployed, so it was not run (/usr/sbin/post-thaw-script does not match what quiesce deployed (sha256 "), "{run:?}");
    assert_eq!(
        lab.freeze_intervals("b").len() + lab.freeze_intervals("p").len(),
        0,
        "{run:?}"
    );
    let (_, entries) = lab.journal();
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, Entry::NotFrozen { host, .. } if host == "b")),
        "{entries:?}"
    );
    for vm in ["p", "b", "d"] {
        lab.assert_truly_thawed(vm);
    }
}

#[test]
fn d6_a_journal_that_fails_mid_run_stops_new_freezes_and_thaws() {
    let lab = deployed(132, &["--mirror", "M=p,b", "p", "b"]);
    let runs = lab.path("small");
    std::fs::create_dir_all(&runs).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&runs)
        .status()
        .unwrap();
    assert!(mounted.success());
    // During the backup member's snapshot the journal's disk fills up, the
    // journal's own last page too (tmpfs would take small appends there).
    snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && if [ {host} = b ]; then cat /dev/zero > {run_dir}/../fill; cat /dev/zero >> {run_dir}/journal.jsonl; fi 2>/dev/null; true",
    );
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.quiesce(&[
        "--runs-dir",
        runs.to_str().unwrap(),
        "backup",
        "-p",
        &playbook,
    ]);
    let _ = Command::new("umount").arg(&runs).status();
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("cannot write the journal"), "{run:?}");
    assert!(
        run.stderr.contains("no new freeze starts (thaws go on)"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("cannot be written, so no new freeze starts"),
        "{run:?}"
    );
    assert_eq!(
        lab.freeze_intervals("p").len(),
        0,
        "a freeze started without its journal entry: {run:?}"
    );
    assert_eq!(lab.freeze_intervals("b").len(), 1);
    for vm in ["p", "b"] {
        lab.assert_truly_thawed(vm);
    }
}
