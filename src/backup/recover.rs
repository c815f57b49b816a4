//! `quiesce recover RUN`: from a run's journal, finds every host whose freeze
//! may still hold (any entry about it and no thaw, or a torn line naming it)
//! and thaws what that run froze there, with a checked copy of the deployed
//! hook and the run's owner token: another run's freeze is never touched.

use crate::backup::journal::{Entry, HostAccess, Journal, left_frozen, now_ms};
use crate::backup::thaw_verdict::outcomes;
use crate::hooks::{self, HookKind};
use crate::inventory::Inventory;
use crate::output::error::Error;
use crate::output::exit_code;
use crate::remote::runner;
use crate::remote::ssh::SshOptions;
use crate::remote::transport::Transport;
use std::io::Write;
use std::path::Path;

pub async fn recover(
    runs_dir: &Path,
    run: &str,
    inventory: &Path,
    ssh: &SshOptions,
    quiet: bool,
    force: bool,
    json: bool,
) -> Result<u8, Error> {
    let dir = crate::backup::run_dir::resolve(runs_dir, run)?;
    let path = dir.join("journal.jsonl");
    // A run still under way thaws by itself; a second thaw beside it would
    // take the credit for its thaw, or find it half done.
    let live = crate::backup::run_dir::live_holder(&dir);
    if let (Some(holder), false) = (&live, force) {
        return Err(Error::Usage {
            message: format!(
                "run {run} is still under way: {holder} holds {}",
                dir.join("run.lock").display()
            ),
            hint: format!(
                "its own thaw is on the way: wait for it to end; if that process is hung, stop it (SIGTERM thaws what it froze), or run `quiesce recover {run} --force` beside it"
            ),
        });
    }
    let text = Journal::read_text(&path).map_err(|source| Error::File {
        path: path.clone(),
        action: "read the journal",
        source,
    })?;
    let Some(Entry::RunStarted { hosts, run_id, .. }) = text
        .entries
        .iter()
        .find(|e| matches!(e, Entry::RunStarted { .. }))
    else {
        return Err(Error::Usage {
            message: format!(
                "{} has no run-started entry{}",
                path.display(),
                if text.damaged_lines > 0 {
                    format!(" ({} damaged lines)", text.damaged_lines)
                } else {
                    String::new()
                }
            ),
            hint: "pass the journal of a `quiesce backup` run".into(),
        });
    };
    // --format json: the lines are kept for one JSON document at the end.
    let said = std::cell::RefCell::new(Vec::<String>::new());
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        if json {
            said.borrow_mut().push(line);
            return;
        }
        // A closed stdout must not stop a recovery half-way.
        let _ = writeln!(out, "{}", crate::output::terminal::scrub(&line));
        let _ = out.flush();
    };
    let mut thawed: Vec<(String, String)> = Vec::new();
    if text.damaged_lines > 0 {
        say(format!(
            "note: {} line(s) of {} are damaged (a torn write?); every host they name is checked",
            text.damaged_lines,
            path.display()
        ));
    }
    if let Some(holder) = &live {
        say(format!(
            "warning: run {run_id} is still under way ({holder}); recovering beside it (--force): what it thaws after this is not its own doing"
        ));
    }
    // Snapshots a run that never finished made: no backup stands behind
    // them (an orphan a provider keeps is said, never left unsaid).
    let finished = text
        .entries
        .iter()
        .any(|e| matches!(e, Entry::RunFinished { .. }));
    if !finished {
        for entry in &text.entries {
            if let Entry::SnapshotFinished { host, ids, .. } = entry
                && !ids.is_empty()
            {
                say(format!(
                    "run {run_id} made snapshots on {host} and did not finish: {}; no backup stands behind them: `quiesce snapshots list -p PLAYBOOK` shows them as orphans and `quiesce snapshots prune -p PLAYBOOK` removes them",
                    ids.join(", ")
                ));
            }
        }
    }
    // Clones a killed `quiesce verify` of this run left: removed, and the
    // verification instance stopped with its CPF put back.
    for left in crate::backup::verification::CloneEntry::left(&dir) {
        // EBS: the clones are volumes on the scratch instance.
        let ebs = left.provider == "aws-ebs";
        let access = if ebs {
            left.scratch_access.as_ref()
        } else {
            hosts.iter().find(|h| h.name == left.host)
        };
        let Some(access) = access else {
            continue;
        };
        let host = access.to_host();
        let (events, consumer) = runner::event_stream(true);
        let cleaned = match runner::connect(&host, ssh, &events).await {
            Ok(connection) => {
                let transport: &dyn Transport = &connection;
                let r = if ebs {
                    crate::backup::provider::ebs_clone::clean_up(transport, &left, run_id).await
                } else {
                    crate::backup::provider::clone_script::clean_up(transport, &left, run_id).await
                };
                connection.close().await;
                r
            }
            Err(e) => Err(e.to_string().lines().next().unwrap_or_default().to_string()),
        };
        drop(events);
        let _ = consumer.await;
        match cleaned {
            Ok(found) => {
                let _ = crate::backup::verification::CloneEntry {
                    state: "torn-down".into(),
                    at: now_ms(),
                    // The clean-up removed all of this run's on the host.
                    attempt: String::new(),
                    ..left.clone()
                }
                .append(&dir);
                say(if found {
                    format!(
                        "{}: removed the clone a killed `quiesce verify {run_id}` left in {}, and stopped the verification instance {}",
                        left.host, left.clone_dir, left.instance
                    )
                } else {
                    format!(
                        "{}: the `quiesce verify {run_id}` that was cut off had cleaned up after itself: nothing left in {}",
                        left.host, left.clone_dir
                    )
                });
            }
            Err(why) => say(format!(
                "{}: the clone a killed `quiesce verify {run_id}` left in {} could not be removed: {why}; run `quiesce recover {run_id}` again once the host answers",
                left.host, left.clone_dir
            )),
        }
    }
    let mut pending = left_frozen(&text.entries);
    for host in &text.uncertain_hosts {
        if hosts.iter().any(|h| &h.name == host) && !pending.contains(host) {
            pending.push(host.clone());
        }
    }
    if pending.is_empty() {
        say(format!(
            "run {run_id}: nothing was left frozen; nothing to do"
        ));
        print_json(
            json,
            run_id,
            exit_code::SUCCESS,
            &said.borrow(),
            &thawed,
            &[],
        );
        return Ok(exit_code::SUCCESS);
    }
    let journal = Journal::open(&path).map_err(|source| Error::File {
        path: path.clone(),
        action: "append to the journal",
        source,
    })?;
    // The inventory, when it loads, names what the current quiesce deploys.
    let current = Inventory::load(inventory, &Default::default()).ok();
    let (events, consumer) = runner::event_stream(quiet);
    let mut still_frozen = Vec::new();
    for name in &pending {
        let Some(access) = hosts.iter().find(|h| &h.name == name) else {
            continue;
        };
        let host = access.to_host();
        let path = HookKind::thawer(&host).path(&host);
        let shas = accepted_shas(access, current.as_ref());
        let result = match runner::connect(&host, ssh, &events).await {
            Ok(connection) => {
                let transport: &dyn Transport = &connection;
                let out = transport
                    .run_script(
                        "recover",
                        &hooks::checked_run_script(),
                        &[
                            run_id,
                            "quiesce recover",
                            &path,
                            &shas.join(","),
                            "freezeFail",
                        ],
                        None,
                    )
                    .await;
                connection.close().await;
                out.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(out) if matches!(out.code(), Some(0) | Some(4)) => {
                let detail = recovered_detail(&out.stdout_text());
                let _ = journal.append(&Entry::Recovered {
                    host: name.clone(),
                    at: now_ms(),
                    detail: detail.clone(),
                });
                say(format!("{name}: {detail}"));
                thawed.push((name.clone(), detail));
            }
            Ok(out) if out.code() == Some(hooks::MISMATCH) => {
                say(format!(
                    "{name}: STILL FROZEN: {path} is not what quiesce deploys ({}), so it was not run; redeploy it with `quiesce -i INVENTORY deploy --limit {name}`, then run `quiesce recover {run_id}` again",
                    out.stderr_line()
                ));
                still_frozen.push(name.clone());
            }
            Ok(out) => {
                say(format!("{name}: STILL FROZEN: {}", out.describe()));
                still_frozen.push(name.clone());
            }
            Err(e) => {
                say(format!(
                    "{name}: STILL FROZEN: {}",
                    e.lines().next().unwrap_or("")
                ));
                still_frozen.push(name.clone());
            }
        }
    }
    drop(events);
    let _ = consumer.await;
    let code = if still_frozen.is_empty() {
        say(format!("run {run_id}: recovered {} hosts", pending.len()));
        exit_code::SUCCESS
    } else {
        say(format!(
            "run {run_id}: {} hosts could not be thawed ({}); fix what is said above and run `quiesce recover {run_id}` again, or on the VM: env QUIESCE_OWNER={run_id} HOOK_DIR/post-thaw-script freezeFail",
            still_frozen.len(),
            still_frozen.join(", ")
        ));
        exit_code::LEFT_FROZEN
    };
    print_json(json, run_id, code, &said.borrow(), &thawed, &still_frozen);
    Ok(code)
}

/// `recover --format json`: what was thawed, what is still frozen, and every
/// line the table form says.
fn print_json(
    json: bool,
    run_id: &str,
    code: u8,
    lines: &[String],
    thawed: &[(String, String)],
    still_frozen: &[String],
) {
    if !json {
        return;
    }
    let value = serde_json::json!({
        "command": "recover",
        "run_id": run_id,
        "exit_code": code,
        "thawed": thawed.iter().map(|(h, d)| serde_json::json!({"host": h, "detail": d})).collect::<Vec<_>>(),
        "still_frozen": still_frozen,
        "lines": lines,
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

/// The post-thaw-script checksums `recover` accepts: the one journaled at
/// the run, what the current quiesce renders from the journaled settings,
/// and from the current inventory (after an upgrade and a redeploy).
fn accepted_shas(access: &HostAccess, current: Option<&Inventory>) -> Vec<String> {
    let mut shas = vec![access.post_sha.clone()];
    let mut hosts = vec![access.to_host()];
    if let Some(host) = current.and_then(|i| i.host(&access.name)) {
        hosts.push(host.clone());
    }
    for host in hosts {
        let sha = hooks::sha256_hex(hooks::render(HookKind::thawer(&host), &host).as_bytes());
        if !shas.contains(&sha) {
            shas.push(sha);
        }
    }
    shas
}

/// What the VM said it did, in words.
fn recovered_detail(stdout: &str) -> String {
    let seen = outcomes(stdout);
    if seen.is_empty() {
        return "nothing of this run was frozen there (never frozen, or thawed by someone else)"
            .into();
    }
    if seen.iter().all(|o| o.earlier) {
        return "already thawed (its armed thaw ran when the controller went away)".into();
    }
    let down: Vec<&str> = seen
        .iter()
        .filter(|o| o.kind == "down")
        .map(|o| o.instance.as_str())
        .collect();
    if !down.is_empty() {
        return format!(
            "{} down: its freeze ended when it stopped; the rest is thawed (freezeFail: no backup recorded)",
            down.join(", ")
        );
    }
    let ended: Vec<&str> = seen
        .iter()
        .filter(|o| o.kind == "ended-elsewhere" || o.kind == "replaced")
        .map(|o| o.instance.as_str())
        .collect();
    if !ended.is_empty() {
        return format!(
            "someone else had ended the freeze of {}; the rest is thawed (freezeFail: no backup recorded)",
            ended.join(", ")
        );
    }
    "thawed (freezeFail: no backup recorded)".into()
}
