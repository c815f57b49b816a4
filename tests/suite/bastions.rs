//! ProxyJump against the lab: VMs that only a bastion can reach (their
//! names resolve in the bastion's own /etc/hosts, nowhere else), one and two
//! bastions deep, from the inventory's `jump` and from ssh_config. Deploy,
//! audit and a whole backup go through them; each bastion's sshd (LogLevel
//! DEBUG1) shows every forward and one login per run; a dead bastion makes
//! every host behind it unreachable with one error naming it.

use crate::common::*;
use std::time::{Duration, Instant};

/// b1 and b2 are bastions: vm1 behind b1; vm2 and vm3 behind b1 then b2.
fn bastion_lab(net: u8) -> Lab {
    let lab = Lab::start(net, &["b1", "b2", "vm1", "vm2", "vm3"]);
    let address = |vm: &str| {
        std::fs::read_to_string(lab.path(&format!("vms/{vm}/address")))
            .unwrap()
            .trim()
            .to_string()
    };
    for bastion in ["b1", "b2"] {
        lab.lab("bastion", &[bastion]);
    }
    lab.lab("hosts-entry", &["b1", "vm1.lab", &address("vm1")]);
    lab.lab("hosts-entry", &["b1", "b2.lab", &address("b2")]);
    lab.lab("hosts-entry", &["b2", "vm2.lab", &address("vm2")]);
    lab.lab("hosts-entry", &["b2", "vm3.lab", &address("vm3")]);
    // The host keys under the names quiesce is given (as `ssh` would record them).
    let mut known = std::fs::read_to_string(lab.known_hosts()).unwrap();
    for (name, vm) in [
        ("vm1.lab", "vm1"),
        ("b2.lab", "b2"),
        ("vm2.lab", "vm2"),
        ("vm3.lab", "vm3"),
    ] {
        let key = std::fs::read_to_string(lab.path(&format!("vms/{vm}/host_key.pub"))).unwrap();
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        known.push_str(&format!("{name} {}\n", key.join(" ")));
    }
    std::fs::write(lab.known_hosts(), known).unwrap();
    let key = lab.path("id_ed25519").display().to_string();
    // vm1 by the inventory's `jump`; vm2 and vm3 by ssh_config's ProxyJump.
    std::fs::write(
        lab.inventory(),
        format!(
            "defaults: {{ user: root, identity_file: {key}, platform: iris }}\nhosts:\n  vm1: {{ address: vm1.lab, jump: root@{b1} }}\n  vm2: {{ address: vm2.lab }}\n  vm3: {{ address: vm3.lab }}\n",
            b1 = address("b1")
        ),
    )
    .unwrap();
    std::fs::write(
        lab.path("ssh_config"),
        format!(
            "Host b2.lab\n  User root\n  IdentityFile {key}\n  ProxyJump root@{b1}\nHost vm2 vm3\n  ProxyJump b2.lab\n",
            b1 = address("b1")
        ),
    )
    .unwrap();
    lab
}

fn through(lab: &Lab, args: &[&str]) -> Run {
    let config = lab.path("ssh_config").display().to_string();
    let mut full = vec!["--ssh-config", config.as_str()];
    full.extend_from_slice(args);
    lab.run(&full)
}

/// The forwards a bastion's sshd logged, and how many logins it accepted.
fn bastion_log(lab: &Lab, bastion: &str) -> (Vec<String>, usize) {
    let log = std::fs::read_to_string(lab.path(&format!("vms/{bastion}/sshd.log"))).unwrap();
    let forwards = log
        .lines()
        .filter_map(|l| l.split("server_request_direct_tcpip: ").nth(1))
        .map(|l| l.split(", target ").nth(1).unwrap_or(l).to_string())
        .collect();
    (forwards, log.matches("Accepted publickey for root").count())
}

#[test]
fn deploy_audit_and_backup_go_through_one_and_two_bastions() {
    let lab = bastion_lab(150);
    let run = through(&lab, &["hosts"]);
    assert_eq!(run.code, 0, "{run:?}");
    let b1 = format!("{}.11", lab.net);
    let via: Vec<String> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(
        via,
        [b1.clone(), format!("{b1},b2.lab"), format!("{b1},b2.lab")],
        "{run:?}"
    );

    let run = through(&lab, &["deploy"]);
    assert_eq!(run.code, 0, "{run:?}");
    for vm in ["vm1", "vm2", "vm3"] {
        let (code, _) = lab.sh(
            vm,
            "test -f /usr/sbin/pre-freeze-script && test -f /usr/sbin/post-thaw-script",
        );
        assert_eq!(code, 0, "the hooks are on {vm}");
    }
    for vm in ["b1", "b2"] {
        let (code, _) = lab.sh(vm, "test -e /usr/sbin/pre-freeze-script");
        assert_ne!(code, 0, "nothing is deployed to the bastion {vm}");
    }
    // One login on each bastion for the whole command (b1 carries b2's
    // connection too), and one forward per host behind it.
    let (forwards, logins) = bastion_log(&lab, "b1");
    assert_eq!(logins, 1, "{forwards:?}");
    let mut forwards_b1 = forwards.clone();
    forwards_b1.sort();
    assert_eq!(forwards_b1, ["b2.lab port 22", "vm1.lab port 22"]);
    let (mut forwards, logins) = bastion_log(&lab, "b2");
    forwards.sort();
    assert_eq!(
        (forwards, logins),
        (
            vec!["vm2.lab port 22".to_string(), "vm3.lab port 22".into()],
            1
        )
    );

    let run = through(&lab, &["audit"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = through(
        &lab,
        &[
            "backup",
            "-p",
            &lab.path("playbook.yml").display().to_string(),
            "--limit",
            "vm*",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("3 hosts: 3 valid"), "{run:?}");
    for vm in ["vm1", "vm2", "vm3"] {
        assert_eq!(
            lab.freeze_intervals(vm).len(),
            1,
            "{vm} was frozen and thawed once"
        );
        lab.assert_nothing_frozen(vm);
    }
    // Without the bastions, the VMs cannot be reached at all.
    let run = lab.run(&["--ssh-config", "none", "--limit", "vm2", "audit"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("Name or service not known") || run.stdout.contains("failed to lookup"),
        "{run:?}"
    );
}

/// The first line of the report about `vm`.
fn line_of<'a>(run: &'a Run, vm: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(vm))
        .unwrap_or_else(|| panic!("no line for {vm}: {run:?}"))
}

#[test]
fn a_dead_bastion_fails_every_host_behind_it_once_and_by_name() {
    let lab = bastion_lab(151);
    // A stunned bastion answers nothing: one connect time limit for all
    // three hosts, even one host at a time, not three.
    lab.lab("stun", &["b1"]);
    let started = Instant::now();
    let run = through(&lab, &["--connect-timeout", "2s", "--forks", "1", "audit"]);
    let took = started.elapsed();
    lab.lab("unstun", &["b1"]);
    assert_eq!(run.code, 3, "{run:?}");
    for vm in ["vm1", "vm2", "vm3"] {
        let line = line_of(&run, vm);
        assert!(
            line.contains(&format!(
                "unreachable through bastion {}.11 ({}.11:22): ",
                lab.net, lab.net
            )),
            "{line}"
        );
    }
    assert!(
        took < Duration::from_secs(5),
        "one time limit for the bastion, not one per host: {took:?}"
    );
    // b1 answers again: vm1 behind it is reached; b2 dies, and the two
    // hosts behind it fail by its name.
    lab.lab("kill-sshd", &["b2"]);
    let run = through(&lab, &["audit"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("vm1 ") && l.contains("compliant")
                || l.starts_with("vm1 ") && l.contains("missing")),
        "{run:?}"
    );
    for vm in ["vm2", "vm3"] {
        let line = line_of(&run, vm);
        assert!(
            line.contains("unreachable through bastion b2.lab (b2.lab:22)"),
            "{line}"
        );
    }
}

#[test]
fn a_controller_killed_behind_two_bastions_is_recovered_through_them_from_the_journal() {
    use quiesce::backup::journal::Entry;
    let lab = bastion_lab(153);
    assert_eq!(through(&lab, &["deploy", "--quiet"]).code, 0);
    lab.lab("snapshot-fault", &["vm2", "hang 30"]);
    let config = lab.path("ssh_config").display().to_string();
    let mut child = spawn_backup_with(&lab, &["--ssh-config", &config, "--limit", "vm2"]);
    wait_for_entry(&lab, |e| matches!(e, Entry::SnapshotStarted { .. }));
    assert!(
        lab.is_frozen("vm2", "IRIS"),
        "vm2 is frozen during its snapshot"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The VM thaws itself when the session through the bastions ends...
    let started = Instant::now();
    while lab.is_frozen("vm2", "IRIS") && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!lab.is_frozen("vm2", "IRIS"), "vm2 stayed frozen");
    // ... and recover finishes the run through b1 and b2 from the journal
    // alone: no ssh_config, no inventory names the bastions.
    let (run_id, _) = lab.journal();
    let run = lab.run(&["--ssh-config", "none", "recover", &run_id]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("vm2");
    let (forwards, _) = bastion_log(&lab, "b2");
    assert!(
        forwards.iter().filter(|f| f.starts_with("vm2.lab")).count() >= 3,
        "deploy, backup and recover went through b2: {forwards:?}"
    );
}

#[test]
fn ssh_config_trust_files_keys_and_a_bastion_with_a_changed_key() {
    let lab = Lab::start(154, &["vm1", "vm2", "b1", "vm3"]);
    let net = lab.net.clone();
    let key = lab.path("id_ed25519").display().to_string();
    let known = std::fs::read_to_string(lab.known_hosts()).unwrap();
    let known_line = |addr: &str| {
        known
            .lines()
            .find(|l| l.starts_with(&format!("{addr} ")))
            .unwrap()
            .to_string()
    };
    // vm1's key only in its own file; vm2 in none (accept-new records it
    // there); b1 recorded with vm1's key (a changed key).
    std::fs::write(lab.path("kh_vm1"), known_line(&format!("{net}.11")) + "\n").unwrap();
    let b1_wrong =
        known_line(&format!("{net}.11")).replacen(&format!("{net}.11"), &format!("{net}.13"), 1);
    std::fs::write(
        lab.known_hosts(),
        format!("{b1_wrong}\n{}\n", known_line(&format!("{net}.14"))),
    )
    .unwrap();
    std::fs::write(
        lab.path("ssh_config"),
        format!(
            "Host vm1\n  UserKnownHostsFile {kh1}\nHost vm2\n  UserKnownHostsFile {kh2}\n  StrictHostKeyChecking accept-new\nHost vm3\n  ProxyJump root@{net}.13\nHost *\n  IdentityFile {key}\n  User root\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile none\n",
            kh1 = lab.path("kh_vm1").display(),
            kh2 = lab.path("kh_vm2").display(),
            kh = lab.known_hosts().display(),
        ),
    )
    .unwrap();
    std::fs::write(
        lab.inventory(),
        format!("hosts:\n  vm1: {{ address: {net}.11 }}\n  vm2: {{ address: {net}.12 }}\n  vm3: {{ address: {net}.14 }}\n"),
    )
    .unwrap();
    // Nothing on the command line but the files: ssh_config says the rest.
    let run = quiesce(&[
        "-i",
        lab.inventory().to_str().unwrap(),
        "--ssh-config",
        lab.path("ssh_config").to_str().unwrap(),
        "--no-agent",
        "deploy",
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("vm1   pre-freeze-script  created"),
        "vm1's own known_hosts file: {run:?}"
    );
    assert!(
        run.stdout.contains("vm2   pre-freeze-script  created"),
        "vm2 learned by ssh_config's accept-new: {run:?}"
    );
    let learned = std::fs::read_to_string(lab.path("kh_vm2")).unwrap();
    assert!(
        learned.starts_with(&format!("{net}.12 ssh-ed25519 ")),
        "{learned}"
    );
    assert!(
        !std::fs::read_to_string(lab.known_hosts())
            .unwrap()
            .contains(&format!("{net}.12 ")),
        "learned into the host's own file only"
    );
    let vm3 = line_of(&run, "vm3 ");
    assert!(
        vm3.contains(&format!(
            "unreachable through bastion {net}.13 ({net}.13:22): HOST KEY CHANGED"
        )),
        "the bastion's key is checked like any host's: {vm3}"
    );
    let (code, _) = lab.sh("vm3", "test -e /usr/sbin/pre-freeze-script");
    assert_ne!(code, 0, "nothing reached vm3");
}
