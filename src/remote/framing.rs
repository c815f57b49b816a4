//! What a remote script printed, without what the login shell printed
//! before it. sshd runs every command through the user's login shell, whose
//! rc files on real servers print banners (on stdout and stderr), take a
//! second, or worse. Every script quiesce sends first prints `BEGIN` on
//! both streams (`shell::sh_command`); everything before it is the shell's,
//! and is dropped — unless the script never began (a broken rc file, sudo
//! asking for a password), when it is all the explanation there is.

/// The line each script prints first, on stdout and on stderr.
pub const BEGIN: &str = "quiesce-begin-3f1e";

/// What the shell may print before the script, at most (then it is kept).
const HELD_MAX: usize = 256 << 10;

/// One stream (stdout or stderr) of a remote command.
#[derive(Debug, Default)]
pub struct Framing {
    begun: bool,
    /// What came before the BEGIN line, until it is found.
    held: Vec<u8>,
}

impl Framing {
    /// Takes `data` as it arrives; what belongs to the script goes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>, push: fn(&mut Vec<u8>, &[u8])) {
        if self.begun {
            push(out, data);
            return;
        }
        self.held.extend_from_slice(data);
        if let Some(after) = after_begin(&self.held) {
            self.begun = true;
            push(out, &self.held[after..]);
            self.held = Vec::new();
        } else if self.held.len() > HELD_MAX {
            // No marker in 256 KiB: not ours to drop.
            self.begun = true;
            push(out, &std::mem::take(&mut self.held));
        }
    }

    /// The command ended: if the script never began, what the shell printed
    /// is the output (it says why).
    pub fn end(&mut self, out: &mut Vec<u8>, push: fn(&mut Vec<u8>, &[u8])) {
        if !self.begun {
            self.begun = true;
            push(out, &std::mem::take(&mut self.held));
        }
    }
}

/// Where the script's own output starts: after the first BEGIN line that
/// starts a line.
fn after_begin(held: &[u8]) -> Option<usize> {
    let line = format!("{BEGIN}\n");
    let line = line.as_bytes();
    let mut from = 0;
    while let Some(found) = find(&held[from..], line) {
        let at = from + found;
        if at == 0 || held[at - 1] == b'\n' {
            return Some(at + line.len());
        }
        from = at + 1;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(data);
    }

    fn framed(chunks: &[&[u8]], ended: bool) -> Vec<u8> {
        let mut framing = Framing::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framing.feed(chunk, &mut out, push);
        }
        if ended {
            framing.end(&mut out, push);
        }
        out
    }

    #[test]
    fn the_shells_banner_is_dropped_even_split_across_packets() {
        let text = format!("Welcome to db1!\nLast login: x\n{BEGIN}\nhook\tok\n");
        let whole = framed(&[text.as_bytes()], true);
        assert_eq!(whole, b"hook\tok\n");
        for cut in 1..text.len() {
            let (a, b) = text.as_bytes().split_at(cut);
            assert_eq!(framed(&[a, b], true), b"hook\tok\n", "cut at {cut}");
        }
    }

    #[test]
    fn a_script_that_never_began_keeps_what_the_shell_said() {
        assert_eq!(
            framed(&[b"sudo: a password is required\n"], true),
            b"sudo: a password is required\n"
        );
        assert_eq!(framed(&[b"not yet"], false), b"");
    }

    #[test]
    fn only_a_whole_line_begins_the_script() {
        let text = format!("echo x{BEGIN}\n{BEGIN}\nours\n{BEGIN}\n");
        assert_eq!(
            framed(&[text.as_bytes()], true),
            format!("ours\n{BEGIN}\n").as_bytes()
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_keeps_everything_after_begin(banner in "\\PC{0,200}", body in "\\PC{0,200}", cut in 0usize..500) {
            let text = format!("{banner}\n{BEGIN}\n{body}");
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            let out = framed(&[&bytes[..cut], &bytes[cut..]], true);
            proptest::prop_assert!(out.ends_with(body.as_bytes()));
        }
    }
}
