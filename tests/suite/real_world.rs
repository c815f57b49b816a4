//! Outside input read right, not only without panicking: files nobody here
//! wrote (`../shared/samples/real-world/`, sources in its SOURCES.md) give
//! exactly what their sources say.

use quiesce::backup::preflight::HostFacts;
use quiesce::hooks::{HookKind, render};
use quiesce::inventory::Inventory;
use std::path::{Path, PathBuf};

fn real_world(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/samples/real-world")
        .join(path)
}

/// A directory with `iris` and `ccontrol` that print `line` for `qlist`, and
/// `iris session` / `csession` that say "not suspended" (exit 3).
fn fake_instance_tools(line: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let qlist = dir.path().join("qlist.txt");
    std::fs::write(&qlist, format!("{line}\n")).unwrap();
    let tool = format!(
        "#!/bin/sh\ncase $1 in qlist) cat '{}' ;; *) exit 3 ;; esac\n",
        qlist.display()
    );
    for name in ["iris", "ccontrol"] {
        let path = dir.path().join(name);
        std::fs::write(&path, &tool).unwrap();
        std::process::Command::new("chmod")
            .args(["0755", path.to_str().unwrap()])
            .status()
            .unwrap();
    }
    let csession = dir.path().join("csession");
    std::fs::write(&csession, "#!/bin/sh\nexit 3\n").unwrap();
    std::process::Command::new("chmod")
        .args(["0755", csession.to_str().unwrap()])
        .status()
        .unwrap();
    dir
}

/// What preflight reads of one qlist line on a host of `platform`: the
/// deployed hook's `facts`, parsed as preflight parses them.
fn preflight_reads(line: &str, platform: &str) -> HostFacts {
    let (_, facts) = hook_says(line, platform, "facts");
    HostFacts::parse(&facts)
}

/// What the deployed hook's `status` says of one qlist line, and its exit status.
fn hook_status(line: &str, platform: &str) -> (i32, String) {
    hook_says(line, platform, "status")
}

/// The deployed hook's ACTION run against one qlist line: exit status, stdout.
fn hook_says(line: &str, platform: &str, action: &str) -> (i32, String) {
    let tools = fake_instance_tools(line);
    let logs = tempfile::tempdir().unwrap();
    let text = format!(
        "hosts:\n  db: {{ address: 10.0.0.1, platform: {platform}, log_dir: {} }}\n",
        logs.path().display()
    );
    let inventory = Inventory::parse(Path::new("i.yml"), &text).unwrap();
    let hook = render(HookKind::PreFreeze, &inventory.hosts[0]);
    let standard = "PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";
    assert!(hook.contains(standard));
    let hook = hook.replace(
        standard,
        &format!(
            "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
            tools.path().display()
        ),
    );
    let file = tools.path().join("pre-freeze-script");
    std::fs::write(&file, hook).unwrap();
    let out = std::process::Command::new("/bin/sh")
        .arg(&file)
        .arg(action)
        .output()
        .unwrap();
    let status: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("recorded "))
        .map(|l| format!("{l}\n"))
        .collect();
    (out.status.code().unwrap_or(-1), status)
}

#[test]
fn every_real_qlist_line_is_classified_by_the_hooks_and_by_preflight() {
    let text = std::fs::read_to_string(real_world("iris/qlist-lines.tsv"))
        .expect("CI keeps shared/ beside the checkout");
    let mut lines: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (label, line) = l.split_once('\t').unwrap();
            (label.to_string(), line.to_string())
        })
        .collect();
    // Our own line in the same format: the state field says `hung`.
    lines.push((
        "hung (ours)".into(),
        "HUNG^/usr/irissys/^2024.1.0.262.0^running, since Mon Nov 23 10:00:00 2026^iris.cpf^1972^52773^62972^hung^IRIS^^^/usr/irissys/mgr/".into(),
    ));
    // label → (name, running, health, mirror type, mirror status, hook status)
    let expected = |label: &str,
                    line: &str|
     -> (
        &'static str,
        bool,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match label {
            "cacheqlist" | "durableqlist" | "ensembleqlist" | "irisqlist" => {
                ("INSTTEST", true, "ok", "", "", "INSTTEST running\n")
            }
            "legacyqlist" => ("INSTTEST", false, "", "", "", ""),
            "mirrorqlist" => (
                "INSTTEST",
                true,
                "ok",
                "Failover",
                "Primary",
                "INSTTEST running\n",
            ),
            "warnqlist" => ("INSTTEST", true, "warn", "", "", "INSTTEST running\n"),
            "comment" if line.contains("^down") => ("DOCKER", false, "", "", "", ""),
            "comment" => ("DOCKER", true, "ok", "", "", "DOCKER running\n"),
            "hung (ours)" => ("HUNG", true, "hung", "", "", "HUNG hung\n"),
            other => panic!("a qlist sample this test does not know: {other}"),
        }
    };
    let mut failures = Vec::new();
    for (label, line) in &lines {
        let (name, running, health, member_type, member_status, status) = expected(label, line);
        for platform in ["iris", "cache"] {
            let facts = preflight_reads(line, platform);
            let got = facts
                .instances
                .iter()
                .map(|i| (i.name.as_str(), i.running, i.health.as_str()))
                .collect::<Vec<_>>();
            if got != [(name, running, health)] {
                failures.push(format!("preflight {platform} {label}: {got:?}"));
            }
            if platform == "iris" {
                let roles: Vec<(&str, &str)> = facts
                    .roles
                    .iter()
                    .map(|(_, t, s)| (t.as_str(), s.as_str()))
                    .collect();
                let want: Vec<(&str, &str)> = if member_type.is_empty() {
                    Vec::new()
                } else {
                    vec![(member_type, member_status)]
                };
                if roles != want {
                    failures.push(format!("preflight roles {label}: {roles:?}"));
                }
            }
            let (code, said) = hook_status(line, platform);
            if (code, said.as_str()) != (0, status) {
                failures.push(format!("hook {platform} {label}: exit {code}: {said:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_real_vmware_log_yields_the_stuns_and_snapshots_its_source_lists() {
    use quiesce::backup::vmware_log::{Cause, SnapshotEnd, parse};
    // (directory, stuns in µs with their cause, snapshots as (name, quiesced, memory, end))
    type Expected = (
        &'static str,
        Vec<(u64, Cause)>,
        Vec<(&'static str, Option<bool>, Option<bool>, SnapshotEnd)>,
    );
    let other = Cause::Other;
    let table: Vec<Expected> = vec![
        (
            "VIRTEN-ESX60-SNAP",
            vec![(188405, Cause::SnapshotCreate)],
            vec![("Backup", Some(true), Some(false), SnapshotEnd::Unknown)],
        ),
        (
            "BCM-KB417644-VSAN8",
            vec![(385332, other), (408370, other)],
            vec![("__G#_BACk##__", None, None, SnapshotEnd::Done)],
        ),
        (
            "BCM-KB417644-ASPUBLISHED",
            vec![(385332, other), (408370, other)],
            vec![("__G#_BACk##__", None, None, SnapshotEnd::Done)],
        ),
        ("BCM-KB432796-HOTADD", vec![(18500, other)], vec![]),
        ("BCM-KB311905-USB", vec![(11223, other)], vec![]),
        (
            "FLYNN-3952-VEEAM",
            vec![],
            vec![(
                "VEEAM BACKUP TEMPORARY SNAPSHOT",
                Some(true),
                Some(false),
                SnapshotEnd::QuiesceTimedOut,
            )],
        ),
        (
            "ESXI8-VIMCMD-OPID",
            vec![],
            vec![(
                "snapshot_exfill",
                Some(false),
                Some(true),
                SnapshotEnd::Done,
            )],
        ),
        ("BLOG-2012-CONSOLIDATE", vec![(3658889, other)], vec![]),
        (
            "KB2039754-ASPUBLISHED",
            vec![(3711025, other), (574655, other), (2191061, other)],
            vec![],
        ),
        ("WS17-SUSPEND-FULL", vec![], vec![]),
        ("PLAYER15-OFFSET-FULL", vec![], vec![]),
    ];
    let listed: Vec<String> = std::fs::read_dir(real_world("vmware"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for dir in &listed {
        assert!(
            table.iter().any(|(d, ..)| d == dir),
            "a vmware.log sample this test does not know: {dir}"
        );
    }
    let mut failures = Vec::new();
    for (dir, stuns, snapshots) in table {
        let bytes = std::fs::read(real_world(&format!("vmware/{dir}/vmware.log"))).unwrap();
        let log = parse(&String::from_utf8_lossy(&bytes));
        let got_stuns: Vec<(u64, Cause)> = log.stuns.iter().map(|s| (s.us, s.cause)).collect();
        let got_snapshots: Vec<(&str, Option<bool>, Option<bool>, SnapshotEnd)> = log
            .snapshots
            .iter()
            .map(|s| (s.name.as_str(), s.quiesced, s.memory, s.end))
            .collect();
        if got_stuns != stuns || got_snapshots != snapshots {
            failures.push(format!("{dir}: {got_stuns:?} {got_snapshots:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stun_times_keep_their_utc_offsets_and_twins_are_one_stun() {
    use quiesce::backup::vmware_log::parse;
    // The Checkpoint_Unstun/CPT pairs of the vSAN 8 KB, 29 ms apart, are one
    // stun each, at the Checkpoint_Unstun line's time.
    let bytes = std::fs::read(real_world("vmware/BCM-KB417644-VSAN8/vmware.log")).unwrap();
    let log = parse(&String::from_utf8_lossy(&bytes));
    let at: Vec<Option<u64>> = log.stuns.iter().map(|s| s.at).collect();
    let expect = |t: &str| Some(t.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64);
    assert_eq!(
        at,
        [
            expect("2025-10-28T13:33:06.256Z"),
            expect("2025-10-29T13:27:47.591Z")
        ]
    );
    // Workstation/Player write local time with its offset (`-07:00|`).
    let log = parse(
        "2019-07-28T14:41:16.915-07:00| vcpu-0| I125: Checkpoint_Unstun: vm stopped for 9 us\n",
    );
    assert_eq!(log.stuns[0].at, expect("2019-07-28T21:41:16.915Z"));
}
