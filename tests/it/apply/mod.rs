//! `plan` and `apply` end to end: the real binary against an in-process emulator (and once
//! against the embedded sandbox), checking exit codes, what the plan shows, what reaches the
//! tenant (its state and request log) and what the state file records.

mod acknowledge;
mod adopt;
mod base;
mod color;
mod creation;
mod deletes;
mod drift;
mod effects;
mod example;
mod kill;
mod props;
mod saved;
mod secrets;
mod settings;
mod variants;

use serde_json::{Value, json};

/// A catalog for the `databricks-analytics` connection of `specs-example` (so that its
/// `all: true` registers tables) and the given `(hostname, database, schema, tables)`.
pub fn catalog(extra: &[(&str, &str, &str, &[&str])]) -> Value {
    let mut connections = vec![connection(
        "dbc-4f1c2a7e-9b3d.cloud.databricks.com",
        "analytics",
        "default",
        &["EVENTS", "SESSIONS"],
    )];
    connections.extend(extra.iter().map(|(h, d, s, t)| connection(h, d, s, t)));
    json!({ "connections": connections })
}

fn connection(hostname: &str, database: &str, schema: &str, tables: &[&str]) -> Value {
    let tables: serde_json::Map<String, Value> = tables
        .iter()
        .map(|t| ((*t).to_owned(), json!([{"name": "ID", "dataType": "integer"}])))
        .collect();
    json!({"hostname": hostname, "database": database, "schemas": {schema: tables}})
}
