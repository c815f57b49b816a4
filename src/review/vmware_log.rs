//! `vmware.log` (beside the VM's .vmx on the datastore): the stuns of the VM
//! (`Checkpoint_Unstun: vm stopped for N us`, `CPT: vm was stunned for N us`,
//! both line formats) and the snapshots taken (`SnapshotVMX_TakeSnapshot`).

use crate::backup::snapshot::stun_in_line;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stun {
    /// The line's own time when it has one (`2015-10-27T22:01:42.149Z`), ms since the epoch.
    pub at: Option<u64>,
    pub micros: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmwareLog {
    pub stuns: Vec<Stun>,
    /// `SnapshotVMX_TakeSnapshot start: 'NAME', ..., quiesced=1`: (time, name, quiesced).
    pub snapshots: Vec<(Option<u64>, String, Option<bool>)>,
}

fn line_time(line: &str) -> Option<u64> {
    let stamp = line.get(..24)?;
    let ts: jiff::Timestamp = stamp.trim_end_matches(['|', ' ']).parse().ok()?;
    u64::try_from(ts.as_millisecond()).ok()
}

pub fn parse(text: &str) -> VmwareLog {
    let mut log = VmwareLog::default();
    for line in text.lines() {
        if let Some(micros) = stun_in_line(line) {
            // The newer format logs one stun twice (Checkpoint_Unstun and CPT):
            // keep the Checkpoint_Unstun line, and a CPT line only alone.
            let at = line_time(line);
            if line.contains("CPT: vm was stunned")
                && log.stuns.last().is_some_and(|s| s.at == at && at.is_some())
            {
                continue;
            }
            log.stuns.push(Stun { at, micros });
        } else if let Some(start) = line.find("SnapshotVMX_TakeSnapshot start: '") {
            let rest = &line[start + "SnapshotVMX_TakeSnapshot start: '".len()..];
            let name = rest.split('\'').next().unwrap_or("").to_string();
            let quiesced = rest
                .find("quiesced=")
                .and_then(|i| rest[i + 9..].chars().next())
                .map(|c| c == '1');
            log.snapshots.push((line_time(line), name, quiesced));
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_known_formats() {
        let text = "2015-10-27T22:01:42.149Z| vcpu-0| I120: Checkpoint_Unstun: vm stopped for 188405 us
2023-01-01T00:00:01.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 38123 us
2023-01-01T00:00:01.000Z In(05) vcpu-0 - CPT: vm was stunned for 38123 us
2023-01-01T00:00:00.500Z In(05) vmx - SnapshotVMX_TakeSnapshot start: 'nightly', deviceState=0, lazy=0, quiesced=1
garbage line
";
        let log = parse(text);
        assert_eq!(
            log.stuns.iter().map(|s| s.micros).collect::<Vec<_>>(),
            [188405, 38123]
        );
        assert_eq!(log.stuns[0].at, Some(1445983302149));
        assert_eq!(
            log.snapshots,
            [(Some(1672531200500), "nightly".to_string(), Some(true))]
        );
        assert_eq!(format!("{:.3}", log.stuns[1].micros as f64 / 1e6), "0.038");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_vmware_like_lines(n in 0u64..u64::MAX, prefix in "[0-9T:.Z| -]{0,30}", name in "[^']{0,10}") {
            let text = format!("{prefix}Checkpoint_Unstun: vm stopped for {n} us\n{prefix}SnapshotVMX_TakeSnapshot start: '{name}', quiesced=");
            let _ = parse(&text);
        }
    }
}
