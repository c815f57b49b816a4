//! What `quiesce verify` found for one run: per host and instance, whether
//! its backup restored (clone, start, journal restore from the marker,
//! integrity check), with each step and the evidence, as kept in
//! `runs/RUN/verify.json`; and how a provider's verify script says so.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file beside a run's results: the newest verification of it.
pub const FILE: &str = "verify.json";
/// Write-ahead: a line before a host's clone is made, one after its
/// teardown, so that `recover` finds a clone a killed verify left.
pub const JOURNAL: &str = "verify.jsonl";

/// One line of the verify journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloneEntry {
    pub host: String,
    pub at: u64,
    /// `cloning` (what follows is needed to clean up without the
    /// playbook) or `torn-down`.
    pub state: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub clone_dir: String,
    #[serde(default)]
    pub instance: String,
    /// Which verify (process and start): a `torn-down` ends only its own
    /// `cloning`, since a second verify of the host may end at once (the
    /// instance in use) while the first still runs. Empty on `torn-down`
    /// (recover's clean-up): every verify of the host before it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attempt: String,
    /// Whose clone: empty for btrfs (on the host itself); `aws-ebs` with
    /// the scratch host the volumes went to, and how EC2 is reached.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// The scratch host (its name and how recover reaches it without the
    /// inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_access: Option<crate::backup::journal::HostAccess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_endpoint_url: Option<String>,
}

impl CloneEntry {
    /// Appends the line and flushes it to disk before the clone is made.
    pub fn append(&self, run_dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join(JOURNAL))?;
        let mut line = serde_json::to_vec(self)?;
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Per host, the newest `cloning` no `torn-down` ended: a verify that
    /// never tore its clone down (damaged lines are passed over).
    pub fn left(run_dir: &Path) -> Vec<CloneEntry> {
        let text = std::fs::read_to_string(run_dir.join(JOURNAL)).unwrap_or_default();
        Self::open_in(&text)
    }

    fn open_in(text: &str) -> Vec<CloneEntry> {
        let mut open: Vec<CloneEntry> = Vec::new();
        for entry in text
            .lines()
            .filter_map(|l| serde_json::from_str::<CloneEntry>(l).ok())
        {
            if entry.state == "cloning" {
                open.push(entry);
            } else {
                open.retain(|e| {
                    e.host != entry.host
                        || !(entry.attempt.is_empty() || e.attempt == entry.attempt)
                });
            }
        }
        let mut last: Vec<CloneEntry> = Vec::new();
        for entry in open {
            last.retain(|e| e.host != entry.host);
            last.push(entry);
        }
        last
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceVerdict {
    pub instance: String,
    pub ok: bool,
    /// What was proven, or why not.
    pub reason: String,
    pub steps: Vec<Step>,
    /// Log excerpts: the journal restore's counts, the integrity report.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostVerification {
    pub host: String,
    pub started_at: u64,
    pub finished_at: u64,
    pub instances: Vec<InstanceVerdict>,
    /// Why the host could not be verified at all (unreachable, a provider
    /// that cannot clone): every instance then counts as not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl HostVerification {
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.instances.is_empty() && self.instances.iter().all(|i| i.ok)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyRecord {
    pub run_id: String,
    /// When this verification ended (ms since the epoch).
    pub verified_at: u64,
    pub hosts: Vec<HostVerification>,
}

impl VerifyRecord {
    /// The run's verification, if one was made (a damaged file: none).
    pub fn load(run_dir: &Path) -> Option<VerifyRecord> {
        let text = std::fs::read_to_string(run_dir.join(FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Written whole, then renamed: a crash leaves the old one or the new.
    pub fn save(&self, run_dir: &Path) -> std::io::Result<()> {
        let tmp = run_dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, run_dir.join(FILE))
    }

    /// Whether `instance` of `host` was verified (None: not tried).
    pub fn verdict(&self, host: &str, instance: &str) -> Option<bool> {
        let h = self.hosts.iter().find(|h| h.host == host)?;
        if h.error.is_some() {
            return Some(false);
        }
        h.instances
            .iter()
            .find(|i| i.instance == instance)
            .map(|i| i.ok)
    }

    /// Whether every instance of `host` that was tried verified.
    pub fn host_ok(&self, host: &str) -> Option<bool> {
        self.hosts
            .iter()
            .find(|h| h.host == host)
            .map(HostVerification::ok)
    }
}

/// Reads a verify script's lines (`verify-step INST STEP ok|fail SECONDS
/// DETAIL`, `verify-evidence INST LINE`, `verify-result INST ok|fail
/// REASON`, `verify-warning TEXT`): the instances in the order they ended,
/// and the warnings. Text from the VM: instance names must be plain, the
/// rest is kept as text, never run.
pub fn parse(output: &str) -> (Vec<InstanceVerdict>, Vec<String>) {
    let mut open: Vec<InstanceVerdict> = Vec::new();
    let mut done: Vec<InstanceVerdict> = Vec::new();
    let mut warnings = Vec::new();
    let entry = |open: &mut Vec<InstanceVerdict>, inst: &str| -> usize {
        match open.iter().position(|v| v.instance == inst) {
            Some(i) => i,
            None => {
                open.push(InstanceVerdict {
                    instance: inst.to_string(),
                    ok: false,
                    reason: String::new(),
                    steps: Vec::new(),
                    evidence: Vec::new(),
                });
                open.len() - 1
            }
        }
    };
    for line in output.lines() {
        let Some((kind, rest)) = line.split_once(' ') else {
            continue;
        };
        if kind == "verify-warning" {
            warnings.push(rest.to_string());
            continue;
        }
        let Some((inst, rest)) = rest.split_once(' ') else {
            continue;
        };
        if !crate::inventory::is_plain_name(inst, false) {
            continue;
        }
        match kind {
            "verify-step" => {
                let mut f = rest.splitn(4, ' ');
                let (Some(name), Some(verdict), Some(secs)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let i = entry(&mut open, inst);
                open[i].steps.push(Step {
                    name: name.to_string(),
                    ok: verdict == "ok",
                    seconds: secs.parse().unwrap_or(0.0),
                    detail: f.next().unwrap_or("").to_string(),
                });
            }
            "verify-evidence" => {
                let i = entry(&mut open, inst);
                if open[i].evidence.len() < 200 {
                    open[i].evidence.push(rest.to_string());
                }
            }
            "verify-result" => {
                let (verdict, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                let i = entry(&mut open, inst);
                let mut v = open.remove(i);
                v.ok = verdict == "ok";
                v.reason = reason.to_string();
                done.push(v);
            }
            _ => {}
        }
    }
    // An instance without a result: the script ended before it was done.
    for mut v in open {
        v.reason = "the verification ended before its result (the script stopped)".into();
        done.push(v);
    }
    (done, warnings)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_torn_down_ends_its_own_verify_and_a_clean_up_ends_all() {
        let line = |state: &str, attempt: &str| {
            serde_json::to_string(&CloneEntry {
                host: "db1".into(),
                at: 1,
                state: state.into(),
                platform: "iris".into(),
                clone_dir: "/c".into(),
                instance: "V".into(),
                attempt: attempt.into(),
                ..CloneEntry::default()
            })
            .unwrap()
                + "\n"
        };
        // A second verify that found the instance in use ended at once; the
        // first, still open, is left.
        let text = line("cloning", "1-1") + &line("cloning", "2-2") + &line("torn-down", "2-2");
        let left = CloneEntry::open_in(&text);
        assert_eq!(
            left.iter().map(|e| e.attempt.as_str()).collect::<Vec<_>>(),
            ["1-1"]
        );
        // recover's clean-up (no attempt) ends every verify of the host.
        assert!(CloneEntry::open_in(&(text.clone() + &line("torn-down", ""))).is_empty());
        // Old journals (no attempt) read as before; a damaged line is passed over.
        assert!(
            CloneEntry::open_in(&(line("cloning", "") + "{oops\n" + &line("torn-down", "")))
                .is_empty()
        );
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_steps_evidence_and_results() {
        let out = "verify-step IRIS clone ok 0.3 2 writable btrfs clones in /x\n\
verify-step IRIS journal ok 0 /j/1 (marker at offset 16) is in the copy\n\
verify-evidence IRIS integrity /x/0/user/: 16 blocks, no errors found\n\
verify-result IRIS ok restored from /j/1 offset 16 and checked: 1 databases, no errors\n\
verify-step B clone ok 0.3 x\n\
verify-warning could not remove /x/1\n\
verify-result $(x) ok nothing\n";
        let (v, w) = parse(out);
        assert_eq!(v.len(), 2);
        assert!(v[0].ok && v[0].steps.len() == 2 && v[0].evidence.len() == 1);
        assert_eq!(v[0].steps[0].seconds, 0.3);
        assert_eq!(v[1].instance, "B");
        assert!(!v[1].ok && v[1].reason.contains("ended before its result"));
        assert_eq!(w, ["could not remove /x/1"]);
    }

    proptest! {
        #[test]
        fn any_output_parses_without_panic(text in "(verify-step |verify-result |verify-evidence |verify-warning |IRIS |ok |fail |[0-9.]{0,4} |[a-z$()]{0,6}|\n){0,60}") {
            let (v, _) = parse(&text);
            for i in v {
                prop_assert!(crate::inventory::is_plain_name(&i.instance, false));
            }
        }
    }
}
