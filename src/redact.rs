//! The one redaction layer: every secret and credential the process knows, removed from any
//! text in every encoding a server or a formatter may produce.
//!
//! Secrets are registered as they become known ([`register`]): API keys and session tokens
//! (`live::client`), the password of a URL ([`strip_userinfo`]), webhook secrets, Git tokens,
//! the state database password and the digest key (`cli::secret_from_file_or_env`), and the
//! secret values of every request (`live::client`, before the request is sent, so before any
//! answer can quote them). A [`Redactor`] is built from that set; [`redact`] uses the
//! process-wide one.
//!
//! For each secret the redactor knows these forms: as is, JSON-escaped (`\"`, `\\`, `\/`,
//! `\uXXXX`, and escaped twice), URL-encoded (`%XX` in either case, `+` for spaces, with and
//! without `!'()*` kept), HTML-escaped, and base64 (standard and URL-safe, at each of the three
//! alignments a secret can have inside a longer encoded text). Every run of 8 characters of every
//! form is a pattern, so any copy of 8 characters or more — a copy cut off by a server, a
//! partial echo — is found; a secret shorter than 8 characters is found whole (below 4
//! characters a secret is not registered at all: it would mask ordinary text). Matches are
//! found in one pass (Aho-Corasick over all patterns), merged, widened so as never to end inside
//! an escape sequence (a JSON text stays valid JSON), and each replaced by `(sensitive)`.
//!
//! Public text ([`register_public`]: the spec tree's keys and values, secrets masked, which
//! anyone reading the repository sees) narrows the runs: a run of 8 characters that the public
//! text holds too (a password containing `Snowflake` or `password`) does not mask the handler
//! or the field name everywhere. A whole secret is always masked, public or not.
//!
//! **Invariant:** redaction runs before any length cut: a cut can only shorten a copy, and a
//! copy of 8 characters is still found.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::spec::secrets::SENSITIVE;

/// A copy of a secret this long or longer is found anywhere.
pub const WINDOW: usize = 8;

/// Secrets shorter than this are not registered (they would mask ordinary words).
pub const MIN_SECRET: usize = 4;

/// Removes a set of secrets from text.
#[derive(Debug, Default)]
pub struct Redactor {
    automaton: Option<AhoCorasick>,
    /// The patterns could not be compiled (past the automaton's size limits): everything is
    /// masked rather than anything leaked.
    broken: bool,
}

/// The patterns of `secrets`: whole forms shorter than [`WINDOW`], and every run of
/// [`WINDOW`] characters of the longer ones (those may be narrowed by public text).
fn patterns<S: AsRef<str>>(
    secrets: impl IntoIterator<Item = S>,
) -> (BTreeSet<String>, Vec<String>) {
    let mut whole = BTreeSet::new();
    let mut windows = BTreeSet::new();
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.chars().count() < MIN_SECRET {
            continue;
        }
        for form in forms(secret) {
            let chars: Vec<(usize, char)> = form.char_indices().collect();
            if chars.len() < WINDOW {
                if chars.len() >= MIN_SECRET {
                    whole.insert(form);
                }
                continue;
            }
            for w in 0..=chars.len() - WINDOW {
                let start = chars[w].0;
                let end = chars.get(w + WINDOW).map_or(form.len(), |c| c.0);
                windows.insert(form[start..end].to_owned());
            }
            whole.insert(form);
        }
    }
    windows.retain(|w| !whole.contains(w));
    (whole, windows.into_iter().collect())
}

impl Redactor {
    /// A redactor for `secrets` (values shorter than [`MIN_SECRET`] characters are ignored).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        Self::with_public(secrets, std::iter::empty::<&str>())
    }

    /// A redactor for `secrets` whose runs of [`WINDOW`] characters found in `public` text are
    /// left alone (whole secrets are masked still).
    pub fn with_public<S: AsRef<str>, P: AsRef<str>>(
        secrets: impl IntoIterator<Item = S>,
        public: impl IntoIterator<Item = P>,
    ) -> Self {
        let (whole, mut windows) = patterns(secrets);
        let public: Vec<P> = public.into_iter().collect();
        if !public.is_empty()
            && !windows.is_empty()
            && let Ok(ac) = AhoCorasick::new(&windows)
        {
            let mut seen = vec![false; windows.len()];
            for text in &public {
                for m in ac.find_overlapping_iter(text.as_ref()) {
                    seen[m.pattern().as_usize()] = true;
                }
            }
            let mut i = 0;
            windows.retain(|_| {
                i += 1;
                !seen[i - 1]
            });
        }
        let mut all: BTreeSet<String> = whole;
        all.extend(windows);
        Self::build(all)
    }

    fn build(patterns: BTreeSet<String>) -> Self {
        if patterns.is_empty() {
            return Redactor::default();
        }
        match AhoCorasickBuilder::new().match_kind(MatchKind::Standard).build(&patterns) {
            Ok(ac) => Redactor { automaton: Some(ac), broken: false },
            Err(_) => Redactor { automaton: None, broken: true },
        }
    }

    /// Whether it knows no secret.
    pub fn is_empty(&self) -> bool {
        self.automaton.is_none() && !self.broken
    }

    /// `text` with every copy of a secret replaced by `(sensitive)`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(ac) = &self.automaton else {
            return if self.broken && !text.is_empty() {
                Cow::Owned(SENSITIVE.to_owned())
            } else {
                Cow::Borrowed(text)
            };
        };
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for m in ac.find_overlapping_iter(text) {
            ranges.push(widen(text, m.start(), m.end()));
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        // Overlapping matches come in order of their end: sort by start, then merge.
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            if end <= at {
                continue;
            }
            if start >= at {
                out.push_str(&text[at..start]);
                out.push_str(SENSITIVE);
            }
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Redacts every string (and object key) in a JSON value.
    pub fn redact_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.redact(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            Value::Object(map) => {
                let taken = std::mem::take(map);
                for (k, mut v) in taken {
                    self.redact_value(&mut v);
                    map.insert(self.redact(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }
}

/// Widens a match so that it neither starts nor ends inside a JSON escape sequence (`\"`,
/// `\\`, `\u00e9`): replacing it then leaves a JSON string valid.
fn widen(text: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let odd_backslashes_before =
        |at: usize| bytes[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1;
    // Inside `\uXXXX`: move back to its backslash.
    for k in 2..=5 {
        if start >= k
            && bytes[start - k] == b'\\'
            && bytes[start - k + 1] == b'u'
            && !odd_backslashes_before(start - k)
            && bytes[start - k + 2..start].iter().all(u8::is_ascii_hexdigit)
        {
            start -= k;
            break;
        }
    }
    if start > 0 && odd_backslashes_before(start) {
        start -= 1;
    }
    // Ends after an escaping backslash: take the escaped character (and `\u`'s four digits).
    if end < bytes.len() && odd_backslashes_before(end) {
        end += if bytes[end] == b'u' { 5 } else { 1 };
    } else {
        // Ends inside `\uXXXX`: move to its end.
        for k in 2..=5 {
            if end >= k
                && bytes[end - k] == b'\\'
                && bytes[end - k + 1] == b'u'
                && !odd_backslashes_before(end - k)
            {
                end = end - k + 6;
                break;
            }
        }
    }
    let mut end = end.min(bytes.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    (start, end)
}

/// Every form of `secret` a server or a formatter may produce (see the module docs).
fn forms(secret: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.insert(secret.to_owned());
    let json = json_escaped(secret, false);
    out.insert(json_escaped(&json, false));
    out.insert(json_escaped(secret, true));
    out.insert(json);
    out.insert(html_escaped(secret));
    for keep in ["", "!'()*"] {
        for upper in [true, false] {
            for plus in [true, false] {
                out.insert(url_encoded(secret, keep, upper, plus));
            }
        }
    }
    out.extend(base64_cores(secret.as_bytes()));
    out.retain(|f| !f.is_empty());
    out
}

/// JSON string escaping (without the quotes); `ascii` also escapes `/` and every non-ASCII
/// character, as some servers do.
fn json_escaped(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '/' if ascii => out.push_str("\\/"),
            c if (c as u32) < 0x20 || (ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Percent-encoding: unreserved characters (and `keep`) as is, `+` for a space when `plus`.
fn url_encoded(s: &str, keep: &str, upper: bool, plus: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else if b == b' ' && plus {
            out.push('+');
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The characters of the base64 of `bytes` that do not depend on what surrounds it, at each of
/// the three alignments it may have inside a longer encoded text, standard and URL-safe.
fn base64_cores(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for shift in 0..3usize {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(bytes);
        // Leading characters mix in the padding bytes; trailing ones the bytes that follow.
        let skip = (shift * 8).div_ceil(6);
        let keep = (padded.len() * 8) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&padded);
            if keep > skip {
                out.push(encoded[skip..keep.min(encoded.len())].to_owned());
            }
        }
    }
    out
}

/// The process's secrets and the redactor built from them (rebuilt lazily after a
/// registration).
#[derive(Default)]
struct Registry {
    secrets: BTreeSet<String>,
    /// Public strings, each once (a reconciler registers its tree's again at every pass).
    public: BTreeSet<Box<str>>,
    current: Option<Arc<Redactor>>,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(RwLock::default);

/// Registers a secret of the process: from now on it is redacted from every output.
pub fn register(secret: &str) {
    register_all([secret]);
}

/// Registers several secrets at once.
pub fn register_all<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) {
    let fresh: Vec<String> = {
        let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        secrets
            .into_iter()
            .map(|s| s.as_ref().trim().to_owned())
            .filter(|s| s.chars().count() >= MIN_SECRET && !registry.secrets.contains(s))
            .collect()
    };
    if fresh.is_empty() {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let mut added = false;
    for s in fresh {
        // A multi-line secret (a private key) is also known line by line.
        for line in s.lines().map(str::trim).filter(|l| l.chars().count() >= MIN_SECRET) {
            if line != s {
                added |= registry.secrets.insert(line.to_owned());
            }
        }
        added |= registry.secrets.insert(s);
    }
    if added {
        registry.current = None;
    }
}

/// Registers public text (see the module docs): runs of a secret found in it are not masked.
pub fn register_public<S: Into<String>>(texts: impl IntoIterator<Item = S>) {
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let mut added = false;
    for t in texts {
        let t: String = t.into();
        if t.chars().count() >= WINDOW && !registry.public.contains(t.as_str()) {
            registry.public.insert(t.into_boxed_str());
            added = true;
        }
    }
    if added {
        registry.current = None;
    }
}

/// The redactor of every secret registered so far.
pub fn current() -> Arc<Redactor> {
    if let Some(r) = &REGISTRY.read().unwrap_or_else(|e| e.into_inner()).current {
        return Arc::clone(r);
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = &registry.current {
        return Arc::clone(r);
    }
    let built = Arc::new(Redactor::with_public(&registry.secrets, &registry.public));
    registry.current = Some(Arc::clone(&built));
    built
}

/// `text` without any secret registered so far.
pub fn redact(text: &str) -> Cow<'_, str> {
    let redactor = current();
    match redactor.redact(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// As [`redact`], owned.
pub fn redacted(text: &str) -> String {
    redact(text).into_owned()
}

/// A JSON value with every string redacted of the secrets registered so far.
pub fn redact_value(mut value: Value) -> Value {
    current().redact_value(&mut value);
    value
}

/// `url` without its userinfo (`https://user:pw@host/` -> `https://host/`); the userinfo and
/// its password are registered as secrets. A URL without userinfo is returned as is.
pub fn strip_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_owned() };
    let userinfo = &authority[..at];
    register(userinfo);
    if let Some((_, password)) = userinfo.split_once(':') {
        register(password);
        if let Some(decoded) = percent_decoded(password) {
            register(&decoded);
        }
    }
    format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..])
}

/// `%XX` sequences decoded, when the result is UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A writer that redacts every buffer written to it before passing it on (the logs: the
/// formatter writes one event per call).
#[derive(Debug)]
pub struct Writer<W>(pub W);

impl<W: io::Write> io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Standard error through the redactor: `tracing_subscriber`'s writer for the logs.
pub fn stderr() -> Writer<io::Stderr> {
    Writer(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Zq\"9/x\\ P+w%&é<ok>Lm'Tt";

    fn leaks(text: &str, secret: &str) -> Option<String> {
        let chars: Vec<char> = secret.chars().collect();
        (0..=chars.len().saturating_sub(WINDOW))
            .map(|i| chars[i..(i + WINDOW).min(chars.len())].iter().collect::<String>())
            .find(|w| text.contains(w.as_str()))
    }

    #[test]
    fn every_encoding_and_every_cut_copy_is_removed() {
        let r = Redactor::new([SECRET]);
        let json = serde_json::to_string(&serde_json::json!({"password": SECRET})).unwrap();
        let twice = serde_json::to_string(&json).unwrap();
        let url = url_encoded(SECRET, "", true, true);
        let lower = url_encoded(SECRET, "", false, false);
        let b64 = STANDARD_NO_PAD.encode(format!("user:{SECRET}"));
        let cut = &SECRET[..12];
        for text in [
            format!("bad password {SECRET} here"),
            format!("echo: {json}"),
            format!("echo: {twice}"),
            format!("GET /x?p={url}&q=1"),
            format!("GET /x?p={lower}"),
            format!("Authorization: Basic {b64}"),
            format!("{{\"message\":\"...{cut}"),
            html_escaped(SECRET),
        ] {
            let out = r.redact(&text);
            for form in forms(SECRET) {
                assert!(leaks(&out, &form).is_none(), "{form:?} in {out:?} (from {text:?})");
            }
            assert!(out.contains(SENSITIVE), "{out}");
        }
    }

    #[test]
    fn redacted_json_stays_json() {
        let r = Redactor::new([SECRET, "0123456789\\\"abcdef"]);
        let doc =
            serde_json::json!({"a": format!("x{SECRET}y"), "b": [SECRET], "c": "0123456789\\\"ab"});
        for text in
            [serde_json::to_string(&doc).unwrap(), serde_json::to_string_pretty(&doc).unwrap()]
        {
            let out = r.redact(&text);
            let parsed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            assert_eq!(parsed["b"][0], SENSITIVE);
            // Cut inside every kind of escape: still valid.
            for s in ["\"\\u00e9abcdefgh\"", "\"ab\\\\cdefghij\""] {
                let r = Redactor::new(["cdefghij", "u00e9abc"]);
                let out = r.redact(s);
                serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            }
        }
    }

    #[test]
    fn short_secrets_are_found_whole_and_tiny_ones_ignored() {
        let r = Redactor::new(["hunt3r", "ab"]);
        assert_eq!(r.redact("pw hunt3r; ab"), "pw (sensitive); ab");
        assert_eq!(r.redact("hunt"), "hunt");
        assert!(Redactor::new(["ab"]).is_empty());
    }

    #[test]
    fn runs_found_in_public_text_are_left_alone_but_whole_secrets_are_not() {
        let secret = "Snowflake-prod-9x7Qw2";
        let r = Redactor::with_public([secret], ["handler: Snowflake", "connectionKey: prod-db"]);
        assert_eq!(r.redact("handler: Snowflake"), "handler: Snowflake");
        assert_eq!(r.redact(&format!("pw {secret}")), "pw (sensitive)");
        // A cut-off copy: what is left visible is public or shorter than a run.
        let out = r.redact("echo Snowflake-prod-9x7");
        assert!(!out.contains("-prod-9x"), "{out}");
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        let r = Redactor::new(["a-long-secret-value"]);
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn userinfo_is_stripped_and_registered() {
        let url = "https://ci:p%40ss-w0rd-strip-7@tenant.example.com/path?x=1";
        assert_eq!(strip_userinfo(url), "https://tenant.example.com/path?x=1");
        assert_eq!(strip_userinfo("https://h.example.com/a@b"), "https://h.example.com/a@b");
        assert_eq!(redacted("x p@ss-w0rd-strip-7 y"), "x (sensitive) y");
        assert_eq!(redacted("x p%40ss-w0rd-strip-7 y"), "x (sensitive) y");
    }

    #[test]
    fn registered_secrets_are_redacted_by_the_writer_and_values() {
        register("writer-canary-5150");
        let mut out = Writer(Vec::new());
        io::Write::write_all(&mut out, b"log: writer-canary-5150\n").unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), "log: (sensitive)\n");
        let v = redact_value(serde_json::json!({"writer-canary-5150": ["writer-canary-51"]}));
        assert_eq!(v, serde_json::json!({"(sensitive)": ["(sensitive)"]}));
    }
}
