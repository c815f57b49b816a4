//! The btrfs provider: read-only snapshots, on the VM over its SSH
//! connection, of every subvolume that holds an instance's databases, WIJ
//! and journals (read from the instance's own configuration), into one
//! directory on the same file system. Names carry the run and the host:
//! `quiesce@RUN@HOST@N@LABEL`.

use super::clone_script::{Copy, Job};
use super::{Create, Listed, Prepared, Provider, Verified, VerifyRequest, cpf};
use crate::backup::snapshot::{self, SnapshotResult};
use crate::inventory::Host;
use crate::inventory::playbook::{ProviderKind, RunOn};
use crate::remote::shell::quote;
use crate::remote::transport::Transport;
use futures::FutureExt;
use futures::future::BoxFuture;

const PREPARE: &str = include_str!("../../remote/scripts/btrfs_prepare.sh");
const RESOLVE: &str = include_str!("../../remote/scripts/btrfs_resolve.sh");
const CREATE: &str = include_str!("../../remote/scripts/btrfs_create.sh");
const LIST: &str = include_str!("../../remote/scripts/btrfs_list.sh");
const DELETE: &str = include_str!("../../remote/scripts/btrfs_delete.sh");

pub struct Btrfs {
    /// Where the snapshots go on the VM.
    pub dir: String,
}

/// What one instance directory is for, in the order snapshots are taken:
/// the journals last, since they are written on during the freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Role {
    Data,
    Journal,
}

/// One running instance as the prepare script shows it: its name, its
/// install directory, and what its CPF says.
pub(super) type Read = (String, String, cpf::InstanceDirs);

/// The running instances of the prepare script's output, each with its CPF
/// read.
fn instances(output: &str) -> Result<Vec<Read>, String> {
    let mut instances: Vec<(String, String)> = Vec::new();
    let mut cpfs: std::collections::HashMap<String, String> = Default::default();
    for line in output.lines() {
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        match fields.as_slice() {
            ["inst", name, dir] => instances.push((name.to_string(), dir.to_string())),
            ["cpf", name, text] => {
                let cpf = cpfs.entry(name.to_string()).or_default();
                cpf.push_str(text);
                cpf.push('\n');
            }
            ["nocpf", name, file] => {
                return Err(format!(
                    "instance {name}: its configuration file {file} is not there, so the directories of its databases and journals are unknown"
                ));
            }
            _ => {}
        }
    }
    if instances.is_empty() {
        return Err("no running instance to snapshot".into());
    }
    Ok(instances
        .into_iter()
        .map(|(name, install)| {
            let read = cpf::parse(cpfs.get(&name).map(String::as_str).unwrap_or(""));
            (name, install, read)
        })
        .collect())
}

/// The instances' directories, each with what it holds, from the prepare
/// script's output (the tests' entry; `layout` reads the output once).
#[cfg(test)]
fn directories(output: &str) -> Result<Vec<(String, Role, String)>, String> {
    dirs_of(&instances(output)?)
}

/// Each instance's directories with what it holds: databases and WIJ,
/// then journals.
pub(super) fn dirs_of(instances: &[Read]) -> Result<Vec<(String, Role, String)>, String> {
    let mut dirs = Vec::new();
    for (name, install, read) in instances {
        if read.journals.is_empty() {
            return Err(format!(
                "instance {name}: its configuration names no journal directory ([Journal] CurrentDirectory): a snapshot without the journal cannot be restored from its marker"
            ));
        }
        let mgr = format!("{}/mgr", install.trim_end_matches('/'));
        let what = |d: &str| format!("instance {name}'s {d}");
        for db in &read.databases {
            dirs.push((db.clone(), Role::Data, what("database")));
        }
        dirs.push((
            read.wij.clone().unwrap_or(mgr),
            Role::Data,
            what("WIJ directory"),
        ));
        for j in &read.journals {
            dirs.push((j.clone(), Role::Journal, what("journal directory")));
        }
    }
    Ok(dirs)
}

/// The snapshots to take, from where each directory is (the resolve
/// script's output): every directory on one btrfs file system, with the
/// snapshot directory; each subvolume once, data before journals.
fn plan(dirs: &[(String, Role, String)], output: &str, snapdir: &str) -> Result<Prepared, String> {
    let mut found: std::collections::HashMap<&str, (&str, &str, &str)> = Default::default();
    let mut snap: Option<(&str, &str, &str)> = None;
    for line in output.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["fs", path, fstype, uuid, sub] => {
                found.insert(path, (fstype, uuid, sub));
            }
            ["missing", path] => {
                let what = dirs
                    .iter()
                    .find(|(d, ..)| d == path)
                    .map(|(_, _, w)| w.as_str())
                    .unwrap_or("directory");
                return Err(format!("{what} {path} does not exist on the VM"));
            }
            ["snapdir", dir, fstype, uuid] => snap = Some((dir, fstype, uuid)),
            _ => {}
        }
    }
    let mut fs_uuid: Option<(&str, &str)> = None;
    let mut subvolumes: Vec<(Role, String)> = Vec::new();
    for (dir, role, what) in dirs {
        let Some((fstype, uuid, sub)) = found.get(dir.as_str()) else {
            return Err(format!("no answer about {what} {dir}"));
        };
        if *fstype != "btrfs" || *sub == "-" {
            return Err(format!(
                "{what} {dir} is on {fstype}, not btrfs: the btrfs provider cannot snapshot it; put it on the btrfs file system, or use another provider"
            ));
        }
        match fs_uuid {
            Some((other, first)) if other != *uuid => {
                return Err(format!(
                    "the instance's directories span two btrfs file systems ({first} and {dir}): btrfs snapshots of two file systems are not one point in time; keep the databases, WIJ and journals on one file system"
                ));
            }
            None => fs_uuid = Some((uuid, dir)),
            _ => {}
        }
        match subvolumes.iter_mut().find(|(_, s)| s == sub) {
            Some((r, _)) => *r = (*r).min(*role),
            None => subvolumes.push((*role, sub.to_string())),
        }
    }
    let Some((uuid, _)) = fs_uuid else {
        return Err("no directory to snapshot".into());
    };
    match snap {
        Some((at, "btrfs", u)) if u == uuid => {
            let parent = snapdir.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let parent = if parent.is_empty() { "/" } else { parent };
            if at != snapdir && at != parent {
                return Err(format!(
                    "snapshot directory {snapdir}: its parent does not exist on the VM; create it (mkdir -p {parent})"
                ));
            }
        }
        Some((at, fstype, _)) => {
            return Err(format!(
                "snapshot directory {snapdir} ({at}, {fstype}) is not on the btrfs file system of the instance's directories: a btrfs snapshot stays on its own file system; choose a directory there"
            ));
        }
        None => return Err(format!("no answer about the snapshot directory {snapdir}")),
    }
    subvolumes.sort_by_key(|(role, _)| *role);
    let snapshots = subvolumes
        .into_iter()
        .enumerate()
        .map(|(i, (_, sub))| {
            let label: String = sub
                .rsplit('/')
                .find(|p| !p.is_empty())
                .unwrap_or("root")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            (sub, format!("{i}@{label}"))
        })
        .collect();
    Ok(Prepared { snapshots })
}

/// Each instance's application databases (not its own system ones).
pub(super) fn databases(instances: &[Read]) -> Vec<(String, Vec<String>)> {
    instances
        .iter()
        .map(|(name, _, read)| {
            let dbs = read
                .databases
                .iter()
                .filter(|d| !read.system.contains(d))
                .cloned()
                .collect();
            (name.clone(), dbs)
        })
        .collect()
}

/// A listed name read back: `quiesce@RUN@HOST@N@LABEL`.
fn parse_name(name: &str) -> Option<(String, String)> {
    let mut parts = name.split('@');
    (parts.next()? == "quiesce").then_some(())?;
    let run = parts.next()?;
    let host = parts.next()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?;
    parts
        .next()
        .is_none()
        .then(|| (run.to_string(), host.to_string()))
}

fn plain_script(script: &str) -> String {
    format!("set -u\n{script}")
}

/// The running instances of `host` (but `skip`) with what their CPFs say,
/// read from the VM now.
pub(super) async fn read_instances(
    host: &Host,
    vm: &dyn Transport,
    skip: Option<&str>,
) -> Result<Vec<Read>, String> {
    let mut args = vec![host.platform.as_str()];
    args.extend(host.instances.iter().map(String::as_str));
    let out = vm
        .run_script("snapshot plan", &plain_script(PREPARE), &args, None)
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!("cannot read the instances: {}", out.describe()));
    }
    let mut read = instances(&out.stdout_text())?;
    read.retain(|(name, ..)| Some(name.as_str()) != skip);
    if read.is_empty() {
        return Err("no running instance to snapshot".into());
    }
    Ok(read)
}

impl Btrfs {
    /// The instances' application databases (per instance) and the
    /// snapshots that hold their directories, read from the VM now.
    /// `skip`: the verification instance, which a verify in progress on
    /// the host may have running on its clone.
    async fn layout(
        &self,
        host: &Host,
        vm: &dyn Transport,
        skip: Option<&str>,
    ) -> Result<(Vec<(String, Vec<String>)>, Prepared), String> {
        if host.iris_container.is_some() {
            return Err("the btrfs provider snapshots the VM's own file systems, and this instance runs in a container (iris_container): use another provider".into());
        }
        let read = read_instances(host, vm, skip).await?;
        let dirs = dirs_of(&read)?;
        let mut args = vec![self.dir.as_str()];
        let mut seen = Vec::new();
        for (d, ..) in &dirs {
            if !seen.contains(&d.as_str()) {
                seen.push(d.as_str());
            }
        }
        args.extend(seen);
        let out = vm
            .run_script("snapshot plan", &plain_script(RESOLVE), &args, None)
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!(
                "cannot read where the instance's directories are: {}",
                out.describe()
            ));
        }
        Ok((
            databases(&read),
            plan(&dirs, &out.stdout_text(), &self.dir)?,
        ))
    }
}

impl Provider for Btrfs {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Btrfs
    }

    fn prepare<'a>(
        &'a self,
        host: &'a Host,
        vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        async move {
            self.layout(host, vm, None)
                .await
                .map(|(_, prepared)| prepared)
        }
        .boxed()
    }

    fn verify<'a>(&'a self, v: VerifyRequest<'a>) -> BoxFuture<'a, Result<Verified, String>> {
        async move {
            let (instances, prepared) = self
                .layout(v.host, v.vm, Some(&v.settings.instance))
                .await?;
            if v.settings.clone_dir.is_empty() {
                return Err("verify.clone_dir is not set".into());
            }
            // The run's snapshots, each with the subvolume it was taken of:
            // the layout now must name the same snapshots as then.
            let mut copies = Vec::new();
            for (sub, tail) in &prepared.snapshots {
                let name = format!("{}/quiesce@{}@{}@{tail}", self.dir, v.run_id, v.host.name);
                if !v.snapshot_ids.contains(&name) {
                    return Err(format!(
                        "the run made no snapshot {name} of {sub}: the instance's directories changed since the run, or its snapshots were removed (quiesce snapshots list -p PLAYBOOK)"
                    ));
                }
                copies.push(Copy::Snapshot { path: name, source: sub.clone() });
            }
            Job::of(&v, copies, &instances)
            .run(v.vm)
            .await
        }
        .boxed()
    }

    fn create<'a>(&'a self, c: Create<'a>) -> BoxFuture<'a, SnapshotResult> {
        async move {
            let Some(prepared) = c.prepared.filter(|p| !p.snapshots.is_empty()) else {
                return SnapshotResult::failed("nothing was prepared to snapshot".into());
            };
            let mut command = format!(
                "sh -c {} sh {}",
                quote(&plain_script(CREATE)),
                quote(&self.dir)
            );
            for (sub, tail) in &prepared.snapshots {
                command.push(' ');
                command.push_str(&quote(sub));
                command.push(' ');
                command.push_str(&quote(&format!(
                    "quiesce@{}@{}@{tail}",
                    c.run_id, c.host.name
                )));
            }
            let mut step = c.step.clone();
            step.on = RunOn::Vm;
            let mut result = snapshot::run(&step, &command, &[], c.vm, c.timeout, c.stop).await;
            if let Some(rest) = result.detail.strip_prefix("snapshot command failed") {
                result.detail = format!("btrfs snapshot failed{rest}");
            }
            if result.ok {
                let made = result.ids.len();
                result.detail = format!(
                    "{made} read-only btrfs snapshot{} in {}",
                    if made == 1 { "" } else { "s" },
                    self.dir
                );
                if made != prepared.snapshots.len() {
                    result.ok = false;
                    result.detail = format!(
                        "the snapshot script made {made} of {} snapshots",
                        prepared.snapshots.len()
                    );
                }
            }
            result
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        host: &'a Host,
        vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<Listed>, String>> {
        async move {
            let out = vm
                .run_script("list snapshots", &plain_script(LIST), &[&self.dir], None)
                .await
                .map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!("cannot list {}: {}", self.dir, out.describe()));
            }
            Ok(out
                .stdout_text()
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    let ["snap", name, uuid, created, ..] = f.as_slice() else {
                        return None;
                    };
                    let (run_id, of) = parse_name(name)?;
                    (of == host.name).then(|| Listed {
                        name: name.to_string(),
                        run_id,
                        host: of,
                        id: uuid.to_string(),
                        created: created.to_string(),
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn remove<'a>(
        &'a self,
        _host: &'a Host,
        vm: &'a dyn Transport,
        names: &'a [String],
    ) -> BoxFuture<'a, Vec<(String, Result<(), String>)>> {
        async move {
            let mut args = vec![self.dir.as_str()];
            args.extend(names.iter().map(String::as_str));
            let out = match vm
                .run_script("remove snapshots", &plain_script(DELETE), &args, None)
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    return names
                        .iter()
                        .map(|n| (n.clone(), Err(e.to_string())))
                        .collect();
                }
            };
            let text = out.stdout_text();
            names
                .iter()
                .map(|n| {
                    let said = text.lines().find_map(|l| {
                        let f: Vec<&str> = l.splitn(3, '\t').collect();
                        match f.as_slice() {
                            ["deleted", name] if name == n => Some(Ok(())),
                            ["failed", name, why] if name == n => Some(Err(why.to_string())),
                            _ => None,
                        }
                    });
                    (n.clone(), said.unwrap_or_else(|| Err("no answer".into())))
                })
                .collect()
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREPARED: &str = "inst\tIRIS\t/srv/iris\ncpf\tIRIS\t[Databases]\ncpf\tIRIS\tUSER=/srv/db/user/\ncpf\tIRIS\tIRISSYS=/srv/iris/mgr/\ncpf\tIRIS\t[Journal]\ncpf\tIRIS\tCurrentDirectory=/srv/journal/\n";

    #[test]
    fn directories_come_from_the_configuration_journals_last() {
        let dirs = directories(PREPARED).unwrap();
        let got: Vec<(&str, Role)> = dirs.iter().map(|(d, r, _)| (d.as_str(), *r)).collect();
        assert_eq!(
            got,
            [
                ("/srv/db/user", Role::Data),
                ("/srv/iris/mgr", Role::Data),
                ("/srv/iris/mgr", Role::Data),
                ("/srv/journal", Role::Journal)
            ]
        );
        assert_eq!(
            directories("").unwrap_err(),
            "no running instance to snapshot"
        );
        assert!(
            directories("inst\tIRIS\t/srv/iris\ncpf\tIRIS\t[Databases]\n")
                .unwrap_err()
                .contains("no journal directory")
        );
    }

    #[test]
    fn the_plan_takes_each_subvolume_once_on_one_file_system() {
        let dirs = directories(PREPARED).unwrap();
        let resolved = "fs\t/srv/db/user\tbtrfs\tU1\t/srv/db\nfs\t/srv/iris/mgr\tbtrfs\tU1\t/srv\nfs\t/srv/journal\tbtrfs\tU1\t/srv/journal\nsnapdir\t/srv\tbtrfs\tU1\n";
        let p = plan(&dirs, resolved, "/srv/.snapshots").unwrap();
        assert_eq!(
            p.snapshots,
            [
                ("/srv/db".to_string(), "0@db".to_string()),
                ("/srv".to_string(), "1@srv".to_string()),
                ("/srv/journal".to_string(), "2@journal".to_string()),
            ]
        );
        assert_eq!(
            parse_name("quiesce@R1@db1@2@journal"),
            Some(("R1".into(), "db1".into()))
        );
        assert_eq!(parse_name("quiesce@R1@db1@x@journal"), None);
        let two = resolved.replace("/srv/journal\tbtrfs\tU1", "/srv/journal\tbtrfs\tU2");
        assert!(
            plan(&dirs, &two, "/srv/.snapshots")
                .unwrap_err()
                .contains("span two btrfs file systems")
        );
        let ext4 = resolved.replace(
            "/srv/journal\tbtrfs\tU1\t/srv/journal",
            "/srv/journal\text4\tE\t-",
        );
        assert!(
            plan(&dirs, &ext4, "/srv/.snapshots")
                .unwrap_err()
                .contains("journal directory /srv/journal is on ext4, not btrfs")
        );
        let away = resolved.replace("snapdir\t/srv\tbtrfs\tU1", "snapdir\t/\text4\tE");
        assert!(
            plan(&dirs, &away, "/srv/.snapshots")
                .unwrap_err()
                .contains("not on the btrfs file system")
        );
    }

    proptest::proptest! {
        #[test]
        fn script_output_never_panics(text in "(inst|cpf|nocpf|fs|missing|snapdir|\t|/[a-z]{0,4}|btrfs|U1|-|\n){0,80}") {
            if let Ok(dirs) = directories(&text) {
                let _ = plan(&dirs, &text, "/s/x");
            }
            let _ = parse_name(&text);
        }
    }
}
