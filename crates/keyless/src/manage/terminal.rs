//! Text from the server on an operator's terminal. Values such as a token's `iss` and
//! `sub` or a client id are stored exactly as a workload sent them, so they may hold an
//! ESC byte (colours, cursor moves, a fake prompt), a newline or a tab (a forged row in
//! a table or a TSV line), or a bidirectional override that reorders what is shown.
//! Human-readable output escapes them; JSON output stays exact (its own escaping
//! covers the C0 range).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw: C0 and C1 control characters, DEL, the
/// bidirectional embedding/override/isolate controls, and the line and paragraph
/// separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// `s` with every unsafe character written as an escape (`\n`, `\t`, `\r`,
/// `\u{1b}`...), and backslashes doubled so that an escape cannot be faked by the
/// value itself. Borrowed when nothing needed escaping (the common case).
pub fn escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn plain_text_is_untouched_and_borrowed() {
        let s = "system:serviceaccount:ns:app https://oidc.example/c1 é ü 漢";
        assert!(matches!(escaped(s), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escaped(s), s);
    }

    #[test]
    fn controls_that_forge_rows_or_colour_the_terminal_are_escaped() {
        assert_eq!(escaped("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(escaped("x\u{1b}[31mred"), "x\\u{1b}[31mred");
        assert_eq!(escaped("\u{9b}31m"), "\\u{9b}31m"); // C1 CSI
        assert_eq!(escaped("\u{7f}"), "\\u{7f}");
        assert_eq!(escaped("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(escaped("a\u{2028}b"), "a\\u{2028}b");
        // A value cannot fake an escape: its own backslashes are doubled.
        assert_eq!(escaped("a\\nb"), "a\\\\nb");
        for s in ["a\tb", "\u{1b}", "x\ny", "\u{202e}"] {
            assert!(
                !escaped(s)
                    .chars()
                    .any(|c| c.is_control() || c == '\u{202e}')
            );
        }
    }
}
