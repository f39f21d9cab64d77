//! Secrets in specs: `${VAR}` / `${file:PATH}` placeholders, taint tracking and masking.
//!
//! Any string value may contain placeholders, quoted or not: `${NAME}` is replaced by the
//! environment variable `NAME`, `${file:PATH}` by the content of a mounted file, and `$${`
//! writes a literal `${`. Replacement happens only when a payload is sent ([`interpolate`]);
//! specs, plans and state keep the placeholders.
//!
//! Every string that contains a placeholder, and every value of a known secret field (`password`,
//! `clientSecret`, `token`, `userFiles[].content`, `licenseKey`...), is *tainted*: the loader
//! records its JSON pointer, and every later stage masks it ([`mask`]) or compares it by a
//! digest ([`mask_with_digests`]). Nothing in this module ever puts a secret value into an error.
//!
//! Digests are keyed: HMAC-SHA-256 under a [`DigestKey`] that is kept outside the state (a file
//! or an environment variable the operator provides), so a leaked state file allows no offline
//! guessing of weak secrets. States written before keyed digests hold salted SHA-256 digests
//! with the salt beside them ([`Digests::Salted`]); those are read, compared and migrated.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Field names whose values are secret wherever they appear.
pub const SECRET_FIELDS: &[&str] = &[
    "password",
    "clientSecret",
    "token",
    "privateKey",
    "privateKeyPassword",
    "privateKeyPassphrase",
    "passphrase",
    "secretKey",
    "secretAccessKey",
    "apiKey",
    "apikey",
    "licenseKey",
    "licensekey",
];

/// What the masked value looks like in every output.
pub const SENSITIVE: &str = "(sensitive)";

/// Whether the value at the end of `path` (field names and indices) is a known secret field.
pub fn is_secret_field(path: &[&str]) -> bool {
    match path {
        [.., last] if SECRET_FIELDS.contains(last) => true,
        // userFiles[].content: `userFiles`, an index, `content`.
        [.., "userFiles", _, "content"] => true,
        _ => false,
    }
}

/// A placeholder reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretRef {
    /// `${NAME}`: an environment variable.
    Env(String),
    /// `${file:PATH}`: a mounted file.
    File(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "${{{name}}}"),
            SecretRef::File(path) => write!(f, "${{file:{path}}}"),
        }
    }
}

/// A piece of a string with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text (with `$${` already turned into `${`).
    Text(std::borrow::Cow<'a, str>),
    /// A placeholder.
    Ref(SecretRef),
}

/// A malformed placeholder. The message names the problem, never the surrounding text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: &'static str,
}

/// Whether `s` contains anything that looks like a placeholder (cheap pre-check).
pub fn has_placeholder(s: &str) -> bool {
    s.contains("${")
}

/// Splits a string into text and placeholders.
pub fn parse(s: &str) -> Result<Vec<Piece<'_>>, PlaceholderError> {
    let mut pieces = Vec::new();
    let mut rest = s;
    let mut text = String::new();
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            text.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(PlaceholderError {
                    message: "a `${` placeholder is not closed with `}`".into(),
                    hint: "write `${NAME}` or `${file:PATH}`; write `$${` for a literal `${`",
                });
            };
            let inner = &tail[..end];
            let r = parse_ref(inner)?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text).into()));
            }
            pieces.push(Piece::Ref(r));
            rest = &tail[end + 1..];
        } else {
            text.push('$');
            rest = &after[1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text.into()));
    }
    Ok(pieces)
}

fn parse_ref(inner: &str) -> Result<SecretRef, PlaceholderError> {
    if let Some(path) = inner.strip_prefix("file:") {
        if path.is_empty() {
            return Err(PlaceholderError {
                message: "`${file:}` names no file".into(),
                hint: "write `${file:PATH}` with a path under the secrets directory",
            });
        }
        if path.split(['/', '\\']).any(|c| c == "..") {
            return Err(PlaceholderError {
                message: "a `${file:...}` path must not contain `..`".into(),
                hint: "name the file relative to the secrets directory (--secrets-dir), without `..`",
            });
        }
        if path.contains('\0') {
            return Err(PlaceholderError {
                message: "a `${file:...}` path must not contain NUL bytes".into(),
                hint: "name the file relative to the secrets directory (--secrets-dir)",
            });
        }
        if super::text::has_unsafe(path) {
            // Paths are printed in diagnostics; an escape sequence would drive the terminal.
            return Err(PlaceholderError {
                message: "a `${file:...}` path must not contain control or bidirectional-formatting characters".into(),
                hint: "name the file relative to the secrets directory (--secrets-dir)",
            });
        }
        return Ok(SecretRef::File(path.to_owned()));
    }
    let valid = !inner.is_empty()
        && inner.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(SecretRef::Env(inner.to_owned()))
    } else {
        Err(PlaceholderError {
            message:
                "a `${...}` placeholder must name an environment variable (letters, digits, `_`) \
                      or `file:PATH`"
                    .into(),
            hint: "write `${NAME}` or `${file:PATH}`; write `$${` for a literal `${`",
        })
    }
}

/// Where secrets come from when a payload is sent. Implemented over the process environment and
/// the secrets directory at the edge, and over maps in tests.
pub trait SecretSource: Sync {
    /// The value of an environment variable, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// The content of a secret file, or why it cannot be read (never containing the content).
    fn file(&self, path: &str) -> Result<String, String>;
}

/// A failure to fill in a placeholder. Names the reference and the JSON path, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// An environment variable is not set.
    #[error("environment variable `{name}` (used at {path}) is not set")]
    MissingVar {
        /// Variable name.
        name: String,
        /// JSON path of the value.
        path: String,
    },
    /// A secret file cannot be read.
    #[error("secret file `{file}` (used at {path}) cannot be read: {reason}")]
    File {
        /// The path as written.
        file: String,
        /// JSON path of the value.
        path: String,
        /// Why.
        reason: String,
    },
    /// A placeholder is malformed.
    #[error("malformed placeholder at {path}: {message}")]
    Malformed {
        /// JSON path of the value.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Returns `payload` with every placeholder replaced from `source`.
pub fn interpolate(payload: &Value, source: &dyn SecretSource) -> Result<Value, InterpolateError> {
    let mut out = payload.clone();
    interpolate_in(&mut out, &mut String::from("$"), source)?;
    Ok(out)
}

fn interpolate_in(
    v: &mut Value,
    path: &mut String,
    source: &dyn SecretSource,
) -> Result<(), InterpolateError> {
    match v {
        Value::String(s) if has_placeholder(s) => {
            let pieces = parse(s).map_err(|e| InterpolateError::Malformed {
                path: path.clone(),
                message: e.message,
            })?;
            let mut filled = String::with_capacity(s.len());
            for piece in pieces {
                match piece {
                    Piece::Text(t) => filled.push_str(&t),
                    Piece::Ref(SecretRef::Env(name)) => match source.var(&name) {
                        Some(value) => filled.push_str(&value),
                        None => {
                            return Err(InterpolateError::MissingVar { name, path: path.clone() });
                        }
                    },
                    Piece::Ref(SecretRef::File(file)) => match source.file(&file) {
                        Ok(value) => filled.push_str(&value),
                        Err(reason) => {
                            return Err(InterpolateError::File {
                                file,
                                path: path.clone(),
                                reason,
                            });
                        }
                    },
                }
            }
            *s = filled;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                interpolate_in(item, path, source)?;
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                interpolate_in(item, path, source)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Returns `payload` with every tainted value (JSON pointers) replaced by [`SENSITIVE`].
pub fn mask<'a>(payload: &Value, tainted: impl IntoIterator<Item = &'a str>) -> Value {
    let mut out = payload.clone();
    for pointer in tainted {
        if let Some(v) = out.pointer_mut(pointer) {
            *v = Value::String(SENSITIVE.into());
        }
    }
    out
}

/// The key of secret digests: HMAC-SHA-256 keys, kept outside the state. Its bytes are never
/// printed (`Debug` shows its [`id`](DigestKey::id) only).
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey(Vec<u8>);

/// A digest key that is too short to resist guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the digest key has {len} byte(s); it needs at least {min}: use 32 random bytes, e.g. \
     `head -c 32 /dev/urandom | base64`"
)]
pub struct ShortKey {
    /// The length given.
    pub len: usize,
    /// [`DigestKey::MIN_LEN`].
    pub min: usize,
}

impl DigestKey {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A key from its bytes (at least [`DigestKey::MIN_LEN`]).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<DigestKey, ShortKey> {
        let bytes = bytes.into();
        if bytes.len() < Self::MIN_LEN {
            return Err(ShortKey { len: bytes.len(), min: Self::MIN_LEN });
        }
        Ok(DigestKey(bytes))
    }

    /// A key that is *not secret*, derived from `label`: for digests that never leave the
    /// process or that hold no secret value (offline plans compare placeholders as written).
    pub fn public(label: &str) -> DigestKey {
        DigestKey(Sha256::digest(format!("immuta-gitops public digest key\0{label}")).to_vec())
    }

    /// The key's bytes: only to copy it into a key file (`state migrate`), never to show.
    pub fn material(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA-256 accepts keys of every length"),
        }
    }

    /// The key's public name: 16 hex digits of HMAC(key, a fixed label). States record it, so
    /// a state read with another key is told apart from secrets that changed.
    pub fn id(&self) -> String {
        let mut mac = self.mac();
        mac.update(b"immuta-gitops digest key id");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// The keyed digest of a secret value: 32 hex digits (128 bits) of HMAC-SHA-256.
    pub fn digest(&self, value: &str) -> String {
        let mut mac = self.mac();
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestKey(id {})", self.id())
    }
}

/// How secret values are digested.
#[derive(Debug, Clone, Copy)]
pub enum Digests<'a> {
    /// HMAC-SHA-256 under a key kept outside the state: `(sensitive:k:<32 hex>)`.
    Keyed(&'a DigestKey),
    /// Format 1 states: salted SHA-256 with the salt stored beside it, `(sensitive:<16 hex>)`.
    /// Still computed to recognise (and migrate) digests of unchanged secrets.
    Salted(&'a str),
}

impl<'a> From<&'a DigestKey> for Digests<'a> {
    fn from(key: &'a DigestKey) -> Self {
        Digests::Keyed(key)
    }
}

impl<'a> From<&'a str> for Digests<'a> {
    fn from(salt: &'a str) -> Self {
        Digests::Salted(salt)
    }
}

impl Digests<'_> {
    /// The masked form of a secret value.
    pub fn masked(&self, value: &str) -> String {
        match self {
            Digests::Keyed(key) => format!("(sensitive:k:{})", key.digest(value)),
            Digests::Salted(salt) => format!("(sensitive:{})", secret_digest(value, salt)),
        }
    }
}

/// Replaces every tainted value of `value` (an interpolated payload) by
/// `(sensitive:<digest>)`, a digest of the real value ([`Digests`]). Two payloads that differ
/// only in a secret then differ in the digest, so a changed password shows up in a plan (as
/// "(sensitive) changed") without the value ever being stored or printed.
pub fn mask_with_digests<'a, 'k>(
    value: &mut Value,
    tainted: impl IntoIterator<Item = &'a str>,
    digests: impl Into<Digests<'k>>,
) {
    let digests = digests.into();
    for pointer in tainted {
        if let Some(v) = value.pointer_mut(pointer) {
            let masked = match &*v {
                Value::String(s) => digests.masked(s),
                other => digests.masked(&other.to_string()),
            };
            *v = Value::String(masked);
        }
    }
}

/// Whether `value` holds a salted (format 1) digest anywhere.
pub fn has_salted_digest(value: &Value) -> bool {
    match value {
        Value::String(s) => s
            .strip_prefix("(sensitive:")
            .and_then(|rest| rest.strip_suffix(')'))
            .is_some_and(|d| d.len() == 16 && d.bytes().all(|b| b.is_ascii_hexdigit())),
        Value::Array(items) => items.iter().any(has_salted_digest),
        Value::Object(map) => map.values().any(has_salted_digest),
        _ => false,
    }
}

/// A salted digest of a secret value (format 1 states): 16 hex digits of
/// SHA-256(salt ‖ 0 ‖ value).
pub fn secret_digest(value: &str, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// Whether a string in a rendered output is a masked value.
pub fn is_masked(s: &str) -> bool {
    s == SENSITIVE || (s.starts_with("(sensitive:") && s.ends_with(')'))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    struct Map(HashMap<&'static str, &'static str>);

    impl SecretSource for Map {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
        fn file(&self, path: &str) -> Result<String, String> {
            self.0.get(path).map(|s| s.to_string()).ok_or_else(|| "no such file".to_string())
        }
    }

    #[test]
    fn placeholders_parse_with_escapes() {
        let pieces = parse("a${X}b$${literal}c${file:db/pass}$").unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Text("a".into()),
                Piece::Ref(SecretRef::Env("X".into())),
                Piece::Text("b${literal}c".into()),
                Piece::Ref(SecretRef::File("db/pass".into())),
                Piece::Text("$".into()),
            ]
        );
    }

    #[test]
    fn malformed_placeholders_are_rejected() {
        assert!(parse("${").is_err());
        assert!(parse("${1X}").is_err());
        assert!(parse("${A-B}").is_err());
        assert!(parse("${file:../etc/passwd}").is_err());
        assert!(parse("${file:a/../../b}").is_err());
        assert!(parse("${}").is_err());
        assert!(parse("${file:a\u{1b}[2Jb}").is_err());
        assert!(parse("${file:a\u{202e}b}").is_err());
    }

    #[test]
    fn interpolation_fills_values_and_names_missing_variables_only() {
        let source = Map(HashMap::from([("PW", "canary-123"), ("k.pem", "KEY")]));
        let payload = json!({"connection": {"password": "${PW}", "userFiles": [{"content": "${file:k.pem}"}]}});
        let out = interpolate(&payload, &source).unwrap();
        assert_eq!(out["connection"]["password"], "canary-123");
        assert_eq!(out["connection"]["userFiles"][0]["content"], "KEY");

        let err = interpolate(&json!({"a": ["${NOPE}"]}), &source).unwrap_err();
        assert_eq!(err.to_string(), "environment variable `NOPE` (used at $.a[0]) is not set");
    }

    #[test]
    fn masking_replaces_tainted_values_and_digests_differ_by_value() {
        let resolved = json!({"connection": {"password": "canary-123", "hostname": "h"}});
        let masked = mask(&resolved, ["/connection/password"]);
        assert_eq!(masked["connection"]["password"], SENSITIVE);
        let mut a = resolved.clone();
        mask_with_digests(&mut a, ["/connection/password"], "salt");
        let mut b = json!({"connection": {"password": "other"}});
        mask_with_digests(&mut b, ["/connection/password"], "salt");
        assert_ne!(a["connection"]["password"], b["connection"]["password"]);
        assert!(!a.to_string().contains("canary"));
        assert!(is_masked(a["connection"]["password"].as_str().unwrap()));
    }

    #[test]
    fn keyed_digests_depend_on_the_key_and_never_on_a_stored_salt() {
        let key = DigestKey::new(*b"0123456789abcdef0123456789abcdef").unwrap();
        let other = DigestKey::new(*b"fedcba9876543210fedcba9876543210").unwrap();
        let mut a = json!({"password": "hunter2"});
        mask_with_digests(&mut a, ["/password"], &key);
        let masked = a["password"].as_str().unwrap();
        assert!(masked.starts_with("(sensitive:k:") && masked.len() == "(sensitive:k:)".len() + 32);
        assert!(is_masked(masked) && !has_salted_digest(&a));
        let mut b = json!({"password": "hunter2"});
        mask_with_digests(&mut b, ["/password"], &other);
        assert_ne!(a, b, "another key, another digest");
        assert_ne!(key.id(), other.id());
        assert!(!format!("{key:?}").contains("0123"), "Debug never shows the key");
        let mut legacy = json!({"password": "hunter2"});
        mask_with_digests(&mut legacy, ["/password"], "salt");
        assert!(has_salted_digest(&legacy));
        assert_eq!(DigestKey::new(*b"short"), Err(ShortKey { len: 5, min: 16 }));
    }

    #[test]
    fn known_secret_fields() {
        assert!(is_secret_field(&["connection", "password"]));
        assert!(is_secret_field(&["connection", "userFiles", "0", "content"]));
        assert!(!is_secret_field(&["sources", "0", "content"]));
        assert!(is_secret_field(&["licensekey"]));
    }
}
