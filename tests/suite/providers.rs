//! Snapshot providers against real peers: btrfs on a loop-mounted file
//! system inside a lab VM (btrfs-progs), driven over the VM's SSH
//! connection. Ground truth is the file system (`btrfs subvolume show`) and
//! the simulated instance, not what quiesce printed.

use crate::common::Lab;

/// A VM whose instance IRIS lives on a btrfs file system: databases in the
/// subvolume `db`, the mgr directory (and WIJ) at the top level, journals
/// in the subvolume `journal`; its CPF says so.
pub(crate) struct Btrfs<'a> {
    lab: &'a Lab,
    pub(crate) mount: String,
}

impl<'a> Btrfs<'a> {
    pub(crate) fn new(lab: &'a Lab, vm: &str) -> Btrfs<'a> {
        let base = lab.path(&format!("vms/{vm}"));
        let mount = base.join("bt").display().to_string();
        let image = base.join("bt.img").display().to_string();
        let script = format!(
            "set -e; truncate -s 200M {image}; mkfs.btrfs -q -f {image}; mkdir -p {m}; mount -o loop {image} {m}
             btrfs -q subvolume create {m}/db; btrfs -q subvolume create {m}/journal
             mkdir -p {m}/iris/mgr {m}/db/user
             printf '[Databases]\\nIRISSYS={m}/iris/mgr/\\nUSER={m}/db/user/\\n[Journal]\\nCurrentDirectory={m}/journal/\\nAlternateDirectory={m}/journal/\\n[config]\\nwijdir=\\n' > {m}/iris/iris.cpf
             echo data > {m}/db/user/IRIS.DAT",
            m = mount
        );
        let (code, out) = lab.sh(vm, &script);
        assert_eq!(code, 0, "btrfs setup: {out}");
        assert!(
            lab.lab("set", &[vm, "IRIS", &format!("dir={mount}/iris")])
                .status
                .success()
        );
        Btrfs { lab, mount }
    }

    pub(crate) fn playbook(&self, extra: &str) -> String {
        let path = self.lab.path("btrfs.yml");
        std::fs::write(
            &path,
            format!(
                "name: btrfs\nsnapshot:\n  provider: btrfs\n  btrfs: {{ dir: {}/.snapshots }}\n  timeout: 20s\n{extra}freeze_margin: 10s\n",
                self.mount
            ),
        )
        .unwrap();
        path.display().to_string()
    }

    /// (name, read-only) of each snapshot on the file system.
    pub(crate) fn snapshots(&self, vm: &str) -> Vec<(String, bool)> {
        let (_, out) = self.lab.sh(
            vm,
            &format!(
                "for s in {m}/.snapshots/*; do [ -d \"$s\" ] || continue; printf '%s %s\\n' \"${{s##*/}}\" \"$(btrfs property get -ts \"$s\" ro)\"; done",
                m = self.mount
            ),
        );
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, ro)| (n.to_string(), ro == "ro=true"))
            .collect()
    }
}

impl Drop for Btrfs<'_> {
    fn drop(&mut self) {
        self.lab.sh(
            "vm1",
            &format!(
                "for s in {m}/.snapshots/*; do btrfs -q subvolume delete \"$s\" 2>/dev/null; done; umount {m}",
                m = self.mount
            ),
        );
    }
}

#[test]
fn btrfs_snapshots_hold_the_databases_wij_and_journals_and_are_pruned_by_retention() {
    let lab = Lab::start(96, &["vm1=iris:IRIS"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let fs = Btrfs::new(&lab, "vm1");
    let playbook = fs.playbook("  retention: { keep: 1 }\n");

    // plan reads the instance's directories (the CPF's order, journals
    // last) and says nothing is in the way.
    let plan = lab.run(&["plan", "-p", &playbook]);
    assert_eq!(plan.code, 0, "{plan:?}");

    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("vm1");
    let (first, _) = lab.journal();
    let taken = fs.snapshots("vm1");
    let names: Vec<&str> = taken.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("quiesce@{first}@vm1@0@bt"),
            format!("quiesce@{first}@vm1@1@db"),
            format!("quiesce@{first}@vm1@2@journal"),
        ],
        "{run:?}"
    );
    assert!(taken.iter().all(|(_, ro)| *ro), "{taken:?}");
    // The database file is in the snapshot of its subvolume.
    let (_, data) = lab.sh(
        "vm1",
        &format!(
            "cat {}/.snapshots/quiesce@{first}@vm1@1@db/user/IRIS.DAT",
            fs.mount
        ),
    );
    assert_eq!(data, "data\n");
    // The run's results name what was made.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.path("runs").join(&first).join("results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["hosts"][0]["outcome"], "valid", "{results}");
    assert_eq!(
        results["hosts"][0]["snapshot_ids"].as_array().map(Vec::len),
        Some(3),
        "{results}"
    );

    // A second run; then an orphan (a snapshot no run vouches for).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    let (second, _) = lab.journal();
    assert_ne!(first, second);
    lab.sh(
        "vm1",
        &format!(
            "btrfs -q subvolume snapshot -r {m}/db {m}/.snapshots/quiesce@20200101T000000Z-0000@vm1@0@db",
            m = fs.mount
        ),
    );
    let list = lab.run(&["snapshots", "list", "-p", &playbook, "--format", "json"]);
    assert_eq!(list.code, 0, "{list:?}");
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let sets: Vec<(String, String, bool, usize)> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["run_id"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
                s["orphan"].as_bool().unwrap(),
                s["names"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        sets,
        [
            (second.clone(), "valid".to_string(), false, 3),
            (first.clone(), "valid".to_string(), false, 3),
            (
                "20200101T000000Z-0000".to_string(),
                "unknown".to_string(),
                true,
                1
            ),
        ]
    );

    // --check changes nothing; prune keeps the newest valid run only.
    let check = lab.run(&["snapshots", "prune", "-p", &playbook, "--check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert_eq!(fs.snapshots("vm1").len(), 7);
    let prune = lab.run(&["snapshots", "prune", "-p", &playbook]);
    assert_eq!(prune.code, 0, "{prune:?}");
    let left: Vec<String> = fs.snapshots("vm1").into_iter().map(|(n, _)| n).collect();
    assert!(
        left.len() == 3 && left.iter().all(|n| n.contains(&second)),
        "{left:?}\n{prune:?}"
    );
}

#[test]
fn a_host_the_btrfs_provider_cannot_snapshot_is_left_out_before_any_freeze() {
    let lab = Lab::start(97, &["vm1=iris:IRIS"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let fs = Btrfs::new(&lab, "vm1");
    // The journal moved off btrfs (the VM's own /var/log is not).
    lab.sh(
        "vm1",
        &format!(
            "mkdir -p /var/log/journal-elsewhere; sed -i 's|^CurrentDirectory=.*|CurrentDirectory=/var/log/journal-elsewhere/|' {}/iris/iris.cpf",
            fs.mount
        ),
    );
    let playbook = fs.playbook("");
    let run = lab.run(&["backup", "-p", &playbook]);
    assert_ne!(run.code, 0, "{run:?}");
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains("the btrfs provider cannot snapshot it: instance IRIS's journal directory /var/log/journal-elsewhere is on"),
        "{run:?}"
    );
    // Nothing was frozen, nothing was made.
    assert!(
        !lab.events("vm1").contains("freeze_requested"),
        "{}",
        lab.events("vm1")
    );
    assert!(fs.snapshots("vm1").is_empty());
}

/// The controller killed while btrfs had already made a snapshot: the armed
/// thaw thaws the VM, `recover` finds nothing frozen, and the snapshot no
/// run stands behind is an orphan that `snapshots list` names and `prune`
/// removes.
#[test]
fn a_snapshot_made_before_the_controller_died_is_an_orphan_that_prune_removes() {
    let lab = Lab::start(98, &["vm1=iris:IRIS"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let fs = Btrfs::new(&lab, "vm1");
    let playbook = fs.playbook("");
    std::fs::copy(&playbook, lab.path("playbook.yml")).unwrap();
    // btrfs makes the first snapshot, then hangs (a slow device).
    let (code, out) = lab.sh(
        "vm1",
        "printf '#!/bin/sh\\n/usr/bin/btrfs \"$@\"; rc=$?\\n[ \"$1 $2\" = \"subvolume snapshot\" ] && sleep 60\\nexit $rc\\n' > /usr/sbin/btrfs; chmod 0755 /usr/sbin/btrfs",
    );
    assert_eq!(code, 0, "{out}");
    let child = crate::common::spawn_backup(&lab);
    crate::common::wait_for_entry(&lab, |e| {
        matches!(e, quiesce::backup::journal::Entry::SnapshotStarted { .. })
    });
    let start = std::time::Instant::now();
    while fs.snapshots("vm1").is_empty() {
        assert!(start.elapsed().as_secs() < 10, "no snapshot was made");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    crate::common::kill_and_wait_for_armed_thaw(&lab, "vm1", child);
    lab.sh("vm1", "rm -f /usr/sbin/btrfs");
    let (run_id, _) = lab.journal();
    assert_eq!(lab.run(&["recover", &run_id]).code, 0);

    let list = lab.run(&["snapshots", "list", "-p", &playbook, "--format", "json"]);
    assert_eq!(list.code, 0, "{list:?}");
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let set = &listed["snapshots"][0];
    assert_eq!(set["run_id"], run_id.as_str(), "{listed}");
    assert_eq!(set["orphan"], true, "{listed}");
    let prune = lab.run(&["snapshots", "prune", "-p", &playbook]);
    assert_eq!(prune.code, 0, "{prune:?}");
    assert!(prune.stdout.contains("removed: orphan"), "{prune:?}");
    assert!(fs.snapshots("vm1").is_empty());
}

/// The lab's vCenter: govmomi's simulator built from Debian's packages
/// (tests/lab/vcsim), one per test on its own address. Dropped: it ends
/// (its standard input closes).
struct Vcsim {
    child: std::process::Child,
    answers: Option<std::io::BufReader<std::process::ChildStdout>>,
    /// `https://127.0.N.1:PORT/sdk`, without the user.
    url: String,
    sha256: String,
}

impl Vcsim {
    fn start(address: &str, extra: &[&str]) -> Vcsim {
        use std::io::BufRead;
        let binary = vcsim_binary();
        let mut child = std::process::Command::new(&binary)
            .args(["-listen", &format!("{address}:0"), "-vms", "2"])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start vcsim");
        let mut line = String::new();
        let mut answers = std::io::BufReader::new(child.stdout.take().unwrap());
        answers.read_line(&mut line).unwrap();
        let mut fields = line.split_whitespace();
        let url = fields
            .next()
            .expect("vcsim's URL")
            .replacen("user:pass@", "", 1);
        let sha256 = fields.next().expect("vcsim's certificate").to_string();
        Vcsim {
            child,
            answers: Some(answers),
            url,
            sha256,
        }
    }

    /// One command on the stand-in's standard input; its one-line answer.
    fn tell(&mut self, line: &str) -> String {
        use std::io::{BufRead, Write};
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        self.answers
            .as_mut()
            .unwrap()
            .read_line(&mut answer)
            .unwrap();
        answer.trim_end().to_string()
    }

    /// The snapshot names of `vm`, from vcsim's own object model.
    fn snapshots(&mut self, vm: &str) -> Vec<String> {
        self.tell(&format!("snapshots {vm}"))
            .strip_prefix("snapshots ")
            .unwrap_or("")
            .split(',')
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the vcsim stand-in once for every test process (go's build cache
/// makes a second build quick; a lock keeps two from writing at once).
fn vcsim_binary() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join("quiesce-vcsim-lab");
    let status = std::process::Command::new("flock")
        .arg(std::env::temp_dir().join("quiesce-vcsim-lab.lock"))
        .arg(dir.join("tests/lab/vcsim/build.sh"))
        .arg(&out)
        .status()
        .expect("flock and go (tests/lab/install-deps.sh installs golang-go and govmomi)");
    assert!(status.success(), "building the vcsim stand-in failed");
    out
}

fn vsphere_playbook(lab: &Lab, vcsim: &Vcsim, extra: &str) -> String {
    let path = lab.path("vsphere.yml");
    std::fs::write(
        &path,
        format!(
            "name: vsphere\nsnapshot:\n  provider: vsphere\n  vsphere: {{ url: '{}', thumbprint: '{}' }}\n  timeout: 20s\n{extra}freeze_margin: 10s\n",
            vcsim.url, vcsim.sha256
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn with_vcenter_login(lab: &Lab, args: &[&str]) -> crate::common::Run {
    crate::common::lab_run_with_env(
        lab,
        args,
        &[
            ("QUIESCE_VSPHERE_USERNAME", "user"),
            ("QUIESCE_VSPHERE_PASSWORD", "pass"),
        ],
    )
}

#[test]
fn vsphere_snapshots_through_vcsim_are_made_listed_and_pruned() {
    let lab = Lab::start(23, &["vm1=iris:IRIS"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    crate::common::add_settings(&lab, "vm1", ", vm: DC0_H0_VM0");
    let mut vcsim = Vcsim::start("127.0.23.1", &[]);
    let playbook = vsphere_playbook(&lab, &vcsim, "  retention: { keep: 1 }\n");

    let run = with_vcenter_login(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("vm1");
    let (first, _) = lab.journal();
    let listed = with_vcenter_login(
        &lab,
        &["snapshots", "list", "-p", &playbook, "--format", "json"],
    );
    assert_eq!(listed.code, 0, "{listed:?}");
    let json: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(json["snapshots"][0]["run_id"], first.as_str(), "{json}");
    assert_eq!(json["snapshots"][0]["verdict"], "valid", "{json}");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = with_vcenter_login(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    let (second, _) = lab.journal();
    let prune = with_vcenter_login(&lab, &["snapshots", "prune", "-p", &playbook]);
    assert_eq!(prune.code, 0, "{prune:?}");
    let listed = with_vcenter_login(
        &lab,
        &["snapshots", "list", "-p", &playbook, "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let runs: Vec<&str> = json["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs, [second.as_str()], "{json}\n{prune:?}");
    // vcsim's own tree agrees.
    assert_eq!(vcsim.snapshots("DC0_H0_VM0"), [format!("quiesce-{second}")]);
    // Its description says where a journal restore of it starts: the file
    // the simulated instance switched to at this freeze, and the marker.
    let description = vcsim.tell("description DC0_H0_VM0");
    assert!(
        description.contains(&format!("quiesce run {second} of host vm1"))
            && description.contains("restore from IRIS: journal /iris/journal1/20261123.")
            && description.contains(", marker at offset "),
        "{description}"
    );

    // A wrong thumbprint is never trusted: the host is left out, nothing frozen.
    let bad = vsphere_playbook(
        &lab,
        &Vcsim {
            child: std::process::Command::new("true").spawn().unwrap(),
            answers: None,
            url: vcsim.url.clone(),
            sha256: "0".repeat(64),
        },
        "",
    );
    let run = with_vcenter_login(&lab, &["backup", "-p", &bad]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("not the pinned") || run.stderr.contains("not the pinned"),
        "{run:?}"
    );
}

/// vCenter slow to answer CreateSnapshot_Task (vcsim delays it past the
/// snapshot timeout, then makes the snapshot anyway): the freeze is undone,
/// no backup is recorded, and the snapshot that appears late is removed by
/// the end of the run — vcsim's own tree holds none.
#[test]
fn a_vsphere_snapshot_made_after_its_timeout_is_removed() {
    let lab = Lab::start(24, &["vm1=iris:IRIS"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    crate::common::add_settings(&lab, "vm1", ", vm: DC0_H0_VM0");
    let mut vcsim = Vcsim::start("127.0.24.1", &["-delay", "CreateSnapshot_Task=8000"]);
    // A snapshot timeout of 5 s, under the 8 s vcsim takes to answer.
    vsphere_playbook(&lab, &vcsim, "");
    let playbook_path = lab.path("vsphere.yml");
    let text = std::fs::read_to_string(&playbook_path).unwrap();
    std::fs::write(&playbook_path, text.replace("timeout: 20s", "timeout: 5s")).unwrap();
    let run = with_vcenter_login(&lab, &["backup", "-p", playbook_path.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("vSphere did not answer CreateSnapshot_Task within 5s"),
        "{run:?}"
    );
    lab.assert_truly_thawed("vm1");
    assert!(
        !instance_history(&lab),
        "no backup may be recorded: {:?}",
        lab.events("vm1")
    );
    assert_eq!(vcsim.snapshots("DC0_H0_VM0"), Vec::<String>::new());
}

/// vCenter's faults and what it keeps: a CreateSnapshot_Task whose task
/// ends in error (a full datastore) fails the backup with nothing
/// recorded; sessions vCenter expires when idle (here after 1 s, so every
/// run loses the one preflight opened) are logged in again; and `audit -p`
/// / `status -p` report a chain deeper than 3, a snapshot older than 72 h
/// and consolidationNeeded, from vcsim's own object model.
#[test]
fn vsphere_task_errors_lost_sessions_and_snapshot_health() {
    let lab = Lab::start(29, &["vm1=iris:IRIS"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    crate::common::add_settings(&lab, "vm1", ", vm: DC0_H0_VM0");
    let mut vcsim = Vcsim::start("127.0.29.1", &["-session-idle", "1s"]);
    let playbook = vsphere_playbook(&lab, &vcsim, "");
    // A password vCenter refuses: every host left out, nothing frozen.
    let refused = crate::common::lab_run_with_env(
        &lab,
        &["backup", "-p", &playbook],
        &[
            ("QUIESCE_VSPHERE_USERNAME", "user"),
            ("QUIESCE_VSPHERE_PASSWORD", "wrong"),
        ],
    );
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stdout.contains("skipped"), "{refused:?}");
    assert!(
        !lab.events("vm1").contains("freeze_requested"),
        "{}",
        lab.events("vm1")
    );
    assert_eq!(vcsim.tell("fail CreateSnapshot_Task"), "ok");
    let run = with_vcenter_login(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("vSphere: "), "{run:?}");
    lab.assert_truly_thawed("vm1");
    assert!(!instance_history(&lab), "{}", lab.events("vm1"));
    assert_eq!(vcsim.snapshots("DC0_H0_VM0"), Vec::<String>::new());

    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let run = with_vcenter_login(&lab, &["backup", "-p", &playbook]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    assert_eq!(vcsim.snapshots("DC0_H0_VM0").len(), 4);
    let audit = with_vcenter_login(&lab, &["audit", "-p", &playbook]);
    assert_eq!(audit.code, 1, "{audit:?}");
    assert!(
        audit
            .stdout
            .contains("finding: vm1: the snapshot chain of VM DC0_H0_VM0 is 4 deep (over 3)"),
        "{audit:?}"
    );
    assert_eq!(vcsim.tell("age DC0_H0_VM0 80"), "ok");
    assert_eq!(vcsim.tell("consolidate DC0_H0_VM0"), "ok");
    let status = with_vcenter_login(&lab, &["status", "-p", &playbook]);
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stdout.contains("h old (over 72h)"), "{status:?}");
    assert!(
        status.stdout.contains("needs disk consolidation"),
        "{status:?}"
    );
}

/// `snapshots prune` measures what a removal's consolidation stunned the VM
/// from vmware.log (read through the ESXi host, as for the create's stun),
/// says it beside the removal and keeps it in the stun history that
/// guards a primary's next snapshot and removal.
#[test]
fn a_removal_stun_is_measured_from_vmware_log_and_kept() {
    let lab = Lab::start(30, &["--esxi", "esx1", "vm1"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    crate::common::add_settings(&lab, "vm1", ", vm: DC0_H0_VM0");
    let vcsim = Vcsim::start("127.0.30.1", &[]);
    let playbook = vsphere_playbook(&lab, &vcsim, "  retention: { keep: 1 }\n");
    for _ in 0..2 {
        let run = with_vcenter_login(&lab, &["backup", "-p", &playbook]);
        assert_eq!(run.code, 0, "{run:?}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // ESXi logs the consolidation of the removal; vcsim has none, so the
    // datastore's vmware.log gets the lines ESXi writes, stamped just after
    // the removal starts.
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(20);
    let stamp = at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let log = lab.path("vms/vm1/vmware.log");
    let mut text = std::fs::read_to_string(&log).unwrap_or_default();
    text.push_str(&format!(
        "{stamp} In(05) vmx - SnapshotVMX ConsolidateStart: consolidating 1 links\n{stamp} In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 1234567 us\n{stamp} In(05) vmx - SnapshotVMX ConsolidateEnd: done\n"
    ));
    std::fs::write(&log, text).unwrap();
    let prune = with_vcenter_login(&lab, &["snapshots", "prune", "-p", &playbook]);
    assert_eq!(prune.code, 0, "{prune:?}");
    assert!(
        prune
            .stdout
            .contains("(consolidation stun 1.235s, from vmware.log)"),
        "{prune:?}"
    );
    let history =
        std::fs::read_to_string(quiesce::backup::stun_history::path(&lab.path("runs"))).unwrap();
    assert!(history.contains("1234567"), "{history}");
}

fn instance_history(lab: &Lab) -> bool {
    lab.events("vm1").contains("history_set")
}

/// `snapshot.export` runs after every thaw, on the controller, for each
/// valid backup, with what the snapshot made in QUIESCE_SNAPSHOT_IDS; a
/// failed export is a failed step (a finding, exit 4) while every backup
/// stays valid.
#[test]
fn the_export_step_runs_after_the_thaw_with_the_snapshot_ids() {
    let lab = crate::common::deployed(25, &["vm1=iris:IRIS", "vm2=iris:IRIS"]);
    let text = std::fs::read_to_string(lab.path("playbook.yml")).unwrap();
    let out = lab.path("exported");
    std::fs::create_dir_all(&out).unwrap();
    let with_export = |export: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with("snapshot: {"))
            .unwrap()
            .to_string();
        let new = line.replace(
            " {host}',",
            &format!(" {{host}}; echo quiesce-snapshot-id snap-{{host}}', export: '{export}',"),
        );
        std::fs::write(lab.path("playbook.yml"), text.replace(&line, &new)).unwrap();
    };
    with_export(&format!(
        "printf %s \"$QUIESCE_SNAPSHOT_IDS\" > {}/{{host}}",
        out.display()
    ));
    let run = crate::common::backup(&lab, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    for vm in ["vm1", "vm2"] {
        assert_eq!(
            std::fs::read_to_string(out.join(vm)).unwrap(),
            format!("snap-{vm}")
        );
        assert!(
            run.stdout.contains(&format!("{vm}  export done at ")),
            "{run:?}"
        );
        lab.assert_truly_thawed(vm);
    }
    let (_, entries) = lab.journal();
    let exports: Vec<(String, bool)> = entries
        .iter()
        .filter_map(|e| match e {
            quiesce::backup::journal::Entry::ExportFinished { host, ok, .. } => {
                Some((host.clone(), *ok))
            }
            _ => None,
        })
        .collect();
    assert_eq!(exports.len(), 2, "{entries:?}");
    assert!(exports.iter().all(|(_, ok)| *ok));

    with_export("exit 3");
    let run = crate::common::backup(&lab, &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout
            .contains("vm1  export failed: export command failed (exit status: 3)"),
        "{run:?}"
    );
    assert!(run.stdout.contains("2 valid"), "{run:?}");
}
