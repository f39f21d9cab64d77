//! Data-source checks: the connection (a `handler`, a known one, and the fields that handler
//! needs) and each `sources` entry (one of `all`, a table or a query, complete, no table twice).

use std::collections::BTreeMap;

use super::FileCtx;
use crate::diagnostic::Code;
use crate::spec::de::{self, Seg};
use crate::spec::model;
use crate::spec::node::{Node, Pos, Value};
use crate::spec::text::shown;

/// Checks a data-source document: its `connection`, then its `sources`.
pub(in crate::spec) fn check_data_source(ctx: &mut FileCtx<'_>, root: &Node) {
    if let Some((ck, conn)) = root.entry("connection") {
        check_connection(ctx, conn, &[Seg::Key(ck.name.clone())]);
    }
    let Some((sk, sources)) = root.entry("sources") else { return };
    let Some(items) = sources.as_seq() else { return };
    let mut tables: BTreeMap<(String, String), Pos> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = [Seg::Key(sk.name.clone()), Seg::Index(i)];
        if item.as_map().is_none() {
            continue; // typed validation reports the type
        }
        check_source(ctx, item, &path, &mut tables);
    }
}

/// The connection at `base`: its handler is there, known, and has the fields it needs.
fn check_connection(ctx: &mut FileCtx<'_>, conn: &Node, base: &[Seg]) {
    // A documented example (Databricks OAuth, cut off in the docs) has no `handler`: a warning,
    // since the docs never say it is required, but every complete example has one.
    if conn.as_map().is_some() && conn.get("handler").is_none() {
        let hint = match likely_handler(conn) {
            Some(h) => format!("add `handler: {h}` (the connection looks like {h})"),
            None => format!("add `handler: ...`, one of {}", model::HANDLERS.join(", ")),
        };
        ctx.warning(
            Code::MissingField,
            "the connection has no `handler`: Immuta needs it to know which kind of database to \
             connect to",
            conn.pos,
            base,
            hint,
        );
    }
    if let Some(handler) = conn.get("handler").and_then(Node::as_str) {
        check_handler(ctx, conn, handler, base);
        check_required_fields(ctx, conn, handler, base);
    }
}

/// The handler a connection without `handler` most likely needs, from a field only that kind
/// of connection has.
fn likely_handler(conn: &Node) -> Option<&'static str> {
    [
        ("httpPath", "Databricks"),
        ("warehouse", "Snowflake"),
        ("queryResultLocationBucket", "Athena"),
        ("sid", "Google BigQuery"),
    ]
    .into_iter()
    .find_map(|(field, handler)| conn.get(field).is_some().then_some(handler))
}

/// An unknown handler is a warning (the documented list is known to be incomplete).
fn check_handler(ctx: &mut FileCtx<'_>, conn: &Node, handler: &str, base: &[Seg]) {
    if model::HANDLERS.contains(&handler) {
        return;
    }
    let hint = match de::suggest(handler, model::HANDLERS) {
        Some(s) => format!("did you mean `{s}`? Other handlers are posted as written"),
        None => {
            format!("known handlers: {}; others are posted as written", model::HANDLERS.join(", "))
        }
    };
    let pos = conn.get("handler").map_or(conn.pos, |n| n.pos);
    let mut p = base.to_vec();
    p.push(Seg::Key("handler".into()));
    ctx.warning(
        Code::InvalidValue,
        format!("unknown connection handler `{}`", shown(handler)),
        pos,
        &p,
        hint,
    );
}

/// The fields a connection of `handler` cannot do without.
fn check_required_fields(ctx: &mut FileCtx<'_>, conn: &Node, handler: &str, base: &[Seg]) {
    let required: &[&str] = match handler {
        "Snowflake" => &["hostname", "warehouse"],
        "Databricks" => &["hostname", "httpPath"],
        "Redshift" | "Presto" | "Trino" => &["hostname"],
        "Athena" => &["region", "queryResultLocationBucket"],
        "Google BigQuery" | "BigQuery" => &["sid"],
        _ => &[],
    };
    for field in required {
        if conn.get(field).is_none() {
            ctx.error(
                Code::MissingField,
                format!("a {handler} connection needs `{field}`"),
                conn.pos,
                base,
                format!("add `{field}: ...` to `connection`"),
            );
        }
    }
}

/// One `sources` entry (a mapping) at `path`; `tables` holds the tables listed so far.
fn check_source(
    ctx: &mut FileCtx<'_>,
    item: &Node,
    path: &[Seg],
    tables: &mut BTreeMap<(String, String), Pos>,
) {
    let all = item.get("all");
    let table = item.get("tableName");
    let query = item.get("query");
    let shapes = [all.is_some(), table.is_some(), query.is_some()].iter().filter(|b| **b).count();
    if shapes == 0 {
        ctx.error(
            Code::MissingField,
            "a `sources` entry needs `all: true`, a table (`tableName` + `schema`) or a query (`query` + `naming`)",
            item.pos,
            path,
            "add `tableName:` and `schema:`, or `query:` with `naming: {datasource: ...}`, or `all: true`",
        );
        return;
    }
    if shapes > 1 {
        ctx.error(
            Code::InvalidValue,
            "a `sources` entry is one of `all`, a table or a query, not several",
            item.pos,
            path,
            "split it into separate entries",
        );
        return;
    }
    if let Some(a) = all
        && a.value != Value::Bool(true)
    {
        ctx.warning(
            Code::InvalidValue,
            "`all` only means something as `all: true`",
            a.pos,
            path,
            "remove the entry, or write `all: true` to register every table",
        );
    }
    if let Some(t) = table {
        check_table(ctx, item, t, path, tables);
    }
    if query.is_some() && item.get("naming").and_then(|n| n.get("datasource")).is_none() {
        ctx.error(
            Code::MissingField,
            "a query source needs `naming.datasource`",
            item.pos,
            path,
            "add `naming: {datasource: <data source name>}`",
        );
    }
}

/// A table source (`tableName` is `t`): it has a `schema`, and is not listed twice.
fn check_table(
    ctx: &mut FileCtx<'_>,
    item: &Node,
    t: &Node,
    path: &[Seg],
    tables: &mut BTreeMap<(String, String), Pos>,
) {
    match item.get("schema").and_then(Node::as_str) {
        None => ctx.error(
            Code::MissingField,
            "a table source needs `schema`",
            item.pos,
            path,
            "add `schema: ...` (the remote schema of the table)",
        ),
        Some(schema) => {
            if let Some(name) = t.as_str()
                && let Some(first) = tables.insert((schema.to_owned(), name.to_owned()), t.pos)
            {
                ctx.error(
                    Code::DuplicateObject,
                    format!(
                        "table `{}.{}` is listed twice (first at line {})",
                        shown(schema),
                        shown(name),
                        first.line
                    ),
                    t.pos,
                    path,
                    "remove one of the entries; Immuta rejects duplicate tables in a payload",
                );
            }
        }
    }
}
