//! Projects: `POST /api/v2/project` (upsert by `projectKey`), `DELETE /api/v2/project/{key}`,
//! and the V1 `GET /project`, `GET /project/{id}`, `GET /project/{id}/dataSources`,
//! `POST /project/{id}/members/{subscriptionId}/acknowledge` and `DELETE /project/{id}` (the
//! only way to delete a schema project, which deletes its data sources).
//!
//! **Acknowledgement** (the `acknowledgement` variant, `required` by default). A project's owner
//! (the key that created it, with the membership `subscriptionId`) must acknowledge the
//! purposes the project uses. A post naming a purpose not acknowledged yet answers 400 "You
//! must first acknowledge ..."; a new project is then created without its purposes, which wait
//! as `stagedPurposes` (Terraform finds the project by name after the error: TF@a382f91:
//! immuta/resource_project.go:160-211). `POST /project/{id}/members/{subscriptionId}/
//! acknowledge` (body `{}` or `{text}`, Swagger:8258-8290) acknowledges every purpose used or
//! staged and answers `{acknowledgeRequired: false, purposes}`. A purpose posted with
//! `reAcknowledgeRequired=true` and a new statement must be acknowledged again. Dry runs are
//! not refused (no source shows what they answer) unless the variant is
//! `required-in-dry-runs`. `GET /project/{id}` shows `subscriptionId`, `acknowledgeRequired`
//! and `stagedPurposes`.

use std::collections::BTreeSet;

use axum::extract::Path;
use serde_json::{Value, json};

use super::Permission;
use super::clock::now_iso;
use super::http::{ApiError, ApiResult, Call, Param, ok, path_id};
use super::json::{as_object, opt_bool, opt_object, opt_str, opt_str_list, req_str};
use super::store::{DataSource, Project, SchemaProject, Store, next_id};
use super::v1::{self, Envelope, Kind};
use super::variants::Acknowledgement;

/// Default page size of `GET /project` (documented by Immuta).
const DEFAULT_PAGE_SIZE: usize = 10;

/// The V1 project collection (user and schema projects).
const KIND: Kind = Kind { noun: "project", path: "/project", delete: Permission::CreateProject };

/// `POST /api/v2/project`.
pub(crate) async fn post(call: Call) -> ApiResult {
    let params = [Param::Flag("deleteDataSourcesOnWorkspaceDelete")];
    let dry_run = call.v2(Permission::CreateProject, "POST /api/v2/project", &params)?.dry_run;
    let payload = call.stored_payload()?;
    let obj = as_object(&payload, "the request body")?;
    let key = req_str(obj, "projectKey", "")?.to_owned();
    req_str(obj, "name", "")?;
    opt_str(obj, "description", "")?;
    opt_str(obj, "documentation", "")?;
    opt_bool(obj, "allowMaskedJoins", "")?;
    opt_bool(obj, "equalization", "")?;
    opt_object(obj, "workspace", "")?;
    if let Some(policy) = opt_object(obj, "subscriptionPolicy", "")? {
        let kind = req_str(policy, "type", "subscriptionPolicy")?;
        if !["anyone", "approval", "entitlements", "manual"].contains(&kind) {
            return Err(ApiError::bad_request(format!(
                "subscriptionPolicy.type must be anyone, approval, entitlements or manual (got \
                 {kind:?})"
            )));
        }
    }
    let purposes = opt_str_list(obj, "purposes", "")?.unwrap_or_default();
    let data_sources = opt_str_list(obj, "datasources", "")?.unwrap_or_default();
    let tags = opt_str_list(obj, "tags", "")?.unwrap_or_default();
    let has_workspace = obj.get("workspace").is_some_and(|w| !w.is_null());
    let name = req_str(obj, "name", "")?.to_owned();
    let checked = match call.state.variants().acknowledgement {
        Acknowledgement::Required => !dry_run,
        Acknowledgement::RequiredInDryRuns => true,
        Acknowledgement::None => false,
    };

    let response = call
        .state
        .mutate(!dry_run, |store| {
            let unknown: Vec<&String> =
                purposes.iter().filter(|p| store.purpose_by_name(p).is_none()).collect();
            if !unknown.is_empty() {
                return Ok(Err(ApiError::bad_request(format!(
                    "purposes: unknown purpose(s) {}",
                    quoted(&unknown)
                ))));
            }
            let unknown: Vec<&String> = data_sources
                .iter()
                .filter(|d| store.active_data_source_by_name(d).is_none())
                .collect();
            if !unknown.is_empty() {
                return Ok(Err(ApiError::bad_request(format!(
                    "datasources: unknown or disabled data source(s) {}",
                    quoted(&unknown)
                ))));
            }
            let now = now_iso();
            let new_sources: BTreeSet<&str> = data_sources.iter().map(String::as_str).collect();
            let wanted: BTreeSet<String> = purposes.iter().cloned().collect();
            if checked {
                let existing = store.projects.values_mut().find(|p| p.project_key == key);
                let missing: BTreeSet<String> = match &existing {
                    Some(project) => wanted.difference(&project.acknowledged).cloned().collect(),
                    None => wanted.clone(),
                };
                if !missing.is_empty() {
                    let refusal = must_acknowledge(&name, &missing);
                    if dry_run {
                        return Ok(Err(refusal));
                    }
                    match existing {
                        Some(project) => project.staged_purposes = missing,
                        None => {
                            // Created, without the purposes it may not use yet.
                            let mut partial = payload.clone();
                            if let Value::Object(m) = &mut partial {
                                m.remove("purposes");
                            }
                            create(store, &key, partial, &now, BTreeSet::new(), missing);
                        }
                    }
                    return Ok(Err(refusal));
                }
            }
            let existing = store.projects.values_mut().find(|p| p.project_key == key);
            let (creating, updating, added, removed, had_workspace, id) = match existing {
                Some(project) => {
                    let old: BTreeSet<&str> = project.names("datasources").into_iter().collect();
                    let added = new_sources.difference(&old).count();
                    let removed = old.difference(&new_sources).count();
                    let had = project.payload.get("workspace").is_some_and(|w| !w.is_null());
                    let updating = project.payload != payload;
                    if updating && !dry_run {
                        project.payload = payload.clone();
                        project.updated_at.clone_from(&now);
                    }
                    (false, updating, added, removed, had, Some(project.id))
                }
                None => {
                    let id = (!dry_run).then(|| {
                        // Without the check (the `none` variant), nothing waits.
                        let acknowledged = if checked { BTreeSet::new() } else { wanted.clone() };
                        create(store, &key, payload.clone(), &now, acknowledged, BTreeSet::new())
                    });
                    (true, false, new_sources.len(), 0, false, id)
                }
            };
            if !dry_run {
                store.register_tags(tags.iter().map(String::as_str));
            }
            if !checked
                && !dry_run
                && let Some(project) = id.and_then(|id| store.projects.get_mut(&id))
            {
                project.acknowledged.extend(wanted);
            }
            Ok(Ok(json!({
                "dryRun": dry_run,
                "creating": creating,
                "updating": updating,
                "numberOfDataSourcesAdded": added,
                "numberOfDataSourcesRemoved": removed,
                "creatingWorkspace": has_workspace && !had_workspace,
                "deletingWorkspace": had_workspace && !has_workspace,
                "projectId": id,
            })))
        })
        .await??;
    ok(response)
}

/// The refusal of a post naming purposes its owner has not acknowledged.
fn must_acknowledge(project: &str, purposes: &BTreeSet<String>) -> ApiError {
    let names: Vec<String> = purposes.iter().map(|p| format!("{p:?}")).collect();
    ApiError::bad_request(format!(
        "You must first acknowledge the purposes {} before project {project:?} can use them",
        names.join(", ")
    ))
}

/// `POST /project/{id}/members/{subscriptionId}/acknowledge`: the member acknowledges every
/// purpose the project uses or has staged.
pub(crate) async fn acknowledge(
    Path((id, subscription)): Path<(String, String)>,
    call: Call,
) -> ApiResult {
    call.authorize(None, "POST /project/{id}/members/{subscriptionId}/acknowledge")?;
    let id = KIND.id(&id)?;
    let subscription = path_id(&subscription, "subscription")?;
    if !call.body.iter().all(u8::is_ascii_whitespace) {
        let body = call.object_body()?;
        opt_str(as_object(&body, "the request body")?, "text", "")?;
    }
    let answer = call
        .state
        .mutate(true, |store| {
            let project = store.projects.get_mut(&id).ok_or_else(|| KIND.not_found(id))?;
            if project.subscription_id != subscription {
                return Err(ApiError::not_found(format!(
                    "project {id} has no member with subscription id {subscription}"
                )));
            }
            let mut purposes = project.unacknowledged();
            project.acknowledged.append(&mut purposes);
            project.staged_purposes.clear();
            let purposes: Vec<Value> =
                project.names("purposes").into_iter().map(|p| json!({"name": p})).collect();
            Ok(json!({"acknowledgeRequired": false, "purposes": purposes}))
        })
        .await?;
    ok(answer)
}

fn quoted(names: &[&String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// `DELETE /api/v2/project/{projectKey}`.
pub(crate) async fn delete_by_key(Path(key): Path<String>, call: Call) -> ApiResult {
    let dry_run = call.v2(Permission::CreateProject, "DELETE /api/v2/project", &[])?.dry_run;
    let response = call
        .state
        .mutate(!dry_run, |store| {
            let id = store
                .project_by_key(&key)
                .map(|p| p.id)
                .ok_or_else(|| ApiError::not_found(format!("no project with projectKey {key:?}")))?;
            if !dry_run {
                store.projects.remove(&id);
            }
            Ok(json!({ "dryRun": dry_run, "projectKey": key, "projectId": id, "deleted": !dry_run }))
        })
        .await?;
    ok(response)
}

fn user_view(store: &Store, project: &Project) -> Value {
    let p = &project.payload;
    let field = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
    // Objects, as real tenants answer them (TF@d6d4eaa, TF@e227eab; Swagger:10250-10255).
    let purposes: Vec<Value> = project
        .names("purposes")
        .into_iter()
        .map(|n| json!({"id": store.purpose_by_name(n).map(|p| p.id), "name": n}))
        .collect();
    let tags: Vec<Value> = project
        .names("tags")
        .into_iter()
        .map(|t| json!({"name": t, "source": "curated"}))
        .collect();
    json!({
        "id": project.id,
        "projectKey": project.project_key,
        "name": project.name(),
        "type": "user",
        "status": "open",
        "description": field("description"),
        "documentation": field("documentation"),
        "deleted": false,
        "allowMaskedJoins": p.get("allowMaskedJoins").cloned().unwrap_or(Value::Bool(false)),
        "equalization": p.get("equalization").cloned().unwrap_or(Value::Bool(false)),
        "subscriptionType": "policy",
        "subscriptionPolicy": p.get("subscriptionPolicy").cloned()
            .unwrap_or_else(|| json!({"type": "manual"})),
        "workspace": field("workspace"),
        "purposes": purposes,
        "stagedPurposes": project.staged_purposes,
        "tags": tags,
        "acknowledgeRequired": !project.unacknowledged().is_empty(),
        "subscriptionId": project.subscription_id,
        "createdAt": project.created_at,
        "updatedAt": project.updated_at,
    })
}

fn schema_view(project: &SchemaProject) -> Value {
    json!({
        "id": project.id,
        "projectKey": Value::Null,
        "name": project.name,
        "type": "schema",
        "status": "open",
        "description": Value::Null,
        "documentation": Value::Null,
        "deleted": false,
        "allowMaskedJoins": false,
        "equalization": false,
        "subscriptionType": "policy",
        "subscriptionPolicy": {"type": "manual"},
        "workspace": Value::Null,
        "purposes": [],
        "stagedPurposes": [],
        "tags": [],
        "remoteSchema": project.schema,
        "acknowledgeRequired": false,
        "createdAt": project.created_at,
        "updatedAt": project.updated_at,
    })
}

/// A project of either kind.
#[derive(Clone, Copy)]
enum AnyProject<'a> {
    User(&'a Project),
    Schema(&'a SchemaProject),
}

/// Every project (user and schema) as `(id, name, project)`, by id.
fn all_projects(store: &Store) -> Vec<(u64, &str, AnyProject<'_>)> {
    let mut all: Vec<(u64, &str, AnyProject<'_>)> = store
        .projects
        .values()
        .map(|p| (p.id, p.name(), AnyProject::User(p)))
        .chain(
            store.schema_projects.values().map(|p| (p.id, p.name.as_str(), AnyProject::Schema(p))),
        )
        .collect();
    all.sort_by_key(|v| v.0);
    all
}

/// `GET /project`: `{hits, facets, count}`, by id; `searchText` filters names (substring, any
/// case).
pub(crate) async fn list(call: Call) -> ApiResult {
    v1::list(&call, &KIND, Envelope::Faceted("hits"), DEFAULT_PAGE_SIZE, |store, listing| {
        let all = all_projects(store);
        listing.page_of(
            all.into_iter().filter(|(_, name, _)| listing.matches(name)),
            |(_, _, p)| match p {
                AnyProject::User(p) => user_view(store, p),
                AnyProject::Schema(p) => schema_view(p),
            },
        )
    })
}

/// `GET /project/{id}`.
pub(crate) async fn get(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::get(&call, &KIND, &id, |store, id| {
        let user = store.projects.get(&id).map(|p| user_view(store, p));
        user.or_else(|| store.schema_projects.get(&id).map(schema_view))
    })
}

/// `GET /project/{id}/dataSources`: `{dataSources: [{id, name, deleted}], count}`.
pub(crate) async fn data_sources(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::read(&call, &KIND, "GET /project/{id}/dataSources", &id, |store, id| {
        let sources: Vec<&DataSource> = if let Some(project) = store.projects.get(&id) {
            project
                .names("datasources")
                .into_iter()
                .filter_map(|name| store.active_data_source_by_name(name))
                .collect()
        } else {
            store.schema_project_sources(store.schema_projects.get(&id)?)
        };
        let items: Vec<Value> = sources
            .into_iter()
            .map(|d| json!({"id": d.id, "name": d.spec.name, "deleted": d.deleted}))
            .collect();
        let count = items.len();
        Some(Envelope::Counted("dataSources").wrap(items, count))
    })
}

/// `DELETE /project/{id}`: a user project is removed; a schema project is removed with every
/// data source in it.
pub(crate) async fn delete_by_id(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::delete(&call, &KIND, &id, |store, id| {
        if store.projects.remove(&id).is_some() {
            return Ok(Some(json!({ "id": id, "deleted": true, "dataSourcesDeleted": [] })));
        }
        let Some(project) = store.schema_projects.remove(&id) else { return Ok(None) };
        let doomed: Vec<(u64, String)> = store
            .schema_project_sources(&project)
            .into_iter()
            .map(|d| (d.id, d.spec.name.clone()))
            .collect();
        for (ds, _) in &doomed {
            store.data_sources.remove(ds);
        }
        let names: Vec<String> = doomed.into_iter().map(|(_, n)| n).collect();
        Ok(Some(json!({ "id": id, "deleted": true, "dataSourcesDeleted": names })))
    })
    .await
}

/// Creates project `key` with a new id and owner membership; returns the id.
fn create(
    store: &mut Store,
    key: &str,
    payload: Value,
    now: &str,
    acknowledged: BTreeSet<String>,
    staged_purposes: BTreeSet<String>,
) -> u64 {
    let id = next_id(&mut store.ids.project);
    let subscription_id = next_id(&mut store.ids.subscription);
    store.projects.insert(
        id,
        Project {
            id,
            project_key: key.to_owned(),
            payload,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            subscription_id,
            acknowledged,
            staged_purposes,
        },
    );
    id
}
