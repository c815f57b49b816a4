//! `stun`: analyse vmware.log files for VM stuns against the mirrors' QoS timeouts.

use crate::backup::stun_history::{Measured, StunHistory};
use crate::cli::args::Global;
use crate::inventory::Inventory;
use crate::output::error::Error;
use crate::output::exit_code;
use crate::review::stun_report::{self, Flag};
use std::path::PathBuf;

/// `quiesce stun`: analyse, record into the stun history, print, exit code.
pub fn stun(
    global: &Global,
    files: &[PathBuf],
    qos: Option<&str>,
    json: bool,
) -> Result<u8, Error> {
    let qos = qos
        .map(|q| {
            crate::output::duration::parse(q).map_err(|why| Error::Usage {
                message: format!("--qos {q:?}: {why}"),
                hint: "the mirror's QoS timeout, e.g. 8s".into(),
            })
        })
        .transpose()?;
    // The inventory is optional here: only for the mirrors' QoS timeouts.
    let inventory = Inventory::load(&global.inventory).ok();
    let vms = stun_report::analyse(files, qos, inventory.as_ref())?;
    let measured: Vec<(String, Measured)> = vms
        .iter()
        .flat_map(|v| {
            v.timed.iter().map(|(at, us)| {
                let at = at.unwrap_or(0);
                (v.vm.clone(), Measured { at, us: *us })
            })
        })
        .collect();
    StunHistory::record(&global.runs_dir, &measured)
        .map_err(crate::backup::stun_history::refusal)?;
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
