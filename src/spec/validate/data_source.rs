//! Data-source checks: the connection (a `handler`, a known one, and the fields that handler
//! and its `authenticationMethod` need), the name template, and each `sources` entry (one of
//! `all`, a table or a query, complete, no table twice).
//!
//! What a connection needs comes from Immuta's "Data Source Payload Attribute Details" (the
//! current tables, with a "Required or optional" column, and the older flat page with its
//! "Special Cases"): [`HANDLER_RULES`] and [`METHOD_RULES`]. Where the two disagree, or a
//! documented example leaves a field out, the stricter reading is a warning, not an error:
//! Databricks and Snowflake examples omit `authenticationMethod`, so its conditions apply only
//! when it is given; the older page does not require a Snowflake `database`; Databricks `token`
//! auth takes the token as `token` (the table) or as `password` (the docs' own example).
//!
//! A table source names its table `tableName` (the attribute docs) or `table` (Immuta's own
//! complex example, posted as written), not both.

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
    check_name_template(ctx, root);
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

/// What a connection of a handler needs, always: fields whose absence is an error, fields the
/// current docs require but an older page or a documented example does without (a warning),
/// and the documented `authenticationMethod` values (others are a warning).
struct HandlerRules {
    handlers: &'static [&'static str],
    required: &'static [&'static str],
    expected: &'static [(&'static str, &'static str)],
    methods: &'static [&'static str],
}

/// Per handler (seed S-DS; older "Special Cases":
/// https://docs-immuta-saas.netlify.app/policy-as-code/v2-api/api-examples/data-sources/payload-attributes).
const HANDLER_RULES: &[HandlerRules] = &[
    HandlerRules {
        handlers: &["Snowflake"],
        required: &["hostname", "warehouse"],
        expected: &[("database", "the current docs require it for Snowflake")],
        // `PRIV_KEY_FILE`: the older docs' name of key-pair authentication.
        methods: &["userPassword", "keyPair", "oAuthClientCredentials", "PRIV_KEY_FILE"],
    },
    HandlerRules {
        handlers: &["Databricks"],
        required: &["hostname", "httpPath"],
        expected: &[],
        methods: &["token", "oAuthM2M"],
    },
    HandlerRules {
        handlers: &["Redshift"],
        required: &["hostname"],
        expected: &[
            ("schema", "the docs require it for Redshift"),
            ("username", "the docs require it for Redshift"),
            ("password", "the docs require it for Redshift"),
        ],
        methods: &["userPassword", "okta"],
    },
    HandlerRules {
        handlers: &["Google BigQuery", "BigQuery"],
        required: &["sid"],
        expected: &[],
        methods: &[],
    },
    HandlerRules {
        handlers: &["Presto", "Trino"],
        required: &["hostname"],
        expected: &[],
        methods: &[
            "userPassword",
            "keyPair",
            "oAuthClientCredentials",
            "token",
            "oAuthM2M",
            "keyFile",
            "auto",
            "okta",
            "No Authentication",
            "LDAP Authentication",
            "Kerberos Authentication",
        ],
    },
    HandlerRules {
        handlers: &["Athena"],
        required: &["region", "queryResultLocationBucket"],
        expected: &[],
        methods: &["none", "accessKey", "instanceRole"],
    },
];

/// A condition of one `authenticationMethod` of one handler.
enum Need {
    /// The field must be there.
    Field(&'static str),
    /// One of the fields must be there.
    AnyOf(&'static [&'static str]),
    /// `userFiles` must hold an item whose `keyName` is this.
    KeyFile(&'static str),
    /// When the boolean field is true, the first need; otherwise the second.
    If(&'static str, &'static Need, &'static Need),
    /// The field should not be there (a warning, with why).
    Not(&'static str, &'static str),
}

/// Per handler and `authenticationMethod` (seed S-DS; older "Special Cases").
const METHOD_RULES: &[(&[&str], &str, &[Need])] = &[
    (&["Snowflake"], "userPassword", &[Need::Field("username"), Need::Field("password")]),
    (&["Snowflake"], "keyPair", &[Need::Field("username"), Need::KeyFile("PRIV_KEY_FILE")]),
    (
        &["Snowflake"],
        "PRIV_KEY_FILE",
        &[
            Need::KeyFile("PRIV_KEY_FILE"),
            Need::Not("password", "the docs say not to give a password with PRIV_KEY_FILE"),
        ],
    ),
    (
        &["Snowflake"],
        "oAuthClientCredentials",
        &[
            Need::Field("useCertificate"),
            Need::If(
                "useCertificate",
                &Need::KeyFile("oauth client certificate"),
                &Need::AnyOf(&[]),
            ),
        ],
    ),
    // The table names the field `token`; the docs' own example sends the token as `password`.
    (&["Databricks"], "token", &[Need::AnyOf(&["token", "password"])]),
    (
        &["Databricks"],
        "oAuthM2M",
        &[
            Need::Field("clientId"),
            Need::Field("audience"),
            Need::Field("useCertificate"),
            Need::If(
                "useCertificate",
                &Need::Field("certificateThumbprint"),
                &Need::Field("clientSecret"),
            ),
        ],
    ),
    (&["Redshift"], "okta", &[Need::Field("idpHost"), Need::Field("appID"), Need::Field("role")]),
    (&["Athena"], "accessKey", &[Need::Field("username"), Need::Field("password")]),
];

/// The fields a connection of `handler` cannot do without, and those its
/// `authenticationMethod` needs: one error each (at the connection, and at the method), listing
/// every missing field.
fn check_required_fields(ctx: &mut FileCtx<'_>, conn: &Node, handler: &str, base: &[Seg]) {
    let Some(rules) = HANDLER_RULES.iter().find(|r| r.handlers.contains(&handler)) else {
        return;
    };
    let mut missing: Vec<String> =
        rules.required.iter().filter(|f| conn.get(f).is_none()).map(|f| format!("`{f}`")).collect();
    if matches!(handler, "Google BigQuery" | "BigQuery") {
        missing.extend(unmet(conn, &[Need::KeyFile("KeyFilePath")]).into_iter().map(|(m, _)| m));
    }
    if !missing.is_empty() {
        let first = rules.required.iter().find(|f| conn.get(f).is_none()).unwrap_or(&"userFiles");
        ctx.error(
            Code::MissingField,
            format!("a {handler} connection needs {}", and(&missing)),
            conn.pos,
            base,
            format!("add `{first}: ...` to `connection`"),
        );
    }
    for (field, why) in rules.expected {
        if conn.get(field).is_none() {
            ctx.warning(
                Code::MissingField,
                format!("a {handler} connection has no `{field}`: {why}"),
                conn.pos,
                base,
                format!(
                    "add `{field}: ...` to `connection` unless your Immuta version does without"
                ),
            );
        }
    }
    let Some((method_node, method)) =
        conn.get("authenticationMethod").and_then(|n| n.as_str().map(|m| (n, m)))
    else {
        return;
    };
    let mut at = base.to_vec();
    at.push(Seg::Key("authenticationMethod".into()));
    if !rules.methods.is_empty() && !rules.methods.contains(&method) {
        let hint = match de::suggest(method, rules.methods) {
            Some(s) => format!("did you mean `{s}`? Other methods are posted as written"),
            None => format!("documented for {handler}: {}", rules.methods.join(", ")),
        };
        ctx.warning(
            Code::InvalidValue,
            format!("unknown authenticationMethod `{}` for a {handler} connection", shown(method)),
            method_node.pos,
            &at,
            hint,
        );
        return;
    }
    let Some((_, _, needs)) =
        METHOD_RULES.iter().find(|(handlers, m, _)| handlers.contains(&handler) && *m == method)
    else {
        return;
    };
    let when = format!("a {handler} connection with `authenticationMethod: {method}`");
    let (errors, warnings): (Vec<_>, Vec<_>) =
        unmet(conn, needs).into_iter().partition(|(_, problem)| *problem == Problem::Missing);
    if !errors.is_empty() {
        let list: Vec<String> = errors.into_iter().map(|(m, _)| m).collect();
        ctx.error(
            Code::MissingField,
            format!("{when} needs {}", and(&list)),
            method_node.pos,
            &at,
            "add them to `connection` (secrets as `${ENV_VAR}` or `${file:PATH}`)",
        );
    }
    for (field, problem) in warnings {
        if let Problem::Unwanted(why) = problem {
            let pos = conn.get(&field).map_or(conn.pos, |n| n.pos);
            let mut at = base.to_vec();
            at.push(Seg::Key(field.clone()));
            ctx.warning(
                Code::InvalidValue,
                format!("{when} has a `{field}`: {why}"),
                pos,
                &at,
                format!("remove `{field}`"),
            );
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What an unmet need is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// Missing (an error).
    Missing,
    /// There, and should not be (a warning, with why).
    Unwanted(&'static str),
}

/// Whether `userFiles` holds an item whose `keyName` (or `key`) is `key_name`.
fn has_key_file(conn: &Node, key_name: &str) -> bool {
    conn.get("userFiles").and_then(Node::as_seq).is_some_and(|files| {
        files.iter().any(|f| {
            f.get("keyName").or_else(|| f.get("key")).and_then(Node::as_str) == Some(key_name)
        })
    })
}

/// The needs `conn` does not meet: what is missing (as shown in a message) or which field is
/// unwanted (its name).
fn unmet(conn: &Node, needs: &[Need]) -> Vec<(String, Problem)> {
    let mut out = Vec::new();
    for need in needs {
        let need = match need {
            Need::If(flag, yes, no) => {
                if conn.get(flag).is_none() {
                    continue; // reported by its own `Field` need
                }
                if conn.get(flag).map(|n| &n.value) == Some(&Value::Bool(true)) {
                    *yes
                } else {
                    *no
                }
            }
            other => other,
        };
        match need {
            Need::Field(field) if conn.get(field).is_none() => {
                out.push((format!("`{field}`"), Problem::Missing));
            }
            Need::AnyOf(fields)
                if !fields.is_empty() && fields.iter().all(|f| conn.get(f).is_none()) =>
            {
                let list: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                out.push((list.join(" or "), Problem::Missing));
            }
            Need::KeyFile(key_name) if !has_key_file(conn, key_name) => {
                out.push((
                    format!("a `userFiles` entry with `keyName: {key_name}`"),
                    Problem::Missing,
                ));
            }
            Need::Not(field, why) if conn.get(field).is_some() => {
                out.push(((*field).to_owned(), Problem::Unwanted(why)));
            }
            _ => {}
        }
    }
    out
}

/// The name template: `nativeSchemaFormat` must contain `_immuta` (the payload docs: "to avoid
/// schema name conflicts").
pub(super) fn check_name_template(ctx: &mut FileCtx<'_>, root: &Node) {
    let Some((tk, template)) = root.entry("nameTemplate") else { return };
    let Some(native) = template.get("nativeSchemaFormat") else { return };
    let Some(format) = native.as_str() else { return };
    if !format.contains("_immuta") {
        ctx.error(
            Code::InvalidValue,
            format!("`nativeSchemaFormat` `{}` does not contain `_immuta`", shown(format)),
            native.pos,
            &[Seg::Key(tk.name.clone()), Seg::Key("nativeSchemaFormat".into())],
            "Immuta requires it, to avoid schema name conflicts: e.g. `<schema>_immuta`",
        );
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
    let query = item.get("query");
    if item.get("tableName").is_some() && item.get("table").is_some() {
        ctx.error(
            Code::InvalidValue,
            "a `sources` entry names its table twice, as `tableName` and as `table`",
            item.pos,
            path,
            "keep one: `tableName` (the attribute docs) or `table` (Immuta's own example)",
        );
        return;
    }
    let table = item.get("tableName").or_else(|| item.get("table"));
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
