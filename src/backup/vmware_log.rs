//! `vmware.log` (beside the VM's .vmx on the datastore), as every ESXi and
//! Workstation version writes it: `Z| vcpu-0| I120:` (5.x-7.x), `Z In(05)
//! vcpu-0 -` or an opID in place of `-` (8.x), local offsets (`-07:00|`,
//! Workstation/Player), and lines glued together (pasted KB text). From it:
//! the VM's stuns with their cause where the log says it, and the snapshots.
//!
//! ESXi 8 logs one stun twice, `Checkpoint_Unstun: vm stopped for N us` and,
//! tens of milliseconds later, `CPT: vm was stunned for M us`: that pair is
//! one stun, with the Checkpoint_Unstun value.

use serde::Serialize;

/// What the log says caused a stun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// During a snapshot being taken (`SnapshotVMX_TakeSnapshot start` without its completion yet).
    SnapshotCreate,
    /// During a snapshot consolidation or removal.
    Consolidation,
    /// The log names no snapshot operation around it (vMotion, hot-add, …).
    Other,
}

impl Cause {
    pub fn label(self) -> &'static str {
        match self {
            Cause::SnapshotCreate => "snapshot create",
            Cause::Consolidation => "consolidation",
            Cause::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stun {
    /// The record's own time when it has one, ms since the epoch (UTC).
    pub at: Option<u64>,
    pub us: u64,
    pub cause: Cause,
    /// The snapshot being taken, for `snapshot-create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// How a snapshot seen in the log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotEnd {
    Done,
    /// VMware Tools did not quiesce the guest in time (`msg.snapshot.quiesce.timeout`).
    QuiesceTimedOut,
    /// The log ends, or this excerpt does, before it says.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub at: Option<u64>,
    pub name: String,
    /// `quiesced=1`: VMware Tools quiesced the guest (the hooks ran).
    pub quiesced: Option<bool>,
    /// `deviceState=1`: the VM's memory was saved too.
    pub memory: Option<bool>,
    pub end: SnapshotEnd,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmwareLog {
    pub stuns: Vec<Stun>,
    pub snapshots: Vec<Snapshot>,
}

/// One event, in the order the log has them.
enum Found {
    Unstun(u64),
    Cpt(u64),
    TakeStart {
        name: String,
        quiesced: Option<bool>,
        memory: Option<bool>,
    },
    TakeDone(String),
    QuiesceTimeout,
    ConsolidateStart,
    ConsolidateEnd,
}

/// The longest a stun is attributed to a snapshot started before it and not
/// yet completed: beyond this the start is a stale one that never completed.
const OPEN_FOR_MS: u64 = 30 * 60 * 1000;
/// How far apart a Checkpoint_Unstun and its CPT twin may be.
const TWIN_WITHIN_MS: u64 = 1000;

pub fn parse(text: &str) -> VmwareLog {
    let mut log = VmwareLog::default();
    // (when, which snapshot) of the snapshot being taken and of a consolidation.
    let mut taking: Option<(Option<u64>, String)> = None;
    let mut consolidating = false;
    // The last event was a Checkpoint_Unstun: its time, for the CPT twin.
    let mut last_unstun: Option<Option<u64>> = None;
    for (at, found) in events(text) {
        let is_unstun = matches!(found, Found::Unstun(_));
        match found {
            Found::Unstun(us) | Found::Cpt(us) => {
                let twin = matches!(found, Found::Cpt(_))
                    && match last_unstun {
                        Some(Some(unstun)) => {
                            at.is_some_and(|t| t.abs_diff(unstun) <= TWIN_WITHIN_MS)
                        }
                        // Without times (pasted text), only right after its Checkpoint_Unstun.
                        Some(None) => at.is_none(),
                        None => false,
                    };
                if !twin {
                    let (cause, snapshot) = cause_at(at, &taking, consolidating);
                    log.stuns.push(Stun {
                        at,
                        us,
                        cause,
                        snapshot,
                    });
                }
            }
            Found::TakeStart {
                name,
                quiesced,
                memory,
            } => {
                taking = Some((at, name.clone()));
                log.snapshots.push(Snapshot {
                    at,
                    name,
                    quiesced,
                    memory,
                    end: SnapshotEnd::Unknown,
                });
            }
            Found::TakeDone(name) => {
                taking = None;
                match log
                    .snapshots
                    .iter_mut()
                    .rev()
                    .find(|s| s.name == name && s.end == SnapshotEnd::Unknown)
                {
                    Some(snapshot) => snapshot.end = SnapshotEnd::Done,
                    // Its start is before this log (or this excerpt) begins.
                    None => log.snapshots.push(Snapshot {
                        at,
                        name,
                        quiesced: None,
                        memory: None,
                        end: SnapshotEnd::Done,
                    }),
                }
            }
            Found::QuiesceTimeout => {
                if let Some(snapshot) = log
                    .snapshots
                    .iter_mut()
                    .rev()
                    .find(|s| s.end == SnapshotEnd::Unknown)
                {
                    snapshot.end = SnapshotEnd::QuiesceTimedOut;
                }
                taking = None;
            }
            Found::ConsolidateStart => consolidating = true,
            Found::ConsolidateEnd => consolidating = false,
        }
        last_unstun = if is_unstun { Some(at) } else { None };
    }
    log
}

fn cause_at(
    at: Option<u64>,
    taking: &Option<(Option<u64>, String)>,
    consolidating: bool,
) -> (Cause, Option<String>) {
    if let Some((started, name)) = taking {
        let recent = match (started, at) {
            (Some(s), Some(a)) => a.saturating_sub(*s) <= OPEN_FOR_MS,
            _ => true,
        };
        if recent {
            return (Cause::SnapshotCreate, Some(name.clone()));
        }
    }
    if consolidating {
        return (Cause::Consolidation, None);
    }
    (Cause::Other, None)
}

/// Every event of the text with the time of the record it is in. A record
/// starts at a line start or at a timestamp glued into a line.
fn events(text: &str) -> Vec<(Option<u64>, Found)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut starts: Vec<(usize, Option<u64>)> = vec![(0, None)];
        for (index, _) in line.match_indices('T') {
            if let Some((begin, at)) = timestamp_before(line, index) {
                if starts.last().is_some_and(|(b, _)| *b == begin) {
                    starts.pop();
                }
                starts.push((begin, Some(at)));
            } else if let Some(begin) = placeholder_before(line, index) {
                // `YYYY-MM-DDThh:mm:ss.NNNZ`: a record whose time was redacted.
                if starts.last().is_some_and(|(b, _)| *b == begin) {
                    starts.pop();
                }
                starts.push((begin, None));
            }
        }
        for (i, (begin, at)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map(|(b, _)| *b).unwrap_or(line.len());
            if let Some(record) = line.get(*begin..end) {
                found_in(record, *at, &mut out);
            }
        }
    }
    out
}

/// The events of one record, in order.
fn found_in(record: &str, at: Option<u64>, out: &mut Vec<(Option<u64>, Found)>) {
    let mut hits: Vec<(usize, Found)> = Vec::new();
    for (marker, make) in [
        (
            "Checkpoint_Unstun: vm stopped for ",
            Found::Unstun as fn(u64) -> Found,
        ),
        ("CPT: vm was stunned for ", Found::Cpt as fn(u64) -> Found),
    ] {
        for (index, _) in record.match_indices(marker) {
            if let Some(us) = micros(&record[index + marker.len()..]) {
                hits.push((index, make(us)));
            }
        }
    }
    for (index, _) in record.match_indices("SnapshotVMX_TakeSnapshot start: '") {
        let rest = &record[index + "SnapshotVMX_TakeSnapshot start: '".len()..];
        let Some((name, options)) = rest.split_once('\'') else {
            continue;
        };
        hits.push((
            index,
            Found::TakeStart {
                name: name.to_string(),
                quiesced: flag(options, "quiesced="),
                memory: flag(options, "deviceState="),
            },
        ));
    }
    for (index, _) in record.match_indices("Done with snapshot '") {
        let rest = &record[index + "Done with snapshot '".len()..];
        if let Some((name, _)) = rest.split_once('\'') {
            hits.push((index, Found::TakeDone(name.to_string())));
        }
    }
    for (index, _) in record.match_indices("msg.snapshot.quiesce.timeout") {
        hits.push((index, Found::QuiesceTimeout));
    }
    for (index, _) in record.match_indices("ConsolidateStart") {
        hits.push((index, Found::ConsolidateStart));
    }
    for (index, _) in record.match_indices("ConsolidateEnd") {
        hits.push((index, Found::ConsolidateEnd));
    }
    hits.sort_by_key(|(index, _)| *index);
    out.extend(hits.into_iter().map(|(_, found)| (at, found)));
}

/// `N us` at the start of `rest`.
fn micros(rest: &str) -> Option<u64> {
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || !rest[digits..].trim_start().starts_with("us") {
        return None;
    }
    rest[..digits].parse().ok()
}

/// `KEY=0` / `KEY=1` among a TakeSnapshot line's options.
fn flag(options: &str, key: &str) -> Option<bool> {
    let at = options.find(key)?;
    match options[at + key.len()..].chars().next()? {
        '1' => Some(true),
        '0' => Some(false),
        _ => None,
    }
}

/// The timestamp whose `T` is at `t` (`2015-10-27T22:01:42.149Z`, with a
/// fraction or not, `Z` or `±hh:mm`): where it begins and its time in ms.
fn timestamp_before(line: &str, t: usize) -> Option<(usize, u64)> {
    let bytes = line.as_bytes();
    let begin = t.checked_sub(10)?;
    // `dddd-dd-ddTdd:dd:dd`, checked byte by byte (the line may hold any text).
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let stamp = bytes.get(begin..begin + shape.len())?;
    let fits = stamp.iter().zip(shape).all(|(b, s)| match s {
        b'd' => b.is_ascii_digit(),
        other => b == other,
    });
    if !fits {
        return None;
    }
    let mut end = begin + shape.len();
    if bytes.get(end) == Some(&b'.') {
        end += 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    let zone_len = match bytes.get(end) {
        Some(b'Z') => 1,
        Some(b'+' | b'-') => 6,
        // No zone: not a vmware.log timestamp.
        _ => return None,
    };
    let ts: jiff::Timestamp = line.get(begin..end + zone_len)?.parse().ok()?;
    Some((begin, u64::try_from(ts.as_millisecond()).ok()?))
}

/// A redacted `YYYY-MM-DDThh:mm:ss` whose `T` is at `t`: where it begins.
fn placeholder_before(line: &str, t: usize) -> Option<usize> {
    let begin = t.checked_sub(10)?;
    (line.get(begin..t)? == "YYYY-MM-DD" && line.get(t + 1..t + 9)? == "hh:mm:ss").then_some(begin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_known_formats() {
        // Our own lines in each format (the real files are read by tests/suite/real_world.rs).
        let text = "2015-10-27T22:01:39.876Z| vmx| I120: SnapshotVMX_TakeSnapshot start: 'nightly', deviceState=0, lazy=0, quiesced=1
2015-10-27T22:01:42.149Z| vcpu-0| I120: Checkpoint_Unstun: vm stopped for 188405 us
2015-10-27T22:01:42.300Z| vmx| I120: SnapshotVMXTakeSnapshotComplete: Done with snapshot 'nightly': 2
2023-01-01T00:00:01.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 38123 us
2023-01-01T00:00:01.029Z In(05) vcpu-0 - CPT: vm was stunned for 40000 us
2019-07-28T14:41:16.915-07:00| vcpu-0| I125: Checkpoint_Unstun: vm stopped for 1000 us
garbage line
";
        let log = parse(text);
        let stuns: Vec<(Option<u64>, u64, Cause)> =
            log.stuns.iter().map(|s| (s.at, s.us, s.cause)).collect();
        assert_eq!(
            stuns,
            [
                (Some(1445983302149), 188405, Cause::SnapshotCreate),
                (Some(1672531201000), 38123, Cause::Other),
                (Some(1564350076915), 1000, Cause::Other),
            ]
        );
        assert_eq!(
            log.snapshots,
            [Snapshot {
                at: Some(1445983299876),
                name: "nightly".into(),
                quiesced: Some(true),
                memory: Some(false),
                end: SnapshotEnd::Done
            }]
        );
    }

    #[test]
    fn a_lone_cpt_line_is_a_stun_and_glued_records_keep_their_times() {
        let log = parse("2023-01-01T00:00:01.000Z In(05) vcpu-0 - CPT: vm was stunned for 5 us");
        assert_eq!(log.stuns.len(), 1);
        let glued = "x: 4892023-01-01T00:00:01.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 7 us2023-01-01T00:00:09.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 8 us";
        let log = parse(glued);
        let stuns: Vec<(Option<u64>, u64)> = log.stuns.iter().map(|s| (s.at, s.us)).collect();
        assert_eq!(stuns, [(Some(1672531201000), 7), (Some(1672531209000), 8)]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_vmware_like_lines(n in 0u64..u64::MAX, prefix in "[0-9T:.Z|+ -]{0,30}", name in "[^']{0,10}") {
            let text = format!("{prefix}Checkpoint_Unstun: vm stopped for {n} us\n{prefix}CPT: vm was stunned for {n} us{prefix}SnapshotVMX_TakeSnapshot start: '{name}', quiesced=\n{prefix}Done with snapshot '{name}");
            let _ = parse(&text);
        }
    }
}
