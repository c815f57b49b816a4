//! Where every key and value of a YAML document stands (line, column), so that
//! errors found after deserialising still point at the file; also finds duplicate keys.

use saphyr_parser::{Event, Parser};
use std::collections::HashMap;

pub use crate::output::error::Pos;

/// A document's positions, by path (`["hosts", "db-a1", "port"]`; sequence
/// items by their index as text).
#[derive(Debug, Default)]
pub struct SourceMap {
    keys: HashMap<Vec<String>, Pos>,
    values: HashMap<Vec<String>, Pos>,
}

/// Why a document could not be mapped.
#[derive(Debug, PartialEq, Eq)]
pub enum MapError {
    Syntax {
        pos: Pos,
        message: String,
    },
    DuplicateKey {
        pos: Pos,
        first: Pos,
        path: Vec<String>,
    },
}

enum Frame {
    Map {
        path: Vec<String>,
        key: Option<String>,
        seen: HashMap<String, Pos>,
    },
    Seq {
        path: Vec<String>,
        index: usize,
    },
}

impl SourceMap {
    pub fn parse(text: &str) -> Result<SourceMap, MapError> {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: HashMap<usize, String> = HashMap::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| MapError::Syntax {
                pos: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                message: e.info().to_string(),
            })?;
            let pos = Pos {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            let scalar = match &event {
                Event::Scalar(value, _, anchor, _) => {
                    if *anchor != 0 {
                        anchors.insert(*anchor, value.to_string());
                    }
                    Some(value.to_string())
                }
                // An alias of a scalar is that scalar: `*x` as a key repeats
                // the key `&x` named, and must not dodge duplicate detection.
                Event::Alias(id) => anchors.get(id).cloned(),
                Event::MappingStart(..) | Event::SequenceStart(..) => None,
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    continue;
                }
                _ => continue,
            };
            let path = match stack.last_mut() {
                None => Vec::new(),
                Some(Frame::Seq { path, index }) => {
                    let mut item = path.clone();
                    item.push(index.to_string());
                    *index += 1;
                    item
                }
                Some(Frame::Map { path, key, seen }) => match key.take() {
                    Some(key) => {
                        let mut item = path.clone();
                        item.push(key);
                        item
                    }
                    None => {
                        let name = scalar.clone().unwrap_or_else(|| "<complex key>".into());
                        let mut item = path.clone();
                        item.push(name.clone());
                        if let Some(first) = seen.insert(name.clone(), pos) {
                            return Err(MapError::DuplicateKey {
                                pos,
                                first,
                                path: item,
                            });
                        }
                        map.keys.insert(item.clone(), pos);
                        *key = Some(name);
                        if scalar.is_some() {
                            continue;
                        }
                        item
                    }
                },
            };
            map.values.insert(path.clone(), pos);
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map {
                    path,
                    key: None,
                    seen: HashMap::new(),
                }),
                Event::SequenceStart(..) => stack.push(Frame::Seq { path, index: 0 }),
                _ => {}
            }
        }
        Ok(map)
    }

    /// Records where a key and its value stand (a map built for a document
    /// read another way, such as an Ansible inventory).
    pub fn set(&mut self, path: &[&str], key: Pos, value: Pos) {
        let owned: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.keys.insert(owned.clone(), key);
        self.values.insert(owned, value);
    }

    /// Where the value at `path` starts, else the nearest enclosing value.
    pub fn value(&self, path: &[&str]) -> Pos {
        self.nearest(&self.values, path)
    }

    /// Where the key of `path` stands, else the nearest enclosing value.
    pub fn key(&self, path: &[&str]) -> Pos {
        let owned: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.keys
            .get(&owned)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }

    fn nearest(&self, table: &HashMap<Vec<String>, Pos>, path: &[&str]) -> Pos {
        let mut owned: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        loop {
            if let Some(pos) = table.get(&owned) {
                return *pos;
            }
            if owned.pop().is_none() {
                return Pos { line: 1, column: 1 };
            }
        }
    }
}

/// Reads an input file (inventory, playbook) as text. A missing file or one
/// that is not UTF-8 is bad input (exit 2), the latter with the line and
/// column of its first bad byte; other read errors are file errors.
pub fn read_input(
    path: &std::path::Path,
    what: &str,
) -> Result<String, crate::output::error::Error> {
    use crate::output::error::Error;
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Usage {
                message: format!("there is no {what} at {}", path.display()),
                hint: format!("check the path; see `quiesce --help` for how the {what} is named"),
            }
        } else {
            Error::File {
                path: path.to_path_buf(),
                action: "read",
                source,
            }
        }
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(good);
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error::input(
            path,
            Pos { line, column },
            format!("the {what} is not UTF-8 text"),
            "save it as UTF-8",
        )
    })
}

impl MapError {
    /// The error for the file at `path`, with `duplicate_hint` for a key
    /// that appears twice.
    pub fn into_error(
        self,
        path: &std::path::Path,
        duplicate_hint: &str,
    ) -> crate::output::error::Error {
        use crate::output::error::Error;
        match self {
            MapError::Syntax { pos, message } => Error::input(
                path,
                pos,
                format!("YAML syntax error: {message}"),
                "check indentation, brackets and quotes around this point",
            ),
            MapError::DuplicateKey {
                pos,
                first,
                path: key,
            } => Error::input(
                path,
                pos,
                format!(
                    "duplicate key `{}`: {} is already defined at line {}",
                    key.last().map(String::as_str).unwrap_or(""),
                    key.join("."),
                    first.line
                ),
                duplicate_hint,
            ),
        }
    }
}

/// Parses `text` (the file at `path`) into a `T`, and maps where everything
/// stands. Syntax errors, duplicate keys, unknown keys and wrong types become
/// `Error::Input` with their line and column.
pub fn load_yaml<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    text: &str,
    duplicate_hint: &str,
    docs_hint: &str,
) -> Result<(SourceMap, T), crate::output::error::Error> {
    use crate::output::error::Error;
    let map = SourceMap::parse(text).map_err(|e| e.into_error(path, duplicate_hint))?;
    let value = serde_yaml::from_str(text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or(Pos { line: 1, column: 1 });
        // serde_yaml ends its message with the position, which leads ours instead.
        let message = e.to_string();
        let message = message
            .rfind(" at line ")
            .map(|i| message[..i].to_string())
            .unwrap_or(message);
        let hint = match did_you_mean(&message) {
            Some(near) => format!("did you mean `{near}`? {docs_hint}"),
            None => docs_hint.to_string(),
        };
        Error::input(path, pos, message, hint)
    })?;
    Ok((map, value))
}

/// For serde's "unknown field `X`, expected one of `A`, `B`…": the expected
/// name nearest to X, if it is a likely typo (edit distance ≤ 2).
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest
        .split("expected one of ")
        .nth(1)
        .or_else(|| rest.split("expected ").nth(1))?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| (edit_distance(unknown, name), name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, name)| name.to_string())
}

/// Levenshtein distance over characters (the names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "defaults: { user: root }\nhosts:\n  db-a1:\n    address: 10.0.0.1\n  db-a2: { address: x, port: 22 }\ngroups:\n  app: { hosts: [db-a1, db-a2] }\n";

    #[test]
    fn a_typo_gets_the_nearest_key() {
        let message = "hosts.db1: unknown field `adress`, expected one of `address`, `vm`, `port`";
        assert_eq!(did_you_mean(message).as_deref(), Some("address"));
        assert_eq!(
            did_you_mean("unknown field `zzzzzz`, expected one of `address`, `vm`"),
            None
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn finds_keys_and_values() {
        let map = SourceMap::parse(DOC).unwrap();
        assert_eq!(map.key(&["hosts", "db-a1"]), Pos { line: 3, column: 3 });
        assert_eq!(
            map.value(&["hosts", "db-a1", "address"]),
            Pos {
                line: 4,
                column: 14
            }
        );
        assert_eq!(
            map.value(&["hosts", "db-a2", "port"]),
            Pos {
                line: 5,
                column: 30
            }
        );
        assert_eq!(
            map.value(&["groups", "app", "hosts", "1"]),
            Pos {
                line: 7,
                column: 25
            }
        );
        assert_eq!(
            map.value(&["defaults", "user"]),
            Pos {
                line: 1,
                column: 19
            }
        );
        assert_eq!(map.value(&["hosts", "nope", "x"]), map.value(&["hosts"]));
    }

    #[test]
    fn reports_duplicate_keys_where_they_repeat() {
        let err = SourceMap::parse("hosts:\n  a: {}\n  b: {}\n  a: {}\n").unwrap_err();
        assert_eq!(
            err,
            MapError::DuplicateKey {
                pos: Pos { line: 4, column: 3 },
                first: Pos { line: 2, column: 3 },
                path: vec!["hosts".into(), "a".into()]
            }
        );
    }

    #[test]
    fn reports_syntax_errors_with_a_position() {
        assert!(matches!(
            SourceMap::parse("a: [1, 2\nb: c\n"),
            Err(MapError::Syntax { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = SourceMap::parse(&text);
        }

        #[test]
        fn never_panics_on_yamlish_text(text in "[-:{}\\[\\],&*!|>'\" \na-z0-9#]{0,120}") {
            let _ = SourceMap::parse(&text);
        }
    }
}
