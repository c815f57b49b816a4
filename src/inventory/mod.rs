//! The inventory, quiesce's YAML or an Ansible one (`ansible.rs`): reading,
//! validating (every error with file:line:column) and resolving each host's
//! settings (host > groups > defaults, then the user's ssh_config: `reach.rs`).

pub mod ansible;
mod ansible_ini;
mod ansible_json;
pub mod limit;
pub mod playbook;
pub mod reach;
pub mod source_map;

use crate::inventory::reach::{Given, JumpSpec, SshReach};
use crate::inventory::source_map::{Pos, SourceMap};
use crate::output::duration;
use crate::output::error::Error;
use crate::remote::ssh_config::SshConfig;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 22;
pub const DEFAULT_USER: &str = "root";
pub const DEFAULT_HOOK_DIR: &str = "/usr/sbin";
pub const DEFAULT_LOG_DIR: &str = "/var/log";
pub const DEFAULT_FREEZE_TIMEOUT: Duration = Duration::from_secs(600);
/// ExternalFreezeTimeOut values above this are clamped by Caché/IRIS.
pub const MAX_FREEZE_TIMEOUT: Duration = Duration::from_secs(1200);
pub const DEFAULT_QOS_TIMEOUT: Duration = Duration::from_secs(8);

const DOCS_HINT: &str = "see docs/inventory.md for every key and its type";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Iris,
    Cache,
}

/// What runs `iris_container` (`ENGINE exec CONTAINER ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ContainerEngine {
    #[default]
    Docker,
    Podman,
}

impl ContainerEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerEngine::Docker => "docker",
            ContainerEngine::Podman => "podman",
        }
    }
}

/// What runs the hooks when quiesce does not: the freeze framework of the
/// VM's hypervisor, which decides where the hooks live and how they are
/// called (docs/frameworks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum Framework {
    /// VMware Tools: `/usr/sbin/pre-freeze-script` and `post-thaw-script`.
    #[default]
    #[serde(rename = "vmware")]
    Vmware,
    /// qemu-guest-agent (Proxmox, KVM, KubeVirt, OpenStack): one hook in
    /// its fsfreeze-hook.d, called with `freeze` and `thaw`.
    #[serde(rename = "qemu-ga")]
    QemuGa,
    /// Nothing but quiesce runs the hooks (any `hook_dir`).
    #[serde(rename = "none")]
    None,
}

/// Where qemu-ga's stock fsfreeze-hook runs the hooks from: Debian's and
/// upstream's, and RHEL's.
pub const QEMU_GA_HOOK_DIRS: [&str; 2] =
    ["/etc/qemu/fsfreeze-hook.d", "/etc/qemu-ga/fsfreeze-hook.d"];

impl Framework {
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Vmware => "vmware",
            Framework::QemuGa => "qemu-ga",
            Framework::None => "none",
        }
    }

    pub fn is_vmware(&self) -> bool {
        *self == Framework::Vmware
    }

    /// The hook directory when the inventory names none.
    pub fn default_hook_dir(self) -> &'static str {
        match self {
            Framework::QemuGa => QEMU_GA_HOOK_DIRS[0],
            Framework::Vmware | Framework::None => DEFAULT_HOOK_DIR,
        }
    }

    /// Why hooks in `dir` would never run for this framework (or would run
    /// wrongly), with what to write instead; none when `dir` is right.
    pub fn refuses_hook_dir(self, dir: &str) -> Option<(String, &'static str)> {
        let dir = dir.trim_end_matches('/');
        match self {
            Framework::None => None,
            Framework::Vmware if dir == DEFAULT_HOOK_DIR => None,
            Framework::Vmware if dir == "/etc/vmware-tools/backupScripts.d" => Some((
                format!(
                    "hook_dir `{dir}`: VMware Tools runs every file there with `freeze` (and `thaw`), so both of quiesce's hooks would be called for each and the second would refuse: every quiesced snapshot would fail"
                ),
                "remove hook_dir (VMware Tools runs /usr/sbin/pre-freeze-script and post-thaw-script), or set framework: none when only quiesce runs these hooks",
            )),
            Framework::Vmware => Some((
                format!(
                    "hook_dir `{dir}`: VMware Tools runs its hooks from /usr/sbin only, so hooks there would never run for a quiesced snapshot"
                ),
                "remove hook_dir (the default is /usr/sbin), or set framework: none when only quiesce runs these hooks (framework: qemu-ga for qemu-guest-agent)",
            )),
            Framework::QemuGa if QEMU_GA_HOOK_DIRS.contains(&dir) => None,
            Framework::QemuGa => Some((
                format!(
                    "hook_dir `{dir}`: qemu-guest-agent's fsfreeze-hook runs the hooks of /etc/qemu/fsfreeze-hook.d (/etc/qemu-ga/fsfreeze-hook.d on RHEL) only"
                ),
                "remove hook_dir (the default is /etc/qemu/fsfreeze-hook.d), or set framework: none when only quiesce runs these hooks",
            )),
        }
    }
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Iris => "iris",
            Platform::Cache => "cache",
        }
    }
}

/// Bastions: `b1,b2` or a list; `none` for none (over a group's).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum JumpText {
    One(String),
    List(Vec<String>),
}

impl JumpText {
    fn specs(&self) -> Result<Vec<JumpSpec>, String> {
        match self {
            JumpText::One(text) => JumpSpec::parse_list(text),
            JumpText::List(items) => items.iter().map(|i| JumpSpec::parse(i)).collect(),
        }
    }
}

/// A whole number of seconds or a duration text (`8s`, `500ms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

impl DurationText {
    fn value(&self) -> Result<Duration, String> {
        match self {
            DurationText::Seconds(s) => Ok(Duration::from_secs(*s)),
            DurationText::Text(t) => duration::parse(t),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    address: Option<String>,
    vm: Option<String>,
    port: Option<i64>,
    user: Option<String>,
    identity_file: Option<String>,
    r#become: Option<bool>,
    platform: Option<Platform>,
    /// What runs the hooks besides quiesce: vmware, qemu-ga or none.
    framework: Option<Framework>,
    instances: Option<Vec<String>>,
    hook_dir: Option<String>,
    log_dir: Option<String>,
    freeze_timeout: Option<DurationText>,
    iris_container: Option<String>,
    /// Where `log_dir` is inside the container (its volume's target).
    container_log_dir: Option<String>,
    container_engine: Option<ContainerEngine>,
    iris_user: Option<String>,
    /// Refuse a VMware-driven freeze of a mirror's failover primary.
    refuse_vmware_primary: Option<bool>,
    /// The ESXi host (a name under `esxi_hosts`) that runs the VM.
    esxi: Option<String>,
    /// The VM's directory on that host's datastore (where its vmware.log is).
    vm_dir: Option<String>,
    /// Bastions the connection goes through (ProxyJump), in order.
    jump: Option<JumpText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEsxi {
    address: String,
    port: Option<i64>,
    user: Option<String>,
    identity_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    hosts: Vec<String>,
    vars: Option<RawSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    members: Vec<String>,
    qos_timeout: Option<DurationText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    defaults: Option<RawSettings>,
    #[serde(default)]
    hosts: IndexMap<String, Option<RawSettings>>,
    #[serde(default)]
    groups: IndexMap<String, RawGroup>,
    #[serde(default)]
    mirrors: IndexMap<String, RawMirror>,
    /// ESXi hosts quiesce reads vmware.log from (read-only, over SSH).
    #[serde(default)]
    esxi_hosts: IndexMap<String, RawEsxi>,
}

/// One VM with every setting resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<PathBuf>,
    pub r#become: bool,
    pub platform: Platform,
    /// What runs the hooks besides quiesce (where they live, how called).
    #[serde(skip_serializing_if = "Framework::is_vmware")]
    pub framework: Framework,
    pub vm: String,
    pub instances: Vec<String>,
    pub hook_dir: String,
    pub log_dir: String,
    #[serde(serialize_with = "serialize_secs")]
    pub freeze_timeout: Duration,
    pub groups: Vec<String>,
    pub mirror: Option<String>,
    /// The instance runs in this container: every `iris`/`ccontrol`/session
    /// command goes through `ENGINE exec CONTAINER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iris_container: Option<String>,
    /// `log_dir` as the container sees it (the instance opens its LogFile
    /// there); none: the same path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_log_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_engine: Option<ContainerEngine>,
    /// Run the instance commands as this user (its owner, when root may not
    /// log in with OS authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iris_user: Option<String>,
    /// The hooks refuse a freeze that VMware Tools asks for (not a quiesce
    /// run) while an instance is a mirror's failover primary: Tools then
    /// aborts that quiesced snapshot, so a backup product's stun never
    /// reaches the primary. Off by default (the snapshot goes ahead and the
    /// role is logged).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refuse_vmware_primary: bool,
    /// Where the VM's vmware.log is: its ESXi host and datastore directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esxi: Option<VmLocation>,
    /// Bastions, key files, known_hosts files, time limits (inventory and
    /// ssh_config), and where each value came from.
    pub ssh: SshReach,
}

/// An ESXi host and the VM's directory on its datastore.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmLocation {
    pub esxi: EsxiHost,
    pub vm_dir: String,
}

/// An ESXi host, reached over SSH (read-only: quiesce only reads vmware.log there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EsxiHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<PathBuf>,
}

impl EsxiHost {
    /// The ESXi host as a host to connect to (the same host-key rules).
    pub fn as_host(&self) -> Host {
        Host {
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone(),
            identity_file: self.identity_file.clone(),
            r#become: false,
            platform: Platform::Iris,
            framework: Framework::Vmware,
            vm: self.name.clone(),
            instances: Vec::new(),
            hook_dir: DEFAULT_HOOK_DIR.into(),
            log_dir: DEFAULT_LOG_DIR.into(),
            freeze_timeout: DEFAULT_FREEZE_TIMEOUT,
            groups: Vec::new(),
            mirror: None,
            iris_container: None,
            container_log_dir: None,
            container_engine: None,
            iris_user: None,
            refuse_vmware_primary: false,
            esxi: None,
            ssh: SshReach::default(),
        }
    }
}

impl Host {
    /// `name (address:port)`, how a host is named in every message.
    pub fn target(&self) -> String {
        format!("{} ({}:{})", self.name, self.address, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mirror {
    pub name: String,
    pub members: Vec<String>,
    #[serde(serialize_with = "serialize_secs")]
    pub qos_timeout: Duration,
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    /// In the order the file lists them.
    pub hosts: Vec<Host>,
    pub groups: IndexMap<String, Vec<String>>,
    pub mirrors: IndexMap<String, Mirror>,
    /// Host name → position in `hosts`: a lookup costs the same at 10,000 hosts.
    index: std::collections::HashMap<String, usize>,
}

impl Inventory {
    pub fn new(
        path: PathBuf,
        hosts: Vec<Host>,
        groups: IndexMap<String, Vec<String>>,
        mirrors: IndexMap<String, Mirror>,
    ) -> Inventory {
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        Inventory {
            path,
            hosts,
            groups,
            mirrors,
            index,
        }
    }

    /// Reads a quiesce or an Ansible inventory (told apart by content) and
    /// resolves every host with the user's ssh_config.
    pub fn load(path: &Path, config: &SshConfig) -> Result<Inventory, Error> {
        let text = match ansible::dynamic_list(path)? {
            Some(listed) => listed,
            None => crate::inventory::source_map::read_input(path, "inventory")?,
        };
        Inventory::parse_with(path, &text, config)
    }

    /// `parse_with` and no ssh_config.
    pub fn parse(path: &Path, text: &str) -> Result<Inventory, Error> {
        Inventory::parse_with(path, text, &SshConfig::default())
    }

    pub fn parse_with(path: &Path, text: &str, config: &SshConfig) -> Result<Inventory, Error> {
        if let Some(converted) = ansible::convert(path, text)? {
            return Resolver {
                path,
                map: &converted.map,
                base: path.parent().unwrap_or(Path::new(".")),
                config,
                aliases: Some(&converted.aliases),
                connections: Some(&converted.connections),
            }
            .resolve(converted.raw);
        }
        if text.trim().is_empty() {
            return Err(Error::input(
                path,
                Pos { line: 1, column: 1 },
                "the inventory is empty",
                "add a `hosts:` section; see inventory/example.yml",
            ));
        }
        let (map, raw): (SourceMap, RawInventory) = crate::inventory::source_map::load_yaml(
            path,
            text,
            "each host, group, mirror and setting may appear only once; merge the two entries",
            DOCS_HINT,
        )?;
        Resolver {
            path,
            map: &map,
            base: path.parent().unwrap_or(Path::new(".")),
            config,
            aliases: None,
            connections: None,
        }
        .resolve(raw)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(*self.index.get(name)?)
    }

    /// Where the host stands in `hosts`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

struct Resolver<'a> {
    path: &'a Path,
    map: &'a SourceMap,
    base: &'a Path,
    config: &'a SshConfig,
    /// Ansible's hosts: the name ssh is given (`ansible_host`, else the
    /// host's), and where it stands.
    aliases: Option<&'a std::collections::HashMap<String, (String, Pos)>>,
    /// Ansible's hosts whose `ansible_connection` is not SSH.
    connections: Option<&'a std::collections::HashMap<String, String>>,
}

impl Resolver<'_> {
    fn err(&self, at: &[&str], message: String, hint: &str) -> Error {
        Error::input(self.path, self.map.value(at), message, hint)
    }

    fn key_err(&self, at: &[&str], message: String, hint: &str) -> Error {
        Error::input(self.path, self.map.key(at), message, hint)
    }

    fn resolve(&self, raw: RawInventory) -> Result<Inventory, Error> {
        if raw.hosts.is_empty() {
            return Err(self.err(
                &["hosts"],
                "the inventory has no hosts".into(),
                "add a `hosts:` section; see inventory/example.yml",
            ));
        }
        let defaults = raw.defaults.unwrap_or_default();
        self.check_settings(&defaults, &["defaults"], false)?;

        for (name, _) in &raw.hosts {
            if !is_plain_name(name, true) {
                return Err(self.key_err(
                    &["hosts", name],
                    format!("host name `{name}` is not a plain name"),
                    "use letters, digits, `.`, `_` and `-`, starting with a letter or digit",
                ));
            }
        }
        let mut host_groups: IndexMap<&str, Vec<&str>> = IndexMap::new();
        for (group, body) in &raw.groups {
            if !is_plain_name(group, true) {
                return Err(self.key_err(
                    &["groups", group],
                    format!("group name `{group}` is not a plain name"),
                    "use letters, digits, `.`, `_` and `-`",
                ));
            }
            if raw.hosts.contains_key(group) {
                return Err(self.key_err(
                    &["groups", group],
                    format!("group `{group}` has the name of a host"),
                    "rename the group: --limit could not tell them apart",
                ));
            }
            for (i, member) in body.hosts.iter().enumerate() {
                if !raw.hosts.contains_key(member) {
                    return Err(self.err(
                        &["groups", group, "hosts", &i.to_string()],
                        format!("group `{group}` names unknown host `{member}`"),
                        &known_hint("hosts", raw.hosts.keys()),
                    ));
                }
                host_groups.entry(member.as_str()).or_default().push(group);
            }
            if let Some(vars) = &body.vars {
                self.check_settings(vars, &["groups", group, "vars"], false)?;
            }
        }

        let mut mirrors = IndexMap::new();
        let mut mirror_of: IndexMap<&str, &str> = IndexMap::new();
        for (name, body) in &raw.mirrors {
            if !is_plain_name(name, true) {
                return Err(self.key_err(
                    &["mirrors", name],
                    format!("mirror name `{name}` is not a plain name"),
                    "use letters, digits, `.`, `_` and `-`",
                ));
            }
            if body.members.is_empty() {
                return Err(self.err(
                    &["mirrors", name, "members"],
                    format!("mirror `{name}` has no members"),
                    "list its failover and async members' host names",
                ));
            }
            for (i, member) in body.members.iter().enumerate() {
                let at = ["mirrors", name.as_str(), "members", &i.to_string()];
                if !raw.hosts.contains_key(member) {
                    return Err(self.err(
                        &at,
                        format!("mirror `{name}` names unknown host `{member}`"),
                        &known_hint("hosts", raw.hosts.keys()),
                    ));
                }
                if let Some(other) = mirror_of.insert(member, name) {
                    let message = if other == name {
                        format!("host `{member}` is listed twice in mirror `{name}`")
                    } else {
                        format!("host `{member}` is already a member of mirror `{other}`")
                    };
                    return Err(self.err(&at, message, "a VM belongs to at most one mirror"));
                }
            }
            let qos_timeout = match &body.qos_timeout {
                None => DEFAULT_QOS_TIMEOUT,
                Some(text) => {
                    let d = self.duration(text, &["mirrors", name, "qos_timeout"])?;
                    if d.is_zero() {
                        return Err(self.err(
                            &["mirrors", name, "qos_timeout"],
                            "qos_timeout must be more than zero".into(),
                            "the mirror's QoS timeout, e.g. 8s (the IRIS default)",
                        ));
                    }
                    d
                }
            };
            mirrors.insert(
                name.clone(),
                Mirror {
                    name: name.clone(),
                    members: body.members.clone(),
                    qos_timeout,
                },
            );
        }

        let mut esxi_hosts: IndexMap<String, EsxiHost> = IndexMap::new();
        for (name, body) in &raw.esxi_hosts {
            let at = ["esxi_hosts", name.as_str()];
            if !is_plain_name(name, true) {
                return Err(self.key_err(
                    &at,
                    format!("ESXi host name `{name}` is not a plain name"),
                    "use letters, digits, `.`, `_` and `-`",
                ));
            }
            if !is_address(&body.address) {
                return Err(self.err(
                    &["esxi_hosts", name, "address"],
                    format!(
                        "address `{}` is not a host name or IP address",
                        body.address
                    ),
                    "write the ESXi host's name or address",
                ));
            }
            let port = body.port.or(defaults.port).unwrap_or(22);
            let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
                self.err(
                    &["esxi_hosts", name, "port"],
                    format!("port {port} is out of range"),
                    "a TCP port from 1 to 65535",
                )
            })?;
            let user = body.user.clone().unwrap_or_else(|| "root".into());
            if !is_user_name(&user) {
                return Err(self.err(
                    &["esxi_hosts", name, "user"],
                    format!("user `{user}` is not a valid login name"),
                    "the ESXi host's login name, e.g. root",
                ));
            }
            esxi_hosts.insert(
                name.clone(),
                EsxiHost {
                    name: name.clone(),
                    address: body.address.clone(),
                    port,
                    user,
                    identity_file: body
                        .identity_file
                        .clone()
                        .or_else(|| defaults.identity_file.clone())
                        .map(|p| self.expand_path(&p)),
                },
            );
        }
        // Every `esxi:` names one of them.
        let layers_with_esxi = raw
            .hosts
            .iter()
            .filter_map(|(h, b)| Some((vec!["hosts", h.as_str()], b.as_ref()?.esxi.as_ref()?)))
            .chain(raw.groups.iter().filter_map(|(g, b)| {
                Some((
                    vec!["groups", g.as_str(), "vars"],
                    b.vars.as_ref()?.esxi.as_ref()?,
                ))
            }))
            .chain(defaults.esxi.as_ref().map(|e| (vec!["defaults"], e)));
        for (mut at, esxi) in layers_with_esxi {
            if !esxi_hosts.contains_key(esxi) {
                at.push("esxi");
                return Err(self.err(
                    &at,
                    format!("no ESXi host `{esxi}` under esxi_hosts"),
                    &known_hint("ESXi hosts", raw.esxi_hosts.keys()),
                ));
            }
        }

        let mut hosts = Vec::with_capacity(raw.hosts.len());
        for (name, body) in &raw.hosts {
            let own = body.clone().unwrap_or_default();
            self.check_settings(&own, &["hosts", name], true)?;
            let groups: Vec<&str> = host_groups.get(name.as_str()).cloned().unwrap_or_default();
            // Later layers win: defaults, then groups in file order, then the host.
            let mut layers: Vec<(Vec<&str>, &RawSettings)> = vec![(vec!["defaults"], &defaults)];
            for g in &groups {
                if let Some(vars) = &raw.groups[*g].vars {
                    layers.push((vec!["groups", g, "vars"], vars));
                }
            }
            layers.push((vec!["hosts", name.as_str()], &own));
            let pick = |f: &dyn Fn(&RawSettings) -> Option<String>| {
                layers.iter().rev().find_map(|(_, l)| f(l))
            };
            // The value and where it stands (`file:line:column`).
            let at = |key: &str, f: &dyn Fn(&RawSettings) -> bool| {
                layers.iter().rev().find(|(_, l)| f(l)).map(|(path, _)| {
                    let mut path = path.clone();
                    path.push(key);
                    let pos = self.map.value(&path);
                    format!("{}:{}:{}", self.path.display(), pos.line, pos.column)
                })
            };
            let framework = layers
                .iter()
                .rev()
                .find_map(|(_, l)| l.framework)
                .unwrap_or_default();
            // A volume target means nothing without the container.
            if let Some((layer, _)) = layers
                .iter()
                .rev()
                .find_map(|(p, l)| Some((p, l.container_log_dir.as_ref()?)))
                && pick(&|l| l.iris_container.clone()).is_none()
            {
                let mut path = layer.clone();
                path.push("container_log_dir");
                return Err(self.err(
                    &path,
                    "container_log_dir without iris_container".into(),
                    "container_log_dir is where log_dir is mounted inside the instance's container: set iris_container too, or remove it",
                ));
            }
            // Hooks the framework would never run, or would run wrongly.
            if let Some((layer, dir)) = layers
                .iter()
                .rev()
                .find_map(|(p, l)| Some((p, l.hook_dir.as_ref()?)))
                && let Some((why, hint)) = framework.refuses_hook_dir(dir)
            {
                let mut path = layer.clone();
                path.push("hook_dir");
                return Err(self.err(&path, why, hint));
            }
            // Every layer's freeze_timeout was validated by check_settings.
            let freeze_timeout = layers
                .iter()
                .rev()
                .find_map(|(_, l)| l.freeze_timeout.as_ref().and_then(|t| t.value().ok()))
                .unwrap_or(DEFAULT_FREEZE_TIMEOUT);
            let jump = match layers
                .iter()
                .rev()
                .find_map(|(p, l)| Some((p, l.jump.as_ref()?)))
            {
                None => None,
                Some((layer, text)) => {
                    let mut path = layer.clone();
                    path.push("jump");
                    let specs = text.specs().map_err(|why| {
                        self.err(
                            &path,
                            format!("jump: {why}"),
                            "write bastions as `[user@]host[:port]`, separated by `,` (or `none`)",
                        )
                    })?;
                    Some((specs, at("jump", &|l| l.jump.is_some()).unwrap_or_default()))
                }
            };
            let alias = self.aliases.and_then(|a| a.get(name));
            let given = Given {
                alias: alias
                    .map(|(a, _)| a.clone())
                    .unwrap_or_else(|| name.clone()),
                address: own.address.clone().map(|a| {
                    (
                        a,
                        at("address", &|l| l.address.is_some()).unwrap_or_default(),
                    )
                }),
                port: layers.iter().rev().find_map(|(_, l)| l.port).map(|p| {
                    (
                        p as u16,
                        at("port", &|l| l.port.is_some()).unwrap_or_default(),
                    )
                }),
                user: pick(&|l| l.user.clone())
                    .map(|u| (u, at("user", &|l| l.user.is_some()).unwrap_or_default())),
                identity_file: pick(&|l| l.identity_file.clone()).map(|p| {
                    (
                        self.expand_path(&p),
                        at("identity_file", &|l| l.identity_file.is_some()).unwrap_or_default(),
                    )
                }),
                jump,
                host_pos: self.map.key(&["hosts", name]),
                alias_at: alias
                    .map(|(_, pos)| format!("{}:{}:{}", self.path.display(), pos.line, pos.column)),
            };
            let mut host = Host {
                name: name.clone(),
                address: String::new(),
                port: DEFAULT_PORT,
                user: DEFAULT_USER.into(),
                identity_file: None,
                r#become: layers
                    .iter()
                    .rev()
                    .find_map(|(_, l)| l.r#become)
                    .unwrap_or(false),
                platform: layers
                    .iter()
                    .rev()
                    .find_map(|(_, l)| l.platform)
                    .unwrap_or(Platform::Iris),
                framework,
                vm: own.vm.clone().unwrap_or_else(|| name.clone()),
                instances: layers
                    .iter()
                    .rev()
                    .find_map(|(_, l)| l.instances.clone())
                    .unwrap_or_default(),
                hook_dir: pick(&|l| l.hook_dir.clone())
                    .unwrap_or_else(|| framework.default_hook_dir().into()),
                log_dir: pick(&|l| l.log_dir.clone()).unwrap_or_else(|| DEFAULT_LOG_DIR.into()),
                freeze_timeout,
                groups: groups.iter().map(|g| g.to_string()).collect(),
                mirror: mirror_of.get(name.as_str()).map(|m| m.to_string()),
                iris_container: pick(&|l| l.iris_container.clone()),
                container_log_dir: pick(&|l| l.container_log_dir.clone()),
                container_engine: layers.iter().rev().find_map(|(_, l)| l.container_engine),
                iris_user: pick(&|l| l.iris_user.clone()),
                refuse_vmware_primary: layers
                    .iter()
                    .rev()
                    .find_map(|(_, l)| l.refuse_vmware_primary)
                    .unwrap_or(false),
                esxi: match (pick(&|l| l.esxi.clone()), pick(&|l| l.vm_dir.clone())) {
                    (Some(esxi), Some(vm_dir)) => Some(VmLocation {
                        esxi: esxi_hosts[&esxi].clone(),
                        vm_dir,
                    }),
                    _ => None,
                },
                ssh: SshReach::default(),
            };
            if let Some(connection) = self.connections.and_then(|c| c.get(name)) {
                host.ssh.connection = Some(connection.clone());
            }
            reach::apply(&mut host, &given, self.config, self.path)?;
            hosts.push(host);
        }
        Ok(Inventory::new(
            self.path.to_path_buf(),
            hosts,
            raw.groups
                .iter()
                .map(|(g, b)| (g.clone(), b.hosts.clone()))
                .collect(),
            mirrors,
        ))
    }

    fn check_settings(&self, s: &RawSettings, at: &[&str], is_host: bool) -> Result<(), Error> {
        fn here<'p>(at: &[&'p str], key: &'p str) -> Vec<&'p str> {
            let mut p = at.to_vec();
            p.push(key);
            p
        }
        let here = |key: &'static str| here(at, key);
        let place = at.join(".");
        if !is_host {
            for (key, set) in [("address", s.address.is_some()), ("vm", s.vm.is_some())] {
                if set {
                    return Err(self.key_err(
                        &here(key),
                        format!("`{key}` belongs to a host, not to {place}"),
                        "move it under the host it describes",
                    ));
                }
            }
        }
        if let Some(address) = &s.address
            && !is_address(address)
        {
            return Err(self.err(
                &here("address"),
                format!("address `{address}` is not an IP address or DNS name"),
                "write e.g. 10.1.0.11, fe80::1 or db-a1.example.com",
            ));
        }
        if let Some(vm) = &s.vm
            && (vm.is_empty() || vm.chars().any(char::is_control))
        {
            return Err(self.err(
                &here("vm"),
                "vm must be a non-empty name without control characters".into(),
                "the VM's name in the hypervisor",
            ));
        }
        if let Some(port) = s.port
            && !(1..=65535).contains(&port)
        {
            return Err(self.err(
                &here("port"),
                format!("port {port} is out of range"),
                "an SSH port is a number from 1 to 65535",
            ));
        }
        if let Some(user) = &s.user
            && !is_user_name(user)
        {
            return Err(self.err(
                &here("user"),
                format!("user `{user}` is not a valid login name"),
                "use lower-case letters, digits, `_`, `.` and `-`, starting with a letter or `_`",
            ));
        }
        if let Some(user) = &s.iris_user
            && !is_user_name(user)
        {
            return Err(self.err(
                &here("iris_user"),
                format!("iris_user `{user}` is not a valid login name"),
                "the instance owner's login name (e.g. irisowner): lower-case letters, digits, `_`, `.` and `-`",
            ));
        }
        if let Some(name) = &s.iris_container
            && !is_container_name(name)
        {
            return Err(self.err(
                &here("iris_container"),
                format!("iris_container `{name}` is not a container name"),
                "a container name or id: letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            ));
        }
        if let Some(dir) = &s.vm_dir
            && !is_datastore_dir(dir)
        {
            return Err(self.err(
                &here("vm_dir"),
                format!("vm_dir `{dir}` is not an absolute directory"),
                "the VM's directory on its datastore, e.g. /vmfs/volumes/datastore1/DB1 (spaces are fine; no `..`)",
            ));
        }
        for (i, inst) in s.instances.iter().flatten().enumerate() {
            if !is_plain_name(inst, false) {
                let mut p = here("instances");
                let index = i.to_string();
                p.push(&index);
                return Err(self.err(&p, format!("instance name `{inst}` is not a plain identifier"), "instance names are letters, digits, `_` and `-`, starting with a letter (as `iris qlist` shows them)"));
            }
        }
        for (key, value) in [
            ("hook_dir", &s.hook_dir),
            ("log_dir", &s.log_dir),
            ("container_log_dir", &s.container_log_dir),
        ] {
            if let Some(dir) = value
                && !is_safe_dir(dir)
            {
                return Err(self.err(
                    &here(key),
                    format!("{key} `{dir}` is not a plain absolute directory"),
                    "use an absolute path of letters, digits, `/`, `.`, `_` and `-`, without `..`",
                ));
            }
        }
        if let Some(text) = &s.freeze_timeout {
            let at = here("freeze_timeout");
            let d = self.duration(text, &at)?;
            if d < Duration::from_secs(1) || d > MAX_FREEZE_TIMEOUT {
                return Err(self.err(&at, format!("freeze_timeout {} is out of range", duration::format(d)), "ExternalFreezeTimeOut must be from 1s to 20m (Caché/IRIS clamps larger values to 1200 s)"));
            }
        }
        Ok(())
    }

    fn duration(&self, text: &DurationText, at: &[&str]) -> Result<Duration, Error> {
        text.value().map_err(|why| {
            self.err(
                at,
                format!("{}: {why}", at.last().unwrap_or(&"")),
                "write a duration such as 8s, 500ms, 10m or 1h30m",
            )
        })
    }

    fn expand_path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return PathBuf::from(home).join(rest);
        }
        let path = PathBuf::from(p);
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }
}

fn known_hint<'a>(what: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    format!("known {what}: {}", names.join(", "))
}

/// Host, group, mirror and instance names: safe in paths, shells and logs.
pub fn is_plain_name(name: &str, allow_dot: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = match chars.next() {
        Some(c) if allow_dot => c.is_ascii_alphanumeric(),
        Some(c) => c.is_ascii_alphabetic(),
        None => false,
    };
    first_ok
        && name.len() <= 64
        && chars
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (allow_dot && c == '.'))
}

/// A datastore path as ESXi shows them: absolute, printable (spaces and
/// parentheses are common), no `..`; passed as an argument, never as shell text.
fn is_datastore_dir(dir: &str) -> bool {
    dir.starts_with('/')
        && dir.len() <= 1024
        && !dir.chars().any(char::is_control)
        && !dir.split('/').any(|c| c == "..")
}

/// Docker's and Podman's container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_user_name(user: &str) -> bool {
    let mut chars = user.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && user.len() <= 32
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

fn is_address(address: &str) -> bool {
    if address.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    address.len() <= 253
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub fn is_safe_dir(dir: &str) -> bool {
    dir.starts_with('/')
        && dir.len() <= 200
        && dir
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && !dir.split('/').any(|part| part == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_resolve_host_over_groups_over_defaults() {
        let text = "defaults: { user: ops, platform: iris, freeze_timeout: 2m }\nhosts:\n  a: { address: 10.0.0.1, user: root }\n  b: { address: b.example.com }\ngroups:\n  g1: { hosts: [a, b], vars: { platform: cache, log_dir: /logs } }\n  g2: { hosts: [b], vars: { log_dir: /other } }\n";
        let inv = Inventory::parse(Path::new("i.yml"), text).unwrap();
        let (a, b) = (&inv.hosts[0], &inv.hosts[1]);
        assert_eq!(
            (a.user.as_str(), a.platform, a.log_dir.as_str()),
            ("root", Platform::Cache, "/logs")
        );
        assert_eq!(
            (b.user.as_str(), b.log_dir.as_str(), b.freeze_timeout),
            ("ops", "/other", Duration::from_secs(120))
        );
        assert_eq!(b.groups, ["g1", "g2"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = Inventory::parse(Path::new("i.yml"), &text);
        }

        #[test]
        fn never_panics_on_ansible_shaped_text(
            group in "[a-z0-9_\\[\\]:.-]{0,10}",
            host in "\\PC{0,14}",
            key in "(ansible_host|ansible_port|ansible_user|ansible_become|quiesce_mirror|quiesce_qos_timeout|quiesce_jump|quiesce_instances|ansible_ssh_common_args|ansible_group_priority|quiesce_x|x)",
            value in "\\PC{0,20}",
        ) {
            let yaml = format!("all:\n  children:\n    {group}:\n      hosts:\n        {host}: {{ {key}: {value} }}\n      vars: {{ {key}: {value} }}\n");
            let _ = Inventory::parse(Path::new("h.yml"), &yaml);
            let ini = format!("[{group}]\n{host} {key}={value}\n[{group}:vars]\n{key}={value}\n[all:children]\n{group}\n");
            let _ = Inventory::parse(Path::new("h.ini"), &ini);
        }

        #[test]
        fn never_panics_on_inventory_shaped_text(
            name in "[a-z0-9.$ -]{0,8}",
            value in "[a-z0-9:.$/ \\[\\]{}-]{0,16}",
            key in "(address|port|user|instances|freeze_timeout|hook_dir|vm|become|members|hosts)",
        ) {
            let text = format!("hosts:\n  {name}: {{ {key}: {value} }}\ngroups:\n  g: {{ hosts: [{name}] }}\nmirrors:\n  m: {{ {key}: {value} }}\n");
            let _ = Inventory::parse(Path::new("i.yml"), &text);
        }
    }
}
