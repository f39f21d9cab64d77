//! JSON value helpers: canonical form, merge patch, and field readers that name the field on error.

use serde_json::{Map, Value};

use super::http::ApiError;

/// Returns `value` with every object's keys sorted, recursively.
///
/// Stored payloads are kept in this form so that "identical re-post" comparisons and the data
/// file do not depend on the key order a client happened to send.
pub(crate) fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Applies an RFC 7396 JSON merge patch to `target`.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Joins a parent field path and a child key (`sources[0]` + `tags` = `sources[0].tags`).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// Borrows `value` as an object, or fails naming `path`.
pub(crate) fn as_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| ApiError::bad_request(format!("{path} must be an object")))
}

/// A required, non-empty string field.
pub(crate) fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<&'a str, ApiError> {
    let path = join(parent, key);
    match obj.get(key) {
        None | Some(Value::Null) => Err(ApiError::bad_request(format!("{path} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::bad_request(format!("{path} must not be empty")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("{path} must be a string"))),
    }
}

/// An optional string field (`null` counts as absent).
pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("{} must be a string", join(parent, key)))),
    }
}

/// An optional boolean field (`null` counts as absent).
pub(crate) fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_request(format!("{} must be a boolean", join(parent, key)))),
    }
}

/// An optional object field (`null` counts as absent).
pub(crate) fn opt_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ApiError::bad_request(format!("{} must be an object", join(parent, key)))),
    }
}

/// An optional array field (`null` counts as absent).
pub(crate) fn opt_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<&'a Vec<Value>>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(ApiError::bad_request(format!("{} must be an array", join(parent, key)))),
    }
}

/// An optional array of strings (`null` counts as absent).
pub(crate) fn opt_str_list(
    obj: &Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(items) = opt_array(obj, key, parent)? else {
        return Ok(None);
    };
    let path = join(parent, key);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(ApiError::bad_request(format!("{path}[{i}] must be a string"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
