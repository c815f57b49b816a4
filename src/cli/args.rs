//! The command line: global options and subcommands (clap derive).

use crate::hooks::report::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "quiesce",
    version,
    about = "Safe VM-snapshot backups of InterSystems Caché/IRIS fleets: deploy and audit the freeze/thaw hooks over SSH, run mirror-safe freeze → snapshot → thaw backups that always thaw, and report their freeze windows",
    after_help = "Exit codes: 0 success, 1 findings (non-compliant, changes pending with --check, a stun near the QoS timeout), 2 bad input, 3 a host unreachable, 4 a step failed (or a snapshot INVALID), 5 something LEFT FROZEN (act now: the report says how), 130 interrupted (after thawing)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The inventory file (YAML) [default: inventory.yml].
    #[arg(
        short,
        long,
        global = true,
        env = "QUIESCE_INVENTORY",
        value_name = "FILE"
    )]
    pub inventory: Option<PathBuf>,
    /// Only these hosts: names, groups, mirrors or globs, separated by `,` or `:`; `!` leaves out.
    #[arg(short, long, global = true, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// How many hosts to work on at once [default: 100 for deploy, audit,
    /// logs and stun; 20 for plan and backup, where each host at once is a
    /// snapshot in flight on the hypervisors].
    #[arg(short, long, global = true, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub forks: Option<u16>,
    /// The known_hosts file host keys are checked against [default: ~/.ssh/known_hosts].
    #[arg(long, global = true, value_name = "FILE", env = "QUIESCE_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// Host keys read too, never written, like OpenSSH's GlobalKnownHostsFile
    /// [default: /etc/ssh/ssh_known_hosts and /etc/ssh/ssh_known_hosts2]; `none` for none.
    #[arg(long, global = true, value_name = "FILE")]
    pub global_known_hosts: Vec<PathBuf>,
    /// Record the host key of a host seen for the first time, like OpenSSH's
    /// StrictHostKeyChecking=accept-new; name hosts (`--accept-new=vm1,vm2`) to limit it.
    /// A changed key is refused all the same.
    #[arg(long, global = true, value_name = "HOSTS", num_args = 0..=1, require_equals = true, default_missing_value = "*")]
    pub accept_new: Option<String>,
    /// How long to wait for a host to answer and log in [default: ssh_config's
    /// ConnectTimeout, else 10s].
    #[arg(long, global = true, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// The ssh_config read for each host (HostName, User, Port, IdentityFile,
    /// ProxyJump, UserKnownHostsFile, ...; the inventory's values win)
    /// [default: ~/.ssh/config, then /etc/ssh/ssh_config]; `none` for none.
    #[arg(long, global = true, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// How long one remote command may run.
    #[arg(long, global = true, default_value = "60s", value_name = "DURATION")]
    pub command_timeout: String,
    /// Do not use ssh-agent, only key files.
    #[arg(long, global = true)]
    pub no_agent: bool,
    /// Where backup runs keep their journals and results.
    #[arg(long, global = true, default_value = "runs", value_name = "DIR")]
    pub runs_dir: PathBuf,
    /// No progress output on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// `--forks` for the fan-outs that change no VM state: the peer benchmark (docs/benchmarks.md)
/// finds all at once no slower than 20 on a CPU-bound lab, and round trips
/// over a real network hide only behind more hosts at once.
pub const DEFAULT_FORKS: usize = 100;
/// `--forks` for backups: each host at once is a snapshot on the hypervisors.
pub const DEFAULT_BACKUP_FORKS: usize = 20;

impl Global {
    /// `--forks`, else the default for a read-only fan-out.
    pub fn forks(&self) -> usize {
        self.forks.map_or(DEFAULT_FORKS, usize::from)
    }

    /// `--forks`, else the default for a backup.
    pub fn backup_forks(&self) -> usize {
        self.forks.map_or(DEFAULT_BACKUP_FORKS, usize::from)
    }

    /// The ssh_config files as OpenSSH reads them (`--ssh-config FILE` is
    /// `ssh -F FILE`: that file only).
    pub fn ssh_config(
        &self,
    ) -> Result<crate::remote::ssh_config::SshConfig, crate::output::error::Error> {
        use crate::remote::ssh_config::SshConfig;
        match &self.ssh_config {
            Some(file) if file.as_os_str() == "none" => Ok(SshConfig::default()),
            Some(file) if !file.exists() => Err(crate::output::error::Error::Usage {
                message: format!("there is no ssh_config at {}", file.display()),
                hint: "check the path given to --ssh-config (`none` reads none)".into(),
            }),
            Some(file) => SshConfig::load(std::slice::from_ref(file)),
            None => {
                let mut files = Vec::new();
                if let Some(home) = std::env::var_os("HOME") {
                    files.push(PathBuf::from(home).join(".ssh/config"));
                }
                files.push(PathBuf::from("/etc/ssh/ssh_config"));
                SshConfig::load(&files)
            }
        }
    }

    /// The inventory named with -i (or QUIESCE_INVENTORY), else `inventory.yml`.
    pub fn inventory(&self) -> PathBuf {
        self.inventory
            .clone()
            .unwrap_or_else(|| PathBuf::from("inventory.yml"))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the selected hosts with every setting resolved.
    Hosts {
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
        /// Each host's connection settings, one per line, with where each came
        /// from (inventory file:line:column, ssh_config file:line, or default).
        #[arg(long, conflicts_with = "format")]
        origin: bool,
    },
    /// Install or update the freeze/thaw hooks (root:root, 0700, atomic).
    Deploy {
        /// Change nothing; report what would change (exit 1 if anything would).
        #[arg(long)]
        check: bool,
        /// Show the difference between each hook on the host and what quiesce deploys.
        #[arg(long)]
        diff: bool,
        /// Replace a symlink or other non-regular file found at a hook path.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write Prometheus metrics here (node_exporter textfile format, atomically).
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
    },
    /// Check every hook: present, regular file, root:root, 0700, unchanged, safe directory.
    Audit {
        /// Redeploy what is not compliant.
        #[arg(long)]
        fix: bool,
        /// With --fix: also replace symlinks and other non-regular files.
        #[arg(long, requires = "fix")]
        force: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write Prometheus metrics here (node_exporter textfile format, atomically).
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
        /// Also ask this playbook's snapshot provider about each host's
        /// snapshots (VMware: older than 72 h, chains deeper than 3, consolidationNeeded).
        #[arg(short = 'p', long, value_name = "PLAYBOOK")]
        playbook: Option<PathBuf>,
    },
    /// Read every host's role and print the backup plan (waves, order, why); change nothing.
    Plan {
        /// The playbook (YAML).
        #[arg(short, long, value_name = "FILE")]
        playbook: PathBuf,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
    },
    /// Coordinated freeze → snapshot → thaw across the fleet, mirror-safe, always thawing.
    Backup {
        /// The playbook (YAML).
        #[arg(short, long, value_name = "FILE")]
        playbook: PathBuf,
        /// Snapshot a primary even when its last stun exceeded half its mirror's QoS timeout.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
        /// Also write Prometheus metrics here (node_exporter textfile format, atomically).
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
    },
    /// Thaw what a crashed or killed backup run left frozen, from its journal.
    Recover {
        /// The run id (a directory under --runs-dir) or a journal path.
        run: String,
        /// Recover a run whose controller is still alive (it holds the run's
        /// lock): only when that process is hung; its own thaw is otherwise on the way.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
    },
    /// Prove a run's backups restore: each valid snapshot cloned, the
    /// verification instance started on it without user access, the journal
    /// restored from the run's marker, every database integrity-checked.
    Verify {
        /// The run id (a directory under --runs-dir) or its journal path;
        /// `latest`: the newest run that made a valid backup of the playbook's hosts.
        run: String,
        /// The playbook of the run (its provider and its `verify` settings).
        #[arg(short, long, value_name = "FILE")]
        playbook: PathBuf,
        /// Hosts verified at once (each clone costs storage).
        #[arg(long, default_value_t = 2, value_name = "N")]
        jobs: usize,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
    },
    /// Fetch snapshot.log and every INST-pre_post.log from the hosts into a run directory.
    Logs {
        /// A backup run (its hosts and window); without it, the inventory's hosts (with --limit).
        run: Option<String>,
        /// Without RUN: logs written since then (`2h`, or `2026-11-24T03:00:00Z`).
        #[arg(long, default_value = "24h", value_name = "WHEN")]
        since: String,
        /// At most this many bytes from the end of each file.
        #[arg(long, default_value_t = crate::review::logs::DEFAULT_MAX_BYTES, value_name = "BYTES")]
        max_bytes: u64,
    },
    /// Render a run's freeze-window report again (from runs/RUN).
    Report {
        /// The run id (a directory under --runs-dir).
        run: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Stuns per VM from vmware.log files, against the mirror's QoS timeout.
    Stun {
        /// vmware.log files (each in its VM's directory, as on the datastore); none:
        /// read each selected VM's vmware.log from its ESXi host (inventory `esxi`, `vm_dir`).
        files: Vec<PathBuf>,
        /// With no files: also read this many rotated logs (vmware-1.log …).
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=99))]
        rotated: u32,
        /// The QoS timeout to compare with [default: the VM's mirror's, from the inventory, else 8s].
        #[arg(long, value_name = "DURATION")]
        qos: Option<String>,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
        /// Also add these stuns to the stun history (RUNS_DIR/stun-history.json) that the
        /// backup's QoS guard reads; without it, `stun` only reads.
        #[arg(long)]
        record: bool,
    },
    /// Print the hook scripts quiesce deploys to one host.
    Render {
        /// The host (as named in the inventory).
        host: String,
        /// Only this hook.
        #[arg(long, value_parser = ["pre-freeze-script", "post-thaw-script"])]
        hook: Option<String>,
    },
    /// Per instance: the last valid backup (quiesce's runs, and freezes VMware Tools or a
    /// backup product started, from the logs `quiesce logs` collected), its age, the last ones.
    Status {
        /// The RPO: every instance without a valid backup this recent is a finding (exit 1).
        #[arg(long, value_name = "AGE")]
        max_age: Option<String>,
        /// What --max-age measures: the last valid backup, or the last one
        /// `quiesce verify` restored.
        #[arg(long, value_enum, default_value_t = crate::review::status::AgeOf::Valid, value_name = "WHICH")]
        max_age_of: crate::review::status::AgeOf,
        /// How many of each instance's last backups to list.
        #[arg(long, default_value_t = 5, value_name = "N")]
        last: usize,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Also write Prometheus metrics here (node_exporter textfile format, atomically).
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
        /// Also ask this playbook's snapshot provider about each host's
        /// snapshots (VMware: older than 72 h, chains deeper than 3, consolidationNeeded).
        #[arg(short = 'p', long, value_name = "PLAYBOOK")]
        playbook: Option<PathBuf>,
    },
    /// Print a shell completion script (bash: `source <(quiesce completions bash)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `quiesce man | man -l -`.
    Man,
    /// The snapshots the playbook's provider made: list them, prune them by its retention.
    Snapshots {
        #[command(subcommand)]
        action: SnapshotsAction,
    },
    /// Remove old run directories, never one whose journal shows something not thawed.
    Prune {
        /// Keep runs younger than this (e.g. 30d, 12h).
        #[arg(long, value_name = "AGE")]
        keep: String,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotsAction {
    /// Each snapshot quiesce made, per host and run, with the run's verdict
    /// (read from the provider itself; an orphan has no backup behind it).
    List {
        /// The playbook (YAML): its provider and hosts.
        #[arg(short, long, value_name = "FILE")]
        playbook: PathBuf,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
    },
    /// Remove what the playbook's retention does not keep: orphans and
    /// invalid ones first; never a host's newest valid backup.
    Prune {
        /// The playbook (YAML): its provider, hosts and snapshot.retention.
        #[arg(short, long, value_name = "FILE")]
        playbook: PathBuf,
        /// Only say what would be removed.
        #[arg(long)]
        check: bool,
        /// Remove a primary's snapshots even when its last stun exceeded half its mirror's QoS timeout.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = HostsFormat::Table)]
        format: HostsFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostsFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Html,
}

/// The global options each subcommand does not use: still accepted there (a
/// cron line may put them anywhere), but not listed in its help.
const UNUSED: &[(&str, &[&[&str]])] = &[
    ("hosts", &[SSH, RUNS]),
    ("render", &[SSH, RUNS, &["limit"]]),
    ("deploy", &[RUNS]),
    ("audit", &[RUNS]),
    ("report", &[INPUT, SSH, QUIET]),
    ("prune", &[INPUT, SSH, QUIET]),
    ("completions", &[INPUT, SSH, RUNS, QUIET]),
    ("man", &[INPUT, SSH, RUNS, QUIET]),
];
/// How hosts are reached.
const SSH: &[&str] = &[
    "forks",
    "known_hosts",
    "global_known_hosts",
    "accept_new",
    "connect_timeout",
    "command_timeout",
    "no_agent",
];
const INPUT: &[&str] = &["inventory", "limit", "ssh_config"];
const RUNS: &[&str] = &["runs_dir"];
const QUIET: &[&str] = &["quiet"];

/// The command line as clap sees it: each subcommand's help lists only the
/// options it uses. An unused global option is shadowed in that subcommand
/// by a hidden copy, so it is still accepted there and changes nothing.
pub fn command() -> clap::Command {
    let top = <Cli as clap::CommandFactory>::command();
    let globals: Vec<clap::Arg> = top.get_arguments().cloned().collect();
    let mut command = top;
    for (name, unused) in UNUSED {
        command = command.mut_subcommand(*name, |mut sub| {
            for arg in globals.iter().filter(|a| {
                unused
                    .iter()
                    .any(|group| group.contains(&a.get_id().as_str()))
            }) {
                sub = sub.arg(arg.clone().global(false).hide(true));
            }
            sub
        });
    }
    command
}
