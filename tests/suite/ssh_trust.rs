//! SSH against the lab: host keys (unknown, accept-new by name, changed),
//! sudo for non-root users, and unreachable VMs not stalling the others.

use crate::common::Lab;
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

/// `TYPE BASE64` of a public key file (its comment left out), as
/// known_hosts lines hold it.
fn public_key(file: &std::path::Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A new ed25519 key pair at `file` (and `file.pub`); its public key.
fn new_key(file: &std::path::Path) -> String {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lab-test", "-f"])
        .arg(file)
        .status()
        .unwrap();
    assert!(made.success());
    public_key(&file.with_extension("pub"))
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

#[test]
fn ecdsa_rsa_and_agent_keys_log_in() {
    let lab = Lab::start(35, &["vm1", "vm2", "vm3"]);
    let mut authorized = std::fs::read_to_string(lab.path("authorized_keys")).unwrap();
    for (name, kind) in [
        ("ecdsa_key", "ecdsa"),
        ("rsa_key", "rsa"),
        ("agent_key", "ed25519"),
    ] {
        let key = lab.path(name);
        assert!(
            Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-f"])
                .arg(&key)
                .status()
                .unwrap()
                .success()
        );
        authorized.push_str(&std::fs::read_to_string(key.with_extension("pub")).unwrap());
    }
    std::fs::write(lab.path("authorized_keys"), authorized).unwrap();
    let inventory = format!(
        "defaults: {{ user: root }}\nhosts:\n  vm1: {{ address: {net}.11, identity_file: ecdsa_key }}\n  vm2: {{ address: {net}.12, identity_file: rsa_key }}\n  vm3: {{ address: {net}.13 }}\n",
        net = lab.net
    );
    std::fs::write(lab.inventory(), inventory).unwrap();

    // vm3 has no key file: it logs in through ssh-agent.
    let socket = lab.path("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-a")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(agent.status.success());
    let pid = String::from_utf8_lossy(&agent.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let socket = socket.to_str().unwrap();
    assert!(
        Command::new("ssh-add")
            .arg("-q")
            .arg(lab.path("agent_key"))
            .env("SSH_AUTH_SOCK", socket)
            .status()
            .unwrap()
            .success()
    );
    let home = lab.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let (inventory, known_hosts) = (lab.inventory(), lab.known_hosts());
    let base = [
        "-i",
        inventory.to_str().unwrap(),
        "--known-hosts",
        known_hosts.to_str().unwrap(),
    ];
    let run = crate::common::quiesce_with_env(
        &[&base[..], &["deploy"]].concat(),
        &[("SSH_AUTH_SOCK", socket), ("HOME", home.to_str().unwrap())],
    );
    let _ = Command::new("kill").arg(&pid).status();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("deploy: 3 hosts, 6 hooks: 6 created\n"),
        "{run:?}"
    );

    // Without the agent, vm3 has no key to offer and says so.
    let run = crate::common::quiesce_with_env(
        &[&base[..], &["--limit", "vm3", "audit"]].concat(),
        &[("HOME", home.to_str().unwrap())],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "vm3 ({}.13:22): login as root refused (tried: no key: none found and no ssh-agent)",
            lab.net
        )),
        "{run:?}"
    );
}

/// Whether OpenSSH's own client accepts the VM's host key with this
/// known_hosts (strict checking, no global file, no questions).
fn openssh_accepts(lab: &Lab, address: &str, known_hosts: &std::path::Path) -> bool {
    openssh_accepts_with(lab, address, known_hosts, std::path::Path::new("/dev/null"))
}

/// The same, with `global` as OpenSSH's GlobalKnownHostsFile.
fn openssh_accepts_with(
    lab: &Lab,
    address: &str,
    known_hosts: &std::path::Path,
    global: &std::path::Path,
) -> bool {
    let out = Command::new("ssh")
        .args(["-i", lab.path("id_ed25519").to_str().unwrap()])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("GlobalKnownHostsFile={}", global.display()))
        .args(["-o", "CheckHostIP=no"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg(format!("root@{address}"))
        .arg("true")
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn host_keys_are_judged_as_openssh_judges_them() {
    let lab = Lab::start(177, &["vm1"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let address = format!("{}.11", lab.net);
    let key = public_key(&lab.path("vms/vm1/host_key.pub"));
    // Another key, for "changed" and "revoked elsewhere".
    let other = new_key(&lab.path("other_key"));
    let net = &lab.net;
    let a = &address;
    // Hashed the way `ssh-keygen -H` writes it.
    let hashed = {
        let file = lab.path("to_hash");
        std::fs::write(&file, format!("{a} {key}\n")).unwrap();
        Command::new("ssh-keygen")
            .args(["-q", "-H", "-f", file.to_str().unwrap()])
            .output()
            .unwrap();
        std::fs::read_to_string(&file).unwrap()
    };
    let rows: Vec<(&str, String)> = vec![
        ("plain", format!("{a} {key}\n")),
        ("changed", format!("{a} {other}\n")),
        ("empty", String::new()),
        ("wildcard", format!("{net}.* {key}\n")),
        ("wildcard but negated", format!("{net}.*,!{a} {key}\n")),
        ("negated first", format!("!{a},{net}.* {key}\n")),
        (
            "question mark",
            format!("{}?{} {key}\n", &a[..a.len() - 1], ""),
        ),
        (
            "revoked and known",
            format!("@revoked {a} {key}\n{a} {key}\n"),
        ),
        (
            "revoked for every host",
            format!("@revoked * {key}\n{a} {key}\n"),
        ),
        (
            "revoked other key",
            format!("@revoked {a} {other}\n{a} {key}\n"),
        ),
        ("hashed", hashed),
        ("bracketed port 22", format!("[{a}]:22 {key}\n")),
        ("tabs", format!("{a}\t{}\n", key.replace(' ', "\t"))),
        (
            "cert authority only",
            format!("@cert-authority {a} {key}\n"),
        ),
        ("another key first", format!("{a} {other}\n{a} {key}\n")),
        ("other domain", format!("*.example.net {key}\n")),
        ("comment", format!("# the lab\n{a} {key}\n")),
        ("several names", format!("db1,{a},db2 {key}\n")),
    ];
    let mut disagreements = Vec::new();
    for (name, text) in rows {
        std::fs::write(lab.known_hosts(), &text).unwrap();
        let theirs = openssh_accepts(&lab, a, &lab.known_hosts());
        let run = lab.quiesce(&["audit", "--quiet"]);
        let ours = run.code != 3;
        if theirs != ours {
            disagreements.push(format!(
                "{name}: OpenSSH {theirs}, quiesce {ours}\n{text}{run:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));

    // --accept-new never learns past a revoked key or a line it cannot evaluate.
    for text in [
        format!("@revoked {a} {key}\n"),
        format!("@cert-authority {a} {other}\n"),
    ] {
        std::fs::write(lab.known_hosts(), &text).unwrap();
        let run = lab.quiesce(&["audit", "--quiet", "--accept-new=vm1"]);
        assert_eq!(run.code, 3, "{text}{run:?}");
        assert_eq!(
            std::fs::read_to_string(lab.known_hosts()).unwrap(),
            text,
            "learned past it"
        );
    }
}

#[test]
fn host_certificates_are_judged_as_openssh_judges_them() {
    let lab = Lab::start(178, &["vm1", "vm2", "vm3"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let ca = lab.path("ca");
    let ca_pub = new_key(&ca);
    // vm1: a certificate for its address; vm2: for another name; vm3: none.
    lab.lab("certify", &["vm1", ca.to_str().unwrap()]);
    lab.lab(
        "certify",
        &["vm2", ca.to_str().unwrap(), "elsewhere.example.net"],
    );
    let net = &lab.net;
    let rows = [
        (
            "trusted CA only",
            format!("@cert-authority {net}.* {ca_pub}\n"),
        ),
        (
            "CA for other hosts",
            format!("@cert-authority *.example.net {ca_pub}\n"),
        ),
        (
            "CA revoked",
            format!("@cert-authority {net}.* {ca_pub}\n@revoked * {ca_pub}\n"),
        ),
    ];
    let mut disagreements = Vec::new();
    let mut accepted_by_certificate = 0;
    for (name, text) in &rows {
        std::fs::write(lab.known_hosts(), text).unwrap();
        for (i, vm) in ["vm1", "vm2", "vm3"].iter().enumerate() {
            let address = format!("{net}.{}", 11 + i);
            let theirs = openssh_accepts(&lab, &address, &lab.known_hosts());
            let run = lab.quiesce(&["audit", "--quiet", "--limit", vm]);
            let ours = run.code != 3;
            if theirs != ours {
                disagreements.push(format!(
                    "{name} / {vm}: OpenSSH {theirs}, quiesce {ours}\n{run:?}"
                ));
            }
            accepted_by_certificate += usize::from(theirs && ours);
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(
        accepted_by_certificate >= 1,
        "a trusted certificate was accepted"
    );
}

#[test]
fn a_global_known_hosts_file_counts_as_openssh_counts_it() {
    let lab = Lab::start(179, &["vm1"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let address = format!("{}.11", lab.net);
    let key = public_key(&lab.path("vms/vm1/host_key.pub"));
    let global = lab.path("global_known_hosts");
    let user = lab.known_hosts();
    let run = |extra: &[&str]| {
        let mut args = vec!["audit", "--quiet"];
        args.extend_from_slice(extra);
        lab.quiesce(&args)
    };
    let global_arg = format!("--global-known-hosts={}", global.display());
    // The key only in the global file: OpenSSH and quiesce accept it.
    std::fs::write(&user, "").unwrap();
    std::fs::write(&global, format!("{address} {key}\n")).unwrap();
    assert!(openssh_accepts_with(&lab, &address, &user, &global));
    assert_eq!(run(&[&global_arg]).code, 0);
    // Revoked in the global file: refused, and the message names that file.
    std::fs::write(&global, format!("@revoked {address} {key}\n")).unwrap();
    std::fs::write(&user, format!("{address} {key}\n")).unwrap();
    let refused = run(&[&global_arg]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains(&format!("{}:1 marks it @revoked", global.display())),
        "{refused:?}"
    );
    // `none`: only the user file counts.
    assert_eq!(run(&["--global-known-hosts=none"]).code, 0);
}
