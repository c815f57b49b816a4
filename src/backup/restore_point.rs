//! Where a journal restore of one instance's backup starts: the journal file
//! ExternalFreeze switched to and the offset of the marker it set, as the
//! freeze hook reports them (`quiesce-restore INST FILE OFFSET`). They travel
//! with the snapshot (its description or tags) and the journal, so a restore,
//! or `verify`, knows where to begin without the instance's LogFile.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_offset: Option<u64>,
}

impl RestorePoint {
    /// Every well-formed `quiesce-restore` line of a freeze's output. The
    /// text comes from the VM: anything but an instance name, a plain path
    /// and a number is dropped, never passed on.
    pub fn parse(stdout: &str) -> Vec<RestorePoint> {
        stdout
            .lines()
            .filter_map(|line| {
                let mut words = line.trim_end().strip_prefix("quiesce-restore ")?.split(' ');
                let (instance, file, offset) = (words.next()?, words.next()?, words.next()?);
                if words.next().is_some() || !plain_name(instance) {
                    return None;
                }
                Some(RestorePoint {
                    instance: instance.to_string(),
                    journal_file: plain_path(file).then(|| file.to_string()),
                    marker_offset: offset.parse().ok(),
                })
            })
            .collect()
    }

    /// `IRIS: journal /iris/journal1/20261123.002, marker at offset 262272`.
    pub fn describe(&self) -> String {
        let file = self.journal_file.as_deref().unwrap_or("unknown");
        match self.marker_offset {
            Some(offset) => format!(
                "{}: journal {file}, marker at offset {offset}",
                self.instance
            ),
            None => format!("{}: journal {file}", self.instance),
        }
    }

    /// `IRIS=/iris/journal1/20261123.002@262272`: short enough for a tag.
    pub fn compact(&self) -> String {
        format!(
            "{}={}@{}",
            self.instance,
            self.journal_file.as_deref().unwrap_or("-"),
            self.marker_offset
                .map(|o| o.to_string())
                .unwrap_or("-".into())
        )
    }
}

fn plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.len() <= 64
}

/// An absolute path of letters, digits, `/`, `.`, `_` and `-`, without
/// `..`: safe inside a shell word and an ObjectScript string alike.
pub(crate) fn plain_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 1024
        && !s.split('/').any(|part| part == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_hooks_lines_and_drops_the_rest() {
        let out = "quiesce-frozen IRIS\nquiesce-restore IRIS /iris/journal1/20261123.002 262272\nquiesce-restore B - -\nquiesce-restore C /x/../etc 5\nquiesce-restore $(x) /a 1\nquiesce-restore D /a 1 extra\n";
        assert_eq!(
            RestorePoint::parse(out),
            vec![
                RestorePoint {
                    instance: "IRIS".into(),
                    journal_file: Some("/iris/journal1/20261123.002".into()),
                    marker_offset: Some(262272)
                },
                RestorePoint {
                    instance: "B".into(),
                    journal_file: None,
                    marker_offset: None
                },
                RestorePoint {
                    instance: "C".into(),
                    journal_file: None,
                    marker_offset: Some(5)
                },
            ]
        );
        assert_eq!(
            RestorePoint::parse(out)[0].describe(),
            "IRIS: journal /iris/journal1/20261123.002, marker at offset 262272"
        );
        assert_eq!(RestorePoint::parse(out)[1].compact(), "B=-@-");
    }

    proptest! {
        #[test]
        fn any_output_parses_without_panic_and_yields_plain_text(text in "(quiesce-restore | |[A-Za-z0-9/._$;-]{0,12}|\n){0,40}") {
            for p in RestorePoint::parse(&text) {
                prop_assert!(plain_name(&p.instance));
                if let Some(f) = &p.journal_file {
                    prop_assert!(plain_path(f));
                }
            }
        }
    }
}
