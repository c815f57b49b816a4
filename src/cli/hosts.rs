//! `hosts`: the inventory's hosts as resolved (host > groups > defaults).
//! VMWARE_FREEZE_TIMEOUT is the inventory's `freeze_timeout`, deployed in the
//! hooks for freezes VMware Tools (or a backup product) starts; a quiesce
//! backup's freezes last the playbook's timeout instead (`plan` shows it).

use crate::cli::args::HostsFormat;
use crate::inventory::Host;
use crate::output::duration;

pub fn hosts_report(hosts: &[Host], format: HostsFormat) -> String {
    match format {
        HostsFormat::Json => serde_json::to_string_pretty(hosts).unwrap_or_default() + "\n",
        HostsFormat::Table => {
            let rows: Vec<Vec<String>> = hosts
                .iter()
                .map(|h| {
                    vec![
                        h.name.clone(),
                        format!("{}:{}", h.address, h.port),
                        if h.r#become {
                            format!("{} (sudo)", h.user)
                        } else {
                            h.user.clone()
                        },
                        h.platform.as_str().to_string(),
                        h.vm.clone(),
                        if h.instances.is_empty() {
                            "(running)".into()
                        } else {
                            h.instances.join(",")
                        },
                        h.hook_dir.clone(),
                        h.log_dir.clone(),
                        duration::format(h.freeze_timeout),
                        h.mirror.clone().unwrap_or_else(|| "-".into()),
                        via(h),
                    ]
                })
                .collect();
            let header = [
                "HOST",
                "ADDRESS",
                "USER",
                "PLATFORM",
                "VM",
                "INSTANCES",
                "HOOK_DIR",
                "LOG_DIR",
                "VMWARE_FREEZE_TIMEOUT",
                "MIRROR",
                "VIA",
            ];
            crate::output::table::render(&header, &rows)
        }
    }
}

/// The bastions, `b1,b2`, or `-` for a direct connection.
fn via(host: &Host) -> String {
    if host.ssh.jump.is_empty() {
        "-".into()
    } else {
        host.ssh
            .jump
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Per host, each connection setting, its value and where it came from.
pub fn origin_report(hosts: &[Host]) -> String {
    let mut out = String::new();
    for h in hosts {
        let from = |key: &str| {
            h.ssh
                .origin
                .get(key)
                .cloned()
                .unwrap_or_else(|| "default".into())
        };
        let paths = |files: &[std::path::PathBuf]| {
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut rows: Vec<Vec<String>> = vec![
            vec!["address".into(), h.address.clone(), from("address")],
            vec!["port".into(), h.port.to_string(), from("port")],
            vec!["user".into(), h.user.clone(), from("user")],
        ];
        if let Some(file) = &h.identity_file {
            rows.push(vec![
                "identity_file".into(),
                file.display().to_string(),
                from("identity_file"),
            ]);
        }
        if !h.ssh.identity_files.is_empty() {
            rows.push(vec![
                "IdentityFile".into(),
                paths(&h.ssh.identity_files),
                from("identity_files"),
            ]);
        }
        if h.ssh.identities_only {
            rows.push(vec![
                "IdentitiesOnly".into(),
                "yes".into(),
                from("identities_only"),
            ]);
        }
        if !h.ssh.jump.is_empty() {
            let hops: Vec<String> = h
                .ssh
                .jump
                .iter()
                .map(|j| format!("{}@{}:{}", j.user, j.address, j.port))
                .collect();
            rows.push(vec!["jump".into(), hops.join(" → "), from("jump")]);
        }
        for (key, label, files) in [
            ("known_hosts", "UserKnownHostsFile", &h.ssh.known_hosts),
            (
                "global_known_hosts",
                "GlobalKnownHostsFile",
                &h.ssh.global_known_hosts,
            ),
        ] {
            if let Some(files) = files {
                rows.push(vec![label.into(), paths(files), from(key)]);
            }
        }
        if h.ssh.accept_new {
            rows.push(vec![
                "StrictHostKeyChecking".into(),
                "accept-new".into(),
                from("strict_host_key_checking"),
            ]);
        }
        for (key, label, value) in [
            (
                "connect_timeout",
                "ConnectTimeout",
                h.ssh.connect_timeout_secs,
            ),
            (
                "server_alive_interval",
                "ServerAliveInterval",
                h.ssh.server_alive_interval_secs,
            ),
        ] {
            if let Some(secs) = value {
                rows.push(vec![label.into(), format!("{secs}s"), from(key)]);
            }
        }
        if let Some(c) = &h.ssh.connection {
            rows.push(vec![
                "ansible_connection".into(),
                c.clone(),
                "inventory".into(),
            ]);
        }
        out.push_str(&h.name);
        out.push('\n');
        for line in crate::output::table::render(&["  SETTING", "VALUE", "FROM"], &rows)
            .lines()
            .skip(1)
        {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
