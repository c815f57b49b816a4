//! `hosts`: the inventory's hosts as resolved (host > groups > defaults).
//! VMWARE_FREEZE_TIMEOUT is the inventory's `freeze_timeout`, deployed in the
//! hooks for freezes VMware Tools (or a backup product) starts; a quiesce
//! backup's freezes last the playbook's timeout instead (`plan` shows it).

use crate::cli::args::HostsFormat;
use crate::inventory::Host;
use crate::output::duration;

pub fn hosts_report(hosts: &[Host], format: HostsFormat) -> String {
    match format {
        HostsFormat::Json => serde_json::to_string_pretty(hosts).unwrap_or_default() + "\n",
        HostsFormat::Table => {
            let rows: Vec<Vec<String>> = hosts
                .iter()
                .map(|h| {
                    vec![
                        h.name.clone(),
                        format!("{}:{}", h.address, h.port),
                        if h.r#become {
                            format!("{} (sudo)", h.user)
                        } else {
                            h.user.clone()
                        },
                        h.platform.as_str().to_string(),
                        h.vm.clone(),
                        if h.instances.is_empty() {
                            "(running)".into()
                        } else {
                            h.instances.join(",")
                        },
                        h.hook_dir.clone(),
                        h.log_dir.clone(),
                        duration::format(h.freeze_timeout),
                        h.mirror.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            let header = [
                "HOST",
                "ADDRESS",
                "USER",
                "PLATFORM",
                "VM",
                "INSTANCES",
                "HOOK_DIR",
                "LOG_DIR",
                "VMWARE_FREEZE_TIMEOUT",
                "MIRROR",
            ];
            crate::output::table::render(&header, &rows)
        }
    }
}
