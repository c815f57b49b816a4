//! Test support: a lab of simulated VMs (tests/lab/lab.sh) that is stopped
//! when the test ends, pass or fail, and a way to run the real binary.

use quiesce::backup::journal::{Entry, left_frozen};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    pub fn journal(&self) -> (String, Vec<quiesce::backup::journal::Entry>) {
        let mut runs: Vec<_> = std::fs::read_dir(self.path("runs"))
            .expect("a runs directory")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        runs.sort();
        let run = runs.pop().expect("a run");
        let entries = quiesce::backup::journal::Journal::read(
            &self.path("runs").join(&run).join("journal.jsonl"),
        )
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

    /// Ground truth from the simulator itself, not the hooks: every instance
    /// of `vm` is neither frozen nor paused, and no freeze is recorded.
    pub fn assert_truly_thawed(&self, vm: &str) {
        let (_, states) = self.sh(
            vm,
            "for d in /etc/irissim/*/; do printf '%s ' \"$(basename \"$d\")\"; cat \"$d/state\" 2>/dev/null | tr '\\n' ' '; echo; done; cat /run/quiesce/frozen 2>/dev/null | sed 's/^/recorded /'",
        );
        for line in states.lines() {
            assert!(
                !line.contains("frozen=1")
                    && !line.contains("frozen=wd_resumed")
                    && !line.contains("paused=1")
                    && !line.starts_with("recorded"),
                "{vm} is not thawed (simulator state): {states}"
            );
        }
    }

    /// Whether an instance of `vm` is frozen, per the simulator.
    pub fn is_frozen(&self, vm: &str, instance: &str) -> bool {
        self.sh(
            vm,
            &format!("cat /etc/irissim/{instance}/state 2>/dev/null"),
        )
        .1
        .contains("frozen=1")
    }

    /// A quiesced snapshot of `vm` made as VMware Tools makes one
    /// (tests/lab/vmtools-standin ARGS): its exit status and its event lines
    /// with the times dropped (`run script=... action=freeze pid=N`).
    pub fn tools(&self, vm: &str, args: &[&str]) -> (i32, Vec<String>) {
        let out = Command::new(lab_script())
            .arg("tools")
            .arg(self.dir.path())
            .arg(vm)
            .args(args)
            .output()
            .expect("lab.sh tools");
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (time, event) = l.trim_start().split_once(' ')?;
                time.parse::<f64>().ok()?;
                Some(event.to_string())
            })
            .collect();
        (out.status.code().unwrap_or(-1), lines)
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

// ---- backups against the lab ----

pub fn deployed(net: u8, args: &[&str]) -> Lab {
    let lab = Lab::start(net, args);
    let run = lab.quiesce(&["deploy", "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    lab
}

pub fn set_playbook(lab: &Lab, from: &str, to: &str) {
    let text = std::fs::read_to_string(lab.path("playbook.yml")).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(lab.path("playbook.yml"), text.replace(from, to)).unwrap();
}

/// Replaces the lab playbook's snapshot command. In `command`, `LAB` stands
/// for `bash tests/lab/lab.sh` and `DIR` for the lab's directory.
pub fn set_snapshot_command(lab: &Lab, command: &str) {
    let lab_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
    let dir = lab.dir.path().display().to_string();
    let command = command
        .replace("LAB", &format!("bash {lab_sh}"))
        .replace("DIR", &dir);
    set_playbook(
        lab,
        &format!("command: 'bash {lab_sh} snapshot {dir} {{host}}'"),
        &format!("command: '{command}'"),
    );
}

pub fn backup(lab: &Lab, extra: &[&str]) -> Run {
    let playbook = lab.path("playbook.yml").display().to_string();
    let mut args = vec!["backup", "-p", playbook.as_str()];
    args.extend_from_slice(extra);
    lab.run(&args)
}

/// The journal is complete: the run finished and nothing is left frozen in it.
pub fn assert_journal_complete(lab: &Lab) -> Vec<Entry> {
    let (_, entries) = lab.journal();
    assert!(
        matches!(entries.first(), Some(Entry::RunStarted { .. })),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, Entry::RunFinished { .. })),
        "{entries:?}"
    );
    assert_eq!(left_frozen(&entries), Vec::<String>::new(), "{entries:?}");
    entries
}

/// The simulator's events of `vm` as `INSTANCE EVENT` (timestamps dropped).
pub fn instance_events(lab: &Lab, vm: &str) -> Vec<String> {
    lab.events(vm)
        .lines()
        .map(|l| l.split(' ').skip(1).take(2).collect::<Vec<_>>().join(" "))
        .filter(|e| !e.ends_with("is_suspended"))
        .collect()
}

/// The hooks' log on `vm` (/var/log/snapshot.log), a message per line.
pub fn snapshot_log(lab: &Lab, vm: &str) -> Vec<String> {
    let (_, log) = lab.sh(vm, "cat /var/log/snapshot.log");
    // Drop the `date` prefix, which ends at the first ": ".
    log.lines()
        .map(|l| {
            l.split_once(": ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_default()
        })
        .collect()
}

pub fn history_sets(lab: &Lab, vm: &str) -> usize {
    lab.events(vm)
        .lines()
        .filter(|l| l.ends_with(" history_set"))
        .count()
}

/// The command after "Thaw it now: " in a backup's report (without its comment).
pub fn printed_fix(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Thaw it now: "))
        .expect("a printed fix");
    line.split("   #").next().unwrap().to_string()
}

/// Runs a printed fix as a person would, with this build as `quiesce`;
/// returns its exit code and stdout (stderr is shown when it fails).
pub fn run_printed_fix(fix: &str) -> (i32, String) {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_quiesce"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", fix])
        .env("PATH", path)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!("{fix}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// quiesce against the lab (its inventory, known_hosts and runs/), with
/// `env` added: a provider's credentials.
pub fn lab_run_with_env(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Run {
    let runs = lab.path("runs").display().to_string();
    let inventory = lab.inventory().display().to_string();
    let known = lab.known_hosts().display().to_string();
    let mut full = vec![
        "-i",
        &inventory,
        "--known-hosts",
        &known,
        "--no-agent",
        "--runs-dir",
        &runs,
    ];
    full.extend_from_slice(args);
    quiesce_with_env(&full, env)
}

pub fn spawn_backup(lab: &Lab) -> std::process::Child {
    spawn_backup_with(lab, &[])
}

/// Starts `quiesce backup` with extra arguments, its output piped.
pub fn spawn_backup_with(lab: &Lab, extra: &[&str]) -> std::process::Child {
    spawn_backup_with_env(lab, extra, &[])
}

/// `spawn_backup_with`, with `env` added (a provider's credentials).
pub fn spawn_backup_with_env(
    lab: &Lab,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Child {
    lab_command(lab)
        .args(["backup", "-p", lab.path("playbook.yml").to_str().unwrap()])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The quiesce binary with the lab's inventory, trust and runs, and no agent.
fn lab_command(lab: &Lab) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quiesce"));
    command
        .args([
            "-i",
            lab.inventory().to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts().to_str().unwrap(),
            "--no-agent",
            "--runs-dir",
            lab.path("runs").to_str().unwrap(),
        ])
        .env_remove("SSH_AUTH_SOCK");
    command
}

/// Starts any quiesce command against the lab, `env` added, its output
/// thrown away (a child the test kills).
pub fn spawn_quiet(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    lab_command(lab)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` (a backup, SIGKILL) and waits until `vm`'s armed thaw has
/// thawed what it froze, then checks the simulator's truth.
pub fn kill_and_wait_for_armed_thaw(lab: &Lab, vm: &str, mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    while {
        let status = lab.sh(vm, "/usr/sbin/pre-freeze-script status").1;
        status.contains("suspended") || status.contains("recorded")
    } {
        assert!(start.elapsed().as_secs() < 20, "the armed thaw never fired");
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.assert_truly_thawed(vm);
}

/// Waits until the run's journal has an entry matching `pred`.
pub fn wait_for_entry(lab: &Lab, pred: impl Fn(&Entry) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let journals = std::fs::read_dir(lab.path("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("journal.jsonl"));
        if journals
            .filter_map(|j| quiesce::backup::journal::Journal::read(&j).ok())
            .any(|entries| entries.iter().any(&pred))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the journal never showed the expected entry");
}

/// Sends `signal` to a child process (a backup run), as a person or
/// systemd would.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) only sends a signal to a process this test started.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as i32, signal)
    };
}

/// The DOM headless Chromium builds from `page` (its scripts run), with a
/// profile in `lab`'s directory.
pub fn chromium_dom(lab: &Lab, page: &Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            lab.path("chromium-profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (tests/lab/install-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs quiesce against `lab` and measures it: the run, and the peak
/// resident memory of the quiesce process in KiB (GNU time's %M).
pub fn quiesce_peak_rss(lab: &Lab, args: &[&str]) -> (Run, u64) {
    let measure = lab.path("peak-rss");
    let runs = lab.path("runs").display().to_string();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&measure)
        .arg(env!("CARGO_BIN_EXE_quiesce"))
        .args(["--runs-dir", runs.as_str(), "-i"])
        .arg(lab.inventory())
        .arg("--known-hosts")
        .arg(lab.known_hosts())
        .arg("--no-agent")
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("GNU time (tests/lab/install-deps.sh installs it)");
    let peak = std::fs::read_to_string(&measure)
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("GNU time's %M");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, peak)
}

/// Appends `settings` (`, key: value`) to `vm`'s line of the lab's inventory.
pub fn add_settings(lab: &Lab, vm: &str, settings: &str) {
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("  {vm}: {{")))
        .unwrap()
        .to_string();
    let new = format!(
        "{}{settings} }}",
        line.trim_end().trim_end_matches('}').trim_end()
    );
    std::fs::write(lab.inventory(), text.replace(&line, &new)).unwrap();
}
