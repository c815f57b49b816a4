//! What reaches an operator's terminal: text from a VM (its stderr, a
//! hook's records, a tool's message) is shown, never obeyed. Every human
//! output goes through `scrub`, so an escape sequence a VM prints cannot
//! move the cursor, erase another host's LEFT FROZEN line, set the title or
//! the clipboard (OSC 52), or ring the bell. The escapes are JSON's own
//! (`\u001b`, `\r`): serde_json never writes a raw C0 control, and a raw DEL
//! or C1 one can only be inside a string, so scrubbed JSON still decodes to
//! the exact bytes, and stdout needs one rule whatever its format.

use std::borrow::Cow;

/// True for what a terminal may take as a command: C0 controls but tab and
/// newline, DEL, and C1 controls (U+0080..U+009F: a terminal reading
/// UTF-8 may act on them as on ESC-prefixed ones).
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// `text` with every control shown as a JSON escape (`\u001b`, `\r`,
/// `\u009b`); unchanged (borrowed) when there is none.
pub fn scrub(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !is_control(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Writes `text` and a newline on stderr, scrubbed.
pub fn eprint_line(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{}", scrub(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_obeyed() {
        assert_eq!(
            scrub("db1: \u{1b}]0;owned\u{7}\u{1b}[1A\u{1b}[2Kok\r\n\tnext"),
            "db1: \\u001b]0;owned\\u0007\\u001b[1A\\u001b[2Kok\\r\n\tnext"
        );
        assert_eq!(scrub("\u{9b}2J \u{7f} \u{0}"), "\\u009b2J \\u007f \\u0000");
        assert!(matches!(scrub("plain text\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn scrubbed_json_decodes_to_the_same_value() {
        let value = serde_json::json!({"detail": "\u{1b}]52;c;eA==\u{7}\r\u{7f}\u{9b}\u{85}x\n"});
        let text = serde_json::to_string(&value).unwrap();
        let back: serde_json::Value = serde_json::from_str(&scrub(&text)).unwrap();
        assert_eq!(back, value);
    }

    proptest::proptest! {
        #[test]
        fn nothing_a_terminal_obeys_is_left(text in "\\PC{0,50}|[\\x00-\\x1f\\x7f-\\u{9f}a-z]{0,50}") {
            let out = scrub(&text);
            proptest::prop_assert!(!out.chars().any(is_control));
            let json = serde_json::to_string(&text).unwrap();
            let back: String = serde_json::from_str(&scrub(&json)).unwrap();
            proptest::prop_assert_eq!(back, text);
        }
    }
}
