//! User text inside diagnostics: keys, tags, enum values, file names and paths are quoted in
//! messages, so they are made safe to print first.
//!
//! A spec file is semi-trusted input, and diagnostics go to terminals and CI logs. A key holding
//! `ESC [ 2 J` or an OSC sequence would drive the reader's terminal; a right-to-left override
//! would make a message read differently from what it says; a 1 MB key would drown the log.
//! [`shown`] escapes control and bidirectional-formatting characters as `\u{..}` and cuts long
//! text to [`MAX_SHOWN`] characters.

use std::borrow::Cow;

use crate::diagnostic::escape::is_unsafe;
pub use crate::diagnostic::escape::printable;

/// Most characters of user text quoted in one message.
pub const MAX_SHOWN: usize = 80;

/// Whether `text` holds a character that [`shown`] would escape.
pub fn has_unsafe(text: &str) -> bool {
    text.chars().any(is_unsafe)
}

/// `text`, safe to quote in a diagnostic: unsafe characters escaped as `\u{1b}`, and cut to
/// [`MAX_SHOWN`] characters with a trailing `…`.
pub fn shown(text: &str) -> Cow<'_, str> {
    cut(text, MAX_SHOWN)
}

/// `text` with unsafe characters escaped and cut to `max` characters: for messages of
/// libraries, which may embed a bit of the input.
pub fn shown_up_to(text: &str, max: usize) -> Cow<'_, str> {
    cut(text, max)
}

/// `text` with unsafe characters escaped, not cut: for file paths and OS error reasons, which
/// are needed whole.
pub fn escaped(text: &str) -> Cow<'_, str> {
    cut(text, usize::MAX)
}

fn cut(text: &str, max: usize) -> Cow<'_, str> {
    let long = max != usize::MAX && text.chars().nth(max).is_some();
    if !long && !has_unsafe(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)) + 8);
    for c in text.chars().take(max) {
        if is_unsafe(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    if long {
        out.push('…');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(shown("connectionKey"), Cow::Borrowed("connectionKey")));
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(shown("a\u{1b}[31mb\u{7}"), "a\\u{1b}[31mb\\u{7}");
        assert_eq!(shown("x\u{202e}y\0"), "x\\u{202e}y\\u{0}");
        assert_eq!(shown("tab\there"), "tab\\u{9}here");
        assert_eq!(shown("\u{061c}\u{2066}"), "\\u{61c}\\u{2066}");
    }

    #[test]
    fn long_text_is_cut() {
        let s = shown(&"k".repeat(10_000)).into_owned();
        assert_eq!(s.chars().count(), MAX_SHOWN + 1);
        assert!(s.ends_with('…'));
        assert_eq!(shown(&"é".repeat(MAX_SHOWN)), "é".repeat(MAX_SHOWN));
        assert_eq!(escaped(&"k".repeat(1000)).len(), 1000);
        assert_eq!(escaped("a/\u{1b}.yaml"), "a/\\u{1b}.yaml");
    }
}
