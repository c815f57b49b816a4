//! Bad inventories: each is rejected before any host is contacted, with
//! file:line:column, what is wrong and a hint, and exit code 2.

use crate::common::quiesce;

fn check(name: &str, text: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let run = quiesce(&["-i", file.to_str().unwrap(), "hosts"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!("error: {}:{expected}\n", file.display()),
        "{run:?}"
    );
}

#[test]
fn unknown_key() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1, adress: x }\n",
        "2:29: hosts.db1: unknown field `adress`, expected one of `address`, `vm`, `port`, `user`, `identity_file`, `become`, `platform`, `framework`, `instances`, `hook_dir`, `log_dir`, `freeze_timeout`, `iris_container`, `container_log_dir`, `container_engine`, `iris_user`, `refuse_vmware_primary`, `esxi`, `vm_dir`, `jump`\n  hint: did you mean `address`? see docs/inventory.md for every key and its type",
    );
}

#[test]
fn duplicate_host() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1 }\n  db2: { address: 10.0.0.2 }\n  db1: { address: 10.0.0.3 }\n",
        "4:3: duplicate key `db1`: hosts.db1 is already defined at line 2\n  hint: each host, group, mirror and setting may appear only once; merge the two entries",
    );
}

#[test]
fn unknown_group_member() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1 }\ngroups:\n  app: { hosts: [db1, app9] }\n",
        "4:23: group `app` names unknown host `app9`\n  hint: known hosts: db1",
    );
}

#[test]
fn unknown_mirror_member() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1 }\nmirrors:\n  M1:\n    members:\n      - db1\n      - db2\n",
        "7:9: mirror `M1` names unknown host `db2`\n  hint: known hosts: db1",
    );
}

#[test]
fn host_in_two_mirrors() {
    check(
        "inv.yml",
        "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\nmirrors:\n  M1: { members: [a, b] }\n  M2: { members: [b] }\n",
        "6:19: host `b` is already a member of mirror `M1`\n  hint: a VM belongs to at most one mirror",
    );
}

#[test]
fn bad_port() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1, port: 70000 }\n",
        "2:35: port 70000 is out of range\n  hint: an SSH port is a number from 1 to 65535",
    );
    check(
        "inv.yml",
        "defaults:\n  port: ssh\nhosts:\n  db1: { address: 10.0.0.1 }\n",
        "2:9: defaults.port: invalid type: string \"ssh\", expected i64\n  hint: see docs/inventory.md for every key and its type",
    );
}

#[test]
fn bad_address() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: \"10.0.0.1; reboot\" }\n",
        "2:19: address `10.0.0.1; reboot` is not an IP address or DNS name\n  hint: write e.g. 10.1.0.11, fe80::1 or db-a1.example.com",
    );
    check(
        "inv.yml",
        "hosts:\n  db_1: { port: 22 }\n",
        "2:3: host `db_1` has no address, and its name is not one\n  hint: add `address: IP-OR-DNS-NAME` to the host (or a HostName for it in ssh_config)",
    );
}

#[test]
fn instance_that_is_not_a_plain_identifier() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1, instances: [IRIS, \"X$(id)\"] }\n",
        "2:47: instance name `X$(id)` is not a plain identifier\n  hint: instance names are letters, digits, `_` and `-`, starting with a letter (as `iris qlist` shows them)",
    );
}

#[test]
fn duration_that_does_not_parse() {
    check(
        "inv.yml",
        "hosts:\n  a: { address: 10.0.0.1 }\nmirrors:\n  M1: { members: [a], qos_timeout: 8 seconds }\n",
        "4:36: qos_timeout: `8 seconds` needs a unit after 8 (ms, s, m, h or d)\n  hint: write a duration such as 8s, 500ms, 10m or 1h30m",
    );
    check(
        "inv.yml",
        "defaults: { freeze_timeout: 30m }\nhosts:\n  a: { address: 10.0.0.1 }\n",
        "1:29: freeze_timeout 30m is out of range\n  hint: ExternalFreezeTimeOut must be from 1s to 20m (Caché/IRIS clamps larger values to 1200 s)",
    );
}

#[test]
fn yaml_syntax_error() {
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1\n",
        "3:1: YAML syntax error: while parsing a flow mapping, did not find expected ',' or '}'\n  hint: check indentation, brackets and quotes around this point",
    );
}

#[test]
fn limit_that_matches_nothing() {
    let run = quiesce(&["-i", "inventory/example.yml", "--limit", "web*", "hosts"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: --limit \"web*\" matches no host, group or mirror of the inventory\n  hint: use names from `quiesce hosts` or a glob such as 'db-*'; known: db-a1, db-a2, db-dr, app1, app, db, PRODMIR\n"
    );
}

#[test]
fn hosts_shows_resolved_settings() {
    let run = quiesce(&["-i", "inventory/example.yml", "hosts"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "HOST   ADDRESS       USER           PLATFORM  VM          INSTANCES  HOOK_DIR   LOG_DIR   VMWARE_FREEZE_TIMEOUT  MIRROR   VIA
db-a1  10.1.0.11:22  root           iris      PROD-DB-A1  (running)  /usr/sbin  /var/log  10m                    PRODMIR  -
db-a2  10.1.0.12:22  root           iris      PROD-DB-A2  (running)  /usr/sbin  /var/log  10m                    PRODMIR  -
db-dr  10.2.0.11:22  root           iris      DR-DB-1     (running)  /usr/sbin  /var/log  5m                     PRODMIR  bastion-dr.example.net
app1   10.1.0.21:22  backup (sudo)  cache     app1        CACHE      /usr/sbin  /var/log  10m                    -        -
"
    );
}

#[test]
fn inventory_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inv.yml");
    std::fs::write(
        &file,
        b"hosts:\n  db1: { address: 10.0.0.1, vm: \"caf\xe9\" }\n",
    )
    .unwrap();
    let run = quiesce(&["-i", file.to_str().unwrap(), "hosts"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: {}:2:37: the inventory is not UTF-8 text\n  hint: save it as UTF-8\n",
            file.display()
        )
    );
}

#[test]
fn inventory_that_does_not_exist() {
    let run = quiesce(&["-i", "/nonexistent/inv.yml", "hosts"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: there is no inventory at /nonexistent/inv.yml\n  hint: check the path; see `quiesce --help` for how the inventory is named\n"
    );
}

#[test]
fn duplicate_host_through_a_yaml_alias() {
    check(
        "inv.yml",
        "hosts:\n  &x db1: { address: 10.0.0.1 }\n  *x : { address: 10.0.0.2 }\n",
        "3:3: duplicate key `db1`: hosts.db1 is already defined at line 2\n  hint: each host, group, mirror and setting may appear only once; merge the two entries",
    );
}

/// Hooks their framework would never run (or would run wrongly) are refused
/// at load, where the directory is written.
#[test]
fn a_hook_dir_the_framework_never_runs() {
    check(
        "inv.yml",
        "defaults: { hook_dir: /opt/hooks }\nhosts:\n  db1: { address: 10.0.0.1 }\n",
        "1:23: hook_dir `/opt/hooks`: VMware Tools runs its hooks from /usr/sbin only, so hooks there would never run for a quiesced snapshot\n  hint: remove hook_dir (the default is /usr/sbin), or set framework: none when only quiesce runs these hooks (framework: qemu-ga for qemu-guest-agent)",
    );
    check(
        "inv.yml",
        "hosts:\n  db1: { address: 10.0.0.1, hook_dir: /etc/vmware-tools/backupScripts.d }\n",
        "2:39: hook_dir `/etc/vmware-tools/backupScripts.d`: VMware Tools runs every file there with `freeze` (and `thaw`), so both of quiesce's hooks would be called for each and the second would refuse: every quiesced snapshot would fail\n  hint: remove hook_dir (VMware Tools runs /usr/sbin/pre-freeze-script and post-thaw-script), or set framework: none when only quiesce runs these hooks",
    );
    check(
        "inv.yml",
        "hosts:\n  kvm1: { address: 10.0.0.1, framework: qemu-ga, hook_dir: /usr/sbin }\n",
        "2:60: hook_dir `/usr/sbin`: qemu-guest-agent's fsfreeze-hook runs the hooks of /etc/qemu/fsfreeze-hook.d (/etc/qemu-ga/fsfreeze-hook.d on RHEL) only\n  hint: remove hook_dir (the default is /etc/qemu/fsfreeze-hook.d), or set framework: none when only quiesce runs these hooks",
    );
    check(
        "inv.yml",
        "hosts:\n  kvm1: { address: 10.0.0.1, framework: kvm }\n",
        "2:41: hosts.kvm1.framework: unknown variant `kvm`, expected one of `vmware`, `qemu-ga`, `none`\n  hint: see docs/inventory.md for every key and its type",
    );
}
