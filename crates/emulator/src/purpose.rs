//! Purposes: `POST /api/v2/purpose` (upsert by `name`, with the subpurpose hierarchy), and the V1
//! `GET /governance/purpose`, `GET /governance/purpose/{id}` and
//! `DELETE /governance/purpose/{id}` (which cascades to subpurposes).
//!
//! How the V1 reads show subpurposes is the `purposes` variant: nested in their root as objects
//! without ids (the default, Terraform's `PurposeResponse`), objects with ids, full names
//! (Swagger's `Model21`), or flat, every purpose a row of its own.
//!
//! A post with `reAcknowledgeRequired=true` that changes a purpose's statement makes every
//! project using it ask its owner to acknowledge it again (see `project.rs`).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::Path;
use serde_json::{Map, Value, json};

use super::Permission;
use super::clock::now_iso;
use super::http::query_bool;
use super::http::{ApiError, ApiResult, Call, Param, ok};
use super::json::{as_object, opt_array, opt_str, req_str};
use super::store::{Purpose, Store, next_id};
use super::v1::{self, Envelope, Kind};
use super::variants::Purposes;

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
    let re_acknowledge = query_bool(&call.query, "reAcknowledgeRequired")?;
    let payload = call.stored_payload()?;
    let mut desired = Vec::new();
    flatten(as_object(&payload, "the request body")?, None, "", &mut desired)?;
    let response = call
        .state
        .mutate(!dry_run, |store| upsert(store, desired, dry_run, re_acknowledge))
        .await?;
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

fn upsert(
    store: &mut Store,
    desired: Vec<Desired>,
    dry_run: bool,
    re_acknowledge: bool,
) -> ApiResult<Value> {
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
        if re_acknowledge {
            // Members of projects using a purpose whose statement changed acknowledge it again:
            // the purposes whose own statement changed, and those below them that inherit it.
            // (`desired` lists parents before their children.)
            let mut restated: BTreeSet<String> = BTreeSet::new();
            for d in &desired {
                let own = d.fields.get("acknowledgement");
                let before =
                    store.purpose_by_name(&d.name).map(|p| p.fields.get("acknowledgement"));
                let changed_here = before.is_some_and(|b| b != own);
                let inherited =
                    own.is_none() && d.parent.as_ref().is_some_and(|p| restated.contains(p));
                if changed_here || inherited {
                    restated.insert(d.name.clone());
                }
            }
            store.require_acknowledgement(&restated);
        }
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

/// The statement a purpose shows: its own, or its nearest ancestor's, or the default.
fn acknowledgement(store: &Store, purpose: &Purpose) -> String {
    let own =
        |p: &Purpose| p.fields.get("acknowledgement").and_then(Value::as_str).map(str::to_owned);
    let mut found = own(purpose);
    let mut parent = purpose.parent.clone();
    while found.is_none() {
        let Some(p) = parent.as_deref().and_then(|n| store.purpose_by_name(n)) else { break };
        found = own(p);
        parent = p.parent.clone();
    }
    found.unwrap_or_else(|| DEFAULT_ACKNOWLEDGEMENT.to_owned())
}

/// The children of `purpose`, by id.
fn children<'a>(store: &'a Store, purpose: &'a Purpose) -> impl Iterator<Item = &'a Purpose> {
    store.purposes.values().filter(move |p| p.parent.as_deref() == Some(purpose.name.as_str()))
}

/// The subpurposes of `purpose` as the `purposes` variant shows them.
fn subpurposes(store: &Store, purpose: &Purpose, style: Purposes) -> Vec<Value> {
    match style {
        Purposes::Flat => children(store, purpose).map(|p| json!(p.name)).collect(),
        Purposes::Names => {
            // Every subpurpose below, by its full name.
            let mut names = Vec::new();
            let mut stack: Vec<&Purpose> = children(store, purpose).collect();
            while let Some(p) = stack.pop() {
                names.push(p.name.clone());
                stack.extend(children(store, p));
            }
            names.sort();
            names.into_iter().map(Value::String).collect()
        }
        Purposes::Nested | Purposes::NestedIds => children(store, purpose)
            .map(|p| {
                let mut object = json!({
                    "name": p.name,
                    "description": p.fields.get("description").and_then(Value::as_str).unwrap_or(""),
                    "acknowledgement": acknowledgement(store, p),
                    "subpurposes": subpurposes(store, p, style),
                });
                if style == Purposes::NestedIds {
                    object["id"] = json!(p.id);
                }
                object
            })
            .collect(),
    }
}

/// The V1 view of a purpose: its full name, and its subpurposes as `style` shows them (a flat
/// row adds `parent`).
fn view(store: &Store, purpose: &Purpose, deleted: bool, style: Purposes) -> Value {
    let own = |k: &str| purpose.fields.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut view = json!({
        "id": purpose.id,
        "name": purpose.name,
        "description": own("description"),
        "acknowledgement": acknowledgement(store, purpose),
        "displayAcknowledgement": true,
        "addedByProfile": Value::Null,
        "deleted": deleted,
        "systemGenerated": false,
        "staged": false,
        "subpurposes": subpurposes(store, purpose, style),
        "policyMetadata": Value::Null,
        "createdAt": purpose.created_at,
        "updatedAt": purpose.updated_at,
    });
    if style == Purposes::Flat {
        view["parent"] = json!(purpose.parent);
    }
    view
}

/// Default page size of `GET /governance/purpose` (Swagger).
const DEFAULT_PAGE_SIZE: usize = 50;

/// `GET /governance/purpose`: `{purposes, count}`, by id: root purposes with their
/// subpurposes nested, or (the `flat` variant) every purpose; `noLimit=true` unpaged.
pub(crate) async fn list(call: Call) -> ApiResult {
    let style = call.state.variants().purposes;
    let size = if query_bool(&call.query, "noLimit")? { usize::MAX } else { DEFAULT_PAGE_SIZE };
    v1::list(&call, &KIND, Envelope::Counted("purposes"), size, |store, listing| {
        let rows = store
            .purposes
            .values()
            .filter(|p| style == Purposes::Flat || p.parent.is_none())
            .filter(|p| listing.matches(&p.name));
        listing.page_of(rows, |p| view(store, p, false, style))
    })
}

/// `GET /governance/purpose/{id}` (`includeSubpurposes=true` nests them as objects, as
/// Terraform reads them).
pub(crate) async fn get(Path(id): Path<String>, call: Call) -> ApiResult {
    let style = match call.state.variants().purposes {
        Purposes::Flat | Purposes::Names if query_bool(&call.query, "includeSubpurposes")? => {
            Purposes::Nested
        }
        other => other,
    };
    v1::get(&call, &KIND, &id, |store, id| {
        store.purposes.get(&id).map(|p| view(store, p, false, style))
    })
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
        let answer = view(store, purpose, true, Purposes::Flat);
        for i in subtree {
            store.purposes.remove(&i);
        }
        Ok(Some(answer))
    })
    .await
}
