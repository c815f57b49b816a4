//! Parsers for the logs the hooks and the instances write on each VM:
//! `snapshot.log` (the hooks' own lines, in the article's format) and
//! `INST-pre_post.log` (Backup.General's LogFile, with its wrapped lines).
//! Unknown lines are skipped; no input makes them panic.

use crate::review::log_time::{split_cache_line, split_dated};
use serde::Serialize;

/// One step of one instance, as snapshot.log tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookEvent {
    pub at: u64,
    pub instance: Option<String>,
    pub kind: HookEventKind,
    /// The VM's UTC offset in minutes, when the line states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_minutes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookEventKind {
    FreezeScriptStarted,
    FreezeRequested,
    Frozen,
    FreezeFailed,
    FreezeScriptFinished,
    ThawScriptStarted,
    /// A thaw that records no backup (`freezeFail`: the snapshot failed).
    FreezeFailStarted,
    ThawRequested,
    Thawed,
    ThawFailed,
    Invalid,
}

pub fn parse_snapshot_log(text: &str) -> Vec<HookEvent> {
    text.lines()
        .filter_map(|line| {
            let (at, offset_minutes, message) = split_dated(line)?;
            let word_before =
                |suffix: &str| message.strip_suffix(suffix).map(|i| i.trim().to_string());
            let after = |prefix: &str| message.strip_prefix(prefix).map(|i| i.trim().to_string());
            let (instance, kind) = if message.starts_with("Pre freeze script started") {
                (None, HookEventKind::FreezeScriptStarted)
            } else if message.starts_with("Pre freeze script finished") {
                (None, HookEventKind::FreezeScriptFinished)
            } else if message.starts_with("Post thaw script started (freezeFail") {
                (None, HookEventKind::FreezeFailStarted)
            } else if message.starts_with("Post thaw script started") {
                (None, HookEventKind::ThawScriptStarted)
            } else if let Some(i) = after("Attempting to freeze ") {
                (Some(i), HookEventKind::FreezeRequested)
            } else if let Some(i) = word_before(" IS FROZEN") {
                (Some(i), HookEventKind::Frozen)
            } else if let Some(i) = after("Attempting to thaw ") {
                (Some(i), HookEventKind::ThawRequested)
            } else if let Some(i) = word_before(" IS THAWED") {
                (Some(i), HookEventKind::Thawed)
            } else if let Some((i, _)) = message.split_once(" FREEZE FAILED") {
                (Some(i.trim().to_string()), HookEventKind::FreezeFailed)
            } else if let Some((i, _)) = message.split_once(" THAW FAILED") {
                (Some(i.trim().to_string()), HookEventKind::ThawFailed)
            } else if message.contains("is INVALID") {
                (
                    message.split(':').next().map(|i| i.trim().to_string()),
                    HookEventKind::Invalid,
                )
            } else {
                return None;
            };
            let instance = instance.filter(|i| !i.is_empty() && !i.contains(' '));
            Some(HookEvent {
                at,
                instance,
                kind,
                offset_minutes,
            })
        })
        .collect()
}

/// What an instance's own LogFile says about one freeze/thaw cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstanceCycle {
    pub freeze_requested: Option<u64>,
    pub suspended: Option<u64>,
    pub resume_requested: Option<u64>,
    pub resumed: Option<u64>,
    pub journal_file: Option<String>,
    pub marker_offset: Option<u64>,
    pub marker_file: Option<String>,
    pub warnings: Vec<String>,
}

impl InstanceCycle {
    /// The cycle's times, read as UTC from the zone-less LogFile, corrected
    /// by the VM's offset east of UTC (its local time minus the offset).
    pub fn shifted(mut self, offset_minutes: i64) -> InstanceCycle {
        let shift =
            |t: Option<u64>| t.and_then(|t| u64::try_from(t as i64 - offset_minutes * 60_000).ok());
        self.freeze_requested = shift(self.freeze_requested);
        self.suspended = shift(self.suspended);
        self.resume_requested = shift(self.resume_requested);
        self.resumed = shift(self.resumed);
        self
    }

    /// From suspended to resumed: what the database felt.
    pub fn window_ms(&self) -> Option<u64> {
        self.resumed?.checked_sub(self.suspended?)
    }
}

/// Cycles in file order. A new cycle starts at each "Suspending system".
pub fn parse_instance_log(text: &str) -> Vec<InstanceCycle> {
    let mut cycles: Vec<InstanceCycle> = Vec::new();
    let mut pending: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(what) = pending.take() {
            let Some(cycle) = cycles.last_mut() else {
                continue;
            };
            match what {
                "journal" if line.starts_with('/') => cycle.journal_file = Some(line.to_string()),
                "marker" => {
                    // offset 262272 of /iris/journal1/20210811.003
                    let mut words = line.split_whitespace();
                    if words.next() == Some("offset") {
                        cycle.marker_offset = words.next().and_then(|o| o.parse().ok());
                        if words.next() == Some("of") {
                            cycle.marker_file = words.next().map(str::to_string);
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        match line {
            "Journal file switched to:" => {
                pending = Some("journal");
                continue;
            }
            "Journal marker set at" => {
                pending = Some("marker");
                continue;
            }
            _ => {}
        }
        let Some((at, message)) = split_cache_line(line) else {
            continue;
        };
        let message = message.trim();
        if message.ends_with("ExternalFreeze: Suspending system") {
            cycles.push(InstanceCycle {
                freeze_requested: Some(at),
                ..Default::default()
            });
            continue;
        }
        let Some(cycle) = cycles.last_mut() else {
            continue;
        };
        if message.ends_with("ExternalFreeze: System suspended") {
            cycle.suspended = Some(at);
        } else if message.ends_with("ExternalThaw: Resuming system") {
            cycle.resume_requested = Some(at);
        } else if message.ends_with("ExternalThaw: System resumed") {
            cycle.resumed = Some(at);
        } else if let Some((_, warning)) = message.split_once(": Warning, ") {
            cycle.warnings.push(warning.trim().to_string());
        } else if let Some((_, file)) =
            message.split_once("Start a journal restore for this backup with journal file: ")
        {
            cycle
                .journal_file
                .get_or_insert_with(|| file.trim().to_string());
        } else if message.contains(": Error") {
            cycle.warnings.push(message.to_string());
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The article's snapshot.log lines (freeze at 16:30:35-36, thaw at 16:30:41-42).
    const ARTICLE: &str = "Wed Jan 4 16:30:35 EST 2017: Attempting to freeze H20152
Wed Jan 4 16:30:36 EST 2017: H20152 IS FROZEN
Wed Jan 4 16:30:36 EST 2017: Completed freeze of H20152
Wed Jan 4 16:30:36 EST 2017: Pre freeze script finished
Wed Jan 4 16:30:41 EST 2017: Attempting to thaw H20152
Wed Jan 4 16:30:42 EST 2017: H20152 IS THAWED
Wed Jan 4 16:30:42 EST 2017: Completed thaw of H20152
";

    /// The LogFile sample of the reference.
    const REFERENCE: &str = "08/11/2021 05:49:43: Backup.General.ExternalFreeze: Suspending system
08/11/2021 05:49:43: Backup.General.ExternalFreeze: Warning, /usr/irissys/mgr/x/ is not being journalled
Journal file switched to:
/iris/journal1/20210811.003
08/11/2021 05:49:43: Backup.General.ExternalFreeze: Start a journal restore for this backup with journal file: /iris/journal1/20210811.003
Journal marker set at
offset 262272 of /iris/journal1/20210811.003
08/11/2021 05:49:44: Backup.General.ExternalFreeze: System suspended
08/11/2021 05:49:54: Backup.General.ExternalThaw: Resuming system
08/11/2021 05:49:55: Backup.General.ExternalThaw: System resumed
";

    #[test]
    fn the_article_shows_a_six_second_window() {
        let events = parse_snapshot_log(ARTICLE);
        let at = |kind: HookEventKind| events.iter().find(|e| e.kind == kind).unwrap().at;
        assert_eq!(at(HookEventKind::Thawed) - at(HookEventKind::Frozen), 6_000);
        assert_eq!(events[0].instance.as_deref(), Some("H20152"));
        assert_eq!(
            events.len(),
            5,
            "completed lines add nothing; the rest are all read: {events:?}"
        );
    }

    #[test]
    fn the_reference_logfile_gives_journal_marker_and_warning() {
        let cycles = parse_instance_log(REFERENCE);
        assert_eq!(cycles.len(), 1);
        let c = &cycles[0];
        assert_eq!(c.window_ms(), Some(11_000));
        assert_eq!(
            c.journal_file.as_deref(),
            Some("/iris/journal1/20210811.003")
        );
        assert_eq!(c.marker_offset, Some(262272));
        assert_eq!(
            c.marker_file.as_deref(),
            Some("/iris/journal1/20210811.003")
        );
        assert_eq!(c.warnings, ["/usr/irissys/mgr/x/ is not being journalled"]);
        assert_eq!(c.resume_requested.unwrap() - c.suspended.unwrap(), 10_000);
    }

    proptest::proptest! {
        #[test]
        fn never_panic(text in "\\PC{0,400}") {
            let _ = parse_snapshot_log(&text);
            let _ = parse_instance_log(&text);
        }

        #[test]
        fn never_panic_on_shuffled_real_lines(lines in proptest::collection::vec(0usize..17, 0..30), cut in 0usize..60) {
            let all: Vec<&str> = ARTICLE.lines().chain(REFERENCE.lines()).collect();
            let text: String = lines.iter().map(|&i| all[i % all.len()]).map(|l| &l[..cut.min(l.len())]).collect::<Vec<_>>().join("\n");
            let _ = parse_snapshot_log(&text);
            for cycle in parse_instance_log(&text) {
                let _ = cycle.window_ms();
            }
        }
    }
}
