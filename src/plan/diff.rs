//! Field-level differences between two canonical payloads, with secrets kept masked.
//!
//! Lists whose order Immuta ignores (owners, tags, groups, purposes, sources, columns...:
//! `normalize::SET_LIKE`) are diffed as sets, never by position: an item in both lists is
//! no change; an item only before is removed (its path indexes the list before), one only
//! after is added (its path indexes the list after); items with the same natural name (a
//! column, a table, an owner) on both sides are compared field by field. So removing one
//! owner is one removed owner, not every later owner shifted by one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::normalize::{self, SET_LIKE};
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

/// The changed leaves between two canonical payloads. Mappings are compared key by key,
/// set-like lists as sets (see the module docs), other lists item by item.
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(before, after, &mut String::new(), None, &mut out);
    out
}

/// The identity of a set-like list item that is compared field by field when it changed: its
/// natural name (a column's, a table's, an owner's). Plain values have none: a changed value
/// is a removed one and an added one.
fn identity(v: &Value) -> Option<String> {
    let (schema, name) = normalize::natural(v)?;
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    Some(format!("{kind}\u{0}{schema}\u{0}{name}"))
}

/// A set-like list: items equal on both sides are no change; items with the same identity,
/// once on each side, are compared; the rest are removed or added.
fn walk_set(before: &[Value], after: &[Value], path: &mut String, out: &mut Vec<FieldChange>) {
    let mut left: Vec<Option<&Value>> = before.iter().map(Some).collect();
    let mut right: Vec<Option<&Value>> = after.iter().map(Some).collect();
    let sorted = |l: &[Value]| l.windows(2).all(|w| normalize::order(&w[0], &w[1]).is_le());
    if sorted(before) && sorted(after) {
        // Canonical payloads hold set-like lists sorted: one merge finds the common items.
        let (mut i, mut j) = (0, 0);
        while i < before.len() && j < after.len() {
            match normalize::order(&before[i], &after[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    if before[i] == after[j] {
                        left[i] = None;
                        right[j] = None;
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    } else {
        for l in left.iter_mut() {
            if let Some(x) = *l
                && let Some(r) = right.iter_mut().find(|r| **r == Some(x))
            {
                *l = None;
                *r = None;
            }
        }
    }
    let ids = |items: &[Option<&Value>]| {
        let mut m: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (i, v) in items.iter().enumerate() {
            if let Some(id) = v.and_then(identity) {
                m.entry(id).or_default().push(i);
            }
        }
        m
    };
    let (lid, rid) = (ids(&left), ids(&right));
    let mut pairs: Vec<(usize, usize)> = lid
        .iter()
        .filter_map(|(id, l)| match (l.as_slice(), rid.get(id).map(Vec::as_slice)) {
            ([i], Some([j])) => Some((*i, *j)),
            _ => None,
        })
        .collect();
    pairs.sort_unstable();
    for (i, j) in &pairs {
        if let (Some(x), Some(y)) = (left[*i], right[*j]) {
            let len = path.len();
            path.push_str(&format!("[{j}]"));
            walk(x, y, path, None, out);
            path.truncate(len);
        }
        left[*i] = None;
        right[*j] = None;
    }
    for (i, x) in left.iter().enumerate() {
        if let Some(x) = x {
            push(&format!("{path}[{i}]"), Some(x), None, out);
        }
    }
    for (j, y) in right.iter().enumerate() {
        if let Some(y) = y {
            push(&format!("{path}[{j}]"), None, Some(y), out);
        }
    }
}

fn walk(
    before: &Value,
    after: &Value,
    path: &mut String,
    key: Option<&str>,
    out: &mut Vec<FieldChange>,
) {
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
                    (Some(x), Some(y)) => walk(x, y, path, Some(k), out),
                    (x, y) => push(path, x, y, out),
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) if key.is_some_and(|k| SET_LIKE.contains(&k)) => {
            walk_set(a, b, path, out);
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(x, y, path, None, out),
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
    fn set_like_lists_diff_as_sets_never_by_position() {
        let a = json!({"owners": [{"type": "group", "name": "a"}, {"type": "user", "name": "b"},
                                   {"type": "user", "name": "c"}],
                       "options": {"tableTags": ["Finance", "Sales"]}});
        let b = json!({"owners": [{"type": "user", "name": "b"}, {"type": "user", "name": "c"}],
                       "options": {"tableTags": ["Audit", "Finance", "Sales"]}});
        let got: Vec<(String, bool, bool)> = field_changes(&a, &b)
            .into_iter()
            .map(|c| (c.path, c.before.is_some(), c.after.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("options.tableTags[0]".to_owned(), false, true),
                ("owners[0]".to_owned(), true, false),
            ],
            "one tag added, one owner removed; nothing shifted"
        );
        // An item with the same natural name on both sides is compared field by field.
        let a =
            json!({"sources": [{"schema": "S", "tableName": "T", "tags": {"table": ["X", "Y"]}}]});
        let b = json!({"sources": [{"schema": "S", "tableName": "T", "tags": {"table": ["Y"]}}]});
        let got: Vec<String> = field_changes(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(got, ["sources[0].tags.table[0]"]);
        // Ordered lists keep positional diffs.
        let a = json!({"actions": [{"rules": [{"type": "A"}, {"type": "B"}]}]});
        let b = json!({"actions": [{"rules": [{"type": "B"}]}]});
        assert_eq!(field_changes(&a, &b).len(), 2);
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
