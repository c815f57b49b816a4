//! `quiesce recover RUN`: from a run's journal, finds every host whose freeze
//! started and was never thawed, and thaws it with the deployed hook.

use crate::error::Error;
use crate::event::Event;
use crate::exit_code;
use crate::journal::{Entry, Journal, left_frozen, now_ms};
use crate::runner;
use crate::ssh::SshOptions;
use std::path::Path;

pub async fn recover(
    runs_dir: &Path,
    run: &str,
    ssh: &SshOptions,
    quiet: bool,
) -> Result<u8, Error> {
    let path = crate::observe::run_dir(runs_dir, run).join("journal.jsonl");
    let entries = Journal::read(&path).map_err(|source| Error::File {
        path: path.clone(),
        action: "read the journal",
        source,
    })?;
    let Some(Entry::RunStarted { hosts, run_id, .. }) = entries
        .iter()
        .find(|e| matches!(e, Entry::RunStarted { .. }))
    else {
        return Err(Error::Usage {
            message: format!("{} has no run-started entry", path.display()),
            hint: "pass the journal of a `quiesce backup` run".into(),
        });
    };
    let pending = left_frozen(&entries);
    if pending.is_empty() {
        println!("run {run_id}: nothing was left frozen; nothing to do");
        return Ok(exit_code::SUCCESS);
    }
    let journal = Journal::open(&path).map_err(|source| Error::File {
        path: path.clone(),
        action: "append to the journal",
        source,
    })?;
    let (events, consumer) = runner::event_stream(quiet);
    let mut still_frozen = Vec::new();
    for name in &pending {
        let Some(access) = hosts.iter().find(|h| &h.name == name) else {
            continue;
        };
        let host = access.to_host();
        let path = format!("{}/post-thaw-script", host.hook_dir.trim_end_matches('/'));
        let result = match runner::connect(&host, ssh, &events).await {
            Ok(connection) => {
                let out = connection
                    .run_script(
                        "recover",
                        &crate::hook::checked_run_script(),
                        &[&path, &access.post_sha, "freezeFail"],
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
                let detail = if out.stdout_text().contains("nothing recorded") {
                    "already thawed (its armed thaw ran when the controller went away)".to_string()
                } else {
                    "thawed (freezeFail: no backup recorded)".to_string()
                };
                let _ = journal.append(&Entry::Recovered {
                    host: name.clone(),
                    at: now_ms(),
                    detail: detail.clone(),
                });
                events.send(Event::Note {
                    host: name.clone(),
                    text: detail.clone(),
                });
                println!("{name}: {detail}");
            }
            Ok(out) => {
                println!("{name}: STILL FROZEN: {}", out.describe());
                still_frozen.push(name.clone());
            }
            Err(e) => {
                println!("{name}: STILL FROZEN: {}", e.lines().next().unwrap_or(""));
                still_frozen.push(name.clone());
            }
        }
    }
    drop(events);
    let _ = consumer.await;
    if still_frozen.is_empty() {
        println!("run {run_id}: recovered {} hosts", pending.len());
        Ok(exit_code::SUCCESS)
    } else {
        println!(
            "run {run_id}: {} hosts could not be thawed ({}); run `quiesce recover {run_id}` again, or thaw them on the host with post-thaw-script freezeFail",
            still_frozen.len(),
            still_frozen.join(", ")
        );
        Ok(exit_code::LEFT_FROZEN)
    }
}
