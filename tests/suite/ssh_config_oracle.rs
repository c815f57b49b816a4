//! ssh_config as OpenSSH reads it, with OpenSSH's own `ssh -G` as the
//! oracle: for a configuration that exercises the precedence rules (first
//! obtained value wins, `Host` with `!`, `Match host` after a HostName,
//! `Match originalhost`/`user`, `Include` in and out of a matching block
//! (one after a `Host` block belongs to it, as OpenSSH reads it),
//! `ProxyJump none`, several UserKnownHostsFile), what quiesce resolves for
//! each host, the inventory's values given as `ssh -o` gives them, must be
//! what `ssh -G` prints, bastions included.

use crate::common::quiesce;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const CONFIG: &str = "\
Host bastion-a
  HostName 127.0.20.5
  User jumper
  Port 2202
Host db-* !db-dr
  ProxyJump bastion-a
  User dba
  IdentityFile /keys/db
Host db-dr
  ProxyJump none
  ConnectTimeout 7
Host db-dr db-a1
  ProxyJump ops@bastion-b:2201
  Port 2022
Match host 10.3.*
  Port 2222
  IdentityFile /keys/ten-three
Match originalhost app* user root
  ServerAliveInterval 9
Host *.example.net
  UserKnownHostsFile /kh/first /kh/second
  StrictHostKeyChecking accept-new
Host other
  Include INCLUDED_OTHER
Include INCLUDED_ALL
Match all
Include INCLUDED_ALL
Host *
  IdentityFile /keys/all
  User fallback
  ConnectTimeout 30
";

/// `ssh -G`'s view of one host: the keys quiesce reads.
fn ssh_g(config: &Path, alias: &str, options: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut command = std::process::Command::new("ssh");
    command.arg("-G").arg("-F").arg(config);
    for (key, value) in options {
        command.arg("-o").arg(format!("{key}={value}"));
    }
    let out = command.arg(alias).output().expect("ssh -G");
    assert!(
        out.status.success(),
        "ssh -G {alias}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match seen.get_mut(key) {
            // identityfile is listed once per file.
            Some(v) => {
                v.push(' ');
                v.push_str(value);
            }
            None => {
                seen.insert(key.to_string(), value.to_string());
            }
        }
    }
    seen
}

/// quiesce's view, in `ssh -G`'s terms.
fn quiesce_terms(h: &Value) -> BTreeMap<String, String> {
    let ssh = &h["ssh"];
    let files = |v: &Value| {
        v.as_array().map(|a| {
            a.iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let mut out = BTreeMap::new();
    out.insert(
        "hostname".into(),
        h["address"].as_str().unwrap().to_string(),
    );
    out.insert("port".into(), h["port"].to_string());
    out.insert("user".into(), h["user"].as_str().unwrap().to_string());
    let mut keys: Vec<String> = h["identity_file"]
        .as_str()
        .map(String::from)
        .into_iter()
        .collect();
    keys.extend(files(&ssh["identity_files"]));
    if !keys.is_empty() {
        out.insert("identityfile".into(), keys.join(" "));
    }
    if let Some(jump) = ssh["jump"].as_array() {
        out.insert(
            "proxyjump".into(),
            jump.iter()
                .map(|j| j["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    if let Some(kh) = files(&ssh["known_hosts"]) {
        out.insert("userknownhostsfile".into(), kh);
    }
    if ssh["accept_new"] == true {
        out.insert("stricthostkeychecking".into(), "accept-new".into());
    }
    if let Some(t) = ssh["connect_timeout_secs"].as_u64() {
        out.insert("connecttimeout".into(), t.to_string());
    }
    if let Some(t) = ssh["server_alive_interval_secs"].as_u64() {
        out.insert("serveraliveinterval".into(), t.to_string());
    }
    out
}

/// Keeps the keys quiesce reads, and drops OpenSSH's defaults for them.
fn comparable(mut g: BTreeMap<String, String>) -> BTreeMap<String, String> {
    const DEFAULT_KEYS: &str = "~/.ssh/id_rsa ~/.ssh/id_ecdsa ~/.ssh/id_ecdsa_sk ~/.ssh/id_ed25519 ~/.ssh/id_ed25519_sk ~/.ssh/id_xmss ~/.ssh/id_dsa";
    g.retain(|k, _| {
        matches!(
            k.as_str(),
            "hostname"
                | "port"
                | "user"
                | "identityfile"
                | "proxyjump"
                | "userknownhostsfile"
                | "stricthostkeychecking"
                | "connecttimeout"
                | "serveraliveinterval"
        )
    });
    let home = std::env::var("HOME").unwrap_or_default();
    for (key, default) in [
        ("identityfile", DEFAULT_KEYS.to_string()),
        (
            "userknownhostsfile",
            format!("{home}/.ssh/known_hosts {home}/.ssh/known_hosts2"),
        ),
        ("stricthostkeychecking", "ask".into()),
        ("connecttimeout", "none".into()),
        ("serveraliveinterval", "0".into()),
    ] {
        if g.get(key) == Some(&default) {
            g.remove(key);
        }
    }
    g
}

/// A host, its inventory settings as quiesce writes them, and the same as
/// `ssh -o` gives them.
type Row = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[test]
fn resolved_settings_are_what_ssh_dash_g_says() {
    let dir = tempfile::tempdir().unwrap();
    let included_other = dir.path().join("other.conf");
    let included_all = dir.path().join("all.conf");
    std::fs::write(&included_other, "User from-other-include\n").unwrap();
    std::fs::write(
        &included_all,
        "Host app2\n  HostName 10.3.0.2\nHost web*\n  User web-include\n",
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        CONFIG
            .replace("INCLUDED_OTHER", included_other.to_str().unwrap())
            .replace("INCLUDED_ALL", included_all.to_str().unwrap()),
    )
    .unwrap();
    // (host, inventory settings as quiesce writes them, as `ssh -o` gives them)
    let rows: &[Row] = &[
        ("db-a1", "{}", &[]),
        ("db-a2", "{ user: root }", &[("User", "root")]),
        (
            "db-dr",
            "{ address: 10.2.0.11 }",
            &[("HostName", "10.2.0.11")],
        ),
        (
            "app1",
            "{ address: 10.3.0.1, user: root }",
            &[("HostName", "10.3.0.1"), ("User", "root")],
        ),
        ("app2", "{}", &[]),
        (
            "app3",
            "{ port: 2200, identity_file: /keys/inventory }",
            &[("Port", "2200"), ("IdentityFile", "/keys/inventory")],
        ),
        ("web.example.net", "{}", &[]),
        ("other", "{}", &[]),
        ("bastion-a", "{}", &[]),
    ];
    let inventory = dir.path().join("inventory.yml");
    let mut text = String::from("hosts:\n");
    for (name, settings, _) in rows {
        text.push_str(&format!("  {name}: {settings}\n"));
    }
    std::fs::write(&inventory, text).unwrap();
    let run = quiesce(&[
        "-i",
        inventory.to_str().unwrap(),
        "--ssh-config",
        config.to_str().unwrap(),
        "hosts",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    for (name, _, options) in rows {
        let host = json
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == *name)
            .unwrap();
        let options: Vec<(&str, String)> =
            options.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let expected = comparable(ssh_g(&config, name, &options));
        assert_eq!(quiesce_terms(host), expected, "host {name}");
        // Each bastion resolves as `ssh -G BASTION` does.
        for hop in host["ssh"]["jump"].as_array().into_iter().flatten() {
            let hop_name = hop["name"].as_str().unwrap();
            let mut hop_options = Vec::new();
            if let Some(port) = hop["port"].as_u64().filter(|_| hop_name == "bastion-b") {
                hop_options.push(("Port", port.to_string()));
                hop_options.push(("User", hop["user"].as_str().unwrap().to_string()));
            }
            let g = ssh_g(&config, hop_name, &hop_options);
            assert_eq!(
                hop["address"].as_str().unwrap(),
                g["hostname"],
                "{name} via {hop_name}"
            );
            assert_eq!(hop["port"].to_string(), g["port"], "{name} via {hop_name}");
            assert_eq!(
                hop["user"].as_str().unwrap(),
                g["user"],
                "{name} via {hop_name}"
            );
        }
    }
}

#[test]
fn strict_host_key_checking_no_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "Host lab-*\n  StrictHostKeyChecking no\n").unwrap();
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(
        &inventory,
        "hosts:\n  lab-1: { address: 127.0.20.11 }\n  prod-1: { address: 10.0.0.1 }\n",
    )
    .unwrap();
    let run = quiesce(&[
        "-i",
        inventory.to_str().unwrap(),
        "--ssh-config",
        config.to_str().unwrap(),
        "hosts",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: {}:2:3: StrictHostKeyChecking no applies to lab-1: quiesce never trusts an unknown or changed host key without being asked by name\n  hint: use `StrictHostKeyChecking accept-new` (or quiesce's --accept-new=HOST) to record a new key, or remove the line for these hosts\n",
            config.display()
        )
    );
}
