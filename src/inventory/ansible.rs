//! Ansible inventories as they are (YAML and INI, told apart by content):
//! groups, children, vars, host ranges, Ansible's variable precedence; the
//! connection variables and the `quiesce_*` ones become quiesce's settings,
//! with every error at the Ansible file's line and column.

use super::{
    ContainerEngine, DurationText, Framework, JumpText, Platform, RawGroup, RawInventory,
    RawMirror, RawSettings,
};
use crate::inventory::source_map::{Pos, SourceMap};
use crate::output::error::Error;
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A variable's value as the inventory wrote it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    /// A mapping, null or a float: nothing quiesce reads.
    Other,
}

#[derive(Debug, Clone)]
pub(super) struct Var {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Default)]
pub(super) struct Group {
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: IndexMap<String, Var>,
    pub pos: Pos,
}

/// An inventory read from either format, before precedence.
#[derive(Debug, Default)]
pub(super) struct Doc {
    /// Every group, `all` included, in the order they appear.
    pub groups: IndexMap<String, Group>,
    /// Every host, in the order it first appears, with where.
    pub hosts: IndexMap<String, Pos>,
    /// Each host's own vars (a host listed twice: the later value wins).
    pub host_vars: HashMap<String, IndexMap<String, Var>>,
}

impl Doc {
    pub fn group(&mut self, name: &str, pos: Pos) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                pos,
                ..Group::default()
            })
    }

    pub fn add_host(&mut self, group: &str, host: &str, pos: Pos) {
        self.hosts.entry(host.to_string()).or_insert(pos);
        self.host_vars.entry(host.to_string()).or_default();
        let g = self.group(group, pos);
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
        }
    }

    pub fn add_child(&mut self, parent: &str, child: &str, pos: Pos) {
        self.group(child, pos);
        let g = self.group(parent, pos);
        if !g.children.iter().any(|c| c == child) {
            g.children.push(child.to_string());
        }
    }
}

/// What `Inventory::parse_with` resolves: quiesce's raw inventory, a map of
/// where each value stands in the Ansible file, the names ssh is given.
pub(super) struct Converted {
    pub raw: RawInventory,
    pub map: SourceMap,
    pub aliases: HashMap<String, (String, Pos)>,
    pub connections: HashMap<String, String>,
}

const QUIESCE_SECTIONS: [&str; 5] = ["defaults", "hosts", "groups", "mirrors", "esxi_hosts"];
const GROUP_KEYS: [&str; 3] = ["hosts", "children", "vars"];

/// How long a dynamic inventory script may take to print its `--list`.
const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// The most of its output quiesce reads.
const SCRIPT_MAX_OUTPUT: usize = 64 << 20;

/// A dynamic inventory (an executable script, as AWX hands a job its
/// inventory): run with `--list`, its JSON is the inventory. None: `path`
/// is a plain file. A script others may write is refused: whoever can
/// change it would run anything as the user running quiesce.
pub fn dynamic_list(path: &Path) -> Result<Option<String>, Error> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let at = Pos { line: 1, column: 1 };
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    let executable = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
    let shebang = std::fs::read(path)
        .map(|b| b.starts_with(b"#!"))
        .unwrap_or(false);
    if !executable && !shebang {
        return Ok(None);
    }
    if !executable {
        return Err(Error::input(
            path,
            at,
            "this is a dynamic inventory script (it starts with #!), but it is not executable",
            format!(
                "make it executable (chmod u+x {}), or give its output: ansible-inventory -i {} --list > hosts.json",
                path.display(),
                path.display()
            ),
        ));
    }
    let me = own_uid();
    if meta.mode() & 0o022 != 0 || (meta.uid() != 0 && meta.uid() != me) {
        return Err(Error::input(
            path,
            at,
            format!(
                "dynamic inventory script {} is writable by others or owned by another user (uid {}, mode {:04o}): quiesce does not run it",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ),
            "make it yours (or root's) and writable by its owner alone: chmod go-w, chown",
        ));
    }
    let mut child = std::process::Command::new(path)
        .arg("--list")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::input(
                path,
                at,
                format!("cannot run the dynamic inventory script: {e}"),
                "check its #! line and that its interpreter is installed",
            )
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout)
            .take(SCRIPT_MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut out);
        out
    });
    let errors = std::thread::spawn(move || {
        let mut err = Vec::new();
        let _ = (&mut stderr).take(64 << 10).read_to_end(&mut err);
        err
    });
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < SCRIPT_TIMEOUT => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = reader.join().unwrap_or_default();
    let err = errors.join().unwrap_or_default();
    let last_error = String::from_utf8_lossy(&err)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", crate::output::terminal::scrub(l.trim())))
        .unwrap_or_default();
    match status {
        None => Err(Error::input(
            path,
            at,
            format!(
                "the dynamic inventory script did not finish its --list within {} s",
                SCRIPT_TIMEOUT.as_secs()
            ),
            "run it by hand (`SCRIPT --list`) to see why it hangs",
        )),
        Some(s) if !s.success() => Err(Error::input(
            path,
            at,
            format!("the dynamic inventory script's --list failed ({s}){last_error}"),
            "run it by hand (`SCRIPT --list`) to see why",
        )),
        Some(_) if out.len() > SCRIPT_MAX_OUTPUT => Err(Error::input(
            path,
            at,
            format!(
                "the dynamic inventory script printed more than {} MiB",
                SCRIPT_MAX_OUTPUT >> 20
            ),
            "limit the inventory it prints",
        )),
        Some(_) => String::from_utf8(out).map(Some).map_err(|_| {
            Error::input(
                path,
                at,
                "the dynamic inventory script's --list is not UTF-8 text",
                "it must print the JSON that `ansible-inventory --list` prints",
            )
        }),
    }
}

/// The real uid of this process (from /proc: no unsafe code).
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// The inventory as quiesce's, when the text is an Ansible inventory; None
/// for a quiesce inventory.
pub(super) fn convert(path: &Path, text: &str) -> Result<Option<Converted>, Error> {
    let doc = if super::ansible_json::looks_like_json(text) {
        match super::ansible_json::doc(path, text)? {
            Some(doc) => doc,
            None => return Ok(None),
        }
    } else if super::ansible_ini::looks_like_ini(text) {
        super::ansible_ini::parse(path, text)?
    } else if looks_like_ansible_yaml(text) {
        match yaml_doc(path, text)? {
            Some(doc) => doc,
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    resolve(path, doc).map(Some)
}

/// Top-level keys other than quiesce's sections: worth a full look.
fn looks_like_ansible_yaml(text: &str) -> bool {
    text.lines().any(|line| {
        let Some(first) = line.chars().next() else {
            return false;
        };
        if first.is_whitespace() || matches!(first, '#' | '-' | '%' | '.') {
            return false;
        }
        let key = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        !QUIESCE_SECTIONS.contains(&key)
    })
}

fn yaml_doc(path: &Path, text: &str) -> Result<Option<Doc>, Error> {
    let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        // Not YAML quiesce can read either way: its own parser says where.
        return Ok(None);
    };
    let Some(top) = value.as_mapping() else {
        return Ok(None);
    };
    let group_shaped = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::Null => true,
        serde_yaml::Value::Mapping(m) => m
            .keys()
            .all(|k| k.as_str().is_some_and(|k| GROUP_KEYS.contains(&k))),
        _ => false,
    };
    let map = SourceMap::parse(text)
        .map_err(|e| e.into_error(path, "Ansible would keep only the last one; merge the two"))?;
    if top.contains_key("plugin") {
        return Err(Error::input(
            path,
            map.key(&["plugin"]),
            "this is an inventory plugin's configuration; quiesce does not run plugins",
            format!(
                "write the plugin's result to a static file and use that: ansible-inventory -i {} --list --yaml > hosts.yml",
                path.display()
            ),
        ));
    }
    let ansible = top
        .iter()
        .any(|(k, _)| k.as_str().is_none_or(|k| !QUIESCE_SECTIONS.contains(&k)))
        && top.values().all(group_shaped);
    if !ansible {
        return Ok(None);
    }
    let mut doc = Doc::default();
    doc.group("all", Pos { line: 1, column: 1 });
    for (name, body) in top {
        let name = key_text(name);
        let at = vec![name.clone()];
        if name != "all" {
            doc.add_child("all", &name, map.key(&refs(&at)));
        }
        yaml_group(&mut doc, &map, &name, body, at, path)?;
    }
    Ok(Some(doc))
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

pub(super) fn key_text(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn yaml_group(
    doc: &mut Doc,
    map: &SourceMap,
    name: &str,
    body: &serde_yaml::Value,
    at: Vec<String>,
    path: &Path,
) -> Result<(), Error> {
    let pos = map.key(&refs(&at));
    doc.group(name, pos);
    let Some(body) = body.as_mapping() else {
        return Ok(());
    };
    for (key, value) in body {
        let key = key_text(key);
        let mut here = at.clone();
        here.push(key.clone());
        match key.as_str() {
            "vars" => {
                for (var, value) in value.as_mapping().into_iter().flatten() {
                    let var = key_text(var);
                    let mut vat = here.clone();
                    vat.push(var.clone());
                    let parsed = yaml_value(value);
                    doc.group(name, pos).vars.insert(
                        var,
                        Var {
                            value: parsed,
                            pos: map.value(&refs(&vat)),
                        },
                    );
                }
            }
            "hosts" => {
                for (host, vars) in value.as_mapping().into_iter().flatten() {
                    let pattern = key_text(host);
                    let mut hat = here.clone();
                    hat.push(pattern.clone());
                    let hpos = map.key(&refs(&hat));
                    let (names, port) = expand_pattern(&pattern)
                        .map_err(|why| Error::input(path, hpos, why, RANGE_HINT))?;
                    for host in names {
                        doc.add_host(name, &host, hpos);
                        let own = doc.host_vars.entry(host.clone()).or_default();
                        if let Some(port) = port {
                            own.insert(
                                "ansible_port".into(),
                                Var {
                                    value: Value::Int(port.into()),
                                    pos: hpos,
                                },
                            );
                        }
                        for (var, value) in vars.as_mapping().into_iter().flatten() {
                            let var = key_text(var);
                            let mut vat = hat.clone();
                            vat.push(var.clone());
                            own.insert(
                                var,
                                Var {
                                    value: yaml_value(value),
                                    pos: map.value(&refs(&vat)),
                                },
                            );
                        }
                    }
                }
            }
            "children" => {
                for (child, body) in value.as_mapping().into_iter().flatten() {
                    let child = key_text(child);
                    let mut cat = here.clone();
                    cat.push(child.clone());
                    doc.add_child(name, &child, map.key(&refs(&cat)));
                    yaml_group(doc, map, &child, body, cat, path)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn yaml_value(value: &serde_yaml::Value) -> Value {
    match value {
        serde_yaml::Value::String(s) => Value::Text(s.clone()),
        serde_yaml::Value::Bool(b) => Value::Bool(*b),
        serde_yaml::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Text(n.to_string()),
        },
        serde_yaml::Value::Sequence(items) => Value::List(items.iter().map(yaml_value).collect()),
        _ => Value::Other,
    }
}

pub(super) const RANGE_HINT: &str =
    "write host ranges as Ansible does: db[01:20].example.net, node[a:f], web[1:9:2]";

/// The most hosts one range may make (a typo should not make millions).
const MAX_RANGE: usize = 100_000;

/// A host pattern: its names (ranges expanded, as Ansible does) and its
/// `:port`, if any.
pub(super) fn expand_pattern(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    // `host:port`, where the `:` is outside every range and the host is not
    // IPv6: the colons outside brackets, at their byte positions in `pattern`.
    let mut depth = 0i32;
    let colons: Vec<usize> = pattern
        .char_indices()
        .filter_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            (c == ':' && depth <= 0).then_some(i)
        })
        .collect();
    let (name, port) = match colons.as_slice() {
        [i] => {
            let port = &pattern[i + 1..];
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{pattern}`: `{port}` is not a port"))?;
            (&pattern[..*i], Some(port))
        }
        _ => (pattern, None),
    };
    let mut names = Vec::new();
    expand_range(name, &mut names)?;
    Ok((names, port))
}

fn expand_range(name: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = name.find('[') else {
        out.push(name.to_string());
        return Ok(());
    };
    let Some(close) = name[open..].find(']').map(|c| open + c) else {
        out.push(name.to_string());
        return Ok(());
    };
    let inner = &name[open + 1..close];
    if !inner.contains(':') {
        out.push(name.to_string());
        return Ok(());
    }
    let (head, tail) = (&name[..open], &name[close + 1..]);
    let bounds: Vec<&str> = inner.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!(
            "`{name}`: a host range is begin:end or begin:end:step"
        ));
    }
    let begin = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(format!("`{name}`: a host range needs an end"));
    }
    let step: usize = match bounds.get(2) {
        None => 1,
        Some(s) => s
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("`{name}`: step `{s}` is not a positive number"))?,
    };
    let letters = |s: &str| s.len() == 1 && s.chars().all(|c| c.is_ascii_alphabetic());
    let items: Vec<String> = if letters(begin) && letters(end) {
        const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let (b, e) = (
            ALPHABET.find(begin).unwrap_or(0),
            ALPHABET.find(end).unwrap_or(0),
        );
        if b > e {
            return Err(format!("`{name}`: a host range must have begin <= end"));
        }
        ALPHABET[b..=e]
            .chars()
            .step_by(step)
            .map(String::from)
            .collect()
    } else {
        let (b, e): (u64, u64) = match (begin.parse(), end.parse()) {
            (Ok(b), Ok(e)) => (b, e),
            _ => {
                return Err(format!(
                    "`{name}`: `{inner}` is not a range of numbers or letters"
                ));
            }
        };
        let width = if begin.len() > 1 && begin.starts_with('0') {
            if begin.len() != end.len() {
                return Err(format!(
                    "`{name}`: begin and end of a zero-padded range must have the same width"
                ));
            }
            begin.len()
        } else {
            0
        };
        if e >= b && (e - b) as usize / step >= MAX_RANGE {
            return Err(format!("`{name}` makes more than {MAX_RANGE} hosts"));
        }
        (b..=e)
            .step_by(step)
            .map(|i| format!("{i:0width$}"))
            .collect()
    };
    for item in items {
        expand_range(&format!("{head}{item}{tail}"), out)?;
        if out.len() > MAX_RANGE {
            return Err(format!("`{name}` makes more than {MAX_RANGE} hosts"));
        }
    }
    Ok(())
}

/// Ansible's precedence: `all`, then the host's groups by depth, priority
/// (`ansible_group_priority`) and name, each later one winning, then the
/// host's own vars.
fn host_vars(doc: &Doc, host: &str, depth: &HashMap<&str, usize>) -> IndexMap<String, Var> {
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, g) in &doc.groups {
        for c in &g.children {
            parents.entry(c.as_str()).or_default().push(name);
        }
    }
    let mut mine: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = doc
        .groups
        .iter()
        .filter(|(_, g)| g.hosts.iter().any(|h| h == host))
        .map(|(n, _)| n.as_str())
        .collect();
    todo.push("all");
    while let Some(g) = todo.pop() {
        if mine.insert(g) {
            todo.extend(parents.get(g).into_iter().flatten());
        }
    }
    let priority = |g: &str| -> i64 {
        match doc.groups[g]
            .vars
            .get("ansible_group_priority")
            .map(|v| &v.value)
        {
            Some(Value::Int(i)) => *i,
            Some(Value::Text(t)) => t.trim().parse().unwrap_or(1),
            _ => 1,
        }
    };
    let mut ordered: Vec<&str> = mine.into_iter().collect();
    ordered.sort_by_key(|g| {
        (
            depth.get(g).copied().unwrap_or(0),
            priority(g),
            g.to_string(),
        )
    });
    let mut vars = IndexMap::new();
    for g in ordered {
        for (k, v) in &doc.groups[g].vars {
            vars.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in doc.host_vars.get(host).into_iter().flatten() {
        vars.insert(k.clone(), v.clone());
    }
    vars
}

/// Each group's depth below `all` (the longest path, as Ansible counts it).
fn depths<'a>(doc: &'a Doc, path: &Path) -> Result<HashMap<&'a str, usize>, Error> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    fn visit<'a>(
        doc: &'a Doc,
        group: &'a str,
        d: usize,
        stack: &mut Vec<&'a str>,
        depth: &mut HashMap<&'a str, usize>,
        path: &Path,
    ) -> Result<(), Error> {
        if stack.contains(&group) {
            return Err(Error::input(
                path,
                doc.groups[group].pos,
                format!(
                    "group `{group}` is its own child ({} → {group})",
                    stack.join(" → ")
                ),
                "Ansible refuses this loop too; remove one of the children entries",
            ));
        }
        if depth.get(group).is_some_and(|old| *old >= d) {
            return Ok(());
        }
        depth.insert(group, d);
        stack.push(group);
        for child in &doc.groups[group].children {
            visit(doc, child, d + 1, stack, depth, path)?;
        }
        stack.pop();
        Ok(())
    }
    visit(doc, "all", 0, &mut Vec::new(), &mut depth, path)?;
    Ok(depth)
}

/// Every host under a group, its children's included, in host order.
fn members(doc: &Doc, group: &str) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo = vec![group];
    let mut groups = HashSet::new();
    while let Some(g) = todo.pop() {
        if groups.insert(g) {
            for h in &doc.groups[g].hosts {
                seen.insert(h);
            }
            todo.extend(doc.groups[g].children.iter().map(String::as_str));
        }
    }
    doc.hosts
        .keys()
        .filter(|h| seen.contains(h.as_str()))
        .cloned()
        .collect()
}

/// The `ansible_*` variables quiesce reads (each has its arm in `resolve`;
/// a test sets each alone and sees it change the inventory). Only these and
/// the `quiesce_*` ones must not be Jinja templates.
const ANSIBLE_VARS: [&str; 12] = [
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_become",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_connection",
];

const QUIESCE_VARS: [&str; 17] = [
    "quiesce_platform",
    "quiesce_instances",
    "quiesce_vm",
    "quiesce_hook_dir",
    "quiesce_log_dir",
    "quiesce_freeze_timeout",
    "quiesce_iris_container",
    "quiesce_container_engine",
    "quiesce_iris_user",
    "quiesce_mirror",
    "quiesce_qos_timeout",
    "quiesce_jump",
    "quiesce_become",
    "quiesce_identity_file",
    "quiesce_refuse_vmware_primary",
    "quiesce_framework",
    "quiesce_container_log_dir",
];

/// Ansible's connections that are SSH.
const SSH_CONNECTIONS: [&str; 5] = [
    "ssh",
    "smart",
    "paramiko",
    "paramiko_ssh",
    "ansible.builtin.ssh",
];

fn resolve(path: &Path, doc: Doc) -> Result<Converted, Error> {
    let depth = depths(&doc, path)?;
    let mut map = SourceMap::default();
    let mut raw = RawInventory {
        defaults: None,
        hosts: IndexMap::new(),
        groups: IndexMap::new(),
        mirrors: IndexMap::new(),
        esxi_hosts: IndexMap::new(),
    };
    let mut aliases = HashMap::new();
    let mut connections = HashMap::new();
    let mut mirror_qos: IndexMap<String, Option<(String, Pos)>> = IndexMap::new();
    for (name, pos) in &doc.hosts {
        map.set(&["hosts", name], *pos, *pos);
        let vars = host_vars(&doc, name, &depth);
        let mut s = RawSettings::default();
        let mut mirror = None;
        let mut qos = None;
        for (key, var) in &vars {
            let at = |field: &str, map: &mut SourceMap| {
                map.set(&["hosts", name, field], var.pos, var.pos)
            };
            let err = |message: String, hint: &str| Error::input(path, var.pos, message, hint);
            if key.starts_with("quiesce_") && !QUIESCE_VARS.contains(&key.as_str()) {
                let near = QUIESCE_VARS
                    .iter()
                    .min_by_key(|k| strsim_distance(k, key))
                    .copied()
                    .unwrap_or("");
                return Err(err(
                    format!("`{key}` is not a quiesce variable"),
                    &format!(
                        "did you mean `{near}`? quiesce reads {}",
                        QUIESCE_VARS.join(", ")
                    ),
                ));
            }
            let needed = key.starts_with("quiesce_") || ANSIBLE_VARS.contains(&key.as_str());
            if !needed {
                continue;
            }
            if let Some(t) = templated(&var.value) {
                return Err(err(
                    format!(
                        "`{key}` is a Jinja template ({t}); quiesce needs its value and does not evaluate templates"
                    ),
                    "write the value itself for this host or group (other variables may stay templates: quiesce ignores them)",
                ));
            }
            let text = || {
                text_of(&var.value).ok_or_else(|| {
                    err(
                        format!("`{key}` must be a text, number or true/false"),
                        "write a single value",
                    )
                })
            };
            match key.as_str() {
                "ansible_host" | "ansible_ssh_host" => {
                    if key == "ansible_ssh_host" && vars.contains_key("ansible_host") {
                        continue;
                    }
                    aliases.insert(name.clone(), (text()?, var.pos));
                }
                "ansible_port" | "ansible_ssh_port" => {
                    if key == "ansible_ssh_port" && vars.contains_key("ansible_port") {
                        continue;
                    }
                    let t = text()?;
                    s.port = Some(t.trim().parse().map_err(|_| {
                        err(
                            format!("{key} `{t}` is not a port number"),
                            "a TCP port from 1 to 65535",
                        )
                    })?);
                    at("port", &mut map);
                }
                "ansible_user" | "ansible_ssh_user" => {
                    if key == "ansible_ssh_user" && vars.contains_key("ansible_user") {
                        continue;
                    }
                    s.user = Some(text()?);
                    at("user", &mut map);
                }
                "ansible_become" | "quiesce_become" => {
                    if key == "ansible_become" && vars.contains_key("quiesce_become") {
                        continue;
                    }
                    s.r#become = Some(boolean(&var.value).ok_or_else(|| {
                        err(
                            format!("{key} must be true or false"),
                            "write true or false (yes/no)",
                        )
                    })?);
                    at("become", &mut map);
                }
                "ansible_ssh_private_key_file"
                | "ansible_private_key_file"
                | "quiesce_identity_file" => {
                    s.identity_file = Some(text()?);
                    at("identity_file", &mut map);
                }
                "ansible_ssh_common_args" | "ansible_ssh_extra_args" => {
                    if vars.contains_key("quiesce_jump") {
                        continue;
                    }
                    if let Some(jump) = jump_of_ssh_args(&text()?).map_err(|why| {
                        err(format!("{key}: {why}"), "quiesce reads -J HOPS, -o ProxyJump=HOPS and -o ProxyCommand='ssh -W %h:%p BASTION' from these; set quiesce_jump to override")
                    })? {
                        s.jump = Some(JumpText::One(jump));
                        at("jump", &mut map);
                    }
                }
                "quiesce_jump" => {
                    s.jump = Some(match &var.value {
                        Value::List(items) => {
                            JumpText::List(items.iter().filter_map(text_of).collect())
                        }
                        _ => JumpText::One(text()?),
                    });
                    at("jump", &mut map);
                }
                "ansible_connection" => {
                    let t = text()?;
                    if !SSH_CONNECTIONS.contains(&t.as_str()) {
                        connections.insert(name.clone(), t);
                    }
                }
                "quiesce_platform" => {
                    s.platform = Some(match text()?.to_ascii_lowercase().as_str() {
                        "iris" => Platform::Iris,
                        "cache" => Platform::Cache,
                        other => {
                            return Err(err(
                                format!("quiesce_platform `{other}` is not iris or cache"),
                                "write iris or cache",
                            ));
                        }
                    });
                    at("platform", &mut map);
                }
                "quiesce_framework" => {
                    s.framework = Some(match text()?.as_str() {
                        "vmware" => Framework::Vmware,
                        "qemu-ga" => Framework::QemuGa,
                        "none" => Framework::None,
                        other => {
                            return Err(err(
                                format!(
                                    "quiesce_framework `{other}` is not vmware, qemu-ga or none"
                                ),
                                "write vmware (VMware Tools runs the hooks), qemu-ga (qemu-guest-agent does) or none (only quiesce does)",
                            ));
                        }
                    });
                    at("framework", &mut map);
                }
                "quiesce_container_engine" => {
                    s.container_engine = Some(match text()?.as_str() {
                        "docker" => ContainerEngine::Docker,
                        "podman" => ContainerEngine::Podman,
                        other => {
                            return Err(err(
                                format!(
                                    "quiesce_container_engine `{other}` is not docker or podman"
                                ),
                                "write docker or podman",
                            ));
                        }
                    });
                    at("container_engine", &mut map);
                }
                "quiesce_instances" => {
                    let list = match &var.value {
                        Value::List(items) => items.iter().filter_map(text_of).collect(),
                        _ => text()?
                            .split(',')
                            .map(|i| i.trim().to_string())
                            .filter(|i| !i.is_empty())
                            .collect(),
                    };
                    s.instances = Some(list);
                    at("instances", &mut map);
                }
                "quiesce_freeze_timeout" => {
                    s.freeze_timeout = Some(duration_text(&var.value).ok_or_else(|| {
                        err(format!("{key} must be a duration"), "write e.g. 10m or 600")
                    })?);
                    at("freeze_timeout", &mut map);
                }
                "quiesce_vm" => {
                    s.vm = Some(text()?);
                    at("vm", &mut map);
                }
                "quiesce_hook_dir" => {
                    s.hook_dir = Some(text()?);
                    at("hook_dir", &mut map);
                }
                "quiesce_log_dir" => {
                    s.log_dir = Some(text()?);
                    at("log_dir", &mut map);
                }
                "quiesce_container_log_dir" => {
                    s.container_log_dir = Some(text()?);
                    at("container_log_dir", &mut map);
                }
                "quiesce_iris_container" => {
                    s.iris_container = Some(text()?);
                    at("iris_container", &mut map);
                }
                "quiesce_refuse_vmware_primary" => {
                    s.refuse_vmware_primary = Some(boolean(&var.value).ok_or_else(|| {
                        err(
                            format!("{key} must be true or false"),
                            "write true or false (yes/no)",
                        )
                    })?);
                    at("refuse_vmware_primary", &mut map);
                }
                "quiesce_iris_user" => {
                    s.iris_user = Some(text()?);
                    at("iris_user", &mut map);
                }
                "quiesce_mirror" => mirror = Some((text()?, var.pos)),
                "quiesce_qos_timeout" => qos = Some((text()?, var.pos)),
                _ => {}
            }
        }
        if let Some((mirror, mpos)) = mirror {
            let index = raw.mirrors.get(&mirror).map_or(0, |m| m.members.len());
            map.set(&["mirrors", &mirror], mpos, mpos);
            map.set(
                &["mirrors", &mirror, "members", &index.to_string()],
                mpos,
                mpos,
            );
            let entry = raw
                .mirrors
                .entry(mirror.clone())
                .or_insert_with(|| RawMirror {
                    members: Vec::new(),
                    qos_timeout: None,
                });
            entry.members.push(name.clone());
            match (mirror_qos.get(&mirror), &qos) {
                (None, _) => {
                    if let Some((q, qpos)) = &qos {
                        map.set(&["mirrors", &mirror, "qos_timeout"], *qpos, *qpos);
                        entry.qos_timeout = Some(DurationText::Text(q.clone()));
                    }
                    mirror_qos.insert(mirror.clone(), qos.clone());
                }
                (Some(first), now)
                    if first.as_ref().map(|f| &f.0) != now.as_ref().map(|n| &n.0) =>
                {
                    let pos = now.as_ref().map_or(mpos, |n| n.1);
                    return Err(Error::input(
                        path,
                        pos,
                        format!(
                            "host `{name}` gives mirror `{mirror}` quiesce_qos_timeout {}, another member {}",
                            now.as_ref().map_or("(none)", |n| n.0.as_str()),
                            first.as_ref().map_or("(none)".to_string(), |f| format!(
                                "{} (line {})",
                                f.0, f.1.line
                            ))
                        ),
                        "a mirror has one QoS timeout: set quiesce_qos_timeout once, on a group holding all its members",
                    ));
                }
                _ => {}
            }
        } else if let Some((_, qpos)) = qos {
            return Err(Error::input(
                path,
                qpos,
                format!("host `{name}` has quiesce_qos_timeout but no quiesce_mirror"),
                "set quiesce_mirror: NAME for the mirror's members",
            ));
        }
        raw.hosts.insert(name.clone(), Some(s));
    }
    // Hosts in no group but `all` are `ungrouped`, as Ansible reconciles them.
    let grouped: HashSet<&str> = doc
        .groups
        .iter()
        .filter(|(n, _)| *n != "all" && *n != "ungrouped")
        .flat_map(|(_, g)| g.hosts.iter().map(String::as_str))
        .collect();
    let ungrouped: Vec<String> = doc
        .hosts
        .keys()
        .filter(|h| !grouped.contains(h.as_str()))
        .cloned()
        .collect();
    for (group, body) in &doc.groups {
        if group == "all" {
            continue;
        }
        let hosts = if group == "ungrouped" {
            ungrouped.clone()
        } else {
            members(&doc, group)
        };
        if group == "ungrouped" && hosts.is_empty() {
            continue;
        }
        map.set(&["groups", group], body.pos, body.pos);
        raw.groups
            .insert(group.clone(), RawGroup { hosts, vars: None });
    }
    Ok(Converted {
        raw,
        map,
        aliases,
        connections,
    })
}

fn strsim_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut prev = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let cur = row[j];
            row[j] = (row[j] + 1)
                .min(row[j - 1] + 1)
                .min(prev + usize::from(a[i - 1] != b[j - 1]));
            prev = cur;
        }
    }
    row[b.len()]
}

fn templated(value: &Value) -> Option<String> {
    match value {
        Value::Text(t) if t.contains("{{") || t.contains("{%") => Some(t.clone()),
        Value::List(items) => items.iter().find_map(templated),
        _ => None,
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Ansible's booleans: true/false, yes/no, on/off, 1/0 (any case).
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        Value::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
            "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn duration_text(value: &Value) -> Option<DurationText> {
    match value {
        Value::Int(i) if *i >= 0 => Some(DurationText::Seconds(*i as u64)),
        Value::Text(t) => Some(match t.trim().parse::<u64>() {
            Ok(s) => DurationText::Seconds(s),
            Err(_) => DurationText::Text(t.clone()),
        }),
        _ => None,
    }
}

/// The bastions in `ansible_ssh_common_args`: `-J HOPS`, `-o ProxyJump=HOPS`,
/// or the `-o ProxyCommand="ssh -W %h:%p [-q] BASTION"` idiom. Other options
/// are not quiesce's to follow (host-key options least of all).
pub(super) fn jump_of_ssh_args(args: &str) -> Result<Option<String>, String> {
    let words = super::ansible_ini::split_words(args).map_err(|e| e.to_string())?;
    let mut i = 0;
    let mut jump = None;
    while i < words.len() {
        let w = &words[i];
        let option = if w == "-o" {
            i += 1;
            words.get(i).cloned()
        } else if let Some(rest) = w.strip_prefix("-o") {
            Some(rest.to_string())
        } else if w == "-J" {
            i += 1;
            jump = jump.or(words.get(i).cloned());
            None
        } else if let Some(rest) = w.strip_prefix("-J") {
            jump = jump.or(Some(rest.to_string()));
            None
        } else {
            None
        };
        i += 1;
        let Some(option) = option else { continue };
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => {
                let mut parts = option.splitn(2, char::is_whitespace);
                (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").trim().to_string(),
                )
            }
        };
        match key.to_ascii_lowercase().as_str() {
            "proxyjump" => jump = jump.or(Some(value)),
            "proxycommand" => {
                let inner = super::ansible_ini::split_words(&value).map_err(|e| e.to_string())?;
                let bastion = match inner.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    ["ssh", "-W", "%h:%p", b]
                    | ["ssh", "-W", "%h:%p", "-q", b]
                    | ["ssh", "-q", "-W", "%h:%p", b] => b.to_string(),
                    _ => {
                        return Err(format!(
                            "ProxyCommand `{value}` is a command quiesce does not run"
                        ));
                    }
                };
                jump = jump.or(Some(bastion));
            }
            _ => {}
        }
    }
    Ok(jump)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_as_ansible_does() {
        let names = |p: &str| expand_pattern(p).unwrap().0;
        assert_eq!(names("db[01:03].x"), ["db01.x", "db02.x", "db03.x"]);
        assert_eq!(names("n[a:c]"), ["na", "nb", "nc"]);
        assert_eq!(names("w[1:9:4]"), ["w1", "w5", "w9"]);
        assert_eq!(names("r[1:2]-[a:b]"), ["r1-a", "r1-b", "r2-a", "r2-b"]);
        assert_eq!(expand_pattern("db[1:2]:2222").unwrap().1, Some(2222));
        assert!(expand_pattern("db[01:100]").is_err());
        assert!(expand_pattern("db[1:9999999]").is_err());
    }

    #[test]
    fn bastions_are_read_from_ssh_args() {
        assert_eq!(
            jump_of_ssh_args("-o ProxyJump=ops@b1:2222")
                .unwrap()
                .unwrap(),
            "ops@b1:2222"
        );
        assert_eq!(
            jump_of_ssh_args("-J b1,b2 -o StrictHostKeyChecking=yes")
                .unwrap()
                .unwrap(),
            "b1,b2"
        );
        assert_eq!(
            jump_of_ssh_args("-o ProxyCommand=\"ssh -W %h:%p -q ops@bastion\"")
                .unwrap()
                .unwrap(),
            "ops@bastion"
        );
        assert!(jump_of_ssh_args("-o ProxyCommand='nc -X 5 %h %p'").is_err());
        assert_eq!(jump_of_ssh_args("-o ServerAliveInterval=5").unwrap(), None);
    }

    /// A variable listed as read but without its arm in `resolve` would be
    /// checked for templates and then ignored.
    #[test]
    fn every_variable_quiesce_reads_changes_the_inventory() {
        let sample = |name: &str| match name {
            "ansible_port" | "ansible_ssh_port" => "2222",
            "ansible_become" | "quiesce_become" | "quiesce_refuse_vmware_primary" => "true",
            "ansible_connection" => "local",
            "ansible_ssh_common_args" | "ansible_ssh_extra_args" => "'-J ops@bastion'",
            "quiesce_platform" => "cache",
            "quiesce_container_engine" => "podman",
            "quiesce_framework" => "none",
            "quiesce_freeze_timeout" | "quiesce_qos_timeout" => "5m",
            "quiesce_instances" => "A1",
            _ => "/x/y",
        };
        let resolved = |vars: &str| {
            let text = format!("[db]\nh1 quiesce_mirror=M {vars}\n");
            let c = convert(Path::new("site.ini"), &text).unwrap().unwrap();
            format!("{:?} {:?} {:?}", c.raw, c.aliases, c.connections)
        };
        let plain = resolved("");
        for name in ANSIBLE_VARS.iter().chain(QUIESCE_VARS.iter()) {
            let value = if *name == "quiesce_mirror" {
                "N"
            } else {
                sample(name)
            };
            assert_ne!(
                resolved(&format!("{name}={value}")),
                plain,
                "{name} is listed as read, but changes nothing"
            );
        }
    }

    #[test]
    fn a_colon_after_wide_characters_in_a_range_is_found_where_it_is() {
        assert!(expand_pattern("[é𞹏]:x").is_err());
        assert_eq!(expand_pattern("h[é𞹏]:22").unwrap().1, Some(22));
    }

    proptest::proptest! {
        #[test]
        fn patterns_never_panic(p in "[a-z0-9\\[\\]:.-]{0,24}") {
            let _ = expand_pattern(&p);
        }

        #[test]
        fn any_text_as_a_pattern_never_panics(p in "\\PC{0,40}") {
            let _ = expand_pattern(&p);
        }
    }
}
