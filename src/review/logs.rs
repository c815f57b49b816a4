//! `quiesce logs` and a backup's automatic collection: fetch `snapshot.log`
//! and every `INST-pre_post.log` (rotated ones too when they were written in
//! the window) from each host into `runs/<run>/hosts/<host>/`, streamed to
//! disk, at most the last `max_bytes` of each file.

use crate::inventory::Host;
use crate::output::error::HostError;
use crate::output::event::{Event, EventSender};
use crate::remote::runner;
use crate::remote::ssh::SshOptions;
use crate::remote::transport::{ExitStatus, Transport};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Args: LOG_DIR SINCE (epoch seconds). One line per file written since:
/// NAME SIZE MTIME DEVICE:INODE (tab-separated), or `unsafe WHY`.
const LIST_SCRIPT: &str = concat!(
    include_str!("../remote/scripts/log_writer.sh"),
    include_str!("../remote/scripts/list_logs.sh")
);

/// Args: PATH MAX_BYTES DEVICE:INODE. The last MAX_BYTES of the file
/// listed, decompressed if gzip'd; never a file put in its place since.
const FETCH_SCRIPT: &str = concat!(
    include_str!("../remote/scripts/log_writer.sh"),
    include_str!("../remote/scripts/fetch_log.sh")
);

pub const DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// What a fetch may receive beyond the bytes asked for: the login shell's
/// words before the script, its stderr.
const FETCH_SLACK: usize = 512 << 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fetched {
    pub name: String,
    pub bytes: u64,
    /// Only the end of the file was fetched.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collected {
    pub host: String,
    pub files: Vec<Fetched>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

async fn collect_host(
    host: &Host,
    ssh: &SshOptions,
    since_secs: u64,
    max_bytes: u64,
    dest: &Path,
    events: &EventSender,
) -> Result<Vec<Fetched>, HostError> {
    let connection = runner::connect(host, ssh, events).await?;
    let transport: &dyn Transport = &connection;
    events.send(Event::StepStarted {
        host: host.name.clone(),
        step: "list logs",
    });
    let listing = transport
        .run_script(
            "list logs",
            LIST_SCRIPT,
            &[&host.log_dir, &since_secs.to_string()],
            None,
        )
        .await?;
    let dir = dest.join("hosts").join(&host.name);
    let local = |what: &str, e: std::io::Error| HostError::StepFailed {
        target: host.target(),
        step: "collect logs".into(),
        detail: format!("{what}: {e}"),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| local(&dir.display().to_string(), e))?;
    let mut fetched = Vec::new();
    let listed = match parse_listing(&listing.stdout_text()) {
        Ok(listed) => listed,
        Err(why) => {
            return Err(HostError::StepFailed {
                target: host.target(),
                step: "list logs".into(),
                detail: format!("{why} (the hooks write nothing there either: they log to syslog)"),
            });
        }
    };
    for entry in listed {
        let (name, size, id) = match entry {
            Listed::File { name, size, id } => (name, size, id),
            Listed::Unexpected(name) => {
                events.send(Event::Note {
                    host: host.name.clone(),
                    text: format!("skipping log file with an unexpected name: {name:?}"),
                });
                continue;
            }
        };
        let (name, id) = (name.as_str(), id.as_str());
        let local_name = name.strip_suffix(".gz").unwrap_or(name);
        let path = dir.join(local_name);
        // A name planted in the runs directory (a symlink) is never opened.
        let (file, part) = crate::output::exclusive_temp(&path)
            .map_err(|e| local(&path.display().to_string(), e))?;
        let mut file = tokio::fs::File::from_std(file);
        let remote = format!("{}/{name}", host.log_dir.trim_end_matches('/'));
        let armed = connection
            .arm_script(
                "fetch log",
                FETCH_SCRIPT,
                &[&remote, &max_bytes.to_string(), id],
            )
            .await?;
        // However the host answers (a `tail` that ignores -c), no more
        // than asked for reaches the disk, nor much more the memory.
        let asked = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let out = armed
            .limit(asked.saturating_add(FETCH_SLACK))
            .finish_into(&[], &mut file, asked)
            .await;
        drop(file);
        // What came is kept, even from a fetch that failed half-way.
        std::fs::rename(&part, &path).map_err(|e| {
            let _ = std::fs::remove_file(&part);
            local(&path.display().to_string(), e)
        })?;
        let out = out?;
        if out.status != ExitStatus::Code(0) {
            return Err(HostError::StepFailed {
                target: host.target(),
                step: format!("fetch {remote}"),
                detail: out.describe(),
            });
        }
        let bytes = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let truncated = name.ends_with(".gz") && bytes >= max_bytes || size > max_bytes;
        fetched.push(Fetched {
            name: local_name.to_string(),
            bytes,
            truncated,
        });
    }
    events.send(Event::StepFinished {
        host: host.name.clone(),
        step: "list logs",
        ok: true,
    });
    connection.close().await;
    Ok(fetched)
}

/// One line of the VM's listing.
#[derive(Debug, PartialEq, Eq)]
enum Listed {
    File {
        name: String,
        size: u64,
        id: String,
    },
    /// A name quiesce does not fetch (it could climb out of the host's directory).
    Unexpected(String),
}

/// The listing script's output (outside input): its files, or why the
/// directory is not read at all. Malformed lines are passed over.
fn parse_listing(text: &str) -> Result<Vec<Listed>, String> {
    if let Some(why) = text.lines().find_map(|l| l.strip_prefix("unsafe\t")) {
        return Err(why.chars().filter(|c| !c.is_control()).take(400).collect());
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (Some(name), Some(size), Some(_mtime), Some(id), None) = (
                fields.next(),
                fields.next().and_then(|s| s.parse::<u64>().ok()),
                fields.next(),
                fields.next().filter(|id| is_file_id(id)),
                fields.next(),
            ) else {
                return None;
            };
            Some(if safe_file_name(name) {
                Listed::File {
                    name: name.to_string(),
                    size,
                    id: id.to_string(),
                }
            } else {
                Listed::Unexpected(name.chars().take(200).collect())
            })
        })
        .collect())
}

/// `DEVICE:INODE` as stat prints them: digits only.
fn is_file_id(id: &str) -> bool {
    id.split_once(':').is_some_and(|(d, i)| {
        [d, i]
            .iter()
            .all(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Collects from every host, `forks` at a time; an unreachable host is
/// reported and the others finish. Writes `dest/logs.json`.
pub async fn collect(
    hosts: &[Host],
    ssh: &SshOptions,
    forks: usize,
    since_secs: u64,
    max_bytes: u64,
    dest: &Path,
    events: &EventSender,
) -> Vec<Collected> {
    let mut collected: Vec<Collected> =
        futures::stream::iter(hosts.iter().map(|host| async move {
            // A fetch never hangs the command: a stunned host gives up.
            let limit = ssh.connect_timeout + ssh.command_timeout * 3;
            let result = match tokio::time::timeout(
                limit,
                collect_host(host, ssh, since_secs, max_bytes, dest, events),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(HostError::CommandTimeout {
                    target: host.target(),
                    step: "log collection".into(),
                    after: limit,
                }),
            };
            let error = result
                .as_ref()
                .err()
                .map(|e| e.to_string().lines().next().unwrap_or_default().to_string());
            if let Err(e) = &result {
                events.send(Event::Note {
                    host: host.name.clone(),
                    text: format!(
                        "logs not collected: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                });
            }
            Collected {
                host: host.name.clone(),
                files: result.unwrap_or_default(),
                error,
            }
        }))
        .buffer_unordered(forks.max(1))
        .collect()
        .await;
    collected.sort_by_key(|c| hosts.iter().position(|h| h.name == c.host));
    let record = merge_record(&dest.join("logs.json"), &collected);
    if let Ok(text) = serde_json::to_string_pretty(&record) {
        let _ = write_atomically(&dest.join("logs.json"), text.as_bytes());
    }
    collected
}

/// `logs.json` after this collection: hosts not collected now keep their
/// record, and a host that failed now keeps an earlier successful one (the
/// evidence already on disk is never replaced by an error).
fn merge_record(path: &Path, now: &[Collected]) -> Vec<Collected> {
    let mut record: Vec<Collected> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    for c in now {
        match record.iter_mut().find(|r| r.host == c.host) {
            Some(old) if c.error.is_some() && old.error.is_none() => {}
            Some(old) => *old = c.clone(),
            None => record.push(c.clone()),
        }
    }
    record
}

/// Writes through a unique temporary file and a rename: readers never see
/// half a file, and two writers never tear each other's.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::output::atomic_write(path, bytes)
}

/// The most of one collected file the report reads back: its end.
pub const READ_BACK_MAX: u64 = 16 << 20;

/// A collected file as text, its last `READ_BACK_MAX` bytes at most. A
/// truncated file starts mid-line: the parsers read from its first full line.
pub fn read_collected(path: &PathBuf, truncated: bool) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    let mut cut = false;
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > READ_BACK_MAX {
            cut = file.seek(SeekFrom::Start(len - READ_BACK_MAX)).is_ok();
        }
        let _ = file.take(READ_BACK_MAX).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match (truncated || cut, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_string(),
        _ => text,
    }
}

pub fn render(collected: &[Collected], dest: &Path) -> String {
    let mut out = String::new();
    for c in collected {
        match &c.error {
            Some(e) => out.push_str(&format!("{}: NOT COLLECTED: {e}\n", c.host)),
            None if c.files.is_empty() => {
                out.push_str(&format!("{}: no log files in the window\n", c.host))
            }
            None => {
                let files: Vec<String> = c
                    .files
                    .iter()
                    .map(|f| {
                        format!(
                            "{} ({} bytes{})",
                            f.name,
                            f.bytes,
                            if f.truncated { ", last part only" } else { "" }
                        )
                    })
                    .collect();
                out.push_str(&format!("{}: {}\n", c.host, files.join(", ")));
            }
        }
    }
    out.push_str(&format!("logs in {}\n", dest.join("hosts").display()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_never_replaces_evidence_already_collected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.json");
        let ok = |host: &str| Collected {
            host: host.into(),
            files: vec![Fetched {
                name: "snapshot.log".into(),
                bytes: 10,
                truncated: false,
            }],
            error: None,
        };
        let failed = |host: &str| Collected {
            host: host.into(),
            files: vec![],
            error: Some("unreachable".into()),
        };
        std::fs::write(
            &path,
            serde_json::to_string(&vec![ok("a"), ok("b")]).unwrap(),
        )
        .unwrap();
        let merged = merge_record(&path, &[failed("a"), failed("c")]);
        let hosts: Vec<(&str, bool)> = merged
            .iter()
            .map(|c| (c.host.as_str(), c.error.is_none()))
            .collect();
        assert_eq!(hosts, [("a", true), ("b", true), ("c", false)]);
        let merged = merge_record(&path, &[ok("c")]);
        assert!(merged.iter().all(|c| c.error.is_none()));
    }

    #[test]
    fn the_listing_is_read_strictly() {
        let listed = parse_listing(
            "snapshot.log\t10\t1700000000\t64768:12\n../x\t1\t2\t3:4\nbad\tline\nIRIS-pre_post.log\t5\t1\t1:x\n",
        )
        .unwrap();
        assert_eq!(
            listed,
            [
                Listed::File {
                    name: "snapshot.log".into(),
                    size: 10,
                    id: "64768:12".into()
                },
                Listed::Unexpected("../x".into())
            ]
        );
        assert_eq!(
            parse_listing("unsafe\t/l is shared\u{1b}[2K\n"),
            Err("/l is shared[2K".into())
        );
    }

    proptest::proptest! {
        #[test]
        fn the_listing_parser_never_panics(text in "\\PC{0,300}", fields in proptest::collection::vec("[a-z0-9:./\t-]{0,12}", 0..6)) {
            let _ = parse_listing(&text);
            let _ = parse_listing(&fields.join("\t"));
        }
    }

    #[test]
    fn only_plain_file_names_are_fetched() {
        assert!(safe_file_name("IRIS-pre_post.log.1.gz"));
        assert!(!safe_file_name("../etc/passwd"));
        assert!(!safe_file_name("a b"));
        assert!(!safe_file_name(".hidden"));
    }
}
