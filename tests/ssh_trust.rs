//! SSH against the lab: host keys (unknown, accept-new by name, changed),
//! sudo for non-root users, and unreachable VMs not stalling the others.

mod common;

use common::Lab;
use std::process::Command;

fn fingerprint(lab: &Lab, vm: &str) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(lab.path(&format!("vms/{vm}/host_key.pub")))
        .output()
        .unwrap();
    // "256 SHA256:... (ED25519)"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn unknown_host_keys_are_refused_unless_accepted_by_name() {
    let lab = Lab::start(31, &["vm1", "vm2"]);
    std::fs::write(lab.known_hosts(), "").unwrap();

    let run = lab.quiesce(&["audit", "--quiet"]);
    assert_eq!(run.code, 3, "{run:?}");
    let fp1 = fingerprint(&lab, "vm1");
    let known = lab.known_hosts().display().to_string();
    assert!(
        run.stdout.contains(&format!("vm1   pre-freeze-script  UNREACHABLE  vm1 ({}.11:22): host key ssh-ed25519 {fp1} is not in {known}", lab.net)),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(lab.known_hosts()).unwrap(),
        "",
        "nothing may be recorded without --accept-new"
    );

    // Accepting one host by name records only that one.
    let run = lab.quiesce(&["deploy", "--accept-new=vm1"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("vm1: recorded new host key ssh-ed25519 {fp1}")),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("vm1   pre-freeze-script  created"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("vm2   pre-freeze-script  UNREACHABLE"),
        "{run:?}"
    );
    let known_text = std::fs::read_to_string(lab.known_hosts()).unwrap();
    assert_eq!(known_text.lines().count(), 1);
    assert!(known_text.starts_with(&format!("{}.11 ssh-ed25519 ", lab.net)));

    // Recorded keys now pass without the flag.
    let run = lab.quiesce(&["audit", "--limit", "vm1"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_changed_host_key_is_always_refused() {
    let lab = Lab::start(32, &["vm1"]);
    let other = lab.path("other_key");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let line = format!(
        "{}.11 {}",
        lab.net,
        other_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::fs::write(lab.known_hosts(), format!("# pinned\n{line}\n")).unwrap();

    let run = lab.quiesce(&["audit", "--accept-new"]);
    assert_eq!(run.code, 3, "{run:?}");
    let expected = format!(
        "vm1 ({net}.11:22): HOST KEY CHANGED: the server offers ssh-ed25519 {fp}, {known}:2 records another key; refusing to connect\n  hint: this can be an attack; if the VM was really rebuilt, remove line 2 of {known} and accept the new key by name\n",
        net = lab.net,
        fp = fingerprint(&lab, "vm1"),
        known = lab.known_hosts().display()
    );
    assert!(run.stderr.contains(&expected), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(lab.known_hosts()).unwrap(),
        format!("# pinned\n{line}\n")
    );
}

#[test]
fn non_root_users_work_through_sudo() {
    let lab = Lab::start(33, &["vm1", "vm2=iris:IRIS:password"]);
    let inventory = std::fs::read_to_string(lab.inventory())
        .unwrap()
        .replace("user: root", "user: quiesce-lab, become: true");
    std::fs::write(lab.inventory(), inventory).unwrap();

    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout.contains("vm1   pre-freeze-script  created"),
        "{run:?}"
    );
    let (_, stat) = lab.sh(
        "vm1",
        "stat -c '%U:%G %a' /usr/sbin/pre-freeze-script /usr/sbin/post-thaw-script",
    );
    assert_eq!(stat, "root:root 700\nroot:root 700\n");
    let expected = format!(
        "vm2 ({}.12:22): sudo asks quiesce-lab for a password\n  hint: quiesce runs `sudo -n`; give quiesce-lab NOPASSWD rights for /bin/sh in sudoers, or connect as root\n",
        lab.net
    );
    assert!(run.stderr.contains(&expected), "{run:?}");
    assert!(
        run.stdout.contains("vm2   pre-freeze-script  FAILED"),
        "{run:?}"
    );

    let run = lab.quiesce(&["audit", "--limit", "vm1"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn dead_and_stunned_vms_are_reported_while_the_others_finish() {
    let lab = Lab::start(34, &["vm1", "vm2", "vm3"]);
    assert_eq!(lab.quiesce(&["deploy"]).code, 0);
    lab.lab("kill-sshd", &["vm2"]);
    lab.lab("stun", &["vm3"]);

    let run = lab.quiesce(&["audit", "--connect-timeout", "2s"]);
    lab.lab("unstun", &["vm3"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("vm1   pre-freeze-script  compliant"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "vm2   pre-freeze-script  UNREACHABLE  vm2 ({}.12:22): cannot connect: ",
            lab.net
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "vm3   post-thaw-script   UNREACHABLE  vm3 ({}.13:22): no SSH answer within 2s",
            lab.net
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .ends_with("audit: 3 hosts, 6 hooks: 2 compliant, 4 unreachable\n"),
        "{run:?}"
    );
}
