//! What a thaw's answer means: the hook reports every instance it handled as
//! `quiesce-outcome INSTANCE KIND [earlier]`; this turns that (and the exit
//! status) into a typed verdict, so no decision is taken on message text.

use crate::hooks;
use crate::remote::transport::Output;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThawVerdict {
    /// This run's instances are thawed. `valid`: the snapshot was taken while
    /// this run's freeze held; `detail` says why not otherwise.
    Thawed { valid: bool, detail: String },
    /// The hook is not what quiesce deployed: it was not run, and no retry can help.
    HookMismatch { why: String },
    /// Not thawed (yet): the thaw failed, could not be checked, or gave no status.
    Retry { detail: String },
    /// An instance is frozen and the VM has no record of whose freeze it is
    /// (the hook's exit 5): no retry can thaw it, and it is never "thawed".
    LeftFrozen { detail: String },
}

/// The hook's exit status for an instance frozen with no record (see body.sh).
pub const UNRECORDED_FREEZE: u32 = 5;

/// One `quiesce-outcome` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceOutcome {
    pub instance: String,
    pub kind: String,
    /// Told by a later call of the same run: the first answer was lost.
    pub earlier: bool,
}

pub fn outcomes(stdout: &str) -> Vec<InstanceOutcome> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("quiesce-outcome ")?.split_whitespace();
            let instance = words.next()?.to_string();
            let kind = words.next()?.to_string();
            let earlier = words.next() == Some("earlier");
            Some(InstanceOutcome {
                instance,
                kind,
                earlier,
            })
        })
        .filter(|o| o.kind != "not-frozen")
        .collect()
}

/// Why a thawed instance's snapshot is not a backup, for `kind` ≠ valid.
fn invalid_because(o: &InstanceOutcome) -> String {
    let i = &o.instance;
    match o.kind.as_str() {
        "invalid-wd-resumed" => format!(
            "the write daemon resumed before the thaw (WDSuspendLimit): this snapshot is INVALID (instance {i})"
        ),
        "invalid-paused" => format!(
            "the freeze of {i} outlived its timeout, so the instance paused (an outage) before the thaw: this snapshot is INVALID"
        ),
        "ended-elsewhere" => format!(
            "someone else ended the freeze of {i} before the thaw (ExternalThaw by hand, or a restart), so the snapshot may have caught it running: this snapshot is INVALID"
        ),
        "replaced" => format!(
            "someone else ended this run's freeze of {i} and froze it again (or {i} restarted and was frozen again) before the thaw, so the snapshot may have caught it running: this snapshot is INVALID; that other freeze was left to whoever holds it"
        ),
        "thawed-stat-w" => format!(
            "no session could start on {i} (a freeze that outlived its timeout pauses the instance, which then takes no new login), so its freeze was ended with irisstat -W: this snapshot is INVALID"
        ),
        "down" => format!(
            "{i} was down at the thaw: its freeze ended when it stopped, at a time nothing tells, so the snapshot may have caught it stopping: this snapshot is INVALID; start {i} and look at its messages.log"
        ),
        "thawed" => format!(
            "{i} had already been thawed without a backup (freezeFail: the VM's dead-man's switch, or a `quiesce recover` beside the run) before the thaw word arrived: this snapshot is INVALID"
        ),
        other => format!("{i} ended as `{other}`: this snapshot is INVALID"),
    }
}

pub fn judge(out: &Output, action: &str) -> ThawVerdict {
    match out.code() {
        Some(hooks::MISMATCH) => ThawVerdict::HookMismatch {
            why: out.stderr_line(),
        },
        Some(hooks::UNCHECKABLE) => ThawVerdict::Retry {
            detail: format!(
                "the thaw hook could not be checked, so it was not run: {}",
                out.stderr_line()
            ),
        },
        Some(UNRECORDED_FREEZE) => {
            let lost: Vec<String> = outcomes(&out.stdout_text())
                .into_iter()
                .filter(|o| o.kind == "left-frozen" && !o.earlier)
                .map(|o| o.instance)
                .collect();
            ThawVerdict::LeftFrozen {
                detail: format!(
                    "{} is frozen, and nothing on the VM records whose freeze it is (its record in /run/quiesce was lost: /run full, or the file removed), so it was not thawed",
                    if lost.is_empty() {
                        "an instance".to_string()
                    } else {
                        lost.join(", ")
                    }
                ),
            }
        }
        Some(0) | Some(4) => {
            let seen = outcomes(&out.stdout_text());
            if action != "thaw" && action != "thawDeferred" {
                return ThawVerdict::Thawed {
                    valid: false,
                    detail: "thawed without recording a backup (freezeFail)".into(),
                };
            }
            if seen.is_empty() {
                return ThawVerdict::Thawed {
                    valid: false,
                    detail: "the VM recorded nothing frozen by this run at the thaw and kept no earlier outcome, so whether the snapshot saw a frozen database is unknown: treat this snapshot as INVALID".into(),
                };
            }
            let earlier = if seen.iter().any(|o| o.earlier) {
                " (told by a later thaw: the first one's answer was lost)"
            } else {
                ""
            };
            // A deferred thaw's valid instances wait for `history`.
            let fine =
                |k: &str| k == "valid" || (action == "thawDeferred" && k == "valid-deferred");
            match seen.iter().find(|o| !fine(&o.kind)) {
                None => ThawVerdict::Thawed {
                    valid: true,
                    detail: format!("snapshot taken while frozen{earlier}"),
                },
                Some(o) if o.kind == "thaw-failed" => ThawVerdict::Retry {
                    detail: format!("thaw of {} failed", o.instance),
                },
                Some(o) => ThawVerdict::Thawed {
                    valid: false,
                    detail: format!("{}{earlier}", invalid_because(o)),
                },
            }
        }
        _ => ThawVerdict::Retry {
            detail: format!("thaw failed: {}", out.describe()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::transport::ExitStatus;

    fn out(code: u32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: ExitStatus::Code(code),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    fn valid(v: &ThawVerdict) -> Option<bool> {
        match v {
            ThawVerdict::Thawed { valid, .. } => Some(*valid),
            _ => None,
        }
    }

    #[test]
    fn every_answer_has_one_meaning() {
        let table: [(u32, &str, &str, Option<bool>); 9] = [
            (0, "quiesce-outcome IRIS valid\n", "thaw", Some(true)),
            (
                0,
                "quiesce-outcome A valid\nquiesce-outcome B valid\n",
                "thaw",
                Some(true),
            ),
            (
                4,
                "quiesce-outcome A valid\nquiesce-outcome B invalid-wd-resumed\n",
                "thaw",
                Some(false),
            ),
            (
                4,
                "quiesce-outcome A ended-elsewhere\n",
                "thaw",
                Some(false),
            ),
            (
                0,
                "nothing recorded: r has nothing frozen\nquiesce-outcome A valid earlier\n",
                "thaw",
                Some(true),
            ),
            (
                0,
                "nothing recorded: r has nothing frozen\nquiesce-outcome A thawed earlier\n",
                "thaw",
                Some(false),
            ),
            (
                0,
                "nothing recorded: r has nothing frozen\n",
                "thaw",
                Some(false),
            ),
            (0, "quiesce-outcome A thawed\n", "freezeFail", Some(false)),
            (1, "quiesce-outcome A thaw-failed\n", "thaw", None),
        ];
        for (code, stdout, action, expected) in table {
            assert_eq!(
                valid(&judge(&out(code, stdout, ""), action)),
                expected,
                "{stdout}"
            );
        }
        assert!(
            matches!(judge(&out(97, "", "changed"), "thaw"), ThawVerdict::HookMismatch { why } if why == "changed")
        );
        assert!(matches!(
            judge(&out(98, "", "fork"), "thaw"),
            ThawVerdict::Retry { .. }
        ));
        assert_eq!(
            judge(
                &out(5, "nothing recorded: r has nothing frozen\nquiesce-outcome A left-frozen\n", ""),
                "thaw"
            ),
            ThawVerdict::LeftFrozen {
                detail: "A is frozen, and nothing on the VM records whose freeze it is (its record in /run/quiesce was lost: /run full, or the file removed), so it was not thawed".into()
            }
        );
        let ThawVerdict::Thawed { detail, .. } =
            judge(&out(0, "quiesce-outcome A valid earlier\n", ""), "thaw")
        else {
            panic!()
        };
        assert_eq!(
            detail,
            "snapshot taken while frozen (told by a later thaw: the first one's answer was lost)"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(stdout in "\\PC{0,200}", code in 0u32..256) {
            let _ = judge(&out(code, &stdout, ""), "thaw");
        }
    }
}
