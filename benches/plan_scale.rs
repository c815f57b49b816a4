//! The controller's side of a large fleet, without any VM: an inventory of
//! N hosts (a third in mirrors of three, the rest standalone) is parsed,
//! selected with `--limit`, preflighted against the scripted fleet (every
//! host answers at once, so only quiesce's own work is timed) and planned.
//! `cargo bench --bench plan_scale` prints the median of 5 runs of each
//! stage for 1,000, 10,000 and 30,000 hosts: time per host should not grow
//! with the fleet (no O(n²) anywhere). No root, no sshd.

use quiesce::backup::{plan, preflight};
use quiesce::inventory::Inventory;
use quiesce::inventory::limit;
use quiesce::inventory::playbook::Playbook;
use quiesce::remote::fake::{FakeFleet, Reply, Script};
use quiesce::remote::runner;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

const PLAYBOOK: &str = "\
name: scale
include_primaries: true
snapshot: { on: controller, command: 'true {vm}', timeout: 20s }
freeze_margin: 10s
";

fn inventory_text(n: usize) -> String {
    let mut text = String::from("defaults: { user: root, platform: iris }\nhosts:\n");
    for i in 0..n {
        let _ = writeln!(
            text,
            "  db{i:05}: {{ address: 10.{}.{}.{} }}",
            i / 65536,
            i / 256 % 256,
            i % 256
        );
    }
    text.push_str("mirrors:\n");
    for m in 0..n / 9 {
        let _ = writeln!(
            text,
            "  M{m}: {{ members: [db{:05}, db{:05}, db{:05}] }}",
            m * 9,
            m * 9 + 1,
            m * 9 + 2
        );
    }
    text
}

fn facts(role: &str) -> Reply {
    let (kind, status) = match role {
        "primary" => ("Failover", "Primary"),
        "backup" => ("Failover", "Backup"),
        "async" => ("Disaster Recovery", "Connected"),
        _ => ("", ""),
    };
    Reply::ok(&format!(
        "hook\tpre-freeze-script\tok\nhook\tpost-thaw-script\tok\nqlist\tIRIS\trunning, since Nov 25\t{kind}\t{status}\n"
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let _inside = runtime.enter();
    println!(
        "{:>7}  {:>9}  {:>9}  {:>10}  {:>9}  {:>9}  {:>11}",
        "hosts", "parse ms", "limit ms", "preflt ms", "plan ms", "total ms", "µs per host"
    );
    for n in [1_000, 10_000, 30_000] {
        let text = inventory_text(n);
        let fleet = FakeFleet::default();
        for i in 0..n {
            let role = match (i % 9 < 3, i % 9) {
                (true, 0) => "primary",
                (true, 1) => "backup",
                (true, _) => "async",
                _ => "",
            };
            fleet.host(
                &format!("db{i:05}"),
                Script::default().on_run("preflight", facts(role)),
            );
        }
        let mut stages: [Vec<f64>; 4] = Default::default();
        for _ in 0..5 {
            let t = Instant::now();
            let inventory = Inventory::parse(Path::new("scale.yml"), &text).expect("inventory");
            let playbook = Playbook::parse(Path::new("scale-playbook.yml"), PLAYBOOK, &inventory)
                .expect("playbook");
            stages[0].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let hosts = limit::select(&inventory, Some("db*:!db0000*")).expect("limit");
            stages[1].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let (events, consumer) = runner::event_stream(true);
            let found = runtime.block_on(preflight::preflight(&hosts, &fleet, 20, &events));
            drop(events);
            let _ = runtime.block_on(consumer);
            let checked = preflight::check(&hosts, &found);
            stages[2].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let planned = plan::plan(&inventory, &playbook, &hosts, &checked.roles).expect("plan");
            stages[3].push(t.elapsed().as_secs_f64() * 1e3);
            assert!(!planned.lanes.is_empty());
        }
        let m: Vec<f64> = stages.into_iter().map(median).collect();
        let total: f64 = m.iter().sum();
        println!(
            "{n:>7}  {:>9.1}  {:>9.1}  {:>10.1}  {:>9.1}  {:>9.1}  {:>11.1}",
            m[0],
            m[1],
            m[2],
            m[3],
            total,
            total * 1e3 / n as f64
        );
    }
}
