//! Where spec documents become [`Object`]s: the kind inferred from the natural key, the
//! per-kind checks run ([`super::validate`]), and an object built from a document without
//! errors: its natural key, payload (minus `gitops:`), tainted values, options, references and
//! the purposes it defines. A plan saved by `plan --out` in the spec tree is recognised and
//! skipped.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::de::{self, Seg};
use super::model::{self, Spec};
use super::node::Node;
use super::secrets;
use super::text::shown;
use super::validate::{
    FileCtx, check_data_source, check_keys, check_subpurposes, policy, tainted_values,
};
use super::{Kind, Object, ObjectOptions, Reference};
use crate::diagnostic::{Code, Diagnostic, Location};

/// Validates one document; returns the object when it has no errors. A saved plan is skipped
/// without a diagnostic.
pub(crate) fn document(ctx: &mut FileCtx<'_>, node: Node) -> Option<Object> {
    let root = &node;
    if is_saved_plan(root) {
        // `plan --out plan.json` run from the spec root saves the plan where the next load
        // finds it: it is this tool's own output, never a spec.
        return None;
    }
    let start = ctx.diags.len();
    let errors_before = ctx.diags.iter().filter(|d| d.is_error()).count();
    let kind = infer_kind(ctx, root)?;

    // Tree checks first: their messages are the most specific.
    check_keys(ctx, root, kind);
    let tainted = tainted_values(ctx, root);

    let spec = match kind {
        Kind::DataSource => {
            let spec = ctx.typed::<model::DataSourceSpec>(root, &[]);
            check_data_source(ctx, root);
            spec.map(|s| Spec::DataSource(Box::new(s)))
        }
        Kind::Policy => policy(ctx, root),
        Kind::Project => {
            ctx.typed::<model::ProjectSpec>(root, &[]).map(|s| Spec::Project(Box::new(s)))
        }
        Kind::Purpose => {
            let spec = ctx.typed::<model::PurposeSpec>(root, &[]);
            if let Some(p) = &spec {
                check_subpurposes(ctx, root, &p.name, &mut vec![]);
            }
            spec.map(|s| Spec::Purpose(Box::new(s)))
        }
        Kind::License => {
            ctx.typed::<model::LicenseSpec>(root, &[]).map(|s| Spec::License(Box::new(s)))
        }
    };
    dedupe_same_position(&mut ctx.diags, start);
    let errors_after = ctx.diags.iter().filter(|d| d.is_error()).count();
    let spec = spec?;
    if errors_after > errors_before {
        return None;
    }
    let key = natural_key(&spec);
    let mut references = Vec::new();
    if kind == Kind::Project {
        for (field, target) in [("purposes", Kind::Purpose), ("datasources", Kind::DataSource)] {
            for item in root.get(field).and_then(Node::as_seq).unwrap_or_default() {
                if let Some(name) = item.as_str() {
                    references.push(Reference {
                        kind: target,
                        name: name.to_owned(),
                        location: ctx.loc(item.pos),
                    });
                }
            }
        }
    }
    let key_pos = [kind.key_field(), "licensekey"]
        .iter()
        .find_map(|f| root.get(f))
        .map_or(root.pos, |n| n.pos);
    Some(Object {
        kind,
        key,
        location: ctx.loc(root.pos),
        key_location: ctx.loc(key_pos),
        payload: node.into_json_without(&["gitops"]),
        tainted,
        options: options_of(&spec),
        references,
        defines: purposes_defined(&spec),
    })
}

/// Whether a document is a plan saved by `plan --out` (its top-level keys say so).
fn is_saved_plan(root: &Node) -> bool {
    ["format_version", "fingerprint", "changes"].iter().all(|k| root.get(k).is_some())
}

/// The natural keys and the kinds they tell ([`model::NATURAL_KEYS`], with their kinds).
pub(super) const KEYS: [(&str, Kind); 5] = [
    ("connectionKey", Kind::DataSource),
    ("policyKey", Kind::Policy),
    ("projectKey", Kind::Project),
    ("licenseKey", Kind::License),
    ("licensekey", Kind::License),
];

/// Infers the kind of a document from its natural key.
fn infer_kind(ctx: &mut FileCtx<'_>, root: &Node) -> Option<Kind> {
    let Some(entries) = root.as_map() else {
        ctx.error(
            Code::UnknownKind,
            format!("a spec document must be a mapping, found {}", root.value.type_name()),
            root.pos,
            &[],
            "write the Immuta V2 payload as a mapping, e.g. `policyKey: ...`",
        );
        return None;
    };
    let found: Vec<(&str, Kind)> = KEYS
        .iter()
        .copied()
        .filter(|(k, _)| entries.iter().any(|(key, _)| key.name == *k))
        .collect();
    match found.as_slice() {
        [(_, kind)] => Some(*kind),
        [] if root.get("name").is_some() => {
            // A purpose is only "a document with `name`": a misspelt natural key would turn a
            // policy or project into a purpose of the same name, created on the tenant.
            let typo = entries.iter().find_map(|(k, _)| {
                de::suggest(&k.name, &["connectionKey", "policyKey", "projectKey", "licenseKey"])
                    .map(|s| (k, s))
            });
            match typo {
                None => Some(Kind::Purpose),
                Some((written, s)) => {
                    ctx.error(
                        Code::UnknownKind,
                        format!(
                            "`{}` looks like a misspelt `{s}`: without it this document would be \
                             read as a purpose",
                            shown(&written.name)
                        ),
                        written.pos,
                        &[Seg::Key(written.name.clone())],
                        format!(
                            "write `{s}`; if this really is a purpose, remove `{}`",
                            shown(&written.name)
                        ),
                    );
                    None
                }
            }
        }
        [] => {
            let names: Vec<&str> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
            let close = names.iter().find_map(|n| {
                de::suggest(n, &["connectionKey", "policyKey", "projectKey", "licenseKey", "name"])
                    .map(|s| (*n, s))
            });
            let hint = match close {
                Some((written, s)) => {
                    format!("did you mean `{s}` instead of `{}`?", shown(written))
                }
                None => "a document needs `connectionKey` (data sources), `policyKey` (policy), `projectKey` \
                         (project), `licenseKey` (license key) or `name` (purpose)"
                    .to_owned(),
            };
            ctx.error(
                Code::UnknownKind,
                "cannot tell what kind of Immuta object this is",
                root.pos,
                &[],
                hint,
            );
            None
        }
        many => {
            let keys: Vec<String> = many.iter().map(|(k, _)| format!("`{k}`")).collect();
            ctx.error(
                Code::UnknownKind,
                format!(
                    "the document has several natural keys ({}); a document is one object",
                    keys.join(", ")
                ),
                root.pos,
                &[],
                "split it into one document per object (separate documents with `---`)",
            );
            None
        }
    }
}

/// Keeps one error per position among `diags[from..]`: the first (most specific) one.
fn dedupe_same_position(diags: &mut Vec<Diagnostic>, from: usize) {
    let mut seen: BTreeSet<Option<Location>> = BTreeSet::new();
    let mut index = 0;
    diags.retain(|d| {
        index += 1;
        index <= from || !d.is_error() || seen.insert(d.location.clone())
    });
}

fn natural_key(spec: &Spec) -> String {
    match spec {
        Spec::DataSource(s) => s.connection_key.clone(),
        Spec::SubscriptionPolicy(s) => s.policy_key.clone(),
        Spec::DataPolicy(s) => s.policy_key.clone(),
        Spec::Project(s) => s.project_key.clone(),
        Spec::Purpose(s) => s.name.clone(),
        Spec::License(s) => license_key_id(&s.license_key),
    }
}

/// The natural key of a license key: the placeholder as written, or a digest of a literal key.
pub fn license_key_id(key: &str) -> String {
    if secrets::has_placeholder(key) {
        key.to_owned()
    } else {
        format!("sha256:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..16])
    }
}

/// The purposes a purpose document defines: itself and its subpurposes, at any depth.
fn purposes_defined(spec: &Spec) -> Vec<String> {
    fn walk(subs: &[model::Subpurpose], names: &mut Vec<String>) {
        for s in subs {
            names.push(s.name.clone());
            walk(s.subpurposes.as_deref().unwrap_or_default(), names);
        }
    }
    let mut names = Vec::new();
    if let Spec::Purpose(p) = spec {
        names.push(p.name.clone());
        walk(p.subpurposes.as_deref().unwrap_or_default(), &mut names);
    }
    names
}

/// This tool's options of a document, from its `gitops:` block (the defaults without one).
fn options_of(spec: &Spec) -> ObjectOptions {
    let pruned = |prune: Option<bool>| ObjectOptions {
        prune: prune.unwrap_or(true),
        ..ObjectOptions::default()
    };
    let policy = |g: Option<&model::PolicyGitops>| ObjectOptions {
        re_certify: g.and_then(|g| g.re_certify).unwrap_or(false),
        ..pruned(g.and_then(|g| g.prune))
    };
    match spec {
        Spec::DataSource(s) => {
            let g = s.gitops.as_ref();
            ObjectOptions { wait: g.and_then(|g| g.wait), ..pruned(g.and_then(|g| g.prune)) }
        }
        Spec::SubscriptionPolicy(s) => policy(s.gitops.as_ref()),
        Spec::DataPolicy(s) => policy(s.gitops.as_ref()),
        Spec::Project(s) => {
            let g = s.gitops.as_ref();
            ObjectOptions {
                delete_data_sources_on_workspace_delete: g
                    .and_then(|g| g.delete_data_sources_on_workspace_delete)
                    .unwrap_or(false),
                ..pruned(g.and_then(|g| g.prune))
            }
        }
        Spec::Purpose(s) => {
            let g = s.gitops.as_ref();
            ObjectOptions {
                re_acknowledge_required: g.and_then(|g| g.re_acknowledge_required).unwrap_or(false),
                ..pruned(g.and_then(|g| g.prune))
            }
        }
        Spec::License(s) => pruned(s.gitops.as_ref().and_then(|g| g.prune)),
    }
}
