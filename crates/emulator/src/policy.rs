//! Global policies: `POST /api/v2/policy` (upsert by `policyKey`), and the V1
//! `GET /policy/global`, `GET /policy/global/{id}` and `DELETE /policy/global/{id}`.

use axum::extract::Path;
use serde_json::{Map, Value, json};

use super::Permission;
use super::clock::now_iso;
use super::http::{ApiError, ApiResult, Call, Param, ok};
use super::json::{as_object, opt_array, opt_bool, opt_object, opt_str, req_str};
use super::store::{Policy, next_id};
use super::v1::{self, Envelope, Kind};

const SUBSCRIPTION_TYPES: &[&str] = &["anyone", "approval", "entitlements", "manual"];

/// The V1 policy collection.
const KIND: Kind = Kind { noun: "policy", path: "/policy/global", delete: Permission::Governance };

/// `POST /api/v2/policy`.
pub(crate) async fn post(call: Call) -> ApiResult {
    let params = [Param::Flag("reCertify")];
    let dry_run = call.v2(Permission::Governance, "POST /api/v2/policy", &params)?.dry_run;
    let payload = call.stored_payload()?;
    let checked = validate(&payload, call.state.rule_types())?;
    let response = call
        .state
        .mutate(!dry_run, |store| {
            if let Some(path) = &checked.k_anonymization
                && !store.settings.k_anonymization
            {
                return Err(ApiError::unprocessable(format!(
                    "{path}: K-Anonymization masking is not activated on this tenant (an \
                     application admin must enable it in App Settings first)"
                )));
            }
            let now = now_iso();
            let existing = store.policies.values_mut().find(|p| p.policy_key == checked.key);
            let (creating, updating, id) = match existing {
                Some(policy) => {
                    let updating = policy.payload != payload;
                    if updating && !dry_run {
                        policy.payload = payload.clone();
                        policy.updated_at.clone_from(&now);
                    }
                    (false, updating, Some(policy.id))
                }
                None if dry_run => (true, false, None),
                None => {
                    let id = next_id(&mut store.ids.policy);
                    let policy = Policy {
                        id,
                        policy_key: checked.key.clone(),
                        payload: payload.clone(),
                        created_at: now.clone(),
                        updated_at: now,
                    };
                    store.policies.insert(id, policy);
                    (true, false, Some(id))
                }
            };
            Ok(json!({
                "dryRun": dry_run,
                "creating": creating,
                "updating": updating,
                "policyId": id,
            }))
        })
        .await?;
    ok(response)
}

/// What validation learned about a policy payload.
struct Checked {
    key: String,
    /// Path of the first rule using K-Anonymization masking, if any.
    k_anonymization: Option<String>,
}

/// Checks a payload; `rule_types` are the data-policy rule types accepted (both documented
/// spellings of "by"): [`EmulatorConfig::rule_types`](crate::EmulatorConfig::rule_types), the
/// list the spec loader accepts, so the two cannot drift apart.
fn validate(payload: &Value, rule_types: &[&str]) -> ApiResult<Checked> {
    let obj = as_object(payload, "the request body")?;
    let key = req_str(obj, "policyKey", "")?.to_owned();
    req_str(obj, "name", "")?;
    let kind = req_str(obj, "type", "")?;
    opt_bool(obj, "staged", "")?;
    opt_array(obj, "circumstances", "")?;
    if let Some(op) = opt_str(obj, "circumstanceOperator", "")?
        && op != "all"
        && op != "any"
    {
        return Err(ApiError::bad_request("circumstanceOperator must be all or any"));
    }
    let actions = match obj.get("actions") {
        None | Some(Value::Null) => return Err(ApiError::bad_request("actions is required")),
        Some(actions) => actions,
    };
    let mut k_anonymization = None;
    match kind {
        "subscription" => {
            let actions = actions.as_object().ok_or_else(|| {
                ApiError::bad_request("actions must be an object for a subscription policy")
            })?;
            let action_type = req_str(actions, "type", "actions")?;
            if !SUBSCRIPTION_TYPES.contains(&action_type) {
                return Err(ApiError::bad_request(format!(
                    "actions.type must be one of {} (got {action_type:?})",
                    SUBSCRIPTION_TYPES.join(", ")
                )));
            }
        }
        "data" => {
            let actions = actions.as_array().ok_or_else(|| {
                ApiError::bad_request("actions must be an array for a data policy")
            })?;
            for (i, action) in actions.iter().enumerate() {
                let path = format!("actions[{i}]");
                let action = as_object(action, &path)?;
                let rules = opt_array(action, "rules", &path)?
                    .ok_or_else(|| ApiError::bad_request(format!("{path}.rules is required")))?;
                for (j, rule) in rules.iter().enumerate() {
                    let path = format!("{path}.rules[{j}]");
                    if let Some(found) = validate_rule(as_object(rule, &path)?, &path, rule_types)?
                        && k_anonymization.is_none()
                    {
                        k_anonymization = Some(found);
                    }
                }
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "type must be subscription or data (got {other:?})"
            )));
        }
    }
    Ok(Checked { key, k_anonymization })
}

/// Checks one data-policy rule; returns the masking type's path when it is K-Anonymization.
fn validate_rule(
    rule: &Map<String, Value>,
    path: &str,
    rule_types: &[&str],
) -> ApiResult<Option<String>> {
    let rule_type = req_str(rule, "type", path)?;
    if !rule_types.contains(&rule_type) {
        return Err(ApiError::bad_request(format!(
            "{path}.type: unknown rule type {rule_type:?} (expected one of: {})",
            rule_types.join(", ")
        )));
    }
    if rule_type != "Masking" {
        return Ok(None);
    }
    let config = opt_object(rule, "config", path)?
        .ok_or_else(|| ApiError::bad_request(format!("{path}.config is required for Masking")))?;
    let config_path = format!("{path}.config");
    let masking = opt_object(config, "maskingConfig", &config_path)?.ok_or_else(|| {
        ApiError::bad_request(format!("{config_path}.maskingConfig is required for Masking"))
    })?;
    let type_path = format!("{config_path}.maskingConfig.type");
    match masking.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() => {
            Ok((t == "K-Anonymization").then_some(type_path))
        }
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::bad_request(format!(
            "{type_path} is required (maskingConfig.type is missing or null; in YAML write \
             \"Null\" in quotes, unquoted it is a null)"
        ))),
        Some(_) => Err(ApiError::bad_request(format!("{type_path} must be a string"))),
    }
}

/// The V1 view of a policy (V2 vocabulary in `actions`; see the module's assumptions).
pub(crate) fn view(policy: &Policy, deleted: bool) -> Value {
    let p = &policy.payload;
    let field = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": policy.id,
        "policyKey": policy.policy_key,
        "name": field("name"),
        "type": field("type"),
        "template": p.get("template").cloned().unwrap_or(Value::Bool(false)),
        "staged": p.get("staged").cloned().unwrap_or(Value::Bool(false)),
        "systemGenerated": false,
        "deleted": deleted,
        "certification": field("certification"),
        "actions": field("actions"),
        "circumstances": p.get("circumstances").cloned().unwrap_or_else(|| json!([])),
        "circumstanceOperator": p.get("circumstanceOperator").cloned().unwrap_or_else(|| json!("any")),
        "ownerRestrictions": field("ownerRestrictions"),
        "metadata": Value::Null,
        "clonedFrom": Value::Null,
        "createdBy": Value::Null,
        "createdByName": Value::Null,
        "createdAt": policy.created_at,
        "updatedAt": policy.updated_at,
    })
}

/// `GET /policy/global`: a bare array, by id; `searchText` filters names (substring, any case).
pub(crate) async fn list(call: Call) -> ApiResult {
    v1::list(&call, &KIND, Envelope::Array, usize::MAX, |store, listing| {
        listing.page_of(store.policies.values().filter(|p| listing.matches(name_of(p))), |p| {
            view(p, false)
        })
    })
}

fn name_of(policy: &Policy) -> &str {
    policy.payload.get("name").and_then(Value::as_str).unwrap_or("")
}

/// `GET /policy/global/{id}`.
pub(crate) async fn get(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::get(&call, &KIND, &id, |store, id| store.policies.get(&id).map(|p| view(p, false)))
}

/// `DELETE /policy/global/{id}`: answers the deleted policy.
pub(crate) async fn delete(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::delete(&call, &KIND, &id, |store, id| {
        Ok(store.policies.remove(&id).map(|p| view(&p, true)))
    })
    .await
}
