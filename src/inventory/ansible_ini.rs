//! Ansible's INI inventories: `[group]`, `[group:vars]`, `[group:children]`,
//! hosts with inline `key=value` vars (Python literals, as Ansible reads
//! them), host ranges and `host:port`.

use super::ansible::{Doc, RANGE_HINT, Value, Var, expand_pattern};
use crate::inventory::source_map::Pos;
use crate::output::error::Error;
use std::path::Path;

/// An INI inventory starts (after comments) with a `[section]`, or is a
/// list of host lines that no YAML mapping would be.
pub(super) fn looks_like_ini(text: &str) -> bool {
    let mut significant = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && *l != "---");
    match significant.next() {
        Some(first) if is_section(first) => true,
        Some(first) => {
            // Hosts before any section: `name [key=value ...]`, no YAML `key:`.
            !first.contains(": ")
                && !first.ends_with(':')
                && !first.starts_with('{')
                && !first.starts_with('[')
                && (first.contains('=') || !first.contains(':'))
                && text.lines().any(|l| is_section(l.trim()))
        }
        None => false,
    }
}

fn is_section(line: &str) -> bool {
    line.starts_with('[')
        && line.ends_with(']')
        && line.len() > 2
        && !line[1..line.len() - 1]
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '[' | ']' | ',' | '{' | '}' | '"' | '\''))
}

enum State {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Doc, Error> {
    let mut doc = Doc::default();
    doc.group("all", Pos { line: 1, column: 1 });
    doc.group("ungrouped", Pos { line: 1, column: 1 });
    doc.add_child("all", "ungrouped", Pos { line: 1, column: 1 });
    let mut state = State::Hosts("ungrouped".into());
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let column = raw.len() - raw.trim_start().len() + 1;
        let pos = Pos {
            line: line_no,
            column,
        };
        let err = |message: String, hint: &str| Error::input(path, pos, message, hint);
        if is_section(trimmed) {
            let inner = &trimmed[1..trimmed.len() - 1];
            let (name, kind) = match inner.rsplit_once(':') {
                Some((n, k)) => (n.trim(), Some(k.trim())),
                None => (inner.trim(), None),
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(err(
                    format!("`{trimmed}` is not a group name"),
                    "write [group], [group:vars] or [group:children]",
                ));
            }
            if name != "all" {
                doc.add_child_if_new("all", name, pos);
            }
            doc.group(name, pos);
            state = match kind {
                None => State::Hosts(name.into()),
                Some("vars") => State::Vars(name.into()),
                Some("children") => State::Children(name.into()),
                Some(other) => {
                    return Err(err(
                        format!("section suffix `:{other}` is not vars or children"),
                        "write [group], [group:vars] or [group:children]",
                    ));
                }
            };
            continue;
        }
        match &state {
            State::Hosts(group) => {
                let offset = raw.len() - raw.trim_start().len();
                let words =
                    split_words_at(trimmed).map_err(|why| err(why.into(), "close the quote"))?;
                let Some((pattern, _)) = words.first() else {
                    continue;
                };
                let (names, port) = expand_pattern(pattern).map_err(|why| err(why, RANGE_HINT))?;
                let mut vars = Vec::new();
                for (word, start) in &words[1..] {
                    let Some((k, v)) = word.split_once('=') else {
                        return Err(err(
                            format!("`{word}` is not a key=value host variable"),
                            "write host variables as key=value after the host name",
                        ));
                    };
                    let col = offset + start + 1;
                    vars.push((
                        k.to_string(),
                        Var {
                            value: literal(v),
                            pos: Pos {
                                line: line_no,
                                column: col + k.len() + 1,
                            },
                        },
                    ));
                }
                for name in names {
                    doc.add_host(group, &name, pos);
                    let own = doc.host_vars.entry(name).or_default();
                    if let Some(port) = port {
                        own.insert(
                            "ansible_port".into(),
                            Var {
                                value: Value::Int(port.into()),
                                pos,
                            },
                        );
                    }
                    for (k, v) in &vars {
                        own.insert(k.clone(), v.clone());
                    }
                }
            }
            State::Vars(group) => {
                let Some((k, v)) = trimmed.split_once('=') else {
                    return Err(err(
                        format!("`{trimmed}` is not a key=value variable"),
                        "a [group:vars] section holds key=value lines",
                    ));
                };
                let value_col = raw.find('=').map_or(column, |c| {
                    c + 2 + raw[c + 1..].len() - raw[c + 1..].trim_start().len()
                });
                let var = Var {
                    value: literal(v.trim()),
                    pos: Pos {
                        line: line_no,
                        column: value_col,
                    },
                };
                let group = group.clone();
                doc.group(&group, pos)
                    .vars
                    .insert(k.trim().to_string(), var);
            }
            State::Children(group) => {
                let child = trimmed.split_whitespace().next().unwrap_or(trimmed);
                let group = group.clone();
                doc.add_child(&group, child, pos);
            }
        }
    }
    Ok(doc)
}

impl Doc {
    /// A group under `all` only if no other group has claimed it yet (INI
    /// sections name groups that `:children` may place elsewhere).
    fn add_child_if_new(&mut self, parent: &str, child: &str, pos: Pos) {
        if !self.groups.contains_key(child) {
            self.add_child(parent, child, pos);
        }
    }
}

/// A value as Python's `ast.literal_eval` would read the simple cases
/// (numbers, True/False, quoted strings); anything else stays text.
fn literal(text: &str) -> Value {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::Int(i);
    }
    match t {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        _ => {}
    }
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return Value::Text(t[1..t.len() - 1].to_string());
        }
    }
    Value::Text(t.to_string())
}

/// Splits as Python's `shlex.split(comments=True)`: whitespace, quotes,
/// backslash escapes, `#` at the start of a word begins a comment.
pub(super) fn split_words(text: &str) -> Result<Vec<String>, &'static str> {
    Ok(split_words_at(text)?.into_iter().map(|(w, _)| w).collect())
}

/// `split_words`, each word with the byte offset where it starts.
pub(super) fn split_words_at(text: &str) -> Result<Vec<(String, usize)>, &'static str> {
    let mut words = Vec::new();
    let mut chars = text.char_indices().map(|(i, c)| (c, i)).peekable();
    loop {
        while chars.peek().is_some_and(|(c, _)| c.is_whitespace()) {
            chars.next();
        }
        let start = match chars.peek() {
            None | Some(('#', _)) => return Ok(words),
            Some((_, i)) => *i,
        };
        let mut word = String::new();
        let mut chars_only = std::iter::from_fn(|| chars.next().map(|(c, _)| c)).peekable();
        while let Some(&c) = chars_only.peek() {
            if c.is_whitespace() {
                break;
            }
            chars_only.next();
            match c {
                '\'' => loop {
                    match chars_only.next() {
                        Some('\'') => break,
                        Some(o) => word.push(o),
                        None => return Err("unterminated quote"),
                    }
                },
                '"' => loop {
                    match chars_only.next() {
                        Some('"') => break,
                        Some('\\') => match chars_only.next() {
                            Some(n) if n == '"' || n == '\\' => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n)
                            }
                            None => return Err("unterminated quote"),
                        },
                        Some(o) => word.push(o),
                        None => return Err("unterminated quote"),
                    }
                },
                '\\' => {
                    if let Some(n) = chars_only.next() {
                        word.push(n)
                    }
                }
                other => word.push(other),
            }
        }
        words.push((word, start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_is_told_from_yaml() {
        assert!(looks_like_ini("# fleet\n[db]\ndb1 ansible_host=10.0.0.1\n"));
        assert!(looks_like_ini("solo ansible_port=2222\n[db]\ndb1\n"));
        assert!(!looks_like_ini("hosts:\n  a: { address: 10.0.0.1 }\n"));
        assert!(!looks_like_ini("all:\n  hosts:\n    a:\n"));
        assert!(!looks_like_ini("[1, 2, 3]\n"));
    }

    #[test]
    fn words_split_like_shlex() {
        assert_eq!(
            split_words("db1 a=1 b='x y' c=\"q\\\"z\" # note").unwrap(),
            ["db1", "a=1", "b=x y", "c=q\"z"]
        );
        assert!(split_words("db1 a='open").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(Path::new("h.ini"), &text);
        }
    }
}
