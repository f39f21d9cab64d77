//! Field-level differences between two canonical payloads, with secrets kept masked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::secrets::{self, SENSITIVE};

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Dotted path (`connection.password`, `actions[0].rules[1].config`).
    pub path: String,
    /// The old value (masked), absent when the field is new.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The new value (masked), absent when the field is removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The field holds a secret: values are `(sensitive)`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// The changed leaves between two canonical payloads. Lists are compared item by item (after
/// canonical sorting), mappings key by key.
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(before, after, &mut String::new(), &mut out);
    out
}

fn walk(before: &Value, after: &Value, path: &mut String, out: &mut Vec<FieldChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    (x, y) => push(path, x, y, out),
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    (x, y) => push(path, x, y, out),
                }
                path.truncate(len);
            }
        }
        _ => push(path, Some(before), Some(after), out),
    }
}

fn push(path: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    let sensitive = before.is_some_and(contains_secret) || after.is_some_and(contains_secret);
    out.push(FieldChange {
        path: path.to_owned(),
        before: before.map(|v| display_value(v, None)),
        after: after.map(|v| display_value(v, before)),
        sensitive,
    });
}

fn contains_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => secrets::is_masked(s),
        Value::Array(items) => items.iter().any(contains_secret),
        Value::Object(m) => m.values().any(contains_secret),
        _ => false,
    }
}

/// A value for display: `(sensitive:<digest>)` becomes `(sensitive)`, or `(sensitive, changed)`
/// when `previous` is a different secret at the same place.
pub fn display_value(v: &Value, previous: Option<&Value>) -> Value {
    match v {
        Value::String(s) if secrets::is_masked(s) => {
            let changed = previous.is_some_and(|p| p != v);
            Value::String(if changed { "(sensitive, changed)".into() } else { SENSITIVE.into() })
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| display_value(x, previous.and_then(|p| p.get(i))))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), display_value(x, previous.and_then(|p| p.get(k)))))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_changed_leaves_are_listed() {
        let a = json!({"name": "A", "staged": false, "actions": {"type": "anyone"}});
        let b = json!({"name": "B", "actions": {"type": "anyone", "description": "d"}});
        let got: Vec<_> = field_changes(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(got, ["actions.description", "name", "staged"]);
    }

    #[test]
    fn secrets_are_masked_and_flagged_as_changed() {
        let a = json!({"connection": {"password": "(sensitive:aaaa)"}});
        let b = json!({"connection": {"password": "(sensitive:bbbb)"}});
        let c = field_changes(&a, &b);
        assert_eq!(c.len(), 1);
        assert!(c[0].sensitive);
        assert_eq!(c[0].before, Some(json!("(sensitive)")));
        assert_eq!(c[0].after, Some(json!("(sensitive, changed)")));
        assert!(!serde_json::to_string(&c).unwrap().contains("aaaa"));
    }
}
