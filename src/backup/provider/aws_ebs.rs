//! The AWS EBS provider: `CreateSnapshots` of an EC2 instance's attached
//! volumes (one crash-consistent set) through the official SDK, with the
//! standard credential chain. The point in time is fixed when the call
//! returns, so the thaw follows at once; the snapshots stay `pending` for
//! minutes after, and the backup is recorded (ExternalSetHistory) only once
//! every one is `completed` (`settle`). Throttling is retried with backoff
//! and jitter inside the snapshot's own time; a set made after its timeout
//! is found by its tags and deleted, never left behind.

use super::{Create, Listed, Prepared, Provider};
use crate::backup::snapshot::SnapshotResult;
use crate::inventory::Host;
use crate::inventory::playbook::{AwsSettings, ProviderKind};
use crate::remote::transport::Transport;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, InstanceSpecification, ResourceType, SnapshotState, Tag, TagSpecification,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::Duration;
use tokio::time::Instant;

/// The tags quiesce puts on every snapshot it makes (and finds them by).
pub const TAG_RUN: &str = "quiesce:run";
pub const TAG_HOST: &str = "quiesce:host";
pub const TAG_INSTANCES: &str = "quiesce:instances";
pub const TAG_JOURNAL: &str = "quiesce:journal";
/// Where each instance's journal restore starts (`INST=FILE@OFFSET,…`).
pub const TAG_RESTORE: &str = "quiesce:restore";
/// How long one call other than the create may take, retries included.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end of a run looks for a set whose creation was given up on.
const LATE_SWEEP: Duration = Duration::from_secs(60);

pub struct AwsEbs {
    pub settings: AwsSettings,
    client: tokio::sync::OnceCell<Client>,
    /// (instance, run, host) of creations given up on with nothing found:
    /// looked for again, and deleted, at the end of the run.
    late: std::sync::Mutex<Vec<(String, String, String)>>,
}

/// An EC2 error, worded once: its code (the part a person searches for)
/// and message, or what kept the request from being answered.
fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match (e.code(), e.message()) {
        (Some("AuthFailure" | "UnrecognizedClientException" | "InvalidClientTokenId"), m) => {
            format!(
                "AWS refused the credentials ({}: {}): check the standard chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO, the instance role)",
                e.code().unwrap_or_default(),
                m.unwrap_or("")
            )
        }
        (Some("UnauthorizedOperation"), m) => format!(
            "not allowed (UnauthorizedOperation: {}): the IAM policy in docs/providers.md lists what quiesce needs",
            m.unwrap_or("")
        ),
        (Some(code), Some(m)) => format!("{code}: {m}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// Whether asking again later can help: throttling, a per-volume rate, an
/// answer that never came.
fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => matches!(
            e.code(),
            Some(
                "RequestLimitExceeded"
                    | "SnapshotCreationPerVolumeRateExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "Unavailable"
            )
        ),
    }
}

/// The wait before try `attempt` (1, 2, …): exponential from 200 ms, capped
/// at 5 s, with full jitter so a fleet's retries spread out.
pub fn backoff(attempt: u32, random: u64) -> Duration {
    let cap = 200u64.saturating_mul(1 << attempt.min(10)).min(5000);
    Duration::from_millis(cap / 2 + random % (cap / 2 + 1))
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Why a call failed, and whether EC2 may have carried it out anyway (no
/// answer came, so a request that was sent may still have been made).
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) why: String,
    pub(super) unanswered: bool,
    /// EC2's error code, when it answered with one.
    pub(super) code: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.why
    }
}

/// Calls `op` until it succeeds, fails for good, or `deadline` passes.
pub(super) async fn retrying<T, E, F, Fut>(deadline: Instant, mut op: F) -> Result<T, Failure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = match tokio::time::timeout(left, op()).await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(Failure {
                    why: "no answer in time".into(),
                    unanswered: true,
                    code: None,
                });
            }
        };
        match answer {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) => {
                let wait = backoff(attempt, random());
                if Instant::now() + wait >= deadline {
                    return Err(Failure {
                        why: format!("{} (after {attempt} tries)", describe(&e)),
                        unanswered: matches!(
                            e,
                            SdkError::TimeoutError(_) | SdkError::ResponseError(_)
                        ),
                        code: e.code().map(String::from),
                    });
                }
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                return Err(Failure {
                    why: describe(&e),
                    unanswered: matches!(e, SdkError::TimeoutError(_) | SdkError::ResponseError(_)),
                    code: e.code().map(String::from),
                });
            }
        }
    }
}

pub(super) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl AwsEbs {
    pub fn new(settings: AwsSettings) -> AwsEbs {
        AwsEbs {
            settings,
            client: tokio::sync::OnceCell::new(),
            late: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// One client per run; the SDK keeps its connections and credentials.
    pub(super) async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    // quiesce retries itself, within each step's own time.
                    .retry_config(aws_config::retry::RetryConfig::disabled());
                if let Some(region) = &self.settings.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(profile) = &self.settings.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(url) = &self.settings.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                Client::new(&loader.load().await)
            })
            .await
    }

    /// The instance the inventory's `vm` names: an instance id (`i-…`), or
    /// the value of its `Name` tag (two instances of one name are refused).
    pub(super) async fn instance(&self, host: &Host) -> Result<String, String> {
        let client = self.client().await;
        let wanted = host.vm.as_str();
        let by_id = wanted.starts_with("i-");
        let deadline = Instant::now() + CALL_TIMEOUT;
        let found = retrying(deadline, || {
            let call = client.describe_instances();
            let call = if by_id {
                call.instance_ids(wanted)
            } else {
                call.filters(Filter::builder().name("tag:Name").values(wanted).build())
            };
            call.send()
        })
        .await
        .map_err(|e| format!("cannot find EC2 instance `{wanted}`: {e}"))?;
        let ids: Vec<String> = found
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .is_none_or(|n| n.as_str() != "terminated")
            })
            .filter_map(|i| i.instance_id().map(String::from))
            .collect();
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(format!(
                "no EC2 instance `{wanted}` (the inventory's vm: an instance id i-…, or its Name tag)"
            )),
            many => Err(format!(
                "{} EC2 instances are named `{wanted}` ({}): give the inventory's vm as one instance id",
                many.len(),
                many.join(", ")
            )),
        }
    }

    /// Every quiesce snapshot of `host` (optionally of one run), as
    /// (snapshot id, run, state, start time).
    async fn tagged(
        &self,
        host: &str,
        run: Option<&str>,
    ) -> Result<Vec<(String, String, String, String)>, String> {
        let client = self.client().await;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let page = retrying(deadline, || {
                let mut call = client
                    .describe_snapshots()
                    .owner_ids("self")
                    .filters(
                        Filter::builder()
                            .name(format!("tag:{TAG_HOST}"))
                            .values(host)
                            .build(),
                    )
                    .set_next_token(token.clone());
                call = match run {
                    Some(r) => call.filters(
                        Filter::builder()
                            .name(format!("tag:{TAG_RUN}"))
                            .values(r)
                            .build(),
                    ),
                    None => call.filters(Filter::builder().name("tag-key").values(TAG_RUN).build()),
                };
                call.send()
            })
            .await
            .map_err(String::from)?;
            for s in page.snapshots() {
                let run = s
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(TAG_RUN))
                    .and_then(|t| t.value())
                    .unwrap_or_default();
                out.push((
                    s.snapshot_id().unwrap_or_default().to_string(),
                    run.to_string(),
                    s.state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    s.start_time().map(|t| t.to_string()).unwrap_or_default(),
                ));
            }
            token = page
                .next_token()
                .map(String::from)
                .filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Deletes what `run` made on `host` (a set made after it was given up
    /// on); the ids deleted.
    async fn delete_run(&self, host: &str, run: &str) -> Vec<String> {
        let mut deleted = Vec::new();
        for (id, ..) in self.tagged(host, Some(run)).await.unwrap_or_default() {
            if self.delete(&id).await.is_ok() {
                deleted.push(id);
            }
        }
        deleted
    }

    async fn delete(&self, id: &str) -> Result<(), String> {
        let client = self.client().await;
        retrying(Instant::now() + CALL_TIMEOUT, || {
            client.delete_snapshot().snapshot_id(id).send()
        })
        .await
        .map(|_| ())
        .map_err(String::from)
    }

    fn remember_late(&self, instance: &str, run: &str, host: &str) {
        self.late.lock().unwrap_or_else(|e| e.into_inner()).push((
            instance.into(),
            run.into(),
            host.into(),
        ));
    }
}

impl Provider for AwsEbs {
    fn kind(&self) -> ProviderKind {
        ProviderKind::AwsEbs
    }

    /// Finds the instance and asks EC2, with DryRun, whether this caller may
    /// snapshot it: a refusal leaves the host out before any freeze.
    fn prepare<'a>(
        &'a self,
        host: &'a Host,
        _vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        async move {
            let instance = self.instance(host).await?;
            let client = self.client().await;
            let spec = InstanceSpecification::builder()
                .instance_id(&instance)
                .exclude_boot_volume(self.settings.exclude_boot_volume)
                .build();
            // Throttling is retried here too: a fleet's preflight asks at once.
            let answer = retrying(Instant::now() + CALL_TIMEOUT, || {
                client
                    .create_snapshots()
                    .instance_specification(spec.clone())
                    .dry_run(true)
                    .send()
            })
            .await;
            match answer {
                Err(f) if f.code.as_deref() == Some("DryRunOperation") => {}
                // A service that does not check DryRun made nothing either.
                Ok(_) => {}
                Err(f) => return Err(format!("EC2 would refuse to snapshot {instance}: {f}")),
            }
            Ok(Prepared::one(instance))
        }
        .boxed()
    }

    fn create<'a>(&'a self, c: Create<'a>) -> BoxFuture<'a, SnapshotResult> {
        async move {
            let Some(instance) = Prepared::first(c.prepared) else {
                return SnapshotResult::failed("the EC2 instance was not found before the freeze".into());
            };
            let client = self.client().await;
            let instances = if c.host.instances.is_empty() {
                "all".to_string()
            } else {
                c.host.instances.join(",")
            };
            let journal = format!("{}/journal.jsonl", c.run_dir);
            let tags = TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .tags(tag("Name", &format!("quiesce-{}", c.run_id)))
                .tags(tag(TAG_RUN, c.run_id))
                .tags(tag(TAG_HOST, &c.host.name))
                .tags(tag(TAG_INSTANCES, &instances))
                .tags(tag(TAG_JOURNAL, &journal))
                // EC2 tag values hold at most 256 characters.
                .tags(tag(TAG_RESTORE, &c.restore_compact(256)))
                .build();
            let description = format!(
                "quiesce run {} of host {} (instances {instances}); journal {journal}",
                c.run_id, c.host.name
            );
            let started = Instant::now();
            let deadline = started + c.timeout;
            let mut stop = c.stop.clone();
            let made = tokio::select! {
                made = retrying(deadline, || {
                    client
                        .create_snapshots()
                        .instance_specification(
                            InstanceSpecification::builder()
                                .instance_id(&instance)
                                .exclude_boot_volume(self.settings.exclude_boot_volume)
                                .build(),
                        )
                        .description(&description)
                        .tag_specifications(tags.clone())
                        .send()
                }) => made,
                _ = stop.wait_for(|s| *s) => Err(Failure { why: "interrupted during the snapshot".into(), unanswered: true, code: None }),
            };
            match made {
                Ok(out) => {
                    let ids: Vec<String> = out
                        .snapshots()
                        .iter()
                        .filter_map(|s| s.snapshot_id().map(String::from))
                        .collect();
                    if ids.is_empty() {
                        return SnapshotResult::failed(format!(
                            "CreateSnapshots made no snapshot of {instance} (no attached EBS volume?)"
                        ));
                    }
                    let at = out
                        .snapshots()
                        .first()
                        .and_then(|s| s.start_time())
                        .map(|t| format!(", started {t} by EC2's clock"))
                        .unwrap_or_default();
                    SnapshotResult {
                        ok: true,
                        detail: format!(
                            "EBS snapshots of {instance}: {}{at}, in {:.3}s",
                            ids.join(", "),
                            started.elapsed().as_secs_f64()
                        ),
                        stun_us: None,
                        ids,
                    }
                }
                Err(why) => {
                    // A call that was sent may still have made the set: it
                    // is looked for by its tags and deleted, now and again
                    // (when no answer came) at the end of the run.
                    let deleted = self.delete_run(&c.host.name, c.run_id).await;
                    if deleted.is_empty() && why.unanswered {
                        self.remember_late(&instance, c.run_id, &c.host.name);
                    }
                    SnapshotResult::failed(format!(
                        "CreateSnapshots of {instance} failed within {}: {why}{}",
                        crate::output::duration::format(c.timeout),
                        if deleted.is_empty() {
                            String::new()
                        } else {
                            format!(" (the snapshots it made anyway, {}, were deleted)", deleted.join(", "))
                        }
                    ))
                }
            }
        }
        .boxed()
    }

    fn settles_later(&self) -> bool {
        true
    }

    /// Reads the set's state every poll interval until all are `completed`;
    /// `error` (or the wait running out) means there is no backup.
    fn settle<'a>(
        &'a self,
        _host: &'a Host,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let client = self.client().await;
            let started = Instant::now();
            let deadline = started + self.settings.durable_timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let read = retrying(Instant::now() + CALL_TIMEOUT.min(left.max(Duration::from_secs(1))), || {
                    client.describe_snapshots().set_snapshot_ids(Some(ids.to_vec())).send()
                })
                .await;
                let pending: Vec<String> = match read.map_err(String::from) {
                    Err(why) => vec![format!("(state unknown: {why})")],
                    Ok(page) => {
                        if let Some(bad) = page.snapshots().iter().find(|s| {
                            matches!(s.state(), Some(SnapshotState::Error) | Some(SnapshotState::Recoverable))
                        }) {
                            return Err(format!(
                                "EBS snapshot {} ended in state {}{}: no backup was recorded",
                                bad.snapshot_id().unwrap_or_default(),
                                bad.state().map(|s| s.as_str()).unwrap_or_default(),
                                bad.state_message().map(|m| format!(" ({m})")).unwrap_or_default()
                            ));
                        }
                        let seen: Vec<&str> = page.snapshots().iter().filter_map(|s| s.snapshot_id()).collect();
                        ids.iter()
                            .filter(|id| !seen.contains(&id.as_str()))
                            .map(|id| format!("{id} (missing)"))
                            .chain(page.snapshots().iter().filter(|s| s.state() != Some(&SnapshotState::Completed)).map(|s| {
                                format!(
                                    "{} ({}{})",
                                    s.snapshot_id().unwrap_or_default(),
                                    s.state().map(|s| s.as_str()).unwrap_or("no state"),
                                    s.progress().map(|p| format!(" {p}")).unwrap_or_default()
                                )
                            }))
                            .collect()
                    }
                };
                if pending.is_empty() {
                    return Ok(format!(
                        "every EBS snapshot completed {:.1}s after the thaw",
                        started.elapsed().as_secs_f64()
                    ));
                }
                if Instant::now() + self.settings.poll_interval > deadline {
                    return Err(format!(
                        "EBS snapshots not completed within {}: {}: no backup was recorded (they may still complete; `snapshots list` shows them)",
                        crate::output::duration::format(self.settings.durable_timeout),
                        pending.join(", ")
                    ));
                }
                tokio::time::sleep(self.settings.poll_interval).await;
            }
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        host: &'a Host,
        _vm: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<Listed>, String>> {
        async move {
            Ok(self
                .tagged(&host.name, None)
                .await?
                .into_iter()
                .map(|(id, run_id, _state, created)| Listed {
                    name: id.clone(),
                    run_id,
                    host: host.name.clone(),
                    id,
                    created,
                })
                .collect())
        }
        .boxed()
    }

    fn remove<'a>(
        &'a self,
        _host: &'a Host,
        _vm: &'a dyn Transport,
        names: &'a [String],
    ) -> BoxFuture<'a, Vec<(String, Result<(), String>)>> {
        async move {
            let mut out = Vec::new();
            for id in names {
                out.push((id.clone(), self.delete(id).await));
            }
            out
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        v: super::VerifyRequest<'a>,
    ) -> BoxFuture<'a, Result<super::Verified, String>> {
        self.verify_host(v).boxed()
    }

    fn finish<'a>(&'a self) -> BoxFuture<'a, ()> {
        async move {
            let late: Vec<(String, String, String)> =
                std::mem::take(&mut *self.late.lock().unwrap_or_else(|e| e.into_inner()));
            let deadline = Instant::now() + LATE_SWEEP;
            for (_instance, run, host) in late {
                while self.delete_run(&host, &run).await.is_empty() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every wait is between half its cap and the cap, and the cap
        /// never passes 5 s, however many tries and whatever the dice.
        #[test]
        fn backoff_is_bounded_and_jittered(attempt in 0u32..1000, r in any::<u64>()) {
            let cap = 200u64.saturating_mul(1 << attempt.min(10)).min(5000);
            let wait = backoff(attempt, r).as_millis() as u64;
            prop_assert!(wait >= cap / 2 && wait <= cap, "{wait} {cap}");
        }
    }
}
