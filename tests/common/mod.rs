//! Test support: a lab of simulated VMs (tests/lab/lab.sh) that is stopped
//! when the test ends, pass or fail, and a way to run the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub net: String,
}

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

impl Lab {
    /// Starts VMs on 127.0.`net`.11 and up; every test uses its own `net`.
    pub fn start(net: u8, specs: &[&str]) -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("quiesce-lab-")
            .tempdir()
            .expect("temp dir");
        let net = format!("127.0.{net}");
        let lab = Lab { dir, net };
        let out = Command::new(lab_script())
            .arg("up")
            .arg(lab.dir.path())
            .args(["--net", &lab.net])
            .args(specs)
            .output()
            .expect("run tests/lab/lab.sh");
        assert!(
            out.status.success(),
            "lab.sh up failed (tests need root, openssh-server and sudo; .ci/run installs them):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn inventory(&self) -> PathBuf {
        self.path("inventory.yml")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.path("known_hosts")
    }

    /// Writes an inventory next to the lab's, from the lab's own.
    pub fn write_inventory(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs lab.sh with a subcommand that takes the lab dir first.
    pub fn lab(&self, sub: &str, args: &[&str]) -> Output {
        let out = Command::new(lab_script())
            .arg(sub)
            .arg(self.dir.path())
            .args(args)
            .output()
            .expect("lab.sh");
        assert!(
            out.status.success(),
            "lab.sh {sub} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a shell command inside a VM, as root; returns (status, stdout).
    pub fn sh(&self, vm: &str, script: &str) -> (i32, String) {
        let out = Command::new(lab_script())
            .arg("exec")
            .arg(self.dir.path())
            .args([vm, "sh", "-c", script])
            .output()
            .expect("lab.sh exec");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// Runs `quiesce backup` (or any command) with this lab's runs directory.
    pub fn run(&self, args: &[&str]) -> Run {
        let runs = self.path("runs").display().to_string();
        let mut full = vec!["--runs-dir", runs.as_str()];
        full.extend_from_slice(args);
        self.quiesce(&full)
    }

    /// The journal of the lab's only (or latest) backup run.
    pub fn journal(&self) -> (String, Vec<quiesce::journal::Entry>) {
        let mut runs: Vec<_> = std::fs::read_dir(self.path("runs"))
            .expect("a runs directory")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        runs.sort();
        let run = runs.pop().expect("a run");
        let entries =
            quiesce::journal::Journal::read(&self.path("runs").join(&run).join("journal.jsonl"))
                .expect("journal");
        (run, entries)
    }

    /// Every instance of `vm` is running (none suspended) and the hook records no freeze.
    pub fn assert_nothing_frozen(&self, vm: &str) {
        let (_, status) = self.sh(vm, "/usr/sbin/pre-freeze-script status");
        assert!(
            !status.contains("suspended") && !status.contains("recorded"),
            "{vm} is still frozen: {status}"
        );
    }

    /// (frozen, thawed) times in ms of the first instance of `vm`, from the simulator.
    pub fn freeze_intervals(&self, vm: &str) -> Vec<(u64, u64)> {
        let mut intervals = Vec::new();
        let mut frozen = None;
        for line in self.events(vm).lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.get(2) {
                Some(&"frozen") => frozen = fields[0].parse().ok(),
                Some(&"thawed") => {
                    if let Some(f) = frozen.take() {
                        intervals.push((f, fields[0].parse().unwrap()));
                    }
                }
                _ => {}
            }
        }
        intervals
    }

    pub fn events(&self, vm: &str) -> String {
        String::from_utf8_lossy(&self.lab("events", &[vm]).stdout).into_owned()
    }

    /// Runs the quiesce binary against this lab's inventory and known_hosts.
    pub fn quiesce(&self, args: &[&str]) -> Run {
        let mut full: Vec<String> = vec![
            "-i".into(),
            self.inventory().display().to_string(),
            "--known-hosts".into(),
            self.known_hosts().display().to_string(),
            "--no-agent".into(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        quiesce(&full.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(lab_script())
            .arg("down")
            .arg(self.dir.path())
            .output();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn quiesce(args: &[&str]) -> Run {
    quiesce_with_env(args, &[])
}

/// Runs quiesce with no ssh-agent unless `env` sets SSH_AUTH_SOCK.
pub fn quiesce_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quiesce"));
    command.args(args).env_remove("SSH_AUTH_SOCK");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("run quiesce");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
