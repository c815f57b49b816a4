//! A hostile VM or instance owner gains nothing (issue 22): no root write or
//! read through the log directory, bounded controller memory and disk
//! whatever a VM sends, and nothing from a VM reaching a terminal raw.
//! Ground truth is the VM's files and the simulated instance.

use crate::common::*;

const FREEZE: &str = "/usr/sbin/pre-freeze-script";
const THAW: &str = "/usr/sbin/post-thaw-script";

/// vm1 whose instance IRIS is owned by irisowner, with log_dir
/// /var/log/iris owned by irisowner (as iris_user sites have it), deployed.
fn owner_lab(net: u8) -> Lab {
    let lab = Lab::start(net, &["vm1"]);
    lab.lab("owner", &["vm1", "IRIS", "irisowner"]);
    let (code, out) = lab.sh(
        "vm1",
        "mkdir -p /var/log/iris && chown irisowner: /var/log/iris && chmod 0755 /var/log/iris",
    );
    assert_eq!(code, 0, "{out}");
    add_settings(
        &lab,
        "vm1",
        ", iris_user: irisowner, log_dir: /var/log/iris",
    );
    let run = lab.quiesce(&["deploy", "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    lab
}

#[test]
fn links_the_instance_owner_plants_in_the_log_directory_are_never_followed_as_root() {
    let lab = owner_lab(83);
    // Root's files the owner would like written: one under /etc, and root's
    // authorized_keys (the classic way in).
    let (code, out) = lab.sh(
        "vm1",
        "printf 'original\\n' > /etc/quiesce-target && mkdir -p /root/.ssh && cp /root/.ssh/authorized_keys /tmp/keys-before 2>/dev/null; \
         runuser -u irisowner -- ln -s /etc/quiesce-target /var/log/iris/snapshot.log && \
         runuser -u irisowner -- ln -s /root/.ssh/authorized_keys /var/log/iris/IRIS-pre_post.log && ls -l /var/log/iris",
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    // The freeze and the thaw happened (the simulator's truth)...
    let events = instance_events(&lab, "vm1");
    assert!(
        events.iter().any(|e| e.contains("freeze_requested")),
        "{events:?}"
    );
    lab.assert_truly_thawed("vm1");
    // ...and neither target was touched.
    let (_, target) = lab.sh("vm1", "cat /etc/quiesce-target");
    assert_eq!(target, "original\n");
    let (code, out) = lab.sh(
        "vm1",
        "if [ -e /tmp/keys-before ]; then cmp /tmp/keys-before /root/.ssh/authorized_keys; else [ ! -s /root/.ssh/authorized_keys ]; fi",
    );
    assert_eq!(code, 0, "authorized_keys changed: {out}");

    // Without the links, the hooks log there, as the owner.
    lab.sh(
        "vm1",
        "rm -f /var/log/iris/snapshot.log /var/log/iris/IRIS-pre_post.log",
    );
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    let (_, owners) = lab.sh("vm1", "stat -c '%U %n' /var/log/iris/snapshot.log");
    assert_eq!(owners, "irisowner /var/log/iris/snapshot.log\n");
    let (_, log) = lab.sh("vm1", "cat /var/log/iris/snapshot.log");
    assert!(log.contains("Post thaw script finished"), "{log}");
}

#[test]
fn a_log_directory_shared_with_a_group_gets_nothing_and_audit_says_so() {
    let lab = owner_lab(84);
    lab.sh(
        "vm1",
        "chmod 0775 /var/log/iris && printf 'original\\n' > /etc/quiesce-target && runuser -u irisowner -- ln -s /etc/quiesce-target /var/log/iris/snapshot.log",
    );
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    lab.assert_truly_thawed("vm1");
    let (_, target) = lab.sh("vm1", "cat /etc/quiesce-target");
    assert_eq!(target, "original\n");
    let run = lab.run(&["logs"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("vm1: NOT COLLECTED: ")
            && run.stdout.contains(
                "/var/log/iris is writable by group or others (mode 0775): another user could plant a link there; make it writable by its owner alone (chmod go-w /var/log/iris)"
            ),
        "{run:?}"
    );
}

#[test]
fn the_log_fetch_reads_the_file_it_listed_and_never_as_root_from_the_owners_directory() {
    let lab = owner_lab(85);
    let (code, out) = lab.sh("vm1", &format!("{FREEZE} && {THAW}"));
    assert_eq!(code, 0, "{out}");
    // A root-only secret, and the owner swapping their log for a link to it
    // as fast as they can while the logs are collected again and again.
    lab.sh(
        "vm1",
        "printf 'SECRET-7f3a\\n' > /etc/quiesce-secret && chmod 0600 /etc/quiesce-secret",
    );
    let (code, out) = lab.sh(
        "vm1",
        "cd /var/log/iris && runuser -u irisowner -- sh -c 'while :; do ln -sf /etc/quiesce-secret IRIS-pre_post.log.new && mv -f IRIS-pre_post.log.new IRIS-pre_post.log; printf \"mine\\n\" > IRIS-pre_post.log.new && mv -f IRIS-pre_post.log.new IRIS-pre_post.log; done' > /dev/null 2>&1 & echo $! > /tmp/swapper",
    );
    assert_eq!(code, 0, "{out}");
    for _ in 0..15 {
        let _ = lab.run(&["logs", "--since", "1h"]);
    }
    lab.sh("vm1", "kill $(cat /tmp/swapper)");
    let mut collected = 0;
    for entry in walk(&lab.path("runs")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRET-7f3a"),
            "{} holds the secret",
            entry.display()
        );
        collected += 1;
    }
    assert!(collected > 0, "nothing was collected at all");

    // The fetch itself: a file replaced since it was listed is not read.
    let (code, out) = lab.sh(
        "vm1",
        &format!(
            "cd /tmp && {{ sed -n '1,$p' {lw}; cat {fetch}; }} > fetch.sh && \
             id=$(stat -c %d:%i /var/log/iris/snapshot.log) && \
             runuser -u irisowner -- sh -c 'cd /var/log/iris && mv snapshot.log old && echo other > other && ln -s other snapshot.log' && \
             sh fetch.sh /var/log/iris/snapshot.log 1000 \"$id\"; echo \"exit $?\"; \
             runuser -u irisowner -- ln -sf /etc/quiesce-secret /var/log/iris/snapshot.log && \
             sh fetch.sh /var/log/iris/snapshot.log 1000 \"$id\"; echo \"exit $?\"",
            lw = concat!(env!("CARGO_MANIFEST_DIR"), "/src/remote/scripts/log_writer.sh"),
            fetch = concat!(env!("CARGO_MANIFEST_DIR"), "/src/remote/scripts/fetch_log.sh"),
        ),
    );
    assert!(!out.contains("SECRET-7f3a"), "{out}");
    // Replaced by a link to a file the owner may read: refused by its inode;
    // to root's secret: the owner cannot open it, so neither can the fetch.
    let exits: Vec<&str> = out.lines().filter(|l| l.starts_with("exit ")).collect();
    assert_eq!(exits, ["exit 5", "exit 2"], "{code} {out}");
    assert!(
        out.contains("/var/log/iris/snapshot.log was replaced since it was listed: not read")
            && out.contains("Permission denied"),
        "{code} {out}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// An endless printer as root's shell rc file on `vm`: every command quiesce
/// sends starts under it (sshd runs commands through the login shell).
fn flood_rc(lab: &Lab, vm: &str) {
    let (code, out) = lab.sh(
        vm,
        "printf 'yes \"flood flood flood flood flood flood flood flood\"\\n' > /root/.bashrc && cp /root/.bashrc /root/.profile",
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn twenty_hosts_that_print_without_end_cost_the_controller_bounded_memory() {
    let names: Vec<String> = (1..=20).map(|i| format!("vm{i}")).collect();
    let specs: Vec<&str> = names.iter().map(String::as_str).collect();
    let lab = deployed(86, &specs);
    let (calm, calm_kib) = quiesce_peak_rss(&lab, &["audit", "--forks", "20"]);
    assert_eq!(calm.code, 0, "{calm:?}");
    for vm in &names {
        flood_rc(&lab, vm);
    }
    let (run, peak_kib) = quiesce_peak_rss(&lab, &["audit", "--forks", "20"]);
    assert_ne!(run.code, 0, "{run:?}");
    let told = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .filter(|l| {
            l.contains("probe sent more than 2 MiB of output, so quiesce stopped reading it")
        })
        .count();
    assert!(told >= 20, "{run:?}");
    assert!(!run.stdout.contains("compliant\n"), "{run:?}");
    eprintln!("peak RSS: {calm_kib} KiB calm, {peak_kib} KiB with 20 flooding hosts");
    assert!(
        peak_kib < 150 * 1024,
        "peak RSS {peak_kib} KiB with 20 flooding hosts ({calm_kib} KiB calm)"
    );
}

#[test]
fn a_host_that_starts_flooding_mid_run_is_still_thawed_and_a_lying_tail_fills_no_disk() {
    let lab = deployed(87, &["vm1", "vm2"]);
    // During the snapshot, vm2's shell starts printing without end: every
    // later command to vm2 (the thaw's checks, the log collection) floods.
    let lab_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
    let dir = lab.dir.path().display().to_string();
    std::fs::write(
        lab.path("snap.sh"),
        format!(
            "#!/bin/bash\nif [ \"$1\" = vm2 ]; then bash {lab_sh} exec {dir} vm2 sh -c \"printf 'yes flood\\\\n' > /root/.bashrc; cp /root/.bashrc /root/.profile\"; fi\nexec bash {lab_sh} snapshot {dir} \"$1\"\n"
        ),
    )
    .unwrap();
    set_snapshot_command(&lab, "bash DIR/snap.sh {host}");
    let (run, peak_kib) = quiesce_peak_rss(
        &lab,
        &[
            "backup",
            "-p",
            &lab.path("playbook.yml").display().to_string(),
        ],
    );
    // Both were frozen and both are thawed: the simulator's truth.
    for vm in ["vm1", "vm2"] {
        let events = instance_events(&lab, vm);
        assert!(
            events.iter().any(|e| e.contains("freeze_requested")),
            "{vm}: {events:?}\n{run:?}"
        );
        lab.assert_truly_thawed(vm);
    }
    assert!(!run.stdout.contains("LEFT FROZEN"), "{run:?}");
    assert!(
        run.stdout.contains("logs not collected from vm2"),
        "{run:?}"
    );
    assert!(peak_kib < 150 * 1024, "peak RSS {peak_kib} KiB");

    // vm1's `tail` ignores -c and sends 30 MB: no more than asked reaches the disk.
    lab.sh("vm2", "rm -f /root/.bashrc /root/.profile");
    let (code, out) = lab.sh(
        "vm1",
        "printf '#!/bin/sh\\nhead -c 30000000 /dev/zero | tr \"\\\\\\\\0\" x\\n' > /usr/sbin/tail && chmod 0755 /usr/sbin/tail && cat /usr/sbin/tail",
    );
    assert_eq!(code, 0, "{out}");
    let run = lab.run(&["logs", "--since", "1h", "--max-bytes", "1000000"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("vm1: NOT COLLECTED: ")
            && run
                .stdout
                .contains("sent more than 1000000 bytes of output"),
        "{run:?}"
    );
    for file in walk(&lab.path("runs")) {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len <= 1_000_000, "{}: {len} bytes", file.display());
    }
    lab.sh("vm1", "rm -f /usr/sbin/tail");
}

/// What a terminal would obey: C0 controls but tab and newline, DEL, C1.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| {
            (c.is_control() && *c != '\t' && *c != '\n') || ('\u{80}'..='\u{9f}').contains(c)
        })
        .collect()
}

const ESCAPES: &str = "\\033]0;pwned\\007\\033[1A\\033[2K\\r\\033]52;c;cHduZWQ=\\007";

#[test]
fn nothing_a_vm_prints_reaches_the_terminal_raw() {
    let lab = deployed(88, &["vm1", "vm2"]);
    // vm2's shell says something hostile on stderr and fails: the script
    // never begins, so its words are the error quiesce shows.
    let (code, out) = lab.sh(
        "vm2",
        &format!("printf '%s\\n' \"printf '{ESCAPES}' >&2; exit 1\" > /root/.bashrc && cp /root/.bashrc /root/.profile"),
    );
    assert_eq!(code, 0, "{out}");
    let audit = lab.quiesce(&["audit"]);
    assert_ne!(audit.code, 0, "{audit:?}");
    let seen = audit.stdout.clone() + &audit.stderr;
    assert_eq!(raw_controls(&seen), [] as [char; 0], "{audit:?}");
    assert!(
        seen.contains("\\u001b]0;pwned\\u0007\\u001b[1A\\u001b[2K\\r\\u001b]52;c;cHduZWQ=\\u0007"),
        "{audit:?}"
    );
    // JSON keeps the exact bytes, as JSON escapes.
    let json = lab.quiesce(&["audit", "--format", "json"]);
    assert_eq!(raw_controls(&json.stdout), [] as [char; 0], "{json:?}");
    assert!(
        json.stdout.contains("\\u001b]52;c;cHduZWQ=\\u0007"),
        "{json:?}"
    );
    // A backup: vm2's preflight error, and a snapshot command's error for vm1.
    set_snapshot_command(&lab, &format!("printf \"{ESCAPES}\" >&2; exit 3"));
    let run = backup(&lab, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    let seen = run.stdout.clone() + &run.stderr;
    assert_eq!(raw_controls(&seen), [] as [char; 0], "{run:?}");
    assert!(seen.contains("\\u001b]0;pwned"), "{run:?}");
    lab.assert_truly_thawed("vm1");
    lab.assert_nothing_frozen("vm2");
}

#[test]
fn two_hooks_that_find_the_same_stale_lock_never_both_hold_it() {
    let lab = deployed(89, &["vm1=iris:IRIS,IRIS2"]);
    // Ten rounds: a lock left by a dead process, two freezes at once.
    let (code, out) = lab.sh(
        "vm1",
        &format!(
            "for round in 1 2 3 4 5 6 7 8 9 10; do \
               dead=$(sh -c 'echo $$'); mkdir -p /run/quiesce/lock && echo $dead > /run/quiesce/lock/pid; \
               {FREEZE} > /tmp/a.out 2>&1 & a=$!; {FREEZE} > /tmp/b.out 2>&1 & b=$!; \
               wait $a; ra=$?; wait $b; rb=$?; \
               echo \"round $round: $ra $rb $(cut -d: -f1,2 /run/quiesce/frozen | sort | tr '\\n' ' ')\"; \
               {THAW} > /dev/null 2>&1 || echo \"round $round: thaw failed\"; \
             done"
        ),
    );
    assert_eq!(code, 0, "{out}");
    let rounds: Vec<&str> = out.lines().filter(|l| l.starts_with("round ")).collect();
    assert_eq!(rounds.len(), 10, "{out}");
    for line in rounds {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let codes = [fields[2], fields[3]];
        assert!(
            codes == ["0", "3"] || codes == ["3", "0"],
            "exactly one freeze holds the lock: {line}\n{out}"
        );
        assert_eq!(
            &fields[4..],
            ["frozen:IRIS", "frozen:IRIS2"],
            "the holder's record is whole: {line}"
        );
    }
    lab.assert_truly_thawed("vm1");

    // A lock with no pid: stale once it is old, respected while it is fresh.
    let (code, out) = lab.sh(
        "vm1",
        &format!("mkdir -p /run/quiesce/lock && {FREEZE}; echo \"fresh $?\"; touch -d '1 minute ago' /run/quiesce/lock && {FREEZE}; echo \"old $?\"; {THAW}"),
    );
    assert!(
        out.contains("fresh 3") && out.contains("old 0"),
        "{code} {out}"
    );
    lab.assert_truly_thawed("vm1");

    // No room for a lock at all (/run/quiesce read-only): said, not a hang.
    let (code, out) = lab.sh(
        "vm1",
        &format!("rm -rf /run/quiesce/lock; mount -t tmpfs -o ro q /run/quiesce && {FREEZE}; echo \"exit $?\"; umount /run/quiesce"),
    );
    assert!(
        out.contains(
            "cannot make the lock /run/quiesce/lock (is /run full or read-only?): nothing was done"
        ) && out.contains("exit 1"),
        "{code} {out}"
    );
    lab.assert_nothing_frozen("vm1");
}

#[test]
fn audit_and_deploy_check_the_hook_directorys_parents_the_log_dir_and_the_vms_tools() {
    let lab = deployed(90, &["vm1", "vm2", "vm3"]);
    // vm1: hooks under /etc/q, which another user owns (they could rename
    // the hook directory away and put their own).
    lab.sh("vm1", "mkdir -p /etc/q/hooks && chown nobody /etc/q");
    add_settings(&lab, "vm1", ", framework: none, hook_dir: /etc/q/hooks");
    // vm2: a log directory everyone may write.
    lab.sh(
        "vm2",
        "mkdir -p /var/log/shared && chmod 0777 /var/log/shared",
    );
    add_settings(&lab, "vm2", ", log_dir: /var/log/shared");
    // vm3: busybox's mktemp first on root's PATH.
    lab.sh(
        "vm3",
        "mkdir -p /etc/lab-busybox && printf '#!/bin/sh\\nexec /usr/bin/$(basename \"$0\") \"$@\"\\n' > /etc/lab-busybox/busybox && chmod 0755 /etc/lab-busybox/busybox && ln -sf /etc/lab-busybox/busybox /usr/sbin/mktemp",
    );
    let audit = lab.quiesce(&["audit"]);
    assert_ne!(audit.code, 0, "{audit:?}");
    for expected in [
        "hook directory's parent /etc/q is not root's alone (uid 65534, mode 0755): its owner or anyone who can write it could swap the hooks, and backups refuse to run them; make it root's and writable by root alone",
        "the hooks write nothing in log_dir /var/log/shared, only to syslog: /var/log/shared is writable by group or others (mode 0777): another user could plant a link there; make it writable by its owner alone (chmod go-w /var/log/shared)",
        "`mktemp` is busybox's on the VM: deploy, audit and the hooks' checks need GNU coreutils 8.23 or later (stat -c, sha256sum, mktemp, mv -T, timeout); install coreutils beside busybox",
    ] {
        assert!(audit.stdout.contains(expected), "{expected}\n{audit:?}");
    }
    // Deploy refuses vm1 and vm3, --force or not, and writes nothing there.
    for force in [&["deploy"][..], &["deploy", "--force"][..]] {
        let run = lab.quiesce(force);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(
            run.stdout
                .contains("its parent /etc/q is not root's alone (uid 65534, mode 0755)")
                || run
                    .stderr
                    .contains("its parent /etc/q is not root's alone (uid 65534, mode 0755)"),
            "{run:?}"
        );
        assert!(
            (run.stdout.clone() + &run.stderr)
                .contains("refusing to deploy: mktemp is busybox on the VM"),
            "{run:?}"
        );
        let (_, listing) = lab.sh("vm1", "ls -A /etc/q/hooks");
        assert_eq!(listing, "", "nothing is written under /etc/q");
    }
    // The hooks still freeze and thaw on vm2, logging to syslog only.
    let (code, out) = lab.sh(
        "vm2",
        "/usr/sbin/pre-freeze-script && /usr/sbin/post-thaw-script; ls -A /var/log/shared",
    );
    assert_eq!(code, 0, "{out}");
    // Only the instance's own LogFile (the instance opens it, not the hook).
    assert!(
        !out.contains("snapshot.log"),
        "the hooks wrote there: {out}"
    );
    lab.assert_truly_thawed("vm2");
}

#[test]
fn instance_tools_that_print_hostile_bytes_gain_nothing() {
    let lab = deployed(91, &["vm1", "vm2"]);
    // vm2's iris says something hostile on stderr on every call, and its
    // freeze fails.
    let (code, out) = lab.sh(
        "vm2",
        &format!(
            "mv /usr/sbin/iris /usr/sbin/iris.real && printf '%s\\n' '#!/bin/sh' \"printf '{ESCAPES}' >&2\" 'exec /usr/sbin/iris.real \"$@\"' > /usr/sbin/iris && chmod 0755 /usr/sbin/iris"
        ),
    );
    assert_eq!(code, 0, "{out}");
    lab.lab("fault", &["vm2", "IRIS", "freeze=fail"]);
    let run = backup(&lab, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    let seen = run.stdout.clone() + &run.stderr;
    assert_eq!(raw_controls(&seen), [] as [char; 0], "{run:?}");
    let json = std::fs::read_to_string(lab.path(&format!("runs/{}/results.json", lab.journal().0)))
        .unwrap();
    assert_eq!(raw_controls(&json), [] as [char; 0]);
    lab.assert_truly_thawed("vm1");
    lab.assert_nothing_frozen("vm2");
    // Never called valid.
    let vm2 = run
        .stdout
        .lines()
        .find(|l| l.starts_with("vm2 "))
        .unwrap_or_default();
    assert!(
        !vm2.ends_with("valid") || vm2.contains("INVALID"),
        "{run:?}"
    );
}
