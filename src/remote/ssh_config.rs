//! `~/.ssh/config` read as OpenSSH reads it: `Host` patterns (with `!`),
//! `Match host|originalhost|user|localuser|all|final`, `Include`, first
//! obtained value wins (IdentityFile accumulates), `%` tokens; only the
//! keywords quiesce uses are kept, the others are ignored as they do not
//! change how quiesce connects.

use crate::output::error::{Error, Pos};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a value came from: `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value and the line that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub at: Place,
}

/// One configuration line, its Include already read.
#[derive(Debug, Clone)]
enum Item {
    Option {
        at: Place,
        column: usize,
        keyword: String,
        args: Vec<String>,
    },
    /// `Include`: the files its patterns matched, each read.
    Include { files: Vec<(PathBuf, Vec<Item>)> },
}

/// The files read, in order (the user's, then the system's).
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    files: Vec<(PathBuf, Vec<Item>)>,
}

/// `StrictHostKeyChecking`, as far as quiesce accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    Yes,
    AcceptNew,
}

/// What the configuration gives for one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub hostname: Option<Sourced<String>>,
    pub user: Option<Sourced<String>>,
    pub port: Option<Sourced<u16>>,
    pub identity_files: Vec<Sourced<PathBuf>>,
    pub identities_only: Option<Sourced<bool>>,
    /// `ProxyJump`: the hops in order; empty for `none`.
    pub proxy_jump: Option<Sourced<Vec<String>>>,
    pub user_known_hosts: Option<Sourced<Vec<PathBuf>>>,
    pub global_known_hosts: Option<Sourced<Vec<PathBuf>>>,
    pub strict: Option<Sourced<Strict>>,
    pub connect_timeout: Option<Sourced<Duration>>,
    pub server_alive_interval: Option<Sourced<Duration>>,
    pub server_alive_count_max: Option<Sourced<u32>>,
}

/// What the inventory already decided: obtained first, as `ssh -o` is.
#[derive(Debug, Clone, Default)]
pub struct Preset {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
}

const MAX_INCLUDE_DEPTH: usize = 16;

impl SshConfig {
    /// Reads `files` in order (a missing one holds nothing). `Include` paths
    /// that are relative are taken from `~/.ssh` for the user's file and from
    /// `/etc/ssh` for the system's, as OpenSSH does.
    pub fn load(files: &[PathBuf]) -> Result<SshConfig, Error> {
        let mut config = SshConfig::default();
        for file in files {
            let base = if file.starts_with("/etc/ssh") {
                PathBuf::from("/etc/ssh")
            } else {
                home().join(".ssh")
            };
            if let Some(items) = read_file(file, &base, 0, true)? {
                config.files.push((file.clone(), items));
            }
        }
        Ok(config)
    }

    /// Parses one file's text (tests; `Include` is relative to `base`).
    pub fn parse(file: &Path, text: &str, base: &Path) -> Result<SshConfig, Error> {
        let items = parse_text(file, text, base, 0)?;
        Ok(SshConfig {
            files: vec![(file.to_path_buf(), items)],
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Evaluates the configuration for `alias` (the name given to ssh).
    pub fn resolve(&self, alias: &str, preset: &Preset) -> Result<Resolved, Error> {
        let mut state = State {
            alias,
            preset,
            out: Resolved::default(),
            raw_identity: Vec::new(),
            raw_known: None,
            raw_global: None,
        };
        for (_, items) in &self.files {
            let mut active = true;
            state.walk(items, &mut active, false)?;
        }
        state.finish()
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn read_file(
    file: &Path,
    base: &Path,
    depth: usize,
    missing_ok: bool,
) -> Result<Option<Vec<Item>>, Error> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(Some(parse_text(
            file,
            &String::from_utf8_lossy(&bytes),
            base,
            depth,
        )?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => Ok(None),
        Err(source) => Err(Error::File {
            path: file.to_path_buf(),
            action: "read the ssh_config",
            source,
        }),
    }
}

fn input_err(file: &Path, line: usize, column: usize, message: String, hint: &str) -> Error {
    Error::input(file, Pos { line, column }, message, hint)
}

fn parse_text(file: &Path, text: &str, base: &Path, depth: usize) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let column = raw.len() - trimmed.len() + 1;
        let key_end = trimmed
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(trimmed.len());
        let keyword = trimmed[..key_end].to_ascii_lowercase();
        let mut rest = trimmed[key_end..].trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            rest = r.trim_start();
        }
        let args = split_args(rest).map_err(|why| {
            input_err(
                file,
                line,
                column,
                format!("{keyword}: {why}"),
                "close the quote",
            )
        })?;
        let at = Place {
            file: file.to_path_buf(),
            line,
        };
        if keyword == "include" {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(input_err(
                    file,
                    line,
                    column,
                    "Include nested too deeply (a file that includes itself?)".into(),
                    "OpenSSH stops at 16 levels too; break the loop",
                ));
            }
            let mut files = Vec::new();
            for pattern in &args {
                let pattern = expand_tilde(pattern);
                let pattern = if Path::new(&pattern).is_absolute() {
                    PathBuf::from(pattern)
                } else {
                    base.join(pattern)
                };
                let mut matched: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
                    .map(|paths| paths.filter_map(Result::ok).collect())
                    .unwrap_or_default();
                matched.sort();
                for path in matched {
                    if let Some(included) = read_file(&path, base, depth + 1, true)? {
                        files.push((path, included));
                    }
                }
            }
            items.push(Item::Include { files });
            continue;
        }
        items.push(Item::Option {
            at,
            column,
            keyword,
            args,
        });
    }
    Ok(items)
}

/// Splits arguments as OpenSSH does: whitespace, "double" or 'single' quotes.
fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        if first == '#' {
            return Ok(args);
        }
        let mut arg = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => {
                            if let Some(n) = chars.next() {
                                arg.push(n)
                            }
                        }
                        Some(other) => arg.push(other),
                        None => return Err("unterminated quote".into()),
                    }
                }
            } else {
                arg.push(c);
            }
        }
        args.push(arg);
    }
}

fn expand_tilde(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => home().join(rest).to_string_lossy().into_owned(),
        None if path == "~" => home().to_string_lossy().into_owned(),
        None => path.to_string(),
    }
}

/// OpenSSH's pattern lists: `*` and `?` wildcards, comma lists, `!` negates.
/// A negated match makes the whole list false.
pub fn match_list(name: &str, list: &str) -> bool {
    match_patterns(name, list.split(',').filter(|p| !p.is_empty()))
}

/// Any pattern matches `name` (case-insensitively) and no `!pattern` does.
/// `Host` gives its patterns one a word, `Match` as a comma list.
fn match_patterns<'a>(name: &str, patterns: impl Iterator<Item = &'a str>) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if wildcard(&name, &pattern.to_ascii_lowercase()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards over whole strings.
pub fn wildcard(text: &str, pattern: &str) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn sourced<T>(at: &Place, value: T) -> Sourced<T> {
    Sourced {
        value,
        at: at.clone(),
    }
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

struct State<'a> {
    alias: &'a str,
    preset: &'a Preset,
    out: Resolved,
    raw_identity: Vec<Sourced<String>>,
    raw_known: Option<Sourced<Vec<String>>>,
    raw_global: Option<Sourced<Vec<String>>>,
}

impl State<'_> {
    /// The host name `Match host` sees: the inventory's, else HostName so far.
    fn hostname(&self) -> String {
        if let Some(h) = &self.preset.hostname {
            return h.clone();
        }
        match &self.out.hostname {
            Some(h) => h.value.replace("%h", self.alias).replace("%%", "%"),
            None => self.alias.to_string(),
        }
    }

    fn user(&self) -> String {
        self.preset
            .user
            .clone()
            .or_else(|| self.out.user.as_ref().map(|u| u.value.clone()))
            .unwrap_or_else(local_user)
    }

    fn walk(&mut self, items: &[Item], active: &mut bool, never: bool) -> Result<(), Error> {
        for item in items {
            match item {
                Item::Include { files } => {
                    let outer = *active;
                    for (_, included) in files {
                        self.walk(included, active, never || !outer)?;
                        *active = outer;
                    }
                }
                Item::Option {
                    at,
                    column,
                    keyword,
                    args,
                } => {
                    let err = |message: String, hint: &str| {
                        input_err(&at.file, at.line, *column, message, hint)
                    };
                    match keyword.as_str() {
                        "host" => {
                            if args.is_empty() {
                                return Err(err(
                                    "Host without a pattern".into(),
                                    "write e.g. `Host db-*`",
                                ));
                            }
                            *active = !never && self.host_matches(args);
                        }
                        "match" => *active = !never && self.match_line(args, &err)?,
                        _ if *active => self.option(at, keyword, args, &err)?,
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn host_matches(&self, patterns: &[String]) -> bool {
        match_patterns(self.alias, patterns.iter().map(String::as_str))
    }

    fn match_line(
        &self,
        args: &[String],
        err: &dyn Fn(String, &str) -> Error,
    ) -> Result<bool, Error> {
        let mut all = true;
        let mut i = 0;
        if args.is_empty() {
            return Err(err(
                "Match without a criterion".into(),
                "write e.g. `Match host db-*`",
            ));
        }
        while i < args.len() {
            let (negated, criterion) = match args[i].strip_prefix('!') {
                Some(c) => (true, c.to_ascii_lowercase()),
                None => (false, args[i].to_ascii_lowercase()),
            };
            i += 1;
            let result = match criterion.as_str() {
                "all" => true,
                // quiesce never canonicalises host names: one pass, which is the final one.
                "canonical" => false,
                "final" => true,
                "host" | "originalhost" | "user" | "localuser" => {
                    let Some(list) = args.get(i) else {
                        return Err(err(
                            format!("Match {criterion} without a pattern"),
                            "write e.g. `Match host db-*`",
                        ));
                    };
                    i += 1;
                    let subject = match criterion.as_str() {
                        "host" => self.hostname(),
                        "originalhost" => self.alias.to_string(),
                        "user" => self.user(),
                        _ => local_user(),
                    };
                    match_list(&subject, list)
                }
                other => {
                    return Err(err(
                        format!("Match {other} cannot be evaluated by quiesce"),
                        "quiesce evaluates Match host, originalhost, user, localuser, all, canonical and final; rewrite the block with those, or pass --ssh-config with a file that has none",
                    ));
                }
            };
            all &= result != negated;
        }
        Ok(all)
    }

    fn option(
        &mut self,
        at: &Place,
        keyword: &str,
        args: &[String],
        err: &dyn Fn(String, &str) -> Error,
    ) -> Result<(), Error> {
        let first = || -> Result<&String, Error> {
            args.first()
                .ok_or_else(|| err(format!("{keyword} without a value"), "give it a value"))
        };
        let yes_no = |value: &str| -> Result<bool, Error> {
            match value.to_ascii_lowercase().as_str() {
                "yes" | "true" => Ok(true),
                "no" | "false" => Ok(false),
                other => Err(err(
                    format!("{keyword} {other}: not yes or no"),
                    "write yes or no",
                )),
            }
        };
        let seconds = |value: &str| -> Result<Duration, Error> {
            crate::output::duration::parse(value)
                .or_else(|_| value.parse::<u64>().map(Duration::from_secs))
                .map_err(|_| {
                    err(
                        format!("{keyword} {value}: not a number of seconds"),
                        "write e.g. 10",
                    )
                })
        };
        match keyword {
            "hostname" if self.out.hostname.is_none() => {
                self.out.hostname = Some(sourced(at, first()?.clone()))
            }
            "user" if self.out.user.is_none() => {
                self.out.user = Some(sourced(at, first()?.clone()))
            }
            "port" if self.out.port.is_none() => {
                let value = first()?;
                let port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        err(
                            format!("Port {value} is not a TCP port"),
                            "a number from 1 to 65535",
                        )
                    })?;
                self.out.port = Some(sourced(at, port));
            }
            "identityfile" => {
                let value = first()?;
                if !value.eq_ignore_ascii_case("none") {
                    self.raw_identity.push(Sourced {
                        value: value.clone(),
                        at: at.clone(),
                    });
                }
            }
            "identitiesonly" if self.out.identities_only.is_none() => {
                self.out.identities_only = Some(sourced(at, yes_no(first()?)?))
            }
            "proxyjump" if self.out.proxy_jump.is_none() => {
                let value = first()?;
                let hops = if value.eq_ignore_ascii_case("none") {
                    Vec::new()
                } else {
                    value.split(',').map(str::to_string).collect()
                };
                self.out.proxy_jump = Some(sourced(at, hops));
            }
            "proxycommand" if self.out.proxy_jump.is_none() => {
                let value = first()?;
                if value.eq_ignore_ascii_case("none") {
                    self.out.proxy_jump = Some(sourced(at, Vec::new()));
                } else {
                    return Err(err(
                        format!(
                            "ProxyCommand applies to {}; quiesce does not run commands to connect",
                            self.alias
                        ),
                        "write the bastions as `ProxyJump bastion1,bastion2` (`ssh -W %h:%p bastion` is `ProxyJump bastion`)",
                    ));
                }
            }
            "userknownhostsfile" if self.raw_known.is_none() => {
                self.raw_known = Some(Sourced {
                    value: args.to_vec(),
                    at: at.clone(),
                })
            }
            "globalknownhostsfile" if self.raw_global.is_none() => {
                self.raw_global = Some(Sourced {
                    value: args.to_vec(),
                    at: at.clone(),
                })
            }
            "stricthostkeychecking" if self.out.strict.is_none() => {
                let value = first()?.to_ascii_lowercase();
                let strict = match value.as_str() {
                    "yes" | "ask" | "true" => Strict::Yes,
                    "accept-new" => Strict::AcceptNew,
                    _ => {
                        return Err(err(
                            format!(
                                "StrictHostKeyChecking {value} applies to {}: quiesce never trusts an unknown or changed host key without being asked by name",
                                self.alias
                            ),
                            "use `StrictHostKeyChecking accept-new` (or quiesce's --accept-new=HOST) to record a new key, or remove the line for these hosts",
                        ));
                    }
                };
                self.out.strict = Some(sourced(at, strict));
            }
            "connecttimeout" if self.out.connect_timeout.is_none() => {
                self.out.connect_timeout = Some(sourced(at, seconds(first()?)?))
            }
            "serveraliveinterval" if self.out.server_alive_interval.is_none() => {
                self.out.server_alive_interval = Some(sourced(at, seconds(first()?)?))
            }
            "serveralivecountmax" if self.out.server_alive_count_max.is_none() => {
                let value = first()?;
                let n = value.parse::<u32>().map_err(|_| {
                    err(
                        format!("ServerAliveCountMax {value} is not a number"),
                        "write e.g. 3",
                    )
                })?;
                self.out.server_alive_count_max = Some(sourced(at, n));
            }
            _ => {}
        }
        Ok(())
    }

    /// Expands `%` tokens and `~` once every value is known, as OpenSSH does.
    fn finish(mut self) -> Result<Resolved, Error> {
        let hostname = self.hostname();
        if let Some(h) = &mut self.out.hostname {
            h.value = h.value.replace("%h", self.alias).replace("%%", "%");
        }
        let user = self.user();
        let port = self
            .preset
            .port
            .or(self.out.port.as_ref().map(|p| p.value))
            .unwrap_or(22);
        let expand = |raw: &Sourced<String>| -> Result<PathBuf, Error> {
            let mut out = String::new();
            let mut chars = raw.value.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('d') => out.push_str(&home().to_string_lossy()),
                    Some('h') => out.push_str(&hostname),
                    Some('n') => out.push_str(self.alias),
                    Some('p') => out.push_str(&port.to_string()),
                    Some('r') => out.push_str(&user),
                    Some('u') => out.push_str(&local_user()),
                    other => {
                        return Err(input_err(
                            &raw.at.file,
                            raw.at.line,
                            1,
                            format!(
                                "`%{}` in {} is a token quiesce does not expand",
                                other.map(String::from).unwrap_or_default(),
                                raw.value
                            ),
                            "quiesce expands %%, %d, %h, %n, %p, %r and %u",
                        ));
                    }
                }
            }
            Ok(PathBuf::from(expand_tilde(&out)))
        };
        for raw in &self.raw_identity {
            let path = expand(raw)?;
            if !self.out.identity_files.iter().any(|f| f.value == path) {
                self.out.identity_files.push(Sourced {
                    value: path,
                    at: raw.at.clone(),
                });
            }
        }
        let list =
            |raw: &Option<Sourced<Vec<String>>>| -> Result<Option<Sourced<Vec<PathBuf>>>, Error> {
                let Some(raw) = raw else { return Ok(None) };
                let mut files = Vec::new();
                for v in raw.value.iter().filter(|v| !v.eq_ignore_ascii_case("none")) {
                    files.push(expand(&Sourced {
                        value: v.clone(),
                        at: raw.at.clone(),
                    })?);
                }
                Ok(Some(Sourced {
                    value: files,
                    at: raw.at.clone(),
                }))
            };
        self.out.user_known_hosts = list(&self.raw_known)?;
        self.out.global_known_hosts = list(&self.raw_global)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str, alias: &str, preset: Preset) -> Result<Resolved, Error> {
        SshConfig::parse(Path::new("config"), text, Path::new("/nonexistent"))?
            .resolve(alias, &preset)
    }

    #[test]
    fn first_obtained_value_wins_and_identity_files_accumulate() {
        let text = "Host db-*\n  User ops\n  IdentityFile /k/db\nHost *\n  User other\n  Port 2222\n  IdentityFile /k/all\n";
        let r = resolve(text, "db-a1", Preset::default()).unwrap();
        assert_eq!(r.user.unwrap().value, "ops");
        assert_eq!(r.port.unwrap().value, 2222);
        let files: Vec<_> = r.identity_files.iter().map(|f| f.value.clone()).collect();
        assert_eq!(files, [PathBuf::from("/k/db"), PathBuf::from("/k/all")]);
    }

    #[test]
    fn negated_pattern_excludes_the_whole_line() {
        let text = "Host db-* !db-dr\n  ProxyJump bastion\n";
        assert!(
            resolve(text, "db-a1", Preset::default())
                .unwrap()
                .proxy_jump
                .is_some()
        );
        assert!(
            resolve(text, "db-dr", Preset::default())
                .unwrap()
                .proxy_jump
                .is_none()
        );
    }

    #[test]
    fn inventory_values_are_obtained_first() {
        let text = "Host db1\n  HostName 10.9.9.9\n  User ops\n  Port 2200\n";
        let preset = Preset {
            hostname: Some("10.1.1.1".into()),
            user: Some("root".into()),
            port: None,
        };
        let r = resolve(text, "db1", preset).unwrap();
        // The config's values are still read; the caller keeps the inventory's.
        assert_eq!(r.port.unwrap().value, 2200);
    }

    #[test]
    fn match_host_sees_the_hostname_and_originalhost_the_alias() {
        let text = "Host db1\n  HostName 10.1.0.11\nMatch host 10.1.*\n  ProxyJump b1\nMatch originalhost db1 user root\n  Port 2022\n";
        let r = resolve(
            text,
            "db1",
            Preset {
                user: Some("root".into()),
                ..Preset::default()
            },
        )
        .unwrap();
        assert_eq!(r.proxy_jump.unwrap().value, ["b1"]);
        assert_eq!(r.port.unwrap().value, 2022);
        assert_eq!(r.hostname.unwrap().value, "10.1.0.11");
    }

    #[test]
    fn proxy_jump_none_stops_later_ones() {
        let text = "Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n";
        let r = resolve(text, "bastion", Preset::default()).unwrap();
        assert_eq!(r.proxy_jump.unwrap().value, Vec::<String>::new());
    }

    #[test]
    fn strict_no_is_refused_and_accept_new_kept() {
        let e = resolve(
            "Host *\n  StrictHostKeyChecking no\n",
            "x",
            Preset::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("config:2:3"), "{e}");
        let r = resolve(
            "Host x\n StrictHostKeyChecking=accept-new\n",
            "x",
            Preset::default(),
        )
        .unwrap();
        assert_eq!(r.strict.unwrap().value, Strict::AcceptNew);
    }

    #[test]
    fn match_exec_is_refused_with_its_place() {
        let e = resolve("Match exec \"true\"\n  User x\n", "h", Preset::default()).unwrap_err();
        assert!(e.to_string().contains("config:1:1"), "{e}");
    }

    #[test]
    fn include_in_a_block_applies_only_when_the_block_matches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inc.conf"), "User included\n").unwrap();
        let text = "Host other\n  Include inc.conf\nHost *\n  User fallback\n";
        let config = SshConfig::parse(Path::new("config"), text, dir.path()).unwrap();
        let r = config.resolve("db1", &Preset::default()).unwrap();
        assert_eq!(r.user.unwrap().value, "fallback");
        let r = config.resolve("other", &Preset::default()).unwrap();
        assert_eq!(r.user.unwrap().value, "included");
    }

    #[test]
    fn tokens_expand_in_identity_files_and_known_hosts() {
        let text = "Host db1\n  HostName 10.0.0.5\n  User ops\n  IdentityFile /keys/%r@%h-%n\n  UserKnownHostsFile /kh/%h /kh/second\n";
        let r = resolve(text, "db1", Preset::default()).unwrap();
        assert_eq!(
            r.identity_files[0].value,
            PathBuf::from("/keys/ops@10.0.0.5-db1")
        );
        assert_eq!(
            r.user_known_hosts.unwrap().value,
            [PathBuf::from("/kh/10.0.0.5"), PathBuf::from("/kh/second")]
        );
    }

    #[test]
    fn equals_and_quotes_are_read() {
        let r = resolve(
            "Host=db1\nIdentityFile=\"/a b/key\"\n",
            "db1",
            Preset::default(),
        )
        .unwrap();
        assert_eq!(r.identity_files[0].value, PathBuf::from("/a b/key"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}", alias in "[a-z0-9.-]{1,12}") {
            if let Ok(c) = SshConfig::parse(Path::new("c"), &text, Path::new("/nonexistent")) {
                let _ = c.resolve(&alias, &Preset::default());
            }
        }
    }
}
