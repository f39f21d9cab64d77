//! Secret handling: which fields are secret, masking them (`"***"`) for the request log, and
//! replacing them by a SHA-256 digest (`"sha256:<hex>"`) before anything is stored.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Object keys whose values are secret wherever they appear: the list in
/// [`EmulatorConfig::secret_fields`](crate::EmulatorConfig::secret_fields), which the reconciler
/// fills with every field its spec loader treats as secret (one list, so that a field added
/// there is never logged or stored in clear here).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secrets {
    keys: &'static [&'static str],
}

/// What to put in place of a secret value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redaction {
    /// `"***"`: for logs and the request log.
    Mask,
    /// `"sha256:<hex>"`: for the store, so identical re-posts still compare equal.
    Digest,
}

/// The masked placeholder.
pub(crate) const MASK: &str = "***";

/// `"sha256:<hex>"` of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Secrets {
    /// The secret keys `keys`.
    pub(crate) fn new(keys: &'static [&'static str]) -> Secrets {
        Secrets { keys }
    }

    /// True for a key whose value is secret.
    pub(crate) fn is_secret_key(self, key: &str) -> bool {
        self.keys.contains(&key)
    }

    /// Replaces every secret in `value`, recursively: values of the secret keys and `content`
    /// of items under a `userFiles` array.
    pub(crate) fn redact(self, value: &mut Value, how: Redaction) {
        self.walk(value, how, None);
    }

    fn walk(self, value: &mut Value, how: Redaction, container: Option<&str>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if self.is_secret_key(key)
                        || (container == Some("userFiles") && key == "content")
                    {
                        replace(child, how);
                    } else {
                        self.walk(child, how, Some(key));
                    }
                }
            }
            // Items of an array belong to the array's key (`userFiles: [{content}]`).
            Value::Array(items) => {
                items.iter_mut().for_each(|item| self.walk(item, how, container));
            }
            _ => {}
        }
    }
}

fn replace(value: &mut Value, how: Redaction) {
    if value.is_null() {
        return;
    }
    let replacement = match (how, &*value) {
        (Redaction::Mask, _) => MASK.to_owned(),
        (Redaction::Digest, Value::String(s)) if is_digest(s) => return,
        (Redaction::Digest, Value::String(s)) => digest(s.as_bytes()),
        (Redaction::Digest, other) => digest(other.to_string().as_bytes()),
    };
    *value = Value::String(replacement);
}

fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A few of the reconciler's secret fields (the crate has no list of its own; the whole list
    /// is tested where it lives, in `tests/it/emulator`).
    const KEYS: &[&str] = &["password", "token", "licensekey"];

    fn redact(value: &mut Value, how: Redaction) {
        Secrets::new(KEYS).redact(value, how);
    }

    #[test]
    fn masks_known_keys_and_user_file_content_only() {
        let mut v = json!({
            "connection": {"password": "p", "username": "u",
                "userFiles": [{"keyName": "k", "content": "c"}]},
            "content": "not a secret here",
            "licensekey": "L"
        });
        redact(&mut v, Redaction::Mask);
        assert_eq!(v["connection"]["password"], "***");
        assert_eq!(v["connection"]["username"], "u");
        assert_eq!(v["connection"]["userFiles"][0]["content"], "***");
        assert_eq!(v["connection"]["userFiles"][0]["keyName"], "k");
        assert_eq!(v["content"], "not a secret here");
        assert_eq!(v["licensekey"], "***");
    }

    #[test]
    fn every_given_field_is_masked_and_digested() {
        for field in KEYS {
            let mut masked = json!({"connection": {*field: "canary", "hostname": "h"}});
            let mut digested = masked.clone();
            redact(&mut masked, Redaction::Mask);
            redact(&mut digested, Redaction::Digest);
            assert_eq!(masked["connection"][field], MASK, "{field}");
            assert_eq!(digested["connection"][field], digest(b"canary"), "{field}");
            assert_eq!(masked["connection"]["hostname"], "h");
        }
    }

    #[test]
    fn only_the_given_fields_are_secret() {
        let mut v = json!({"clientSecret": "c", "password": "p"});
        Secrets::new(&["clientSecret"]).redact(&mut v, Redaction::Mask);
        assert_eq!(v, json!({"clientSecret": MASK, "password": "p"}));
    }

    #[test]
    fn digests_are_stable_and_not_digested_twice() {
        let mut v = json!({"password": "hunter2"});
        redact(&mut v, Redaction::Digest);
        let once = v.clone();
        redact(&mut v, Redaction::Digest);
        assert_eq!(v, once);
        assert!(v["password"].as_str().is_some_and(|s| s.starts_with("sha256:")));
    }
}
