//! The aws-ebs provider against moto (server mode) behind the lab's proxy
//! (`tests/lab/ebs-double`), which adds what moto lacks: snapshots that stay
//! `pending`, throttling, a late answer, refused credentials. The ground
//! truth is moto's own record of the snapshots and the simulator's events.

use crate::common::{Lab, Run};
use quiesce::backup::journal::Entry;
use std::io::{BufRead, Write};

/// The lab's EC2, one per test on its own address; ends when dropped.
pub(crate) struct Ec2 {
    child: std::process::Child,
    answers: std::io::BufReader<std::process::ChildStdout>,
    pub(crate) url: String,
    instances: Vec<String>,
}

/// The venv tests/lab/install-deps.sh puts moto in.
const MOTO_PYTHON: &str = "/opt/quiesce-moto/bin/python";

impl Ec2 {
    pub(crate) fn start(address: &str, names: &[&str]) -> Ec2 {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/ebs-double");
        let mut child = std::process::Command::new(MOTO_PYTHON)
            .arg(script)
            .arg(address)
            .args(names)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto (tests/lab/install-deps.sh installs it in /opt/quiesce-moto)");
        let mut answers = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        answers.read_line(&mut line).unwrap();
        let mut words = line.split_whitespace().map(String::from);
        let url = words.next().expect("the double's URL");
        Ec2 {
            child,
            answers,
            url,
            instances: words.collect(),
        }
    }

    pub(crate) fn tell(&mut self, line: &str) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        self.answers.read_line(&mut answer).unwrap();
        answer.trim_end().to_string()
    }

    /// (snapshot id, run, host) of every quiesce snapshot, from moto itself.
    fn snapshots(&mut self) -> Vec<(String, String, String)> {
        let answer = self.tell("snapshots");
        answer
            .strip_prefix("snapshots ")
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut f = s.split('@').map(String::from);
                (f.next().unwrap(), f.next().unwrap(), f.next().unwrap())
            })
            .collect()
    }

    pub(crate) fn calls(&mut self, action: &str) -> u32 {
        self.tell(&format!("calls {action}"))
            .strip_prefix("calls ")
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Ec2 {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn playbook(lab: &Lab, ec2: &Ec2, extra: &str) -> String {
    let path = lab.path("ebs.yml");
    std::fs::write(
        &path,
        format!(
            "name: ebs\nsnapshot:\n  provider: aws-ebs\n  aws: {{ region: us-east-1, endpoint_url: '{}', poll_interval: 1s, durable_timeout: 30s }}\n  timeout: 20s\n{extra}freeze_margin: 10s\n",
            ec2.url
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The lab's credentials and nothing of the machine's own AWS
/// configuration (no profile files, no instance metadata service).
pub(crate) const AWS_ENV: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "lab"),
    ("AWS_SECRET_ACCESS_KEY", "lab"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

pub(crate) fn with_aws(lab: &Lab, args: &[&str]) -> Run {
    crate::common::lab_run_with_env(lab, args, &AWS_ENV)
}

fn history_set(lab: &Lab) -> bool {
    lab.events("vm1").contains("history_set")
}

/// A set of every attached volume, tagged, the thaw at once and the backup
/// recorded only once every snapshot is `completed`; throttled creates
/// retried inside the freeze; `list` and `prune` through EC2 itself.
#[test]
fn ebs_snapshots_are_tagged_recorded_only_once_completed_and_pruned() {
    let lab = crate::common::deployed(26, &["vm1=iris:IRIS"]);
    let mut ec2 = Ec2::start("127.0.26.1", &["vm1"]);
    crate::common::add_settings(&lab, "vm1", ", vm: vm1");
    let playbook = playbook(&lab, &ec2, "  retention: { keep: 1 }\n");
    assert_eq!(ec2.tell("pending 4"), "ok");
    assert_eq!(ec2.tell("throttle 2"), "ok");

    let run = with_aws(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("vm1");
    // Two throttled, one made: retried inside the snapshot's time.
    assert_eq!(
        ec2.calls("CreateSnapshots"),
        4,
        "two throttled, then the DryRun and the create"
    );
    let (first, entries) = lab.journal();
    let made = ec2.snapshots();
    assert_eq!(made.len(), 2, "the root and the data volume: {made:?}");
    assert!(
        made.iter().all(|(_, r, h)| *r == first && h == "vm1"),
        "{made:?}"
    );
    // The thaw came before the snapshots completed; the history after.
    let thawed = entries
        .iter()
        .find_map(|e| match e {
            Entry::Thawed { at, .. } => Some(*at),
            _ => None,
        })
        .expect("a thaw");
    let durable = entries
        .iter()
        .find_map(|e| match e {
            Entry::Durable { at, ok: true, .. } => Some(*at),
            _ => None,
        })
        .unwrap_or_else(|| panic!("durable: {entries:?}"));
    assert!(
        durable >= thawed + 3000,
        "thawed {thawed}, durable {durable}"
    );
    let events = lab.events("vm1");
    let thaw_at = events.find("thawed").expect("thawed");
    let history_at = events.find("history_set").expect("history recorded");
    assert!(thaw_at < history_at, "{events}");
    assert!(run.stdout.contains("durable at"), "{run:?}");
    for (id, ..) in &made {
        assert!(run.stdout.contains(id.as_str()), "{run:?}");
        // Where the restore starts, as the simulated instance switched its
        // journal at this freeze.
        let restore = ec2.tell(&format!("tag {id} quiesce:restore"));
        assert!(
            restore.starts_with("tag IRIS=/iris/journal1/20261123.") && restore.contains('@'),
            "{restore}"
        );
    }

    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(ec2.tell("pending 0"), "ok");
    let run = with_aws(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    let (second, _) = lab.journal();
    let listed = with_aws(
        &lab,
        &["snapshots", "list", "-p", &playbook, "--format", "json"],
    );
    assert_eq!(listed.code, 0, "{listed:?}");
    let json: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let runs: Vec<&str> = json["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 2, "{json}");
    let prune = with_aws(&lab, &["snapshots", "prune", "-p", &playbook]);
    assert_eq!(prune.code, 0, "{prune:?}");
    let left = ec2.snapshots();
    assert_eq!(left.len(), 2, "{left:?}\n{prune:?}");
    assert!(left.iter().all(|(_, r, _)| *r == second), "{left:?}");
}

/// A set that ends in `error` is no backup: the host fails, nothing is
/// recorded. Credentials EC2 refuses leave the host out before any freeze.
#[test]
fn an_ebs_set_that_never_completes_is_no_backup_and_refused_credentials_freeze_nothing() {
    let lab = crate::common::deployed(27, &["vm1=iris:IRIS"]);
    let mut ec2 = Ec2::start("127.0.27.1", &["vm1"]);
    crate::common::add_settings(&lab, "vm1", &format!(", vm: {}", ec2.instances[0]));
    let playbook = playbook(&lab, &ec2, "");
    assert_eq!(ec2.tell("error"), "ok");
    let run = with_aws(&lab, &["backup", "-p", &playbook]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("ended in state error"), "{run:?}");
    assert!(run.stdout.contains("0 valid"), "{run:?}");
    lab.assert_truly_thawed("vm1");
    assert!(!history_set(&lab), "{}", lab.events("vm1"));

    assert_eq!(ec2.tell("deny"), "ok");
    let before = lab.events("vm1").matches("freeze_requested").count();
    let run = with_aws(&lab, &["backup", "-p", &playbook]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("AWS refused the credentials")
            || run.stderr.contains("AWS refused the credentials"),
        "{run:?}"
    );
    assert_eq!(
        lab.events("vm1").matches("freeze_requested").count(),
        before,
        "nothing frozen"
    );
}

/// EC2 answering CreateSnapshots after the snapshot timeout (and making the
/// set then): the freeze is undone, nothing recorded, and the late set is
/// found by its tags and deleted by the end of the run.
#[test]
fn an_ebs_set_made_after_its_timeout_is_deleted() {
    let lab = crate::common::deployed(28, &["vm1=iris:IRIS"]);
    let mut ec2 = Ec2::start("127.0.28.1", &["vm1"]);
    crate::common::add_settings(&lab, "vm1", ", vm: vm1");
    let playbook = playbook(&lab, &ec2, "");
    let text = std::fs::read_to_string(&playbook).unwrap();
    std::fs::write(&playbook, text.replace("timeout: 20s", "timeout: 5s")).unwrap();
    assert_eq!(ec2.tell("delay 8"), "ok");
    let run = with_aws(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("CreateSnapshots of i-"), "{run:?}");
    lab.assert_truly_thawed("vm1");
    assert!(!history_set(&lab), "{}", lab.events("vm1"));
    assert_eq!(ec2.snapshots(), Vec::<(String, String, String)>::new());
}

/// The controller killed (SIGKILL) after EC2 made the set and before the
/// thaw: the VM's armed thaw thaws it, `recover` names the set the crashed
/// run left, `snapshots list` marks it an orphan and `prune` deletes it —
/// checked in moto's own record.
#[test]
fn an_ebs_set_made_before_the_controller_died_is_an_orphan_that_prune_deletes() {
    let lab = crate::common::deployed(191, &["vm1=iris:IRIS"]);
    let mut ec2 = Ec2::start("127.0.191.1", &["vm1"]);
    crate::common::add_settings(&lab, "vm1", ", vm: vm1");
    let playbook = playbook(&lab, &ec2, "");
    assert_eq!(ec2.tell("hold 30"), "ok");
    std::fs::copy(&playbook, lab.path("playbook.yml")).unwrap();
    let child = crate::common::spawn_backup_with_env(&lab, &[], &AWS_ENV);
    let start = std::time::Instant::now();
    while ec2.snapshots().is_empty() {
        assert!(start.elapsed().as_secs() < 20, "no set was made");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    crate::common::kill_and_wait_for_armed_thaw(&lab, "vm1", child);
    assert!(!history_set(&lab), "{}", lab.events("vm1"));
    let (run_id, _) = lab.journal();
    let recover = with_aws(&lab, &["recover", &run_id]);
    assert_eq!(recover.code, 0, "{recover:?}");
    let listed = with_aws(
        &lab,
        &["snapshots", "list", "-p", &playbook, "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(json["snapshots"][0]["run_id"], run_id.as_str(), "{json}");
    assert_eq!(json["snapshots"][0]["orphan"], true, "{json}");
    let prune = with_aws(&lab, &["snapshots", "prune", "-p", &playbook]);
    assert_eq!(prune.code, 0, "{prune:?}");
    assert_eq!(ec2.snapshots(), Vec::<(String, String, String)>::new());
}
