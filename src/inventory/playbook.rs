//! Backup playbooks (YAML): which hosts, whether mirror primaries are
//! included, consistency groups, the snapshot step and its timeouts.
//! Validated like the inventory, every error with file:line:column.

use crate::inventory::source_map::SourceMap;
use crate::inventory::{Inventory, MAX_FREEZE_TIMEOUT};
use crate::output::duration;
use crate::output::error::Error;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Placeholders a snapshot command may use; each value is shell-quoted.
pub const PLACEHOLDERS: [&str; 5] = ["host", "vm", "address", "run_id", "run_dir"];
const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_FREEZE_MARGIN: Duration = Duration::from_secs(30);
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(1800);
/// EBS: a first snapshot of a large volume can stay `pending` for long.
const DEFAULT_DURABLE_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOn {
    Controller,
    Vm,
}

/// Who takes the snapshot: the site's command, or quiesce itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// `snapshot.command`: a hypervisor CLI, a script.
    #[default]
    Command,
    /// Read-only btrfs snapshots of the instance's subvolumes, on the VM.
    Btrfs,
    /// A snapshot per VM through vCenter or ESXi (vim25 SOAP).
    Vsphere,
    /// `CreateSnapshots` of an EC2 instance's EBS volumes (one
    /// crash-consistent set), durable once every snapshot is `completed`.
    AwsEbs,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Command => "command",
            ProviderKind::Btrfs => "btrfs",
            ProviderKind::Vsphere => "vsphere",
            ProviderKind::AwsEbs => "aws-ebs",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    #[serde(default)]
    provider: ProviderKind,
    command: Option<String>,
    #[serde(default = "default_run_on")]
    on: RunOn,
    timeout: Option<String>,
    #[serde(default)]
    retries: u32,
    btrfs: Option<RawBtrfs>,
    vsphere: Option<RawVsphere>,
    aws: Option<RawAws>,
    retention: Option<RawRetention>,
    /// A command run after the thaw with the snapshot's ids (a copy off-site).
    export: Option<String>,
    export_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVsphere {
    /// `https://vcenter.example.com/sdk`
    url: String,
    /// vCenter's certificate SHA-256 (pinned).
    thumbprint: Option<String>,
    /// A CA bundle (PEM) to verify vCenter's certificate with.
    ca_file: Option<String>,
    /// Trust any certificate: only when named.
    #[serde(default)]
    insecure: bool,
    /// `user=…` and `password=…` lines, mode 0600; else the environment's
    /// QUIESCE_VSPHERE_USERNAME and QUIESCE_VSPHERE_PASSWORD.
    credentials_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAws {
    /// Else the standard chain's (AWS_REGION, the profile).
    region: Option<String>,
    /// A named profile of ~/.aws/config; else the standard chain.
    profile: Option<String>,
    /// Another EC2 endpoint (a VPC endpoint, a test double).
    endpoint_url: Option<String>,
    /// Leave the boot volume out of the set.
    #[serde(default)]
    exclude_boot_volume: bool,
    /// How long the snapshots may stay `pending` after the thaw.
    durable_timeout: Option<String>,
    /// How often their state is read while they are `pending`.
    poll_interval: Option<String>,
}

/// The EBS provider's settings. Credentials come from the SDK's standard
/// chain (environment, profile, SSO, instance role), never from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub exclude_boot_volume: bool,
    #[serde(serialize_with = "secs")]
    pub durable_timeout: Duration,
    #[serde(serialize_with = "secs")]
    pub poll_interval: Duration,
}

/// Where vCenter is and how it is trusted and logged in to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsphereSettings {
    pub url: String,
    #[serde(skip)]
    pub trust: crate::backup::provider::vsphere::tls::Trust,
    pub credentials_file: Option<PathBuf>,
}

impl VsphereSettings {
    /// The user and password: the environment's, else the credentials file's
    /// (which others may not read). Never on a command line.
    pub fn credentials(&self) -> Result<(String, String), String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(u), Some(p)) = (
            env("QUIESCE_VSPHERE_USERNAME"),
            env("QUIESCE_VSPHERE_PASSWORD"),
        ) {
            return Ok((u, p));
        }
        let Some(path) = &self.credentials_file else {
            return Err("no vSphere credentials: set QUIESCE_VSPHERE_USERNAME and QUIESCE_VSPHERE_PASSWORD, or snapshot.vsphere.credentials_file".into());
        };
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            format!(
                "cannot read the vSphere credentials file {}: {e}",
                path.display()
            )
        })?;
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "the vSphere credentials file {} may be read by others (mode {:04o}): chmod 0600 it",
                path.display(),
                meta.mode() & 0o7777
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the vSphere credentials file {}: {e}",
                path.display()
            )
        })?;
        let value = |key: &str| {
            text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(key)?
                    .trim_start()
                    .strip_prefix('=')
                    .map(|v| v.trim().to_string())
            })
        };
        match (value("user"), value("password")) {
            (Some(u), Some(p)) if !u.is_empty() => Ok((u, p)),
            _ => Err(format!(
                "the vSphere credentials file {} needs `user=…` and `password=…` lines",
                path.display()
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBtrfs {
    /// Where the snapshots go, on the same btrfs file system.
    dir: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    keep: Option<u32>,
    max_age: Option<String>,
}

/// Which snapshots `snapshots prune` keeps: the newest `keep` valid ones of
/// each host and those younger than `max_age`; always the newest valid one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub keep: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
}

fn default_run_on() -> RunOn {
    RunOn::Controller
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: Option<String>,
    hosts: Option<String>,
    #[serde(default)]
    include_primaries: bool,
    #[serde(default)]
    consistency_groups: IndexMap<String, Vec<String>>,
    snapshot: RawSnapshot,
    freeze_margin: Option<String>,
    qos_warn_fraction: Option<f64>,
    verify: Option<RawVerify>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    /// The verification instance on the VM (installed once, not mirrored).
    instance: String,
    /// Where the writable clones go (btrfs: on the snapshots' file system).
    clone_dir: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    after_backup: bool,
    /// aws-ebs: the inventory host (an EC2 instance) the volumes are
    /// attached to and checked on.
    scratch: Option<String>,
    /// The site's own check, run on the VM against the restored clone.
    command: Option<String>,
    command_timeout: Option<String>,
}

/// How `quiesce verify` restores a backup (see docs/verify.md).
#[derive(Debug, Clone, Serialize)]
pub struct VerifySettings {
    /// The verification instance that is started on the clone.
    pub instance: String,
    /// Where the clones go on the VM.
    pub clone_dir: String,
    /// For one host's whole verification, clone to teardown.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    /// Verify each backup's valid hosts as soon as the backup ends.
    pub after_backup: bool,
    /// aws-ebs: the scratch instance (an inventory host) that gets the
    /// volumes made from the snapshots, and runs the verification instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scratch: Option<String>,
    /// The site's application check: a shell command run on the VM after
    /// the integrity check, with the verification instance still up on the
    /// clone (see docs/verify.md for its environment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(serialize_with = "secs")]
    pub command_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStep {
    pub provider: ProviderKind,
    /// The command (provider `command`; empty for the others).
    pub command: String,
    pub on: RunOn,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub retries: u32,
    /// btrfs: the directory of the snapshots on the VM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btrfs_dir: Option<String>,
    /// vsphere: where vCenter is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vsphere: Option<VsphereSettings>,
    /// aws-ebs: the region, endpoint and waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSettings>,
    /// Run on the controller after the thaw of each valid host, with
    /// QUIESCE_SNAPSHOT_IDS (and the placeholders of `command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    #[serde(serialize_with = "secs")]
    pub export_timeout: Duration,
    pub retention: Retention,
}

#[derive(Debug, Clone, Serialize)]
pub struct Playbook {
    pub path: PathBuf,
    pub name: String,
    pub hosts: Option<String>,
    pub include_primaries: bool,
    pub consistency_groups: IndexMap<String, Vec<String>>,
    pub snapshot: SnapshotStep,
    #[serde(serialize_with = "secs")]
    pub freeze_margin: Duration,
    /// Warn when a VM's stun reaches this fraction of its mirror's QoS timeout.
    pub qos_warn_fraction: f64,
    /// `verify`: how a backup is restored and checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySettings>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Playbook {
    /// ExternalFreezeTimeOut for this run: every snapshot attempt plus the margin.
    pub fn freeze_timeout(&self) -> Duration {
        // Saturating: absurd timeouts or retries must reach the 20-minute
        // check below as "too long", never overflow or wrap past it.
        self.snapshot
            .timeout
            .checked_mul(self.snapshot.retries.saturating_add(1))
            .and_then(|d| d.checked_add(self.freeze_margin))
            .unwrap_or(Duration::MAX)
    }

    pub fn load(path: &Path, inventory: &Inventory) -> Result<Playbook, Error> {
        let text = crate::inventory::source_map::read_input(path, "playbook")?;
        Playbook::parse(path, &text, inventory)
    }

    pub fn parse(path: &Path, text: &str, inventory: &Inventory) -> Result<Playbook, Error> {
        let (map, raw): (SourceMap, RawPlaybook) = crate::inventory::source_map::load_yaml(
            path,
            text,
            "each key may appear only once; merge the two entries",
            "see docs/playbook.md for every key and its type",
        )?;
        let err = |at: &[&str], message: String, hint: &str| {
            Error::input(path, map.value(at), message, hint)
        };
        let parse_duration =
            |text: &Option<String>, at: &[&str], default: Duration| -> Result<Duration, Error> {
                match text {
                    None => Ok(default),
                    Some(t) => duration::parse(t).map_err(|why| {
                        err(
                            at,
                            format!("{}: {why}", at.last().unwrap_or(&"")),
                            "write a duration such as 30s, 2m or 1h",
                        )
                    }),
                }
            };
        let provider = raw.snapshot.provider;
        let command = raw.snapshot.command.clone().unwrap_or_default();
        match provider {
            ProviderKind::Command if command.trim().is_empty() => {
                let at: &[&str] = if raw.snapshot.command.is_some() {
                    &["snapshot", "command"]
                } else {
                    &["snapshot"]
                };
                return Err(err(
                    at,
                    "the snapshot command is empty".into(),
                    "give the command that takes the snapshot, e.g. a hypervisor CLI call with {vm}, or a provider (provider: btrfs)",
                ));
            }
            ProviderKind::Btrfs if raw.snapshot.command.is_some() => {
                return Err(err(
                    &["snapshot", "command"],
                    "snapshot.command is for provider: command".into(),
                    "the btrfs provider takes the snapshots itself: remove the command, or the provider",
                ));
            }
            ProviderKind::Btrfs if raw.snapshot.btrfs.is_none() => {
                return Err(err(
                    &["snapshot", "provider"],
                    "provider btrfs needs snapshot.btrfs.dir".into(),
                    "where the read-only snapshots go on the VM, on the same btrfs file system as the instance's databases and journals, e.g. btrfs: { dir: /srv/.snapshots }",
                ));
            }
            _ => {}
        }
        if let Some(b) = &raw.snapshot.btrfs {
            if provider != ProviderKind::Btrfs {
                return Err(err(
                    &["snapshot", "btrfs"],
                    "snapshot.btrfs is for provider: btrfs".into(),
                    "add provider: btrfs, or remove the btrfs settings",
                ));
            }
            if !crate::inventory::is_safe_dir(&b.dir) || b.dir.trim_end_matches('/').is_empty() {
                return Err(err(
                    &["snapshot", "btrfs", "dir"],
                    format!("btrfs.dir `{}` is not a plain absolute directory", b.dir),
                    "use an absolute path of letters, digits, `/`, `.`, `_` and `-`, without `..`, not `/`",
                ));
            }
        }
        let vsphere = match (&raw.snapshot.vsphere, provider) {
            (None, ProviderKind::Vsphere) => {
                return Err(err(
                    &["snapshot", "provider"],
                    "provider vsphere needs snapshot.vsphere.url".into(),
                    "e.g. vsphere: { url: https://vcenter.example.com/sdk, thumbprint: SHA256 }",
                ));
            }
            (Some(_), p) if p != ProviderKind::Vsphere => {
                return Err(err(
                    &["snapshot", "vsphere"],
                    "snapshot.vsphere is for provider: vsphere".into(),
                    "add provider: vsphere, or remove the vsphere settings",
                ));
            }
            (None, _) => None,
            (Some(v), _) => {
                use crate::backup::provider::vsphere::tls::{Trust, thumbprint};
                if !v.url.starts_with("https://")
                    || v.url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(err(
                        &["snapshot", "vsphere", "url"],
                        format!("vsphere.url `{}` is not an https URL", v.url),
                        "vCenter's SDK endpoint, e.g. https://vcenter.example.com/sdk (TLS is always verified)",
                    ));
                }
                let given = [v.thumbprint.is_some(), v.ca_file.is_some(), v.insecure]
                    .iter()
                    .filter(|g| **g)
                    .count();
                if given > 1 {
                    return Err(err(
                        &["snapshot", "vsphere"],
                        "give one of thumbprint, ca_file and insecure".into(),
                        "how vCenter's certificate is trusted: a pinned SHA-256, a CA file, or (only when named) not at all; none of them: the system's CA store",
                    ));
                }
                let trust = match (&v.thumbprint, &v.ca_file) {
                    (Some(t), _) => Trust::Thumbprint(thumbprint(t).ok_or_else(|| {
                        err(
                            &["snapshot", "vsphere", "thumbprint"],
                            format!("vsphere.thumbprint `{t}` is not a SHA-256"),
                            "64 hex digits, with or without colons (openssl x509 -noout -fingerprint -sha256)",
                        )
                    })?),
                    (None, Some(f)) => Trust::CaFile(path.parent().unwrap_or(Path::new(".")).join(f)),
                    (None, None) if v.insecure => Trust::Insecure,
                    (None, None) => Trust::System,
                };
                Some(VsphereSettings {
                    url: v.url.clone(),
                    trust,
                    credentials_file: v
                        .credentials_file
                        .as_ref()
                        .map(|f| path.parent().unwrap_or(Path::new(".")).join(f)),
                })
            }
        };
        let aws = match (&raw.snapshot.aws, provider) {
            (Some(_), p) if p != ProviderKind::AwsEbs => {
                return Err(err(
                    &["snapshot", "aws"],
                    "snapshot.aws is for provider: aws-ebs".into(),
                    "add provider: aws-ebs, or remove the aws settings",
                ));
            }
            (None, ProviderKind::AwsEbs) => Some(AwsSettings {
                region: None,
                profile: None,
                endpoint_url: None,
                exclude_boot_volume: false,
                durable_timeout: DEFAULT_DURABLE_TIMEOUT,
                poll_interval: DEFAULT_POLL_INTERVAL,
            }),
            (None, _) => None,
            (Some(a), _) => {
                let plain =
                    |v: &Option<String>, key: &'static str, what: &str| -> Result<(), Error> {
                        match v {
                            Some(t)
                                if t.is_empty()
                                    || t.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                            {
                                Err(err(
                                    &["snapshot", "aws", key],
                                    format!("aws.{key} `{t}` is not {what}"),
                                    "one word, without blanks",
                                ))
                            }
                            _ => Ok(()),
                        }
                    };
                plain(&a.region, "region", "a region name such as eu-west-1")?;
                plain(&a.profile, "profile", "a profile name")?;
                plain(&a.endpoint_url, "endpoint_url", "a URL")?;
                if let Some(u) = &a.endpoint_url
                    && !(u.starts_with("https://") || u.starts_with("http://"))
                {
                    return Err(err(
                        &["snapshot", "aws", "endpoint_url"],
                        format!("aws.endpoint_url `{u}` is not an http(s) URL"),
                        "e.g. https://ec2.eu-west-1.amazonaws.com",
                    ));
                }
                let durable_timeout = parse_duration(
                    &a.durable_timeout,
                    &["snapshot", "aws", "durable_timeout"],
                    DEFAULT_DURABLE_TIMEOUT,
                )?;
                let poll_interval = parse_duration(
                    &a.poll_interval,
                    &["snapshot", "aws", "poll_interval"],
                    DEFAULT_POLL_INTERVAL,
                )?;
                if poll_interval.is_zero() || durable_timeout.is_zero() {
                    return Err(err(
                        &["snapshot", "aws"],
                        "aws.durable_timeout and aws.poll_interval must be more than zero".into(),
                        "e.g. durable_timeout: 30m, poll_interval: 15s",
                    ));
                }
                Some(AwsSettings {
                    region: a.region.clone(),
                    profile: a.profile.clone(),
                    endpoint_url: a.endpoint_url.clone(),
                    exclude_boot_volume: a.exclude_boot_volume,
                    durable_timeout,
                    poll_interval,
                })
            }
        };
        if let Some(export) = &raw.snapshot.export {
            if export.trim().is_empty() {
                return Err(err(
                    &["snapshot", "export"],
                    "snapshot.export is empty".into(),
                    "a command run after the thaw with the snapshot's ids in QUIESCE_SNAPSHOT_IDS, or no export key",
                ));
            }
            check_placeholders(export).map_err(|why| {
                err(
                    &["snapshot", "export"],
                    why,
                    &format!(
                        "placeholders are {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                    ),
                )
            })?;
        }
        let export_timeout = parse_duration(
            &raw.snapshot.export_timeout,
            &["snapshot", "export_timeout"],
            DEFAULT_EXPORT_TIMEOUT,
        )?;
        let retention = match &raw.snapshot.retention {
            None => Retention::default(),
            Some(r) => Retention {
                keep: r.keep,
                max_age_secs: match &r.max_age {
                    None => None,
                    Some(_) => Some(
                        parse_duration(
                            &r.max_age,
                            &["snapshot", "retention", "max_age"],
                            Duration::ZERO,
                        )?
                        .as_secs(),
                    ),
                },
            },
        };
        check_placeholders(&command).map_err(|why| {
            err(
                &["snapshot", "command"],
                why,
                &format!(
                    "placeholders are {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ),
            )
        })?;
        let timeout = parse_duration(
            &raw.snapshot.timeout,
            &["snapshot", "timeout"],
            DEFAULT_SNAPSHOT_TIMEOUT,
        )?;
        if timeout.is_zero() {
            return Err(err(
                &["snapshot", "timeout"],
                "snapshot.timeout must be more than zero".into(),
                "how long one snapshot may take, e.g. 2m",
            ));
        }
        let freeze_margin = parse_duration(
            &raw.freeze_margin,
            &["freeze_margin"],
            DEFAULT_FREEZE_MARGIN,
        )?;
        if freeze_margin < Duration::from_secs(5) {
            return Err(err(
                &["freeze_margin"],
                format!(
                    "freeze_margin {} is too short",
                    duration::format(freeze_margin)
                ),
                "quiesce needs at least 5s after a failed snapshot to thaw before the freeze times out",
            ));
        }
        let qos_warn_fraction = raw.qos_warn_fraction.unwrap_or(0.5);
        if !(qos_warn_fraction > 0.0 && qos_warn_fraction <= 1.0) {
            return Err(err(
                &["qos_warn_fraction"],
                format!("qos_warn_fraction {qos_warn_fraction} is out of range"),
                "a fraction of the QoS timeout, more than 0 and at most 1",
            ));
        }
        let verify = match &raw.verify {
            None => None,
            Some(v) => {
                if !crate::inventory::is_plain_name(&v.instance, false) {
                    return Err(err(
                        &["verify", "instance"],
                        format!("verify.instance `{}` is not an instance name", v.instance),
                        "the verification instance's name as qlist shows it: letters, digits, `_` and `-`",
                    ));
                }
                let clone_dir = match (&v.clone_dir, &raw.snapshot.btrfs) {
                    (Some(d), _) => d.trim_end_matches('/').to_string(),
                    (None, Some(b)) => format!("{}/.verify", b.dir.trim_end_matches('/')),
                    // Where the scratch instance mounts the volumes.
                    (None, None) => "/mnt/quiesce-verify".to_string(),
                };
                if let Some(scratch) = &v.scratch
                    && inventory.host(scratch).is_none()
                {
                    return Err(err(
                        &["verify", "scratch"],
                        format!("verify.scratch `{scratch}` is not a host of the inventory"),
                        "name the inventory host of the scratch EC2 instance (reachable over SSH, with the verification instance installed)",
                    ));
                }
                if !clone_dir.is_empty()
                    && (!crate::inventory::is_safe_dir(&clone_dir) || clone_dir.is_empty())
                {
                    return Err(err(
                        &["verify", "clone_dir"],
                        format!("verify.clone_dir `{clone_dir}` is not a plain absolute directory"),
                        "use an absolute path of letters, digits, `/`, `.`, `_` and `-`, without `..`, not `/`",
                    ));
                }
                Some(VerifySettings {
                    instance: v.instance.clone(),
                    clone_dir,
                    timeout: parse_duration(
                        &v.timeout,
                        &["verify", "timeout"],
                        Duration::from_secs(30 * 60),
                    )?,
                    after_backup: v.after_backup,
                    scratch: v.scratch.clone(),
                    command: match v.command.as_deref().map(str::trim) {
                        None => None,
                        Some("") => {
                            return Err(err(
                                &["verify", "command"],
                                "verify.command is empty".to_string(),
                                "give the shell command that checks the restored application, or leave verify.command out",
                            ));
                        }
                        Some(c) => Some(c.to_string()),
                    },
                    command_timeout: parse_duration(
                        &v.command_timeout,
                        &["verify", "command_timeout"],
                        Duration::from_secs(10 * 60),
                    )?,
                })
            }
        };
        let playbook = Playbook {
            path: path.to_path_buf(),
            name: raw.name.unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
            hosts: raw.hosts,
            include_primaries: raw.include_primaries,
            consistency_groups: raw.consistency_groups,
            snapshot: SnapshotStep {
                provider,
                command,
                on: raw.snapshot.on,
                timeout,
                retries: raw.snapshot.retries,
                btrfs_dir: raw
                    .snapshot
                    .btrfs
                    .map(|b| b.dir.trim_end_matches('/').to_string()),
                vsphere,
                aws,
                export: raw.snapshot.export.clone(),
                export_timeout,
                retention,
            },
            freeze_margin,
            qos_warn_fraction,
            verify,
        };
        if playbook.freeze_timeout() > MAX_FREEZE_TIMEOUT {
            return Err(err(
                &["snapshot", "timeout"],
                format!(
                    "snapshot.timeout × (retries + 1) + freeze_margin is {}, over the 20m ExternalFreezeTimeOut limit",
                    duration::format(playbook.freeze_timeout())
                ),
                "shorten the snapshot timeout, the retries or the margin: Caché/IRIS caps a freeze at 1200 s",
            ));
        }
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        for (group, members) in &playbook.consistency_groups {
            if members.is_empty() {
                return Err(err(
                    &["consistency_groups", group],
                    format!("consistency group `{group}` has no hosts"),
                    "list the hosts that must be captured at one point in time",
                ));
            }
            let mut mirrors = Vec::new();
            for (i, member) in members.iter().enumerate() {
                let index = i.to_string();
                let at = ["consistency_groups", group.as_str(), index.as_str()];
                let Some(host) = inventory.host(member) else {
                    let known: Vec<&str> =
                        inventory.hosts.iter().map(|h| h.name.as_str()).collect();
                    return Err(err(
                        &at,
                        format!("consistency group `{group}` names unknown host `{member}`"),
                        &format!("known hosts: {}", known.join(", ")),
                    ));
                };
                if let Some(other) = seen.insert(member, group) {
                    return Err(err(
                        &at,
                        format!("host `{member}` is already in consistency group `{other}`"),
                        "a host belongs to at most one consistency group",
                    ));
                }
                if let Some(m) = &host.mirror
                    && !mirrors.contains(m)
                {
                    mirrors.push(m.clone());
                }
            }
            if mirrors.len() > 1 {
                return Err(err(
                    &["consistency_groups", group],
                    format!(
                        "consistency group `{group}` spans mirrors {}",
                        mirrors.join(" and ")
                    ),
                    "a group may hold members of one mirror at most, so that mirror's order can be kept",
                ));
            }
        }
        Ok(playbook)
    }
}

/// One piece of a snapshot command as quiesce reads it.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    /// Shell text, sent as it is.
    Text(&'a str),
    /// A known `{name}`, outside quotes.
    Placeholder(&'a str),
}

/// The one reading of a snapshot command, shared by the check at load and
/// the renderer, so the two can never disagree about where a placeholder
/// is: each `{…}` must be a known placeholder standing bare (a bare one
/// becomes a double-quoted variable reference, which no value can break out
/// of; inside quotes, or after a backslash, it would change meaning, so it
/// is refused). Braces are for placeholders only.
fn pieces(command: &str) -> Result<Vec<Piece<'_>>, String> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let column = |at: usize| command[..at].chars().count() + 1;
    let mut quote = Quote::None;
    let mut out = Vec::new();
    let mut text_from = 0;
    let mut chars = command.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match (&quote, c) {
            (Quote::None | Quote::Double, '\\') => {
                if let Some((_, '{')) = chars.peek() {
                    return Err(format!(
                        "a backslash stands before `{{` (at character {}): braces in the snapshot command are for placeholders only, written bare ({{vm}}); remove the backslash",
                        column(at)
                    ));
                }
                chars.next();
            }
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::Single, '\'') => quote = Quote::None,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::Double, '"') => quote = Quote::None,
            (_, '{') => {
                let after = &command[at + 1..];
                let Some(end) = after.find('}') else {
                    return Err("an opening `{` has no closing `}`".into());
                };
                let name = &after[..end];
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "unknown placeholder `{{{name}}}` in the snapshot command"
                    ));
                }
                if quote != Quote::None {
                    return Err(format!(
                        "placeholder `{{{name}}}` stands inside quotes (at character {}); write it bare: quiesce passes its value as \"${}\", which no value can break out of",
                        column(at),
                        placeholder_var(name)
                    ));
                }
                if text_from < at {
                    out.push(Piece::Text(&command[text_from..at]));
                }
                out.push(Piece::Placeholder(name));
                text_from = at + end + 2;
                while chars.peek().is_some_and(|(i, _)| *i < text_from) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    if text_from < command.len() {
        out.push(Piece::Text(&command[text_from..]));
    }
    Ok(out)
}

/// Checks the command's placeholders (see `pieces`).
fn check_placeholders(command: &str) -> Result<(), String> {
    pieces(command).map(|_| ())
}

/// The environment variable a placeholder's value is passed in.
pub fn placeholder_var(name: &str) -> String {
    format!("QUIESCE_{}", name.to_ascii_uppercase())
}

/// The command with each `{placeholder}` replaced by a double-quoted
/// reference to its variable (`"$QUIESCE_VM"`), and those variables with
/// their values: run the command with them in its environment. The values
/// never become shell text, so no value and no placement can inject. A
/// command the check refuses (never one loaded from a playbook) is kept as
/// it is, with no reference put in.
pub fn render_command(template: &str, values: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(template.len() + 32);
    match pieces(template) {
        Ok(pieces) => {
            for piece in pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Placeholder(name) if values.iter().any(|(k, _)| *k == name) => {
                        out.push_str(&format!("\"${}\"", placeholder_var(name)))
                    }
                    Piece::Placeholder(name) => out.push_str(&format!("{{{name}}}")),
                }
            }
        }
        Err(_) => out.push_str(template),
    }
    let env = values
        .iter()
        .map(|(k, v)| (placeholder_var(k), v.to_string()))
        .collect();
    (out, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_timeouts_and_retries_are_refused_not_overflowed() {
        let inventory = crate::inventory::Inventory::parse(
            Path::new("i.yml"),
            "hosts:\n  db1: { address: 10.0.0.1 }\n",
        )
        .unwrap();
        for snapshot in [
            "{ command: snap, timeout: 18446744073709551615s }",
            "{ command: snap, timeout: 20s, retries: 4294967295 }",
            "{ command: snap, timeout: 5124095576030431h }",
        ] {
            let text = format!("name: x\nsnapshot: {snapshot}\n");
            let error = Playbook::parse(Path::new("p.yml"), &text, &inventory)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("over the 20m ExternalFreezeTimeOut limit")
                    || error.contains("is too large"),
                "{snapshot}: {error}"
            );
        }
    }

    #[test]
    fn verify_settings_are_read_and_checked_with_where() {
        let inventory = crate::inventory::Inventory::parse(
            Path::new("i.yml"),
            "hosts:\n  db1: { address: 10.0.0.1 }\n",
        )
        .unwrap();
        let base = "name: x\nsnapshot: { provider: btrfs, btrfs: { dir: /srv/snaps } }\n";
        let ok = Playbook::parse(
            Path::new("p.yml"),
            &format!("{base}verify: {{ instance: VERIFY, after_backup: true }}\n"),
            &inventory,
        )
        .unwrap();
        let v = ok.verify.unwrap();
        assert_eq!(
            (v.clone_dir.as_str(), v.after_backup),
            ("/srv/snaps/.verify", true)
        );
        assert_eq!(v.timeout, Duration::from_secs(1800));
        assert_eq!(
            (v.command, v.command_timeout),
            (None, Duration::from_secs(600))
        );
        for (bad, said) in [
            (
                "{ instance: \"V;rm\" }",
                "p.yml:3:21: verify.instance `V;rm` is not an instance name",
            ),
            (
                "{ instance: V, clone_dir: ../x }",
                "verify.clone_dir `../x` is not a plain absolute directory",
            ),
            (
                "{ instance: V, timeout: soon }",
                "p.yml:3:33: timeout: `soon` is not a duration",
            ),
            ("{ instance: V, keep: 1 }", "unknown field `keep`"),
            (
                "{ instance: V, command: ' ' }",
                "p.yml:3:33: verify.command is empty",
            ),
            (
                "{ instance: V, scratch: nope }",
                "verify.scratch `nope` is not a host of the inventory",
            ),
        ] {
            let error = Playbook::parse(
                Path::new("p.yml"),
                &format!("{base}verify: {bad}\n"),
                &inventory,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(error.contains(said), "{bad}: {error}");
        }
    }

    #[test]
    fn commands_are_rendered_with_quoted_values() {
        let (out, env) = render_command(
            "snap {vm} --tag x-{run_id}",
            &[("vm", "PROD DB'1$(touch /tmp/x)"), ("run_id", "r1")],
        );
        assert_eq!(out, "snap \"$QUIESCE_VM\" --tag x-\"$QUIESCE_RUN_ID\"");
        assert_eq!(
            env,
            [
                (
                    "QUIESCE_VM".to_string(),
                    "PROD DB'1$(touch /tmp/x)".to_string()
                ),
                ("QUIESCE_RUN_ID".to_string(), "r1".to_string())
            ]
        );
        // Through a real shell, the value arrives intact and runs nothing.
        let shell = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "{}printf %s {}",
                crate::remote::shell::env_prelude(&env),
                "\"$QUIESCE_VM\""
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&shell.stdout),
            "PROD DB'1$(touch /tmp/x)"
        );
        assert!(check_placeholders("x {vm} {host}").is_ok());
        assert!(check_placeholders("x {nope}").is_err());
        assert!(check_placeholders("x {vm").is_err());
        assert!(
            check_placeholders("x '{vm}'")
                .unwrap_err()
                .contains("stands inside quotes (at character 4)")
        );
        assert!(
            check_placeholders("x -vm \"{vm}\"")
                .unwrap_err()
                .contains("write it bare")
        );
        assert!(check_placeholders("x \\\"{vm} 'a\"b' {host}").is_ok());
        // A backslash before a placeholder: refused, never half a literal.
        assert!(
            check_placeholders("snap \\{vm} \\{vm}")
                .unwrap_err()
                .contains("a backslash stands before `{` (at character 6)")
        );
        assert_eq!(
            render_command("snap \\{vm}", &[("vm", "a b")]).0,
            "snap \\{vm}"
        );
    }

    proptest::proptest! {
        #[test]
        fn rendering_never_panics(template in "\\PC{0,60}", value in "\\PC{0,20}") {
            let _ = check_placeholders(&template);
            let _ = render_command(&template, &[("vm", &value)]);
        }

        /// Whatever the command, what the check accepts the renderer reads
        /// the same way: every placeholder it puts in stands bare.
        #[test]
        fn the_check_and_the_renderer_agree(template in "(\\{vm\\}|[a \\\\'\"$]){0,12}") {
            if check_placeholders(&template).is_ok() {
                let (command, _) = render_command(&template, &[("vm", "v")]);
                let (again, _) = render_command(&command.replace("\"$QUIESCE_VM\"", "{vm}"), &[("vm", "v")]);
                proptest::prop_assert_eq!(&again, &command);
                // No reference is escaped: an even run of backslashes before each.
                for (at, _) in command.match_indices("\"$QUIESCE_VM\"") {
                    let run = command[..at].chars().rev().take_while(|c| *c == '\\').count();
                    proptest::prop_assert!(run % 2 == 0, "{command}");
                }
            }
        }

        #[test]
        fn no_value_runs_anything_wherever_it_is_placed(value in "\\PC{0,40}", before in "[a-z =,.:-]{0,6}", after in "[a-z =,.:-]{0,6}") {
            let template = format!("printf '%s\\n' {before}{{vm}}{after} > /dev/null; printf %s {{vm}}");
            if check_placeholders(&template).is_ok() {
                let (command, env) = render_command(&template, &[("vm", &value)]);
                let out = std::process::Command::new("/bin/sh").arg("-c").arg(&command).envs(env).output().unwrap();
                proptest::prop_assert_eq!(String::from_utf8_lossy(&out.stdout), value.as_str());
            }
        }
    }
}
