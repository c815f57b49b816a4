//! The directories of an instance that a snapshot must hold, read from its
//! configuration file (the CPF: `iris.cpf`, `cache.cpf`): its databases, its
//! journal directories and its write image journal (WIJ).

/// What the CPF says, as absolute directories (outside input: odd lines
/// are ignored, never trusted as paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceDirs {
    pub databases: Vec<String>,
    /// Those of `databases` that are the instance's own (IRISSYS, IRISLIB,
    /// IRISTEMP, CACHESYS…): a verification instance has its own, and
    /// mounts only the application's.
    pub system: Vec<String>,
    pub journals: Vec<String>,
    /// `[config] wijdir`; none: the instance's mgr directory.
    pub wij: Option<String>,
}

/// Reads `[Databases]` (`NAME=DIRECTORY[,…]`), `[Journal]`
/// (`CurrentDirectory`, `AlternateDirectory`) and `[config]` (`wijdir`).
pub fn parse(text: &str) -> InstanceDirs {
    let mut dirs = InstanceDirs::default();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_ascii_lowercase();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match section.as_str() {
            "databases" => {
                // DIRECTORY, then optional fields; a remote database (ECP:
                // `DIR,SERVER`) is not on this VM.
                let mut fields = value.split(',');
                let dir = fields.next().unwrap_or("");
                let remote = fields.next().is_some_and(|f| !f.trim().is_empty());
                if !remote && let Some(dir) = absolute(dir) {
                    if is_system(key.trim()) {
                        push(&mut dirs.system, dir.clone());
                    }
                    push(&mut dirs.databases, dir);
                }
            }
            "journal" if matches!(key.trim(), "CurrentDirectory" | "AlternateDirectory") => {
                if let Some(dir) = absolute(value) {
                    push(&mut dirs.journals, dir);
                }
            }
            "config" if key.trim().eq_ignore_ascii_case("wijdir") => {
                dirs.wij = absolute(value);
            }
            _ => {}
        }
    }
    dirs
}

/// The databases every instance has of its own (InterSystems' names).
fn is_system(name: &str) -> bool {
    const SYSTEM: &[&str] = &[
        "IRISSYS",
        "IRISLIB",
        "IRISTEMP",
        "IRISLOCALDATA",
        "IRISAUDIT",
        "IRISMETRICS",
        "ENSLIB",
        "HSLIB",
        "HSSYS",
        "CACHESYS",
        "CACHELIB",
        "CACHETEMP",
        "CACHEAUDIT",
        "DOCBOOK",
    ];
    SYSTEM.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// A plain absolute directory (the shell gets it quoted, and it must name
/// no parent directory); trailing slashes dropped.
fn absolute(text: &str) -> Option<String> {
    let text = text.trim();
    let ok = text.starts_with('/')
        && text.len() <= 1024
        && !text.chars().any(|c| c.is_control())
        && !text.split('/').any(|part| part == "..");
    ok.then(|| {
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() { "/" } else { trimmed }.to_string()
    })
}

fn push(list: &mut Vec<String>, dir: String) {
    if !list.contains(&dir) {
        list.push(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_databases_journals_and_the_wij() {
        let text = "[ConfigFile]\nVersion=2024.1\n[Databases]\nIRISSYS=/usr/irissys/mgr/\nUSER=/data/db/user/\nREMOTE=/x/,ecpserver\nDUP=/data/db/user\nBAD=relative/dir\nUP=/data/../etc\n[Journal]\nAlternateDirectory=/journal2/\nCurrentDirectory=/journal1/\nFreezeOnError=1\n[config]\nwijdir=/wij/\n";
        assert_eq!(
            parse(text),
            InstanceDirs {
                databases: vec!["/usr/irissys/mgr".into(), "/data/db/user".into()],
                system: vec!["/usr/irissys/mgr".into()],
                journals: vec!["/journal2".into(), "/journal1".into()],
                wij: Some("/wij".into()),
            }
        );
        assert_eq!(parse("[config]\nwijdir=\n").wij, None);
    }

    proptest::proptest! {
        #[test]
        fn any_text_gives_only_absolute_directories(text in "(\\PC|\n|\\[Databases\\]\n|\\[Journal\\]\n|CurrentDirectory=|=/|,){0,200}") {
            let dirs = parse(&text);
            for dir in dirs.databases.iter().chain(&dirs.journals).chain(&dirs.wij) {
                proptest::prop_assert!(dir.starts_with('/'));
                proptest::prop_assert!(!dir.split('/').any(|p| p == ".."));
                proptest::prop_assert!(!dir.chars().any(|c| c.is_control()));
            }
        }
    }
}
