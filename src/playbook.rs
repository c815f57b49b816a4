//! Backup playbooks (YAML): which hosts, whether mirror primaries are
//! included, consistency groups, the snapshot step and its timeouts.
//! Validated like the inventory, every error with file:line:column.

use crate::duration;
use crate::error::Error;
use crate::inventory::{Inventory, MAX_FREEZE_TIMEOUT};
use crate::source_map::SourceMap;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Placeholders a snapshot command may use; each value is shell-quoted.
pub const PLACEHOLDERS: [&str; 5] = ["host", "vm", "address", "run_id", "run_dir"];
const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_FREEZE_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOn {
    Controller,
    Vm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    command: String,
    #[serde(default = "default_run_on")]
    on: RunOn,
    timeout: Option<String>,
    #[serde(default)]
    retries: u32,
}

fn default_run_on() -> RunOn {
    RunOn::Controller
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: Option<String>,
    hosts: Option<String>,
    #[serde(default)]
    include_primaries: bool,
    #[serde(default)]
    consistency_groups: IndexMap<String, Vec<String>>,
    snapshot: RawSnapshot,
    freeze_margin: Option<String>,
    qos_warn_fraction: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStep {
    pub command: String,
    pub on: RunOn,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Playbook {
    pub path: PathBuf,
    pub name: String,
    pub hosts: Option<String>,
    pub include_primaries: bool,
    pub consistency_groups: IndexMap<String, Vec<String>>,
    pub snapshot: SnapshotStep,
    #[serde(serialize_with = "secs")]
    pub freeze_margin: Duration,
    /// Warn when a VM's stun reaches this fraction of its mirror's QoS timeout.
    pub qos_warn_fraction: f64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Playbook {
    /// ExternalFreezeTimeOut for this run: every snapshot attempt plus the margin.
    pub fn freeze_timeout(&self) -> Duration {
        self.snapshot.timeout * (self.snapshot.retries + 1) + self.freeze_margin
    }

    pub fn load(path: &Path, inventory: &Inventory) -> Result<Playbook, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            path: path.to_path_buf(),
            action: "read the playbook",
            source,
        })?;
        Playbook::parse(path, &text, inventory)
    }

    pub fn parse(path: &Path, text: &str, inventory: &Inventory) -> Result<Playbook, Error> {
        let (map, raw): (SourceMap, RawPlaybook) = crate::source_map::load_yaml(
            path,
            text,
            "each key may appear only once; merge the two entries",
            "see docs/playbook.md for every key and its type",
        )?;
        let err = |at: &[&str], message: String, hint: &str| {
            Error::input(path, map.value(at), message, hint)
        };
        let parse_duration =
            |text: &Option<String>, at: &[&str], default: Duration| -> Result<Duration, Error> {
                match text {
                    None => Ok(default),
                    Some(t) => duration::parse(t).map_err(|why| {
                        err(
                            at,
                            format!("{}: {why}", at.last().unwrap_or(&"")),
                            "write a duration such as 30s, 2m or 1h",
                        )
                    }),
                }
            };
        if raw.snapshot.command.trim().is_empty() {
            return Err(err(
                &["snapshot", "command"],
                "the snapshot command is empty".into(),
                "give the command that takes the snapshot, e.g. a hypervisor CLI call with {vm}",
            ));
        }
        check_placeholders(&raw.snapshot.command).map_err(|why| {
            err(
                &["snapshot", "command"],
                why,
                &format!(
                    "placeholders are {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ),
            )
        })?;
        let timeout = parse_duration(
            &raw.snapshot.timeout,
            &["snapshot", "timeout"],
            DEFAULT_SNAPSHOT_TIMEOUT,
        )?;
        if timeout.is_zero() {
            return Err(err(
                &["snapshot", "timeout"],
                "snapshot.timeout must be more than zero".into(),
                "how long one snapshot may take, e.g. 2m",
            ));
        }
        let freeze_margin = parse_duration(
            &raw.freeze_margin,
            &["freeze_margin"],
            DEFAULT_FREEZE_MARGIN,
        )?;
        if freeze_margin < Duration::from_secs(5) {
            return Err(err(
                &["freeze_margin"],
                format!(
                    "freeze_margin {} is too short",
                    duration::format(freeze_margin)
                ),
                "quiesce needs at least 5s after a failed snapshot to thaw before the freeze times out",
            ));
        }
        let qos_warn_fraction = raw.qos_warn_fraction.unwrap_or(0.5);
        if !(qos_warn_fraction > 0.0 && qos_warn_fraction <= 1.0) {
            return Err(err(
                &["qos_warn_fraction"],
                format!("qos_warn_fraction {qos_warn_fraction} is out of range"),
                "a fraction of the QoS timeout, more than 0 and at most 1",
            ));
        }
        let playbook = Playbook {
            path: path.to_path_buf(),
            name: raw.name.unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
            hosts: raw.hosts,
            include_primaries: raw.include_primaries,
            consistency_groups: raw.consistency_groups,
            snapshot: SnapshotStep {
                command: raw.snapshot.command,
                on: raw.snapshot.on,
                timeout,
                retries: raw.snapshot.retries,
            },
            freeze_margin,
            qos_warn_fraction,
        };
        if playbook.freeze_timeout() > MAX_FREEZE_TIMEOUT {
            return Err(err(
                &["snapshot", "timeout"],
                format!(
                    "snapshot.timeout × (retries + 1) + freeze_margin is {}, over the 20m ExternalFreezeTimeOut limit",
                    duration::format(playbook.freeze_timeout())
                ),
                "shorten the snapshot timeout, the retries or the margin: Caché/IRIS caps a freeze at 1200 s",
            ));
        }
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        for (group, members) in &playbook.consistency_groups {
            if members.is_empty() {
                return Err(err(
                    &["consistency_groups", group],
                    format!("consistency group `{group}` has no hosts"),
                    "list the hosts that must be captured at one point in time",
                ));
            }
            let mut mirrors = Vec::new();
            for (i, member) in members.iter().enumerate() {
                let index = i.to_string();
                let at = ["consistency_groups", group.as_str(), index.as_str()];
                let Some(host) = inventory.host(member) else {
                    let known: Vec<&str> =
                        inventory.hosts.iter().map(|h| h.name.as_str()).collect();
                    return Err(err(
                        &at,
                        format!("consistency group `{group}` names unknown host `{member}`"),
                        &format!("known hosts: {}", known.join(", ")),
                    ));
                };
                if let Some(other) = seen.insert(member, group) {
                    return Err(err(
                        &at,
                        format!("host `{member}` is already in consistency group `{other}`"),
                        "a host belongs to at most one consistency group",
                    ));
                }
                if let Some(m) = &host.mirror
                    && !mirrors.contains(m)
                {
                    mirrors.push(m.clone());
                }
            }
            if mirrors.len() > 1 {
                return Err(err(
                    &["consistency_groups", group],
                    format!(
                        "consistency group `{group}` spans mirrors {}",
                        mirrors.join(" and ")
                    ),
                    "a group may hold members of one mirror at most, so that mirror's order can be kept",
                ));
            }
        }
        Ok(playbook)
    }
}

fn check_placeholders(command: &str) -> Result<(), String> {
    let mut rest = command;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err("an opening `{` has no closing `}`".into());
        };
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}` in the snapshot command"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// The command with each `{placeholder}` replaced by its shell-quoted value.
pub fn render_command(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}').map(|end| (end, &after[..end])) {
            Some((end, name)) => {
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, value)) => out.push_str(&crate::shell::quote(value)),
                    None => out.push_str(&rest[start..start + end + 2]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_rendered_with_quoted_values() {
        let out = render_command(
            "snap {vm} --tag {run_id}",
            &[("vm", "PROD DB'1"), ("run_id", "r1")],
        );
        assert_eq!(out, "snap 'PROD DB'\\''1' --tag 'r1'");
        assert!(check_placeholders("x {vm} {host}").is_ok());
        assert!(check_placeholders("x {nope}").is_err());
        assert!(check_placeholders("x {vm").is_err());
    }

    proptest::proptest! {
        #[test]
        fn rendering_never_panics(template in "\\PC{0,60}", value in "\\PC{0,20}") {
            let _ = check_placeholders(&template);
            let _ = render_command(&template, &[("vm", &value)]);
        }
    }
}
