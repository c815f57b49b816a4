//! Every parser of outside input, fed files nobody here wrote
//! (`../shared/samples/real-world/`: vmware.log of every ESXi and Workstation
//! version, IRIS logs, qlist lines, Ansible inventories) whole, repeated to
//! megabytes, and with each file glued into one huge line: none may panic.
//! (Speed is a benchmark's business; a quadratic parser shows here as a test
//! that takes minutes.)

use quiesce::backup::preflight::HostFacts;
use quiesce::inventory::Inventory;
use quiesce::review::hook_logs::{parse_instance_log, parse_snapshot_log};
use std::path::{Path, PathBuf};

/// The size limit of a collected log (`--max-bytes` defaults to 8 MiB).
const SCALE: usize = 8 << 20;

fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/real-world");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (CI keeps shared/ beside the checkout)",
                dir.display()
            )
        }) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 15, "the real-world samples: {files:?}");
    files
}

/// The text, the text repeated to about SCALE bytes, and the text as one line.
fn shapes(text: &str) -> [String; 3] {
    let repeats = (SCALE / text.len().max(1)).max(1);
    let big = text.repeat(repeats);
    let one_line = big.replace('\n', " ");
    [text.to_string(), big, one_line]
}

fn every_parser(text: &str) {
    let inventory =
        Inventory::parse(Path::new("i.yml"), "hosts:\n  db1: { address: 10.0.0.1 }\n").unwrap();
    let _ =
        quiesce::inventory::playbook::Playbook::parse(Path::new("sample.yml"), text, &inventory);
    let _ = quiesce::backup::vmware_log::parse(text);
    let _ = parse_snapshot_log(text);
    let _ = parse_instance_log(text);
    let _ = HostFacts::parse(text).role();
    let _ = quiesce::hooks::facts::parse_probe(text);
    let _ = Inventory::parse(Path::new("sample.yml"), text);
    let _ = quiesce::backup::thaw_verdict::outcomes(text);
}

#[test]
fn real_world_files_whole_repeated_and_glued_never_panic() {
    for file in samples() {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for shape in shapes(&text) {
            every_parser(&shape);
        }
    }
}

/// What a person may leave in a run directory or the runs directory:
/// any bytes in results.json, logs.json, a host's logs, the stun history.
fn edited_run_directory(bytes: &[u8]) {
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("r1");
    std::fs::create_dir_all(run.join("hosts/db1")).unwrap();
    for name in [
        "results.json",
        "logs.json",
        "journal.jsonl",
        "hosts/db1/snapshot.log",
        "hosts/db1/IRIS-pre_post.log",
    ] {
        std::fs::write(run.join(name), bytes).unwrap();
    }
    std::fs::write(runs.path().join("stun-history.json"), bytes).unwrap();
    let _ = quiesce::review::run_report::build(&run);
    let _ = quiesce::backup::stun_history::StunHistory::load(runs.path());
}

#[test]
fn an_edited_run_directory_never_panics() {
    for file in samples() {
        let bytes = std::fs::read(&file).unwrap();
        edited_run_directory(&bytes);
        edited_run_directory(&bytes.repeat((SCALE / bytes.len().max(1)).max(1)));
    }
}

/// Lines of every sample, for the property test below.
fn sample_lines() -> Vec<String> {
    samples()
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(&std::fs::read(f).unwrap())
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Real-world lines in any order and number, joined by newlines or glued
    /// into one line, up to about a megabyte: no parser panics.
    #[test]
    fn shuffled_real_world_lines_never_panic(
        picks in proptest::collection::vec(proptest::num::usize::ANY, 1..200),
        repeat in 1usize..60,
        glue in proptest::bool::ANY,
    ) {
        let lines = sample_lines();
        let chosen: Vec<&str> = picks.iter().map(|i| lines[i % lines.len()].as_str()).collect();
        let text = chosen.join(if glue { " " } else { "\n" }).repeat(repeat);
        every_parser(&text);
        edited_run_directory(text.as_bytes());
    }
}

#[test]
fn the_journal_reader_takes_real_world_bytes_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    for file in samples() {
        let bytes = std::fs::read(&file).unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, bytes.repeat((SCALE / bytes.len().max(1)).max(1))).unwrap();
        let text = quiesce::backup::journal::Journal::read_text(&path).unwrap();
        assert!(text.entries.is_empty(), "{}", file.display());
        let _ = quiesce::backup::journal::left_frozen(&text.entries);
    }
}
