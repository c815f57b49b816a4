//! Deploy and audit on one host: probe the facts, compare them with what
//! quiesce would write, and (when asked) write only what differs, atomically,
//! then verify. `audit` is this with writing turned off.

use crate::hooks::facts::{FileKind, Finding, HostFacts, PROBE_SCRIPT, PathFacts};
use crate::hooks::{self, HookKind};
use crate::inventory::Host;
use crate::output::error::HostError;
use crate::output::event::{Event, EventSender, HookRecord, Status};
use crate::remote::transport::{Connector, Transport};

/// Writes one hook: temporary file in the same directory, checksum checked,
/// root:root 0700, flushed, then renamed over the old one. A symlink or other
/// non-regular file at the path is replaced only with `force`; it is never
/// written through.
const WRITE_SCRIPT: &str = include_str!("../remote/scripts/write_hook.sh");

/// Makes the hook directory safe, or refuses to take over a shared one.
pub const DIR_FIX_SCRIPT: &str = include_str!("../remote/scripts/dir_fix.sh");

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
    for kind in HookKind::ALL {
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

async fn probe(
    connection: &dyn Transport,
    host: &Host,
    events: &EventSender,
    step: &'static str,
) -> Result<HostFacts, HostError> {
    events.send(Event::StepStarted {
        host: host.name.clone(),
        step,
    });
    let args = HostFacts::probe_args(host);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = connection
        .run_script(step, PROBE_SCRIPT, &args, None)
        .await?;
    let ok = output.success();
    events.send(Event::StepFinished {
        host: host.name.clone(),
        step,
        ok,
    });
    if !ok {
        return Err(HostError::StepFailed {
            target: host.target(),
            step: step.into(),
            detail: output.describe(),
        });
    }
    Ok(HostFacts::from_probe(host, &output.stdout_text()))
}

async fn on_connection(
    connection: &dyn Transport,
    host: &Host,
    settings: Settings,
    events: &EventSender,
) -> Result<(), HostError> {
    let facts = probe(connection, host, events, "probe").await?;
    let mut dir_fixed = false;
    if settings.mode == Mode::Apply && facts.dir.iter().any(Finding::is_about_dir) {
        events.send(Event::StepStarted {
            host: host.name.clone(),
            step: "fix hook directory",
        });
        let output = connection
            .run_script(
                "fix hook directory",
                DIR_FIX_SCRIPT,
                &[&host.hook_dir, if settings.force { "force" } else { "-" }],
                None,
            )
            .await?;
        events.send(Event::StepFinished {
            host: host.name.clone(),
            step: "fix hook directory",
            ok: output.success(),
        });
        if !output.success() {
            return Err(HostError::StepFailed {
                target: host.target(),
                step: "fix hook directory".into(),
                detail: output.describe(),
            });
        }
        dir_fixed = true;
    }
    let mut records = Vec::new();
    let mut written = false;
    for (kind, path, hook_findings, found) in &facts.hooks {
        let mut findings = facts.dir.clone();
        findings.extend(hook_findings.iter().cloned());
        let content = hooks::render(*kind, host);
        let diff = if settings.diff && !hook_findings.is_empty() {
            Some(diff_against(connection, host, path, found, &content).await?)
        } else {
            None
        };
        let in_the_way =
            matches!(found, Some(PathFacts::Present { kind, .. }) if *kind != FileKind::Regular);
        let (status, detail) = if findings.is_empty() {
            (
                if settings.audit_labels || settings.mode == Mode::Audit {
                    Status::Compliant
                } else {
                    Status::Unchanged
                },
                None,
            )
        } else if settings.mode == Mode::Audit {
            (Status::NonCompliant, None)
        } else if hook_findings.is_empty() {
            // Only the directory was wrong.
            if settings.mode == Mode::Check {
                (
                    Status::WouldChange,
                    Some("would fix the hook directory".to_string()),
                )
            } else {
                (
                    Status::Updated,
                    Some("fixed the hook directory".to_string()),
                )
            }
        } else if in_the_way && !settings.force {
            (
                Status::Refused,
                Some(format!(
                    "{path} is not a regular file: not replaced (use --force to replace it)"
                )),
            )
        } else if settings.mode == Mode::Check {
            (
                Status::WouldChange,
                Some(if matches!(found, Some(PathFacts::Missing)) {
                    "would create".into()
                } else {
                    "would update".into()
                }),
            )
        } else {
            write(connection, host, *kind, &content, settings.force).await?;
            written = true;
            let created = matches!(found, Some(PathFacts::Missing));
            (
                if created {
                    Status::Created
                } else {
                    Status::Updated
                },
                Some(if created {
                    "created".into()
                } else {
                    "updated".into()
                }),
            )
        };
        records.push(HookRecord {
            host: host.name.clone(),
            address: host.address.clone(),
            hook: *kind,
            path: path.clone(),
            status,
            findings,
            detail,
            diff,
            error_kind: None,
        });
    }
    if written || dir_fixed {
        verify(connection, host, events, &mut records).await?;
    }
    for record in records {
        events.send(Event::Hook(record));
    }
    Ok(())
}

async fn write(
    connection: &dyn Transport,
    host: &Host,
    kind: HookKind,
    content: &str,
    force: bool,
) -> Result<(), HostError> {
    let step = match kind {
        HookKind::PreFreeze => "write pre-freeze-script",
        HookKind::PostThaw => "write post-thaw-script",
    };
    let sha = hooks::sha256_hex(content.as_bytes());
    let args = [
        host.hook_dir.as_str(),
        kind.file_name(),
        sha.as_str(),
        if force { "force" } else { "" },
    ];
    let output = connection
        .run_script(step, WRITE_SCRIPT, &args, Some(content.as_bytes()))
        .await?;
    if !output.success() {
        return Err(HostError::StepFailed {
            target: host.target(),
            step: step.into(),
            detail: output.describe(),
        });
    }
    Ok(())
}

/// Probes again after writing: every written hook must now be exactly right.
async fn verify(
    connection: &dyn Transport,
    host: &Host,
    events: &EventSender,
    records: &mut [HookRecord],
) -> Result<(), HostError> {
    let after = probe(connection, host, events, "verify").await?;
    for record in records
        .iter_mut()
        .filter(|r| matches!(r.status, Status::Created | Status::Updated))
    {
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
    Ok(())
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
