//! Read-only probes of a host's hooks ("facts") and what they say against
//! what quiesce would deploy ("findings"). Deploy and audit both start here.

use crate::hooks::qemu_ga::{self, QGA_CONF, QgaFacts};
use crate::hooks::{self, HookKind};
use crate::inventory::{Framework, Host};
use serde::Serialize;
use std::collections::HashMap;

/// Prints `missing PATH`, `stat PATH TYPE OWNER GROUP MODE SIZE` (one stat
/// for every path), `HASH  PATH` (one sha256sum for every regular file) and
/// `link PATH TARGET`: two processes on the VM for any number of paths.
/// Never follows a symlink: `stat` without -L, and a checksum only of regular files.
pub const PROBE_SCRIPT: &str = concat!(
    include_str!("../remote/scripts/log_writer.sh"),
    include_str!("../remote/scripts/probe.sh")
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Other(String),
}

impl FileKind {
    fn from_stat(text: &str) -> FileKind {
        match text {
            "regular file" | "regular empty file" => FileKind::Regular,
            "directory" => FileKind::Directory,
            "symbolic link" => FileKind::Symlink,
            other => FileKind::Other(other.to_string()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            FileKind::Regular => "a regular file".into(),
            FileKind::Directory => "a directory".into(),
            FileKind::Symlink => "a symbolic link".into(),
            FileKind::Other(kind) => format!("a {kind}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathFacts {
    Missing,
    Present {
        kind: FileKind,
        owner: String,
        group: String,
        mode: u32,
        size: u64,
        sha256: Option<String>,
        link_target: Option<String>,
    },
    Unreadable(String),
}

/// Parses the probe's output. Lines it does not understand are ignored;
/// paths it did not report stay absent from the map.
pub fn parse_probe(text: &str) -> HashMap<String, PathFacts> {
    let mut facts = HashMap::new();
    let mut sums: HashMap<&str, &str> = HashMap::new();
    let mut links: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        // sha256sum's own line: `HASH  PATH`.
        if let Some((sum, path)) = line.split_once("  ")
            && sum.len() == 64
            && sum.bytes().all(|b| b.is_ascii_hexdigit())
        {
            sums.insert(path, sum);
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["missing", path] => {
                facts.insert(path.to_string(), PathFacts::Missing);
            }
            ["error", path, why] => {
                facts.insert(path.to_string(), PathFacts::Unreadable(why.to_string()));
            }
            ["link", path, target] => {
                links.insert(path, target);
            }
            ["stat", path, kind, owner, group, mode, size] => {
                let (Ok(mode), Ok(size)) = (u32::from_str_radix(mode, 8), size.parse::<u64>())
                else {
                    continue;
                };
                facts.insert(
                    path.to_string(),
                    PathFacts::Present {
                        kind: FileKind::from_stat(kind),
                        owner: owner.to_string(),
                        group: group.to_string(),
                        mode,
                        size,
                        sha256: None,
                        link_target: None,
                    },
                );
            }
            _ => {}
        }
    }
    // A checksum only for a regular file, a target only for a symlink.
    for (path, fact) in facts.iter_mut() {
        if let PathFacts::Present {
            kind,
            sha256,
            link_target,
            ..
        } = fact
        {
            match kind {
                FileKind::Regular => *sha256 = sums.get(path.as_str()).map(|s| s.to_string()),
                FileKind::Symlink => *link_target = links.get(path.as_str()).map(|t| t.to_string()),
                _ => {}
            }
        }
    }
    facts
}

/// One way a hook or its directory differs from what quiesce deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Finding {
    Missing,
    NotRegular {
        kind: FileKind,
        link_target: Option<String>,
    },
    Owner {
        actual: String,
    },
    Group {
        actual: String,
    },
    Mode {
        actual: String,
    },
    Content {
        actual_sha256: String,
        expected_sha256: String,
    },
    DirMissing {
        dir: String,
    },
    DirNotDirectory {
        dir: String,
        kind: FileKind,
    },
    DirOwner {
        dir: String,
        actual: String,
    },
    DirGroup {
        dir: String,
        actual: String,
    },
    DirWritable {
        dir: String,
        mode: String,
    },
    Unprobed {
        detail: String,
    },
    /// A directory above the hook directory is not root's alone: its owner
    /// (or anyone who can write it) can swap the hooks.
    DirParent {
        dir: String,
        uid: u32,
        mode: String,
    },
    /// The hooks write nothing in log_dir (another user could plant links
    /// there): they log to syslog only.
    LogDirUnsafe {
        dir: String,
        why: String,
    },
    /// A tool quiesce's scripts need is missing on the VM, or is busybox's.
    VmTool {
        tool: String,
        busybox: bool,
    },
    /// tools.conf [vmbackup] execScripts is false: VMware Tools runs no hook.
    ToolsScriptsOff {
        line: u32,
        value: String,
    },
    /// tools.conf [vmbackup] timeout: Tools' one timer for the whole
    /// quiesced snapshot, too short for a slow freeze.
    ToolsTimeout {
        line: u32,
        seconds: u64,
        /// The least that fits (`tools_timeout_needed`).
        needed: u64,
        /// The host's freeze timeout, in seconds.
        freeze_timeout: u64,
    },
    /// Note: VMware Tools also runs these (backupScripts.d), after this
    /// hook at the freeze and before the thaw hook at the thaw.
    ToolsOtherScripts {
        paths: Vec<String>,
    },
    /// qemu-guest-agent is not installed: no fsfreeze calls the hook.
    QgaMissing,
    /// qemu-guest-agent is installed but not running.
    QgaNotRunning,
    /// qemu-guest-agent runs no fsfreeze hook (no -F, nothing configured).
    QgaHookOff,
    /// qemu-guest-agent runs a hook that neither is quiesce's nor runs the
    /// hook directory.
    QgaOtherHook {
        hook: String,
    },
    /// Note: qemu-guest-agent runs a dispatcher of the hook directory, and
    /// the stock one ignores the hooks' status.
    QgaStatusIgnored {
        hook: String,
        dir: String,
    },
}

/// Below this, tools.conf's timeout is a finding: the hooks give each
/// instance's freeze up to 40 s and its checks 10 s, and the snapshot itself
/// runs under the same timer.
pub const TOOLS_TIMEOUT_FLOOR: u64 = 60;

impl Finding {
    pub fn code(&self) -> &'static str {
        match self {
            Finding::Missing => "missing",
            Finding::NotRegular { .. } => "not-regular",
            Finding::Owner { .. } => "owner",
            Finding::Group { .. } => "group",
            Finding::Mode { .. } => "mode",
            Finding::Content { .. } => "content",
            Finding::DirMissing { .. } => "dir-missing",
            Finding::DirNotDirectory { .. } => "dir-not-directory",
            Finding::DirOwner { .. } => "dir-owner",
            Finding::DirGroup { .. } => "dir-group",
            Finding::DirWritable { .. } => "dir-writable",
            Finding::DirParent { .. } => "dir-parent",
            Finding::LogDirUnsafe { .. } => "log-dir-unsafe",
            Finding::VmTool { .. } => "vm-tool",
            Finding::Unprobed { .. } => "unprobed",
            Finding::ToolsScriptsOff { .. } => "tools-scripts-off",
            Finding::ToolsTimeout { .. } => "tools-timeout",
            Finding::ToolsOtherScripts { .. } => "tools-other-scripts",
            Finding::QgaMissing => "qga-missing",
            Finding::QgaNotRunning => "qga-not-running",
            Finding::QgaHookOff => "qga-hook-off",
            Finding::QgaOtherHook { .. } => "qga-other-hook",
            Finding::QgaStatusIgnored { .. } => "qga-status-ignored",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Finding::Missing => "missing".into(),
            Finding::NotRegular {
                kind,
                link_target: Some(t),
            } => format!("is {} to {t}, not a regular file", kind.describe()),
            Finding::NotRegular { kind, .. } => {
                format!("is {}, not a regular file", kind.describe())
            }
            Finding::Owner { actual } => format!("owner is {actual}, expected root"),
            Finding::Group { actual } => format!("group is {actual}, expected root"),
            Finding::Mode { actual } => format!("mode is {actual}, expected 0700"),
            Finding::Content {
                actual_sha256,
                expected_sha256,
            } => format!(
                "content differs from what quiesce deploys (sha256 {}…, expected {}…): drift or tampering",
                &actual_sha256[..12.min(actual_sha256.len())],
                &expected_sha256[..12.min(expected_sha256.len())]
            ),
            Finding::DirMissing { dir } => format!("hook directory {dir} is missing"),
            Finding::DirNotDirectory { dir, kind } => {
                format!("hook directory {dir} is {}", kind.describe())
            }
            Finding::DirOwner { dir, actual } => {
                format!("hook directory {dir} is owned by {actual}, expected root")
            }
            Finding::DirGroup { dir, actual } => {
                format!("hook directory {dir} has group {actual}, expected root")
            }
            Finding::DirWritable { dir, mode } => {
                format!("hook directory {dir} has mode {mode}: writable by group or others")
            }
            Finding::DirParent { dir, uid, mode } => format!(
                "hook directory's parent {dir} is not root's alone (uid {uid}, mode {mode}): its owner or anyone who can write it could swap the hooks, and backups refuse to run them; make it root's and writable by root alone"
            ),
            Finding::LogDirUnsafe { dir, why } => format!(
                "the hooks write nothing in log_dir {dir}, only to syslog: {}",
                why.chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect::<String>()
            ),
            Finding::VmTool { tool, busybox } => format!(
                "`{tool}` {} on the VM: deploy, audit and the hooks' checks need GNU coreutils 8.23 or later (stat -c, sha256sum, mktemp, mv -T, timeout); install coreutils{}",
                if *busybox {
                    "is busybox's"
                } else {
                    "is missing"
                },
                if *busybox { " beside busybox" } else { "" }
            ),
            Finding::Unprobed { detail } => format!("could not be checked: {detail}"),
            Finding::ToolsScriptsOff { line, value } => format!(
                "VMware Tools runs no hook: {TOOLS_CONF}:{line} [vmbackup] execScripts = {value}, so every snapshot is only crash-consistent; set it to true or remove the line"
            ),
            Finding::ToolsTimeout {
                line,
                seconds,
                needed,
                freeze_timeout,
            } if *line == 0 => format!(
                "VMware Tools gives the whole quiesced snapshot {seconds} s (its default: no [vmbackup] timeout in {TOOLS_CONF}), less than this host's freeze timeout ({freeze_timeout} s) and a minute for the hooks: a slow freeze or snapshot then fails the backup; set timeout={needed} under [vmbackup]"
            ),
            Finding::ToolsTimeout {
                line,
                seconds,
                needed,
                freeze_timeout,
            } => format!(
                "VMware Tools gives the whole quiesced snapshot {seconds} s ({TOOLS_CONF}:{line} [vmbackup] timeout), less than this host's freeze timeout ({freeze_timeout} s) and a minute for the hooks: a slow freeze or snapshot then fails the backup; set it to at least {needed}{}",
                if *needed <= 900 {
                    " or remove the line (900 s)"
                } else {
                    ""
                }
            ),
            Finding::ToolsOtherScripts { paths } => format!(
                "note: VMware Tools also runs {} (after this hook at the freeze, before post-thaw-script at the thaw): the freeze lasts while they run",
                paths.join(", ")
            ),
            Finding::QgaMissing => "qemu-guest-agent is not installed: no hypervisor's fsfreeze calls this hook; install qemu-guest-agent (or set framework: none when only quiesce runs it)".into(),
            Finding::QgaNotRunning => "qemu-guest-agent is not running on the VM: a snapshot taken now freezes no database; start it (systemctl start qemu-guest-agent)".into(),
            Finding::QgaHookOff => format!(
                "qemu-guest-agent runs no fsfreeze hook (no -F, no fsfreeze-hook in {QGA_CONF}): its freezes never reach the database; add `fsfreeze-hook=/etc/qemu/fsfreeze-hook` under [general] in {QGA_CONF} and restart the agent"
            ),
            Finding::QgaOtherHook { hook } => format!(
                "qemu-guest-agent runs the fsfreeze hook `{hook}`, which is not quiesce's and does not run its directory: this hook is never called; point fsfreeze-hook in {QGA_CONF} at /etc/qemu/fsfreeze-hook (or at this hook) and restart the agent"
            ),
            Finding::QgaStatusIgnored { hook, dir } => format!(
                "note: qemu-guest-agent runs {hook}, which runs the hooks of {dir}; the stock one ignores their exit status, so a failed freeze does not stop the snapshot (which then holds no frozen database); `fsfreeze-hook={dir}/quiesce` in {QGA_CONF} makes a failed freeze fail the snapshot"
            ),
        }
    }

    /// A note: said, but the hook is compliant all the same.
    pub fn is_note(&self) -> bool {
        matches!(
            self,
            Finding::ToolsOtherScripts { .. } | Finding::QgaStatusIgnored { .. }
        )
    }

    /// Findings about the directory rather than the hook file itself.
    pub fn is_about_dir(&self) -> bool {
        matches!(
            self,
            Finding::DirMissing { .. }
                | Finding::DirNotDirectory { .. }
                | Finding::DirOwner { .. }
                | Finding::DirGroup { .. }
                | Finding::DirWritable { .. }
                | Finding::DirParent { .. }
        )
    }
}

/// The hook directory's parents from the probe's `parent` lines: each one
/// that is not root's alone (the rule preflight applies before a run).
pub fn inspect_parents(text: &str) -> Vec<Finding> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.strip_prefix("parent\t")?.split('\t');
            let (dir, uid, mode) = (f.next()?, f.next()?.parse::<u32>().ok()?, f.next()?);
            let bits = u32::from_str_radix(mode, 8).ok()?;
            (uid != 0 || bits & 0o022 != 0).then(|| Finding::DirParent {
                dir: dir.chars().filter(|c| !c.is_control()).collect(),
                uid,
                mode: mode_text(bits),
            })
        })
        .collect()
}

/// The probe's `needs TOOL missing|busybox` lines.
pub fn inspect_needs(text: &str) -> Vec<Finding> {
    const KNOWN: [&str; 6] = ["stat", "sha256sum", "mktemp", "mv", "dd", "timeout"];
    let mut found: Vec<Finding> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("needs\t") else {
            continue;
        };
        let (tool, how) = rest.split_once('\t').unwrap_or((rest, ""));
        let Some(tool) = KNOWN.iter().find(|t| **t == tool) else {
            continue;
        };
        let finding = Finding::VmTool {
            tool: tool.to_string(),
            busybox: how == "busybox",
        };
        if !found.contains(&finding) {
            found.push(finding);
        }
    }
    found
}

/// The probe's `logdir AS WHY` line: a finding when the hooks may write
/// nothing there.
pub fn inspect_log_dir(text: &str, dir: &str) -> Option<Finding> {
    let rest = text.lines().find_map(|l| l.strip_prefix("logdir\t"))?;
    let (writer, why) = rest.split_once('\t').unwrap_or((rest, ""));
    (writer == "none").then(|| Finding::LogDirUnsafe {
        dir: dir.to_string(),
        why: why.to_string(),
    })
}

pub fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

/// What is wrong with the hook directory.
pub fn inspect_dir(dir: &str, facts: Option<&PathFacts>) -> Vec<Finding> {
    let dir = dir.to_string();
    match facts {
        None => vec![Finding::Unprobed {
            detail: format!("no answer about {dir}"),
        }],
        Some(PathFacts::Unreadable(why)) => vec![Finding::Unprobed {
            detail: format!("{dir}: {why}"),
        }],
        Some(PathFacts::Missing) => vec![Finding::DirMissing { dir }],
        Some(PathFacts::Present {
            kind,
            owner,
            group,
            mode,
            ..
        }) => {
            if *kind != FileKind::Directory {
                return vec![Finding::DirNotDirectory {
                    dir,
                    kind: kind.clone(),
                }];
            }
            let mut findings = Vec::new();
            if owner != "root" {
                findings.push(Finding::DirOwner {
                    dir: dir.clone(),
                    actual: owner.clone(),
                });
            }
            if group != "root" {
                findings.push(Finding::DirGroup {
                    dir: dir.clone(),
                    actual: group.clone(),
                });
            }
            if mode & 0o022 != 0 {
                findings.push(Finding::DirWritable {
                    dir,
                    mode: mode_text(*mode),
                });
            }
            findings
        }
    }
}

/// What is wrong with one hook file, given the sha256 of what deploy writes.
pub fn inspect_hook(facts: Option<&PathFacts>, expected_sha256: &str) -> Vec<Finding> {
    match facts {
        None => vec![Finding::Unprobed {
            detail: "no answer from the probe".into(),
        }],
        Some(PathFacts::Unreadable(why)) => vec![Finding::Unprobed {
            detail: why.clone(),
        }],
        Some(PathFacts::Missing) => vec![Finding::Missing],
        Some(PathFacts::Present {
            kind,
            owner,
            group,
            mode,
            sha256,
            link_target,
            ..
        }) => {
            if *kind != FileKind::Regular {
                return vec![Finding::NotRegular {
                    kind: kind.clone(),
                    link_target: link_target.clone(),
                }];
            }
            let mut findings = Vec::new();
            if owner != "root" {
                findings.push(Finding::Owner {
                    actual: owner.clone(),
                });
            }
            if group != "root" {
                findings.push(Finding::Group {
                    actual: group.clone(),
                });
            }
            if *mode != 0o700 {
                findings.push(Finding::Mode {
                    actual: mode_text(*mode),
                });
            }
            match sha256 {
                Some(actual) if actual == expected_sha256 => {}
                Some(actual) => findings.push(Finding::Content {
                    actual_sha256: actual.clone(),
                    expected_sha256: expected_sha256.to_string(),
                }),
                None => findings.push(Finding::Unprobed {
                    detail: "no checksum".into(),
                }),
            }
            findings
        }
    }
}

pub const TOOLS_CONF: &str = "/etc/vmware-tools/tools.conf";
/// Tools' timer for a quiesced snapshot when tools.conf sets none.
pub const TOOLS_DEFAULT_TIMEOUT: u64 = 900;

/// What VMware Tools' configuration says about running the hooks, from the
/// probe's `tools` lines (outside input: only numbers and booleans are kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolsFacts {
    /// execScripts and its line, when the line says false (as Tools reads
    /// it: glib's keyfile boolean, "false" or "0"; anything else keeps the
    /// default, true). The last line of a key wins, as in glib.
    pub scripts_off: Option<(u32, String)>,
    /// timeout in seconds and its line, when it is a number (0: no timer).
    pub timeout: Option<(u32, u64)>,
    pub other_scripts: Vec<String>,
}

pub fn parse_tools(text: &str) -> ToolsFacts {
    let mut tools = ToolsFacts::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("tools\t") else {
            continue;
        };
        if let Some(path) = rest.strip_prefix("script\t") {
            if path.starts_with("/etc/vmware-tools/backupScripts.d/")
                && !path.chars().any(char::is_control)
                && !tools.other_scripts.iter().any(|p| p == path)
            {
                tools.other_scripts.push(path.to_string());
            }
            continue;
        }
        let mut fields = rest.splitn(3, '\t');
        let key = fields.next();
        let at = fields.next().and_then(|n| n.parse::<u32>().ok());
        match (key, at, fields.next()) {
            (Some("execScripts"), Some(at), Some(value)) => {
                let v = value.trim();
                tools.scripts_off = (v.eq_ignore_ascii_case("false") || v == "0")
                    .then(|| (at, v.to_ascii_lowercase()));
            }
            (Some("timeout"), Some(at), Some(value)) => {
                tools.timeout = value.trim().parse().ok().map(|t| (at, t));
            }
            _ => {}
        }
    }
    tools
}

/// What VMware Tools' settings mean for the hook `kind` in `hook_dir`.
/// Tools' timer must outlast the freeze timeout (a snapshot the instance
/// still holds validly must not be aborted by Tools) and a minute for the
/// hooks themselves, and never be under `TOOLS_TIMEOUT_FLOOR`.
pub fn tools_timeout_needed(freeze_timeout_secs: u64) -> u64 {
    (freeze_timeout_secs + 60).max(TOOLS_TIMEOUT_FLOOR)
}

pub fn inspect_tools(tools: &ToolsFacts, kind: HookKind, freeze_timeout_secs: u64) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some((line, value)) = &tools.scripts_off {
        findings.push(Finding::ToolsScriptsOff {
            line: *line,
            value: value.clone(),
        });
    }
    let needed = tools_timeout_needed(freeze_timeout_secs);
    // No line: Tools' own default (line 0 in the finding).
    let (line, seconds) = tools.timeout.unwrap_or((0, TOOLS_DEFAULT_TIMEOUT));
    if seconds > 0 && seconds < needed {
        findings.push(Finding::ToolsTimeout {
            line,
            seconds,
            needed,
            freeze_timeout: freeze_timeout_secs,
        });
    }
    if kind == HookKind::PreFreeze && !tools.other_scripts.is_empty() {
        findings.push(Finding::ToolsOtherScripts {
            paths: tools.other_scripts.clone(),
        });
    }
    findings
}

/// What the framework that calls the hooks says about running `kind` on
/// `host`: VMware Tools' settings, qemu-guest-agent's, or nothing.
pub fn inspect_framework(facts: &HostFacts, host: &Host, kind: HookKind) -> Vec<Finding> {
    match host.framework {
        Framework::Vmware => inspect_tools(&facts.tools, kind, host.freeze_timeout.as_secs()),
        Framework::QemuGa => qemu_ga::inspect(&facts.qga, host),
        Framework::None => Vec::new(),
    }
}

/// The facts of one host: its hook directory, both hooks, and what VMware
/// Tools' settings say about running them.
pub struct HostFacts {
    pub dir: Vec<Finding>,
    pub hooks: Vec<(HookKind, String, Vec<Finding>, Option<PathFacts>)>,
    pub tools: ToolsFacts,
    /// qemu-guest-agent's settings (probed for qemu-ga hosts only).
    pub qga: QgaFacts,
    /// log_dir as the hooks see it, when the probe was asked (audit).
    pub log_dir: Option<Finding>,
}

impl HostFacts {
    pub fn probe_args(host: &Host) -> Vec<String> {
        let mut args = vec![host.hook_dir.clone(), format!("log_dir={}", host.log_dir)];
        if host.framework == Framework::QemuGa {
            args.push("framework=qemu-ga".into());
        }
        args.extend(HookKind::of(host).iter().map(|k| k.path(host)));
        args
    }

    /// The probe's `output` against `expected`, the hooks deploy writes.
    pub fn from_probe(host: &Host, output: &str, expected: &[hooks::Rendered]) -> HostFacts {
        let facts = parse_probe(output);
        let mut dir = inspect_dir(&host.hook_dir, facts.get(&host.hook_dir));
        dir.extend(inspect_parents(output));
        dir.extend(inspect_needs(output));
        let hooks = expected
            .iter()
            .map(|hook| {
                let path = hook.kind.path(host);
                let found = facts.get(&path);
                (
                    hook.kind,
                    path.clone(),
                    inspect_hook(found, &hook.sha256),
                    found.cloned(),
                )
            })
            .collect();
        HostFacts {
            dir,
            hooks,
            tools: parse_tools(output),
            qga: qemu_ga::parse(output),
            log_dir: inspect_log_dir(output, &host.log_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_the_chain_the_tools_and_the_log_dir() {
        let text = "parent\t/srv/q\t1001\t755\nparent\t/srv\t0\t755\nparent\t/tmp\t0\t1777\nneeds\tmv\tbusybox\nneeds\tsh\tmissing\nneeds\tmv\tbusybox\nlogdir\tnone\t/x is a file\n";
        let parents: Vec<String> = inspect_parents(text).iter().map(Finding::message).collect();
        assert_eq!(parents.len(), 2, "{parents:?}");
        assert!(parents[0].contains("/srv/q is not root's alone (uid 1001, mode 0755)"));
        assert!(parents[1].contains("/tmp is not root's alone (uid 0, mode 1777)"));
        // Only the tools quiesce asks about, each once.
        assert_eq!(
            inspect_needs(text),
            [Finding::VmTool {
                tool: "mv".into(),
                busybox: true
            }]
        );
        assert_eq!(
            inspect_log_dir(text, "/x").map(|f| f.code()),
            Some("log-dir-unsafe")
        );
        assert_eq!(inspect_log_dir("logdir\troot\t\n", "/x"), None);
    }

    #[test]
    fn parses_each_kind_of_line() {
        let out = format!(
            "missing\t/x\nlink\t/usr/sbin/post-thaw-script\t/tmp/evil\nstat\t/usr/sbin\tdirectory\troot\troot\t755\t4096\nstat\t/usr/sbin/pre-freeze-script\tregular file\troot\troot\t700\t12\nstat\t/usr/sbin/post-thaw-script\tsymbolic link\troot\troot\t777\t9\n{SHA}  /usr/sbin/pre-freeze-script\n{SHA}  /usr/sbin/post-thaw-script\nnoise\n"
        );
        let facts = parse_probe(&out);
        assert_eq!(inspect_dir("/usr/sbin", facts.get("/usr/sbin")), vec![]);
        assert_eq!(
            inspect_hook(facts.get("/usr/sbin/pre-freeze-script"), SHA),
            vec![]
        );
        assert_eq!(
            inspect_hook(facts.get("/usr/sbin/post-thaw-script"), SHA)[0].message(),
            "is a symbolic link to /tmp/evil, not a regular file"
        );
        assert_eq!(inspect_hook(facts.get("/x"), SHA), vec![Finding::Missing]);
    }

    #[test]
    fn names_every_difference() {
        let facts = PathFacts::Present {
            kind: FileKind::Regular,
            owner: "nobody".into(),
            group: "staff".into(),
            mode: 0o755,
            size: 1,
            sha256: Some("f".repeat(64)),
            link_target: None,
        };
        let codes: Vec<&str> = inspect_hook(Some(&facts), SHA)
            .iter()
            .map(Finding::code)
            .collect();
        assert_eq!(codes, ["owner", "group", "mode", "content"]);
        let dir = PathFacts::Present {
            kind: FileKind::Directory,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o777,
            size: 1,
            sha256: None,
            link_target: None,
        };
        assert_eq!(
            inspect_dir("/usr/sbin", Some(&dir))[0].message(),
            "hook directory /usr/sbin has mode 0777: writable by group or others"
        );
    }

    #[test]
    fn tools_settings_are_read_as_vmware_tools_reads_them() {
        let out = "tools\texecScripts\t3\tFALSE\ntools\ttimeout\t4\t30\ntools\tscript\t/etc/vmware-tools/backupScripts.d/50-app\ntools\tscript\t/elsewhere\nstat\t/usr/sbin\tdirectory\troot\troot\t755\t4096\n";
        let tools = parse_tools(out);
        assert_eq!(
            tools,
            ToolsFacts {
                scripts_off: Some((3, "false".into())),
                timeout: Some((4, 30)),
                other_scripts: vec!["/etc/vmware-tools/backupScripts.d/50-app".into()],
            }
        );
        let codes = |kind| {
            inspect_tools(&tools, kind, 600)
                .iter()
                .map(Finding::code)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(HookKind::PreFreeze),
            ["tools-scripts-off", "tools-timeout", "tools-other-scripts"]
        );
        assert_eq!(
            codes(HookKind::PostThaw),
            ["tools-scripts-off", "tools-timeout"]
        );
        // Anything but false or 0 keeps Tools' default (true); 0 s is no timer.
        for (line, off) in [("true", false), ("yes", false), ("0", true), ("", false)] {
            let t = parse_tools(&format!(
                "tools\texecScripts\t1\t{line}\ntools\ttimeout\t2\t0\n"
            ));
            assert_eq!(t.scripts_off.is_some(), off, "{line}");
            assert_eq!(
                inspect_tools(&t, HookKind::PostThaw, 600).len(),
                usize::from(off)
            );
        }
        assert_eq!(parse_tools("tools\ttimeout\t1\t-5\n").timeout, None);
        // No line: Tools' default 900 s, too short for a 20-minute freeze timeout.
        let none = parse_tools("");
        assert!(inspect_tools(&none, HookKind::PostThaw, 600).is_empty());
        assert_eq!(
            inspect_tools(&none, HookKind::PostThaw, 1200)[0].message(),
            "VMware Tools gives the whole quiesced snapshot 900 s (its default: no [vmbackup] timeout in /etc/vmware-tools/tools.conf), less than this host's freeze timeout (1200 s) and a minute for the hooks: a slow freeze or snapshot then fails the backup; set timeout=1260 under [vmbackup]"
        );
        // The floor follows the host's freeze timeout.
        let t = parse_tools("tools\ttimeout\t7\t900\n");
        assert!(inspect_tools(&t, HookKind::PostThaw, 600).is_empty());
        let found = inspect_tools(&t, HookKind::PostThaw, 1200);
        assert_eq!(
            found[0].message(),
            "VMware Tools gives the whole quiesced snapshot 900 s (/etc/vmware-tools/tools.conf:7 [vmbackup] timeout), less than this host's freeze timeout (1200 s) and a minute for the hooks: a slow freeze or snapshot then fails the backup; set it to at least 1260"
        );
    }

    proptest::proptest! {
        #[test]
        fn tools_parser_never_panics(text in "\\PC{0,300}") {
            let tools = parse_tools(&text);
            let _ = inspect_tools(&tools, HookKind::PreFreeze, 600);
        }

        #[test]
        fn probe_parser_never_panics(text in "\\PC{0,300}") {
            let _ = parse_probe(&text);
        }

        /// The probe's parent, needs and logdir lines: any text, any fields.
        #[test]
        fn chain_and_tool_lines_never_panic(kind in "parent|needs|logdir", fields in proptest::collection::vec("[a-z0-9/ \t-]{0,12}", 0..6)) {
            let text = format!("{kind}\t{}\n", fields.join("\t"));
            for finding in inspect_parents(&text).iter().chain(&inspect_needs(&text)).chain(&inspect_log_dir(&text, "/l")) {
                let _ = finding.message();
            }
        }

        #[test]
        fn probe_parser_never_panics_on_tabbed_lines(fields in proptest::collection::vec("[a-z0-9/ -]{0,12}", 0..12)) {
            let line = format!("stat\t{}", fields.join("\t"));
            for facts in parse_probe(&line).values() {
                let _ = inspect_hook(Some(facts), SHA);
                let _ = inspect_dir("/d", Some(facts));
            }
        }
    }
}
