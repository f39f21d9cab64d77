//! The test controls under `/_emulator/` (no auth, never logged): reset, catalog, out-of-band
//! tampering, request log, faults, latency, settings, license users, token expiry, variants,
//! state dump.

use std::time::Duration;

use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::catalog::Catalog;
use super::clock::now_iso;
use super::data::remove_connection;
use super::http::{ApiError, ApiResult, Call, ok, parse_body, path_id};
use super::json::{as_object, canonical, merge_patch, opt_bool, opt_str, req_str};
use super::secrets::{Redaction, Secrets};
use super::state::{EmulatorState, lock};
use super::store::{DataSource, Purpose, Settings, Store, UsageUser};
use super::variants::Variants;

/// `POST /_emulator/reset`: an empty tenant. The catalog and settings are kept unless the body
/// says `{"catalog": true}` / `{"settings": true}`; keys stay; the request log, faults and latency
/// are cleared.
pub(crate) async fn reset(call: Call) -> ApiResult {
    let (catalog, settings) = if call.body.iter().all(u8::is_ascii_whitespace) {
        (false, false)
    } else {
        let v = call.object_body()?;
        let obj = as_object(&v, "the request body")?;
        (
            opt_bool(obj, "catalog", "")?.unwrap_or(false),
            opt_bool(obj, "settings", "")?.unwrap_or(false),
        )
    };
    call.state
        .mutate(true, |store| {
            let mut fresh = Store::default();
            if !catalog {
                fresh.catalog = std::mem::take(&mut store.catalog);
            }
            if !settings {
                fresh.settings = std::mem::take(&mut store.settings);
            }
            *store = fresh;
            Ok(())
        })
        .await?;
    lock(&call.state.inner.requests).clear();
    let mut faults = lock(&call.state.inner.faults);
    faults.clear();
    faults.latency = Duration::ZERO;
    drop(faults);
    ok(json!({ "reset": true }))
}

/// `GET /_emulator/catalog`.
pub(crate) async fn get_catalog(State(state): State<EmulatorState>) -> ApiResult {
    ok(json!(state.read(|store| store.catalog.clone())))
}

/// `PUT /_emulator/catalog`: replaces the whole catalog (JSON or YAML, the `--catalog` shape).
pub(crate) async fn put_catalog(call: Call) -> ApiResult {
    let value = parse_body(&call.headers, &call.body)?;
    let catalog: Catalog = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("the catalog is not valid: {e}")))?;
    let answer = json!(catalog);
    call.state
        .mutate(true, |store| {
            store.catalog = catalog;
            Ok(())
        })
        .await?;
    ok(answer)
}

/// Kinds the tamper endpoints understand, with what their key is.
const KINDS: &str = "data (connectionKey), datasource (id), policy (policyKey), project \
                     (projectKey), purpose (name)";

/// `PATCH /_emulator/objects/{kind}/{key}`: applies a JSON merge patch to a stored object, as if
/// someone had edited it in the UI. Answers the stored object after the patch.
pub(crate) async fn patch_object(
    Path((kind, key)): Path<(String, String)>,
    call: Call,
) -> ApiResult {
    let patch = call.object_body()?;
    let secrets = call.state.secrets();
    let answer =
        call.state.mutate(true, |store| patch_in(store, secrets, &kind, &key, &patch)).await?;
    ok(answer)
}

fn not_found(kind: &str, key: &str) -> ApiError {
    ApiError::not_found(format!("no {kind} object with key {key:?}"))
}

/// Merge-patches a V2 payload, keeping its natural key.
fn patch_payload(
    payload: &mut Value,
    secrets: Secrets,
    patch: &Value,
    key_field: &str,
    key: &str,
) -> ApiResult<()> {
    let mut patched = payload.clone();
    merge_patch(&mut patched, patch);
    secrets.redact(&mut patched, Redaction::Digest);
    if patched.get(key_field).and_then(Value::as_str) != Some(key) {
        return Err(ApiError::bad_request(format!("the patch must not change {key_field}")));
    }
    *payload = canonical(patched);
    Ok(())
}

/// Merge-patches a record through its JSON form.
fn patch_record<T: serde::Serialize + serde::de::DeserializeOwned>(
    record: &T,
    secrets: Secrets,
    patch: &Value,
) -> ApiResult<T> {
    let mut value = serde_json::to_value(record)
        .map_err(|e| ApiError::internal(format!("could not serialise the object: {e}")))?;
    merge_patch(&mut value, patch);
    secrets.redact(&mut value, Redaction::Digest);
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("the patched object is not valid: {e}")))
}

fn patch_in(
    store: &mut Store,
    secrets: Secrets,
    kind: &str,
    key: &str,
    patch: &Value,
) -> ApiResult<Value> {
    let now = now_iso();
    match kind {
        "data" => {
            let c = store.connections.get_mut(key).ok_or_else(|| not_found(kind, key))?;
            patch_payload(&mut c.payload, secrets, patch, "connectionKey", key)?;
            c.updated_at = now;
            Ok(c.payload.clone())
        }
        "datasource" => {
            let id = path_id(key, "data source")?;
            let ds = store.data_sources.get(&id).ok_or_else(|| not_found(kind, key))?;
            let mut patched: DataSource = patch_record(ds, secrets, patch)?;
            if patched.id != id || patched.connection_key != ds.connection_key {
                return Err(ApiError::bad_request("the patch must not change id or connectionKey"));
            }
            patched.updated_at = now;
            let answer = json!(patched);
            let tags: Vec<String> =
                patched.spec.all_tags().into_iter().map(str::to_owned).collect();
            store.data_sources.insert(id, patched);
            store.register_tags(tags.iter().map(String::as_str));
            Ok(answer)
        }
        "policy" => {
            let p = store.policies.values_mut().find(|p| p.policy_key == key);
            let p = p.ok_or_else(|| not_found(kind, key))?;
            patch_payload(&mut p.payload, secrets, patch, "policyKey", key)?;
            p.updated_at = now;
            Ok(p.payload.clone())
        }
        "project" => {
            let p = store.projects.values_mut().find(|p| p.project_key == key);
            let p = p.ok_or_else(|| not_found(kind, key))?;
            patch_payload(&mut p.payload, secrets, patch, "projectKey", key)?;
            p.updated_at = now;
            let payload = p.payload.clone();
            let tags: Vec<String> = p.names("tags").into_iter().map(str::to_owned).collect();
            store.register_tags(tags.iter().map(String::as_str));
            Ok(payload)
        }
        "purpose" => {
            let p = store.purpose_by_name(key).ok_or_else(|| not_found(kind, key))?;
            let mut patched: Purpose = patch_record(p, secrets, patch)?;
            if patched.id != p.id || patched.name != p.name {
                return Err(ApiError::bad_request("the patch must not change id or name"));
            }
            patched.updated_at = now;
            let answer = json!(patched);
            store.purposes.insert(patched.id, patched);
            Ok(answer)
        }
        other => Err(ApiError::bad_request(format!("unknown kind {other:?} (expected {KINDS})"))),
    }
}

/// `DELETE /_emulator/objects/{kind}/{key}`: deletes a stored object out of band (no checks, no
/// cascade beyond what the object owns: a `data` object takes its data sources with it, a
/// `purpose` its subpurposes).
pub(crate) async fn delete_object(
    State(state): State<EmulatorState>,
    Path((kind, key)): Path<(String, String)>,
) -> ApiResult {
    state
        .mutate(true, |store| {
            let found = match kind.as_str() {
                "data" => {
                    let found = store.connections.contains_key(&key);
                    remove_connection(store, &key);
                    found
                }
                "datasource" => {
                    let id = path_id(&key, "data source")?;
                    match store.data_sources.remove(&id) {
                        Some(ds) => {
                            store.prune_schema_projects(&ds.connection_key);
                            true
                        }
                        None => false,
                    }
                }
                "policy" => {
                    let before = store.policies.len();
                    store.policies.retain(|_, p| p.policy_key != key);
                    store.policies.len() != before
                }
                "project" => {
                    let before = store.projects.len();
                    store.projects.retain(|_, p| p.project_key != key);
                    store.projects.len() != before
                }
                "purpose" => {
                    let ids = store.purpose_subtree(&key);
                    for id in &ids {
                        store.purposes.remove(id);
                    }
                    !ids.is_empty()
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown kind {other:?} (expected {KINDS})"
                    )));
                }
            };
            if found { Ok(()) } else { Err(not_found(&kind, &key)) }
        })
        .await?;
    ok(json!({ "deleted": true }))
}

/// `GET /_emulator/requests`.
pub(crate) async fn requests(State(state): State<EmulatorState>) -> ApiResult {
    ok(json!(lock(&state.inner.requests).entries().collect::<Vec<_>>()))
}

/// `DELETE /_emulator/requests`.
pub(crate) async fn clear_requests(State(state): State<EmulatorState>) -> ApiResult {
    lock(&state.inner.requests).clear();
    ok(json!({ "cleared": true }))
}

/// `POST /_emulator/faults`: arms a fault rule; answers it.
pub(crate) async fn add_fault(call: Call) -> ApiResult {
    let value = call.object_body()?;
    let rule = lock(&call.state.inner.faults).add(&value)?;
    ok(json!(rule))
}

/// `GET /_emulator/faults`: the rules still armed and the latency.
pub(crate) async fn faults(State(state): State<EmulatorState>) -> ApiResult {
    let faults = lock(&state.inner.faults);
    let latency = u64::try_from(faults.latency.as_millis()).unwrap_or(u64::MAX);
    ok(json!({ "faults": faults.rules(), "latencyMs": latency }))
}

/// `DELETE /_emulator/faults`: disarms every rule (latency is kept).
pub(crate) async fn clear_faults(State(state): State<EmulatorState>) -> ApiResult {
    lock(&state.inner.faults).clear();
    ok(json!({ "cleared": true }))
}

/// `PUT /_emulator/latency {"ms": N}`: delay every non-control request by N ms (0 = off).
pub(crate) async fn latency(call: Call) -> ApiResult {
    let value = call.object_body()?;
    let ms = value
        .get("ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::bad_request("ms is required: a non-negative integer"))?;
    lock(&call.state.inner.faults).latency = Duration::from_millis(ms);
    ok(json!({ "ms": ms }))
}

/// `GET /_emulator/settings`.
pub(crate) async fn get_settings(State(state): State<EmulatorState>) -> ApiResult {
    ok(json!(state.read(|store| store.settings.clone())))
}

/// `PUT /_emulator/settings {"kAnonymization": bool}`: changes the fields given.
pub(crate) async fn put_settings(call: Call) -> ApiResult {
    let value = call.object_body()?;
    let obj = as_object(&value, "the request body")?;
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "kAnonymization") {
        return Err(ApiError::bad_request(format!(
            "unknown setting {unknown} (known: kAnonymization)"
        )));
    }
    let k_anonymization = opt_bool(obj, "kAnonymization", "")?;
    let settings: Settings = call
        .state
        .mutate(true, |store| {
            if let Some(k) = k_anonymization {
                store.settings.k_anonymization = k;
            }
            Ok(store.settings.clone())
        })
        .await?;
    ok(json!(settings))
}

/// `PUT /_emulator/users`: replaces the users the license usage endpoints count. Body: an array
/// of `{userType: dataConsumer|policyOwner, name, email?, iamid?, userid?, active?}`.
pub(crate) async fn put_users(call: Call) -> ApiResult {
    let value = parse_body(&call.headers, &call.body)?;
    let items =
        value.as_array().ok_or_else(|| ApiError::bad_request("the body must be an array"))?;
    let mut users = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("[{i}]");
        let obj = as_object(item, &path)?;
        let user_type = req_str(obj, "userType", &path)?;
        if user_type != "dataConsumer" && user_type != "policyOwner" {
            return Err(ApiError::bad_request(format!(
                "{path}.userType must be dataConsumer or policyOwner"
            )));
        }
        let name = req_str(obj, "name", &path)?;
        let email = opt_str(obj, "email", &path)?.unwrap_or(name);
        users.push(UsageUser {
            user_type: user_type.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
            iamid: opt_str(obj, "iamid", &path)?.unwrap_or("bim").to_owned(),
            userid: opt_str(obj, "userid", &path)?.unwrap_or(email).to_owned(),
            active: opt_bool(obj, "active", &path)?.unwrap_or(true),
        });
    }
    let count = users.len();
    call.state
        .mutate(true, |store| {
            store.users = users;
            Ok(())
        })
        .await?;
    ok(json!({ "users": count }))
}

/// `POST /_emulator/expire-tokens`: every bearer token issued so far is now expired.
pub(crate) async fn expire_tokens(State(state): State<EmulatorState>) -> ApiResult {
    lock(&state.inner.auth).expire_tokens();
    ok(json!({ "expired": true }))
}

/// The body of `GET`/`PUT /_emulator/variants`.
fn behaviour_view(state: &EmulatorState) -> Value {
    let b = *lock(&state.inner.behaviour);
    let ms = u64::try_from(b.creation_delay.as_millis()).unwrap_or(u64::MAX);
    json!({ "variants": b.variants, "label": b.variants.label(), "creationDelayMs": ms })
}

/// `GET /_emulator/variants`: `{variants, label, creationDelayMs}`.
pub(crate) async fn get_variants(State(state): State<EmulatorState>) -> ApiResult {
    ok(behaviour_view(&state))
}

/// `PUT /_emulator/variants {"variants"?: {...}, "creationDelayMs"?: N}`: `variants` replaces
/// every dimension (those it leaves out are the defaults); `creationDelayMs` the creation delay.
pub(crate) async fn put_variants(call: Call) -> ApiResult {
    let value = call.object_body()?;
    let obj = as_object(&value, "the request body")?;
    if let Some(unknown) =
        obj.keys().find(|k| !["variants", "creationDelayMs"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown field {unknown} (expected variants, creationDelayMs)"
        )));
    }
    let variants = match obj.get("variants") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Variants>(v.clone())
                .map_err(|e| ApiError::bad_request(format!("variants: {e}")))?,
        ),
    };
    let delay = match obj.get("creationDelayMs") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Duration::from_millis(v.as_u64().ok_or_else(|| {
            ApiError::bad_request("creationDelayMs must be a non-negative integer")
        })?)),
    };
    {
        let mut behaviour = lock(&call.state.inner.behaviour);
        if let Some(v) = variants {
            behaviour.variants = v;
        }
        if let Some(d) = delay {
            behaviour.creation_delay = d;
        }
    }
    ok(behaviour_view(&call.state))
}

/// `GET /_emulator/state`: the whole store as JSON (secrets are digests).
pub(crate) async fn dump(State(state): State<EmulatorState>) -> ApiResult {
    let value = state
        .read(|store| serde_json::to_value(store))
        .map_err(|e| ApiError::internal(format!("could not serialise the store: {e}")))?;
    ok(value)
}
