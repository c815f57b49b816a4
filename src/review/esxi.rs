//! vmware.log straight from the ESXi hosts: for every VM whose inventory
//! entry says where it runs (`esxi`, `vm_dir`), its vmware.log (and the
//! rotated vmware-N.log when asked) is read over SSH, one connection per
//! ESXi host, with the same host-key rules as every other host. Read-only:
//! the script only reads (the end of) a file of an allowed name.

use crate::inventory::{EsxiHost, Host};
use crate::output::error::HostError;
use crate::output::event::EventSender;
use crate::remote::transport::Connector;
use futures::StreamExt;
use indexmap::IndexMap;

const READ_SCRIPT: &str = include_str!("../remote/scripts/read_vmware_log.sh");

/// One VM's logs as read from its ESXi host: (file name, bytes), oldest
/// rotation first, or why they could not be read.
pub struct Fetched {
    pub host: String,
    pub vm: String,
    pub files: Result<Vec<(String, Vec<u8>)>, HostError>,
}

/// The files to read: vmware-N.log … vmware-1.log, then vmware.log.
pub fn file_names(rotated: u32) -> Vec<String> {
    (1..=rotated.min(99))
        .rev()
        .map(|n| format!("vmware-{n}.log"))
        .chain(std::iter::once("vmware.log".to_string()))
        .collect()
}

/// Reads the logs of every host of `hosts` that has a location, `forks` ESXi
/// hosts at a time.
pub async fn fetch(
    hosts: &[&Host],
    connector: &dyn Connector,
    rotated: u32,
    forks: usize,
    events: &EventSender,
) -> Vec<Fetched> {
    let mut by_esxi: IndexMap<String, (EsxiHost, Vec<&Host>)> = IndexMap::new();
    for host in hosts {
        if let Some(location) = &host.esxi {
            by_esxi
                .entry(location.esxi.name.clone())
                .or_insert_with(|| (location.esxi.clone(), Vec::new()))
                .1
                .push(host);
        }
    }
    let names = file_names(rotated);
    let per_esxi = futures::stream::iter(by_esxi.into_values().map(|(esxi, vms)| {
        let names = &names;
        async move {
            let esxi_host = esxi.as_host();
            let transport = match connector.connect(&esxi_host, events).await {
                Ok(t) => t,
                Err(e) => {
                    return vms
                        .iter()
                        .map(|h| Fetched {
                            host: h.name.clone(),
                            vm: h.vm.clone(),
                            files: Err(e.clone()),
                        })
                        .collect::<Vec<_>>();
                }
            };
            let mut fetched = Vec::new();
            for host in vms {
                let dir = host
                    .esxi
                    .as_ref()
                    .map(|l| l.vm_dir.clone())
                    .unwrap_or_default();
                let mut files = Ok(Vec::new());
                for name in names {
                    match transport
                        .run_script("read vmware.log", READ_SCRIPT, &[&dir, name], None)
                        .await
                    {
                        Ok(out) if out.success() => {
                            if let Ok(list) = &mut files {
                                list.push((name.clone(), out.stdout));
                            }
                        }
                        // A rotation that is not there is no error; vmware.log is.
                        Ok(out) if out.code() == Some(3) && name != "vmware.log" => {}
                        Ok(out) => {
                            files = Err(HostError::StepFailed {
                                target: esxi_host.target(),
                                step: format!("read {dir}/{name}"),
                                detail: out.describe(),
                            });
                            break;
                        }
                        Err(e) => {
                            files = Err(e);
                            break;
                        }
                    }
                }
                fetched.push(Fetched {
                    host: host.name.clone(),
                    vm: host.vm.clone(),
                    files,
                });
            }
            transport.close().await;
            fetched
        }
    }))
    .buffer_unordered(forks.max(1))
    .collect::<Vec<Vec<Fetched>>>()
    .await;
    per_esxi.into_iter().flatten().collect()
}
