//! The verify script every provider's clones are checked with
//! (`src/remote/scripts/verify.sh`): its arguments, its run on the VM that
//! holds the clones, what it said, and its clean-up mode for `recover`.

use super::Verified;
use crate::backup::restore_point::{RestorePoint, plain_path};
use crate::inventory::playbook::VerifySettings;
use crate::remote::transport::Transport;
use std::time::Duration;

const SCRIPT: &str = include_str!("../../remote/scripts/verify.sh");

fn script() -> String {
    format!("set -u\n{SCRIPT}")
}

/// One copy of the run's data to check: where it comes from, and the
/// directory on the backed-up host whose contents it holds.
pub enum Copy {
    /// A read-only btrfs snapshot, cloned writable on the VM itself.
    Snapshot { path: String, source: String },
    /// An EBS volume made from a snapshot and attached to the scratch
    /// instance, mounted there; `source` is where the original is mounted.
    Volume { id: String, source: String },
}

/// What the script is told for one host of a run.
pub struct Job<'a> {
    pub platform: &'a str,
    pub settings: &'a VerifySettings,
    pub run_id: &'a str,
    /// The host whose backup this is (it names the clone's directory).
    pub host: &'a str,
    pub copies: Vec<Copy>,
    /// Each instance's application databases on the backed-up host.
    pub databases: &'a [(String, Vec<String>)],
    pub restore: &'a [RestorePoint],
}

impl<'a> Job<'a> {
    /// The job of `v`'s host with these copies of its data.
    pub fn of(
        v: &super::VerifyRequest<'a>,
        copies: Vec<Copy>,
        databases: &'a [(String, Vec<String>)],
    ) -> Job<'a> {
        Job {
            platform: v.host.platform.as_str(),
            settings: v.settings,
            run_id: v.run_id,
            host: &v.host.name,
            copies,
            databases,
            restore: v.restore,
        }
    }

    fn args(&self) -> Result<Vec<String>, String> {
        let mut args: Vec<String> = [
            self.platform,
            &self.settings.clone_dir,
            &self.settings.instance,
            self.run_id,
            self.host,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for copy in &self.copies {
            let (kind, what, source) = match copy {
                Copy::Snapshot { path, source } => ("snap", path, source),
                Copy::Volume { id, source } => ("volume", id, source),
            };
            args.extend([kind.into(), what.clone(), source.clone()]);
        }
        // These paths end up inside ObjectScript strings in the
        // verification session: only plain ones are passed, never quoted.
        let sources = self.copies.iter().map(|c| match c {
            Copy::Snapshot { source, .. } | Copy::Volume { source, .. } => source,
        });
        for path in self
            .databases
            .iter()
            .flat_map(|(_, dbs)| dbs.iter())
            .chain(sources)
        {
            if !plain_path(path) {
                return Err(format!(
                    "{path} holds characters other than letters, digits, `/`, `.`, `_` and `-`: quiesce does not pass it into the verification instance's ObjectScript"
                ));
            }
        }
        for (inst, dbs) in self.databases {
            for db in dbs {
                args.extend(["db".into(), inst.clone(), db.clone()]);
            }
        }
        for point in self.restore {
            args.extend([
                "restore".into(),
                point.instance.clone(),
                point.journal_file.clone().unwrap_or_else(|| "-".into()),
                point
                    .marker_offset
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "0".into()),
            ]);
        }
        if let Some(command) = &self.settings.command {
            args.extend([
                "command".into(),
                self.settings.command_timeout.as_secs().max(1).to_string(),
                command.clone(),
            ]);
        }
        Ok(args)
    }

    /// Runs the script on `vm` (which holds the copies) within the
    /// verification's timeout. Err: refused before anything was made; a
    /// session that broke is a warning, with `torn_down` false.
    pub async fn run(&self, vm: &dyn Transport) -> Result<Verified, String> {
        let args = self.args()?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = match vm
            .run("verify", &script(), &args, None, self.settings.timeout)
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return Ok(Verified {
                    warnings: vec![format!(
                        "the verify session ended before its teardown said so: {}; `quiesce recover {}` removes what is left",
                        e.to_string().lines().next().unwrap_or_default(),
                        self.run_id
                    )],
                    ..Verified::default()
                });
            }
        };
        let text = out.stdout_text();
        let (instances, mut warnings) = crate::backup::verification::parse(&text);
        let torn_down = text.lines().any(|l| l == "verify-torn-down");
        if instances.is_empty() {
            warnings.push(format!(
                "the verify script gave no result: {}",
                out.describe()
            ));
        } else if !torn_down
            || instances
                .iter()
                .any(|i| i.reason.starts_with("the verification ended before"))
        {
            warnings.push(format!(
                "the verify script stopped early: {}",
                out.describe()
            ));
        }
        Ok(Verified {
            instances,
            warnings,
            torn_down,
        })
    }
}

/// What a killed verify of `run_id` left on `vm` (a clone or mounted
/// volume, the verification instance running, its CPF swapped) put right:
/// the script with nothing to copy. True when something was left.
pub async fn clean_up(
    vm: &dyn Transport,
    left: &crate::backup::verification::CloneEntry,
    run_id: &str,
) -> Result<bool, String> {
    let args = [
        left.platform.as_str(),
        &left.clone_dir,
        &left.instance,
        run_id,
        &left.host,
    ];
    let out = vm
        .run(
            "verify clean-up",
            &script(),
            &args,
            None,
            Duration::from_secs(600),
        )
        .await
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
    let text = out.stdout_text();
    if out.success() && text.contains("verify-cleaned ") {
        // Whether anything was there: the VM's own teardown may have run.
        Ok(text
            .lines()
            .any(|l| l.starts_with("verify-cleaned ") && l.ends_with(" some")))
    } else {
        let said = crate::backup::verification::parse(&text);
        let why = said
            .0
            .first()
            .map(|v| v.reason.clone())
            .or_else(|| said.1.first().cloned());
        Err(why.unwrap_or_else(|| out.describe()))
    }
}
