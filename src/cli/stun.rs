//! `stun`: analyse vmware.log files for VM stuns against the mirrors' QoS timeouts.

use super::{runtime, ssh_options};
use crate::backup::stun_history::{Measured, StunHistory};
use crate::cli::args::Global;
use crate::inventory::Inventory;
use crate::output::error::Error;
use crate::output::exit_code;
use crate::review::stun_report::{self, Flag};
use std::path::{Path, PathBuf};

/// `quiesce stun`: analyse, print, exit code; with `record`, add the stuns
/// to the stun history.
pub fn stun(
    global: &Global,
    files: &[PathBuf],
    qos: Option<&str>,
    json: bool,
    record: bool,
    rotated: u32,
) -> Result<u8, Error> {
    let qos = qos
        .map(|q| {
            crate::output::duration::parse(q).map_err(|why| Error::Usage {
                message: format!("--qos {q:?}: {why}"),
                hint: "the mirror's QoS timeout, e.g. 8s".into(),
            })
        })
        .transpose()?;
    // The inventory only gives the mirrors' QoS timeouts, but one that is
    // named (-i, QUIESCE_INVENTORY) or lies here must be read right: a
    // misspelt qos_timeout must not turn into the 8 s default.
    let inventory = match &global.inventory {
        Some(path) => Some(Inventory::load(path, &global.ssh_config()?)?),
        None if Path::new("inventory.yml").exists() => Some(Inventory::load(
            Path::new("inventory.yml"),
            &global.ssh_config()?,
        )?),
        None => None,
    };
    // No files: each selected VM's logs, read from its ESXi host into a
    // directory per VM (the VM is named after its directory).
    // Made only when logs are read from the ESXi hosts; removed at the end.
    let mut fetched_dir: Option<FetchedDir> = None;
    let mut unreachable = false;
    let files: Vec<PathBuf> = if files.is_empty() {
        let Some(inventory) = &inventory else {
            return Err(Error::Usage {
                message: "no vmware.log files given, and no inventory to find them with".into(),
                hint: "pass vmware.log files, or an inventory whose hosts name their `esxi` host and `vm_dir`".into(),
            });
        };
        let dir = fetched_dir.insert(tempfile_dir()?);
        let (found, failed) = fetch(global, inventory, rotated, dir)?;
        unreachable = failed;
        found
    } else {
        files.to_vec()
    };
    let vms = stun_report::analyse(&files, qos, inventory.as_ref())?;
    if record {
        let measured: Vec<(String, Measured)> = vms
            .iter()
            .flat_map(|v| {
                v.stuns.iter().map(|s| {
                    let at = s.at.unwrap_or(0);
                    (v.vm.clone(), Measured { at, us: s.us })
                })
            })
            .collect();
        StunHistory::record(&global.runs_dir, &measured)
            .map_err(crate::backup::stun_history::refusal)?;
    }
    let text = if json {
        serde_json::to_string_pretty(&vms).unwrap_or_default() + "\n"
    } else {
        stun_report::table(&vms)
    };
    crate::cli::print(&text);
    Ok(match vms.iter().map(|v| v.flag).max() {
        Some(Flag::Over) => exit_code::FAILED,
        _ if unreachable => exit_code::UNREACHABLE,
        Some(Flag::Near) => exit_code::FINDINGS,
        _ => exit_code::SUCCESS,
    })
}

/// A private directory for logs read from ESXi hosts, removed when dropped.
struct FetchedDir(PathBuf);

impl Drop for FetchedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<FetchedDir, Error> {
    let base = std::env::temp_dir().join(format!(
        "quiesce-stun-{}-{}",
        std::process::id(),
        crate::backup::journal::now_ms()
    ));
    std::fs::create_dir(&base).map_err(|source| Error::File {
        path: base.clone(),
        action: "create",
        source,
    })?;
    Ok(FetchedDir(base))
}

/// Reads the selected VMs' logs from their ESXi hosts into `dir`/VM/; the
/// files, and whether any VM's could not be read (said on stderr).
fn fetch(
    global: &Global,
    inventory: &Inventory,
    rotated: u32,
    dir: &FetchedDir,
) -> Result<(Vec<PathBuf>, bool), Error> {
    let selected = crate::inventory::limit::select(inventory, global.limit.as_deref())?;
    let located: Vec<&crate::inventory::Host> =
        selected.into_iter().filter(|h| h.esxi.is_some()).collect();
    if located.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "no selected host of {} says where its VM runs",
                inventory.path.display()
            ),
            hint: "give the hosts (or their groups) `esxi: NAME` (under esxi_hosts) and `vm_dir: /vmfs/volumes/DATASTORE/VM`, or pass vmware.log files".into(),
        });
    }
    let connector = crate::remote::runner::SshConnector {
        options: ssh_options(global)?,
    };
    let fetched = runtime()?.block_on(async {
        let (events, consumer) = crate::remote::runner::event_stream(global.quiet);
        let fetched =
            crate::review::esxi::fetch(&located, &connector, rotated, global.forks(), &events)
                .await;
        drop(events);
        let _ = consumer.await;
        fetched
    });
    let mut files = Vec::new();
    let mut failed = false;
    for vm in fetched {
        match vm.files {
            Ok(list) => {
                let vm_dir = dir.0.join(&vm.vm);
                std::fs::create_dir_all(&vm_dir).map_err(|source| Error::File {
                    path: vm_dir.clone(),
                    action: "create",
                    source,
                })?;
                for (name, bytes) in list {
                    let path = vm_dir.join(name);
                    crate::output::atomic_write(&path, &bytes).map_err(|source| Error::File {
                        path: path.clone(),
                        action: "write",
                        source,
                    })?;
                    files.push(path);
                }
            }
            Err(e) => {
                failed = true;
                crate::output::terminal::eprint_line(&format!("error: {}: {e}", vm.host));
            }
        }
    }
    Ok((files, failed))
}
