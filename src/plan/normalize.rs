//! Canonical form of payloads, so that plans show real changes and nothing else.
//!
//! Two payloads that Immuta treats the same must compare equal: mapping keys are sorted, lists
//! whose order carries no meaning (tags, owners, groups, purposes, data sources, sources,
//! circumstances, subpurposes...) are sorted, and documented spelling drift is folded to the
//! preferred spelling (`requiredPermissions` -> `requiredPermission`, `allowedMaskedJoins` ->
//! `allowMaskedJoins`, `Row Restriction by User Entitlements` -> `... By ...`, `licensekey` ->
//! `licenseKey`, `userFiles` `key`/`fileName` -> `keyName`/`userFilename`). The canonical form is
//! only compared and displayed; the payload posted is always the document as written.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// Lists (by their key) whose order Immuta ignores: sorted here, and diffed as sets
/// ([`diff`](super::diff)).
pub(crate) const SET_LIKE: &[&str] = &[
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
    canon(value.clone(), None)
}

/// The canonical form of a payload the caller owns (its strings are moved, not copied).
pub fn canonical_owned(value: Value) -> Value {
    canon(value, None)
}

fn canon(value: Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            // Fold an alias only when the preferred spelling is not there too: with both
            // present they are two fields, and folding would hide one of them.
            let renamed: Vec<Option<&'static str>> = map
                .keys()
                .map(|k| {
                    KEY_ALIASES
                        .iter()
                        .find(|(from, to)| from == k && !map.contains_key(*to))
                        .map(|(_, to)| *to)
                })
                .collect();
            let user_files = key == Some("userFiles");
            let (has_key_name, has_user_filename) =
                (map.contains_key("keyName"), map.contains_key("userFilename"));
            let mut entries: Vec<(String, Value)> = map
                .into_iter()
                .zip(renamed)
                .map(|((k, v), to)| {
                    let mut name = to.map_or(k, str::to_owned);
                    let v = match (name.as_str(), v) {
                        ("type", Value::String(s)) => Value::String(
                            TYPE_ALIASES
                                .iter()
                                .find(|(from, _)| *from == s)
                                .map_or(s, |(_, to)| (*to).into()),
                        ),
                        (n, v) => canon(v, Some(n)),
                    };
                    if user_files {
                        if name == "key" && !has_key_name {
                            name = "keyName".into();
                        } else if name == "fileName" && !has_user_filename {
                            name = "userFilename".into();
                        }
                    }
                    (name, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect::<Map<String, Value>>())
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(|v| canon(v, key)).collect();
            if key.is_some_and(|k| SET_LIKE.contains(&k)) {
                items.sort_by(order);
                items.dedup();
            }
            Value::Array(items)
        }
        other => other,
    }
}

/// Orders list items as their [`sort_key`]s would (digests in existing state files depend on
/// that order), without building the keys where they are not needed: two plain strings compare
/// as their JSON texts do, two named items by schema and name (JSON text only on a tie).
pub(crate) fn order(a: &Value, b: &Value) -> Ordering {
    // serde_json escapes only `"`, `\` and control characters.
    let plain = |s: &str| !s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20);
    let no_nul = |(schema, name): (&str, &str)| !schema.contains('\0') && !name.contains('\0');
    match (a, b) {
        (Value::String(x), Value::String(y)) if plain(x) && plain(y) => {
            x.bytes().chain([b'"']).cmp(y.bytes().chain([b'"']))
        }
        _ => match (natural(a), natural(b)) {
            (Some(x), Some(y)) if no_nul(x) && no_nul(y) => {
                x.cmp(&y).then_with(|| a.to_string().cmp(&b.to_string()))
            }
            _ => sort_key(a).cmp(&sort_key(b)),
        },
    }
}

/// The schema (or `""`) and natural name of a list item that has one.
pub(crate) fn natural(v: &Value) -> Option<(&str, &str)> {
    let Value::Object(m) = v else { return None };
    ["name", "columnName", "tableName", "table", "query", "tag", "columnTag", "username"]
        .iter()
        .find_map(|field| match m.get(*field) {
            Some(Value::String(s)) => {
                Some((m.get("schema").and_then(Value::as_str).unwrap_or_default(), s.as_str()))
            }
            _ => None,
        })
}

/// Orders list items by their natural name where they have one, else by their JSON text.
fn sort_key(v: &Value) -> String {
    match natural(v) {
        Some((schema, name)) => format!("{schema}\u{0}{name}\u{0}{v}"),
        None => v.to_string(),
    }
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

    #[test]
    fn list_order_is_the_order_of_the_sort_keys() {
        use proptest::prelude::*;
        let text = prop::sample::select(vec![
            "", "a", "a!", "a b", "ab", "a\"", "a\\", "b", "a\u{1}", "\u{e9}", "a\0b",
        ]);
        let item = prop_oneof![
            text.clone().prop_map(|s| json!(s)),
            (text.clone(), text.clone()).prop_map(|(s, n)| json!({"schema": s, "name": n})),
            (text.clone(), 0..3i64).prop_map(|(n, x)| json!({"tableName": n, "x": x})),
            (0..3i64).prop_map(|n| json!(n)),
            text.prop_map(|t| json!({"tag": t})),
        ];
        proptest!(|(items in prop::collection::vec(item, 0..12))| {
            let mut fast = items.clone();
            fast.sort_by(order);
            let mut keyed = items;
            keyed.sort_by_cached_key(sort_key);
            prop_assert_eq!(fast, keyed);
        });
    }
}
