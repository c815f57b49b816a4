//! The rendered hooks, run inside lab VMs against the simulated Caché/IRIS:
//! freeze, thaw, rollback on partial failure, freezeFail, an instance already
//! frozen, an instance down, a thaw that fails once, an invalid snapshot.

use crate::common::{Lab, instance_events, snapshot_log};

const FREEZE: &str = "/usr/sbin/pre-freeze-script";
const THAW: &str = "/usr/sbin/post-thaw-script";

fn deployed(net: u8, specs: &[&str]) -> Lab {
    let lab = Lab::start(net, specs);
    let run = lab.quiesce(&["deploy", "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    lab
}

#[test]
fn freeze_then_thaw_in_reverse_order_records_history() {
    let lab = deployed(41, &["vm1=iris:IRIS,IRIS2", "vm2=cache:CACHE"]);
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS suspended\nIRIS2 suspended\nrecorded frozen:IRIS by vmware\nrecorded frozen:IRIS2 by vmware\n"
    );
    assert_eq!(lab.sh("vm1", THAW).0, 0);
    assert_eq!(
        instance_events(&lab, "vm1"),
        [
            "IRIS freeze_requested",
            "IRIS frozen",
            "IRIS2 freeze_requested",
            "IRIS2 frozen",
            "IRIS2 thaw_requested",
            "IRIS2 thawed",
            "IRIS2 history_set",
            "IRIS thaw_requested",
            "IRIS thawed",
            "IRIS history_set"
        ]
    );
    assert_eq!(
        snapshot_log(&lab, "vm1"),
        [
            "Pre freeze script started",
            "Attempting to freeze IRIS",
            "IRIS IS FROZEN",
            "Completed freeze of IRIS",
            "Attempting to freeze IRIS2",
            "IRIS2 IS FROZEN",
            "Completed freeze of IRIS2",
            "Pre freeze script finished",
            "Post thaw script started (thaw)",
            "Attempting to thaw IRIS2",
            "IRIS2 IS THAWED",
            "Completed thaw of IRIS2",
            "Attempting to thaw IRIS",
            "IRIS IS THAWED",
            "Completed thaw of IRIS",
            "Post thaw script finished"
        ]
    );
    let (_, inst_log) = lab.sh("vm1", "cat /var/log/IRIS-pre_post.log");
    assert!(
        inst_log.contains("Backup.General.ExternalFreeze: System suspended"),
        "{inst_log}"
    );
    assert!(
        inst_log.contains("Backup.General.ExternalThaw: System resumed"),
        "{inst_log}"
    );

    // Caché: ccontrol qlist and csession.
    assert_eq!(
        lab.sh("vm2", &format!("{FREEZE} freeze && {THAW} thaw")).0,
        0
    );
    assert_eq!(
        instance_events(&lab, "vm2"),
        [
            "CACHE freeze_requested",
            "CACHE frozen",
            "CACHE thaw_requested",
            "CACHE thawed",
            "CACHE history_set"
        ]
    );
}

#[test]
fn a_failed_freeze_thaws_what_it_froze() {
    let lab = deployed(42, &["vm1=iris:IRIS,IRIS2,IRIS3"]);
    lab.lab("fault", &["vm1", "IRIS2", "freeze=fail"]);
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("IRIS2 FREEZE FAILED (ExternalFreeze returned 3)"),
        "{out}"
    );
    // IRIS was frozen, then thawed without recording a backup; IRIS3 never touched.
    assert_eq!(
        instance_events(&lab, "vm1"),
        [
            "IRIS freeze_requested",
            "IRIS frozen",
            "IRIS2 freeze_requested",
            "IRIS2 freeze_failed",
            "IRIS thaw_requested",
            "IRIS thawed"
        ]
    );
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS running\nIRIS2 running\nIRIS3 running\n"
    );

    // An unknown exit status (not 5, not 3) is a failure too.
    lab.lab("clear-faults", &["vm1", "IRIS2"]);
    lab.lab("fault", &["vm1", "IRIS3", "freeze=unknown"]);
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 1);
    assert!(
        out.contains("IRIS3 FREEZE FAILED (ExternalFreeze exit status 1 unknown)"),
        "{out}"
    );
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS running\nIRIS2 running\nIRIS3 running\n"
    );
}

#[test]
fn freeze_fail_thaws_without_recording_a_backup() {
    let lab = deployed(43, &["vm1"]);
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    assert_eq!(lab.sh("vm1", &format!("{THAW} freezeFail")).0, 0);
    assert_eq!(
        instance_events(&lab, "vm1"),
        [
            "IRIS freeze_requested",
            "IRIS frozen",
            "IRIS thaw_requested",
            "IRIS thawed"
        ]
    );
}

#[test]
fn an_instance_frozen_by_someone_else_is_left_alone() {
    let lab = deployed(44, &["vm1=iris:IRIS,IRIS2"]);
    lab.sh(
        "vm1",
        "iris session IRIS2 -U %SYS '##Class(Backup.General).ExternalFreeze(\"/dev/null\")'",
    );
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("IRIS2 is already frozen by another backup; not freezing it again"),
        "{out}"
    );
    // Our own IRIS freeze was rolled back; IRIS2 stays as the other backup left it.
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS running\nIRIS2 suspended\n"
    );

    // A thaw only thaws what this hook froze: IRIS2 is not ours, and nothing
    // records whose it is, so the thaw says it is left frozen (exit 5).
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("quiesce-outcome IRIS2 left-frozen"), "{out}");
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS running\nIRIS2 suspended\n"
    );

    // A second freeze while one is recorded and not thawed is refused (exit 3).
    lab.sh(
        "vm1",
        "iris session IRIS2 -U %SYS '##Class(Backup.General).ExternalThaw(\"/dev/null\")'",
    );
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("a previous freeze by vmware (frozen:IRIS frozen:IRIS2) was never thawed; this freeze did nothing. Finish it first: `quiesce recover RUN` for a quiesce run, or QUIESCE_OWNER=vmware /usr/sbin/post-thaw-script freezeFail on the host"),
        "{out}"
    );
    assert_eq!(lab.sh("vm1", THAW).0, 0);
}

#[test]
fn instances_that_are_down_are_skipped_unless_configured() {
    let lab = deployed(45, &["vm1=iris:IRIS,IRIS2"]);
    lab.lab("set", &["vm1", "IRIS2", "status=down"]);
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    assert_eq!(lab.sh("vm1", THAW).0, 0);
    assert_eq!(
        instance_events(&lab, "vm1"),
        [
            "IRIS freeze_requested",
            "IRIS frozen",
            "IRIS thaw_requested",
            "IRIS thawed",
            "IRIS history_set"
        ]
    );

    // Named in the inventory, a down instance fails the freeze.
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "platform: iris }\n",
        "platform: iris, instances: [IRIS, IRIS2] }\n",
    );
    std::fs::write(lab.inventory(), inventory).unwrap();
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("configured instance IRIS2 is not running"),
        "{out}"
    );
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS running\nIRIS2 down\nconfigured instance IRIS2 is not running\n"
    );
}

#[test]
fn a_thaw_that_fails_is_kept_for_a_retry() {
    let lab = deployed(46, &["vm1=iris:IRIS,IRIS2"]);
    lab.lab("fault", &["vm1", "IRIS", "thaw=fail_once"]);
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("IRIS THAW FAILED (ExternalThaw returned 3)"),
        "{out}"
    );
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS suspended\nIRIS2 running\nrecorded frozen:IRIS by vmware\n"
    );
    assert_eq!(lab.sh("vm1", THAW).0, 0);
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} status")).1,
        "IRIS running\nIRIS2 running\n"
    );
}

#[test]
fn a_write_daemon_that_resumed_makes_the_snapshot_invalid() {
    let lab = deployed(47, &["vm1"]);
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    // The WDSuspendLimit ran out while the snapshot was being taken.
    lab.sh(
        "vm1",
        "sed -i 's/^wd_limit=.*/wd_limit=1/; s/^frozen_at=.*/frozen_at=1/' /etc/irissim/IRIS/state",
    );
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains(
            "IRIS: the write daemon resumed before the thaw: the snapshot of IRIS is INVALID"
        ),
        "{out}"
    );
    assert_eq!(
        instance_events(&lab, "vm1").last().unwrap(),
        "IRIS thawed",
        "thawed, and no backup history recorded"
    );
}

#[test]
fn the_freeze_timeout_is_passed_and_capped() {
    let lab = deployed(48, &["vm1"]);
    assert_eq!(
        lab.sh(
            "vm1",
            &format!("QUIESCE_FREEZE_SECONDS=90 {FREEZE} freeze && {THAW} freezeFail")
        )
        .0,
        0
    );
    assert_eq!(
        lab.sh(
            "vm1",
            &format!("QUIESCE_FREEZE_SECONDS=5000 {FREEZE} freeze && {THAW} freezeFail")
        )
        .0,
        0
    );
    // VMware's script argument (open-vm-tools: SCRIPT ACTION [scriptArg]) is
    // never a timeout: the deployed one (10m) applies, and every action takes it.
    let (code, out) = lab.sh(
        "vm1",
        &format!("{FREEZE} freeze backup-job-42 && {THAW} thaw backup-job-42"),
    );
    assert_eq!(code, 0, "{out}");
    let timeouts: Vec<String> = lab
        .events("vm1")
        .lines()
        .filter(|l| l.contains(" frozen "))
        .map(|l| l.split(' ').nth(3).unwrap().to_string())
        .collect();
    assert_eq!(timeouts, ["timeout=90", "timeout=1200", "timeout=600"]);
    let (_, log) = lab.sh("vm1", "cat /var/log/snapshot.log");
    assert!(
        log.contains("freeze called with the script argument: backup-job-42")
            && log.contains("thaw called with the script argument: backup-job-42"),
        "{log}"
    );
    let (code, out) = lab.sh(
        "vm1",
        &format!("QUIESCE_FREEZE_SECONDS='x;id' {FREEZE} freeze"),
    );
    assert_eq!(code, 2, "{out}");
    assert!(!lab.is_frozen("vm1", "IRIS"));
}

#[test]
fn the_simulator_pauses_an_instance_whose_freeze_outlives_its_timeout() {
    let lab = Lab::start(49, &["vm1"]);
    let session = |call: &str| {
        lab.sh(
            "vm1",
            &format!("iris session IRIS -U %SYS '##Class(Backup.General).{call}'"),
        )
        .0
    };
    assert_eq!(
        session("ExternalFreeze(\"/var/log/IRIS-pre_post.log\",,,,,,1)"),
        5
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Past ExternalFreezeTimeOut the instance does not thaw: it pauses.
    assert_eq!(session("IsWDSuspendedExt()"), 5, "still frozen");
    assert!(
        lab.events("vm1")
            .contains(" IRIS paused freeze outlived ExternalFreezeTimeOut=1")
    );
    assert!(
        lab.sh("vm1", "iris qlist IRIS").1.contains("^warn^"),
        "qlist health shows it"
    );
    assert_eq!(
        session("ExternalThaw(\"/var/log/IRIS-pre_post.log\")"),
        5,
        "only a thaw ends it"
    );
    assert_eq!(session("IsWDSuspendedExt()"), 3);
    assert_eq!(
        session("ExternalThaw(\"/var/log/IRIS-pre_post.log\")"),
        3,
        "thawing a running instance fails"
    );
}

#[test]
fn a_hung_instance_is_never_frozen_and_a_warning_one_is_logged_and_frozen() {
    let lab = deployed(170, &["vm1=iris:A1,A2"]);
    lab.lab("set", &["vm1", "A2", "health=hung"]);
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} freeze"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("A2 is hung (qlist state hung): not freezing it"),
        "{out}"
    );
    // A1 came first and was frozen: the failed freeze thawed it.
    assert!(!lab.is_frozen("vm1", "A1") && !lab.is_frozen("vm1", "A2"));
    assert!(
        instance_events(&lab, "vm1")
            .iter()
            .any(|e| e == "A1 thawed"),
        "{:?}",
        instance_events(&lab, "vm1")
    );
    let (_, status) = lab.sh("vm1", &format!("{FREEZE} status"));
    assert_eq!(status, "A1 running\nA2 hung\n");

    lab.lab("set", &["vm1", "A2", "health=warn"]);
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} freeze"));
    assert_eq!(code, 0, "{out}");
    assert!(lab.is_frozen("vm1", "A1") && lab.is_frozen("vm1", "A2"));
    let (_, log) = lab.sh("vm1", "cat /var/log/snapshot.log");
    assert!(
        log.contains("A2 reports state warn (qlist): freezing it anyway"),
        "{log}"
    );
    assert_eq!(lab.sh("vm1", &format!("{THAW} thaw")).0, 0);
    lab.assert_truly_thawed("vm1");
}

#[test]
fn a_vm_whose_shell_prints_banners_and_dawdles_confuses_no_step() {
    let lab = Lab::start(172, &["vm1"]);
    // A real root .bashrc: banners on stdout and stderr, and a slow second.
    lab.lab(
        "exec",
        &[
            "vm1",
            "sh",
            "-c",
            "printf '%s\\n' 'echo \"Welcome to vm1 (quiesce-outcome IRIS valid)\"' 'echo \"quiesce-freeze 0\"' 'echo \"motd on stderr\" >&2' 'sleep 1' > /root/.bashrc",
        ],
    );
    // The fault is real: OpenSSH's own client sees the banner.
    let address = std::fs::read_to_string(lab.path("vms/vm1/address")).unwrap();
    let ssh = std::process::Command::new("ssh")
        .args(["-i", lab.path("id_ed25519").to_str().unwrap()])
        .args([
            "-o",
            &format!("UserKnownHostsFile={}", lab.known_hosts().display()),
        ])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg(format!("root@{}", address.trim()))
        .arg("true")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ssh.stdout).contains("Welcome to vm1"),
        "{ssh:?}"
    );
    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains("Welcome") && !run.stderr.contains("motd"),
        "{run:?}"
    );
    let run = lab.quiesce(&["audit"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("2 compliant"), "{run:?}");
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 hosts: 1 valid"), "{run:?}");
    lab.assert_truly_thawed("vm1");
    // The collected logs are the VM's files, byte for byte (no banner in them).
    let (run_id, _) = lab.journal();
    let fetched =
        std::fs::read(lab.path(&format!("runs/{run_id}/hosts/vm1/snapshot.log"))).unwrap();
    let on_vm = std::fs::read(lab.path("vms/vm1/log/snapshot.log")).unwrap();
    assert_eq!(fetched, on_vm);
}

#[test]
fn an_instance_in_a_container_that_only_its_owner_may_enter() {
    let lab = Lab::start(173, &["vm1"]);
    lab.lab("containerize", &["vm1", "iris1"]);
    lab.lab("owner", &["vm1", "IRIS", "irisowner"]);
    let set = |settings: &str| {
        let text = std::fs::read_to_string(lab.inventory()).unwrap();
        let line = text.lines().find(|l| l.starts_with("  vm1: {")).unwrap();
        let new = format!(
            "  vm1: {{ address: {}, platform: iris{settings} }}",
            lab.net.clone() + ".11"
        );
        std::fs::write(lab.inventory(), text.replace(line, &new)).unwrap();
    };
    // The tools exist only in the container: as deployed before, nothing works.
    let (code, _) = lab.sh("vm1", "command -v iris");
    assert_ne!(code, 0, "iris is not on the VM itself");

    // In the container, as root: the instance refuses root, and says how to fix it.
    set(", iris_container: iris1");
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} freeze"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("IRIS: the session was refused (Access Denied): enable OS authentication for root, or set iris_user (the instance owner) in the inventory"),
        "{out}"
    );
    assert!(!lab.is_frozen("vm1", "IRIS"));
    // The session's own words are kept in the instance's log.
    let (_, log) = lab.sh("vm1", "cat /var/log/IRIS-pre_post.log");
    assert!(log.contains("Access Denied"), "{log}");

    // In the container, as its owner: a whole backup, through `docker exec --user`.
    set(", iris_container: iris1, iris_user: irisowner");
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 hosts: 1 valid"), "{run:?}");
    lab.assert_truly_thawed("vm1");
    let (_, engine) = lab.sh("vm1", "cat /var/log/lab-container.log");
    assert!(
        engine.contains(
            "exec iris1 irisowner iris session IRIS -U %SYS ##Class(Backup.General).ExternalFreeze"
        ),
        "{engine}"
    );

    // Podman works the same way.
    set(", iris_container: iris1, container_engine: podman, iris_user: irisowner");
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    assert_eq!(
        lab.sh("vm1", &format!("{FREEZE} freeze && {THAW} freezeFail"))
            .0,
        0
    );
    lab.assert_truly_thawed("vm1");
}

#[test]
fn a_freeze_whose_record_cannot_be_written_freezes_nothing() {
    let lab = deployed(185, &["vm1=iris:IRIS,IRIS2"]);
    // /run/quiesce full before the freeze: the state file can be created, not written.
    let (code, out) = lab.sh(
        "vm1",
        "mkdir -p /run/quiesce && mount -t tmpfs -o size=4k q /run/quiesce && dd if=/dev/zero of=/run/quiesce/fill bs=4k count=8 2>/dev/null; ls /run/quiesce",
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "IRIS: cannot record its freeze in /run/quiesce/frozen (is /run full?): not freezing it"
        ),
        "{out}"
    );
    // Ground truth: the simulator never saw a freeze.
    let events = lab.events("vm1");
    assert!(!events.contains("freeze_requested"), "{events}");
    assert!(!lab.is_frozen("vm1", "IRIS") && !lab.is_frozen("vm1", "IRIS2"));
}

#[test]
fn a_lost_record_is_left_frozen_never_thawed_and_a_vouched_one_is_thawed() {
    let lab = deployed(186, &["vm1=iris:IRIS"]);
    let (code, out) = lab.sh("vm1", FREEZE);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("quiesce-frozen IRIS"), "{out}");
    // Where a restore starts: the journal file the freeze switched to (the
    // simulator's second) and its marker, from the instance's LogFile.
    assert!(
        out.lines().any(
            |l| l.starts_with("quiesce-restore IRIS /iris/journal1/20261123.002 ")
                && l.rsplit(' ').next().unwrap().parse::<u64>().is_ok()
        ),
        "{out}"
    );
    // tmpfiles or an admin removes the record during the snapshot.
    lab.sh("vm1", "rm -f /run/quiesce/frozen");
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("quiesce-outcome IRIS left-frozen"), "{out}");
    assert!(
        out.contains("IRIS IS STILL FROZEN and nothing records whose freeze it is"),
        "{out}"
    );
    assert!(
        lab.is_frozen("vm1", "IRIS"),
        "the hook thawed a freeze it could not prove"
    );
    // The caller that froze it (quiesce's freeze session) vouches for it.
    let (code, out) = lab.sh("vm1", &format!("QUIESCE_FROZEN=IRIS {THAW}"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("quiesce-outcome IRIS valid"), "{out}");
    lab.assert_truly_thawed("vm1");
    // A freeze found frozen by someone else is never adopted.
    lab.sh(
        "vm1",
        "iris session IRIS -U %SYS '##Class(Backup.General).ExternalFreeze(\"/dev/null\")'",
    );
    let (code, out) = lab.sh("vm1", &format!("QUIESCE_FOREIGN=IRIS {THAW}"));
    assert_eq!(code, 0, "{out}");
    assert!(lab.is_frozen("vm1", "IRIS"));
}

#[test]
fn a_freeze_replaced_by_someone_elses_is_invalid_and_not_thawed() {
    let lab = deployed(189, &["vm1=iris:IRIS"]);
    let other = |call: &str| {
        lab.sh(
            "vm1",
            &format!("iris session IRIS -U %SYS '##Class(Backup.General).{call}(\"/dev/null\")'"),
        )
    };
    // ABA: a DBA ends the hook's freeze and freezes again (a journal switch).
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    other("ExternalThaw");
    other("ExternalFreeze");
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("quiesce-outcome IRIS replaced"), "{out}");
    assert!(
        out.contains("someone ended this freeze and froze it again"),
        "{out}"
    );
    assert!(!lab.events("vm1").contains("history_set"));
    assert!(
        lab.is_frozen("vm1", "IRIS"),
        "the other party's freeze was thawed"
    );
    other("ExternalThaw");

    // The instance restarted during the freeze and was frozen again.
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    lab.sh("vm1", "sleep 1; iris stop IRIS; iris start IRIS");
    other("ExternalFreeze");
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("the instance restarted since this freeze"),
        "{out}"
    );
    assert!(lab.is_frozen("vm1", "IRIS"));
}

/// An up instance is frozen whatever qlist says of it besides `down`
/// (`sign-on inhibited, …`, `sign-on inhibited:primary transition`, `running
/// on node ? (…)`): never skipped while the snapshot goes ahead. One that
/// cannot be frozen fails the freeze loudly.
#[test]
fn up_instances_in_other_qlist_states_are_frozen_not_skipped() {
    let lab = deployed(72, &["vm1=iris:IRIS,IRIS2,IRIS3"]);
    lab.lab("set", &["vm1", "IRIS", "signon=inhibited"]);
    lab.lab("set", &["vm1", "IRIS2", "signon=transition"]);
    lab.lab("set", &["vm1", "IRIS3", "signon=node"]);
    let (_, qlist) = lab.sh("vm1", "iris qlist");
    assert!(qlist.contains("^sign-on inhibited, since "), "{qlist}");
    assert!(
        qlist.contains("^sign-on inhibited:primary transition^"),
        "{qlist}"
    );
    assert!(qlist.contains("^running on node ? ("), "{qlist}");
    assert_eq!(lab.sh("vm1", FREEZE).0, 0);
    for inst in ["IRIS", "IRIS2", "IRIS3"] {
        assert!(lab.is_frozen("vm1", inst), "{inst} was skipped");
    }
    let log = snapshot_log(&lab, "vm1").join("\n");
    assert!(
        log.contains("IRIS2 reports status 'sign-on inhibited:primary transition' (qlist): it is up, so it is frozen like a running one"),
        "{log}"
    );
    // The status changes while the freeze holds (the transition ends): the
    // freeze is still this one, so it is thawed and the snapshot valid.
    lab.lab("set", &["vm1", "IRIS2", "signon="]);
    assert_eq!(lab.sh("vm1", THAW).0, 0, "{:?}", snapshot_log(&lab, "vm1"));
    for inst in ["IRIS", "IRIS2", "IRIS3"] {
        assert!(!lab.is_frozen("vm1", inst));
    }

    lab.lab("set", &["vm1", "IRIS2", "signon=transition"]);
    lab.lab("fault", &["vm1", "IRIS2", "freeze=fail"]);
    let (code, _) = lab.sh("vm1", FREEZE);
    assert_ne!(
        code, 0,
        "an up instance that cannot be frozen fails the freeze"
    );
    for inst in ["IRIS", "IRIS2", "IRIS3"] {
        assert!(
            !lab.is_frozen("vm1", inst),
            "{inst} left frozen by the rollback"
        );
    }
}

/// ExternalSetHistory is not documented to exit 5 (as ExternalFreeze does):
/// a session ending 0 or 5 recorded the backup, no false error; 3 is one.
#[test]
fn external_set_history_is_accepted_as_real_iris_returns_it() {
    let lab = deployed(74, &["vm1"]);
    for (rc, error) in [("0", false), ("5", false), ("3", true)] {
        lab.lab("set", &["vm1", "IRIS", &format!("set_history_rc={rc}")]);
        let _ = lab.sh("vm1", ": > /var/log/snapshot.log");
        assert_eq!(lab.sh("vm1", FREEZE).0, 0);
        let (code, _) = lab.sh("vm1", THAW);
        assert_eq!(code, 0, "rc {rc}");
        let log = snapshot_log(&lab, "vm1").join("\n");
        assert_eq!(
            log.contains("ExternalSetHistory failed"),
            error,
            "rc {rc}: {log}"
        );
        assert!(!lab.is_frozen("vm1", "IRIS"));
    }
}

/// The simulator as documented for a paused instance: with
/// `paused_sessions=hang` a new session waits until the freeze ends, and
/// `iris stat INST -W` (or `irisstat -sDIR -W`) ends it without a session.
#[test]
fn the_simulator_ends_a_paused_freeze_with_irisstat_w() {
    let lab = deployed(75, &["vm1"]);
    lab.lab("set", &["vm1", "IRIS", "paused_sessions=hang"]);
    let (code, _) = lab.sh(
        "vm1",
        "iris session IRIS -U %SYS '##Class(Backup.General).ExternalFreeze(\"/dev/null\",,,,,,1)'",
    );
    assert_eq!(code, 5);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (code, out) = lab.sh(
        "vm1",
        "timeout 2 iris session IRIS -U %SYS '##Class(Backup.General).IsWDSuspendedExt()'; echo rc=$?",
    );
    assert_eq!(code, 0);
    assert!(
        out.ends_with("rc=124\n"),
        "a new session waits while paused: {out}"
    );
    let (code, out) = lab.sh("vm1", "iris stat IRIS -W");
    assert_eq!((code, out.as_str()), (0, "IRIS: system resumed\n"));
    assert!(!lab.is_frozen("vm1", "IRIS"));
    assert!(lab.events("vm1").contains("IRIS thawed by irisstat -W"));

    let (code, _) = lab.sh(
        "vm1",
        "iris session IRIS -U %SYS '##Class(Backup.General).ExternalFreeze(\"/dev/null\",,,,,,30)'",
    );
    assert_eq!(code, 5);
    let (code, out) = lab.sh("vm1", "irisstat -s/usr/irissys/IRIS/mgr -W");
    assert_eq!((code, out.as_str()), (0, "IRIS: system resumed\n"));
    assert!(!lab.is_frozen("vm1", "IRIS"));
}

/// A paused instance takes no new login: the thaw does not hang on its
/// sessions, it ends the freeze with `iris stat INST -W`, says so, and the
/// snapshot is INVALID.
#[test]
fn a_paused_instance_that_takes_no_login_is_thawed_with_irisstat_w() {
    let lab = crate::common::deployed(76, &["vm1"]);
    lab.lab("set", &["vm1", "IRIS", "paused_sessions=hang"]);
    assert_eq!(
        lab.sh("vm1", &format!("QUIESCE_FREEZE_SECONDS=1 {FREEZE}"))
            .0,
        0
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let started = std::time::Instant::now();
    let (code, out) = lab.sh("vm1", THAW);
    assert_eq!(code, 4, "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(out.contains("quiesce-outcome IRIS thawed-stat-w"), "{out}");
    assert!(!lab.is_frozen("vm1", "IRIS"));
    assert!(lab.events("vm1").contains("IRIS thawed by irisstat -W"));
    let log = snapshot_log(&lab, "vm1").join("\n");
    assert!(log.contains("IRIS: no session started within 10s to thaw it (a paused instance takes no new login): ending its freeze with irisstat -W"), "{log}");
    assert!(
        log.contains(
            "IRIS: thawed by irisstat -W, not ExternalThaw: the snapshot of IRIS is INVALID"
        ),
        "{log}"
    );
}

/// With iris_user and a log directory root's alone, the instance's own
/// LogFile lines (the journal file and marker) still reach the file `logs`
/// collects: the hook makes it the owner's before the freeze.
#[test]
fn the_instances_logfile_is_its_owners_to_write() {
    let lab = Lab::start(93, &["vm1"]);
    lab.lab("owner", &["vm1", "IRIS", "irisowner"]);
    // The lab's owner step made the file; a real VM has none.
    lab.sh("vm1", "rm -f /var/log/IRIS-pre_post.log");
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let line = text.lines().find(|l| l.starts_with("  vm1: {")).unwrap();
    let new = line.replace(" }", ", iris_user: irisowner }");
    std::fs::write(lab.inventory(), text.replace(line, &new)).unwrap();
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    lab.assert_truly_thawed("vm1");
    let (_, owner) = lab.sh("vm1", "stat -c %U /var/log/IRIS-pre_post.log");
    assert_eq!(owner, "irisowner\n");
    let (_, log) = lab.sh("vm1", "cat /var/log/IRIS-pre_post.log");
    assert!(
        log.contains("Backup.General.ExternalFreeze: Start a journal restore for this backup with journal file:")
            && log.contains("Backup.General.ExternalThaw: Resuming system"),
        "{log}"
    );
    let run = lab.run(&["logs", "--since", "1h"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("IRIS-pre_post.log"), "{run:?}");
}

/// In a container the instance opens its LogFile in the container's own file
/// system: the hook passes the path there (container_log_dir, where log_dir's
/// volume is mounted), makes the file from inside the container for the user
/// the instance runs as, and says so when the lines did not come through.
#[test]
fn the_instances_logfile_is_opened_inside_its_container() {
    let lab = Lab::start(95, &["vm1"]);
    lab.sh("vm1", "mkdir -m 0755 /var/log/iris");
    assert!(
        lab.lab(
            "containerize",
            &["vm1", "iris1", "/var/log/iris:/mnt/irislogs"]
        )
        .status
        .success()
    );
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let line = text.lines().find(|l| l.starts_with("  vm1: {")).unwrap();
    let settings = |extra: &str| {
        let new = line.replace(
            " }",
            &format!(", iris_container: iris1, log_dir: /var/log/iris{extra} }}"),
        );
        std::fs::write(lab.inventory(), text.replace(line, &new)).unwrap();
        assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    };
    let journal_line =
        "Backup.General.ExternalFreeze: Start a journal restore for this backup with journal file:";
    let log = || lab.sh("vm1", "cat /var/log/iris/IRIS-pre_post.log").1;

    // log_dir's host path means nothing inside the container: the lines are
    // lost there, and the hook says what to set.
    settings("");
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    lab.assert_truly_thawed("vm1");
    assert!(!log().contains(journal_line), "{}", log());
    assert!(
        out.contains("IRIS: the instance's LogFile lines did not reach /var/log/iris/IRIS-pre_post.log: /var/log/iris/IRIS-pre_post.log in container iris1 is not log_dir's volume; set container_log_dir"),
        "{out}"
    );

    // The volume's target named: the instance's own lines arrive.
    settings(", container_log_dir: /mnt/irislogs");
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("did not reach"), "{out}");
    assert!(
        log().contains(journal_line)
            && log().contains("Backup.General.ExternalThaw: Resuming system"),
        "{}",
        log()
    );

    // The instance running as its owner inside the container, log_dir root's
    // alone on the VM: the file is made inside the container and given to
    // the owner, who then writes it.
    lab.lab("owner", &["vm1", "IRIS", "irisowner"]);
    lab.sh("vm1", "rm -f /var/log/iris/IRIS-pre_post.log");
    settings(", container_log_dir: /mnt/irislogs, iris_user: irisowner");
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    lab.assert_truly_thawed("vm1");
    let (_, owner) = lab.sh("vm1", "stat -c %U /var/log/iris/IRIS-pre_post.log");
    assert_eq!(owner, "irisowner\n");
    assert!(log().contains(journal_line), "{}", log());
    let run = lab.run(&["logs", "--since", "1h"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("IRIS-pre_post.log"), "{run:?}");
}
