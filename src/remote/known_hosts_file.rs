//! A known_hosts file read the way OpenSSH reads it (sshd(8) "SSH_KNOWN_HOSTS
//! FILE FORMAT"): `[@marker] patterns keytype key [comment]`, patterns
//! comma-separated with `*` and `?` wildcards and `!` negation, hashed names
//! (`|1|salt|hash`, HMAC-SHA1), `[host]:port` for other ports, `@revoked`
//! keys never accepted and `@cert-authority` lines (CA keys for host
//! certificates). What it cannot evaluate (a key type it cannot read, a CA
//! line) is kept as such, so that no new key is learned past it.

use base64::Engine;
use hmac::{KeyInit, Mac};
use russh::keys::PublicKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
pub struct Line {
    /// The file it is in.
    pub file: std::path::PathBuf,
    /// 1-based, as an editor shows it.
    pub number: usize,
    pub marker: Marker,
    pub patterns: String,
    /// None: a key this reader cannot evaluate (unknown type, bad base64).
    pub key: Option<PublicKey>,
}

/// The entries of a known_hosts file; comments, blank and malformed lines
/// (fewer than three fields) are skipped, as OpenSSH skips them.
pub fn parse(text: &str) -> Vec<Line> {
    parse_file(std::path::Path::new("known_hosts"), text)
}

/// `parse`, each line naming `file`.
pub fn parse_file(file: &std::path::Path, text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            m if m.starts_with('@') => continue,
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = match fields.next() {
                Some(f) => f,
                None => continue,
            };
        }
        let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
            continue;
        };
        lines.push(Line {
            file: file.to_path_buf(),
            number: index + 1,
            marker,
            patterns: first.to_string(),
            key: PublicKey::from_openssh(&format!("{kind} {data}")).ok(),
        });
    }
    lines
}

/// How a line's patterns stand to a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMatch {
    Yes,
    No,
    /// A `!` pattern matched: the line is not for this host, whatever else matches.
    Negated,
}

/// OpenSSH's `match_hostname` over a comma-separated pattern list; `host` is
/// `name` for port 22, `[name]:port` otherwise, lower-case.
pub fn host_matches(patterns: &str, host: &str) -> HostMatch {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return if hashed_matches(hashed, host) {
            HostMatch::Yes
        } else {
            HostMatch::No
        };
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(&pattern.to_ascii_lowercase(), host) {
            if negated {
                return HostMatch::Negated;
            }
            matched = true;
        }
    }
    if matched {
        HostMatch::Yes
    } else {
        HostMatch::No
    }
}

/// `|1|SALT|HASH`: HMAC-SHA1 of the host name keyed with the salt.
fn hashed_matches(hashed: &str, host: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (engine.decode(salt), engine.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(host.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` any run of characters, `?` any one character (OpenSSH's match_pattern).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The name OpenSSH looks a host up by.
pub fn lookup_name(address: &str, port: u16) -> String {
    let address = address.to_ascii_lowercase();
    if port == 22 {
        address
    } else {
        format!("[{address}]:{port}")
    }
}

/// What the file says of `key` offered by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A plain line for the host holds this key.
    Known,
    /// An `@revoked` line holds this key: never accepted.
    Revoked {
        file: std::path::PathBuf,
        line: usize,
    },
    /// Lines for the host hold other keys (first line given).
    Changed {
        file: std::path::PathBuf,
        line: usize,
    },
    /// Nothing for the host, but a line that could be for it cannot be
    /// evaluated (a CA line, an unreadable key): nothing may be learned.
    Unevaluable {
        file: std::path::PathBuf,
        line: usize,
    },
    /// Nothing at all for the host.
    Nothing,
}

/// The `@revoked` line that holds `key`, for any host: a revoked key is
/// refused whatever else the files say.
pub fn revoked<'a>(lines: &'a [Line], key: &PublicKey) -> Option<&'a Line> {
    lines
        .iter()
        .filter(|l| l.marker == Marker::Revoked)
        .find(|l| {
            l.key
                .as_ref()
                .is_some_and(|k| k.key_data() == key.key_data())
        })
}

/// The `@cert-authority` lines for `address:port`.
pub fn authorities_for<'a>(lines: &'a [Line], address: &str, port: u16) -> Vec<&'a Line> {
    let host = lookup_name(address, port);
    lines
        .iter()
        .filter(|l| l.marker == Marker::CertAuthority)
        .filter(|l| host_matches(&l.patterns, &host) == HostMatch::Yes)
        .collect()
}

pub fn decide(lines: &[Line], address: &str, port: u16, key: &PublicKey) -> Decision {
    let host = lookup_name(address, port);
    let for_host: Vec<&Line> = lines
        .iter()
        .filter(|l| host_matches(&l.patterns, &host) == HostMatch::Yes)
        .collect();
    let same = |l: &&Line| {
        l.key
            .as_ref()
            .is_some_and(|k| k.key_data() == key.key_data())
    };
    if let Some(line) = revoked(lines, key) {
        return Decision::Revoked {
            file: line.file.clone(),
            line: line.number,
        };
    }
    if for_host
        .iter()
        .filter(|l| l.marker == Marker::None)
        .any(same)
    {
        return Decision::Known;
    }
    if let Some(line) = for_host
        .iter()
        .find(|l| l.marker == Marker::None && l.key.is_some())
    {
        return Decision::Changed {
            file: line.file.clone(),
            line: line.number,
        };
    }
    if let Some(line) = for_host
        .iter()
        .find(|l| l.marker == Marker::CertAuthority || l.key.is_none())
    {
        return Decision::Unevaluable {
            file: line.file.clone(),
            line: line.number,
        };
    }
    Decision::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_as_openssh_matches_them() {
        assert_eq!(host_matches("db1,10.0.0.1", "10.0.0.1"), HostMatch::Yes);
        assert_eq!(
            host_matches("*.example.net", "db1.example.net"),
            HostMatch::Yes
        );
        assert_eq!(host_matches("db?", "db12"), HostMatch::No);
        assert_eq!(
            host_matches("10.0.0.*,!10.0.0.9", "10.0.0.9"),
            HostMatch::Negated
        );
        assert_eq!(
            host_matches("10.0.0.*,!10.0.0.9", "10.0.0.8"),
            HostMatch::Yes
        );
        assert_eq!(
            host_matches("[10.0.0.1]:2222", "[10.0.0.1]:2222"),
            HostMatch::Yes
        );
        assert_eq!(host_matches("10.0.0.1", "[10.0.0.1]:2222"), HostMatch::No);
        assert_eq!(host_matches("DB1", "db1"), HostMatch::Yes);
        // `ssh-keygen -H` of "db1" with a fixed salt.
        let engine = base64::engine::general_purpose::STANDARD;
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"db1");
        let hash = mac.finalize().into_bytes();
        let hashed = format!("|1|{}|{}", engine.encode(salt), engine.encode(hash));
        assert_eq!(host_matches(&hashed, "db1"), HostMatch::Yes);
        assert_eq!(host_matches(&hashed, "db2"), HostMatch::No);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}", host in "[a-z0-9.\\[\\]:]{0,20}") {
            for line in parse(&text) {
                let _ = host_matches(&line.patterns, &host);
            }
            let _ = glob(&text, &host);
        }
    }
}
