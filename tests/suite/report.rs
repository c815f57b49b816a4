//! Logs and reports against the lab: a backup collects its logs and reports
//! the right numbers end to end; the HTML page is rendered by real headless
//! Chromium and checked from what the browser built; `quiesce stun` flags VMs.

use crate::common::Lab;

fn backed_up(net: u8, specs: &[&str]) -> (Lab, String) {
    let lab = Lab::start(net, specs);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["backup", "-p", &playbook, "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("report: "),
        "a backup collects and reports at its end: {run:?}"
    );
    let (run_id, _) = lab.journal();
    (lab, run_id)
}

/// The instance's own LogFile on the VM, as the simulator wrote it.
fn vm_log(lab: &Lab, vm: &str, instance: &str) -> String {
    std::fs::read_to_string(lab.path(&format!("vms/{vm}/log/{instance}-pre_post.log"))).unwrap()
}

#[test]
fn a_backup_collects_its_logs_and_reports_each_instance() {
    let (lab, run_id) = backed_up(
        71,
        &[
            "--mirror",
            "M=p,b,d",
            "p",
            "b",
            "d=iris:IRIS,REP",
            "solo=cache",
        ],
    );
    let run_dir = lab.path("runs").join(&run_id);
    for (vm, files) in [
        (
            "d",
            vec!["snapshot.log", "IRIS-pre_post.log", "REP-pre_post.log"],
        ),
        ("solo", vec!["snapshot.log", "CACHE-pre_post.log"]),
    ] {
        for f in files {
            assert!(
                run_dir.join("hosts").join(vm).join(f).is_file(),
                "{vm}/{f} collected"
            );
        }
    }
    let run = lab.run(&["report", &run_id, "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(
        hosts
            .iter()
            .map(|h| h["host"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["d", "b", "p", "solo"]
    );
    for host in hosts {
        for instance in host["instances"].as_array().unwrap() {
            let (vm, name) = (
                host["host"].as_str().unwrap(),
                instance["instance"].as_str().unwrap(),
            );
            let log = vm_log(&lab, vm, name);
            // What a restore needs is exactly what the instance wrote.
            let journal = instance["journal_file"].as_str().unwrap();
            assert!(
                log.contains(&format!("Journal file switched to:\n{journal}\n")),
                "{vm}/{name}: {log}"
            );
            let marker = instance["marker_offset"].as_u64().unwrap();
            assert!(
                log.contains(&format!("offset {marker} of {journal}")),
                "{vm}/{name}"
            );
            assert!(
                instance["warnings"][0]
                    .as_str()
                    .unwrap()
                    .ends_with("/mgr/scratch/ is not being journalled")
            );
            assert_eq!(instance["valid"], true);
            assert!(
                instance["suspended"].as_u64().unwrap() <= instance["resumed"].as_u64().unwrap()
            );
            // The window is what the database felt: resumed minus suspended
            // (no timing assertion: a loaded CI machine may take seconds).
            assert_eq!(
                instance["window_ms"].as_u64().unwrap(),
                instance["resumed"].as_u64().unwrap() - instance["suspended"].as_u64().unwrap(),
                "{vm}/{name}"
            );
        }
        assert!(host["stun_us"].as_u64().unwrap() > 0);
    }
    assert_eq!(report["summary"]["instances"], 5);
    assert!(
        report["summary"]["max_host_window_ms"].as_u64().unwrap()
            >= report["summary"]["median_host_window_ms"].as_u64().unwrap()
    );

    let run = lab.run(&["report", &run_id]);
    assert!(
        run.stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("HOST  INSTANCE  FREEZE REQ  SUSPENDED  RESUME REQ  RESUMED"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("freeze window from the instance logs: max "),
        "{run:?}"
    );
}

#[test]
fn the_html_report_renders_in_chromium() {
    let (lab, run_id) = backed_up(
        72,
        &[
            "--mirror", "M=p,b,d", "--group", "g=a1,a2", "p", "b", "d", "a1", "a2", "solo",
        ],
    );
    let html = lab.path("runs").join(&run_id).join("report.html");
    let dom = crate::common::chromium_dom(&lab, &html);
    assert!(dom.contains("<svg id=\"timeline\""), "{dom}");
    // What the browser drew: a labelled row and a freeze bar per VM, a row per instance.
    let count = |needle: &str| dom.matches(needle).count();
    for vm in ["p", "b", "d", "a1", "a2", "solo"] {
        assert_eq!(
            count(&format!("class=\"freeze valid\" data-host=\"{vm}\"")),
            1,
            "{vm}'s freeze bar: {dom}"
        );
        assert_eq!(
            count(&format!("class=\"stun\" data-host=\"{vm}\"")),
            1,
            "{vm}'s stun mark"
        );
        assert!(
            dom.contains(&format!(
                "class=\"instance-window\" data-host=\"{vm}\" data-instance=\"IRIS\""
            )),
            "{vm}'s instance bar"
        );
    }
    assert!(
        dom.contains(">mirror M</text>") && dom.contains(">group g</text>"),
        "lanes are labelled"
    );
    // Mirror order as drawn: the async member left of the backup, the primary last.
    let bar_x = |vm: &str| -> f64 {
        let at = dom
            .find(&format!("class=\"freeze valid\" data-host=\"{vm}\" x=\""))
            .unwrap();
        let rest = &dom[at..];
        let start = rest.find("x=\"").unwrap() + 3;
        rest[start..].split('"').next().unwrap().parse().unwrap()
    };
    assert!(
        bar_x("d") < bar_x("b") && bar_x("b") < bar_x("p"),
        "d {} b {} p {}",
        bar_x("d"),
        bar_x("b"),
        bar_x("p")
    );
    // The QoS limit is drawn for the mirror, with each member's stun against it.
    assert_eq!(count("class=\"qos-limit\" data-lane=\"M\""), 1);
    assert_eq!(count("class=\"qos-half\" data-lane=\"M\""), 1);
    assert!(dom.contains(">QoS 8.000 s</text>"));
    for vm in ["p", "b", "d"] {
        assert_eq!(count(&format!("class=\"stun-qos\" data-host=\"{vm}\"")), 1);
    }
    assert_eq!(
        count("class=\"stun-qos\" data-host=\"solo\""),
        0,
        "only mirror members face a QoS timeout"
    );
    assert_eq!(count("<tr><td>"), 6, "a table row per instance");
}

#[test]
fn logs_cope_with_unreachable_hosts_rotated_and_large_files() {
    let lab = Lab::start(73, &["x", "y", "z"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    lab.sh(
        "x",
        "/usr/sbin/pre-freeze-script && /usr/sbin/post-thaw-script",
    );
    // A large current log and a rotated, compressed one.
    lab.sh("y", "head -c 3000000 /dev/zero | tr '\\0' 'x' | fold -w 99 > /var/log/snapshot.log; echo 'Tue Nov 24 03:00:00 UTC 2026: last line' >> /var/log/snapshot.log");
    lab.sh("y", "echo 'Tue Nov 24 02:00:00 UTC 2026: Pre freeze script started' | gzip > /var/log/snapshot.log.1.gz");
    lab.lab("kill-sshd", &["z"]);
    let run = lab.run(&["logs", "--since", "1h", "--max-bytes", "100000", "--quiet"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("x: snapshot.log ("), "{run:?}");
    assert!(
        run.stdout
            .contains("y: snapshot.log (100000 bytes, last part only), snapshot.log.1 ("),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "z: NOT COLLECTED: z ({}.13:22): cannot connect",
            lab.net
        )),
        "{run:?}"
    );
    let dir = std::fs::read_dir(lab.path("runs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("logs-"))
        .unwrap()
        .path();
    let y = std::fs::read_to_string(dir.join("hosts/y/snapshot.log")).unwrap();
    assert!(
        y.ends_with("UTC 2026: last line\n"),
        "the end of a large file is what is kept"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("hosts/y/snapshot.log.1")).unwrap(),
        "Tue Nov 24 02:00:00 UTC 2026: Pre freeze script started\n"
    );
}

#[test]
fn stun_flags_vms_near_or_over_the_qos_timeout() {
    let (lab, _) = backed_up(74, &["--mirror", "M=p,b", "p", "b", "solo"]);
    std::fs::write(
        lab.path("vms/b/vmware.log"),
        "2015-10-27T22:01:42.149Z| vcpu-0| I120: Checkpoint_Unstun: vm stopped for 188405 us\n2023-01-01T00:00:01.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 4500000 us\n",
    )
    .unwrap();
    std::fs::write(
        lab.path("vms/solo/vmware.log"),
        "2023-01-01T00:00:01.000Z In(05) vcpu-0 - CPT: vm was stunned for 38123 us\n",
    )
    .unwrap();
    let logs: Vec<String> = ["p", "b", "solo"]
        .iter()
        .map(|vm| {
            lab.path(&format!("vms/{vm}/vmware.log"))
                .display()
                .to_string()
        })
        .collect();
    // A pure analysis by default: nothing is written.
    let mut args = vec!["stun"];
    args.extend(logs.iter().map(String::as_str));
    let history_file = lab.path("runs/stun-history.json");
    let before = std::fs::read(&history_file).ok();
    let run = lab.run(&args);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        std::fs::read(&history_file).ok(),
        before,
        "stun alone wrote the history"
    );
    // --record adds the stuns to the history (the backup's QoS guard reads it).
    args.push("--record");
    let run = lab.run(&args);
    assert_eq!(
        run.code, 1,
        "b is within half of its mirror's QoS timeout: {run:?}"
    );
    assert_eq!(lab.run(&args).code, 1, "recorded twice");
    let line = |vm: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{vm} ")))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("b"),
        "b 2 4.500s 4.500s 8.000s 3.500s mirror M NEAR: at least half the QoS timeout"
    );
    assert_eq!(
        line("solo"),
        "solo 1 0.038s 0.038s 8.000s 7.962s default ok"
    );
    // The measured stuns feed the backup's QoS guard.
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("runs/stun-history.json")).unwrap())
            .unwrap();
    // Each stun is kept with its own time (the guard reads the most recent by time).
    let b = history["b"].as_array().unwrap();
    assert_eq!(
        b.iter()
            .filter(|m| m["us"] == 4500000 && m["at"] == 1672531201000u64)
            .count(),
        1,
        "{history}"
    );

    let mut args = vec!["stun", "--qos", "4s"];
    args.extend(logs.iter().map(String::as_str));
    let run = lab.run(&args);
    assert_eq!(run.code, 4, "over the QoS timeout: {run:?}");
    assert!(
        run.stdout
            .contains("OVER: longer than the QoS timeout (a failover)"),
        "{run:?}"
    );
}

#[test]
fn a_vm_in_new_york_speaking_german_reports_its_times_in_utc() {
    let lab = Lab::start(171, &["ny"]);
    lab.lab("zone", &["ny", "America/New_York", "de_DE.UTF-8"]);
    // The VM's sessions really are German and in New York.
    let german = std::process::Command::new("date")
        .arg("-d@0")
        .env("LANG", "de_DE.UTF-8")
        .env("TZ", "America/New_York")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&german.stdout).contains("Dez"),
        "the de_DE.UTF-8 locale is generated (install-deps.sh): {german:?}"
    );
    let (_, zone) = lab.sh("ny", "date +%Z");
    assert!(matches!(zone.trim(), "EST" | "EDT"), "{zone}");
    let run = lab.quiesce(&["deploy", "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["backup", "-p", &playbook, "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (run_id, _) = lab.journal();
    let run_dir = lab.path(&format!("runs/{run_id}"));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let host = &results["hosts"][0];
    let ms = |v: &serde_json::Value| v.as_u64().unwrap();
    let (freeze_started, frozen_at) = (ms(&host["freeze_started"]), ms(&host["frozen_at"]));
    let (thaw_started, thawed_at) = (ms(&host["thaw_started"]), ms(&host["thawed_at"]));
    let instance = &report["hosts"][0]["instances"][0];
    // The instance's LogFile has whole seconds of New York time without a
    // zone: converted with the offset the hook logged, they fall within a
    // second of the controller's own UTC clock.
    let requested = ms(&instance["freeze_requested"]);
    let resumed = ms(&instance["resumed"]);
    assert!(
        requested + 1000 >= freeze_started && requested <= frozen_at + 1000,
        "freeze requested {requested}, controller {freeze_started}..{frozen_at}: {instance}"
    );
    assert!(
        resumed + 1000 >= thaw_started && resumed <= thawed_at + 1000,
        "resumed {resumed}, controller {thaw_started}..{thawed_at}: {instance}"
    );
    // The hook's own log stays English and states the offset.
    let log = std::fs::read_to_string(run_dir.join("hosts/ny/snapshot.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.ends_with("Attempting to freeze IRIS"))
        .unwrap();
    assert!(
        line.contains(" EST -0500 ") || line.contains(" EDT -0400 "),
        "{line}"
    );
}

#[test]
fn vmware_logs_are_read_from_the_esxi_host_for_stun_and_for_the_report() {
    let lab = Lab::start(174, &["--esxi", "esx1", "vm1", "vm2"]);
    assert_eq!(lab.quiesce(&["deploy", "--quiet"]).code, 0);
    let playbook = lab.path("playbook.yml").display().to_string();
    let run = lab.run(&["backup", "-p", &playbook, "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (run_id, _) = lab.journal();
    let run_dir = lab.path(&format!("runs/{run_id}"));
    // The report's copy is the datastore's file, read through the ESXi host.
    assert_eq!(
        std::fs::read(run_dir.join("hosts/vm1/vmware.log")).unwrap(),
        std::fs::read(lab.path("vms/vm1/vmware.log")).unwrap()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    let stuns = report["hosts"][0]["vmware_log"]["stuns"]
        .as_array()
        .unwrap();
    assert_eq!(
        stuns.len(),
        1,
        "the Checkpoint_Unstun/CPT pair is one stun: {stuns:?}"
    );
    assert_eq!(stuns[0]["cause"], "snapshot-create");
    assert_eq!(stuns[0]["snapshot"], "quiesce-0");
    // The run's stun is the Checkpoint_Unstun figure, not the larger CPT one.
    assert_eq!(results["hosts"][0]["stun_us"], stuns[0]["us"]);

    // `stun` with no files reads them from the ESXi host, rotated ones too.
    std::fs::write(
        lab.path("vms/vm1/vmware-1.log"),
        "2026-01-01T00:00:00.000Z In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for 5000000 us\n",
    )
    .unwrap();
    let run = lab.run(&["stun", "--quiet"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("snapshot create 'quiesce-0'"),
        "{run:?}"
    );
    let run = lab.run(&["stun", "--quiet", "--rotated", "3", "--limit", "vm1"]);
    assert_eq!(run.code, 1, "the rotated log's 5 s stun is NEAR: {run:?}");
    assert!(run.stdout.contains("vm1: 2 stuns"), "{run:?}");

    // The ESXi host's key is checked like any other: unknown, refused.
    let known = std::fs::read_to_string(lab.known_hosts()).unwrap();
    let without: String = known
        .lines()
        .filter(|l| !l.starts_with(&format!("{}.99 ", lab.net)))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(lab.known_hosts(), without).unwrap();
    let run = lab.run(&["stun", "--quiet"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("esx1") && run.stderr.contains("host key"),
        "{run:?}"
    );
}
