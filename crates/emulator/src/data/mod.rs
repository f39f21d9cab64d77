//! `POST /api/v2/data` and `DELETE /api/v2/data/{connectionKey}`: every data source of one
//! connection, with Immuta's full-replace semantics.
//!
//! A post's payload is first validated into a `DataRequest` (`request.rs`). It is then handled
//! in two steps: [`plan`] compares the request with the store and decides what happens to each
//! data source (pure, so `dryRun` answers exactly what a real post would do), then [`apply`]
//! carries the plan out.

mod request;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use axum::extract::Path;
use serde_json::{Value, json};

use self::request::{DataRequest, Entry, EntryKind};

use super::Permission;
use super::auth::Caller;
use super::catalog::CatalogColumn;
use super::clock::now_iso;
use super::http::{ApiError, ApiResult, Call, Param, ok, query_number};
use super::naming::{Names, render};
use super::store::{Connection, DataSource, Owner, SchemaProject, SourceSpec, Store, next_id};
use super::variants::{Creation, Registration};

/// `POST /api/v2/data`. Under the `background` creation variant (the default), new data
/// sources appear after the creation delay, and `wait` holds the answer up to that many
/// seconds (below zero: until they exist).
pub(crate) async fn post(call: Call) -> ApiResult {
    let params = [Param::Number("wait")];
    let v2 = call.v2(Permission::CreateDataSource, "POST /api/v2/data", &params)?;
    let variants = call.state.variants();
    if variants.registration == Registration::Connections {
        return Err(ApiError::bad_request(
            "POST /api/v2/data is deprecated on this tenant: it registers connections. Register              data through the connections API (POST /data/connection) instead",
        ));
    }
    let dry_run = v2.dry_run;
    let wait = query_number(&call.query, "wait")?.unwrap_or(0.0);
    let payload = call.stored_payload()?;
    let request = DataRequest::parse(&payload)?;
    let ready_at = (variants.creation == Creation::Background && !dry_run)
        .then(|| Instant::now() + call.state.creation_delay());
    let (response, created) = call
        .state
        .mutate(!dry_run, |store| {
            let plan = plan(store, &request, &v2.caller)?;
            let response = plan.response(dry_run);
            let created = !plan.create.is_empty();
            if !dry_run {
                apply(store, &request, plan, ready_at);
            }
            Ok((response, created))
        })
        .await?;
    if let Some(ready_at) = ready_at.filter(|_| created && wait != 0.0) {
        // Hold the answer while the data sources are created: up to `wait` seconds, or until
        // they exist when `wait` is below zero.
        let until = if wait < 0.0 {
            ready_at
        } else {
            ready_at.min(Instant::now() + Duration::from_secs_f64(wait.min(86_400.0)))
        };
        tokio::time::sleep_until(until.into()).await;
    }
    ok(response)
}

/// `DELETE /api/v2/data/{connectionKey}`: deletes every data source of the key.
pub(crate) async fn delete(Path(key): Path<String>, call: Call) -> ApiResult {
    let dry_run = call.v2(Permission::CreateDataSource, "DELETE /api/v2/data", &[])?.dry_run;
    let response = call
        .state
        .mutate(!dry_run, |store| {
            let ids: Vec<u64> = store
                .data_sources
                .values()
                .filter(|d| d.connection_key == key)
                .map(|d| d.id)
                .collect();
            if ids.is_empty() && !store.connections.contains_key(&key) {
                return Err(ApiError::not_found(format!(
                    "no data sources exist for connectionKey {key:?}"
                )));
            }
            let names: Vec<String> = ids
                .iter()
                .filter_map(|id| store.data_sources.get(id))
                .map(|d| d.spec.name.clone())
                .collect();
            if !dry_run {
                remove_connection(store, &key);
            }
            Ok(data_response(dry_run, &[], &[], &names, &[], false, false))
        })
        .await?;
    ok(response)
}

/// Removes a connection and every data source under it (also used by the control API).
pub(crate) fn remove_connection(store: &mut Store, key: &str) {
    store.data_sources.retain(|_, d| d.connection_key != key);
    store.connections.remove(key);
    store.prune_schema_projects(key);
}

fn data_response(
    dry_run: bool,
    creating: &[String],
    updating: &[String],
    deleting: &[String],
    no_change: &[String],
    detection_running: bool,
    tags_updated: bool,
) -> Value {
    json!({
        "dryRun": dry_run,
        "creating": creating,
        "updating": updating,
        "deleting": deleting,
        "noChange": no_change,
        "detectionRunning": detection_running,
        "tagsUpdated": tags_updated,
    })
}

/// What identifies the remote connection: a change here means "new connection information", so
/// every data source of the key is deleted and recreated.
fn identity(payload: &Value) -> Value {
    let c = payload.get("connection");
    let field = |k: &str| c.and_then(|c| c.get(k)).cloned().unwrap_or(Value::Null);
    let hostname = match field("hostname") {
        Value::String(s) => Value::String(s.to_ascii_lowercase()),
        other => other,
    };
    let port = match field("port") {
        Value::Number(n) => Value::String(n.to_string()),
        other => other,
    };
    json!([field("handler"), hostname, port, field("database"), field("httpPath")])
}

/// The connection-wide part of a payload whose change touches every data source: everything
/// but `sources`, `owners` (absent means untouched) and `options.hardDelete` (an instruction).
fn settings(payload: &Value) -> Value {
    let mut settings = payload.clone();
    if let Value::Object(map) = &mut settings {
        map.remove("sources");
        map.remove("owners");
        if let Some(Value::Object(options)) = map.get_mut("options") {
            options.remove("hardDelete");
        }
    }
    settings
}

/// How a desired source is matched to an existing data source of the same key.
#[derive(PartialEq, Eq, Hash, Clone)]
enum MatchKey {
    Table(String, String),
    Query(String),
}

fn match_key(spec: &SourceSpec) -> MatchKey {
    if spec.query.is_some() {
        MatchKey::Query(spec.name.clone())
    } else {
        MatchKey::Table(spec.remote_schema.clone(), spec.remote_table.clone())
    }
}

/// A data source the payload asks for (owners still to be resolved).
struct Desired<'r> {
    spec: SourceSpec,
    owners: Option<&'r Vec<Owner>>,
}

/// What one post does.
struct Plan {
    create: Vec<SourceSpec>,
    update: Vec<(u64, SourceSpec)>,
    unchanged: Vec<String>,
    disable: Vec<u64>,
    remove: Vec<u64>,
    deleting_names: Vec<String>,
    tags_updated: bool,
    detection_running: bool,
}

impl Plan {
    fn response(&self, dry_run: bool) -> Value {
        let creating: Vec<String> = self.create.iter().map(|s| s.name.clone()).collect();
        let updating: Vec<String> = self.update.iter().map(|(_, s)| s.name.clone()).collect();
        data_response(
            dry_run,
            &creating,
            &updating,
            &self.deleting_names,
            &self.unchanged,
            self.detection_running,
            self.tags_updated,
        )
    }
}

/// Decides what a post does, without changing anything.
fn plan(store: &Store, request: &DataRequest<'_>, caller: &Caller) -> ApiResult<Plan> {
    for (other_key, other) in &store.connections {
        let c = other.payload.get("connection");
        let host = c.and_then(|c| c.get("hostname")).and_then(Value::as_str).unwrap_or("");
        let db = c.and_then(|c| c.get("database")).and_then(Value::as_str).unwrap_or("");
        if other_key != request.key
            && host.eq_ignore_ascii_case(request.hostname)
            && db == request.database
        {
            return Err(ApiError::bad_request(
                "You may only define data sources for the same connection once.",
            ));
        }
    }
    let desired = resolve_sources(store, request)?;

    let mut names: HashMap<&str, &str> = HashMap::new();
    for d in &desired {
        if let Some(first) = names.insert(&d.0.spec.name, &d.1) {
            return Err(ApiError::bad_request(format!(
                "the data source name {:?} is produced twice ({first} and {})",
                d.0.spec.name, d.1
            )));
        }
    }
    if let Some(taken) = store
        .data_sources
        .values()
        .find(|ds| ds.connection_key != request.key && names.contains_key(ds.spec.name.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "a data source named {:?} already exists under another connection",
            taken.spec.name
        )));
    }

    let existing: Vec<&DataSource> =
        store.data_sources.values().filter(|d| d.connection_key == request.key).collect();
    let old = store.connections.get(request.key);
    let recreate = old.is_some_and(|c| identity(&c.payload) != identity(request.payload));
    let settings_changed = old.is_some_and(|c| settings(&c.payload) != settings(request.payload));
    let caller_owner = Owner { kind: "user".to_owned(), name: caller.user.clone(), iam: None };
    let resolve_owners = |d: &Desired<'_>, existing: Option<&DataSource>| -> Vec<Owner> {
        match d.owners.or(request.owners.as_ref()) {
            Some(list) if list.is_empty() => vec![caller_owner.clone()],
            Some(list) => list.clone(),
            None => existing.map_or_else(|| vec![caller_owner.clone()], |e| e.spec.owners.clone()),
        }
    };

    let mut plan = Plan {
        create: Vec::new(),
        update: Vec::new(),
        unchanged: Vec::new(),
        disable: Vec::new(),
        remove: Vec::new(),
        deleting_names: Vec::new(),
        tags_updated: false,
        detection_running: request.all,
    };
    let by_key: HashMap<MatchKey, &DataSource> = if recreate {
        HashMap::new()
    } else {
        existing.iter().map(|d| (match_key(&d.spec), *d)).collect()
    };
    let mut matched: BTreeSet<u64> = BTreeSet::new();
    for (mut d, _) in desired {
        let current = by_key.get(&match_key(&d.spec)).copied();
        d.spec.owners = resolve_owners(&d, current);
        match current {
            None => {
                plan.tags_updated |= !d.spec.all_tags().is_empty();
                plan.create.push(d.spec);
            }
            Some(current) => {
                matched.insert(current.id);
                if current.deleted || settings_changed || current.spec != d.spec {
                    plan.tags_updated |= current.spec.all_tags() != d.spec.all_tags();
                    plan.update.push((current.id, d.spec));
                } else {
                    plan.unchanged.push(d.spec.name);
                }
            }
        }
    }
    for ds in existing.iter().filter(|d| !matched.contains(&d.id)) {
        if recreate || request.hard_delete {
            plan.remove.push(ds.id);
            plan.deleting_names.push(ds.spec.name.clone());
        } else if !ds.deleted {
            plan.disable.push(ds.id);
            plan.deleting_names.push(ds.spec.name.clone());
        }
    }
    Ok(plan)
}

/// The sources a payload asks for, each with where it came from (`sources[3]`, `catalog`).
fn resolve_sources<'r>(
    store: &Store,
    request: &'r DataRequest<'_>,
) -> ApiResult<Vec<(Desired<'r>, String)>> {
    let catalog = store.catalog.lookup(request.hostname, request.database);
    let mut desired: Vec<(Desired<'r>, String)> = Vec::new();
    let mut tables: HashMap<(String, String), (usize, bool)> = HashMap::new();
    if request.all
        && let Some(catalog) = catalog
    {
        for (schema, schema_tables) in &catalog.schemas {
            if request.only_schema.is_some_and(|only| only != schema) {
                continue;
            }
            for (table, columns) in schema_tables {
                tables.insert((schema.clone(), table.clone()), (desired.len(), false));
                let spec = build_spec(request, None, schema, table, None, Some(columns))?;
                desired.push((Desired { spec, owners: None }, "catalog".to_owned()));
            }
        }
    }
    for entry in &request.entries {
        let (schema, table, query, columns): (&str, &str, Option<&str>, Option<&[CatalogColumn]>) =
            match entry.kind {
                EntryKind::Table { schema, table } => {
                    let columns = match catalog {
                        Some(catalog) => Some(
                            catalog
                                .schemas
                                .get(schema)
                                .and_then(|t| t.get(table))
                                .ok_or_else(|| {
                                    ApiError::bad_request(format!(
                                        "{}: table {schema}.{table} does not exist in the remote \
                                         database {}/{}",
                                        entry.path, request.hostname, request.database
                                    ))
                                })?
                                .as_slice(),
                        ),
                        None => None,
                    };
                    (schema, table, None, columns)
                }
                EntryKind::Query { query } => {
                    let name = entry.naming_datasource.unwrap_or_default();
                    (
                        entry.naming_schema.unwrap_or(""),
                        entry.naming_table.unwrap_or(name),
                        Some(query),
                        None,
                    )
                }
            };
        let spec = build_spec(request, Some(entry), schema, table, query, columns)?;
        let desired_entry = (Desired { spec, owners: entry.owners.as_ref() }, entry.path.clone());
        if query.is_none() {
            match tables.get(&(schema.to_owned(), table.to_owned())) {
                Some((_, true)) => {
                    return Err(ApiError::bad_request(format!(
                        "duplicate tables are specified in the payload: {schema}.{table} ({})",
                        entry.path
                    )));
                }
                Some((index, false)) => {
                    // An explicit entry refines the table `all` already selected.
                    let index = *index;
                    tables.insert((schema.to_owned(), table.to_owned()), (index, true));
                    desired[index] = desired_entry;
                    continue;
                }
                None => {
                    tables.insert((schema.to_owned(), table.to_owned()), (desired.len(), true));
                }
            }
        }
        desired.push(desired_entry);
    }
    Ok(desired)
}

/// The data source a source entry (or a catalog table, when `entry` is `None`) describes.
fn build_spec(
    request: &DataRequest<'_>,
    entry: Option<&Entry<'_>>,
    schema: &str,
    table: &str,
    query: Option<&str>,
    catalog_columns: Option<&[CatalogColumn]>,
) -> ApiResult<SourceSpec> {
    let names = Names { table, schema, database: request.database };
    let naming = |pick: for<'e> fn(&'e Entry<'e>) -> Option<&'e str>, format: &str| -> String {
        entry.and_then(pick).map_or_else(|| render(format, &names), str::to_owned)
    };
    let name = naming(|e| e.naming_datasource, request.formats.data_source);
    if name.trim().is_empty() {
        let at = entry.map_or("catalog", |e| e.path.as_str());
        return Err(ApiError::bad_request(format!("{at}: the data source name is empty")));
    }
    let mut columns: Vec<Value> = match (entry.and_then(|e| e.columns.as_ref()), catalog_columns) {
        (Some(explicit), _) => explicit.clone(),
        (None, Some(remote)) => {
            remote.iter().map(|c| json!({"name": c.name, "dataType": c.data_type})).collect()
        }
        (None, None) => Vec::new(),
    };
    let mut column_tags = BTreeMap::new();
    if let Some(entry) = entry {
        let known = |columns: &[Value], column: &str| {
            columns.is_empty()
                || columns.iter().any(|c| c.get("name").and_then(Value::as_str) == Some(column))
        };
        for (i, (column, text)) in entry.column_descriptions.iter().enumerate() {
            if !known(&columns, column) {
                return Err(ApiError::bad_request(format!(
                    "{}.columnDescriptions[{i}].columnName: no column {column:?} in {schema}.{table}",
                    entry.path
                )));
            }
            if let Some(Value::Object(c)) = columns
                .iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(column.as_str()))
            {
                c.insert("description".to_owned(), Value::String(text.clone()));
            }
        }
        for (i, (column, tags)) in entry.column_tags.iter().enumerate() {
            if !known(&columns, column) {
                return Err(ApiError::bad_request(format!(
                    "{}.tags.columns[{i}].columnName: no column {column:?} in {schema}.{table}",
                    entry.path
                )));
            }
            if !tags.is_empty() {
                column_tags.insert(column.clone(), tags.clone());
            }
        }
    }
    Ok(SourceSpec {
        name,
        handler: request.handler.to_owned(),
        connection_string: request.connection_string.clone(),
        remote_database: request.database.to_owned(),
        remote_schema: schema.to_owned(),
        remote_table: table.to_owned(),
        query: query.map(str::to_owned),
        sql_schema_name: naming(|e| e.naming_schema, request.formats.schema),
        sql_table_name: naming(|e| e.naming_table, request.formats.table),
        description: entry.and_then(|e| e.description.clone()),
        documentation: entry.and_then(|e| e.documentation.clone()),
        owners: Vec::new(),
        tags: entry.map(|e| e.tags.clone()).unwrap_or_default(),
        table_tags: request.table_tags.clone(),
        column_tags,
        columns,
    })
}

/// Carries a plan out; data sources it creates exist from `ready_at` (at once when `None`).
fn apply(store: &mut Store, request: &DataRequest<'_>, plan: Plan, ready_at: Option<Instant>) {
    let now = now_iso();
    let created_at =
        store.connections.get(request.key).map_or_else(|| now.clone(), |c| c.created_at.clone());
    store.connections.insert(
        request.key.to_owned(),
        Connection {
            connection_key: request.key.to_owned(),
            payload: request.payload.clone(),
            created_at,
            updated_at: now.clone(),
        },
    );
    for id in &plan.remove {
        store.data_sources.remove(id);
    }
    for id in &plan.disable {
        if let Some(ds) = store.data_sources.get_mut(id) {
            ds.deleted = true;
            ds.updated_at.clone_from(&now);
        }
    }
    let mut tags: BTreeSet<String> = BTreeSet::new();
    for (id, spec) in plan.update {
        if let Some(ds) = store.data_sources.get_mut(&id) {
            tags.extend(spec.all_tags().into_iter().map(str::to_owned));
            ds.spec = spec;
            ds.deleted = false;
            ds.updated_at.clone_from(&now);
        }
    }
    for spec in plan.create {
        tags.extend(spec.all_tags().into_iter().map(str::to_owned));
        let id = next_id(&mut store.ids.data_source);
        store.data_sources.insert(
            id,
            DataSource {
                id,
                connection_key: request.key.to_owned(),
                deleted: false,
                created_at: now.clone(),
                updated_at: now.clone(),
                ready_at,
                spec,
            },
        );
    }
    store.register_tags(tags.iter().map(String::as_str));
    sync_schema_projects(store, request, &now);
}

/// One schema project per remote schema of the connection, named by
/// `schemaProjectNameFormat`; projects left without data sources are removed.
fn sync_schema_projects(store: &mut Store, request: &DataRequest<'_>, now: &str) {
    let schemas: BTreeSet<String> = store
        .data_sources
        .values()
        .filter(|d| d.connection_key == request.key && !d.spec.remote_schema.is_empty())
        .map(|d| d.spec.remote_schema.clone())
        .collect();
    for schema in schemas {
        let names = Names { table: "", schema: &schema, database: request.database };
        let name = render(request.formats.schema_project, &names);
        let existing = store
            .schema_projects
            .values_mut()
            .find(|p| p.connection_key == request.key && p.schema == schema);
        match existing {
            Some(project) if project.name != name => {
                project.name = name;
                project.updated_at = now.to_owned();
            }
            Some(_) => {}
            None => {
                let id = next_id(&mut store.ids.project);
                store.schema_projects.insert(
                    id,
                    SchemaProject {
                        id,
                        name,
                        connection_key: request.key.to_owned(),
                        schema,
                        created_at: now.to_owned(),
                        updated_at: now.to_owned(),
                    },
                );
            }
        }
    }
    store.prune_schema_projects(request.key);
}

/// `GET /data/connection/{connectionKey}`: under the `connections` registration variant, the
/// connection registered under the key (credentials left out), else 404; without it the route
/// does not exist (404 like any unknown route).
pub(crate) async fn connection(Path(key): Path<String>, call: Call) -> ApiResult {
    if call.state.variants().registration != Registration::Connections {
        return Err(ApiError::not_found(format!("no route for GET /data/connection/{key}")));
    }
    call.authorize(None, "GET /data/connection/{connectionKey}")?;
    let answer = call.state.read(|store| {
        store.connections.get(&key).map(|c| {
            let field = |k: &str| c.payload.get("connection").and_then(|x| x.get(k)).cloned();
            let mut connection = serde_json::Map::new();
            connection.insert("technology".into(), field("handler").unwrap_or(Value::Null));
            for k in ["hostname", "port", "warehouse", "role", "username", "database"] {
                if let Some(v) = field(k) {
                    connection.insert(k.into(), v);
                }
            }
            if let Some(auth) = field("authenticationMethod") {
                connection.insert("authenticationType".into(), auth);
            }
            json!({
                "connectionKey": key,
                "connection": connection,
                "createdAt": c.created_at,
                "updatedAt": c.updated_at,
            })
        })
    });
    answer
        .ok_or_else(|| ApiError::not_found(format!("no connection with key {key:?}")))
        .and_then(ok)
}
