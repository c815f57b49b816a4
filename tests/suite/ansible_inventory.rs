//! Ansible inventories read as they are, with Ansible's own
//! `ansible-inventory --list` as the oracle: for the real-world samples and
//! our own INI and YAML files, the hosts, the groups (children's hosts
//! included) and the connection values quiesce resolves must be what
//! Ansible resolves. What quiesce cannot evaluate is refused at its place.

use crate::common::quiesce;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// ansible-core from PyPI, installed by tests/lab/install-deps.sh.
fn ansible_inventory() -> PathBuf {
    let path = std::env::var_os("QUIESCE_ANSIBLE_INVENTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/quiesce-oracles/bin/ansible-inventory"));
    assert!(
        path.exists(),
        "{} is missing: tests/lab/install-deps.sh installs ansible-core from PyPI",
        path.display()
    );
    path
}

fn inventories() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let samples =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/real-world/ansible");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible");
    for dir in [samples, ours] {
        let mut here: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        here.sort();
        files.extend(here);
    }
    assert!(files.len() >= 6, "{files:?}");
    files
}

/// Ansible's booleans, as its `boolean()` filter reads them at use.
fn ansible_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "true" | "on" | "1" | "y" | "t"
        ),
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Reach {
    address: String,
    port: u16,
    user: Option<String>,
    r#become: bool,
    key: Option<String>,
}

/// What Ansible says: hosts → connection values, groups → every host under them.
fn ansible_view(file: &Path) -> (BTreeMap<String, Reach>, BTreeMap<String, BTreeSet<String>>) {
    let out = std::process::Command::new(ansible_inventory())
        .args(["-i", file.to_str().unwrap(), "--list"])
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .output()
        .expect("run ansible-inventory");
    assert!(
        out.status.success(),
        "ansible-inventory -i {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut hosts = BTreeMap::new();
    for (name, vars) in list["_meta"]["hostvars"].as_object().unwrap() {
        let text = |k: &str| {
            vars.get(k).map(|v| {
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string())
            })
        };
        hosts.insert(
            name.clone(),
            Reach {
                address: text("ansible_host").unwrap_or_else(|| name.clone()),
                port: text("ansible_port").map_or(22, |p| p.parse().unwrap()),
                user: text("ansible_user"),
                r#become: vars.get("ansible_become").is_some_and(ansible_bool),
                key: text("ansible_ssh_private_key_file"),
            },
        );
    }
    // A host without vars is in no hostvars entry: take it from the groups.
    let groups_json = list.as_object().unwrap();
    for (group, body) in groups_json {
        for h in body["hosts"].as_array().into_iter().flatten() {
            let h = h.as_str().unwrap().to_string();
            hosts.entry(h.clone()).or_insert(Reach {
                address: h,
                port: 22,
                user: None,
                r#become: false,
                key: None,
            });
        }
        let _ = group;
    }
    fn under(list: &serde_json::Map<String, Value>, group: &str, out: &mut BTreeSet<String>) {
        let Some(body) = list.get(group) else { return };
        for h in body["hosts"].as_array().into_iter().flatten() {
            out.insert(h.as_str().unwrap().to_string());
        }
        for c in body["children"].as_array().into_iter().flatten() {
            under(list, c.as_str().unwrap(), out);
        }
    }
    let mut groups = BTreeMap::new();
    for group in groups_json.keys().filter(|g| *g != "_meta" && *g != "all") {
        let mut members = BTreeSet::new();
        under(groups_json, group, &mut members);
        if !members.is_empty() {
            groups.insert(group.clone(), members);
        }
    }
    (hosts, groups)
}

/// What quiesce resolves, in the same terms (`user` only where Ansible sets
/// one: quiesce's default login is root, Ansible's the local user).
fn quiesce_view(
    file: &Path,
    ansible_users: &BTreeMap<String, Reach>,
) -> (
    BTreeMap<String, Reach>,
    BTreeMap<String, BTreeSet<String>>,
    Value,
) {
    let run = quiesce(&[
        "-i",
        file.to_str().unwrap(),
        "--ssh-config",
        "none",
        "hosts",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}: {run:?}", file.display());
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let mut hosts = BTreeMap::new();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in json.as_array().unwrap() {
        let name = h["name"].as_str().unwrap().to_string();
        let has_user = ansible_users.get(&name).is_some_and(|r| r.user.is_some());
        hosts.insert(
            name.clone(),
            Reach {
                address: h["address"].as_str().unwrap().to_string(),
                port: h["port"].as_u64().unwrap() as u16,
                user: has_user.then(|| h["user"].as_str().unwrap().to_string()),
                r#become: h["become"].as_bool().unwrap(),
                key: h["identity_file"].as_str().map(String::from),
            },
        );
        for g in h["groups"].as_array().unwrap() {
            groups
                .entry(g.as_str().unwrap().to_string())
                .or_default()
                .insert(name.clone());
        }
    }
    (hosts, groups, json)
}

#[test]
fn hosts_groups_and_connection_values_are_what_ansible_resolves() {
    for file in inventories() {
        let (a_hosts, a_groups) = ansible_view(&file);
        let (q_hosts, q_groups, _) = quiesce_view(&file, &a_hosts);
        assert_eq!(
            q_hosts,
            a_hosts,
            "{}: hosts and connection values",
            file.display()
        );
        assert_eq!(q_groups, a_groups, "{}: groups", file.display());
    }
}

/// AWX hands a job its inventory as a script printing the JSON of
/// `ansible-inventory --list`: that JSON, as a file and from an executable
/// script, resolves to what Ansible resolves from the original.
#[test]
fn the_json_of_ansible_inventory_list_and_a_script_printing_it_read_the_same() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (i, file) in inventories().into_iter().enumerate() {
        let (a_hosts, a_groups) = ansible_view(&file);
        let out = std::process::Command::new(ansible_inventory())
            .args(["-i", file.to_str().unwrap(), "--list"])
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .output()
            .unwrap();
        assert!(out.status.success());
        let json = dir.path().join(format!("list{i}.json"));
        std::fs::write(&json, &out.stdout).unwrap();
        let script = dir.path().join(format!("awx{i}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = --list ] || exit 9\ncat '{}'\n",
                json.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        for input in [&json, &script] {
            let (q_hosts, q_groups, _) = quiesce_view(input, &a_hosts);
            assert_eq!(
                q_hosts,
                a_hosts,
                "{} as {}",
                file.display(),
                input.display()
            );
            assert_eq!(
                q_groups,
                a_groups,
                "{} as {}",
                file.display(),
                input.display()
            );
        }
    }
    // A script others may write is never run; a failing one says so.
    let script = dir.path().join("shared.sh");
    std::fs::write(&script, "#!/bin/sh\necho '{}'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = quiesce(&["-i", script.to_str().unwrap(), "hosts"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("is writable by others or owned by another user (uid 0, mode 0777): quiesce does not run it"),
        "{run:?}"
    );
    std::fs::write(&script, "#!/bin/sh\necho 'no such cloud' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = quiesce(&["-i", script.to_str().unwrap(), "hosts"]);
    assert_eq!(
        run.stderr,
        format!(
            "error: {}:1:1: the dynamic inventory script's --list failed (exit status: 3): no such cloud\n  hint: run it by hand (`SCRIPT --list`) to see why\n",
            script.display()
        )
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ansible")
        .join(name)
}

fn host<'a>(json: &'a Value, name: &str) -> &'a Value {
    json.as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn quiesce_vars_bastions_and_mirrors_come_from_the_ansible_file() {
    let (a, _) = ansible_view(&fixture("site.ini"));
    let (_, _, json) = quiesce_view(&fixture("site.ini"), &a);
    let dr = host(&json, "db-dr.example.net");
    assert_eq!(dr["mirror"], "PRODMIR");
    assert_eq!(dr["instances"], serde_json::json!(["IRIS", "IRISB"]));
    let app03 = host(&json, "app03");
    assert_eq!(app03["ssh"]["jump"][0]["name"], "bastion1");
    assert_eq!(app03["ssh"]["jump"][0]["user"], "ops");
    let (a, _) = ansible_view(&fixture("fleet.yml"));
    let (_, _, json) = quiesce_view(&fixture("fleet.yml"), &a);
    assert_eq!(host(&json, "cache-bb")["platform"], "cache");
    assert_eq!(
        host(&json, "cache-bb")["ssh"]["jump"][0]["address"],
        "bastion-b.example.com"
    );
    assert_eq!(host(&json, "iris-a03.example.com")["freeze_timeout"], 300.0);
    // Where a value came from is the Ansible file's line and column.
    let origin = &host(&json, "iris-a02.example.com")["ssh"]["origin"];
    assert!(
        origin["port"].as_str().unwrap().ends_with("fleet.yml:8:29"),
        "{origin}"
    );
}

fn refused(name: &str, text: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let run = quiesce(&[
        "-i",
        file.to_str().unwrap(),
        "--ssh-config",
        "none",
        "hosts",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("error: {}:{expected}\n", file.display()),
        "{run:?}"
    );
}

#[test]
fn what_quiesce_cannot_evaluate_is_refused_at_its_place() {
    refused(
        "hosts.ini",
        "[db]\ndb1 ansible_host=\"{{ lookup('env','DB1') }}\"\n",
        "2:18: `ansible_host` is a Jinja template ({{ lookup('env','DB1') }}); quiesce needs its value and does not evaluate templates\n  hint: write the value itself for this host or group (other variables may stay templates: quiesce ignores them)",
    );
}

#[test]
fn unrunnable_scripts_plugins_typos_and_bad_ranges_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("inventory.py");
    std::fs::write(&script, "#!/usr/bin/env python3\nprint('{}')\n").unwrap();
    let run = quiesce(&["-i", script.to_str().unwrap(), "hosts"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: {0}:1:1: this is a dynamic inventory script (it starts with #!), but it is not executable\n  hint: make it executable (chmod u+x {0}), or give its output: ansible-inventory -i {0} --list > hosts.json\n",
            script.display()
        )
    );
    let plugin = dir.path().join("aws_ec2.yml");
    std::fs::write(
        &plugin,
        "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n",
    )
    .unwrap();
    let run = quiesce(&["-i", plugin.to_str().unwrap(), "hosts"]);
    assert_eq!(
        run.stderr,
        format!(
            "error: {0}:1:1: this is an inventory plugin's configuration; quiesce does not run plugins\n  hint: write the plugin's result to a static file and use that: ansible-inventory -i {0} --list --yaml > hosts.yml\n",
            plugin.display()
        )
    );
    refused(
        "hosts.yml",
        "all:\n  hosts:\n    db1:\n      quiesce_mirorr: M1\n",
        "4:23: `quiesce_mirorr` is not a quiesce variable\n  hint: did you mean `quiesce_mirror`? quiesce reads quiesce_platform, quiesce_instances, quiesce_vm, quiesce_hook_dir, quiesce_log_dir, quiesce_freeze_timeout, quiesce_iris_container, quiesce_container_engine, quiesce_iris_user, quiesce_mirror, quiesce_qos_timeout, quiesce_jump, quiesce_become, quiesce_identity_file, quiesce_refuse_vmware_primary, quiesce_framework, quiesce_container_log_dir",
    );
    refused(
        "hosts.ini",
        "[db]\ndb[01:100].example.net\n",
        "2:1: `db[01:100].example.net`: begin and end of a zero-padded range must have the same width\n  hint: write host ranges as Ansible does: db[01:20].example.net, node[a:f], web[1:9:2]",
    );
    refused(
        "hosts.ini",
        "[db]\ndb1 quiesce_mirror=M quiesce_qos_timeout=8s\ndb2 quiesce_mirror=M quiesce_qos_timeout=20s\n",
        "3:42: host `db2` gives mirror `M` quiesce_qos_timeout 20s, another member 8s (line 2)\n  hint: a mirror has one QoS timeout: set quiesce_qos_timeout once, on a group holding all its members",
    );
}
