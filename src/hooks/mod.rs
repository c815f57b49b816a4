//! The freeze/thaw hook scripts quiesce deploys: rendered per host from a
//! header of validated, quoted settings and one shared POSIX sh body.

pub mod facts;
pub mod qemu_ga;
pub mod reconcile;
pub mod report;

use crate::inventory::{Framework, Host};
use crate::remote::shell::quote;
use serde::Serialize;
use sha2::{Digest, Sha256};

const BODY: &str = include_str!("body.sh");

/// Who the hooks and `logs` open the log directory's files as (shell
/// functions `log_writer` and `log_as`), shared with the scripts that read it.
pub const LOG_WRITER: &str = include_str!("../remote/scripts/log_writer.sh");

/// The hooks quiesce deploys: the two VMware Tools runs in the guest, or
/// the one qemu-guest-agent's fsfreeze-hook runs with `freeze` and `thaw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum HookKind {
    #[serde(rename = "pre-freeze-script")]
    PreFreeze,
    #[serde(rename = "post-thaw-script")]
    PostThaw,
    /// One hook for both (qemu-ga): it does what its argument says.
    #[serde(rename = "fsfreeze-hook")]
    Fsfreeze,
}

impl HookKind {
    /// Every kind, for parsing names back.
    pub const ALL: [HookKind; 3] = [HookKind::PreFreeze, HookKind::PostThaw, HookKind::Fsfreeze];
    const VMWARE: [HookKind; 2] = [HookKind::PreFreeze, HookKind::PostThaw];
    const QEMU_GA: [HookKind; 1] = [HookKind::Fsfreeze];

    /// The hooks deployed to `host`, in the order they are written.
    pub fn of(host: &Host) -> &'static [HookKind] {
        match host.framework {
            Framework::QemuGa => &HookKind::QEMU_GA,
            Framework::Vmware | Framework::None => &HookKind::VMWARE,
        }
    }

    /// The hook that freezes on `host` (called with `freeze`).
    pub fn freezer(host: &Host) -> HookKind {
        HookKind::of(host)[0]
    }

    /// The hook that thaws on `host` (called with `thaw` or `freezeFail`).
    pub fn thawer(host: &Host) -> HookKind {
        *HookKind::of(host).last().unwrap_or(&HookKind::PostThaw)
    }

    pub fn file_name(self) -> &'static str {
        match self {
            HookKind::PreFreeze => "pre-freeze-script",
            HookKind::PostThaw => "post-thaw-script",
            HookKind::Fsfreeze => "quiesce",
        }
    }

    /// What the hook does without an argument: qemu-ga always passes one.
    fn default_action(self) -> &'static str {
        match self {
            HookKind::PreFreeze => "freeze",
            HookKind::PostThaw => "thaw",
            HookKind::Fsfreeze => "",
        }
    }

    pub fn path(self, host: &Host) -> String {
        format!(
            "{}/{}",
            host.hook_dir.trim_end_matches('/'),
            self.file_name()
        )
    }
}

/// The exact bytes deploy writes for `kind` on `host`.
pub fn render(kind: HookKind, host: &Host) -> String {
    let header = format!(
        "#!/bin/sh\n\
         # {name}: installed by quiesce {version} for host {host}.\n\
         # Do not edit: `quiesce audit` reports any change, `quiesce deploy` restores it.\n\
         set -u\n\
         QUIESCE_DEFAULT_ACTION={action}\n\
         QUIESCE_PLATFORM={platform}\n\
         QUIESCE_FRAMEWORK={framework}\n\
         QUIESCE_INSTANCES={instances}\n\
         QUIESCE_HOOK_DIR={hook_dir}\n\
         QUIESCE_LOG_DIR={log_dir}\n\
         QUIESCE_FREEZE_TIMEOUT={timeout}\n\
         QUIESCE_CONTAINER={container}\n\
         QUIESCE_CONTAINER_LOG_DIR={container_log_dir}\n\
         QUIESCE_ENGINE={engine}\n\
         QUIESCE_IRIS_USER={iris_user}\n\
         QUIESCE_REFUSE_VMWARE_PRIMARY={refuse}\n",
        name = kind.file_name(),
        version = env!("CARGO_PKG_VERSION"),
        host = host.name,
        action = quote(kind.default_action()),
        platform = quote(host.platform.as_str()),
        framework = quote(host.framework.as_str()),
        instances = quote(&host.instances.join(" ")),
        hook_dir = quote(&host.hook_dir),
        log_dir = quote(&host.log_dir),
        timeout = quote(&host.freeze_timeout.as_secs().to_string()),
        container = quote(host.iris_container.as_deref().unwrap_or("")),
        container_log_dir = quote(match &host.iris_container {
            Some(_) => host.container_log_dir.as_deref().unwrap_or(&host.log_dir),
            None => "",
        }),
        engine = quote(host.container_engine.unwrap_or_default().as_str()),
        iris_user = quote(host.iris_user.as_deref().unwrap_or("")),
        refuse = if host.refuse_vmware_primary {
            "yes"
        } else {
            "no"
        },
    );
    header + LOG_WRITER + BODY
}

/// The exit status of the checked scripts below when the hook on the host
/// is not exactly what quiesce deployed (content, owner, mode, place): it
/// was not run.
pub const MISMATCH: u32 = 97;
/// The exit status when the hook could not be checked (a failed fork, a full
/// disk): it was not run, and a retry may succeed.
pub const UNCHECKABLE: u32 = 98;

/// The shell library every checked run starts with (`checked_copy`).
pub const CHECK_LIBRARY: &str = include_str!("../remote/scripts/hook_check.sh");

/// Args: OWNER REASON PATH SHA[,SHA...] ARGS... Runs a checked private copy
/// of the hook at PATH with ARGS as OWNER; exits 97 or 98 without running it.
pub fn checked_run_script() -> String {
    with_check_library(include_str!("../remote/scripts/checked_run.sh"))
}

/// `script` preceded by `set -u` and the check library it calls.
pub fn with_check_library(script: &str) -> String {
    format!("set -u\n{CHECK_LIBRARY}{script}")
}

/// Args: OWNER TIMEOUT DEADLINE PRE_PATH PRE_SHAS POST_PATH POST_SHAS. The
/// freeze and, in the same session, the armed thaw with its dead-man's
/// switch: see `scripts/freeze_session.sh`.
pub fn freeze_session_script() -> String {
    with_check_library(include_str!("../remote/scripts/freeze_session.sh"))
}

/// One hook as deploy writes it for a host, with its sha256: rendered once
/// per host and command, then probed against, sent and verified.
pub struct Rendered {
    pub kind: HookKind,
    pub content: String,
    pub sha256: String,
}

/// Every hook for `host`, in `HookKind::of` order.
pub fn render_all(host: &Host) -> Vec<Rendered> {
    HookKind::of(host)
        .iter()
        .map(|&kind| {
            let content = render(kind, host);
            let sha256 = sha256_hex(content.as_bytes());
            Rendered {
                kind,
                content,
                sha256,
            }
        })
        .collect()
}

pub fn sha256_hex(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use std::path::Path;

    fn host(settings: &str) -> Host {
        let text = format!("hosts:\n  db1: {{ address: 10.0.0.1, {settings} }}\n");
        Inventory::parse(Path::new("i.yml"), &text)
            .unwrap()
            .hosts
            .remove(0)
    }

    #[test]
    fn header_carries_the_host_settings() {
        let h = host("platform: cache, instances: [CACHE, TEST], freeze_timeout: 5m");
        let script = render(HookKind::PreFreeze, &h);
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains("QUIESCE_PLATFORM='cache'\n"));
        assert!(script.contains("QUIESCE_INSTANCES='CACHE TEST'\n"));
        assert!(script.contains("QUIESCE_FREEZE_TIMEOUT='300'\n"));
        assert!(render(HookKind::PostThaw, &h).contains("QUIESCE_DEFAULT_ACTION='thaw'\n"));
    }

    #[test]
    fn the_recorded_sha256_is_what_sha256sum_says_of_the_deployed_bytes() {
        let h = host("platform: iris");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pre-freeze-script");
        std::fs::write(&file, render(HookKind::PreFreeze, &h)).unwrap();
        let out = std::process::Command::new("sha256sum")
            .arg(&file)
            .output()
            .expect("sha256sum (coreutils) runs");
        let theirs = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            theirs.split_whitespace().next(),
            Some(sha256_hex(render(HookKind::PreFreeze, &h).as_bytes()).as_str())
        );
    }

    #[test]
    fn hosts_with_the_same_settings_differ_only_in_the_comment_naming_them() {
        let a = host("platform: iris, instances: [A1]");
        let mut b = host("platform: iris, instances: [A1]");
        b.name = "db2".into();
        b.address = "10.0.0.2".into();
        // Only the comment naming the host differs.
        let (one, other) = (
            render(HookKind::PreFreeze, &a),
            render(HookKind::PreFreeze, &b),
        );
        let differing: Vec<(&str, &str)> = one
            .lines()
            .zip(other.lines())
            .filter(|(x, y)| x != y)
            .collect();
        let named = |h: &str| {
            format!(
                "# pre-freeze-script: installed by quiesce {} for host {h}.",
                env!("CARGO_PKG_VERSION")
            )
        };
        assert_eq!(differing, [(named("db1").as_str(), named("db2").as_str())]);
        let c = host("platform: iris, instances: [A2]");
        assert_ne!(
            render(HookKind::PreFreeze, &a),
            render(HookKind::PreFreeze, &c)
        );
    }

    #[test]
    fn remote_scripts_are_shellcheck_clean() {
        let dir = tempfile::tempdir().unwrap();
        // Every script file on its own, and those that run with the check
        // library as they are sent.
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/remote/scripts");
        let mut alone: Vec<(String, String)> = std::fs::read_dir(&scripts)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sh"))
            .map(|p| {
                let name = format!("alone-{}", p.file_name().unwrap().to_string_lossy());
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        alone.sort();
        assert!(alone.len() >= 11, "{alone:?}");
        for (name, script) in alone.into_iter().chain([
            ("checked_run.sh".to_string(), checked_run_script()),
            ("freeze_session.sh".to_string(), freeze_session_script()),
            (
                "deploy.sh".to_string(),
                crate::hooks::reconcile::deploy_script().to_string(),
            ),
            (
                "preflight.sh".to_string(),
                crate::backup::preflight::preflight_script(),
            ),
        ]) {
            let file = dir.path().join(&name);
            std::fs::write(&file, script).unwrap();
            let out = std::process::Command::new("shellcheck")
                .args(["-s", "sh"])
                .arg(&file)
                .output()
                .expect("shellcheck is installed (tests/lab/install-deps.sh)");
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    #[test]
    fn rendered_hooks_are_shellcheck_clean() {
        assert!(
            std::process::Command::new("shellcheck")
                .arg("--version")
                .output()
                .is_ok(),
            "shellcheck is not installed (tests/lab/install-deps.sh installs it)"
        );
        for platform in ["iris", "cache"] {
            let h = host(&format!("platform: {platform}, instances: [A1]"));
            for kind in HookKind::ALL {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join(kind.file_name());
                std::fs::write(&file, render(kind, &h)).unwrap();
                let out = std::process::Command::new("shellcheck")
                    .arg("-s")
                    .arg("sh")
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }
}
