//! Hostile inputs against the real binary and the lab: values that try to
//! run code through the snapshot command's placeholders.

use crate::common::*;

#[test]
fn a_vm_name_cannot_inject_into_the_snapshot_command() {
    let lab = deployed(140, &["x"]);
    let evil = "PROD$(touch /tmp/quiesce-injected-140)`touch /tmp/quiesce-injected-140`'\"";
    // The host's line only (the defaults line has `platform: iris }` too).
    let vm = format!(
        "platform: iris, vm: {} }}",
        serde_json::to_string(evil).unwrap()
    );
    let inventory: Vec<String> = std::fs::read_to_string(lab.inventory())
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("  x: ") {
                l.replace("platform: iris }", &vm)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(lab.inventory(), inventory.join("\n") + "\n").unwrap();
    let seen = lab.path("vm-seen");
    let _ = std::fs::remove_file("/tmp/quiesce-injected-140");
    // On the controller: bare placeholders, glued to words too.
    set_snapshot_command(
        &lab,
        &format!(
            "LAB snapshot DIR {{host}} && printf %s\\\\n {{vm}} x-{{vm}}-y > {}",
            seen.display()
        ),
    );
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("{evil}\nx-{evil}-y\n")
    );
    assert!(
        !std::path::Path::new("/tmp/quiesce-injected-140").exists(),
        "the vm name ran code"
    );
    lab.assert_truly_thawed("x");

    // On the VM, through SSH and a remote shell.
    let lab_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
    let text = std::fs::read_to_string(lab.path("playbook.yml")).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("snapshot:") {
                "snapshot: { on: vm, command: 'printf %s {vm} > /var/log/vm-seen', timeout: 20s }"
                    .to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(lab.path("playbook.yml"), text.join("\n") + "\n").unwrap();
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?} {lab_sh}");
    assert_eq!(lab.sh("x", "cat /var/log/vm-seen").1, evil);
    assert_eq!(
        lab.sh("x", "test -e /tmp/quiesce-injected-140").0,
        1,
        "the vm name ran code on the VM"
    );
    lab.assert_truly_thawed("x");
}

#[test]
fn a_placeholder_inside_quotes_is_refused_with_its_place() {
    let lab = Lab::start(141, &["x"]);
    set_snapshot_command(&lab, "govc snapshot.create -vm \"{vm}\" q-{run_id}");
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    let playbook = lab.path("playbook.yml").display().to_string();
    assert!(
        run.stderr.starts_with(&format!("error: {playbook}:4:")),
        "{run:?}"
    );
    assert!(run.stderr.contains("placeholder `{vm}` stands inside quotes (at character 27); write it bare: quiesce passes its value as \"$QUIESCE_VM\", which no value can break out of"), "{run:?}");
    assert_eq!(lab.freeze_intervals("x").len(), 0);
}

#[test]
fn deploy_never_takes_over_a_shared_directory_unless_forced() {
    let lab = Lab::start(142, &["x"]);
    // A directory every user shares, like /tmp (this one is the VM's own).
    lab.sh(
        "x",
        "mkdir -p /var/log/shared && chmod 1777 /var/log/shared",
    );
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "platform: iris }\n",
        "platform: iris, framework: none, hook_dir: /var/log/shared }\n",
    );
    std::fs::write(lab.inventory(), inventory).unwrap();
    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("refusing to change /var/log/shared: it is shared with every user (mode 1777: world-writable or sticky); use a directory of its own for the hooks (hook_dir), or --force"), "{run:?}");
    assert_eq!(
        lab.sh("x", "stat -c '%u %a' /var/log/shared").1.trim(),
        "0 1777",
        "the shared directory was changed"
    );
    assert_eq!(
        lab.sh("x", "ls -A /var/log/shared").1,
        "",
        "nothing was written into it"
    );
    let run = lab.quiesce(&["deploy", "--force"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        lab.sh("x", "stat -c '%u %a' /var/log/shared").1.trim(),
        "0 1755"
    );
}

#[test]
fn logs_of_a_run_never_overwrite_its_evidence() {
    let lab = deployed(143, &["x", "y"]);
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let (run_id, _) = lab.journal();
    let logs_json = lab.path("runs").join(&run_id).join("logs.json");
    let before = std::fs::read_to_string(&logs_json).unwrap();
    assert!(
        before.contains("\"x\"") && before.contains("\"y\""),
        "{before}"
    );
    // A --limit that matches nothing is an error, and touches nothing.
    let run = lab.run(&["-l", "zzz", "logs", &run_id]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(std::fs::read_to_string(&logs_json).unwrap(), before);
    // `!` leaves a host out, as everywhere else.
    let run = lab.run(&["-l", "!x", "logs", &run_id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("x "), "{run:?}");
    // An unreachable host keeps its earlier record.
    lab.lab("kill-sshd", &["x"]);
    let run = lab.run(&["--connect-timeout", "1s", "logs", &run_id]);
    assert_eq!(run.code, 3, "{run:?}");
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&logs_json).unwrap()).unwrap();
    let x = after
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["host"] == "x")
        .unwrap();
    assert!(
        x.get("error").is_none(),
        "the evidence of x was replaced by an error: {after}"
    );
    assert!(!x["files"].as_array().unwrap().is_empty(), "{after}");
}

#[test]
fn a_stun_history_that_does_not_parse_stops_the_run_and_is_never_reset() {
    let lab = deployed(144, &["x"]);
    let history = lab.path("runs").join("stun-history.json");
    std::fs::create_dir_all(lab.path("runs")).unwrap();
    std::fs::write(&history, "{\"x\": [1, 2").unwrap();
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "error: the stun history {} does not parse (",
            history.display()
        )),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint: quiesce never replaces a stun history it cannot read; fix the file or move it away"), "{run:?}");
    assert_eq!(lab.freeze_intervals("x").len(), 0);
    let log = lab.path("vmware.log");
    std::fs::write(
        &log,
        "2026-11-25T10:00:00.000Z| vcpu-0| I125: Checkpoint_Unstun: vm stopped for 52000 us\n",
    )
    .unwrap();
    // `stun --record` refuses a history it cannot read, and keeps it.
    let run = lab.run(&["stun", "--record", log.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        "{\"x\": [1, 2",
        "the history was replaced"
    );

    // Analysing the same log twice records its stun once.
    std::fs::remove_file(&history).unwrap();
    for _ in 0..2 {
        assert_eq!(
            lab.run(&["stun", "--record", log.to_str().unwrap()]).code,
            0
        );
    }
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    let vm = lab
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        recorded[&vm].as_array().map(Vec::len),
        Some(1),
        "{recorded}"
    );
}

#[test]
fn recover_with_a_closed_stdout_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r1");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(
        run_dir.join("journal.jsonl"),
        "{\"event\":\"run-started\",\"run_id\":\"r1\",\"at\":1,\"playbook\":\"p\",\"inventory\":\"i\",\"freeze_timeout_secs\":60,\"hosts\":[]}\n",
    )
    .unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --runs-dir '{}' recover r1 >&-",
            env!("CARGO_BIN_EXE_quiesce"),
            dir.path().display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn one_unreachable_host_never_stalls_the_other_lanes() {
    use quiesce::backup::journal::Entry;
    let lab = deployed(145, &["--mirror", "M=y1,y2,y3", "x", "y1", "y2", "y3"]);
    // x hangs right after its snapshot: its thaw gets no answer (3 s) and goes
    // out again over a new connection, which hangs until the connect timeout
    // (5 s more). Meanwhile the mirror's members before the primary finish
    // (2 s each), and its primary must be re-read and frozen without waiting
    // for x's connection attempt.
    set_snapshot_command(
        &lab,
        "LAB snapshot DIR {host} && if [ {host} = x ]; then LAB stun DIR x; (sleep 9; LAB unstun DIR x) >/dev/null 2>&1 & fi; case {host} in y2|y3) sleep 2 ;; esac",
    );
    set_playbook(&lab, "timeout: 20s", "timeout: 3s");
    set_playbook(&lab, "freeze_margin: 10s", "freeze_margin: 5s");
    let run = backup(&lab, &["--connect-timeout", "5s"]);
    let (run_id, entries) = lab.journal();
    let position = |pred: &dyn Fn(&Entry) -> bool| entries.iter().position(pred);
    let y1_frozen = position(&|e| matches!(e, Entry::FreezeStarted { host, .. } if host == "y1"))
        .unwrap_or_else(|| panic!("y1 was never frozen: {run:?}"));
    let x_connect_gave_up = position(&|e| matches!(e, Entry::ThawFailed { host, detail, .. } if host == "x" && detail.contains("no SSH answer within 5s")))
        .unwrap_or_else(|| panic!("x's new connection never timed out: {run:?}"));
    assert!(
        y1_frozen < x_connect_gave_up,
        "y1 waited for x's connection attempt: {entries:?}"
    );
    // x thaws itself when it comes back (its deadline has passed); then
    // nothing of the run is left.
    std::thread::sleep(std::time::Duration::from_secs(2));
    if run.code == 5 {
        assert_eq!(lab.run(&["recover", &run_id]).code, 0);
    }
    for vm in ["x", "y1", "y2", "y3"] {
        lab.assert_truly_thawed(vm);
    }
}
