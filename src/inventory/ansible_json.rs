//! Ansible's JSON inventories: what `ansible-inventory --list` prints and
//! what a dynamic inventory script (AWX's generated one included) prints
//! for `--list`: groups with `hosts` lists, `children` and `vars`, and every
//! host's variables under `_meta.hostvars`.

use super::ansible::{Doc, Var, key_text, yaml_value};
use crate::inventory::source_map::{Pos, SourceMap};
use crate::output::error::Error;
use std::path::Path;

/// JSON of that shape: an object with `_meta`, or whose members are groups
/// with a `hosts` list.
pub(super) fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// The document, or None when the JSON is not an inventory list.
pub(super) fn doc(path: &Path, text: &str) -> Result<Option<Doc>, Error> {
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or(Pos { line: 1, column: 1 });
            return Err(Error::input(
                path,
                pos,
                format!("not valid JSON: {e}"),
                "an Ansible JSON inventory is what `ansible-inventory --list` prints",
            ));
        }
    };
    let Some(top) = value.as_mapping() else {
        return Ok(None);
    };
    let listed = top.iter().any(|(k, v)| {
        key_text(k) == "_meta"
            || v.as_mapping()
                .and_then(|m| m.get("hosts"))
                .is_some_and(|h| h.is_sequence())
    });
    if !listed {
        return Ok(None);
    }
    let map = SourceMap::parse(text)
        .map_err(|e| e.into_error(path, "Ansible would keep only the last one; merge the two"))?;
    let mut doc = Doc::default();
    doc.group("all", Pos { line: 1, column: 1 });
    for (name, body) in top {
        let name = key_text(name);
        if name == "_meta" {
            continue;
        }
        let pos = map.key(&[&name]);
        if name != "all" {
            doc.add_child("all", &name, pos);
        }
        doc.group(&name, pos);
        let Some(body) = body.as_mapping() else {
            continue;
        };
        for (i, host) in body
            .get("hosts")
            .and_then(|h| h.as_sequence())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = i.to_string();
            let hpos = map.value(&[&name, "hosts", &index]);
            let Some(host) = host.as_str() else {
                return Err(Error::input(
                    path,
                    hpos,
                    format!("group {name}: a host name must be a string"),
                    "list host names as strings",
                ));
            };
            doc.add_host(&name, host, hpos);
        }
        for (i, child) in body
            .get("children")
            .and_then(|c| c.as_sequence())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = i.to_string();
            if let Some(child) = child.as_str() {
                doc.add_child(&name, child, map.value(&[&name, "children", &index]));
            }
        }
        for (var, value) in body
            .get("vars")
            .and_then(|v| v.as_mapping())
            .into_iter()
            .flatten()
        {
            let var = key_text(var);
            let vpos = map.value(&[&name, "vars", &var]);
            doc.group(&name, pos).vars.insert(
                var,
                Var {
                    value: yaml_value(value),
                    pos: vpos,
                },
            );
        }
    }
    let hostvars = top
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .and_then(|h| h.as_mapping());
    for (host, vars) in hostvars.into_iter().flatten() {
        let host = key_text(host);
        // Variables of a host no group lists: Ansible has no such host.
        let Some(own) = doc.host_vars.get_mut(&host) else {
            continue;
        };
        for (var, value) in vars.as_mapping().into_iter().flatten() {
            let var = key_text(var);
            let vpos = map.value(&["_meta", "hostvars", &host, &var]);
            own.insert(
                var,
                Var {
                    value: yaml_value(value),
                    pos: vpos,
                },
            );
        }
    }
    Ok(Some(doc))
}
