//! `quiesce backup` against the lab: order across mirror members checked from
//! the simulated instances' own logs, and every fault ending with nothing
//! frozen and a complete journal.

use crate::common::*;
use quiesce::backup::journal::{Entry, left_frozen};
use std::time::{Duration, Instant};

#[test]
fn two_mirrors_a_group_and_a_standalone_vm_in_a_safe_order() {
    let lab = deployed(
        51,
        &[
            "--mirror",
            "M1=a1,a2,a3",
            "--mirror",
            "M2=b1,b2,b3",
            "--group",
            "g=s1,s2,s3",
            "a1",
            "a2",
            "a3",
            "b1=cache",
            "b2=cache",
            "b3=cache",
            "s1",
            "s2",
            "s3",
            "solo",
        ],
    );
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["plan", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("mirror M1 (QoS timeout 8s): async members first, then the backup, the primary last\n  1. a3 (async member: Disaster Recovery)\n  2. a2 (backup failover member)\n  3. a1 (primary)\n"), "{run:?}");
    assert!(run.stdout.contains("mirror M2 (QoS timeout 8s): async members first, then the backup, the primary last\n  1. b3 (async member: Disaster Recovery)\n  2. b2 (backup failover member)\n  3. b1 (primary)\n"), "Caché roles come from a session: {run:?}");
    assert!(run.stdout.contains("consistency group g: frozen together, snapshotted, thawed in reverse\n  1. s1, then s2, then s3\n"), "{run:?}");

    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("10 hosts: 10 valid"), "{run:?}");
    let b1: Vec<&str> = run
        .stdout
        .lines()
        .find(|l| l.starts_with("b1 "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&b1[..4], ["b1", "M2", "primary", "CACHE"], "{run:?}");
    assert_journal_complete(&lab);

    for (primary, backup_member, dr) in [("a1", "a2", "a3"), ("b1", "b2", "b3")] {
        let [p, b, d] = [primary, backup_member, dr].map(|vm| {
            let intervals = lab.freeze_intervals(vm);
            assert_eq!(intervals.len(), 1, "{vm}: {intervals:?}");
            intervals[0]
        });
        assert!(
            d.1 <= b.0,
            "the async member {dr} is thawed before the backup {backup_member} freezes: {d:?} {b:?}"
        );
        assert!(
            b.1 <= p.0,
            "never both failover members frozen: {backup_member} {b:?}, {primary} {p:?}"
        );
        assert_eq!(history_sets(&lab, primary), 1);
    }
    let group: Vec<(u64, u64)> = ["s1", "s2", "s3"]
        .iter()
        .map(|vm| lab.freeze_intervals(vm)[0])
        .collect();
    assert!(
        group[0].0 <= group[1].0 && group[1].0 <= group[2].0,
        "frozen in order: {group:?}"
    );
    assert!(
        group[2].1 <= group[1].1 && group[1].1 <= group[0].1,
        "thawed in reverse: {group:?}"
    );
    assert!(
        group[2].0 <= group[2].1.min(group[0].1),
        "all three frozen at one point in time: {group:?}"
    );
    for vm in ["a1", "s2", "solo"] {
        lab.assert_nothing_frozen(vm);
    }
    // Every snapshot copied the VM's data while it was frozen.
    assert!(lab.path("vms/s2/snapshots/0/irissim/IRIS/state").exists());
    assert!(
        std::fs::read_to_string(lab.path("vms/a1/vmware.log"))
            .unwrap()
            .contains("Checkpoint_Unstun: vm stopped for ")
    );

    // Without primaries, a1 and b1 are left alone.
    set_playbook(&lab, "include_primaries: true", "include_primaries: false");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("a1  skipped: primary of mirror M1; the playbook does not include primaries"),
        "{run:?}"
    );
    assert_eq!(lab.freeze_intervals("a1").len(), 1);
    assert_eq!(lab.freeze_intervals("a2").len(), 2);
}

#[test]
fn a_second_instance_that_fails_to_freeze() {
    let lab = deployed(52, &["x=iris:IRIS,IRIS2", "y"]);
    lab.lab("fault", &["x", "IRIS2", "freeze=fail"]);
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("FAILED: freeze failed: exit status 1: IRIS2 FREEZE FAILED (ExternalFreeze returned 3); Pre freeze script failed"), "{run:?}");
    assert!(run.stdout.contains("1 valid, 1 failed"), "{run:?}");
    lab.assert_nothing_frozen("x");
    assert_eq!(
        lab.freeze_intervals("x").len(),
        1,
        "IRIS was frozen and thawed"
    );
    assert_eq!(history_sets(&lab, "x"), 0);
    assert_eq!(history_sets(&lab, "y"), 1);
    assert_journal_complete(&lab);
}

#[test]
fn a_thaw_that_fails_once_is_retried() {
    let lab = deployed(53, &["x"]);
    lab.lab("fault", &["x", "IRIS", "thaw=fail_once"]);
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("x: thaw attempt 1 failed: thaw failed: exit status 1: IRIS THAW FAILED (ExternalThaw returned 3); Post thaw script failed; retrying"), "{run:?}");
    lab.assert_nothing_frozen("x");
    let entries = assert_journal_complete(&lab);
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, Entry::ThawFailed { .. }))
    );
    assert_eq!(history_sets(&lab, "x"), 1);
}

#[test]
fn a_snapshot_that_fails_or_times_out() {
    let lab = deployed(54, &["x", "y"]);
    lab.lab("snapshot-fault", &["x", "fail"]);
    lab.lab("snapshot-fault", &["y", "hang 30"]);
    set_playbook(&lab, "timeout: 20s", "timeout: 2s");
    let started = Instant::now();
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the hanging snapshot was given up on"
    );
    assert!(run.stdout.contains("FAILED: snapshot command failed (exit status: 1): snapshot of x failed (injected fault)"), "{run:?}");
    assert!(
        run.stdout
            .contains("FAILED: snapshot command timed out after 2s"),
        "{run:?}"
    );
    for vm in ["x", "y"] {
        lab.assert_nothing_frozen(vm);
        assert_eq!(
            history_sets(&lab, vm),
            0,
            "no backup recorded for a failed snapshot"
        );
    }
    assert_journal_complete(&lab);
}

#[test]
fn a_vm_stunned_past_the_command_timeout_is_thawed_when_it_comes_back() {
    let lab = deployed(56, &["x"]);
    // The snapshot succeeds, then the VM hangs for 6 s (longer than the command timeout).
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && LAB stun DIR {host} && ( (sleep 6; LAB unstun DIR {host}) >/dev/null 2>&1 & )",
    );
    let run = backup(
        &lab,
        &["--command-timeout", "2s", "--connect-timeout", "1s"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("x: thaw attempt 1 failed: "), "{run:?}");
    lab.assert_nothing_frozen("x");
    let entries = assert_journal_complete(&lab);
    // The thaw sent while the VM hung was waited for, not replaced: its answer
    // arrived when the VM came back, so the snapshot is known to be valid.
    assert!(entries.iter().any(|e| matches!(e, Entry::ThawFailed { detail, .. } if detail.contains("thaw did not finish within 3s"))), "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, Entry::Thawed { valid: true, .. })),
        "{entries:?}"
    );
    assert!(run.stdout.contains("1 hosts: 1 valid"), "{run:?}");
}

#[test]
fn sshd_killed_after_the_freeze_then_recover() {
    let lab = deployed(57, &["x"]);
    set_snapshot_command(&lab, "LAB kill-vm DIR {host}");
    set_playbook(&lab, "timeout: 20s", "timeout: 3s");
    set_playbook(&lab, "freeze_margin: 10s", "freeze_margin: 5s");
    let run = backup(&lab, &["--connect-timeout", "1s"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stdout
            .contains("!! x IS STILL FROZEN: its instances pause all user activity at "),
        "{run:?}"
    );
    let (run_id, entries) = lab.journal();
    assert_eq!(left_frozen(&entries), ["x"]);
    let fix = printed_fix(&run.stdout);
    assert_eq!(
        fix,
        format!(
            "quiesce -i '{}' --runs-dir '{}' --known-hosts '{}' recover {run_id}",
            lab.inventory().display(),
            lab.path("runs").display(),
            lab.known_hosts().display()
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains(&format!("   # or on the VM: ssh -p 22 root@{}.11 env QUIESCE_OWNER={run_id} /usr/sbin/post-thaw-script freezeFail\n", lab.net)), "{run:?}");

    // sshd comes back; the printed fix (recover) thaws from the journal alone.
    lab.lab("restart-sshd", &["x"]);
    let (_, status) = lab.sh("x", "/usr/sbin/pre-freeze-script status");
    assert!(status.contains("IRIS suspended"), "{status}");
    let (code, stdout) = run_printed_fix(&fix);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout,
        format!("x: thawed (freezeFail: no backup recorded)\nrun {run_id}: recovered 1 hosts\n")
    );
    lab.assert_nothing_frozen("x");
    assert_journal_complete(&lab);
}

/// The armed session dies and the VM comes back with another host key: the
/// thaw is refused at every try, and the fix printed is the one that works
/// (verify the key, replace the old line, accept the new key by name, then
/// recover), not a `recover` that would be refused the same way.
#[test]
fn a_host_key_changed_during_the_freeze_prints_the_fix_that_works() {
    let lab = deployed(67, &["x"]);
    set_snapshot_command(
        &lab,
        "LAB kill-vm DIR {host} && LAB restart-sshd DIR {host} && ssh-keygen -q -t ed25519 -N \"\" -f DIR/other_key && sed -i \"s|ssh-ed25519 .*|$(cut -d\" \" -f1,2 DIR/other_key.pub)|\" DIR/known_hosts",
    );
    set_playbook(&lab, "timeout: 20s", "timeout: 3s");
    set_playbook(&lab, "freeze_margin: 10s", "freeze_margin: 5s");
    let run = backup(&lab, &["--connect-timeout", "1s"]);
    assert_eq!(run.code, 5, "{run:?}");
    let (run_id, entries) = lab.journal();
    assert_eq!(left_frozen(&entries), ["x"]);
    let known = lab.known_hosts().display().to_string();
    assert!(
        run.stdout
            .contains("HOST KEY CHANGED: the server offers ssh-ed25519 "),
        "{run:?}"
    );
    let fix = printed_fix(&run.stdout);
    assert_eq!(
        fix,
        format!(
            "ssh-keygen -R '{net}.11' -f '{known}' && quiesce -i '{}' --runs-dir '{}' --known-hosts '{known}' --accept-new=x recover {run_id}",
            lab.inventory().display(),
            lab.path("runs").display(),
            net = lab.net,
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("# only once the VM is known to offer ssh-ed25519 SHA256:"),
        "{run:?}"
    );

    // The VM's key really is the recorded one (a test stands for the console
    // check): the printed fix replaces the line and thaws from the journal.
    let (code, stdout) = run_printed_fix(&fix);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.ends_with(&format!("run {run_id}: recovered 1 hosts\n")),
        "{stdout}"
    );
    lab.assert_nothing_frozen("x");
    assert_journal_complete(&lab);
}

/// sshd's MaxSessions below what a run holds at once (the freeze session
/// beside a snapshot on the VM), or 0: the refusal is named as such, with
/// the setting to change, and nothing is left frozen.
#[test]
fn a_session_refused_by_max_sessions_is_named() {
    let lab = deployed(68, &["x"]);
    lab.lab("max-sessions", &["x", "1"]);
    let text = std::fs::read_to_string(lab.path("playbook.yml")).unwrap();
    let start = text.find("{ on: controller").unwrap();
    let end = start + text[start..].find(", timeout").unwrap();
    std::fs::write(
        lab.path("playbook.yml"),
        format!("{}{{ on: vm, command: sync{}", &text[..start], &text[end..]),
    )
    .unwrap();
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout.contains(&format!("FAILED: x ({}.11:22): sshd refused a new session for snapshot (open failed): it allows fewer sessions per connection than quiesce holds at once (sshd_config MaxSessions)", lab.net)),
        "{run:?}"
    );
    lab.assert_truly_thawed("x");
    assert_journal_complete(&lab);

    lab.lab("max-sessions", &["x", "0"]);
    let audit = lab.quiesce(&["audit"]);
    assert_ne!(audit.code, 0, "{audit:?}");
    assert!(
        audit
            .stdout
            .contains("sshd refused a new session for probe"),
        "{audit:?}"
    );
}

/// An instance stopped during the snapshot holds no freeze: the thaw says it
/// is down (its freeze ended with it) and the snapshot INVALID, at once, not
/// "STILL FROZEN" after retrying until the freeze timeout.
#[test]
fn an_instance_down_at_the_thaw_is_reported_down_not_frozen() {
    let lab = deployed(69, &["x"]);
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && LAB exec DIR {host} iris stop IRIS",
    );
    let started = Instant::now();
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "no retries: {run:?}"
    );
    assert!(
        run.stdout
            .contains("IRIS was down at the thaw: its freeze ended when it stopped"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("STILL FROZEN"), "{run:?}");
    let (_, status) = lab.sh("x", "iris qlist");
    assert!(status.contains("^down, last used"), "{status}");
    assert!(!lab.is_frozen("x", "IRIS"));
    assert_journal_complete(&lab);
}

/// `recover` on a run still under way (its controller alive, its thaw on the
/// way) is refused, naming the process; with `--force` it thaws beside it,
/// says so, and the live run does not count that thaw as a valid backup.
#[test]
fn recover_refuses_a_run_still_under_way_unless_forced() {
    let lab = deployed(70, &["x"]);
    set_snapshot_command(&lab, "LAB snapshot DIR {host} && sleep 6");
    let child = spawn_backup(&lab);
    wait_for_entry(&lab, |e| matches!(e, Entry::SnapshotStarted { .. }));
    let (run_id, _) = lab.journal();
    let refused = lab.run(&["recover", &run_id]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.starts_with(&format!(
            "error: run {run_id} is still under way: process {} holds ",
            child.id()
        )),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    assert!(
        lab.is_frozen("x", "IRIS"),
        "the refused recover thawed nothing"
    );

    let forced = lab.run(&["recover", &run_id, "--force"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(
        forced.stdout.starts_with(&format!(
            "warning: run {run_id} is still under way (process {}); recovering beside it (--force)",
            child.id()
        )),
        "{forced:?}"
    );
    assert!(!lab.is_frozen("x", "IRIS"));
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("IRIS had already been thawed without a backup (freezeFail: the VM's dead-man's switch, or a `quiesce recover` beside the run)"),
        "{stdout}"
    );
    assert!(stdout.contains("0 valid, 1 INVALID"), "{stdout}");
    lab.assert_nothing_frozen("x");
    assert_journal_complete(&lab);
}

/// The VM's /tmp full during the whole run: the thaw's answer does not go
/// through a file there, so the snapshot is known valid and IRIS records it.
#[test]
fn a_full_tmp_on_the_vm_loses_no_answer() {
    let lab = deployed(71, &["x"]);
    // The lab's own files (sshd's keys and config) live under the host's
    // /tmp: they are bound back into the full one.
    let dir = lab.dir.path().display().to_string();
    let (code, out) = lab.sh(
        "x",
        &format!("mkdir -p /run/lab-keep && mount --bind {dir} /run/lab-keep && mount -t tmpfs -o size=64k full /tmp && mkdir -p {dir} && mount --bind /run/lab-keep {dir} && dd if=/dev/zero of=/tmp/fill bs=4k count=64 2>/dev/null; (echo data > /tmp/probe) 2>/dev/null && echo writable; df /tmp | tail -1"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("writable"), "/tmp is not full: {out}");
    let run = backup(&lab, &[]);
    let _ = lab.sh(
        "x",
        &format!("umount {dir}; umount /tmp; umount /run/lab-keep"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 hosts: 1 valid"), "{run:?}");
    assert_eq!(history_sets(&lab, "x"), 1, "IRIS recorded the backup");
    lab.assert_truly_thawed("x");
    assert_journal_complete(&lab);
}

/// Ctrl-C (SIGINT) or SIGTERM while snapshots run: no new freeze, the
/// snapshots are killed, everything frozen is thawed, exit 130.
fn interrupted_during_the_snapshot(net: u8, signal: i32) {
    let lab = deployed(net, &["x", "y"]);
    lab.lab("snapshot-fault", &["x", "hang 30"]);
    lab.lab("snapshot-fault", &["y", "hang 30"]);
    let child = spawn_backup(&lab);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::SnapshotStarted { host, .. } if host == "x"),
    );
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::SnapshotStarted { host, .. } if host == "y"),
    );
    crate::common::signal(&child, signal);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FAILED: interrupted during the snapshot"),
        "{stdout}"
    );
    assert!(stdout.contains("(INTERRUPTED)"), "{stdout}");
    for vm in ["x", "y"] {
        lab.assert_nothing_frozen(vm);
        assert_eq!(history_sets(&lab, vm), 0);
    }
    assert_journal_complete(&lab);
}

#[test]
fn ctrl_c_during_the_snapshot_thaws_everything() {
    interrupted_during_the_snapshot(58, libc::SIGINT);
}

#[test]
fn sigterm_during_the_snapshot_thaws_everything() {
    interrupted_during_the_snapshot(64, libc::SIGTERM);
}

#[test]
fn a_controller_killed_with_sigkill_is_recovered_from_its_journal() {
    let lab = deployed(59, &["x=iris:IRIS,IRIS2"]);
    lab.lab("snapshot-fault", &["x", "hang 60"]);
    let mut child = spawn_backup(&lab);
    wait_for_entry(&lab, |e| matches!(e, Entry::SnapshotStarted { .. }));
    child.kill().unwrap();
    child.wait().unwrap();
    // The thaw armed during the snapshot sees the controller vanish and thaws
    // the VM by itself (freezeFail: no backup recorded).
    let start = Instant::now();
    // Until the hook's record is gone too: it is rewritten after the last thaw.
    while {
        let status = lab.sh("x", "/usr/sbin/pre-freeze-script status").1;
        status.contains("suspended") || status.contains("recorded")
    } {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the armed thaw never fired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.assert_nothing_frozen("x");
    assert_eq!(history_sets(&lab, "x"), 0);
    let (run_id, entries) = lab.journal();
    assert_eq!(
        left_frozen(&entries),
        ["x"],
        "the journal cannot know: recover checks"
    );

    let run = lab.run(&["recover", &run_id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("x: already thawed (its armed thaw ran when the controller went away)\n"),
        "{run:?}"
    );
    lab.assert_nothing_frozen("x");
    let (_, entries) = lab.journal();
    assert!(matches!(entries.last(), Some(Entry::Recovered { host, .. }) if host == "x"));
    assert!(left_frozen(&entries).is_empty());
    let run = lab.run(&["recover", &run_id]);
    assert_eq!(
        run.stdout,
        format!("run {run_id}: nothing was left frozen; nothing to do\n")
    );
}

#[test]
fn roles_swapped_between_plan_and_freeze_stop_the_mirror_safely() {
    let lab = deployed(60, &["--mirror", "M=p,b,d", "p", "b", "d"]);
    // The async member's freeze is slow: time for a failover to happen.
    lab.lab("fault", &["d", "IRIS", "hang_freeze=2"]);
    let child = spawn_backup(&lab);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::FreezeStarted { host, .. } if host == "d"),
    );
    lab.lab("set", &["p", "IRIS", "member_status=Backup"]);
    lab.lab("set", &["b", "IRIS", "member_status=Primary"]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("FAILED: mirror M changed since planning: b is now primary, was backup failover member; stopped this mirror before freezing it"), "{stdout}");
    assert!(
        stdout.contains("d     M     async Disaster Recovery  IRIS"),
        "{stdout}"
    );
    assert_eq!(
        lab.freeze_intervals("b").len() + lab.freeze_intervals("p").len(),
        0,
        "no failover member was frozen"
    );
    for vm in ["p", "b", "d"] {
        lab.assert_nothing_frozen(vm);
    }
    assert_journal_complete(&lab);
}

#[test]
fn a_write_daemon_that_resumes_makes_the_snapshot_invalid() {
    let lab = deployed(61, &["x", "y"]);
    lab.lab("set", &["x", "IRIS", "wd_limit_override=1"]);
    lab.lab("snapshot-fault", &["x", "stun 1.5"]);
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("INVALID: the write daemon resumed before the thaw (WDSuspendLimit): this snapshot is INVALID"), "{run:?}");
    assert!(run.stdout.contains("1 valid, 1 INVALID"), "{run:?}");
    lab.assert_nothing_frozen("x");
    assert_eq!(
        history_sets(&lab, "x"),
        0,
        "an invalid snapshot is not recorded as a backup"
    );
    assert_journal_complete(&lab);
}

#[test]
fn the_qos_guard_warns_and_protects_primaries() {
    let lab = deployed(62, &["--mirror", "M=p,b", "p", "b"]);
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "M: { members: [p, b] }",
        "M: { members: [p, b], qos_timeout: 1s }",
    );
    std::fs::write(lab.inventory(), inventory).unwrap();
    lab.lab("snapshot-fault", &["p", "stun 0.6"]);
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("p: warning: stunned 0.6"), "{run:?}");

    // The primary's last stun (0.6 s) is over half the QoS timeout: refused without --force.
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("FAILED: refused to snapshot primary p: its last stun was 0.6"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("over half the mirror's QoS timeout (1s)"),
        "{run:?}"
    );
    lab.assert_nothing_frozen("p");
    let run = backup(&lab, &["--force"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn preflight_refuses_frozen_instances_and_tampered_hooks() {
    let lab = deployed(63, &["x", "y"]);
    lab.sh(
        "x",
        "iris session IRIS -U %SYS '##Class(Backup.General).ExternalFreeze(\"/dev/null\")'",
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "error: x ({}.11:22): instance IRIS is already frozen",
            lab.net
        )),
        "{run:?}"
    );
    assert!(run.stderr.contains("refusing to start"), "{run:?}");
    assert_eq!(lab.freeze_intervals("y").len(), 0, "nothing was frozen");
    lab.sh(
        "x",
        "iris session IRIS -U %SYS '##Class(Backup.General).ExternalThaw(\"/dev/null\")'",
    );

    lab.sh("y", "echo '# local change' >> /usr/sbin/post-thaw-script");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("y  skipped: y ("), "{run:?}");
    assert!(
        run.stdout
            .contains("the hooks differ from what quiesce deploys; not running them"),
        "{run:?}"
    );
    assert_eq!(
        lab.freeze_intervals("y").len(),
        0,
        "a tampered hook is never run"
    );

    assert_eq!(
        lab.freeze_intervals("x").len(),
        2,
        "the manual freeze, then this run's"
    );

    // --limit narrows the playbook's hosts: only x is touched.
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["backup", "-p", &playbook, "--limit", "x"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 hosts: 1 valid"), "{run:?}");
}

#[test]
fn a_thaw_hook_changed_during_the_snapshot_is_never_run() {
    let lab = deployed(65, &["x"]);
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && LAB exec DIR {host} sh -c \"echo exit 0 >> /usr/sbin/post-thaw-script\"",
    );
    let started = Instant::now();
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "no retries until the freeze timeout: nothing can fix a changed hook"
    );
    assert!(
        run.stdout.contains(&format!("LEFT FROZEN: COULD NOT THAW after 1 attempts: x ({}.11:22): /usr/sbin/post-thaw-script no longer matches what quiesce deployed, so it was not run", lab.net)),
        "{run:?}"
    );
    assert!(
        !lab.events("x").contains(" thawed"),
        "the changed hook was not run"
    );

    // Put the deployed hook back, then finish from the journal.
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let (run_id, _) = lab.journal();
    assert_eq!(lab.run(&["recover", &run_id]).code, 0);
    lab.assert_nothing_frozen("x");
    assert_journal_complete(&lab);
}

#[test]
fn a_freeze_hook_changed_after_preflight_is_never_run() {
    let lab = deployed(66, &["--mirror", "M=p,b,d", "p", "b", "d"]);
    lab.lab("fault", &["d", "IRIS", "hang_freeze=2"]);
    let child = spawn_backup(&lab);
    wait_for_entry(
        &lab,
        |e| matches!(e, Entry::FreezeStarted { host, .. } if host == "d"),
    );
    lab.sh("b", "echo 'exit 0' >> /usr/sbin/pre-freeze-script");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains(
            "/usr/sbin/pre-freeze-script no longer matches what quiesce deployed, so it was not run"
        ),
        "{stdout}"
    );
    assert_eq!(
        lab.freeze_intervals("b").len() + lab.freeze_intervals("p").len(),
        0,
        "neither failover member was frozen"
    );
    for vm in ["p", "b", "d"] {
        lab.assert_nothing_frozen(vm);
    }
    let entries = assert_journal_complete(&lab);
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, Entry::NotFrozen { host, .. } if host == "b")),
        "{entries:?}"
    );
}
