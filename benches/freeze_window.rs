//! Freeze-window overhead, quiesce against the naive way, side by side on one
//! lab: `cargo bench --bench freeze_window` (as root; see docs/benchmarks.md).
//!
//! The window is what the database feels: from the simulated instance's
//! `frozen` event to its `thawed` event (its own log). The overhead is that
//! window minus the snapshot command's own time. The naive way is what most
//! sites script: `ssh host pre-freeze-script`, the snapshot, `ssh host
//! post-thaw-script`, each ssh a new OpenSSH connection.

// The bench uses part of the test support.
#[allow(dead_code)]
#[path = "../tests/suite/common/mod.rs"]
mod common;

use common::Lab;
use quiesce::backup::journal::Entry;
use std::process::Command;
use std::time::Instant;

const VMS: [&str; 5] = ["v1", "v2", "v3", "v4", "v5"];

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

struct Sample {
    quiesce: Vec<f64>,
    naive: Vec<f64>,
}

/// `rounds` of quiesce then naive on the five VMs; `parallel`: all five at
/// once (quiesce --forks 5), else one host at a time (--forks 1).
fn measure(lab: &Lab, rounds: usize, parallel: bool) -> Sample {
    let lab_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
    let dir = lab.dir.path().display().to_string();
    let playbook = lab.path("playbook.yml").display().to_string();
    let forks = if parallel { "5" } else { "1" };
    let before: Vec<usize> = VMS
        .iter()
        .map(|vm| lab.freeze_intervals(vm).len())
        .collect();
    let mut quiesce_snapshot_ms: Vec<Vec<f64>> = Vec::new();
    let mut naive_snapshot_ms: Vec<Vec<f64>> = Vec::new();
    for round in 0..rounds {
        let run = lab.run(&["backup", "-p", &playbook, "--quiet", "--forks", forks]);
        assert_eq!(run.code, 0, "{run:?}");
        let (_, entries) = lab.journal();
        let at = |vm: &str, started: bool| {
            entries
                .iter()
                .find_map(|e| match e {
                    Entry::SnapshotStarted { host, at } if started && host == vm => Some(*at),
                    Entry::SnapshotFinished { host, at, .. } if !started && host == vm => Some(*at),
                    _ => None,
                })
                .unwrap()
        };
        quiesce_snapshot_ms.push(
            VMS.iter()
                .map(|vm| (at(vm, false) - at(vm, true)) as f64)
                .collect(),
        );
        std::fs::remove_dir_all(lab.path("runs")).unwrap();

        let naive_host = |i: usize, vm: &str| {
            let (key, known, address) = (
                lab.path("id_ed25519"),
                lab.known_hosts(),
                format!("{}.{}", lab.net, 11 + i),
            );
            let ssh = |hook: &str| {
                let status = Command::new("ssh")
                    .args(["-o", "BatchMode=yes", "-i"])
                    .arg(&key)
                    .arg("-o")
                    .arg(format!("UserKnownHostsFile={}", known.display()))
                    .arg(format!("root@{address}"))
                    .arg(hook)
                    .status()
                    .unwrap();
                assert!(status.success());
            };
            ssh("/usr/sbin/pre-freeze-script");
            let started = Instant::now();
            let out = Command::new("bash")
                .args([lab_sh, "snapshot", &dir, vm])
                .output()
                .unwrap();
            assert!(out.status.success());
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            ssh("/usr/sbin/post-thaw-script");
            ms
        };
        let times: Vec<f64> = if parallel {
            std::thread::scope(|scope| {
                let handles: Vec<_> = VMS
                    .iter()
                    .enumerate()
                    .map(|(i, vm)| scope.spawn(move || naive_host(i, vm)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            })
        } else {
            VMS.iter()
                .enumerate()
                .map(|(i, vm)| naive_host(i, vm))
                .collect()
        };
        naive_snapshot_ms.push(times);
        eprintln!(
            "{} round {}/{rounds} done",
            if parallel {
                "parallel"
            } else {
                "one at a time"
            },
            round + 1
        );
    }
    // Windows from the instances' own logs: in each round quiesce froze each
    // VM first, then the naive way.
    let mut sample = Sample {
        quiesce: Vec::new(),
        naive: Vec::new(),
    };
    for (v, vm) in VMS.iter().enumerate() {
        let intervals = &lab.freeze_intervals(vm)[before[v]..];
        assert_eq!(intervals.len(), 2 * rounds, "{vm}: {intervals:?}");
        for round in 0..rounds {
            let (q, n) = (intervals[2 * round], intervals[2 * round + 1]);
            sample
                .quiesce
                .push((q.1 - q.0) as f64 - quiesce_snapshot_ms[round][v]);
            sample
                .naive
                .push((n.1 - n.0) as f64 - naive_snapshot_ms[round][v]);
        }
    }
    sample
}

fn main() {
    let rounds: usize = std::env::var("QUIESCE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let lab = Lab::start(90, &VMS);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    println!(
        "freeze-window overhead per host = window (instance log: frozen -> thawed) minus snapshot command time"
    );
    println!(
        "{} VMs x {rounds} rounds on the loopback lab; the snapshot stuns each VM ~50 ms\n",
        VMS.len()
    );
    println!(
        "{:<44} {:>9} {:>9} {:>16}",
        "", "median", "p90", "quiesce / naive"
    );
    for parallel in [false, true] {
        let mut sample = measure(&lab, rounds, parallel);
        let (q50, q90) = (
            percentile(&mut sample.quiesce, 0.5),
            percentile(&mut sample.quiesce, 0.9),
        );
        let (n50, n90) = (
            percentile(&mut sample.naive, 0.5),
            percentile(&mut sample.naive, 0.9),
        );
        let mode = if parallel {
            "5 hosts at once"
        } else {
            "one host at a time"
        };
        println!(
            "{:<44} {:>7.1}ms {:>7.1}ms",
            format!("quiesce backup, {mode}"),
            q50,
            q90
        );
        println!(
            "{:<44} {:>7.1}ms {:>7.1}ms {:>16.2}",
            format!("naive ssh/snapshot/ssh, {mode}"),
            n50,
            n90,
            q50 / n50
        );
    }
    println!("\ntarget: quiesce / naive <= 0.50, and quiesce's median < 100 ms per host");
}
