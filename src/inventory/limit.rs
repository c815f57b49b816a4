//! `--limit`: selecting hosts by name, group, mirror or glob, Ansible-like
//! (`db-*,app`, `PRODMIR:!db-a2`, `all`).

use crate::inventory::{Host, Inventory};
use crate::output::error::Error;

/// The hosts `pattern` selects, in inventory order. `None` selects all.
pub fn select<'a>(inventory: &'a Inventory, pattern: Option<&str>) -> Result<Vec<&'a Host>, Error> {
    let Some(pattern) = pattern else {
        return Ok(inventory.hosts.iter().collect());
    };
    let mut included: Vec<bool> = vec![false; inventory.hosts.len()];
    let mut excluded: Vec<bool> = vec![false; inventory.hosts.len()];
    let mut any_positive = false;
    for term in pattern
        .split([',', ':'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (negate, name) = match term.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, term),
        };
        any_positive |= !negate;
        let hits = matches(inventory, name).map_err(|why| Error::Usage {
            message: format!("--limit {term:?}: {why}"),
            hint: "a term is a host, group or mirror name, a glob such as 'db-*', or one of those after `!` to leave it out".into(),
        })?;
        if !hits.iter().any(|&h| h) {
            return Err(Error::LimitMatchesNothing {
                pattern: term.to_string(),
                known: known_names(inventory),
            });
        }
        let target = if negate { &mut excluded } else { &mut included };
        for (slot, hit) in target.iter_mut().zip(hits) {
            *slot |= hit;
        }
    }
    if !any_positive {
        included.iter_mut().for_each(|i| *i = true);
    }
    let selected: Vec<&Host> = inventory
        .hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| included[*i] && !excluded[*i])
        .map(|(_, h)| h)
        .collect();
    if selected.is_empty() {
        return Err(Error::LimitMatchesNothing {
            pattern: pattern.to_string(),
            known: known_names(inventory),
        });
    }
    Ok(selected)
}

fn matches(inventory: &Inventory, name: &str) -> Result<Vec<bool>, String> {
    if name == "all" || name == "*" {
        return Ok(vec![true; inventory.hosts.len()]);
    }
    let group = inventory.groups.get(name);
    let mirror = inventory.mirrors.get(name);
    let glob = if name.contains(['*', '?', '[']) {
        Some(glob::Pattern::new(name).map_err(|e| format!("bad glob: {e}"))?)
    } else {
        None
    };
    let mut hits: Vec<bool> = match &glob {
        Some(g) => inventory.hosts.iter().map(|h| g.matches(&h.name)).collect(),
        None => vec![false; inventory.hosts.len()],
    };
    // Names, groups and mirrors by index: linear in what they name.
    let named = std::iter::once(name)
        .chain(group.into_iter().flatten().map(String::as_str))
        .chain(
            mirror
                .into_iter()
                .flat_map(|m| m.members.iter().map(String::as_str)),
        );
    for host in named {
        if let Some(i) = inventory.position(host) {
            hits[i] = true;
        }
    }
    Ok(hits)
}

fn known_names(inventory: &Inventory) -> String {
    let mut names: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
    names.extend(inventory.groups.keys().map(String::as_str));
    names.extend(inventory.mirrors.keys().map(String::as_str));
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory() -> Inventory {
        let text = "hosts:\n  db-a1: { address: 10.0.0.1 }\n  db-a2: { address: 10.0.0.2 }\n  app1: { address: 10.0.0.3 }\ngroups:\n  app: { hosts: [app1] }\nmirrors:\n  PRODMIR: { members: [db-a1, db-a2] }\n";
        Inventory::parse(Path::new("inv.yml"), text).unwrap()
    }

    fn names(pattern: &str) -> Vec<String> {
        let inv = inventory();
        select(&inv, Some(pattern))
            .unwrap()
            .iter()
            .map(|h| h.name.clone())
            .collect()
    }

    #[test]
    fn selects_by_name_group_mirror_and_glob() {
        assert_eq!(names("app1"), ["app1"]);
        assert_eq!(names("app"), ["app1"]);
        assert_eq!(names("PRODMIR"), ["db-a1", "db-a2"]);
        assert_eq!(names("db-*"), ["db-a1", "db-a2"]);
        assert_eq!(names("app,db-a2"), ["db-a2", "app1"]);
        assert_eq!(names("all:!db-a1"), ["db-a2", "app1"]);
        assert_eq!(names("!app"), ["db-a1", "db-a2"]);
    }

    #[test]
    fn a_term_that_matches_nothing_is_an_error() {
        let inv = inventory();
        let err = select(&inv, Some("db-a1,nope")).unwrap_err();
        assert!(matches!(err, Error::LimitMatchesNothing { ref pattern, .. } if pattern == "nope"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(pattern in "\\PC{0,40}") {
            let inv = inventory();
            let _ = select(&inv, Some(&pattern));
        }

        #[test]
        fn never_panics_on_pattern_like_text(pattern in "[a-z0-9*?!\\[\\],:-]{0,20}") {
            let inv = inventory();
            if let Ok(hosts) = select(&inv, Some(&pattern)) {
                proptest::prop_assert!(!hosts.is_empty());
            }
        }
    }
}
