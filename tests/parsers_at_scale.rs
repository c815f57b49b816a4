//! Every parser of outside input, fed files nobody here wrote
//! (`../shared/samples/real-world/`: vmware.log of every ESXi and Workstation
//! version, IRIS logs, qlist lines, Ansible inventories) whole, repeated to
//! megabytes, and with each file glued into one huge line: none may panic.
//! (Speed is a benchmark's business; a quadratic parser shows here as a test
//! that takes minutes.)

use quiesce::hook_logs::{parse_instance_log, parse_snapshot_log};
use quiesce::inventory::Inventory;
use quiesce::preflight::HostFacts;
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
    let _ = quiesce::vmware_log::parse(text);
    let _ = parse_snapshot_log(text);
    let _ = parse_instance_log(text);
    let _ = HostFacts::parse(text).role();
    let _ = quiesce::facts::parse_probe(text);
    let _ = Inventory::parse(Path::new("sample.yml"), text);
    let _ = quiesce::thaw_verdict::outcomes(text);
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

#[test]
fn the_journal_reader_takes_real_world_bytes_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    for file in samples() {
        let bytes = std::fs::read(&file).unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, bytes.repeat((SCALE / bytes.len().max(1)).max(1))).unwrap();
        let text = quiesce::journal::Journal::read_text(&path).unwrap();
        assert!(text.entries.is_empty(), "{}", file.display());
        let _ = quiesce::journal::left_frozen(&text.entries);
    }
}
