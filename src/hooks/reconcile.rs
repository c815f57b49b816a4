//! Deploy and audit on one host: probe the facts, compare them with what
//! quiesce would write, and (when asked) write only what differs, atomically,
//! then verify — for deploy, all in one remote script, one round trip.
//! `audit` is this with writing turned off.

use crate::hooks::facts::{
    FileKind, Finding, HostFacts, PROBE_SCRIPT, PathFacts, inspect_framework,
};
use crate::hooks::{self, HookKind, Rendered};
use crate::inventory::{Framework, Host};
use crate::output::error::HostError;
use crate::output::event::{Event, EventSender, HookRecord, Status};
use crate::remote::transport::{Connector, Output, Transport};
use std::sync::LazyLock;

/// A whole deploy of one host in one round trip: probe, directory fix, the
/// writes of what differs and the probe after them, with the three scripts
/// it calls as functions (see `scripts/deploy.sh`).
static DEPLOY_SCRIPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "probe() (\n{PROBE_SCRIPT}\n)\ndir_fix() (\n{}\n)\nwrite_hook() (\n{}\n)\n{}",
        include_str!("../remote/scripts/dir_fix.sh"),
        include_str!("../remote/scripts/write_hook.sh"),
        include_str!("../remote/scripts/deploy.sh"),
    )
});

/// The deploy script as it is sent (for the shellcheck test).
pub fn deploy_script() -> &'static str {
    &DEPLOY_SCRIPT
}

/// The step that runs the deploy script, in events and errors.
const DEPLOY_STEP: &str = "probe and write";

const READ_SCRIPT: &str = include_str!("../remote/scripts/read_hook.sh");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report findings only (`audit`).
    Audit,
    /// Report what would change (`deploy --check`).
    Check,
    /// Write what differs (`deploy`, `audit --fix`).
    Apply,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mode: Mode,
    pub force: bool,
    pub diff: bool,
    /// `audit --fix`: hooks already right are reported as compliant.
    pub audit_labels: bool,
}

/// Connects to `host`, reconciles it and emits a record per hook.
pub async fn host(host: Host, connector: &dyn Connector, settings: Settings, events: EventSender) {
    let connection = match connector.connect(&host, &events).await {
        Ok(c) => c,
        Err(error) => {
            emit_all(&host, &events, Status::Unreachable, &error);
            events.send(Event::HostFinished {
                host: host.name.clone(),
                error: Some(error),
            });
            return;
        }
    };
    let result = on_connection(&*connection, &host, settings, &events).await;
    if let Err(error) = &result {
        emit_all(&host, &events, Status::Failed, error);
    }
    connection.close().await;
    events.send(Event::HostFinished {
        host: host.name.clone(),
        error: result.err(),
    });
}

fn emit_all(host: &Host, events: &EventSender, status: Status, error: &HostError) {
    for &kind in HookKind::of(host) {
        events.send(Event::Hook(HookRecord {
            host: host.name.clone(),
            address: host.address.clone(),
            hook: kind,
            path: kind.path(host),
            status: status.clone(),
            findings: Vec::new(),
            detail: Some(
                error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            diff: None,
            error_kind: Some(error.kind()),
        }));
    }
}

/// Runs one script as the step `step`, with its start and end as events.
async fn step(
    connection: &dyn Transport,
    host: &Host,
    events: &EventSender,
    step: &'static str,
    script: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<Output, HostError> {
    events.send(Event::StepStarted {
        host: host.name.clone(),
        step,
    });
    let output = connection.run_script(step, script, args, stdin).await?;
    events.send(Event::StepFinished {
        host: host.name.clone(),
        step,
        ok: output.success(),
    });
    Ok(output)
}

async fn probe(
    connection: &dyn Transport,
    host: &Host,
    events: &EventSender,
    expected: &[Rendered],
) -> Result<HostFacts, HostError> {
    let args = HostFacts::probe_args(host);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = step(connection, host, events, "probe", PROBE_SCRIPT, &args, None).await?;
    if !output.success() {
        return Err(HostError::StepFailed {
            target: host.target(),
            step: "probe".into(),
            detail: output.describe(),
        });
    }
    Ok(HostFacts::from_probe(host, &output.stdout_text(), expected))
}

/// What deploy means to do about one hook, decided from the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Nothing,
    Write,
    /// The hook is right; only its directory is not.
    FixDir,
}

async fn on_connection(
    connection: &dyn Transport,
    host: &Host,
    settings: Settings,
    events: &EventSender,
) -> Result<(), HostError> {
    let rendered = hooks::render_all(host);
    // --diff reads the hooks as they are before anything is written.
    let mut diffs = Vec::new();
    if settings.mode != Mode::Apply || settings.diff {
        let facts = probe(connection, host, events, &rendered).await?;
        if settings.diff {
            diffs = diffs_of(connection, host, &facts, &rendered).await?;
        }
        if settings.mode != Mode::Apply {
            let records = decide(host, settings, &facts, diffs);
            for (record, _) in records {
                events.send(Event::Hook(record));
            }
            return Ok(());
        }
    }
    let report = deploy(connection, host, events, settings.force, &rendered).await?;
    let facts = HostFacts::from_probe(host, &report.before, &rendered);
    let mut records = decide(host, settings, &facts, diffs);
    settle(&mut records, &report);
    let after = report
        .after
        .as_ref()
        .map(|a| HostFacts::from_probe(host, a, &rendered));
    verify(after.as_ref(), &mut records);
    for (record, _) in records {
        events.send(Event::Hook(record));
    }
    Ok(())
}

/// Each hook's status from the facts, and what deploy is to do about it.
fn decide(
    host: &Host,
    settings: Settings,
    facts: &HostFacts,
    diffs: Vec<(HookKind, String)>,
) -> Vec<(HookRecord, Intent)> {
    let mut records = Vec::new();
    for (kind, path, hook_findings, found) in &facts.hooks {
        let mut findings = facts.dir.clone();
        findings.extend(hook_findings.iter().cloned());
        // What deploy can fix; Tools' settings are the site's to change, and
        // said alongside (a note never makes a hook non-compliant).
        let nothing_to_fix = findings.is_empty();
        let mut tools = inspect_framework(facts, host, *kind);
        tools.extend(facts.log_dir.clone());
        let compliant = nothing_to_fix && tools.iter().all(Finding::is_note);
        findings.extend(tools);
        let diff = diffs
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, d)| d.clone());
        let in_the_way =
            matches!(found, Some(PathFacts::Present { kind, .. }) if *kind != FileKind::Regular);
        let check = settings.mode == Mode::Check;
        // What deploy refuses to work around, --force or not (deploy.sh).
        let unfixable = findings.iter().find_map(|f| match f {
            Finding::DirParent { dir, .. } => Some(format!(
                "refused: the hook directory's parent {dir} is not root's alone; fix it by hand (--force does not override this)"
            )),
            Finding::VmTool { tool, .. } => Some(format!(
                "refused: `{tool}` is not GNU coreutils' on the VM; install coreutils (--force does not override this)"
            )),
            _ => None,
        });
        let (status, detail, intent) = if settings.mode == Mode::Audit {
            let status = if compliant {
                Status::Compliant
            } else {
                Status::NonCompliant
            };
            (status, None, Intent::Nothing)
        } else if nothing_to_fix {
            let status = if settings.audit_labels && compliant {
                Status::Compliant
            } else if settings.audit_labels {
                Status::NonCompliant
            } else {
                Status::Unchanged
            };
            (status, None, Intent::Nothing)
        } else if let Some(detail) = unfixable {
            (Status::Refused, Some(detail), Intent::Nothing)
        } else if hook_findings.is_empty() {
            // Only the directory was wrong.
            if check {
                let detail = "would fix the hook directory".to_string();
                (Status::WouldChange, Some(detail), Intent::Nothing)
            } else {
                let detail = "fixed the hook directory".to_string();
                (Status::Updated, Some(detail), Intent::FixDir)
            }
        } else if in_the_way && !settings.force {
            (Status::Refused, Some(refusal(path)), Intent::Nothing)
        } else {
            let created = matches!(found, Some(PathFacts::Missing));
            let (status, detail) = match (check, created) {
                (true, true) => (Status::WouldChange, "would create"),
                (true, false) => (Status::WouldChange, "would update"),
                (false, true) => (Status::Created, "created"),
                (false, false) => (Status::Updated, "updated"),
            };
            let intent = if check {
                Intent::Nothing
            } else {
                Intent::Write
            };
            (status, Some(detail.to_string()), intent)
        };
        let record = HookRecord {
            host: host.name.clone(),
            address: host.address.clone(),
            hook: *kind,
            path: path.clone(),
            status,
            findings,
            detail,
            diff,
            error_kind: None,
        };
        records.push((record, intent));
    }
    records
}

fn refusal(path: &str) -> String {
    format!("{path} is not a regular file: not replaced (use --force to replace it)")
}

/// What the deploy script said of one host.
#[derive(Debug, Default, PartialEq, Eq)]
struct DeployReport {
    /// The probe before anything changed.
    before: String,
    /// The probe after the changes; none when nothing changed.
    after: Option<String>,
    dir_fixed: bool,
    wrote: Vec<String>,
    refused: Vec<String>,
    /// The last step the script started (the one that failed, if it did).
    step: Option<String>,
}

impl DeployReport {
    fn parse(text: &str) -> DeployReport {
        let mut report = DeployReport::default();
        let mut after: Option<String> = None;
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["section", "before"] => {}
                ["section", "after"] => after = Some(String::new()),
                ["step", name] => report.step = Some(name.to_string()),
                ["did", "dir-fixed"] => report.dir_fixed = true,
                ["did", "wrote", path] => report.wrote.push(path.to_string()),
                ["did", "refused", path] => report.refused.push(path.to_string()),
                ["did", ..] => {}
                _ => {
                    let section = after.as_mut().unwrap_or(&mut report.before);
                    section.push_str(line);
                    section.push('\n');
                }
            }
        }
        report.after = after;
        report
    }
}

/// Runs the deploy script: one round trip whatever it has to do.
async fn deploy(
    connection: &dyn Transport,
    host: &Host,
    events: &EventSender,
    force: bool,
    rendered: &[Rendered],
) -> Result<DeployReport, HostError> {
    let mut args = vec![
        host.hook_dir.clone(),
        if force { "force" } else { "-" }.to_string(),
        match host.framework {
            Framework::QemuGa => "framework=qemu-ga",
            Framework::Vmware | Framework::None => "-",
        }
        .to_string(),
    ];
    let mut stdin = Vec::new();
    for hook in rendered {
        args.push(hook.kind.path(host));
        args.push(hook.sha256.clone());
        args.push(hook.content.len().to_string());
        stdin.extend_from_slice(hook.content.as_bytes());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = step(
        connection,
        host,
        events,
        DEPLOY_STEP,
        &DEPLOY_SCRIPT,
        &args,
        Some(&stdin),
    )
    .await?;
    let report = DeployReport::parse(&output.stdout_text());
    if !output.success() {
        return Err(HostError::StepFailed {
            target: host.target(),
            step: report.step.unwrap_or_else(|| DEPLOY_STEP.into()),
            detail: output.describe(),
        });
    }
    Ok(report)
}

/// Marks each intent the script did not carry out.
fn settle(records: &mut [(HookRecord, Intent)], report: &DeployReport) {
    for (record, intent) in records.iter_mut() {
        let done = match intent {
            Intent::Nothing => continue,
            Intent::FixDir => report.dir_fixed,
            Intent::Write => report.wrote.contains(&record.path),
        };
        if done {
            continue;
        }
        if report.refused.contains(&record.path) {
            // It became something else than a regular file since the probe.
            record.status = Status::Refused;
            record.detail = Some(refusal(&record.path));
        } else {
            record.status = Status::Failed;
            record.detail = Some("left as it was: the deploy script found it right".into());
        }
        *intent = Intent::Nothing;
    }
}

/// What the probe after writing says: every hook written (or whose directory
/// was fixed) must now be exactly right.
fn verify(after: Option<&HostFacts>, records: &mut [(HookRecord, Intent)]) {
    for (record, _) in records.iter_mut().filter(|(r, i)| {
        *i != Intent::Nothing && matches!(r.status, Status::Created | Status::Updated)
    }) {
        let Some(after) = after else {
            record.status = Status::Failed;
            record.detail = Some("not verified: nothing was probed after writing".into());
            continue;
        };
        let mut left = after.dir.clone();
        if let Some((_, _, findings, _)) = after.hooks.iter().find(|(k, ..)| *k == record.hook) {
            left.extend(findings.iter().cloned());
        }
        if !left.is_empty() {
            let what: Vec<String> = left.iter().map(Finding::message).collect();
            record.status = Status::Failed;
            record.detail = Some(format!("still wrong after writing: {}", what.join("; ")));
        }
    }
}

/// The unified diff of each hook that differs: what is there against what
/// deploy writes.
async fn diffs_of(
    connection: &dyn Transport,
    host: &Host,
    facts: &HostFacts,
    rendered: &[Rendered],
) -> Result<Vec<(HookKind, String)>, HostError> {
    let mut diffs = Vec::new();
    for ((kind, path, findings, found), hook) in facts.hooks.iter().zip(rendered) {
        if !findings.is_empty() {
            diffs.push((
                *kind,
                diff_against(connection, host, path, found, &hook.content).await?,
            ));
        }
    }
    Ok(diffs)
}

async fn diff_against(
    connection: &dyn Transport,
    host: &Host,
    path: &str,
    found: &Option<PathFacts>,
    content: &str,
) -> Result<String, HostError> {
    let current = match found {
        Some(PathFacts::Present {
            kind: FileKind::Regular,
            ..
        }) => {
            let output = connection
                .run_script("read hook", READ_SCRIPT, &[path], None)
                .await?;
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        _ => String::new(),
    };
    let text = similar::TextDiff::from_lines(current.as_str(), content)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{}:{path} (now)", host.name),
            &format!("{}:{path} (deployed)", host.name),
        )
        .to_string();
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};

    /// Runs the deploy script on this machine against `dir`, as deploy sends
    /// it: both hooks' paths, checksums and sizes, their bytes on stdin.
    fn run_deploy(
        dir: &Path,
        hooks: &[(&str, &[u8])],
        stdin: &[u8],
        force: bool,
    ) -> (i32, String, String) {
        let dir_text = dir.display().to_string();
        let mut args = vec![
            dir_text.clone(),
            if force { "force" } else { "-" }.to_string(),
            "-".to_string(),
        ];
        for (name, content) in hooks {
            args.push(format!("{dir_text}/{name}"));
            args.push(hooks::sha256_hex(content));
            args.push(content.len().to_string());
        }
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(deploy_script())
            .arg("sh")
            .args(&args)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The script may end without reading all of it.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A directory under /run: deploy refuses a hook directory below a
    /// parent others can write, and /tmp is one.
    fn root_tempdir() -> tempfile::TempDir {
        tempfile::tempdir_in("/run").unwrap()
    }

    /// A hook directory in /tmp (sticky, world-writable) is refused whatever
    /// --force says, and nothing is written.
    #[test]
    fn deploy_script_refuses_a_directory_under_a_parent_others_can_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hooks");
        for force in [false, true] {
            let (code, report, err) = both(&dir, &all(), force);
            assert_eq!(code, 4, "{err}");
            assert!(
                err.contains("its parent /tmp is not root's alone (uid 0, mode 1777)"),
                "{err}"
            );
            assert!(report.wrote.is_empty() && !dir.exists());
        }
    }

    const PRE: &[u8] = b"#!/bin/sh\necho pre\n";
    const POST: &[u8] = b"#!/bin/sh\necho post-thaw, a little longer\n";

    fn both(dir: &Path, stdin: &[u8], force: bool) -> (i32, DeployReport, String) {
        let (code, out, err) = run_deploy(dir, &[("pre", PRE), ("post", POST)], stdin, force);
        (code, DeployReport::parse(&out), err)
    }

    fn all() -> Vec<u8> {
        [PRE, POST].concat()
    }

    fn stat(path: &Path) -> String {
        let out = Command::new("stat")
            .args(["-c", "%U:%G %a %F"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn is_right(path: &Path, content: &[u8]) -> bool {
        stat(path) == "root:root 700 regular file" && std::fs::read(path).unwrap() == content
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".quiesce-"))
            .collect()
    }

    fn at(dir: &Path, name: &str) -> String {
        dir.join(name).display().to_string()
    }

    #[test]
    fn deploy_script_writes_what_differs_and_keeps_what_is_right() {
        let tmp = root_tempdir();
        let dir = tmp.path();
        let (pre, post) = (dir.join("pre"), dir.join("post"));

        let (code, report, err) = both(dir, &all(), false);
        assert_eq!(code, 0, "{err}");
        assert_eq!(report.wrote, [at(dir, "pre"), at(dir, "post")]);
        assert!(
            report
                .before
                .contains(&format!("missing\t{}\n", at(dir, "pre")))
        );
        assert!(report.after.is_some());
        assert!(is_right(&pre, PRE) && is_right(&post, POST));

        // Right already: nothing written, nothing read, no probe after.
        let (code, report, _) = both(dir, &all(), false);
        assert_eq!(code, 0);
        assert_eq!((report.wrote.len(), report.after), (0, None));

        // The first kept, the second written: the first's bytes are skipped.
        std::fs::write(&post, "tampered").unwrap();
        let (_, report, err) = both(dir, &all(), false);
        assert_eq!(report.wrote, [at(dir, "post")], "{err}");
        assert!(is_right(&pre, PRE) && is_right(&post, POST));

        // The first written, the second kept: what is left of stdin is not read.
        std::fs::set_permissions(&pre, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (_, report, _) = both(dir, &all(), false);
        assert_eq!(report.wrote, [at(dir, "pre")]);
        assert!(is_right(&pre, PRE) && is_right(&post, POST));
        assert_eq!(leftovers(dir), Vec::<String>::new());
    }

    #[test]
    fn deploy_script_never_writes_through_a_symlink_and_replaces_one_only_with_force() {
        let tmp = root_tempdir();
        let dir = tmp.path();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, "exit 0\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("post")).unwrap();

        let (code, report, _) = both(dir, &all(), false);
        assert_eq!(code, 0);
        assert_eq!(report.wrote, [at(dir, "pre")]);
        assert_eq!(report.refused, [at(dir, "post")]);
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "exit 0\n");

        let (code, report, _) = both(dir, &all(), true);
        assert_eq!(code, 0);
        assert_eq!(report.wrote, [at(dir, "post")]);
        assert!(is_right(&dir.join("post"), POST));
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "exit 0\n");

        // A directory in the way is never removed, even with --force.
        std::fs::remove_file(dir.join("pre")).unwrap();
        std::fs::create_dir(dir.join("pre")).unwrap();
        let (code, report, err) = both(dir, &all(), true);
        assert_eq!(code, 3);
        assert_eq!(report.step.as_deref(), Some("write pre"));
        assert!(err.contains("is a directory; remove it by hand"), "{err}");
    }

    #[test]
    fn deploy_script_refuses_a_damaged_upload_and_leaves_the_old_hook() {
        let tmp = root_tempdir();
        let dir = tmp.path();
        std::fs::write(dir.join("pre"), "old\n").unwrap();
        // The connection dropped halfway through the first hook's bytes.
        let (code, report, err) = both(dir, &PRE[..5], false);
        assert_eq!(code, 4, "{err}");
        assert_eq!(report.step.as_deref(), Some("write pre"));
        assert!(err.contains("the upload arrived damaged"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.join("pre")).unwrap(), "old\n");
        assert_eq!(leftovers(dir), Vec::<String>::new());
        assert!(
            !dir.join("post").exists(),
            "nothing written after a failed step"
        );
    }

    #[test]
    fn deploy_script_fixes_the_directory_or_refuses_a_shared_one() {
        let tmp = root_tempdir();
        let dir = tmp.path().join("hooks");
        std::fs::create_dir(&dir).unwrap();
        let mode = |m| std::os::unix::fs::PermissionsExt::from_mode(m);
        std::fs::set_permissions(&dir, mode(0o777)).unwrap();
        let (code, report, err) = both(&dir, &all(), false);
        assert_eq!(code, 4);
        assert_eq!(report.step.as_deref(), Some("fix hook directory"));
        assert!(err.contains("refusing to change"), "{err}");
        assert!(report.wrote.is_empty() && !dir.join("pre").exists());

        let (code, report, err) = both(&dir, &all(), true);
        assert_eq!(code, 0, "{err}");
        assert!(report.dir_fixed);
        assert_eq!(stat(&dir), "root:root 755 directory");
        // Right hooks in a wrong directory: the directory alone is fixed.
        std::fs::set_permissions(&dir, mode(0o775)).unwrap();
        let (_, report, _) = both(&dir, &all(), true);
        assert!(report.dir_fixed && report.wrote.is_empty() && report.after.is_some());
    }

    #[test]
    fn report_parsing_splits_the_two_probes_from_the_outcomes() {
        let text = "section\tbefore\nmissing\t/d/a\nstat\t/d\tdirectory\troot\troot\t755\t1\nstep\tfix hook directory\ndid\tdir-fixed\ndid\tkept\t/d/b\nstep\twrite a\ndid\twrote\t/d/a\nsection\tafter\nstat\t/d/a\tregular file\troot\troot\t700\t3\n";
        assert_eq!(
            DeployReport::parse(text),
            DeployReport {
                before: "missing\t/d/a\nstat\t/d\tdirectory\troot\troot\t755\t1\n".into(),
                after: Some("stat\t/d/a\tregular file\troot\troot\t700\t3\n".into()),
                dir_fixed: true,
                wrote: vec!["/d/a".into()],
                refused: vec![],
                step: Some("write a".into()),
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn report_parsing_never_panics(text in "\\PC{0,300}") {
            let _ = DeployReport::parse(&text);
        }
    }
}
