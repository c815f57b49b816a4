//! `stun`: analyse vmware.log files for VM stuns against the mirrors' QoS timeouts.

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
        Some(path) => Some(Inventory::load(path)?),
        None if Path::new("inventory.yml").exists() => {
            Some(Inventory::load(Path::new("inventory.yml"))?)
        }
        None => None,
    };
    let vms = stun_report::analyse(files, qos, inventory.as_ref())?;
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
    print!("{text}");
    Ok(match vms.iter().map(|v| v.flag).max() {
        Some(Flag::Over) => exit_code::FAILED,
        Some(Flag::Near) => exit_code::FINDINGS,
        _ => exit_code::SUCCESS,
    })
}
