//! The one rule of which characters may not reach a reader as they are, and the one escaping
//! of whole human-readable outputs ([`printable`]): text and Markdown plans, apply results and
//! `validate` reports go through it, and `spec::text` quotes user text with the same rule.
//!
//! A key, a value or a server message holding a terminal escape (`ESC [ 2 J`), a carriage
//! return or a bidirectional override (U+202E) would make an output read differently from
//! what it says: a reviewer could approve something other than what is applied. Such
//! characters are written as `\u{..}` escapes.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: C0/C1 controls, DEL, and the Unicode
/// bidirectional embeddings, overrides, isolates and marks (U+202A-202E, U+2066-2069,
/// U+200E/F, U+061C), plus the line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character escaped except line feeds and tabs, not cut: the one
/// escaping of whole human-readable outputs (text and Markdown plans, apply results, `validate`
/// reports), whose own line structure must survive. A bidirectional override in a key or a
/// server message then reads as `\u{202e}`, so a reviewer sees what is applied.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe(c) && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_here) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_here(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_keeps_lines_and_tabs_and_escapes_the_rest() {
        assert!(matches!(printable("a\n\tb"), Cow::Borrowed(_)));
        assert_eq!(
            printable("x\u{202e}y\r\n\u{1b}[2J\u{200f}\u{061c}\u{2066}"),
            "x\\u{202e}y\\u{d}\n\\u{1b}[2J\\u{200f}\\u{61c}\\u{2066}"
        );
        // Escaping twice changes nothing more.
        let once = printable("\u{2067}k").into_owned();
        assert_eq!(printable(&once), once);
    }
}
