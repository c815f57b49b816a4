//! Quoting for the remote POSIX shell: every dynamic word sent to a host goes through here.

/// Single-quotes `word` for a POSIX shell. Any byte string is safe inside
/// single quotes except the quote itself, which is closed, escaped and reopened.
pub fn quote(word: &str) -> String {
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// `sh -c SCRIPT sh ARGS...` as one command line, every part quoted. The
/// script runs in the C locale: what it parses (`stat`, `date`, tool
/// messages) reads the same on a VM whose sessions speak German.
pub fn sh_command(script: &str, args: &[&str]) -> String {
    // The first line on both streams marks where the script's output starts
    // (see framing.rs): what the login shell's rc files print comes before.
    let begin = crate::remote::framing::BEGIN;
    let script = format!(
        "LC_ALL=C; export LC_ALL\nprintf '%s\\n' {begin}; printf '%s\\n' {begin} >&2\n{script}"
    );
    let mut line = format!("/bin/sh -c {} sh", quote(&script));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

/// Shell lines that set and export `env`, for a command run through a
/// remote shell (values single-quoted).
pub fn env_prelude(env: &[(String, String)]) -> String {
    env.iter()
        .map(|(k, v)| format!("{k}={}; export {k}\n", quote(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn echo_through_sh(word: &str) -> String {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(word)))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quoted_words_survive_the_shell() {
        for word in [
            "",
            "plain",
            "it's",
            "$(id)",
            "`id`",
            "a b\tc\nd",
            "'",
            "\\'\"",
            "*?[]~&;|<>",
        ] {
            assert_eq!(echo_through_sh(word), word);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_survives_the_shell(word in "[^\u{0}]{0,40}") {
            proptest::prop_assert_eq!(echo_through_sh(&word), word);
        }
    }
}
