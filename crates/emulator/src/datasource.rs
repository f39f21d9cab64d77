//! The V1 data-source and tag endpoints: `GET /dataSource`, `GET /dataSource/{id}`,
//! `DELETE /dataSource/{id}` (disable, then hard delete) and `GET /tag`.

use std::time::Instant;

use axum::extract::Path;
use serde_json::{Value, json};

use super::Permission;
use super::clock::now_iso;
use super::http::{ApiResult, Call, ok};
use super::store::DataSource;
use super::v1::{self, Envelope, Kind};

/// Default page size of `GET /dataSource` (Immuta's is not documented).
const DEFAULT_PAGE_SIZE: usize = 100;

/// The V1 data-source collection.
const KIND: Kind =
    Kind { noun: "data source", path: "/dataSource", delete: Permission::CreateDataSource };

/// A list item, shaped like the documented example (no `connectionKey`).
fn list_view(d: &DataSource) -> Value {
    let s = &d.spec;
    json!({
        "id": d.id,
        "name": s.name,
        "recordFormat": "Not Provided",
        "deleted": d.deleted,
        "description": s.description,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
        "schemaEvolutionId": Value::Null,
        "recordCount": 0,
        "blobHandlerType": s.handler,
        "subscriptionType": "policy",
        "sqlSchemaName": s.sql_schema_name,
        "status": "passed",
        "subscriptionStatus": "owner",
        "connectionString": s.connection_string,
        "remoteTable": s.remote_table,
        "remoteSchema": s.remote_schema,
        "domainId": Value::Null,
        "domainName": Value::Null,
        "policy": "None",
        "policyHandlerType": "None",
        "native": Value::Null,
        "workspace": Value::Null,
    })
}

fn tag_list(tags: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<Value> {
    tags.into_iter().map(|t| json!({"name": t.as_ref(), "source": "curated"})).collect()
}

/// The detail view: the list item plus SQL names, documentation, owners, tags and columns.
fn detail_view(d: &DataSource) -> Value {
    let s = &d.spec;
    let mut view = list_view(d);
    let table_tags: std::collections::BTreeSet<&String> =
        s.tags.iter().chain(&s.table_tags).collect();
    let columns: Vec<Value> = s
        .columns
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let name = c.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
            if let Value::Object(map) = &mut c {
                let tags = s.column_tags.get(&name).map(tag_list).unwrap_or_default();
                map.insert("tags".to_owned(), Value::Array(tags));
            }
            c
        })
        .collect();
    if let Value::Object(map) = &mut view {
        map.insert("sqlTableName".to_owned(), json!(s.sql_table_name));
        map.insert("remoteDatabase".to_owned(), json!(s.remote_database));
        map.insert("query".to_owned(), json!(s.query));
        map.insert("documentation".to_owned(), json!(s.documentation));
        map.insert("owners".to_owned(), json!(s.owners));
        map.insert("tags".to_owned(), Value::Array(tag_list(table_tags)));
        map.insert("columns".to_owned(), Value::Array(columns));
        map.insert("blobHandler".to_owned(), json!({"url": s.connection_string}));
        map.insert("columnEvolutionEnabled".to_owned(), json!(false));
    }
    view
}

/// `GET /dataSource`: `{hits, facets, count}`, by id, disabled sources included (`deleted:
/// true`), sources still being created left out; `searchText` filters names (substring, any
/// case).
pub(crate) async fn list(call: Call) -> ApiResult {
    v1::list(&call, &KIND, Envelope::Faceted("hits"), DEFAULT_PAGE_SIZE, |store, listing| {
        let now = Instant::now();
        let sources = store.data_sources.values().filter(|d| d.exists(now));
        listing.page_of(sources.filter(|d| listing.matches(&d.spec.name)), list_view)
    })
}

/// `GET /dataSource/{id}`.
pub(crate) async fn get(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::get(&call, &KIND, &id, |store, id| {
        store.data_sources.get(&id).filter(|d| d.exists(Instant::now())).map(detail_view)
    })
}

/// `DELETE /dataSource/{id}`: the first call disables, the second deletes for good.
pub(crate) async fn delete(Path(id): Path<String>, call: Call) -> ApiResult {
    v1::delete(&call, &KIND, &id, |store, id| {
        let Some(ds) = store.data_sources.get_mut(&id) else { return Ok(None) };
        if ds.deleted {
            let name = ds.spec.name.clone();
            let key = ds.connection_key.clone();
            store.data_sources.remove(&id);
            store.prune_schema_projects(&key);
            Ok(Some(json!({ "hardDelete": true, "id": id, "name": name })))
        } else {
            ds.deleted = true;
            ds.updated_at = now_iso();
            Ok(Some(
                json!({ "hardDelete": false, "id": id, "name": ds.spec.name, "deleted": true }),
            ))
        }
    })
    .await
}

/// `GET /tag`: a bare array of every tag in use; `searchText` filters names (substring, any
/// case), `limit` caps the answer.
pub(crate) async fn tags(call: Call) -> ApiResult {
    call.authorize(None, "GET /tag")?;
    let listing = call.listing("limit", usize::MAX)?;
    let items: Vec<Value> = call.state.read(|store| {
        let used = store.tags_in_use();
        used.iter()
            .filter(|t| listing.matches(t))
            .map(|t| {
                let prefix = format!("{t}.");
                json!({
                    "id": store.tags.get(*t),
                    "name": t,
                    "displayName": t.rsplit('.').next().unwrap_or(t),
                    "hasLeafNodes": used.iter().any(|o| o.starts_with(&prefix)),
                    "source": "curated",
                    "deleted": false,
                    "systemCreated": false,
                })
            })
            .collect()
    });
    let (page, count) = listing.page(items);
    ok(Envelope::Array.wrap(page, count))
}
