//! `quiesce verify` for the aws-ebs provider: a volume from each of the
//! run's snapshots that holds an instance directory (`CreateVolume`, in the
//! scratch instance's zone, tagged), attached to the scratch instance
//! (`verify.scratch`), checked there by the verify script, then detached
//! and deleted, always; `recover` finds what a killed verify left by tag.

use super::aws_ebs::{AwsEbs, CALL_TIMEOUT, TAG_HOST, retrying, tag};
use super::clone_script::{Copy, Job};
use super::{Verified, VerifyRequest, btrfs};
use crate::inventory::playbook::AwsSettings;
use crate::remote::transport::Transport;
use aws_sdk_ec2::types::{
    Filter, ResourceType, SnapshotState, TagSpecification, VolumeAttachmentState, VolumeState,
    VolumeType,
};
use std::time::Duration;
use tokio::time::Instant;

/// The tag on every volume a verify makes (its value: the run).
pub const TAG_VERIFY: &str = "quiesce:verify";
const MOUNTS: &str = include_str!("../../remote/scripts/ebs_mounts.sh");
/// How long a volume may take to become available, or attached, or free.
const VOLUME_WAIT: Duration = Duration::from_secs(300);

/// `vol-` and hexadecimal digits, as EC2 names a volume.
fn is_volume_id(id: &str) -> bool {
    id.strip_prefix("vol-")
        .is_some_and(|h| !h.is_empty() && h.len() <= 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The mounts script's answer (from the backed-up VM, so nothing in it is
/// trusted): (snapshot, volume, mount point) of each of `snaps`' volumes
/// mounted at a plain path.
fn parse_mounts(text: &str, snaps: &[(String, String)]) -> Vec<(String, String, String)> {
    let mut mounts: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let ["vol", vol, at] = line.split('\t').collect::<Vec<_>>().as_slice()
            && is_volume_id(vol)
            && at.starts_with('/')
            && crate::backup::restore_point::plain_path(at)
            && let Some((snap, _)) = snaps.iter().find(|(_, v)| v == vol)
            && !mounts.iter().any(|(_, v, _)| v == vol)
        {
            mounts.push((snap.clone(), vol.to_string(), at.to_string()));
        }
    }
    mounts
}

/// Where each directory lies: the mount point it is under (the longest).
fn mount_of<'m>(
    dir: &str,
    mounts: &'m [(String, String, String)],
) -> Option<&'m (String, String, String)> {
    mounts
        .iter()
        .filter(|(_, _, m)| {
            let m = m.trim_end_matches('/');
            m.is_empty() || dir == m || dir.starts_with(&format!("{m}/"))
        })
        .max_by_key(|(_, _, m)| m.len())
}

impl AwsEbs {
    pub(super) async fn verify_host(&self, v: VerifyRequest<'_>) -> Result<Verified, String> {
        let Some((scratch, scratch_vm)) = v.scratch else {
            return Err("verify.scratch is not set: the aws-ebs provider attaches volumes made from the snapshots to a scratch EC2 instance (an inventory host with the verification instance installed) and checks them there".into());
        };
        if scratch.name == v.host.name {
            return Err(format!(
                "verify.scratch is {} itself: the volumes go to another instance, away from production",
                v.host.name
            ));
        }
        let read = btrfs::read_instances(v.host, v.vm, Some(&v.settings.instance)).await?;
        let databases = btrfs::databases(&read);
        let dirs = btrfs::dirs_of(&read)?;
        let client = self.client().await;
        let deadline = Instant::now() + CALL_TIMEOUT;
        // The run's snapshots and the volumes they were taken of.
        let found = retrying(deadline, || {
            client
                .describe_snapshots()
                .set_snapshot_ids(Some(v.snapshot_ids.to_vec()))
                .send()
        })
        .await
        .map_err(|e| {
            format!(
                "cannot read the run's snapshots {}: {e}",
                v.snapshot_ids.join(", ")
            )
        })?;
        let mut snaps = Vec::new();
        for s in found.snapshots() {
            let id = s.snapshot_id().unwrap_or_default().to_string();
            if s.state() != Some(&SnapshotState::Completed) {
                return Err(format!(
                    "snapshot {id} is {}, not completed: it holds no backup to verify",
                    s.state().map(|s| s.as_str()).unwrap_or("of no state")
                ));
            }
            snaps.push((id, s.volume_id().unwrap_or_default().to_string()));
        }
        if snaps.is_empty() {
            return Err(
                "the run's snapshots are gone from EC2 (quiesce snapshots list -p PLAYBOOK)".into(),
            );
        }
        // Where each of those volumes is mounted on the host now.
        let volumes: Vec<&str> = snaps.iter().map(|(_, v)| v.as_str()).collect();
        let out =
            v.vm.run_script("verify", &format!("set -u\n{MOUNTS}"), &volumes, None)
                .await
                .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
        let mounts = parse_mounts(&out.stdout_text(), &snaps);
        // Only the volumes that hold an instance directory are cloned; every
        // directory must be on one of them.
        let mut wanted: Vec<&(String, String, String)> = Vec::new();
        for (dir, _, what) in &dirs {
            let Some(m) = mount_of(dir, &mounts) else {
                return Err(format!(
                    "{what} {dir} is on no volume of the run's snapshots ({}) as {} mounts them now: it cannot be restored from this backup",
                    v.snapshot_ids.join(", "),
                    v.host.name
                ));
            };
            if !wanted.contains(&m) {
                wanted.push(m);
            }
        }
        // The scratch instance: its zone, and the device names it has.
        let scratch_id = self.instance(scratch).await?;
        let described = retrying(Instant::now() + CALL_TIMEOUT, || {
            client.describe_instances().instance_ids(&scratch_id).send()
        })
        .await
        .map_err(|e| format!("cannot read the scratch instance {scratch_id}: {e}"))?;
        let instance = described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .ok_or_else(|| format!("no scratch instance {scratch_id}"))?;
        let zone = instance
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string();
        let used: Vec<String> = instance
            .block_device_mappings()
            .iter()
            .filter_map(|b| b.device_name().map(String::from))
            .collect();
        let mut free = ('g'..='p')
            .map(|c| format!("/dev/sd{c}"))
            .filter(|d| !used.contains(d));

        let mut made: Vec<String> = Vec::new();
        let mut copies = Vec::new();
        let mut why: Option<String> = None;
        for (snap, _, source) in &wanted {
            let Some(device) = free.next() else {
                why = Some(format!(
                    "the scratch instance {scratch_id} has no free device name for another volume"
                ));
                break;
            };
            match self
                .volume_from(
                    snap,
                    &zone,
                    v.run_id,
                    &v.host.name,
                    &scratch_id,
                    &device,
                    &mut made,
                )
                .await
            {
                Ok(id) => copies.push(Copy::Volume {
                    id,
                    source: source.clone(),
                }),
                Err(e) => {
                    why = Some(e);
                    break;
                }
            }
        }
        let outcome = match why {
            Some(why) => Err(why),
            None => Job::of(&v, copies, &databases).run(scratch_vm).await,
        };
        // A volume still mounted (the script's teardown did not say it
        // ended) is left to recover, which unmounts it first.
        let mounted = matches!(&outcome, Ok(done) if !done.torn_down);
        let mut warnings = Vec::new();
        let mut gone = !mounted;
        if !mounted {
            for id in &made {
                if let Err(e) = self.discard(id).await {
                    warnings.push(format!(
                        "volume {id} was not deleted: {e}; `quiesce recover {}` deletes it",
                        v.run_id
                    ));
                    gone = false;
                }
            }
        }
        match outcome {
            Ok(mut done) => {
                done.warnings.extend(warnings);
                done.torn_down = done.torn_down && gone;
                Ok(done)
            }
            Err(why) if made.is_empty() => Err(why),
            Err(why) => {
                let mut all = vec![why];
                all.extend(warnings);
                Ok(Verified {
                    instances: Vec::new(),
                    warnings: all,
                    torn_down: gone,
                })
            }
        }
    }

    /// A volume from `snap` in `zone`, tagged, attached to the scratch
    /// instance as `device`; its id is pushed to `made` as soon as it exists.
    #[allow(clippy::too_many_arguments)]
    async fn volume_from(
        &self,
        snap: &str,
        zone: &str,
        run_id: &str,
        host: &str,
        scratch: &str,
        device: &str,
        made: &mut Vec<String>,
    ) -> Result<String, String> {
        let client = self.client().await;
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Volume)
            .tags(tag("Name", &format!("quiesce-verify-{run_id}")))
            .tags(tag(TAG_VERIFY, run_id))
            .tags(tag(TAG_HOST, host))
            .build();
        let created = retrying(Instant::now() + CALL_TIMEOUT, || {
            client
                .create_volume()
                .snapshot_id(snap)
                .availability_zone(zone)
                .volume_type(VolumeType::Gp3)
                .tag_specifications(tags.clone())
                .send()
        })
        .await
        .map_err(|e| format!("CreateVolume from {snap} in {zone} failed: {e}"))?;
        let id = created.volume_id().unwrap_or_default().to_string();
        // It names a device path on the scratch instance: only an EC2 id.
        if !is_volume_id(&id) {
            return Err(format!(
                "CreateVolume from {snap} answered no volume id ({id:?})"
            ));
        }
        made.push(id.clone());
        self.wait_volume(&id, |v| v.state() == Some(&VolumeState::Available))
            .await
            .map_err(|e| format!("volume {id} from {snap} did not become available: {e}"))?;
        retrying(Instant::now() + CALL_TIMEOUT, || {
            client
                .attach_volume()
                .volume_id(&id)
                .instance_id(scratch)
                .device(device)
                .send()
        })
        .await
        .map_err(|e| format!("AttachVolume {id} to {scratch} as {device} failed: {e}"))?;
        self.wait_volume(&id, |v| {
            v.attachments()
                .iter()
                .any(|a| a.state() == Some(&VolumeAttachmentState::Attached))
        })
        .await
        .map_err(|e| format!("volume {id} was not attached to {scratch}: {e}"))?;
        Ok(id)
    }

    /// Polls volume `id` until `ready` says so, within VOLUME_WAIT.
    async fn wait_volume(
        &self,
        id: &str,
        ready: impl Fn(&aws_sdk_ec2::types::Volume) -> bool,
    ) -> Result<(), String> {
        let client = self.client().await;
        let deadline = Instant::now() + VOLUME_WAIT;
        loop {
            let out = retrying(deadline, || client.describe_volumes().volume_ids(id).send())
                .await
                .map_err(String::from)?;
            if out.volumes().iter().any(&ready) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "still not after {}",
                    crate::output::duration::format(VOLUME_WAIT)
                ));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// Detaches volume `id` from wherever it is attached, waits until it is
    /// free, deletes it.
    async fn discard(&self, id: &str) -> Result<(), String> {
        let client = self.client().await;
        let described = retrying(Instant::now() + CALL_TIMEOUT, || {
            client.describe_volumes().volume_ids(id).send()
        })
        .await
        .map_err(|e| format!("DescribeVolumes: {e}"))?;
        let attachments: Vec<(String, String)> = described
            .volumes()
            .iter()
            .flat_map(|v| v.attachments())
            .filter(|a| a.state() != Some(&VolumeAttachmentState::Detached))
            .map(|a| {
                (
                    a.instance_id().unwrap_or_default().to_string(),
                    a.device().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for (instance, device) in &attachments {
            let detached = retrying(Instant::now() + CALL_TIMEOUT, || {
                client
                    .detach_volume()
                    .volume_id(id)
                    .instance_id(instance)
                    .device(device)
                    .send()
            })
            .await;
            if let Err(e) = detached
                && e.code.as_deref() != Some("IncorrectState")
                && e.code.as_deref() != Some("InvalidAttachment.NotFound")
            {
                return Err(format!("DetachVolume from {instance}: {e}"));
            }
        }
        self.wait_volume(id, |v| v.state() == Some(&VolumeState::Available))
            .await?;
        retrying(Instant::now() + CALL_TIMEOUT, || {
            client.delete_volume().volume_id(id).send()
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("DeleteVolume: {e}"))
    }

    /// The volumes a verify of `run_id` made for `host` and did not delete.
    async fn left_volumes(&self, run_id: &str, host: &str) -> Result<Vec<String>, String> {
        let client = self.client().await;
        let out = retrying(Instant::now() + CALL_TIMEOUT, || {
            client
                .describe_volumes()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{TAG_VERIFY}"))
                        .values(run_id)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name(format!("tag:{TAG_HOST}"))
                        .values(host)
                        .build(),
                )
                .send()
        })
        .await
        .map_err(String::from)?;
        Ok(out
            .volumes()
            .iter()
            .filter_map(|v| v.volume_id().map(String::from))
            .collect())
    }
}

/// `recover`: what a killed verify of `run_id` left for one host: the
/// scratch instance put right by the script (volumes unmounted, the
/// verification instance stopped, its CPF back), then every volume it made
/// detached and deleted. True when something was left.
pub async fn clean_up(
    scratch_vm: &dyn Transport,
    left: &crate::backup::verification::CloneEntry,
    run_id: &str,
) -> Result<bool, String> {
    let mut found = super::clone_script::clean_up(scratch_vm, left, run_id).await?;
    let ebs = AwsEbs::new(AwsSettings {
        region: left.aws_region.clone(),
        profile: left.aws_profile.clone(),
        endpoint_url: left.aws_endpoint_url.clone(),
        exclude_boot_volume: false,
        durable_timeout: Duration::from_secs(600),
        poll_interval: Duration::from_secs(2),
    });
    let volumes = ebs.left_volumes(run_id, &left.host).await?;
    for id in &volumes {
        ebs.discard(id)
            .await
            .map_err(|e| format!("volume {id} was not deleted: {e}"))?;
        found = true;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_read_only_for_the_runs_volumes_at_plain_paths() {
        let snaps = vec![("snap-1".to_string(), "vol-0a".to_string())];
        let text = "vol\tvol-0a\t/data\nvol\tvol-0b\t/other\nvol\tvol-0a\t/again\n";
        assert_eq!(
            parse_mounts(text, &snaps),
            [(
                "snap-1".to_string(),
                "vol-0a".to_string(),
                "/data".to_string()
            )]
        );
        assert!(parse_mounts("vol\tvol-0a\t/da ta\n", &snaps).is_empty());
        assert!(parse_mounts("vol\tvol-0a\t-\n", &snaps).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_mounts_answer_parses_to_plain_paths(text in "(vol|\t|vol-0a|/[a-z ;$]{0,5}|-|\n){0,40}") {
            let snaps = vec![("snap-1".to_string(), "vol-0a".to_string())];
            for (_, _, at) in parse_mounts(&text, &snaps) {
                proptest::prop_assert!(at.starts_with('/') && crate::backup::restore_point::plain_path(&at));
            }
        }
    }

    #[test]
    fn only_an_ec2_volume_id_names_a_device() {
        assert!(is_volume_id("vol-0123456789abcdef0"));
        for bad in ["vol-", "vol-../../sda", "snap-12", "vol-12 x", "VOL-12"] {
            assert!(!is_volume_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_directory_lies_on_the_longest_mount_above_it() {
        let m = |s: &str, at: &str| (s.to_string(), "vol-1".to_string(), at.to_string());
        let mounts = vec![m("root", "/"), m("data", "/data"), m("j", "/data/journal")];
        let on = |d: &str| mount_of(d, &mounts).map(|(s, ..)| s.as_str());
        assert_eq!(on("/data/journal/x"), Some("j"));
        assert_eq!(on("/data/db"), Some("data"));
        assert_eq!(on("/datax"), Some("root"));
        assert_eq!(
            mount_of("/data", &mounts[1..]).map(|(s, ..)| s.as_str()),
            Some("data")
        );
        assert_eq!(mount_of("/usr", &mounts[1..]), None);
    }
}
