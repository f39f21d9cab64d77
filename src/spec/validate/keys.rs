//! Natural keys and name templates: what identifies an object across runs must be written
//! out in the spec, never blank and never filled in from the environment.
//!
//! A blank key names nothing the tenant can upsert by; a `${VAR}` in a key would make the same
//! spec mean another object whenever the variable changes (the old one is then listed as
//! unmanaged and never converges), and a `${VAR}` in `nameTemplate` ends up in data-source
//! names that every listing and log shows.

use super::FileCtx;
use crate::diagnostic::Code;
use crate::spec::Kind;
use crate::spec::de::Seg;
use crate::spec::node::{Node, Value};
use crate::spec::secrets;
use crate::spec::text::shown;

/// Checks the natural key of a document of `kind` (and, for purposes, every subpurpose name)
/// and every string of a data source's `nameTemplate`.
pub(crate) fn check_keys(ctx: &mut FileCtx<'_>, root: &Node, kind: Kind) {
    let field = kind.key_field();
    if let Some(key) = root.get(field).or_else(|| root.get("licensekey")) {
        let written = if root.get(field).is_some() { field } else { "licensekey" };
        check_key(ctx, key, &[Seg::Key(written.to_owned())], written, kind != Kind::License);
    }
    if kind == Kind::Purpose {
        subpurposes(ctx, root, &mut Vec::new());
    }
    if kind == Kind::DataSource
        && let Some(template) = root.get("nameTemplate")
    {
        template_strings(ctx, template, &mut vec![Seg::Key("nameTemplate".to_owned())]);
    }
}

/// Subpurpose names, at any depth.
fn subpurposes(ctx: &mut FileCtx<'_>, node: &Node, path: &mut Vec<Seg>) {
    let Some(items) = node.get("subpurposes").and_then(Node::as_seq) else { return };
    path.push(Seg::Key("subpurposes".to_owned()));
    for (i, item) in items.iter().enumerate() {
        path.push(Seg::Index(i));
        if let Some(name) = item.get("name") {
            path.push(Seg::Key("name".to_owned()));
            check_key(ctx, name, path, "name", true);
            path.pop();
        }
        subpurposes(ctx, item, path);
        path.pop();
    }
    path.pop();
}

/// One key: not blank, and (unless it is a license key, which is a secret) no placeholder.
fn check_key(ctx: &mut FileCtx<'_>, node: &Node, path: &[Seg], field: &str, plain: bool) {
    let Value::Str(s) = &node.value else { return };
    if s.trim().is_empty() {
        ctx.error(
            Code::InvalidValue,
            format!("`{field}` is empty: it is the object's natural key"),
            node.pos,
            path,
            format!("write a key that names this object, e.g. `{field}: sales-masking`"),
        );
    } else if plain && secrets::has_placeholder(s) {
        ctx.error(
            Code::Placeholder,
            format!("`{field}` `{}` holds a placeholder: natural keys may not", shown(s)),
            node.pos,
            path,
            "write the key itself: it identifies the object from one run to the next; a key \
             that changes with the environment leaves the old object unmanaged on the tenant \
             (for per-environment keys, keep one spec tree per environment)",
        );
    }
}

/// Every string under `nameTemplate`: no placeholder.
fn template_strings(ctx: &mut FileCtx<'_>, node: &Node, path: &mut Vec<Seg>) {
    match &node.value {
        Value::Str(s) if secrets::has_placeholder(s) => ctx.error(
            Code::Placeholder,
            format!("`nameTemplate` holds a placeholder (`{}`)", shown(s)),
            node.pos,
            path,
            "write the template itself (`<schema>`, `<table>`... are Immuta's own fields): \
             data-source names are shown in every listing, plan and log, so they may not come \
             from the environment",
        ),
        Value::Map(entries) => {
            for (k, v) in entries {
                path.push(Seg::Key(k.name.clone()));
                template_strings(ctx, v, path);
                path.pop();
            }
        }
        Value::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                template_strings(ctx, v, path);
                path.pop();
            }
        }
        _ => {}
    }
}
