//! The executor's decisions as tables, without root or sshd: each row
//! scripts a fleet (facts in: what each step answers), runs the real
//! preflight, plan and executor against it on tokio's paused clock, and
//! checks what came out — the commands each host got, in order, its outcome
//! and the journal. The lab tests prove the SSH layer under the same code.

use quiesce::backup::executor::{self, Options};
use quiesce::backup::host_run::{HostRun, Outcome};
use quiesce::backup::journal::{Entry, Journal};
use quiesce::backup::stun_history::StunHistory;
use quiesce::backup::{plan, preflight};
use quiesce::inventory::Inventory;
use quiesce::inventory::playbook::Playbook;
use quiesce::remote::fake::{Armed, FakeFleet, Reply, Script};
use quiesce::remote::known_hosts::{AcceptNew, HostKeyPolicy};
use quiesce::remote::runner;
use quiesce::remote::ssh::SshOptions;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const INVENTORY: &str = "\
defaults: { platform: iris }
hosts:
  solo: { address: 10.0.0.1 }
  pri: { address: 10.0.0.2 }
  bak: { address: 10.0.0.3 }
mirrors:
  M: { members: [pri, bak], qos_timeout: 8s }
";

/// Snapshots on the controller (the fake's `controller` host), 20 s each,
/// no retry, 10 s margin: freeze timeout 30 s, the VM's own switch at 25 s.
const PLAYBOOK: &str = "\
name: table
include_primaries: true
snapshot: { on: controller, command: 'snap {vm}', timeout: 20s }
freeze_margin: 10s
";

fn facts(role: &str) -> Reply {
    let (kind, status) = match role {
        "primary" => ("Failover", "Primary"),
        "backup" => ("Failover", "Backup"),
        _ => ("", ""),
    };
    Reply::ok(&format!(
        "hook\tpre-freeze-script\tok\nhook\tpost-thaw-script\tok\nqlist\tIRIS\trunning, since Nov 25\t{kind}\t{status}\n"
    ))
}

const FROZEN: &str = "quiesce-freeze 0\n";
fn thawed(kind: &str) -> Reply {
    Reply::ok(&format!(
        "quiesce-outcome IRIS {kind}\nquiesce-thaw 0 thaw\n"
    ))
}

/// A host that answers everything as a healthy VM does.
fn healthy(role: &str) -> Script {
    Script::default().on_run("preflight", facts(role)).on_arm(
        "freeze",
        Armed::Waits {
            lines: FROZEN.into(),
            then: thawed("valid"),
        },
    )
}

struct Ran {
    results: Vec<HostRun>,
    journal: Vec<Entry>,
    fleet: FakeFleet,
}

impl Ran {
    fn host(&self, name: &str) -> &HostRun {
        self.results
            .iter()
            .find(|r| r.host == name)
            .expect("host in results")
    }

    fn assert(&self, name: &str, outcome: Outcome, detail: &str) {
        let r = self.host(name);
        assert_eq!((r.outcome, r.detail.as_str()), (outcome, detail), "{r:#?}");
    }
}

/// Runs preflight, plan and the executor for `limit` against the fleet.
async fn run(fleet: FakeFleet, limit: &[&str], stop_after: Option<Duration>) -> Ran {
    run_with(fleet, limit, stop_after, None).await
}

/// `run`, with the journal's disk full from the first entry of kind `full_at` on.
async fn run_with(
    fleet: FakeFleet,
    limit: &[&str],
    stop_after: Option<Duration>,
    full_at: Option<&str>,
) -> Ran {
    run_playbook(fleet, limit, stop_after, full_at, PLAYBOOK).await
}

/// `run_with` for another playbook, its provider's preparation included.
async fn run_playbook(
    fleet: FakeFleet,
    limit: &[&str],
    stop_after: Option<Duration>,
    full_at: Option<&str>,
    playbook_text: &str,
) -> Ran {
    let dir = tempfile::tempdir().expect("temp dir");
    let inventory = Inventory::parse(Path::new("table.yml"), INVENTORY).expect("inventory");
    let playbook = Playbook::parse(Path::new("table-playbook.yml"), playbook_text, &inventory)
        .expect("playbook");
    let hosts: Vec<_> = inventory
        .hosts
        .iter()
        .filter(|h| limit.contains(&h.name.as_str()))
        .collect();
    let ssh = SshOptions::new(
        Duration::from_secs(10),
        Duration::from_secs(10),
        Arc::new(HostKeyPolicy::new(
            dir.path().join("known_hosts"),
            AcceptNew::Never,
        )),
        false,
    );
    let (events, consumer) = runner::event_stream(true);
    let mut preflight = preflight::preflight(&hosts, &fleet, 4, &events).await;
    let provider = quiesce::backup::provider::of(&playbook.snapshot);
    let refused = preflight::prepare_snapshots(&hosts, &mut preflight, &provider, 4).await;
    let checked = preflight::check(&hosts, &preflight);
    assert!(checked.blockers.is_empty(), "{:?}", checked.blockers);
    let hosts: Vec<_> = hosts
        .into_iter()
        .filter(|h| !refused.iter().any(|(r, _)| *r == h.name))
        .collect();
    let plan = plan::plan(&inventory, &playbook, &hosts, &checked.roles).expect("plan");
    let runs_dir = dir.path().join("runs");
    let run_dir = runs_dir.join("R1");
    let journal = Journal::create(&run_dir).expect("journal");
    if let Some(event) = full_at {
        journal.fill_disk_at(event);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(after) = stop_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = stop_tx.send(true);
        });
    }
    let options = Options {
        force: false,
        forks: 4,
        runs_dir: runs_dir.clone(),
        history: StunHistory::default(),
    };
    let results = executor::execute(
        &inventory,
        &playbook,
        &plan,
        preflight,
        &ssh,
        &fleet,
        &options,
        "R1".into(),
        journal,
        stop_rx,
        events,
    )
    .await;
    let _ = consumer.await;
    let journal = Journal::read(&run_dir.join("journal.jsonl")).expect("journal read");
    Ran {
        results,
        journal,
        fleet,
    }
}

fn steps(ran: &Ran, host: &str) -> Vec<String> {
    // Arguments carry hashes and paths; the step names are the decisions.
    ran.fleet
        .log(host)
        .into_iter()
        .map(|l| l.split(' ').next().unwrap_or_default().to_string() + rest_word(&l))
        .collect()
}

/// The word sent to an armed session (`freeze <thaw`) is kept.
fn rest_word(line: &str) -> &str {
    match line.find(" <") {
        Some(at) => &line[at..],
        None => "",
    }
}

fn kinds(ran: &Ran, host: &str) -> Vec<&'static str> {
    ran.journal
        .iter()
        .filter_map(|e| match e {
            Entry::FreezeStarted { host: h, .. } if h == host => Some("freeze-started"),
            Entry::Frozen { host: h, .. } if h == host => Some("frozen"),
            Entry::FreezeFailed { host: h, .. } if h == host => Some("freeze-failed"),
            Entry::NotFrozen { host: h, .. } if h == host => Some("not-frozen"),
            Entry::SnapshotStarted { host: h, .. } if h == host => Some("snapshot-started"),
            Entry::SnapshotFinished { host: h, .. } if h == host => Some("snapshot-finished"),
            Entry::ThawStarted { host: h, .. } if h == host => Some("thaw-started"),
            Entry::ThawFailed { host: h, .. } if h == host => Some("thaw-failed"),
            Entry::Thawed { host: h, .. } if h == host => Some("thawed"),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_healthy_host_is_frozen_snapshotted_and_thawed_over_its_armed_session() {
    let fleet = FakeFleet::default();
    fleet.host("solo", healthy("none"));
    let ran = run(fleet, &["solo"], None).await;
    ran.assert("solo", Outcome::Valid, "snapshot taken while frozen");
    assert_eq!(
        steps(&ran, "solo"),
        ["connect", "preflight", "freeze", "freeze <thaw"]
    );
    assert_eq!(steps(&ran, "controller"), ["snapshot"]);
    assert_eq!(
        kinds(&ran, "solo"),
        [
            "freeze-started",
            "frozen",
            "snapshot-started",
            "snapshot-finished",
            "thaw-started",
            "thawed"
        ]
    );
}

/// One row: the fleet's scripts, the hosts run, and for each host the
/// outcome, the detail and the steps it was sent, in order.
struct Row {
    name: &'static str,
    fleet: Vec<(&'static str, Script)>,
    /// A script for the controller's own snapshot command.
    snapshot: Option<Armed>,
    limit: &'static [&'static str],
    stop_after: Option<Duration>,
    expect: Vec<(&'static str, Outcome, &'static str, &'static [&'static str])>,
}

fn freeze_says(lines: &str, code: u32) -> Armed {
    Armed::Ends(Reply::Exit {
        code,
        stdout: lines.into(),
        stderr: String::new(),
    })
}

fn frozen_then(then: Reply) -> Armed {
    Armed::Waits {
        lines: FROZEN.into(),
        then,
    }
}

/// The steps of a thaw retried over new connections until the deadline.
const RETRIED_29_TIMES: [&str; 62] = {
    let mut steps = ["connect"; 62];
    steps[1] = "preflight";
    steps[2] = "freeze";
    steps[3] = "freeze <thaw";
    let mut i = 5;
    while i < 62 {
        steps[i] = "thaw";
        i += 2;
    }
    steps
};

fn rows() -> Vec<Row> {
    let snapshot_ok = Armed::Ends(Reply::ok("snapshot taken\n"));
    vec![
        Row {
            name: "a failed freeze is thawed with freezeFail over its session",
            fleet: vec![(
                "solo",
                healthy("none").on_arm(
                    "freeze",
                    Armed::Waits {
                        lines: "quiesce-err ExternalFreeze failed: journal daemon down\nquiesce-freeze 5\n".into(),
                        then: Reply::ok("quiesce-thaw 0 freezeFail\n"),
                    },
                ),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Failed,
                "freeze failed: exit status 5: ExternalFreeze failed: journal daemon down",
                &["connect", "preflight", "freeze", "freeze <freezeFail"],
            )],
        },
        Row {
            name: "a freeze held by VMware Tools gets no thaw from this run",
            fleet: vec![(
                "solo",
                healthy("none").on_arm(
                    "freeze",
                    freeze_says("quiesce-holder vmware\nquiesce-freeze 3\n", 3),
                ),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Skipped,
                "not frozen by this run: a freeze by vmware holds solo (another quiesce run, or VMware Tools); this run sent it no thaw",
                &["connect", "preflight", "freeze"],
            )],
        },
        Row {
            name: "a changed thaw hook is never run and nothing is frozen",
            fleet: vec![(
                "solo",
                healthy("none").on_arm(
                    "freeze",
                    Armed::Ends(Reply::Exit {
                        code: 97,
                        stdout: "quiesce-unchecked post-thaw-script\n".into(),
                        stderr: "/usr/sbin/post-thaw-script: sha256 differs from what quiesce deployed\n".into(),
                    }),
                ),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Failed,
                "solo (10.0.0.1:22): /usr/sbin/post-thaw-script no longer matches what quiesce deployed, so it was not run (/usr/sbin/post-thaw-script: sha256 differs from what quiesce deployed)",
                &["connect", "preflight", "freeze"],
            )],
        },
        Row {
            name: "a freeze that never answers is given up and thawed",
            fleet: vec![(
                "solo",
                healthy("none").on_arm(
                    "freeze",
                    Armed::Waits {
                        lines: String::new(),
                        then: Reply::ok("quiesce-thaw 0 freezeFail\n"),
                    },
                ),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Failed,
                "freeze did not finish within 10s",
                &["connect", "preflight", "freeze", "freeze <freezeFail"],
            )],
        },
        Row {
            name: "a failed snapshot thaws with freezeFail: no backup recorded",
            fleet: vec![("solo", healthy("none"))],
            snapshot: Some(Armed::Ends(Reply::fail(1, "govc: VM not found\n"))),
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Failed,
                "snapshot command failed (exit status: 1): govc: VM not found",
                &["connect", "preflight", "freeze", "freeze <freezeFail"],
            )],
        },
        Row {
            name: "a snapshot that hangs is cancelled at its timeout and thawed",
            fleet: vec![("solo", healthy("none"))],
            snapshot: Some(Armed::Ends(Reply::Hang)),
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Failed,
                "snapshot command timed out after 20s",
                &["connect", "preflight", "freeze", "freeze <freezeFail"],
            )],
        },
        Row {
            name: "a thaw whose answer never comes goes out again over a new connection",
            fleet: vec![(
                "solo",
                healthy("none")
                    .on_arm("freeze", frozen_then(Reply::Hang))
                    .on_run("thaw", Reply::ok("quiesce-outcome IRIS valid earlier\n")),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Valid,
                "snapshot taken while frozen (told by a later thaw: the first one's answer was lost)",
                &["connect", "preflight", "freeze", "freeze <thaw", "connect", "thaw"],
            )],
        },
        Row {
            name: "a thaw that keeps failing ends LEFT FROZEN with a fix, after retries up to the deadline",
            fleet: vec![(
                "solo",
                healthy("none")
                    .on_arm("freeze", frozen_then(Reply::Lost))
                    .on_run("thaw", Reply::Lost),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::LeftFrozen,
                // One second apart until a second before the instance would pause.
                "COULD NOT THAW after 30 attempts: solo (10.0.0.1:22): connection lost during thaw",
                &RETRIED_29_TIMES,
            )],
        },
        Row {
            name: "a thaw hook changed during the snapshot is never run: LEFT FROZEN at once",
            fleet: vec![(
                "solo",
                healthy("none").on_arm(
                    "freeze",
                    frozen_then(Reply::fail(97, "/usr/sbin/post-thaw-script: mode 0755, not 0700\n")),
                ),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::LeftFrozen,
                "COULD NOT THAW after 1 attempts: solo (10.0.0.1:22): /usr/sbin/post-thaw-script no longer matches what quiesce deployed, so it was not run (/usr/sbin/post-thaw-script: mode 0755, not 0700)",
                &["connect", "preflight", "freeze", "freeze <thaw"],
            )],
        },
        Row {
            name: "a thaw answered after the freeze timeout is an outage, never a valid backup",
            fleet: vec![(
                "solo",
                healthy("none")
                    .on_arm(
                        "freeze",
                        Armed::Slow(Duration::from_millis(1500), Box::new(frozen_then(Reply::Hang))),
                    )
                    .on_run(
                        "thaw",
                        Reply::After(Duration::from_millis(5700), Box::new(thawed("valid"))),
                    ),
            )],
            // Freeze at 0 (pauses at 30 s), frozen at 1.5 s, snapshot until
            // 21.4 s; the armed thaw hangs; fresh thaws at 24.4 s and 27.4 s;
            // the first answers at 30.1 s.
            snapshot: Some(Armed::Ends(Reply::After(Duration::from_millis(19_900), Box::new(Reply::ok(""))))),
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Invalid,
                "the thaw came 0.100s after the freeze timeout, so the instances paused (an outage): this snapshot is INVALID",
                &["connect", "preflight", "freeze", "freeze <thaw", "connect", "thaw", "connect", "thaw"],
            )],
        },
        Row {
            name: "thaw answers that could only come after the deadline: LEFT FROZEN with a fix",
            fleet: vec![(
                "solo",
                healthy("none")
                    .on_arm("freeze", frozen_then(Reply::Hang))
                    .on_run(
                        "thaw",
                        Reply::After(Duration::from_secs(23), Box::new(thawed("valid"))),
                    ),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::LeftFrozen,
                "COULD NOT THAW after 3 attempts: solo (10.0.0.1:22): thaw did not finish within 3s",
                &["connect", "preflight", "freeze", "freeze <thaw", "connect", "thaw", "connect", "thaw"],
            )],
        },
        Row {
            name: "the write daemon resumed during the snapshot: thawed, INVALID",
            fleet: vec![(
                "solo",
                healthy("none").on_arm("freeze", frozen_then(thawed("invalid-wd-resumed"))),
            )],
            snapshot: None,
            limit: &["solo"],
            stop_after: None,
            expect: vec![(
                "solo",
                Outcome::Invalid,
                "the write daemon resumed before the thaw (WDSuspendLimit): this snapshot is INVALID (instance IRIS)",
                &["connect", "preflight", "freeze", "freeze <thaw"],
            )],
        },
        Row {
            name: "a mirror's members go one at a time, backup first, primary last, each after a re-read of every member",
            fleet: vec![("pri", healthy("primary")), ("bak", healthy("backup"))],
            snapshot: Some(snapshot_ok.clone()),
            limit: &["pri", "bak"],
            stop_after: None,
            expect: vec![
                ("bak", Outcome::Valid, "snapshot taken while frozen", &["connect", "preflight", "preflight", "freeze", "freeze <thaw", "preflight"]),
                ("pri", Outcome::Valid, "snapshot taken while frozen", &["connect", "preflight", "preflight", "preflight", "freeze", "freeze <thaw"]),
            ],
        },
        Row {
            name: "a mirror whose primary changed since planning is stopped before any freeze",
            fleet: vec![
                ("pri", healthy("primary").then_run("preflight", facts("backup"))),
                ("bak", healthy("backup")),
            ],
            snapshot: None,
            limit: &["pri", "bak"],
            stop_after: None,
            expect: vec![
                ("bak", Outcome::Failed, "mirror M changed since planning: pri is now backup failover member, was primary; stopped this mirror before freezing it (nothing of it is left frozen); run again to plan with the new roles", &["connect", "preflight", "preflight"]),
                ("pri", Outcome::Skipped, "not run: an earlier job of this lane failed; nothing of it was frozen", &["connect", "preflight", "preflight"]),
            ],
        },
        Row {
            name: "a stop during the snapshot cancels it and thaws",
            fleet: vec![("solo", healthy("none"))],
            snapshot: Some(Armed::Ends(Reply::Hang)),
            limit: &["solo"],
            stop_after: Some(Duration::from_secs(5)),
            expect: vec![(
                "solo",
                Outcome::Failed,
                "interrupted during the snapshot",
                &["connect", "preflight", "freeze", "freeze <freezeFail"],
            )],
        },
    ]
}

#[tokio::test(start_paused = true)]
async fn every_row_of_the_decision_table() {
    let mut failures = Vec::new();
    for row in rows() {
        let fleet = FakeFleet::default();
        for (host, script) in row.fleet {
            fleet.host(host, script);
        }
        fleet.host(
            "controller",
            Script::default().on_arm(
                "snapshot",
                row.snapshot
                    .unwrap_or_else(|| Armed::Ends(Reply::ok("snapshot taken\n"))),
            ),
        );
        let ran = run(fleet, row.limit, row.stop_after).await;
        for (host, outcome, detail, expected_steps) in &row.expect {
            let r = ran.host(host);
            // `…` in an expected detail stands for a measured number.
            let detail_matches = match detail.split_once('…') {
                Some((head, tail)) => r.detail.starts_with(head) && r.detail.ends_with(tail),
                None => r.detail == *detail,
            };
            let got = (
                r.outcome,
                if detail_matches {
                    *detail
                } else {
                    r.detail.as_str()
                },
                steps(&ran, host),
            );
            let want = (
                *outcome,
                *detail,
                expected_steps
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            );
            let fix = r.manual_thaw.as_deref().unwrap_or_default();
            if (r.outcome == Outcome::LeftFrozen) != fix.contains("recover R1") {
                failures.push(format!(
                    "{}: {host}: LEFT FROZEN without the fix, or a fix without it: {fix:?}",
                    row.name
                ));
            }
            if got != want {
                failures.push(format!(
                    "{}: {host}\n  got  {got:?}\n  want {want:?}",
                    row.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A journal that cannot take the run's last entry (run-finished) fails the
/// run all the same: every host gets a finding, so the exit code is 4.
#[tokio::test(start_paused = true)]
async fn a_journal_full_at_run_finished_fails_the_run() {
    let fleet = FakeFleet::default();
    fleet.host("solo", healthy("none"));
    fleet.host(
        "controller",
        Script::default().on_arm("snapshot", Armed::Ends(Reply::ok("snapshot taken\n"))),
    );
    let ran = run_with(fleet, &["solo"], None, Some("run-finished")).await;
    let solo = ran.host("solo");
    assert_eq!(solo.outcome, Outcome::Valid, "{solo:?}");
    assert!(
        solo.findings
            .iter()
            .any(|f| f.contains("could not be written completely")),
        "{solo:?}"
    );
    assert!(
        !ran.journal
            .iter()
            .any(|e| matches!(e, Entry::RunFinished { .. })),
        "{:?}",
        ran.journal
    );
    let report = quiesce::review::backup_report::Report {
        run_id: "R1",
        playbook: "table",
        journal: String::new(),
        results: &ran.results,
        skipped: &[],
        unreachable: &[],
        interrupted: false,
    };
    assert_eq!(
        quiesce::review::backup_report::exit_code(quiesce::review::backup_report::Ending::Ran(
            &report
        )),
        quiesce::output::exit_code::FAILED
    );
}

/// The btrfs provider through the executor: what its scripts answer (the
/// preparation's two reads share the step name `snapshot plan`; each reads
/// its own lines), and what a failing, hanging or late snapshot does.
const BTRFS_PLAYBOOK: &str = "\
name: table-btrfs
snapshot: { provider: btrfs, btrfs: { dir: /srv/.snapshots }, timeout: 20s }
freeze_margin: 10s
";

const BTRFS_PLAN: &str = "inst\tIRIS\t/srv/iris\ncpf\tIRIS\t[Databases]\ncpf\tIRIS\tUSER=/srv/db/\ncpf\tIRIS\t[Journal]\ncpf\tIRIS\tCurrentDirectory=/srv/journal/\nfs\t/srv/db\tbtrfs\tU1\t/srv/db\nfs\t/srv/iris/mgr\tbtrfs\tU1\t/srv\nfs\t/srv/journal\tbtrfs\tU1\t/srv/journal\nsnapdir\t/srv\tbtrfs\tU1\n";

fn btrfs_host(snapshot: Armed) -> Script {
    healthy("none")
        .on_run("snapshot plan", Reply::ok(BTRFS_PLAN))
        .on_arm("snapshot", snapshot)
}

#[tokio::test(start_paused = true)]
async fn the_btrfs_provider_fails_hangs_answers_late_or_is_refused_before_any_freeze() {
    let made = "quiesce-snapshot-id /srv/.snapshots/quiesce@R1@solo@0@db\nquiesce-snapshot-id /srv/.snapshots/quiesce@R1@solo@1@srv\nquiesce-snapshot-id /srv/.snapshots/quiesce@R1@solo@2@journal\n";
    let cases: Vec<(&str, Script, Outcome, &str, &[&str])> = vec![
        (
            "taken",
            btrfs_host(Armed::Ends(Reply::ok(made))),
            Outcome::Valid,
            "snapshot taken while frozen",
            &[
                "connect",
                "preflight",
                "snapshot",
                "snapshot",
                "freeze",
                "snapshot",
                "freeze <thaw",
            ],
        ),
        (
            "fails",
            btrfs_host(Armed::Ends(Reply::fail(
                1,
                "btrfs subvolume snapshot -r /srv/db /srv/.snapshots/x failed\n",
            ))),
            Outcome::Failed,
            "btrfs snapshot failed: exit status 1: btrfs subvolume snapshot -r /srv/db /srv/.snapshots/x failed",
            &[
                "connect",
                "preflight",
                "snapshot",
                "snapshot",
                "freeze",
                "snapshot",
                "freeze <freezeFail",
            ],
        ),
        (
            "hangs",
            btrfs_host(Armed::Ends(Reply::Hang)),
            Outcome::Failed,
            "snapshot command timed out after 20s",
            // The end of input tells the VM's guard to kill what still runs.
            &[
                "connect",
                "preflight",
                "snapshot",
                "snapshot",
                "freeze",
                "snapshot",
                "snapshot <eof",
                "freeze <freezeFail",
            ],
        ),
        (
            "answers after its timeout",
            btrfs_host(Armed::Slow(
                Duration::from_secs(25),
                Box::new(Armed::Ends(Reply::ok(made))),
            )),
            Outcome::Failed,
            "snapshot timed out after 20s before its command started",
            &[
                "connect",
                "preflight",
                "snapshot",
                "snapshot",
                "freeze",
                "snapshot",
                "freeze <freezeFail",
            ],
        ),
        (
            "makes fewer than planned",
            btrfs_host(Armed::Ends(Reply::ok(
                "quiesce-snapshot-id /srv/.snapshots/quiesce@R1@solo@0@db\n",
            ))),
            Outcome::Failed,
            "the snapshot script made 1 of 3 snapshots",
            &[
                "connect",
                "preflight",
                "snapshot",
                "snapshot",
                "freeze",
                "snapshot",
                "freeze <freezeFail",
            ],
        ),
    ];
    for (name, script, outcome, detail, expected) in cases {
        let fleet = FakeFleet::default();
        fleet.host("solo", script);
        let ran = run_playbook(fleet, &["solo"], None, None, BTRFS_PLAYBOOK).await;
        let r = ran.host("solo");
        assert_eq!(
            (r.outcome, r.detail.as_str()),
            (outcome, detail),
            "{name}: {r:#?}"
        );
        assert_eq!(steps(&ran, "solo"), expected, "{name}");
        if outcome == Outcome::Valid {
            assert_eq!(r.snapshot_ids.len(), 3, "{name}");
        }
    }
    // A journal off btrfs: the host is left out before anything is frozen.
    let off = BTRFS_PLAN.replace(
        "/srv/journal\tbtrfs\tU1\t/srv/journal",
        "/srv/journal\text4\tE\t-",
    );
    let fleet = FakeFleet::default();
    fleet.host(
        "solo",
        healthy("none").on_run("snapshot plan", Reply::ok(&off)),
    );
    let ran = run_playbook(fleet, &["solo"], None, None, BTRFS_PLAYBOOK).await;
    assert!(ran.results.is_empty(), "{:#?}", ran.results);
    assert_eq!(
        steps(&ran, "solo"),
        ["connect", "preflight", "snapshot", "snapshot"]
    );
}
