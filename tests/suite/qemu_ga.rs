//! qemu-guest-agent as the freeze framework: the real Debian agent, started
//! inside a lab VM, drives the hook quiesce deployed to its fsfreeze-hook.d.
//! Only `guest-fsfreeze-freeze-list` of a loop-mounted file system is ever
//! sent: a plain `guest-fsfreeze-freeze` would freeze this machine's own
//! file systems (and a writer blocked on one cannot be killed until thaw).
//! Every verdict is checked against the simulated instance's own state.

use crate::common::{
    Lab, add_settings, assert_journal_complete, backup, instance_events, snapshot_log,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

const HOOK: &str = "/etc/qemu/fsfreeze-hook.d/quiesce";

/// A qemu-ga running in `vm` on a unix socket, with a loop-mounted file
/// system of its own to freeze. Dropped: thawed (by the agent, then by
/// fsfreeze -u), stopped, unmounted.
struct Agent<'a> {
    lab: &'a Lab,
    vm: &'a str,
    socket: PathBuf,
    mount: String,
    pid_file: String,
}

impl<'a> Agent<'a> {
    fn mount(lab: &'a Lab, vm: &'a str) -> Agent<'a> {
        let base = lab.path(&format!("vms/{vm}"));
        let mount = base.join("qgafs").display().to_string();
        let image = base.join("qgafs.img").display().to_string();
        let (code, out) = lab.sh(
            vm,
            &format!(
                "set -e; truncate -s 32M {image}; mkfs.ext4 -q -F {image}; mkdir -p {mount}; mount -o loop {image} {mount}"
            ),
        );
        assert_eq!(code, 0, "loop mount: {out}");
        Agent {
            lab,
            vm,
            socket: base.join("qga.sock"),
            mount,
            pid_file: base.join("qga.pid").display().to_string(),
        }
    }

    /// (Re)starts the agent with `hook_arg` (`-F`, `-FPATH` or nothing).
    fn start(&self, hook_arg: &str) {
        self.stop();
        let state = self.lab.path(&format!("vms/{}/qga-state", self.vm));
        std::fs::create_dir_all(&state).unwrap();
        let (code, out) = self.lab.sh(
            self.vm,
            &format!(
                "qemu-ga -m unix-listen -p {} -t {} -f {} -l {}/qga.log {hook_arg} -d",
                self.socket.display(),
                state.display(),
                self.pid_file,
                state.display(),
            ),
        );
        assert_eq!(code, 0, "qemu-ga: {out}");
        for _ in 0..100 {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("qemu-ga did not listen on {}", self.socket.display());
    }

    fn stop(&self) {
        self.lab.sh(
            self.vm,
            &format!("[ -s {p} ] && kill \"$(cat {p})\" 2>/dev/null; i=0; while [ -s {p} ] && kill -0 \"$(cat {p})\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -f {p} {s}", p = self.pid_file, s = self.socket.display()),
        );
    }

    /// One QMP command; the agent's answer line.
    fn call(&self, command: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("the agent's socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        stream.write_all(command.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn freeze(&self) -> String {
        self.call(&format!(
            r#"{{"execute":"guest-fsfreeze-freeze-list","arguments":{{"mountpoints":["{}"]}}}}"#,
            self.mount
        ))
    }

    fn thaw(&self) -> String {
        self.call(r#"{"execute":"guest-fsfreeze-thaw"}"#)
    }

    fn status(&self) -> String {
        self.call(r#"{"execute":"guest-fsfreeze-status"}"#)
    }

    /// The stock fsfreeze-hook's log (VM's /var/log), one line per call.
    fn dispatcher_log(&self) -> Vec<String> {
        let (_, text) = self
            .lab
            .sh(self.vm, "cat /var/log/qga-fsfreeze-hook.log 2>/dev/null");
        text.lines()
            .filter_map(|l| l.split_once(": ").map(|(_, rest)| rest.to_string()))
            .filter(|l| l.contains(HOOK))
            .collect()
    }
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        if UnixStream::connect(&self.socket).is_ok() {
            let _ = self.thaw();
        }
        self.stop();
        self.lab.sh(
            self.vm,
            &format!("fsfreeze -u {m} 2>/dev/null; umount {m}", m = self.mount),
        );
    }
}

fn codes(audit_json: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(audit_json).expect("audit JSON");
    let mut codes: Vec<String> = value["records"]
        .as_array()
        .expect("records")
        .iter()
        .flat_map(|h| h["findings"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect();
    codes.dedup();
    codes
}

#[test]
fn the_real_qemu_guest_agent_freezes_and_thaws_through_the_deployed_hook() {
    let lab = Lab::start(94, &["vm1=iris:IRIS"]);
    add_settings(&lab, "vm1", ", framework: qemu-ga");
    let run = lab.quiesce(&["deploy"]);
    assert_eq!(run.code, 0, "{run:?}");
    // One hook, where the agent's fsfreeze-hook runs it; nothing in /usr/sbin.
    let (_, stat) = lab.sh(
        "vm1",
        &format!("stat -c '%U:%G %a %F' {HOOK}; ls /usr/sbin/pre-freeze-script /usr/sbin/post-thaw-script 2>&1 | wc -l"),
    );
    assert_eq!(stat, "root:root 700 regular file\n2\n", "{stat}");
    assert!(
        run.stdout.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["vm1", "quiesce", "created"])),
        "{run:?}"
    );

    // The agent not running, and configured to run no hook (Debian's default).
    let audit = lab.quiesce(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 1, "{audit:?}");
    assert_eq!(codes(&audit.stdout), ["qga-not-running", "qga-hook-off"]);

    let agent = Agent::mount(&lab, "vm1");
    // The stock dispatcher: the hook runs; its status is not looked at (a note).
    agent.start("-F");
    let audit = lab.quiesce(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    assert_eq!(codes(&audit.stdout), ["qga-status-ignored"]);

    assert_eq!(agent.freeze(), r#"{"return": 1}"#);
    assert!(lab.is_frozen("vm1", "IRIS"), "{:?}", lab.events("vm1"));
    assert_eq!(agent.status(), r#"{"return": "frozen"}"#);
    assert_eq!(agent.thaw(), r#"{"return": 1}"#);
    lab.assert_truly_thawed("vm1");
    let events = instance_events(&lab, "vm1");
    assert!(
        events.iter().any(|e| e == "IRIS frozen") && events.iter().any(|e| e == "IRIS thawed"),
        "{events:?}"
    );
    assert!(
        snapshot_log(&lab, "vm1")
            .iter()
            .any(|l| l.contains("Post thaw script finished")),
        "{:?}",
        snapshot_log(&lab, "vm1")
    );
    let history = |lab: &Lab| {
        instance_events(lab, "vm1")
            .iter()
            .filter(|e| e.contains("history"))
            .count()
    };
    let recorded = history(&lab);
    assert_eq!(recorded, 1, "{:?}", instance_events(&lab, "vm1"));

    // A thaw with nothing frozen still calls the hook: it does nothing, and
    // says so with status 0.
    assert_eq!(agent.thaw(), r#"{"return": 0}"#);
    lab.assert_truly_thawed("vm1");
    assert_eq!(history(&lab), recorded);
    assert_eq!(
        agent.dispatcher_log(),
        [
            format!("execute {HOOK} freeze"),
            format!("{HOOK} finished with status=0"),
            format!("execute {HOOK} thaw"),
            format!("{HOOK} finished with status=0"),
            format!("execute {HOOK} thaw"),
            format!("{HOOK} finished with status=0"),
        ]
    );

    // A freeze that fails under the stock dispatcher: the agent goes on and
    // freezes the file system; the instance is not frozen, and the hook says
    // the snapshot holds no frozen database.
    assert!(
        lab.lab("fault", &["vm1", "IRIS", "freeze=fail"])
            .status
            .success()
    );
    assert_eq!(agent.freeze(), r#"{"return": 1}"#);
    assert!(!lab.is_frozen("vm1", "IRIS"));
    assert!(
        snapshot_log(&lab, "vm1")
            .iter()
            .any(|l| l.contains("the stock fsfreeze-hook ignores this failure")),
        "{:?}",
        snapshot_log(&lab, "vm1")
    );
    assert_eq!(agent.thaw(), r#"{"return": 1}"#);
    lab.assert_truly_thawed("vm1");

    // The agent running quiesce's hook itself: a failed freeze fails the
    // agent's command, and no file system is frozen.
    agent.start(&format!("-F{HOOK}"));
    let audit = lab.quiesce(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    assert!(codes(&audit.stdout).is_empty(), "{audit:?}");
    let answer = agent.freeze();
    assert!(
        answer.contains("fsfreeze hook has failed with status 1"),
        "{answer}"
    );
    assert_eq!(agent.status(), r#"{"return": "thawed"}"#);
    lab.assert_truly_thawed("vm1");
    assert!(lab.lab("clear-faults", &["vm1", "IRIS"]).status.success());
    assert_eq!(agent.freeze(), r#"{"return": 1}"#);
    assert!(lab.is_frozen("vm1", "IRIS"));
    assert_eq!(agent.thaw(), r#"{"return": 1}"#);
    lab.assert_truly_thawed("vm1");
    assert_eq!(history(&lab), recorded + 1);

    // quiesce's own run on this host uses the same one hook.
    let run = backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_journal_complete(&lab);
    lab.assert_truly_thawed("vm1");
    assert_eq!(history(&lab), recorded + 2);
}
