//! qemu-guest-agent as the framework that calls the hook: which fsfreeze
//! hook the agent will run (its arguments, else its configuration), read
//! from the probe's `qga` lines, and what that means for quiesce's hook.
//!
//! The agent runs one program at a freeze and a thaw: the `-F[PATH]` /
//! `--fsfreeze-hook[=PATH]` of its command line (no PATH: the default
//! below), else `fsfreeze-hook` under `[general]` in its configuration file,
//! else none. That program is either quiesce's hook itself (then a failed
//! freeze fails the agent's fsfreeze command) or the stock dispatcher, which
//! runs every executable of the `fsfreeze-hook.d` beside it and ignores
//! their status.

use crate::hooks::HookKind;
use crate::hooks::facts::Finding;
use crate::inventory::Host;

/// qemu-ga's configuration file (Debian, upstream).
pub const QGA_CONF: &str = "/etc/qemu/qemu-ga.conf";
/// The hook a bare `-F` runs.
pub const DEFAULT_FSFREEZE_HOOK: &str = "/etc/qemu/fsfreeze-hook";

/// What the probe said of the agent (outside input: kept as text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QgaFacts {
    /// The probe was asked (`framework=qemu-ga`).
    pub probed: bool,
    pub installed: bool,
    /// `fsfreeze-hook` as the agent reads its configuration (`qemu-ga -D`).
    pub conf_hook: Option<String>,
    /// Each agent running in the VM's mount namespace: its arguments after
    /// the program name.
    pub running: Vec<Vec<String>>,
}

pub fn parse(text: &str) -> QgaFacts {
    let mut facts = QgaFacts::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("qga\t") else {
            continue;
        };
        facts.probed = true;
        facts.installed = true;
        if rest == "missing" {
            facts.installed = false;
        } else if let Some(value) = rest.strip_prefix("conf\t") {
            facts.conf_hook = Some(clean(value));
        } else if let Some(proc) = rest.strip_prefix("proc\t") {
            // PID, then argv[0], then the arguments.
            let args: Vec<String> = proc.split('\t').skip(2).map(clean).collect();
            facts.running.push(args);
        }
    }
    facts
}

fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// The hook an agent started with `args` runs: the last `-F` on its
/// command line wins over the configuration file (`conf`).
pub fn hook_of(args: &[String], conf: Option<&str>) -> Option<String> {
    let mut hook = conf.map(str::to_string);
    for arg in args {
        if arg == "-F" || arg == "--fsfreeze-hook" {
            hook = Some(DEFAULT_FSFREEZE_HOOK.into());
        } else if let Some(path) = arg.strip_prefix("--fsfreeze-hook=") {
            hook = Some(path.into());
        } else if let Some(path) = arg.strip_prefix("-F") {
            hook = Some(path.into());
        } else if arg == "--" {
            break;
        }
    }
    hook
}

/// What the agent's settings mean for quiesce's hook on `host`.
pub fn inspect(facts: &QgaFacts, host: &Host) -> Vec<Finding> {
    if !facts.probed {
        return vec![Finding::Unprobed {
            detail: "no answer about qemu-guest-agent".into(),
        }];
    }
    if !facts.installed {
        return vec![Finding::QgaMissing];
    }
    let dir = host.hook_dir.trim_end_matches('/');
    let ours = HookKind::Fsfreeze.path(host);
    let mut findings = Vec::new();
    // A running agent's own arguments decide; without one, its configuration.
    let hooks: Vec<Option<String>> = if facts.running.is_empty() {
        findings.push(Finding::QgaNotRunning);
        vec![hook_of(&[], facts.conf_hook.as_deref())]
    } else {
        facts
            .running
            .iter()
            .map(|args| hook_of(args, facts.conf_hook.as_deref()))
            .collect()
    };
    for hook in hooks {
        let finding = match hook {
            None => Finding::QgaHookOff,
            Some(hook) if hook == ours => continue,
            Some(hook)
                if hook
                    .rsplit_once('/')
                    .map(|(d, _)| format!("{d}/fsfreeze-hook.d"))
                    .as_deref()
                    == Some(dir) =>
            {
                Finding::QgaStatusIgnored {
                    hook,
                    dir: dir.to_string(),
                }
            }
            Some(hook) => Finding::QgaOtherHook { hook },
        };
        if !findings.contains(&finding) {
            findings.push(finding);
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use std::path::Path;

    fn host() -> Host {
        let text = "hosts:\n  kvm1: { address: 10.0.0.1, framework: qemu-ga }\n";
        Inventory::parse(Path::new("i.yml"), text)
            .unwrap()
            .hosts
            .remove(0)
    }

    fn codes(text: &str) -> Vec<&'static str> {
        inspect(&parse(text), &host())
            .iter()
            .map(Finding::code)
            .collect()
    }

    #[test]
    fn the_agents_own_arguments_decide_which_hook_it_runs() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(hook_of(&args(&["-m", "unix-listen"]), None), None);
        assert_eq!(
            hook_of(&args(&["-F"]), None).as_deref(),
            Some(DEFAULT_FSFREEZE_HOOK)
        );
        assert_eq!(hook_of(&args(&["-F/x/h"]), None).as_deref(), Some("/x/h"));
        assert_eq!(
            hook_of(&args(&["--fsfreeze-hook=/y"]), Some("/conf")).as_deref(),
            Some("/y")
        );
        // `-F PATH` with a space: PATH is not the hook (qemu-ga's --help says so).
        assert_eq!(
            hook_of(&args(&["-F", "/z"]), None).as_deref(),
            Some(DEFAULT_FSFREEZE_HOOK)
        );
        assert_eq!(hook_of(&[], Some("/conf")).as_deref(), Some("/conf"));
    }

    #[test]
    fn findings_for_each_way_the_agent_can_miss_the_hook() {
        assert_eq!(codes(""), ["unprobed"]);
        assert_eq!(codes("qga\tmissing\n"), ["qga-missing"]);
        // Installed, not running, nothing configured.
        assert_eq!(
            codes("qga\tinstalled\n"),
            ["qga-not-running", "qga-hook-off"]
        );
        assert_eq!(
            codes("qga\tproc\t42\t/usr/sbin/qemu-ga\t-m\tvirtio-serial\n"),
            ["qga-hook-off"]
        );
        // The stock dispatcher of our directory: a note.
        let stock = "qga\tproc\t42\tqemu-ga\t-F\n";
        assert_eq!(codes(stock), ["qga-status-ignored"]);
        assert!(inspect(&parse(stock), &host())[0].is_note());
        // Our hook itself: nothing to say.
        assert!(codes("qga\tproc\t42\tqemu-ga\t-F/etc/qemu/fsfreeze-hook.d/quiesce\n").is_empty());
        assert_eq!(
            codes("qga\tconf\t/etc/other/hook\nqga\tproc\t7\tqemu-ga\n"),
            ["qga-other-hook"]
        );
        // An empty setting is a hook qemu-ga cannot run.
        assert_eq!(
            codes("qga\tconf\t\nqga\tproc\t7\tqemu-ga\n"),
            ["qga-other-hook"]
        );
    }

    proptest::proptest! {
        #[test]
        fn qga_lines_never_panic(fields in proptest::collection::vec("[a-zA-Z0-9/=\t -]{0,16}", 0..8)) {
            let text = format!("qga\t{}\n", fields.join("\t"));
            for finding in inspect(&parse(&text), &host()) {
                let _ = finding.message();
            }
        }
    }
}
