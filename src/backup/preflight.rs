//! Read-only facts a backup needs from each host before and during a run:
//! the hooks' checksums, the instances and whether they are suspended, and
//! the mirror role of the host (read at run time: roles change on failover).

use crate::backup::plan::SkipKind;
pub use crate::backup::role::Role;
use crate::hooks::{self, HookKind};
use crate::inventory::Host;
use crate::output::error::HostError;
use crate::output::event::EventSender;
use crate::remote::transport::{Connector, Transport};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Args: HOOK_DIR PLATFORM PRE_SHAS POST_SHAS PRE_NAME POST_NAME. Checks both hooks as every
/// run of a hook does (place, owner, mode, content) and runs a checked copy
/// of the freeze hook's `status` only when both pass.
pub fn preflight_script() -> String {
    hooks::with_check_library(include_str!("../remote/scripts/preflight.sh"))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub name: String,
    pub running: bool,
    /// `suspended`, `running`, `hung`, `down`, `no-answer` (no session in
    /// time) or `unknown`, from the hook's status.
    pub state: String,
    /// qlist field 9: `ok`, `warn` or `hung` (empty on versions without it).
    pub health: String,
}

/// A hook that failed its check, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookProblem {
    pub hook: HookKind,
    pub why: String,
}

impl std::fmt::Display for HookProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.hook.file_name(), self.why)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Why a hook is not exactly what quiesce deployed, one per failing hook.
    pub hook_problems: Vec<HookProblem>,
    /// How many hooks were checked (2 when the probe ran through).
    pub hooks_checked: usize,
    pub instances: Vec<Instance>,
    /// Entries of the hook's state file: a freeze recorded and not thawed.
    pub recorded: Vec<String>,
    /// (instance, member type, member status) from qlist or a session.
    pub roles: Vec<(String, String, String)>,
}

impl HostFacts {
    pub fn parse(text: &str) -> HostFacts {
        let mut facts = HostFacts::default();
        let mut states: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["hook", _, "ok"] => facts.hooks_checked += 1,
                ["hook", name, _status, why] => {
                    facts.hooks_checked += 1;
                    // Only the two hooks are probed; any other name still counts.
                    let (hook, why) =
                        match HookKind::ALL.into_iter().find(|k| k.file_name() == *name) {
                            Some(hook) => (hook, why.to_string()),
                            None => (HookKind::PreFreeze, format!("{name}: {why}")),
                        };
                    facts.hook_problems.push(HookProblem { hook, why });
                }
                ["status", rest] => match rest.split_once(' ') {
                    Some(("recorded", entry)) => facts.recorded.push(entry.to_string()),
                    Some((name, state)) => states.push((name.to_string(), state.to_string())),
                    None => {}
                },
                [
                    "qlist",
                    name,
                    status,
                    member_type,
                    member_status,
                    health @ ..,
                ] => {
                    if name.is_empty() {
                        continue;
                    }
                    facts.instances.push(Instance {
                        name: name.to_string(),
                        // Up unless qlist says down: `sign-on inhibited, …` and
                        // `running on node ? (…)` are up and must be frozen too.
                        running: !status.is_empty() && !status.starts_with("down"),
                        state: String::new(),
                        health: health
                            .first()
                            .map(|h| h.trim().to_string())
                            .unwrap_or_default(),
                    });
                    if !member_type.is_empty() {
                        facts.roles.push((
                            name.to_string(),
                            member_type.to_string(),
                            member_status.to_string(),
                        ));
                    }
                }
                ["role", name, member_type, member_status] => facts.roles.push((
                    name.to_string(),
                    member_type.to_string(),
                    member_status.to_string(),
                )),
                _ => {}
            }
        }
        for instance in &mut facts.instances {
            instance.state = states
                .iter()
                .find(|(n, _)| *n == instance.name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| {
                    if instance.running {
                        "unknown".into()
                    } else {
                        "down".into()
                    }
                });
        }
        facts
    }

    /// The host's role: that of its first instance in a mirror.
    pub fn role(&self) -> Role {
        self.roles
            .iter()
            .map(|(_, t, s)| Role::from_fields(t, s))
            .find(|r| *r != Role::NotMember)
            .unwrap_or(Role::NotMember)
    }

    /// Running instances in the host's scope (its `instances`, else every
    /// running one) that qlist reports hung: the hook would refuse to freeze them.
    pub fn hung(&self, scope: &[String]) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|i| i.running && (i.health == "hung" || i.state == "hung"))
            .filter(|i| scope.is_empty() || scope.contains(&i.name))
            .map(|i| i.name.as_str())
            .collect()
    }

    pub fn suspended(&self) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|i| i.state == "suspended")
            .map(|i| i.name.as_str())
            .collect()
    }
}

/// The facts of every selected host, read in parallel.
pub struct Preflight {
    pub facts: HashMap<String, Result<HostFacts, HostError>>,
    pub connections: HashMap<String, Arc<dyn Transport>>,
    /// What the snapshot provider settled for each host (`prepare_snapshots`).
    pub prepared: HashMap<String, crate::backup::provider::Prepared>,
    /// The provider that prepared them: the run goes on with it (its session).
    pub provider: Option<Arc<dyn crate::backup::provider::Provider>>,
}

pub fn expected_shas(host: &Host) -> (String, String) {
    (
        hooks::sha256_hex(hooks::render(HookKind::freezer(host), host).as_bytes()),
        hooks::sha256_hex(hooks::render(HookKind::thawer(host), host).as_bytes()),
    )
}

pub async fn read_facts(connection: &dyn Transport, host: &Host) -> Result<HostFacts, HostError> {
    let (pre, post) = expected_shas(host);
    let out = connection
        .run_script(
            "preflight",
            &preflight_script(),
            &[
                &host.hook_dir,
                host.platform.as_str(),
                &pre,
                &post,
                HookKind::freezer(host).file_name(),
                HookKind::thawer(host).file_name(),
            ],
            None,
        )
        .await?;
    if !out.success() {
        return Err(HostError::StepFailed {
            target: host.target(),
            step: "preflight".into(),
            detail: out.describe(),
        });
    }
    Ok(HostFacts::parse(&out.stdout_text()))
}

pub async fn preflight(
    hosts: &[&Host],
    connector: &dyn Connector,
    forks: usize,
    events: &EventSender,
) -> Preflight {
    type Probed = (String, Result<(HostFacts, Arc<dyn Transport>), HostError>);
    let results: Vec<Probed> = futures::stream::iter(hosts.iter().map(|host| async move {
        let result = async {
            let connection = connector.connect(host, events).await?;
            let facts = read_facts(&*connection, host).await?;
            Ok((facts, connection))
        }
        .await;
        (host.name.clone(), result)
    }))
    .buffer_unordered(forks.max(1))
    .collect()
    .await;
    let mut preflight = Preflight {
        facts: HashMap::new(),
        connections: HashMap::new(),
        prepared: HashMap::new(),
        provider: None,
    };
    for (name, result) in results {
        match result {
            Ok((facts, connection)) => {
                preflight.facts.insert(name.clone(), Ok(facts));
                preflight.connections.insert(name, connection);
            }
            Err(e) => {
                preflight.facts.insert(name, Err(e));
            }
        }
    }
    preflight
}

/// Before anything is frozen, read-only: what the snapshot provider will
/// take on each reachable host. A host it cannot snapshot is left out (with
/// why); nothing of it is frozen.
pub async fn prepare_snapshots(
    hosts: &[&Host],
    preflight: &mut Preflight,
    provider: &Arc<dyn crate::backup::provider::Provider>,
    forks: usize,
) -> Vec<(String, String)> {
    preflight.provider = Some(provider.clone());
    let ready: Vec<(&Host, Arc<dyn Transport>)> = hosts
        .iter()
        .filter_map(|h| Some((*h, preflight.connections.get(&h.name)?.clone())))
        .collect();
    let results: Vec<(String, Result<crate::backup::provider::Prepared, String>)> =
        futures::stream::iter(ready.into_iter().map(|(host, connection)| async move {
            let result = provider.prepare(host, &*connection).await;
            (host.name.clone(), result)
        }))
        .buffer_unordered(forks.max(1))
        .collect()
        .await;
    let mut refused = Vec::new();
    for (name, result) in results {
        match result {
            Ok(prepared) => {
                preflight.prepared.insert(name, prepared);
            }
            Err(why) => refused.push((name, why)),
        }
    }
    refused.sort();
    refused
}

/// Problems that stop the whole run before anything is frozen, and hosts to
/// leave out (with why). Roles for the plan come back too.
pub struct Checked {
    pub blockers: Vec<String>,
    /// (host, why in words, why as a kind).
    pub left_out: Vec<(String, String, crate::backup::plan::SkipKind)>,
    pub roles: HashMap<String, Role>,
}

pub fn check(hosts: &[&Host], preflight: &Preflight) -> Checked {
    let mut checked = Checked {
        blockers: Vec::new(),
        left_out: Vec::new(),
        roles: HashMap::new(),
    };
    for host in hosts {
        match preflight.facts.get(&host.name) {
            Some(Ok(facts)) => {
                checked.roles.insert(host.name.clone(), facts.role());
                if facts.hooks_checked < 2 || !facts.hook_problems.is_empty() {
                    let why = if facts.hook_problems.is_empty() {
                        "the hooks could not be checked".to_string()
                    } else {
                        facts
                            .hook_problems
                            .iter()
                            .map(HookProblem::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    checked.left_out.push((host.name.clone(), format!("{}: the hooks differ from what quiesce deploys; not running them ({why}); run `quiesce audit`, then `quiesce deploy`", host.target()), SkipKind::HooksDiffer));
                    continue;
                }
                let hung = facts.hung(&host.instances);
                if !hung.is_empty() {
                    checked.left_out.push((host.name.clone(), format!("{}: instance {} is hung (qlist state hung); quiesce never freezes a hung instance: look at its messages.log, then run again", host.target(), hung.join(", ")), SkipKind::Problem));
                    continue;
                }
                let silent: Vec<&str> = facts
                    .instances
                    .iter()
                    .filter(|i| i.state == "no-answer")
                    .filter(|i| host.instances.is_empty() || host.instances.contains(&i.name))
                    .map(|i| i.name.as_str())
                    .collect();
                if !silent.is_empty() {
                    checked.left_out.push((host.name.clone(), format!("{}: instance {} took no session within 10s (a paused instance takes no new login: a freeze outlived its timeout?); not freezing it: look at its messages.log, end a paused backup freeze with `iris stat INSTANCE -W` (Caché: `ccontrol stat INSTANCE -W`), then run again", host.target(), silent.join(", ")), SkipKind::Problem));
                    continue;
                }
                let suspended = facts.suspended();
                if !suspended.is_empty() || !facts.recorded.is_empty() {
                    checked.blockers.push(format!(
                        "{}: {}",
                        host.target(),
                        freeze_in_place(host, &suspended, &facts.recorded)
                    ));
                }
            }
            Some(Err(e)) => {
                checked.roles.insert(
                    host.name.clone(),
                    Role::Unsettled {
                        detail: "unreachable at preflight".into(),
                    },
                );
                let why = if e.is_unreachable() {
                    SkipKind::Unreachable
                } else {
                    SkipKind::Problem
                };
                checked
                    .left_out
                    .push((host.name.clone(), e.to_string(), why));
            }
            None => {}
        }
    }
    checked
}

/// Why a host with a freeze in place blocks the run, naming who holds the
/// freeze and the fix that fits: never "thaw it" for a run that may be alive.
fn freeze_in_place(host: &Host, suspended: &[&str], recorded: &[String]) -> String {
    let mut holders: Vec<&str> = recorded
        .iter()
        .filter_map(|r| r.split_once(" by ").map(|(_, who)| who))
        .collect();
    holders.dedup();
    let mut what: Vec<String> = suspended
        .iter()
        .map(|s| format!("instance {s} is already frozen"))
        .collect();
    let entries: Vec<&str> = recorded
        .iter()
        .map(|r| r.split(" by ").next().unwrap_or(r))
        .collect();
    let hint = match holders.as_slice() {
        [] => "someone froze it outside the quiesce hooks (ExternalFreeze by hand, another tool): find out who, and let them thaw it; then run again".to_string(),
        ["vmware"] => format!(
            "VMware Tools (or a backup product calling the hooks) froze it: let that snapshot finish; if it is gone, thaw it on the VM with `QUIESCE_OWNER=vmware {} freezeFail`, then run again",
            HookKind::thawer(host).path(host)
        ),
        ["qemu-ga"] => format!(
            "qemu-guest-agent (a hypervisor's fsfreeze-freeze) froze it: let that snapshot finish; if it is gone, thaw it on the VM with `QUIESCE_OWNER=qemu-ga {} thaw` (or the agent's guest-fsfreeze-thaw), then run again",
            HookKind::thawer(host).path(host)
        ),
        many => format!(
            "quiesce run {} froze it: if that run is still going, let it finish; if it is over, thaw with `quiesce recover {}`, then run again",
            many.join(", "),
            many[0]
        ),
    };
    if !recorded.is_empty() {
        what.push(format!(
            "the hook records a freeze by {} that was never thawed ({})",
            if holders.is_empty() {
                "an unknown owner".to_string()
            } else {
                holders.join(", ")
            },
            entries.join(", ")
        ));
    }
    format!("{}\n  hint: {hint}", what.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hooks_states_and_roles() {
        let text = "hook\tpre-freeze-script\tok\nhook\tpost-thaw-script\t97\tchanged\nstatus\tIRIS suspended\nstatus\tIRIS2 running\nstatus\trecorded frozen:IRIS\nqlist\tIRIS\trunning, since x\tFailover\tBackup\nqlist\tIRIS2\trunning, since x\t\t\nqlist\tOLD\tdown, last used x\t\t\n";
        let facts = HostFacts::parse(text);
        assert_eq!(facts.hooks_checked, 2);
        assert_eq!(
            facts
                .hook_problems
                .iter()
                .map(HookProblem::to_string)
                .collect::<Vec<_>>(),
            ["post-thaw-script: changed"]
        );
        assert_eq!(facts.suspended(), ["IRIS"]);
        assert_eq!(facts.recorded, ["frozen:IRIS"]);
        assert_eq!(facts.role(), Role::Backup);
        assert_eq!(
            facts.instances[2],
            Instance {
                name: "OLD".into(),
                running: false,
                state: "down".into(),
                health: String::new(),
            }
        );
        let cache = HostFacts::parse("role\tCACHE\tDisaster Recovery\tConnected\n");
        assert_eq!(
            cache.role(),
            Role::Async {
                member_type: "Disaster Recovery".into()
            }
        );
        assert_eq!(Role::from_fields("Failover", "In Trouble").rank(), 3);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in "\\PC{0,300}") {
            let facts = HostFacts::parse(&text);
            let _ = facts.role();
        }

        #[test]
        fn parser_never_panics_on_tabbed_lines(kind in "(hook|status|qlist|role)", fields in proptest::collection::vec("[A-Za-z ,:-]{0,10}", 0..6)) {
            let _ = HostFacts::parse(&format!("{kind}\t{}", fields.join("\t"))).role();
        }
    }
}
