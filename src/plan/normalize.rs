//! Canonical form of payloads, so that plans show real changes and nothing else.
//!
//! Two payloads that Immuta treats the same must compare equal: mapping keys are sorted, lists
//! whose order carries no meaning (tags, owners, groups, purposes, data sources, sources,
//! circumstances, subpurposes...) are sorted, and documented spelling drift is folded to the
//! preferred spelling (`requiredPermissions` -> `requiredPermission`, `allowedMaskedJoins` ->
//! `allowMaskedJoins`, `Row Restriction by User Entitlements` -> `... By ...`, `licensekey` ->
//! `licenseKey`, `userFiles` `key`/`fileName` -> `keyName`/`userFilename`). The canonical form is
//! only compared and displayed; the payload posted is always the document as written.

use serde_json::{Map, Value};

/// Lists (by their key) whose order Immuta ignores.
const SET_LIKE: &[&str] = &[
    "tableTags",
    "tags",
    "table",
    "groups",
    "purposes",
    "datasources",
    "owners",
    "circumstances",
    "attributes",
    "sources",
    "columns",
    "columnDescriptions",
    "subpurposes",
    "users",
    "approvals",
    "domains",
];

/// Key renames: documented alternative spellings to the preferred one.
const KEY_ALIASES: &[(&str, &str)] = &[
    ("requiredPermissions", "requiredPermission"),
    ("allowedMaskedJoins", "allowMaskedJoins"),
    ("licensekey", "licenseKey"),
];

/// Value renames under a `type` key.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("Row Restriction by User Entitlements", "Row Restriction By User Entitlements"),
    ("Row Restriction By Custom Where Clause", "Row Restriction by Custom Where Clause"),
];

/// The canonical form of a payload.
pub fn canonical(value: &Value) -> Value {
    canon(value, None)
}

fn canon(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .iter()
                .map(|(k, v)| {
                    // Fold an alias only when the preferred spelling is not there too: with
                    // both present they are two fields, and folding would hide one of them.
                    let name = KEY_ALIASES
                        .iter()
                        .find(|(from, to)| from == k && !map.contains_key(*to))
                        .map_or(k.as_str(), |(_, to)| to);
                    let v = match (name, v) {
                        ("type", Value::String(s)) => Value::String(
                            TYPE_ALIASES
                                .iter()
                                .find(|(from, _)| from == s)
                                .map_or(s.clone(), |(_, to)| (*to).into()),
                        ),
                        _ => canon(v, Some(name)),
                    };
                    (name.to_owned(), v)
                })
                .collect();
            if key == Some("userFiles") {
                for (k, _) in &mut entries {
                    if k == "key" && !map.contains_key("keyName") {
                        *k = "keyName".into();
                    } else if k == "fileName" && !map.contains_key("userFilename") {
                        *k = "userFilename".into();
                    }
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect::<Map<String, Value>>())
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(|v| canon(v, key)).collect();
            if key.is_some_and(|k| SET_LIKE.contains(&k)) {
                items.sort_by_cached_key(sort_key);
                items.dedup();
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// Orders list items by their natural name where they have one, else by their JSON text.
fn sort_key(v: &Value) -> String {
    if let Value::Object(m) = v {
        for field in ["name", "columnName", "tableName", "query", "tag", "columnTag", "username"] {
            if let Some(Value::String(s)) = m.get(field) {
                let schema = m.get("schema").and_then(Value::as_str).unwrap_or_default();
                return format!("{schema}\u{0}{s}\u{0}{v}");
            }
        }
    }
    v.to_string()
}

/// A stable text of a canonical value (for digests and fingerprints).
pub fn canonical_text(value: &Value) -> String {
    canonical(value).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn key_order_and_set_like_list_order_do_not_matter() {
        let a = json!({"name": "P", "tags": ["b", "a"], "purposes": ["y", "x"]});
        let b = json!({"purposes": ["x", "y"], "tags": ["a", "b", "a"], "name": "P"});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn ordered_lists_keep_their_order() {
        let a = json!({"actions": [{"rules": [{"type": "Masking"}, {"type": "Minimization"}]}]});
        let b = json!({"actions": [{"rules": [{"type": "Minimization"}, {"type": "Masking"}]}]});
        assert_ne!(canonical(&a), canonical(&b));
    }

    #[test]
    fn documented_spelling_drift_is_folded() {
        let a = json!({
            "allowedMaskedJoins": true,
            "subscriptionPolicy": {"approvals": [{"requiredPermissions": "OWNER"}]},
            "actions": [{"rules": [{"type": "Row Restriction by User Entitlements"}]}],
            "connection": {"userFiles": [{"key": "PRIV_KEY_FILE", "fileName": "k.p8", "content": "x"}]}
        });
        let b = json!({
            "allowMaskedJoins": true,
            "subscriptionPolicy": {"approvals": [{"requiredPermission": "OWNER"}]},
            "actions": [{"rules": [{"type": "Row Restriction By User Entitlements"}]}],
            "connection": {"userFiles": [{"keyName": "PRIV_KEY_FILE", "userFilename": "k.p8", "content": "x"}]}
        });
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn both_spellings_present_stay_two_fields() {
        let a = json!({"approvals": [{"requiredPermission": "OWNER", "requiredPermissions": "GOVERNANCE"}],
                       "connection": {"userFiles": [{"key": "A", "keyName": "B", "content": "x"}]}});
        let b = json!({"approvals": [{"requiredPermission": "OWNER", "requiredPermissions": "OWNER"}],
                       "connection": {"userFiles": [{"key": "C", "keyName": "B", "content": "x"}]}});
        assert_ne!(canonical(&a)["approvals"], canonical(&b)["approvals"]);
        assert_ne!(canonical(&a)["connection"], canonical(&b)["connection"]);
    }

    #[test]
    fn owners_and_sources_sort_by_name() {
        let a = json!({"owners": [{"type": "user", "name": "b"}, {"type": "group", "name": "a"}],
                       "sources": [{"tableName": "T2", "schema": "S"}, {"tableName": "T1", "schema": "S"}]});
        let c = canonical(&a);
        assert_eq!(c["owners"][0]["name"], "a");
        assert_eq!(c["sources"][0]["tableName"], "T1");
    }
}
