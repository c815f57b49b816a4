//! The Ansible collection (contrib/ansible_collections/quiesce/fleet), for
//! real: `ansible-test sanity` on it, `ansible-runner` (the job events AWX
//! stores) running a playbook of each module against the sshd lab with the
//! simulator's state as ground truth, and `ansible-builder create` writing
//! the execution environment's build context.

use crate::common::{Lab, deployed};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn oracle(tool: &str) -> PathBuf {
    let path = PathBuf::from("/opt/quiesce-oracles/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: tests/lab/install-deps.sh installs it",
        path.display()
    );
    path
}

fn collection() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ansible_collections/quiesce/fleet")
}

#[test]
fn ansible_test_sanity_passes_on_the_collection() {
    let out = Command::new(oracle("ansible-test"))
        .args([
            "sanity",
            "--python",
            "3.11",
            "--requirements",
            "--color",
            "no",
        ])
        .current_dir(collection())
        .env(
            "PATH",
            format!(
                "/opt/quiesce-oracles/bin:{}",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("ansible-test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Running sanity test \"validate-modules\""),
        "{text}"
    );
}

/// An ansible-runner job: the playbook's tasks against the lab, with the
/// collection from the repository (its command, and its directory).
fn job_command(lab: &Lab, name: &str, tasks: &str, check: bool) -> (Command, PathBuf) {
    let data = lab.path(&format!("runner-{name}"));
    std::fs::create_dir_all(data.join("project")).unwrap();
    std::fs::create_dir_all(data.join("inventory")).unwrap();
    std::fs::write(
        data.join("inventory/hosts"),
        "localhost ansible_connection=local ansible_python_interpreter=/opt/quiesce-oracles/bin/python\n",
    )
    .unwrap();
    std::fs::write(
        data.join("project/site.yml"),
        format!(
            "- hosts: localhost\n  gather_facts: false\n  vars:\n    q: &q\n      binary: {bin}\n      inventory: {inv}\n      known_hosts: {kh}\n      runs_dir: {runs}\n      ssh_config: none\n  tasks:\n{tasks}",
            bin = env!("CARGO_BIN_EXE_quiesce"),
            inv = lab.inventory().display(),
            kh = lab.known_hosts().display(),
            runs = lab.path("runs").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(oracle("ansible-runner"));
    cmd.args([
        "run",
        data.to_str().unwrap(),
        "-p",
        "site.yml",
        "--ident",
        name,
    ])
    .env(
        "ANSIBLE_COLLECTIONS_PATH",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib"),
    )
    .env(
        "PATH",
        format!(
            "/opt/quiesce-oracles/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env_remove("SSH_AUTH_SOCK")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    if check {
        cmd.args(["--cmdline", "--check --diff"]);
    }
    (cmd, data)
}

/// The job events ansible-runner wrote (the stream AWX stores), in order.
fn job_events(data: &Path, name: &str) -> Vec<Value> {
    let events = data.join("artifacts").join(name).join("job_events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&events)
        .unwrap_or_else(|e| panic!("{}: {e}", events.display()))
        .map(|e| e.unwrap().path())
        .collect();
    // `N-UUID.json`: in the order they happened.
    files.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    });
    files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

fn job(lab: &Lab, name: &str, tasks: &str, check: bool) -> Vec<Value> {
    let (mut cmd, data) = job_command(lab, name, tasks, check);
    cmd.status().expect("ansible-runner");
    job_events(&data, name)
}

/// The result of each task, by name: (event, res).
fn results(events: &[Value]) -> Vec<(String, String, Value)> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e["event"].as_str(),
                Some("runner_on_ok" | "runner_on_failed")
            )
        })
        .map(|e| {
            (
                e["event_data"]["task"].as_str().unwrap_or("").to_string(),
                e["event"].as_str().unwrap().to_string(),
                e["event_data"]["res"].clone(),
            )
        })
        .collect()
}

fn task(results: &[(String, String, Value)], name: &str) -> (String, Value) {
    results
        .iter()
        .find(|(n, ..)| n == name)
        .map(|(_, e, r)| (e.clone(), r.clone()))
        .unwrap_or_else(|| panic!("no result for task {name}: {results:#?}"))
}

#[test]
fn each_module_runs_under_ansible_runner_with_its_results_in_the_job_events() {
    let lab = Lab::start(20, &["vm1=iris:IRIS", "vm2=iris:IRIS"]);
    let hooks_present = |lab: &Lab| {
        lab.sh("vm1", "ls /usr/sbin/pre-freeze-script 2>/dev/null")
            .1
    };

    // Check mode: deploy says what it would write, with the diff; the VMs
    // are untouched (ground truth); backup plans and freezes nothing.
    let events = job(
        &lab,
        "check",
        "    - name: deploy\n      quiesce.fleet.quiesce_deploy: *q\n    - name: backup\n      quiesce.fleet.quiesce_backup:\n        <<: *q\n        playbook: PLAYBOOK\n".replace("PLAYBOOK", lab.path("playbook.yml").to_str().unwrap()).as_str(),
        true,
    );
    let r = results(&events);
    let (event, deploy) = task(&r, "deploy");
    assert_eq!(event, "runner_on_ok", "{deploy}");
    assert_eq!(deploy["changed"], true, "{deploy}");
    assert_eq!(deploy["counts"]["would change"], 4, "{deploy}");
    assert!(
        deploy["diff"][0]["prepared"]
            .as_str()
            .unwrap_or("")
            .contains("+#!/bin/sh"),
        "{deploy}"
    );
    assert_eq!(hooks_present(&lab), "");
    let (event, plan) = task(&r, "backup");
    assert_eq!(event, "runner_on_ok", "{plan}");
    assert_eq!(plan["changed"], false);
    assert!(plan["plan"].is_object(), "{plan}");
    assert!(!lab.events("vm1").contains("freeze_requested"));

    // For real: deploy (changed), deploy again (not), audit, backup, status,
    // recover of a run with nothing left frozen.
    let playbook = lab.path("playbook.yml").display().to_string();
    let events = job(
        &lab,
        "real",
        &format!(
            "    - name: deploy\n      quiesce.fleet.quiesce_deploy: *q\n    - name: deploy again\n      quiesce.fleet.quiesce_deploy: *q\n    - name: audit\n      quiesce.fleet.quiesce_audit:\n        <<: *q\n        fail_on_findings: true\n    - name: backup\n      quiesce.fleet.quiesce_backup:\n        <<: *q\n        playbook: {playbook}\n      register: b\n    - name: status\n      quiesce.fleet.quiesce_status: *q\n    - name: recover\n      quiesce.fleet.quiesce_recover:\n        <<: *q\n        run: \"{{{{ b.run_id }}}}\"\n"
        ),
        false,
    );
    let r = results(&events);
    let ok = |name: &str| {
        let (event, res) = task(&r, name);
        assert_eq!(event, "runner_on_ok", "{name}: {res}");
        res
    };
    assert_eq!(ok("deploy")["changed"], true);
    assert_eq!(ok("deploy again")["changed"], false);
    assert_eq!(hooks_present(&lab), "/usr/sbin/pre-freeze-script\n");
    assert_eq!(ok("audit")["compliant"], true);
    let backup = ok("backup");
    assert_eq!(backup["changed"], true);
    let outcomes: Vec<&str> = backup["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["valid", "valid"], "{backup}");
    lab.assert_truly_thawed("vm1");
    lab.assert_truly_thawed("vm2");
    let status = ok("status");
    assert_eq!(
        status["instances"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    let recover = ok("recover");
    assert_eq!(recover["changed"], false, "{recover}");

    // LEFT FROZEN: a thaw that keeps failing. The task fails apart from any
    // other failure, with the recover command; recover then thaws it.
    assert!(
        lab.lab("fault", &["vm1", "IRIS", "thaw=fail"])
            .status
            .success()
    );
    let events = job(
        &lab,
        "frozen",
        &format!(
            "    - name: backup\n      quiesce.fleet.quiesce_backup:\n        <<: *q\n        playbook: {playbook}\n"
        ),
        false,
    );
    let r = results(&events);
    let (event, failed) = task(&r, "backup");
    assert_eq!(event, "runner_on_failed", "{failed}");
    assert_eq!(failed["left_frozen"], true, "{failed}");
    assert_eq!(
        failed["left_frozen_hosts"],
        serde_json::json!(["vm1"]),
        "{failed}"
    );
    let run_id = failed["run_id"].as_str().unwrap().to_string();
    assert!(
        failed["msg"].as_str().unwrap().starts_with(
            "LEFT FROZEN: vm1 still frozen after quiesce backup; thaw now: quiesce recover"
        ),
        "{failed}"
    );
    assert_eq!(
        failed["recover_command"],
        format!("quiesce recover {run_id}")
    );
    assert!(lab.is_frozen("vm1", "IRIS"));
    assert!(lab.lab("clear-faults", &["vm1", "IRIS"]).status.success());
    let events = job(
        &lab,
        "recover",
        &format!(
            "    - name: recover\n      quiesce.fleet.quiesce_recover:\n        <<: *q\n        run: {run_id}\n"
        ),
        false,
    );
    let r = results(&events);
    let (event, recovered) = task(&r, "recover");
    assert_eq!(event, "runner_on_ok", "{recovered}");
    assert_eq!(recovered["changed"], true, "{recovered}");
    lab.assert_truly_thawed("vm1");
}

/// Two jobs on the same hosts at once (AWX's "concurrent jobs" on): the
/// second is refused by quiesce's host lock, and nothing of it is frozen.
#[test]
fn two_concurrent_jobs_on_the_same_hosts_are_refused_by_the_host_lock() {
    let lab = deployed(21, &["vm1=iris:IRIS"]);
    lab.lab("snapshot-fault", &["vm1", "hang 6"]);
    let playbook = lab.path("playbook.yml").display().to_string();
    let tasks = format!(
        "    - name: backup\n      quiesce.fleet.quiesce_backup:\n        <<: *q\n        playbook: {playbook}\n"
    );
    let (mut first, first_data) = job_command(&lab, "first", &tasks, false);
    let mut first = first.spawn().expect("ansible-runner");
    // The first job holds the host once its freeze is journaled.
    crate::common::wait_for_entry(&lab, |e| {
        matches!(e, quiesce::backup::journal::Entry::SnapshotStarted { .. })
    });
    let second = job(&lab, "second", &tasks, false);
    let r = results(&second);
    let (event, refused) = task(&r, "backup");
    assert_eq!(event, "runner_on_failed", "{refused}");
    assert!(
        refused["msg"]
            .as_str()
            .unwrap()
            .contains("refusing to start"),
        "{refused}"
    );
    assert!(refused.get("left_frozen").is_none(), "{refused}");
    first.wait().unwrap();
    let r = results(&job_events(&first_data, "first"));
    let (event, done) = task(&r, "backup");
    assert_eq!(event, "runner_on_ok", "{done}");
    lab.assert_truly_thawed("vm1");
}

#[test]
fn ansible_builder_writes_the_execution_environments_build_context() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(oracle("ansible-galaxy"))
        .args(["collection", "build", "--output-path"])
        .arg(dir.path())
        .arg(collection())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tarball = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("the collection tarball");
    let ee = dir.path().join("ee");
    std::fs::create_dir_all(&ee).unwrap();
    std::fs::copy(
        collection().join("execution-environment.yml"),
        ee.join("execution-environment.yml"),
    )
    .unwrap();
    std::fs::copy(&tarball, ee.join("quiesce-fleet.tar.gz")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_quiesce"), ee.join("quiesce")).unwrap();
    let context = dir.path().join("context");
    let out = Command::new(oracle("ansible-builder"))
        .args(["create", "-f", "execution-environment.yml", "-c"])
        .arg(&context)
        .current_dir(&ee)
        .env(
            "PATH",
            format!(
                "/opt/quiesce-oracles/bin:{}",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Containerfile for podman, Dockerfile for docker (the default without podman).
    let containerfile = std::fs::read_to_string(context.join("Containerfile"))
        .or_else(|_| std::fs::read_to_string(context.join("Dockerfile")))
        .unwrap();
    assert!(
        containerfile.contains("COPY _build/bin/quiesce /usr/local/bin/quiesce"),
        "{containerfile}"
    );
    assert!(
        containerfile.contains("/build/quiesce-fleet.tar.gz"),
        "{containerfile}"
    );
    assert!(context.join("_build/bin/quiesce").is_file());
    assert!(
        context
            .join("_build/collections/quiesce-fleet.tar.gz")
            .is_file()
    );
}
