//! Purposes: `POST /api/v2/purpose` (upsert by `name`, with the subpurpose hierarchy), and the V1
//! `GET /governance/purpose`, `GET /governance/purpose/{id}` and
//! `DELETE /governance/purpose/{id}` (which cascades to subpurposes).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::Path;
use serde_json::{Map, Value, json};

use super::Permission;
use super::clock::now_iso;
use super::http::{ApiError, ApiResult, Call, Param, ok};
use super::json::{as_object, opt_array, opt_str, req_str};
use super::store::{Purpose, Store, next_id};
use super::v1::{self, Envelope, Kind};

/// The V1 purpose collection.
const KIND: Kind =
    Kind { noun: "purpose", path: "/governance/purpose", delete: Permission::Governance };

/// Shown when neither a purpose nor any ancestor has an `acknowledgement`.
pub(crate) const DEFAULT_ACKNOWLEDGEMENT: &str =
    "I will use the data only for the purpose stated and in line with its policies.";

/// One purpose a payload asks for.
#[derive(Debug)]
struct Desired {
    name: String,
    parent: Option<String>,
    fields: Map<String, Value>,
}

/// `POST /api/v2/purpose`.
pub(crate) async fn post(call: Call) -> ApiResult {
    let params = [Param::Flag("reAcknowledgeRequired")];
    let dry_run = call.v2(Permission::Governance, "POST /api/v2/purpose", &params)?.dry_run;
    let payload = call.stored_payload()?;
    let mut desired = Vec::new();
    flatten(as_object(&payload, "the request body")?, None, "", &mut desired)?;
    let response = call.state.mutate(!dry_run, |store| upsert(store, desired, dry_run)).await?;
    ok(response)
}

/// Flattens a purpose and its subpurposes (depth first), checking names.
fn flatten(
    obj: &Map<String, Value>,
    parent: Option<&str>,
    path: &str,
    out: &mut Vec<Desired>,
) -> ApiResult<()> {
    let name = req_str(obj, "name", path)?;
    let name_path = super::json::join(path, "name");
    if let Some(parent) = parent {
        let child = name.strip_prefix(parent).and_then(|rest| rest.strip_prefix('.'));
        if child.is_none_or(|c| c.trim().is_empty()) {
            return Err(ApiError::bad_request(format!(
                "{name_path}: subpurpose {name:?} must be named after its parent: \"{parent}.<name>\""
            )));
        }
    }
    if out.iter().any(|d| d.name == name) {
        return Err(ApiError::bad_request(format!("{name_path}: purpose {name:?} appears twice")));
    }
    opt_str(obj, "acknowledgement", path)?;
    opt_str(obj, "description", path)?;
    let fields: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "name" && k.as_str() != "subpurposes")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.push(Desired { name: name.to_owned(), parent: parent.map(str::to_owned), fields });
    for (i, sub) in opt_array(obj, "subpurposes", path)?.into_iter().flatten().enumerate() {
        let sub_path = super::json::join(path, &format!("subpurposes[{i}]"));
        flatten(as_object(sub, &sub_path)?, Some(name), &sub_path, out)?;
    }
    Ok(())
}

fn upsert(store: &mut Store, desired: Vec<Desired>, dry_run: bool) -> ApiResult<Value> {
    let Some(root) = desired.first().map(|d| d.name.clone()) else {
        return Err(ApiError::bad_request("name is required"));
    };
    let root = &root;
    let existing = store.purpose_by_name(root);
    if let Some(parent) = existing.and_then(|p| p.parent.as_deref()) {
        return Err(ApiError::bad_request(format!(
            "name: {root:?} is a subpurpose of {parent:?}; post the root purpose instead"
        )));
    }
    let current: BTreeSet<u64> = if existing.is_some() {
        store.purpose_subtree(root).into_iter().collect()
    } else {
        BTreeSet::new()
    };
    for d in &desired {
        if let Some(other) = store.purpose_by_name(&d.name)
            && !current.contains(&other.id)
        {
            return Err(ApiError::bad_request(format!(
                "purpose {:?} already exists outside the {root:?} hierarchy",
                d.name
            )));
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    let removed: Vec<u64> = current
        .iter()
        .copied()
        .filter(|id| store.purposes.get(id).is_some_and(|p| !wanted.contains(p.name.as_str())))
        .collect();
    let removed_names: BTreeSet<&str> =
        removed.iter().filter_map(|id| store.purposes.get(id)).map(|p| p.name.as_str()).collect();
    if let Some((project, purpose)) = store.project_using_purposes(&removed_names) {
        return Err(ApiError::conflict(format!(
            "subpurpose {purpose:?} cannot be removed: project {project:?} uses it"
        )));
    }
    let changed: Vec<&Desired> = desired
        .iter()
        .filter(|d| {
            store
                .purpose_by_name(&d.name)
                .is_none_or(|p| p.parent != d.parent || p.fields != d.fields)
        })
        .collect();
    let creating = existing.is_none();
    let updating = !creating && (!changed.is_empty() || !removed.is_empty());
    let mut root_id = existing.map(|p| p.id);
    if !dry_run && (creating || updating) {
        let now = now_iso();
        for id in &removed {
            store.purposes.remove(id);
        }
        let changed: BTreeMap<String, (Option<String>, Map<String, Value>)> = changed
            .into_iter()
            .map(|d| (d.name.clone(), (d.parent.clone(), d.fields.clone())))
            .collect();
        for (name, (parent, fields)) in changed {
            match store.purposes.values_mut().find(|p| p.name == name) {
                Some(p) => {
                    p.parent = parent;
                    p.fields = fields;
                    p.updated_at.clone_from(&now);
                }
                None => {
                    let id = next_id(&mut store.ids.purpose);
                    let purpose = Purpose {
                        id,
                        name: name.clone(),
                        parent,
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        fields,
                    };
                    store.purposes.insert(id, purpose);
                }
            }
        }
        root_id = store.purpose_by_name(root).map(|p| p.id);
    }
    Ok(json!({
        "dryRun": dry_run,
        "creating": creating,
        "updating": updating,
        "purposeId": root_id,
    }))
}

/// The V1 view of a purpose: flat, with its full name and its children's names.
fn view(store: &Store, purpose: &Purpose, deleted: bool) -> Value {
    let own = |p: &Purpose, k: &str| p.fields.get(k).and_then(Value::as_str).map(str::to_owned);
    // Inherit the nearest ancestor's acknowledgement.
    let mut acknowledgement = own(purpose, "acknowledgement");
    let mut parent = purpose.parent.clone();
    while acknowledgement.is_none() {
        let Some(p) = parent.as_deref().and_then(|n| store.purpose_by_name(n)) else { break };
        acknowledgement = own(p, "acknowledgement");
        parent = p.parent.clone();
    }
    let children: Vec<&str> = store
        .purposes
        .values()
        .filter(|p| p.parent.as_deref() == Some(purpose.name.as_str()))
        .map(|p| p.name.as_str())
        .collect();
    json!({
        "id": purpose.id,
        "name": purpose.name,
        "parent": purpose.parent,
        "description": own(purpose, "description"),
        "acknowledgement": acknowledgement.as_deref().unwrap_or(DEFAULT_ACKNOWLEDGEMENT),
        "displayAcknowledgement": true,
        "addedByProfile": Value::Null,
        "deleted": deleted,
        "systemGenerated": false,
        "staged": false,
        "subpurposes": children,
        "policyMetadata": Value::Null,
        "createdAt": purpose.created_at,
        "updatedAt": purpose.updated_at,
    })
}

/// `GET /governance/purpose`: `{purposes, count}`, flat, by id.
pub(crate) async fn list(call: Call) -> ApiResult {
    v1::list(&call, &KIND, Envelope::Counted("purposes"), usize::MAX, |store, listing| {
        listing.page_of(store.purposes.values().filter(|p| listing.matches(&p.name)), |p| {
            view(store, p, false)
        })
    })
}

/// `GET /governance/purpose/{id}`.
pub(crate) async fn get(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::get(&call, &KIND, &id, |store, id| store.purposes.get(&id).map(|p| view(store, p, false)))
}

/// `DELETE /governance/purpose/{id}`: deletes the purpose and its subpurposes, unless a project
/// uses one of them (409).
pub(crate) async fn delete(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::delete(&call, &KIND, &id, |store, id| {
        let Some(purpose) = store.purposes.get(&id) else { return Ok(None) };
        let subtree = store.purpose_subtree(&purpose.name);
        let names: BTreeSet<&str> =
            subtree.iter().filter_map(|i| store.purposes.get(i)).map(|p| p.name.as_str()).collect();
        if let Some((project, used)) = store.project_using_purposes(&names) {
            return Err(ApiError::conflict(format!(
                "purpose {:?} cannot be deleted: project {project:?} uses {used:?}",
                purpose.name
            )));
        }
        let answer = view(store, purpose, true);
        for i in subtree {
            store.purposes.remove(&i);
        }
        Ok(Some(answer))
    })
    .await
}
