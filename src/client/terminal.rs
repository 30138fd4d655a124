//! What a run printed is the tested code's output, hence hostile: before it
//! reaches a terminal, control characters (cursor moves, title changes,
//! clearing the screen, hyperlinks) are made visible. Colours (SGR
//! sequences) pass through when asked, and are removed otherwise.

use std::borrow::Cow;

/// `text` safe to print: every control character other than a tab becomes
/// U+FFFD, except `ESC [ digits/semicolons m` (a colour), which is kept when
/// `colours` and dropped otherwise.
pub fn sanitize(text: &str, colours: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            if let Some(len) = sgr_len(rest) {
                if colours {
                    out.push_str(&rest[..len]);
                }
                rest = &rest[len..];
                continue;
            }
        }
        if c.is_control() && c != '\t' {
            out.push('\u{FFFD}');
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The length of the colour sequence `text` starts with, if it starts with one.
fn sgr_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\x1b[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (params <= 32 && body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(sanitize("a\tb ünï", false), "a\tb ünï");
    }

    #[test]
    fn colours_pass_only_when_asked() {
        let red = "\x1b[31;1mFAILED\x1b[0m x";
        assert_eq!(sanitize(red, true), red);
        assert_eq!(sanitize(red, false), "FAILED x");
    }

    #[test]
    fn other_escapes_and_controls_become_visible() {
        // clear screen, window title (OSC), a bell, a carriage return, C1 CSI
        let hostile = "\x1b[2Jx\x1b]0;pwned\x07y\rz\u{9b}31m";
        let safe = sanitize(hostile, true);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe:?}");
        assert_eq!(
            safe,
            "\u{FFFD}[2Jx\u{FFFD}]0;pwned\u{FFFD}y\u{FFFD}z\u{FFFD}31m"
        );
    }

    #[test]
    fn an_unterminated_or_long_sequence_is_not_a_colour() {
        assert_eq!(sanitize("\x1b[31", true), "\u{FFFD}[31");
        let long = format!("\x1b[{}m", "1;".repeat(40));
        assert!(sanitize(&long, true).starts_with('\u{FFFD}'));
    }
}
