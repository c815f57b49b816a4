//! The run plan: lanes that run in parallel, each a sequence of jobs; a job
//! is the hosts frozen together, snapshotted, then thawed in reverse. Inside a
//! mirror: async members first, then the backup, the primary last (and only
//! when the playbook includes primaries), one job at a time, so two failover
//! members are never frozen at once.

use crate::backup::preflight::Role;
use crate::inventory::playbook::Playbook;
use crate::inventory::{Host, Inventory};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LaneKind {
    Mirror {
        mirror: String,
        #[serde(serialize_with = "secs")]
        qos_timeout: Duration,
    },
    Group {
        group: String,
    },
    Standalone,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Hosts frozen together, in order (the thaw runs in reverse).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub members: Vec<Member>,
    /// Set when the job is a consistency group.
    pub group: Option<String>,
}

/// A host of a job, with the mirror role it had at planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub host: String,
    pub role: Role,
}

impl Job {
    fn of(hosts: &[String], role_of: impl Fn(&str) -> Role, group: Option<String>) -> Job {
        Job {
            members: hosts
                .iter()
                .map(|h| Member {
                    host: h.clone(),
                    role: role_of(h),
                })
                .collect(),
            group,
        }
    }

    /// The hosts in freeze order.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.host.as_str())
    }
}

/// `plan --format json` keeps its shape: `hosts`, `roles`, `group`.
impl Serialize for Job {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let hosts: Vec<&str> = self.hosts().collect();
        let roles: Vec<&Role> = self.members.iter().map(|m| &m.role).collect();
        let mut job = serializer.serialize_struct("Job", 3)?;
        job.serialize_field("hosts", &hosts)?;
        job.serialize_field("roles", &roles)?;
        job.serialize_field("group", &self.group)?;
        job.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lane {
    pub name: String,
    #[serde(flatten)]
    pub kind: LaneKind,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub host: String,
    pub reason: String,
    /// Kept in results.json for `status`; older runs' read as `problem`.
    #[serde(default)]
    pub why: SkipKind,
}

/// Why a host is left out of a run: the exit code depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// The playbook says so (primaries not included): no failure.
    ByChoice,
    /// Something is wrong with the host or the inventory.
    #[default]
    Problem,
    /// Its hooks are not exactly what quiesce deploys: they were not run.
    HooksDiffer,
    /// Preflight could not reach the host.
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub lanes: Vec<Lane>,
    pub skipped: Vec<Skipped>,
}

/// Plans `hosts` (already selected) given each host's role at run time.
pub fn plan(
    inventory: &Inventory,
    playbook: &Playbook,
    hosts: &[&Host],
    roles: &HashMap<String, Role>,
) -> Result<Plan, String> {
    // Every lookup is a hash lookup: planning stays linear at 10,000 hosts.
    let chosen_names: HashSet<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let selected = |name: &str| chosen_names.contains(name);
    let group_of: HashMap<&str, (&String, &Vec<String>)> = playbook
        .consistency_groups
        .iter()
        .flat_map(|(group, hs)| hs.iter().map(move |h| (h.as_str(), (group, hs))))
        .collect();
    let role_of = |name: &str| {
        roles.get(name).cloned().unwrap_or(Role::Unsettled {
            detail: "role not read".into(),
        })
    };
    let mut placed: HashSet<String> = HashSet::new();
    let mut lanes = Vec::new();
    let mut skipped = Vec::new();

    for (group, members) in &playbook.consistency_groups {
        let chosen: Vec<&String> = members.iter().filter(|m| selected(m)).collect();
        if !chosen.is_empty() && chosen.len() != members.len() {
            let missing: Vec<&str> = members
                .iter()
                .filter(|m| !selected(m))
                .map(String::as_str)
                .collect();
            return Err(format!(
                "consistency group `{group}` is only partly selected (not selected: {}); select all of it or none",
                missing.join(", ")
            ));
        }
    }

    for (name, mirror) in &inventory.mirrors {
        let members: Vec<&String> = mirror.members.iter().filter(|m| selected(m)).collect();
        if members.is_empty() {
            continue;
        }
        // Units of this mirror: its members, except that a consistency group
        // holding a member moves as one job.
        let mut jobs: Vec<(u8, usize, Job)> = Vec::new();
        for (index, member) in members.iter().enumerate() {
            if placed.contains(member.as_str()) {
                continue;
            }
            let job = match group_of.get(member.as_str()) {
                Some((group, group_hosts)) => Job::of(group_hosts, role_of, Some((*group).clone())),
                None => Job::of(&[(*member).clone()], role_of, None),
            };
            placed.extend(job.hosts().map(str::to_string));
            let rank = job
                .members
                .iter()
                .filter(|m| mirror.members.contains(&m.host))
                .map(|m| m.role.rank())
                .max()
                .unwrap_or(0);
            jobs.push((rank, index, job));
        }
        let all_roles: Vec<Role> = members.iter().map(|m| role_of(m)).collect();
        let unsettled: Vec<String> = members
            .iter()
            .zip(&all_roles)
            .filter(|&(_m, r)| matches!(r, Role::Unsettled { .. }))
            .map(|(m, r)| format!("{m} is {}", r.describe()))
            .collect();
        let primaries = all_roles.iter().filter(|r| **r == Role::Primary).count();
        let reason = if !unsettled.is_empty() {
            Some(format!(
                "mirror {name} is not settled ({}); nothing of it is frozen, run again when it is",
                unsettled.join(", ")
            ))
        } else if primaries > 1 {
            Some(format!(
                "mirror {name} reports {primaries} primaries; nothing of it is frozen"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            for (_, _, job) in jobs {
                skipped.extend(job.hosts().map(|h| Skipped {
                    host: h.to_string(),
                    reason: reason.clone(),
                    why: SkipKind::Problem,
                }));
            }
            continue;
        }
        jobs.sort_by_key(|(rank, index, _)| (*rank, *index));
        let mut kept = Vec::new();
        for (_, _, job) in jobs {
            if !playbook.include_primaries && job.members.iter().any(|m| m.role == Role::Primary) {
                let reason = match &job.group {
                    Some(g) => format!(
                        "consistency group {g} holds the primary of mirror {name}, and the playbook does not include primaries"
                    ),
                    None => format!(
                        "primary of mirror {name}; the playbook does not include primaries (include_primaries: true)"
                    ),
                };
                skipped.extend(job.hosts().map(|h| Skipped {
                    host: h.to_string(),
                    reason: reason.clone(),
                    why: SkipKind::ByChoice,
                }));
            } else {
                kept.push(job);
            }
        }
        if !kept.is_empty() {
            lanes.push(Lane {
                name: name.clone(),
                kind: LaneKind::Mirror {
                    mirror: name.clone(),
                    qos_timeout: mirror.qos_timeout,
                },
                jobs: kept,
            });
        }
    }

    for (group, members) in &playbook.consistency_groups {
        if members.iter().any(|m| placed.contains(m)) || !members.iter().all(|m| selected(m)) {
            continue;
        }
        placed.extend(members.iter().cloned());
        lanes.push(Lane {
            name: group.clone(),
            kind: LaneKind::Group {
                group: group.clone(),
            },
            jobs: vec![Job::of(members, role_of, Some(group.clone()))],
        });
    }

    for host in hosts {
        if placed.contains(&host.name) {
            continue;
        }
        let role = role_of(&host.name);
        if role != Role::NotMember {
            // A mirror member the inventory does not list under any mirror.
            let reason = format!(
                "{} is {}, but the inventory lists it under no mirror; add it to its mirror so the order can be kept",
                host.name,
                role.describe()
            );
            skipped.push(Skipped {
                host: host.name.clone(),
                reason,
                why: SkipKind::Problem,
            });
            continue;
        }
        lanes.push(Lane {
            name: host.name.clone(),
            kind: LaneKind::Standalone,
            jobs: vec![Job {
                members: vec![Member {
                    host: host.name.clone(),
                    role,
                }],
                group: None,
            }],
        });
    }
    Ok(Plan { lanes, skipped })
}

impl Plan {
    pub fn host_count(&self) -> usize {
        self.lanes
            .iter()
            .flat_map(|l| &l.jobs)
            .map(|j| j.members.len())
            .sum()
    }

    pub fn render(&self, playbook: &Playbook) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plan for playbook {}: {} hosts in {} lanes (lanes run in parallel; inside a lane, one job at a time)",
            playbook.name,
            self.host_count(),
            self.lanes.len()
        );
        let _ = writeln!(
            out,
            "freeze timeout given to ExternalFreeze: {}",
            crate::output::duration::format(playbook.freeze_timeout())
        );
        for lane in &self.lanes {
            let title = match &lane.kind {
                LaneKind::Mirror {
                    mirror,
                    qos_timeout,
                } => format!(
                    "mirror {mirror} (QoS timeout {}): async members first, then the backup, the primary last",
                    crate::output::duration::format(*qos_timeout)
                ),
                LaneKind::Group { group } => format!(
                    "consistency group {group}: frozen together, snapshotted, thawed in reverse"
                ),
                LaneKind::Standalone => format!("standalone {}", lane.name),
            };
            let _ = writeln!(out, "\n{title}");
            for (i, job) in lane.jobs.iter().enumerate() {
                let members: Vec<String> = job
                    .members
                    .iter()
                    .map(|Member { host, role }| {
                        if *role == Role::NotMember {
                            host.clone()
                        } else {
                            format!("{host} ({})", role.describe())
                        }
                    })
                    .collect();
                let label = match &job.group {
                    Some(g) if !matches!(lane.kind, LaneKind::Group { .. }) => {
                        format!("group {g}: ")
                    }
                    _ => String::new(),
                };
                let _ = writeln!(out, "  {}. {label}{}", i + 1, members.join(", then "));
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "\nskipped:");
            for s in &self.skipped {
                let _ = writeln!(out, "  {}: {}", s.host, s.reason);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const INVENTORY: &str = "hosts:\n  a1: { address: 10.0.0.1 }\n  a2: { address: 10.0.0.2 }\n  a3: { address: 10.0.0.3 }\n  b1: { address: 10.0.1.1 }\n  b2: { address: 10.0.1.2 }\n  solo: { address: 10.0.2.1 }\n  app1: { address: 10.0.3.1 }\n  app2: { address: 10.0.3.2 }\nmirrors:\n  MA: { members: [a1, a2, a3] }\n  MB: { members: [b1, b2] }\n";

    fn setup(playbook_extra: &str) -> (Inventory, Playbook) {
        let inventory = Inventory::parse(Path::new("i.yml"), INVENTORY).unwrap();
        let text = format!("snapshot: {{ command: 'snap {{vm}}' }}\n{playbook_extra}");
        let playbook = Playbook::parse(Path::new("p.yml"), &text, &inventory).unwrap();
        (inventory, playbook)
    }

    fn roles(list: &[(&str, Role)]) -> HashMap<String, Role> {
        let mut map: HashMap<String, Role> = ["a1", "a2", "a3", "b1", "b2", "solo", "app1", "app2"]
            .iter()
            .map(|h| (h.to_string(), Role::NotMember))
            .collect();
        map.extend(list.iter().map(|(h, r)| (h.to_string(), r.clone())));
        map
    }

    fn dr() -> Role {
        Role::Async {
            member_type: "Disaster Recovery".into(),
        }
    }

    fn order(plan: &Plan) -> Vec<String> {
        plan.lanes
            .iter()
            .map(|l| {
                format!(
                    "{}: {}",
                    l.name,
                    l.jobs
                        .iter()
                        .map(|j| j.hosts().collect::<Vec<_>>().join("+"))
                        .collect::<Vec<_>>()
                        .join(" > ")
                )
            })
            .collect()
    }

    #[test]
    fn mirrors_go_async_then_backup_then_primary() {
        let (inv, pb) = setup("include_primaries: true\n");
        let hosts: Vec<&Host> = inv.hosts.iter().collect();
        let r = roles(&[
            ("a1", Role::Primary),
            ("a2", Role::Backup),
            ("a3", dr()),
            ("b1", Role::Backup),
            ("b2", Role::Primary),
        ]);
        let plan = plan(&inv, &pb, &hosts, &r).unwrap();
        assert_eq!(
            order(&plan),
            [
                "MA: a3 > a2 > a1",
                "MB: b1 > b2",
                "solo: solo",
                "app1: app1",
                "app2: app2"
            ]
        );
        assert!(plan.skipped.is_empty());
    }

    #[test]
    fn primaries_are_left_out_unless_included() {
        let (inv, pb) = setup("");
        let hosts: Vec<&Host> = inv
            .hosts
            .iter()
            .filter(|h| h.name.starts_with('a'))
            .collect();
        let r = roles(&[("a1", Role::Primary), ("a2", Role::Backup), ("a3", dr())]);
        let plan = plan(&inv, &pb, &hosts, &r).unwrap();
        assert_eq!(order(&plan), ["MA: a3 > a2", "app1: app1", "app2: app2"]);
        assert_eq!(plan.skipped[0].host, "a1");
    }

    #[test]
    fn a_consistency_group_moves_as_one_job_at_its_members_place() {
        let (inv, pb) = setup(
            "include_primaries: true\nconsistency_groups:\n  billing: [app1, app2, b2]\n  front: [solo]\n",
        );
        let hosts: Vec<&Host> = inv.hosts.iter().collect();
        let r = roles(&[
            ("a1", Role::Primary),
            ("a2", Role::Backup),
            ("a3", dr()),
            ("b1", Role::Primary),
            ("b2", Role::Backup),
        ]);
        let plan = plan(&inv, &pb, &hosts, &r).unwrap();
        assert_eq!(
            order(&plan),
            ["MA: a3 > a2 > a1", "MB: app1+app2+b2 > b1", "front: solo"]
        );
    }

    #[test]
    fn an_unsettled_mirror_is_not_touched() {
        let (inv, pb) = setup("include_primaries: true\n");
        let hosts: Vec<&Host> = inv
            .hosts
            .iter()
            .filter(|h| h.name.starts_with('b'))
            .collect();
        let r = roles(&[
            (
                "b1",
                Role::Unsettled {
                    detail: "failover member with status `In Trouble`".into(),
                },
            ),
            ("b2", Role::Primary),
        ]);
        let plan = plan(&inv, &pb, &hosts, &r).unwrap();
        assert!(plan.lanes.is_empty());
        assert_eq!(plan.skipped.len(), 2);
        let (inv, pb) = setup("consistency_groups:\n  g: [app1, app2]\n");
        let hosts: Vec<&Host> = inv.hosts.iter().filter(|h| h.name == "app1").collect();
        assert!(super::plan(&inv, &pb, &hosts, &roles(&[])).is_err());
    }
}
