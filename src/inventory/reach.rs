//! How a host is reached beyond its address, port and user: bastions
//! (ProxyJump), key files, known_hosts files and time limits, from the
//! inventory and the user's ssh_config (the inventory wins, as `ssh -o`
//! does), and where each resolved value came from.

use crate::inventory::Host;
use crate::output::error::{Error, Pos};
use crate::remote::ssh_config::{Preset, Resolved, SshConfig, Strict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings beyond address, port and user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SshReach {
    /// The bastions, in the order the connection goes through them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jump: Vec<JumpHost>,
    /// Key files from ssh_config, tried after the inventory's `identity_file`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_files: Vec<PathBuf>,
    /// Only the key files, never ssh-agent's other keys (`IdentitiesOnly`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identities_only: bool,
    /// `UserKnownHostsFile`: read, the first written (else `--known-hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<Vec<PathBuf>>,
    /// `GlobalKnownHostsFile` (else `--global-known-hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking accept-new` for this host in the user's ssh_config.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_new: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_alive_interval_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_alive_count_max: Option<u32>,
    /// An Ansible `ansible_connection` that is not SSH: quiesce cannot reach the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Where each value came from: `FILE:LINE[:COLUMN]`, or `default`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origin: BTreeMap<String, String>,
}

/// One bastion: a host the connection is forwarded through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JumpHost {
    /// As written in `jump` or `ProxyJump` (its host part).
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_files: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<Vec<PathBuf>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_new: bool,
}

impl JumpHost {
    /// `name (address:port)`, as hosts are named in messages.
    pub fn target(&self) -> String {
        format!("bastion {} ({}:{})", self.name, self.address, self.port)
    }
}

/// A `[user@]host[:port]` hop (or `ssh://[user@]host[:port]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl JumpSpec {
    pub fn parse(text: &str) -> Result<JumpSpec, String> {
        let text = text.trim();
        let text = text.strip_prefix("ssh://").unwrap_or(text);
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: `[` without `]`"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
                _ => (rest.to_string(), None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{text}`: port `{p}` is not a TCP port"))?,
            ),
        };
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        };
        if !plain(&host) {
            return Err(format!("`{text}`: `{host}` is not a host name or address"));
        }
        if let Some(u) = &user
            && !super::is_user_name(u)
        {
            return Err(format!("`{text}`: `{u}` is not a login name"));
        }
        Ok(JumpSpec { user, host, port })
    }

    /// Splits `b1,b2` (an empty list for `none`).
    pub fn parse_list(text: &str) -> Result<Vec<JumpSpec>, String> {
        if text.trim().eq_ignore_ascii_case("none") || text.trim().is_empty() {
            return Ok(Vec::new());
        }
        text.split(',').map(JumpSpec::parse).collect()
    }
}

/// What the inventory set for a host (each with where it stands), before
/// ssh_config and the defaults fill the rest.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// The name ssh_config's `Host` lines are matched against.
    pub alias: String,
    pub address: Option<(String, String)>,
    pub port: Option<(u16, String)>,
    pub user: Option<(String, String)>,
    pub identity_file: Option<(PathBuf, String)>,
    /// `jump:` as written (`none` is an empty list).
    pub jump: Option<(Vec<JumpSpec>, String)>,
    /// Where the alias stands when it is not the host's name (`ansible_host`).
    pub alias_at: Option<String>,
    /// Where the host's entry stands (for errors about it).
    pub host_pos: Pos,
}

/// The most bastions one connection goes through (ProxyJump chains that
/// name each other end here, as a loop).
const MAX_HOPS: usize = 8;

/// Fills `host` from what the inventory gave and from `config`: address,
/// port, user, key files, bastions, known_hosts files, time limits.
pub fn apply(
    host: &mut Host,
    given: &Given,
    config: &SshConfig,
    inventory: &Path,
) -> Result<(), Error> {
    let preset = Preset {
        hostname: given.address.as_ref().map(|a| a.0.clone()),
        user: given.user.as_ref().map(|u| u.0.clone()),
        port: given.port.as_ref().map(|p| p.0),
    };
    let resolved = config.resolve(&given.alias, &preset)?;
    let mut origin = BTreeMap::new();
    let mut note = |key: &str, at: String| {
        origin.insert(key.to_string(), at);
    };
    let default = || "default".to_string();
    match (&given.address, &resolved.hostname) {
        (Some((a, at)), _) => {
            host.address = a.clone();
            note("address", at.clone());
        }
        (None, Some(h)) => {
            host.address = h.value.clone();
            note("address", h.at.to_string());
        }
        (None, None) => {
            host.address = given.alias.clone();
            note(
                "address",
                given
                    .alias_at
                    .clone()
                    .unwrap_or_else(|| "the host's name".into()),
            );
        }
    }
    if !super::is_address(&host.address) {
        let message = if given.address.is_none() && resolved.hostname.is_none() {
            format!(
                "host `{}` has no address, and its name is not one",
                host.name
            )
        } else {
            format!(
                "host `{}`: address `{}` ({}) is not an IP address or DNS name",
                host.name, host.address, origin["address"]
            )
        };
        return Err(Error::input(
            inventory,
            given.host_pos,
            message,
            "add `address: IP-OR-DNS-NAME` to the host (or a HostName for it in ssh_config)",
        ));
    }
    match (&given.port, &resolved.port) {
        (Some((p, at)), _) => {
            host.port = *p;
            note("port", at.clone());
        }
        (None, Some(p)) => {
            host.port = p.value;
            note("port", p.at.to_string());
        }
        (None, None) => note("port", default()),
    }
    match (&given.user, &resolved.user) {
        (Some((u, at)), _) => {
            host.user = u.clone();
            note("user", at.clone());
        }
        (None, Some(u)) => {
            if !super::is_user_name(&u.value) {
                return Err(Error::input(
                    &u.at.file,
                    Pos {
                        line: u.at.line,
                        column: 1,
                    },
                    format!(
                        "User `{}` (for host `{}`) is not a valid login name",
                        u.value, host.name
                    ),
                    "fix the ssh_config line, or set `user` in the inventory",
                ));
            }
            host.user = u.value.clone();
            note("user", u.at.to_string());
        }
        (None, None) => note("user", default()),
    }
    if let Some((file, at)) = &given.identity_file {
        host.identity_file = Some(file.clone());
        note("identity_file", at.clone());
    }
    host.ssh.identity_files = resolved
        .identity_files
        .iter()
        .map(|f| f.value.clone())
        .filter(|f| host.identity_file.as_ref() != Some(f))
        .collect();
    if let Some(first) = resolved.identity_files.first() {
        note("identity_files", first.at.to_string());
    }
    if let Some(only) = &resolved.identities_only {
        host.ssh.identities_only = only.value;
        note("identities_only", only.at.to_string());
    }
    fill_trust(&mut host.ssh, &resolved, &mut note);
    // Bastions: the inventory's `jump`, else ProxyJump; each hop resolved
    // through the same configuration, its own ProxyJump before it.
    let (specs, at) = match (&given.jump, &resolved.proxy_jump) {
        (Some((specs, at)), _) => (specs.clone(), at.clone()),
        (None, Some(j)) => (
            JumpSpec::parse_list(&j.value.join(",")).map_err(|why| Error::Usage {
                message: format!("host `{}`: ProxyJump at {}: {why}", host.name, j.at),
                hint: "write `ProxyJump [user@]host[:port][,...]`".into(),
            })?,
            j.at.to_string(),
        ),
        (None, None) => (Vec::new(), String::new()),
    };
    if !specs.is_empty() {
        note("jump", at);
    }
    let mut chain = Vec::new();
    for spec in &specs {
        resolve_hop(spec, config, &mut chain, 0, &host.name, inventory)?;
    }
    host.ssh.jump = chain;
    host.ssh.origin.extend(origin);
    Ok(())
}

fn fill_trust(reach: &mut SshReach, resolved: &Resolved, note: &mut dyn FnMut(&str, String)) {
    if let Some(files) = &resolved.user_known_hosts {
        reach.known_hosts = Some(files.value.clone());
        note("known_hosts", files.at.to_string());
    }
    if let Some(files) = &resolved.global_known_hosts {
        reach.global_known_hosts = Some(files.value.clone());
        note("global_known_hosts", files.at.to_string());
    }
    if let Some(strict) = &resolved.strict {
        reach.accept_new = strict.value == Strict::AcceptNew;
        note("strict_host_key_checking", strict.at.to_string());
    }
    if let Some(t) = &resolved.connect_timeout {
        reach.connect_timeout_secs = Some(t.value.as_secs().max(1));
        note("connect_timeout", t.at.to_string());
    }
    if let Some(t) = &resolved.server_alive_interval {
        reach.server_alive_interval_secs = Some(t.value.as_secs());
        note("server_alive_interval", t.at.to_string());
    }
    if let Some(n) = &resolved.server_alive_count_max {
        reach.server_alive_count_max = Some(n.value);
        note("server_alive_count_max", n.at.to_string());
    }
}

fn resolve_hop(
    spec: &JumpSpec,
    config: &SshConfig,
    chain: &mut Vec<JumpHost>,
    depth: usize,
    for_host: &str,
    inventory: &Path,
) -> Result<(), Error> {
    if depth + chain.len() >= MAX_HOPS {
        return Err(Error::input(
            inventory,
            Pos { line: 1, column: 1 },
            format!(
                "host `{for_host}` goes through more than {MAX_HOPS} bastions (ProxyJump lines that name each other?)"
            ),
            "check the ProxyJump lines of the bastions in your ssh_config",
        ));
    }
    let resolved = config.resolve(
        &spec.host,
        &Preset {
            hostname: None,
            user: spec.user.clone(),
            port: spec.port,
        },
    )?;
    // A bastion's own ProxyJump comes before it, as `ssh -J` resolves it.
    if let Some(j) = &resolved.proxy_jump {
        for hop in JumpSpec::parse_list(&j.value.join(",")).map_err(|why| Error::Usage {
            message: format!("bastion `{}`: ProxyJump at {}: {why}", spec.host, j.at),
            hint: "write `ProxyJump [user@]host[:port][,...]`".into(),
        })? {
            resolve_hop(&hop, config, chain, depth + 1, for_host, inventory)?;
        }
    }
    let mut reach = SshReach::default();
    fill_trust(&mut reach, &resolved, &mut |_, _| {});
    let address = resolved
        .hostname
        .map(|h| h.value)
        .unwrap_or_else(|| spec.host.clone());
    chain.push(JumpHost {
        name: spec.host.clone(),
        address,
        port: spec
            .port
            .or(resolved.port.map(|p| p.value))
            .unwrap_or(super::DEFAULT_PORT),
        user: spec
            .user
            .clone()
            .or(resolved.user.map(|u| u.value))
            .unwrap_or_else(|| {
                std::env::var("USER")
                    .ok()
                    .filter(|u| super::is_user_name(u))
                    .unwrap_or_else(|| "root".into())
            }),
        identity_files: resolved
            .identity_files
            .into_iter()
            .map(|f| f.value)
            .collect(),
        known_hosts: reach.known_hosts,
        accept_new: reach.accept_new,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_specs_read_user_host_and_port() {
        assert_eq!(
            JumpSpec::parse("ops@b1.example.net:2222").unwrap(),
            JumpSpec {
                user: Some("ops".into()),
                host: "b1.example.net".into(),
                port: Some(2222)
            }
        );
        assert_eq!(JumpSpec::parse("[fe80::1]:22").unwrap().host, "fe80::1");
        assert_eq!(JumpSpec::parse("ssh://b2").unwrap().port, None);
        assert!(JumpSpec::parse("b1;rm -rf /").is_err());
        assert!(JumpSpec::parse("b1:0").is_err());
        assert!(JumpSpec::parse_list("none").unwrap().is_empty());
        assert_eq!(JumpSpec::parse_list("b1,b2").unwrap().len(), 2);
    }
}
