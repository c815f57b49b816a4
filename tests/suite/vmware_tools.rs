//! The hooks as VMware Tools runs them (tests/lab/vmtools-standin, written
//! from open-vm-tools' vmbackup and procMgr): one timer for the whole
//! operation that sends SIGTERM to the script's pid, then SIGKILL 5 s later;
//! the legacy scripts before backupScripts.d, thawed in reverse; a sparse
//! environment; tools.conf's scriptArg and execScripts. Ground truth is the
//! simulated instance's state, never only what Tools or the hook printed.

use crate::common::{Lab, deployed, history_sets, instance_events, snapshot_log};
use std::time::{Duration, Instant};

const FREEZE: &str = "/usr/sbin/pre-freeze-script";
const THAW: &str = "/usr/sbin/post-thaw-script";

/// Tools' lines with the pids masked (they change every run).
fn masked(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.split(' ')
                .map(|w| if w.starts_with("pid=") { "pid=P" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Waits until no hook's worker holds the VM's lock (a stopped hook's
/// worker goes on with its work after Tools has given up on it).
fn workers_done(lab: &Lab, vm: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if lab.sh(vm, "test -e /run/quiesce/lock").0 != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{vm}: a hook's worker still holds /run/quiesce/lock after 60 s");
}

/// A stopped hook's freeze was undone: after its worker is done the VM
/// holds no freeze, and the simulator saw IRIS frozen once and thawed, and
/// IRIS2 (after it in the hook's order) never asked to freeze.
fn assert_the_freeze_of_iris_was_undone(lab: &Lab) {
    workers_done(lab, "vm1");
    lab.assert_truly_thawed("vm1");
    lab.assert_nothing_frozen("vm1");
    assert_eq!(
        instance_events(lab, "vm1"),
        [
            "IRIS freeze_requested",
            "IRIS frozen",
            "IRIS thaw_requested",
            "IRIS thawed"
        ]
    );
}

/// ExternalFreeze hangs past Tools' timer: Tools sends SIGTERM to the
/// hook, which answers at once (no SIGKILL needed); the hook's worker goes
/// on, and when the late freeze lands it is thawed, the second instance is
/// never frozen, and the next snapshot finds nothing left behind.
#[test]
fn the_tools_timer_during_a_hung_freeze_stops_the_hook_and_the_late_freeze_is_undone() {
    let lab = deployed(77, &["vm1=iris:IRIS,IRIS2"]);
    lab.lab("fault", &["vm1", "IRIS", "hang_freeze=12"]);
    let (code, lines) = lab.tools("vm1", &["--timeout", "4"]);
    assert_eq!(code, 1, "{lines:#?}");
    assert_eq!(
        masked(&lines),
        [
            format!("start timeout=4 execScripts=true scripts={FREEZE}"),
            format!("run script={FREEZE} action=freeze pid=P"),
            "timer-fired state=script-freeze".into(),
            "term pid=P".into(),
            format!("exit script={FREEZE} after=term rc=143"),
            format!("freeze-failed script={FREEZE} how=killed"),
            "done result=aborted".into(),
        ]
    );
    // Tools has given up; the freeze it asked for lands later and is undone.
    assert_the_freeze_of_iris_was_undone(&lab);
    assert_eq!(history_sets(&lab, "vm1"), 0, "no snapshot was taken");
    let log = snapshot_log(&lab, "vm1").join("\n");
    assert!(
        log.contains("freeze: stopped by a signal (VMware Tools' timer, or its service stopping)"),
        "{log}"
    );
    assert!(
        log.contains("the hook was stopped before IRIS2 was frozen: thawing what was frozen"),
        "{log}"
    );
    // Nothing of that hook is left in /run/quiesce.
    let (_, left) = lab.sh("vm1", "ls /run/quiesce");
    assert!(
        !left.contains("stop.") && !left.contains("session.") && !left.contains("done."),
        "{left}"
    );

    // The next snapshot is a good one.
    lab.lab("clear-faults", &["vm1", "IRIS"]);
    let (code, lines) = lab.tools("vm1", &[]);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(lines.contains(&"done result=ok".to_string()), "{lines:#?}");
    lab.assert_truly_thawed("vm1");
    assert_eq!(history_sets(&lab, "vm1"), 2);
}

/// The order and the arguments Tools uses: the legacy script first and
/// backupScripts.d after it on the way in, the reverse on the way out,
/// scriptArg passed on, cwd /, no LANG; the snapshot is valid.
#[test]
fn tools_runs_the_hooks_in_their_order_with_script_arg_and_a_sparse_environment() {
    let lab = deployed(78, &["vm1=iris:IRIS"]);
    let (code, out) = lab.sh(
        "vm1",
        r#"mkdir -p /etc/vmware-tools/backupScripts.d &&
printf '[vmbackup]\nscriptArg = nightly\n' > /etc/vmware-tools/tools.conf &&
printf '#!/bin/sh\necho "app $* cwd=$(pwd) lang=${LANG:-unset}" >> /var/log/app-hook.log\n' > /etc/vmware-tools/backupScripts.d/50-app &&
chmod 0700 /etc/vmware-tools/backupScripts.d/50-app"#,
    );
    assert_eq!(code, 0, "{out}");
    let app = "/etc/vmware-tools/backupScripts.d/50-app";
    let (code, lines) = lab.tools("vm1", &[]);
    assert_eq!(code, 0, "{lines:#?}");
    let runs: Vec<String> = masked(&lines)
        .into_iter()
        .filter(|l| l.starts_with("run ") || l.starts_with("snapshot ") || l.starts_with("done "))
        .collect();
    assert_eq!(
        runs,
        [
            format!("run script={FREEZE} action=freeze pid=P"),
            format!("run script={app} action=freeze pid=P"),
            "snapshot rc=0".into(),
            format!("run script={app} action=thaw pid=P"),
            format!("run script={THAW} action=thaw pid=P"),
            "done result=ok".into(),
        ]
    );
    let (_, app_log) = lab.sh("vm1", "cat /var/log/app-hook.log");
    assert_eq!(
        app_log,
        "app freeze nightly cwd=/ lang=unset\napp thaw nightly cwd=/ lang=unset\n"
    );
    assert!(
        lines.contains(&format!(
            "output script={THAW} line='quiesce-outcome IRIS valid'"
        )),
        "{lines:#?}"
    );
    let log = snapshot_log(&lab, "vm1").join("\n");
    assert!(
        log.contains("freeze called with the script argument: nightly"),
        "{log}"
    );
    lab.assert_truly_thawed("vm1");
    assert_eq!(history_sets(&lab, "vm1"), 1);
}

/// Tools' timer fires while the thaw hook is still thawing: SIGTERM stops
/// the hook's process, never the thaw; every instance ends up thawed.
#[test]
fn the_tools_timer_during_the_thaw_never_stops_it_half_way() {
    let lab = deployed(79, &["vm1=iris:IRIS,IRIS2"]);
    // IRIS2 is thawed first (the reverse of the freeze) and takes 8 s.
    lab.lab("fault", &["vm1", "IRIS2", "hang_thaw=8"]);
    let (code, lines) = lab.tools("vm1", &["--timeout", "6"]);
    assert_eq!(code, 1, "{lines:#?}");
    let tail: Vec<String> = masked(&lines)
        .into_iter()
        .skip_while(|l| !l.starts_with("timer-fired"))
        .collect();
    assert_eq!(
        tail,
        [
            "timer-fired state=script-thaw".to_string(),
            "term pid=P".into(),
            format!("exit script={THAW} after=term rc=143"),
            "done result=thaw-killed".into(),
        ]
    );
    workers_done(&lab, "vm1");
    lab.assert_truly_thawed("vm1");
    lab.assert_nothing_frozen("vm1");
    let events = instance_events(&lab, "vm1");
    for inst in ["IRIS", "IRIS2"] {
        assert!(events.contains(&format!("{inst} thawed")), "{events:#?}");
    }
    let log = snapshot_log(&lab, "vm1").join("\n");
    assert!(
        log.contains("thaw: stopped by a signal (VMware Tools' timer, or its service stopping)"),
        "{log}"
    );
}

/// vmtoolsd itself dies (OOM killer, a service restart) mid-freeze: SIGKILL
/// to the hook with no SIGTERM first. Its worker sees the hook gone and
/// undoes the freeze; nothing is left frozen and no thaw is ever called for.
#[test]
fn vmtoolsd_killed_mid_freeze_leaves_nothing_frozen() {
    let lab = deployed(80, &["vm1=iris:IRIS,IRIS2"]);
    lab.lab("fault", &["vm1", "IRIS", "hang_freeze=5"]);
    let (code, lines) = lab.tools("vm1", &["--kill-after", "2"]);
    assert_eq!(code, 1, "{lines:#?}");
    assert_eq!(
        masked(&lines)[2..],
        [
            "kill pid=P why=kill-after".to_string(),
            format!("exit script={FREEZE} signal=9"),
            "done result=tools-killed".into(),
        ]
    );
    assert_the_freeze_of_iris_was_undone(&lab);
    // The post-thaw script Tools never ran finds nothing to do.
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("quiesce-outcome IRIS valid"), "{out}");
}

/// tools.conf `execScripts = false`: Tools runs no script at all, so the
/// snapshot is only crash-consistent.
#[test]
fn exec_scripts_false_runs_no_hook() {
    let lab = deployed(81, &["vm1=iris:IRIS"]);
    lab.sh(
        "vm1",
        "mkdir -p /etc/vmware-tools && printf '[vmbackup]\\nexecScripts = false\\n' > /etc/vmware-tools/tools.conf",
    );
    let (code, lines) = lab.tools("vm1", &[]);
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(
        masked(&lines)[..2],
        [
            format!("start timeout=900 execScripts=false scripts={FREEZE}"),
            "scripts-off why=execScripts=false".to_string(),
        ]
    );
    assert!(!lines.iter().any(|l| l.starts_with("run ")), "{lines:#?}");
    assert!(!lab.events("vm1").contains("freeze_requested"));
}

/// The audit reads what tools.conf says about running the hooks, as Tools
/// reads it (the [vmbackup] section only, blanks around keys and values,
/// booleans in any case), and names the file and line; deploy says the same
/// and writes nothing for it; another script in backupScripts.d is a note.
#[test]
fn the_audit_reads_tools_conf_and_names_its_line() {
    let lab = deployed(82, &["vm1=iris:IRIS"]);
    let (code, out) = lab.sh(
        "vm1",
        "mkdir -p /etc/vmware-tools/backupScripts.d && printf '# site\\n  [vmbackup]\\n execScripts = False \\n\\ttimeout=30\\n[guestinfo]\\ntimeout=5\\n' > /etc/vmware-tools/tools.conf && printf '#!/bin/sh\\n' > /etc/vmware-tools/backupScripts.d/50-app && chmod 0700 /etc/vmware-tools/backupScripts.d/50-app",
    );
    assert_eq!(code, 0, "{out}");
    let off = "VMware Tools runs no hook: /etc/vmware-tools/tools.conf:3 [vmbackup] execScripts = false, so every snapshot is only crash-consistent; set it to true or remove the line";
    let timeout = "VMware Tools gives the whole quiesced snapshot 30 s (/etc/vmware-tools/tools.conf:4 [vmbackup] timeout), less than this host's freeze timeout (600 s) and a minute for the hooks: a slow freeze or snapshot then fails the backup; set it to at least 660 or remove the line (900 s)";
    let note = "note: VMware Tools also runs /etc/vmware-tools/backupScripts.d/50-app (after this hook at the freeze, before post-thaw-script at the thaw): the freeze lasts while they run";
    let run = lab.quiesce(&["audit"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "HOST  HOOK               STATUS         DETAIL\n\
             vm1   pre-freeze-script  NON-COMPLIANT  {off}; {timeout}; {note}\n\
             vm1   post-thaw-script   NON-COMPLIANT  {off}; {timeout}\n\
             \n\
             audit: 1 hosts, 2 hooks: 2 non-compliant\n"
        )
    );
    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("vm1   pre-freeze-script  unchanged  {off}")),
        "{}",
        run.stdout
    );
    // Fixed by the site: the other script stays a note, and the hooks are compliant.
    lab.sh(
        "vm1",
        "printf '[vmbackup]\\nexecScripts=true\\ntimeout = 0\\n' > /etc/vmware-tools/tools.conf",
    );
    let run = lab.quiesce(&["audit"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "HOST  HOOK               STATUS     DETAIL\n\
             vm1   pre-freeze-script  compliant  {note}\n\
             vm1   post-thaw-script   compliant\n\
             \n\
             audit: 1 hosts, 2 hooks: 2 compliant\n"
        )
    );
}

/// A quiesced snapshot VMware Tools asks for (a backup product's) logs each
/// instance's mirror role; with refuse_vmware_primary the failover primary
/// is refused before anything is frozen, so Tools aborts that snapshot, and
/// its backup member still goes ahead.
#[test]
fn a_vmware_driven_freeze_logs_the_mirror_role_and_can_refuse_the_primary() {
    let lab = deployed(92, &["--mirror", "M=p,b", "p", "b"]);
    let (code, lines) = lab.tools("p", &[]);
    assert_eq!(code, 0, "{lines:#?}");
    lab.assert_truly_thawed("p");
    let log = snapshot_log(&lab, "p");
    assert!(
        log.iter().any(|l| l.ends_with(
            "IRIS: mirror member Failover Primary, frozen for VMware Tools: the VM's stun counts against the mirror's QoS timeout"
        )),
        "{log:#?}"
    );

    // Refused for the primary, by the inventory's word.
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    std::fs::write(
        lab.inventory(),
        text.replace("defaults: {", "defaults: { refuse_vmware_primary: true,"),
    )
    .unwrap();
    let run = lab.quiesce(&["deploy", "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    let before = instance_events(&lab, "p").len();
    let (code, lines) = lab.tools("p", &[]);
    assert_ne!(code, 0, "{lines:#?}");
    let events = instance_events(&lab, "p");
    assert!(
        !events[before..]
            .iter()
            .any(|e| e.contains("freeze_requested")),
        "{events:#?}"
    );
    lab.assert_nothing_frozen("p");
    let log = snapshot_log(&lab, "p");
    assert!(
        log.iter().any(|l| l.ends_with(
            "IRIS is its mirror's failover primary: refusing a freeze VMware Tools asked for (refuse_vmware_primary), so this quiesced snapshot is aborted; back the mirror up with quiesce backup, which freezes the primary last and briefly"
        )),
        "{log:#?}"
    );
    // The backup member is frozen and thawed as before.
    let (code, lines) = lab.tools("b", &[]);
    assert_eq!(code, 0, "{lines:#?}");
    lab.assert_truly_thawed("b");
    // A quiesce run still backs the primary up (it orders the mirror itself).
    let run = crate::common::backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("p");
}
