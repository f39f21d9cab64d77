//! Semantic checks: per document (kind, types, shapes, placeholders) and across files
//! (duplicate natural keys, references between objects).
//!
//! Checks on the located tree run before typed validation, so the most specific message wins
//! when both see the same value (the `Null` trap reports "quote it", not "expected a string").

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::de::{self, Seg, path_string};
use super::model::{self, RuleType, Spec};
use super::node::{Node, Pos, Value};
use super::secrets::{self, SecretRef};
use super::text::shown;
use super::{Kind, LoadOptions, Object, ObjectOptions, Reference, SecretFileRef, Tainted};
use crate::diagnostic::{Code, Diagnostic, Location};

/// Collects diagnostics for one file.
pub(crate) struct FileCtx<'a> {
    pub file: &'a str,
    pub options: &'a LoadOptions,
    pub diags: Vec<Diagnostic>,
    pub secret_files: Vec<SecretFileRef>,
}

impl<'a> FileCtx<'a> {
    pub fn new(file: &'a str, options: &'a LoadOptions) -> Self {
        FileCtx { file, options, diags: Vec::new(), secret_files: Vec::new() }
    }

    fn loc(&self, pos: Pos) -> Location {
        Location::new(self.file, pos.line, pos.column)
    }

    fn push(&mut self, d: Diagnostic, pos: Pos, path: &[Seg]) {
        let d = d.at(self.loc(pos));
        self.diags.push(if path.is_empty() { d } else { d.path(path_string(path)) });
    }

    fn error(
        &mut self,
        code: Code,
        message: impl Into<String>,
        pos: Pos,
        path: &[Seg],
        hint: impl Into<String>,
    ) {
        self.push(Diagnostic::error(code, message).hint(hint), pos, path);
    }

    fn warning(
        &mut self,
        code: Code,
        message: impl Into<String>,
        pos: Pos,
        path: &[Seg],
        hint: impl Into<String>,
    ) {
        self.push(Diagnostic::warning(code, message).hint(hint), pos, path);
    }

    /// Typed validation of `node` (at `base`) into `T`, reporting errors and unknown fields.
    fn typed<T: DeserializeOwned>(&mut self, node: &Node, base: &[Seg]) -> Option<T> {
        let checked = de::check::<T>(node);
        for e in checked.errors {
            if self.both_spellings(node, base, &e) {
                continue;
            }
            let mut path = base.to_vec();
            path.extend(e.path.unwrap_or_default());
            let pos = e.pos.unwrap_or(node.pos);
            let (code, hint) = match &e.kind {
                de::ErrorKind::MissingField(f) => {
                    (Code::MissingField, format!("add `{f}: ...` to this mapping"))
                }
                de::ErrorKind::Invalid => (Code::InvalidValue, invalid_value_hint(&e.message)),
            };
            self.error(code, e.message, pos, &path, hint);
        }
        for u in checked.unknown_fields {
            let mut path = base.to_vec();
            path.extend(u.path);
            path.push(Seg::Key(u.key.clone()));
            let hint = match &u.suggestion {
                Some(s) => {
                    format!("did you mean `{s}`? Unknown fields are posted to Immuta as written")
                }
                None => "this tool does not model this field; it is posted to Immuta as written \
                         (an error under --strict)"
                    .to_owned(),
            };
            self.warning(
                Code::UnknownField,
                format!("unknown field `{}`", shown(&u.key)),
                u.pos,
                &path,
                hint,
            );
        }
        checked.value
    }
}

impl FileCtx<'_> {
    /// Reports serde's "duplicate field" (a field written under both of its documented
    /// spellings, e.g. `allowMaskedJoins` and `allowedMaskedJoins`) at the second key, with a
    /// hint; serde itself only knows the mapping.
    fn both_spellings(&mut self, node: &Node, base: &[Seg], e: &de::Error) -> bool {
        let Some(field) =
            e.message.strip_prefix("duplicate field `").and_then(|rest| rest.strip_suffix('`'))
        else {
            return false;
        };
        let Some(&(preferred, alias)) =
            model::SPELLINGS.iter().find(|(p, a)| *p == field || *a == field)
        else {
            return false;
        };
        let at = e.path.clone().unwrap_or_default();
        let Some(entries) = de::resolve(node, &at).and_then(Node::as_map) else { return false };
        let Some((second, _)) = entries
            .iter()
            .filter(|(k, _)| k.name == preferred || k.name == alias)
            .max_by_key(|(k, _)| k.pos)
        else {
            return false;
        };
        let mut path = base.to_vec();
        path.extend(at);
        path.push(Seg::Key(second.name.clone()));
        self.error(
            Code::DuplicateKey,
            format!("`{preferred}` is written twice, also as `{alias}`"),
            second.pos,
            &path,
            "keep one of them: Immuta documents both spellings of this field, and which one a \
             tenant reads when both are sent is unknown",
        );
        true
    }
}

fn invalid_value_hint(message: &str) -> String {
    if message.contains("did you mean") || message.contains("expected one of") {
        "use one of the listed values".into()
    } else if message.contains("quote the value") {
        "wrap the value in quotes, for example `\"2024\"`".into()
    } else if message.contains("are text in YAML 1.2") {
        "write `true` or `false`".into()
    } else if message.contains("are all YAML null") {
        "write the value; if you meant the text, quote it, for example `\"Null\"`".into()
    } else {
        "fix the value's type; see the JSON Schema (`immuta-gitops schema`) for the expected shape"
            .into()
    }
}

/// Whether a document is a plan saved by `plan --out` (its top-level keys say so).
fn is_saved_plan(root: &Node) -> bool {
    ["format_version", "fingerprint", "changes"].iter().all(|k| root.get(k).is_some())
}

/// The natural keys and the kinds they tell ([`model::NATURAL_KEYS`], with their kinds).
const KEYS: [(&str, Kind); 5] = [
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

/// Validates one document; returns the object when it has no errors.
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
    let mut tainted = Vec::new();
    walk(ctx, root, &mut Vec::new(), &mut tainted);

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

fn options_of(spec: &Spec) -> ObjectOptions {
    let mut o = ObjectOptions::default();
    match spec {
        Spec::DataSource(s) => {
            if let Some(g) = &s.gitops {
                o.prune = g.prune.unwrap_or(true);
                o.wait = g.wait;
            }
        }
        Spec::SubscriptionPolicy(s) => {
            if let Some(g) = &s.gitops {
                o.prune = g.prune.unwrap_or(true);
                o.re_certify = g.re_certify.unwrap_or(false);
            }
        }
        Spec::DataPolicy(s) => {
            if let Some(g) = &s.gitops {
                o.prune = g.prune.unwrap_or(true);
                o.re_certify = g.re_certify.unwrap_or(false);
            }
        }
        Spec::Project(s) => {
            if let Some(g) = &s.gitops {
                o.prune = g.prune.unwrap_or(true);
                o.delete_data_sources_on_workspace_delete =
                    g.delete_data_sources_on_workspace_delete.unwrap_or(false);
            }
        }
        Spec::Purpose(s) => {
            if let Some(g) = &s.gitops {
                o.prune = g.prune.unwrap_or(true);
                o.re_acknowledge_required = g.re_acknowledge_required.unwrap_or(false);
            }
        }
        Spec::License(s) => {
            if let Some(g) = &s.gitops {
                o.prune = g.prune.unwrap_or(true);
            }
        }
    }
    o
}

/// A step of a path borrowed from the tree (the walks below allocate only when they report).
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn owned(path: &[Step<'_>]) -> Vec<Seg> {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => Seg::Key((*k).to_owned()),
            Step::Index(i) => Seg::Index(*i),
        })
        .collect()
}

/// Whether the value at `path` is a known secret field (`password`, `userFiles[].content`...).
fn is_secret_path(path: &[Step<'_>]) -> bool {
    match path {
        [.., Step::Key(last)] if secrets::SECRET_FIELDS.contains(last) => true,
        [.., Step::Key("userFiles"), Step::Index(_), Step::Key("content")] => true,
        _ => false,
    }
}

/// One walk over the tree: checks placeholders, records tainted values, flags literal secrets,
/// and catches `maskingConfig.type: Null` (unquoted `Null` is YAML null).
fn walk<'a>(
    ctx: &mut FileCtx<'_>,
    node: &'a Node,
    path: &mut Vec<Step<'a>>,
    tainted: &mut Vec<Tainted>,
) {
    match &node.value {
        Value::Str(s) => string(ctx, node, s, path, tainted),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(ctx, item, path, tainted);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                path.push(Step::Key(&k.name));
                if k.name == "maskingConfig"
                    && let Some((tk, tv)) = v.entry("type")
                    && tv.value == Value::Null
                {
                    path.push(Step::Key(&tk.name));
                    ctx.error(
                        Code::NullTrap,
                        "`maskingConfig.type` is YAML null: an unquoted `Null` is not the masking type `Null`",
                        tv.pos,
                        &owned(path),
                        "quote it: `type: \"Null\"`",
                    );
                    path.pop();
                }
                walk(ctx, v, path, tainted);
                path.pop();
            }
        }
        _ => {}
    }
}

fn string(
    ctx: &mut FileCtx<'_>,
    node: &Node,
    s: &str,
    path: &[Step<'_>],
    tainted: &mut Vec<Tainted>,
) {
    let secret_field = is_secret_path(path);
    let mut is_tainted = secret_field && !s.is_empty();
    if secrets::has_placeholder(s) {
        match secrets::parse(s) {
            Err(e) => ctx.error(Code::Placeholder, e.message, node.pos, &owned(path), e.hint),
            Ok(pieces) => {
                for piece in pieces {
                    match piece {
                        secrets::Piece::Ref(SecretRef::Env(var)) => {
                            is_tainted = true;
                            if !ctx.options.offline && !ctx.options.env.contains(&var) {
                                ctx.error(
                                    Code::MissingVariable,
                                    format!("environment variable `{var}` is not set"),
                                    node.pos,
                                    &owned(path),
                                    format!(
                                        "set `{var}` in the environment of immuta-gitops (CI secret, \
                                         Kubernetes Secret) or in an env file listed in `envFiles`; \
                                         it is read when the payload is sent"
                                    ),
                                );
                            }
                        }
                        secrets::Piece::Ref(SecretRef::File(file)) => {
                            is_tainted = true;
                            ctx.secret_files.push(SecretFileRef {
                                file,
                                location: ctx.loc(node.pos),
                                path: path_string(&owned(path)),
                            });
                        }
                        secrets::Piece::Text(_) => {}
                    }
                }
            }
        }
    } else if secret_field && !s.is_empty() {
        let field = match path.last() {
            Some(Step::Key(k)) => *k,
            _ => "",
        };
        ctx.warning(
            Code::PlaintextSecret,
            format!(
                "`{field}` holds a literal secret: anyone who can read the repository can read it"
            ),
            node.pos,
            &owned(path),
            "use a placeholder instead: `${ENV_VAR}` or `${file:PATH}`",
        );
    }
    if is_tainted && !matches!(path.first(), Some(Step::Key("gitops"))) {
        tainted.push(Tainted { pointer: json_pointer(&owned(path)), location: ctx.loc(node.pos) });
    }
}

/// RFC 6901 JSON pointer of a path.
pub fn json_pointer(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        s.push('/');
        match seg {
            Seg::Key(k) => s.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => s.push_str(&i.to_string()),
        }
    }
    s
}

fn policy(ctx: &mut FileCtx<'_>, root: &Node) -> Option<Spec> {
    let Some((type_key, type_node)) = root.entry("type") else {
        ctx.error(
            Code::MissingField,
            "missing required field `type`",
            root.pos,
            &[],
            "add `type: subscription` or `type: data`",
        );
        return None;
    };
    let type_path = [Seg::Key(type_key.name.clone())];
    let actions = root.entry("actions");
    match type_node.as_str() {
        Some("subscription") => {
            if let Some((k, a)) = actions
                && matches!(a.value, Value::Seq(_))
            {
                ctx.error(
                    Code::ActionsShape,
                    "a subscription policy's `actions` must be a mapping, not a list",
                    a.pos,
                    &[Seg::Key(k.name.clone())],
                    "write `actions: {type: anyone|approval|entitlements|manual, ...}`; lists of \
                     `{rules: [...]}` belong to data policies (`type: data`)",
                );
            }
            ctx.typed::<model::SubscriptionPolicySpec>(root, &[])
                .map(|s| Spec::SubscriptionPolicy(Box::new(s)))
        }
        Some("data") => {
            if let Some((k, a)) = actions
                && matches!(a.value, Value::Map(_))
            {
                ctx.error(
                    Code::ActionsShape,
                    "a data policy's `actions` must be a list of `{rules: [...]}`, not a mapping",
                    a.pos,
                    &[Seg::Key(k.name.clone())],
                    "write `actions:` followed by `- rules: [...]` items; a mapping belongs to \
                     subscription policies (`type: subscription`)",
                );
            }
            let spec = ctx.typed::<model::DataPolicySpec>(root, &[]);
            if let Some((k, a)) = actions {
                check_rules(ctx, a, &[Seg::Key(k.name.clone())]);
            }
            spec.map(|s| Spec::DataPolicy(Box::new(s)))
        }
        other => {
            let message = match other {
                Some(t) => match de::suggest(t, &["subscription", "data"]) {
                    Some(s) => format!("unknown policy type `{}` (did you mean `{s}`?)", shown(t)),
                    None => format!("unknown policy type `{}`", shown(t)),
                },
                None => {
                    format!("policy `type` must be a string, found {}", type_node.value.type_name())
                }
            };
            ctx.error(
                Code::InvalidValue,
                message,
                type_node.pos,
                &type_path,
                "use `subscription` or `data`",
            );
            None
        }
    }
}

/// Checks each rule's `config` against the shape its `type` needs.
fn check_rules(ctx: &mut FileCtx<'_>, actions: &Node, base: &[Seg]) {
    let Some(actions) = actions.as_seq() else { return };
    for (ai, action) in actions.iter().enumerate() {
        let Some(rules) = action.get("rules").and_then(Node::as_seq) else { continue };
        for (ri, rule) in rules.iter().enumerate() {
            let mut path = base.to_vec();
            path.extend([Seg::Index(ai), Seg::Key("rules".into()), Seg::Index(ri)]);
            let Some(kind) = rule.get("type").and_then(Node::as_str) else { continue };
            let config = rule.entry("config");
            let mut config_path = path.clone();
            config_path.push(Seg::Key("config".into()));
            let needs = |ctx: &mut FileCtx<'_>, what: &str| {
                ctx.error(
                    Code::MissingField,
                    format!("a `{kind}` rule needs a `config` with {what}"),
                    rule.pos,
                    &path,
                    "add `config:` to the rule",
                );
            };
            match kind {
                "Masking" => match config {
                    Some((_, c)) => {
                        if let Some(m) = ctx.typed::<model::MaskingRuleConfig>(c, &config_path) {
                            check_masking(ctx, c, &m, &config_path);
                        }
                    }
                    None => needs(ctx, "`fields` and `maskingConfig`"),
                },
                k if RuleType::RowRestrictionByCustomWhereClause.spellings().contains(&k) => {
                    match config {
                        Some((_, c)) => {
                            ctx.typed::<model::WhereClauseRuleConfig>(c, &config_path);
                        }
                        None => needs(ctx, "a `predicate`"),
                    }
                }
                k if RuleType::RowRestrictionByUserEntitlements.spellings().contains(&k) => {
                    match config {
                        Some((_, c)) => {
                            ctx.typed::<model::EntitlementsRuleConfig>(c, &config_path);
                        }
                        None => needs(ctx, "`matches`"),
                    }
                }
                // Minimization, Time Restriction, Purpose Restriction: shapes not documented.
                _ => {}
            }
        }
    }
}

fn check_masking(ctx: &mut FileCtx<'_>, config: &Node, m: &model::MaskingRuleConfig, path: &[Seg]) {
    let mc_node = config.get("maskingConfig").unwrap_or(config);
    let mut mc_path = path.to_vec();
    mc_path.push(Seg::Key("maskingConfig".into()));
    let type_pos = mc_node.get("type").map_or(mc_node.pos, |n| n.pos);
    let mut type_path = mc_path.clone();
    type_path.push(Seg::Key("type".into()));
    let kind = m.masking_config.kind.as_str();
    match kind {
        "Constant" if m.masking_config.constant.is_none() => ctx.error(
            Code::MissingField,
            "a `Constant` masking rule needs `constant`",
            mc_node.pos,
            &mc_path,
            "add `constant: REDACTED` (the replacement value)",
        ),
        "Custom Function" if m.masking_config.sql_function.is_none() => ctx.error(
            Code::MissingField,
            "a `Custom Function` masking rule needs `sqlFunction`",
            mc_node.pos,
            &mc_path,
            "add `sqlFunction: ...` using `@column` for the masked column",
        ),
        k if !model::MASKING_TYPES.contains(&k) => {
            let hint = match de::suggest(k, model::MASKING_TYPES) {
                Some(s) => format!("did you mean `{s}`? Unknown types are posted as written"),
                None => format!(
                    "known types: {}; others are posted as written",
                    model::MASKING_TYPES.join(", ")
                ),
            };
            ctx.warning(
                Code::InvalidValue,
                format!("unknown masking type `{}`", shown(k)),
                type_pos,
                &type_path,
                hint,
            );
        }
        _ => {}
    }
    for (i, f) in m.fields.iter().enumerate() {
        let mut fp = path.to_vec();
        fp.extend([Seg::Key("fields".into()), Seg::Index(i)]);
        let pos = config
            .get("fields")
            .and_then(Node::as_seq)
            .and_then(|s| s.get(i))
            .map_or(config.pos, |n| n.pos);
        if !model::FIELD_TYPES.contains(&f.kind.as_str()) {
            ctx.warning(
                Code::InvalidValue,
                format!("unknown masking field type `{}`", shown(&f.kind)),
                pos,
                &fp,
                format!(
                    "known types: {}; others are posted as written",
                    model::FIELD_TYPES.join(", ")
                ),
            );
        } else if f.kind == "columnTags" && f.column_tag.is_none() {
            ctx.error(
                Code::MissingField,
                "a `columnTags` field needs `columnTag`",
                pos,
                &fp,
                "add `columnTag: Discovered.PII` (the tag whose columns are masked)",
            );
        }
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

fn check_data_source(ctx: &mut FileCtx<'_>, root: &Node) {
    // A documented example (Databricks OAuth, cut off in the docs) has no `handler`: a warning,
    // since the docs never say it is required, but every complete example has one.
    if let Some((ck, conn)) = root.entry("connection")
        && conn.as_map().is_some()
        && conn.get("handler").is_none()
    {
        let hint = match likely_handler(conn) {
            Some(h) => format!("add `handler: {h}` (the connection looks like {h})"),
            None => format!("add `handler: ...`, one of {}", model::HANDLERS.join(", ")),
        };
        ctx.warning(
            Code::MissingField,
            "the connection has no `handler`: Immuta needs it to know which kind of database to \
             connect to",
            conn.pos,
            &[Seg::Key(ck.name.clone())],
            hint,
        );
    }
    if let Some((ck, conn)) = root.entry("connection")
        && let Some(handler) = conn.get("handler").and_then(Node::as_str)
    {
        let base = [Seg::Key(ck.name.clone())];
        if !model::HANDLERS.contains(&handler) {
            let hint = match de::suggest(handler, model::HANDLERS) {
                Some(s) => format!("did you mean `{s}`? Other handlers are posted as written"),
                None => format!(
                    "known handlers: {}; others are posted as written",
                    model::HANDLERS.join(", ")
                ),
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
                    &base,
                    format!("add `{field}: ...` to `connection`"),
                );
            }
        }
    }
    let Some((sk, sources)) = root.entry("sources") else { return };
    let Some(items) = sources.as_seq() else { return };
    let mut tables: BTreeMap<(String, String), Pos> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = [Seg::Key(sk.name.clone()), Seg::Index(i)];
        if item.as_map().is_none() {
            continue; // typed validation reports the type
        }
        let all = item.get("all");
        let table = item.get("tableName");
        let query = item.get("query");
        let shapes =
            [all.is_some(), table.is_some(), query.is_some()].iter().filter(|b| **b).count();
        if shapes == 0 {
            ctx.error(
                Code::MissingField,
                "a `sources` entry needs `all: true`, a table (`tableName` + `schema`) or a query (`query` + `naming`)",
                item.pos,
                &path,
                "add `tableName:` and `schema:`, or `query:` with `naming: {datasource: ...}`, or `all: true`",
            );
            continue;
        }
        if shapes > 1 {
            ctx.error(
                Code::InvalidValue,
                "a `sources` entry is one of `all`, a table or a query, not several",
                item.pos,
                &path,
                "split it into separate entries",
            );
            continue;
        }
        if let Some(a) = all
            && a.value != Value::Bool(true)
        {
            ctx.warning(
                Code::InvalidValue,
                "`all` only means something as `all: true`",
                a.pos,
                &path,
                "remove the entry, or write `all: true` to register every table",
            );
        }
        if let Some(t) = table {
            match item.get("schema").and_then(Node::as_str) {
                None => ctx.error(
                    Code::MissingField,
                    "a table source needs `schema`",
                    item.pos,
                    &path,
                    "add `schema: ...` (the remote schema of the table)",
                ),
                Some(schema) => {
                    if let Some(name) = t.as_str()
                        && let Some(first) =
                            tables.insert((schema.to_owned(), name.to_owned()), t.pos)
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
                            &path,
                            "remove one of the entries; Immuta rejects duplicate tables in a payload",
                        );
                    }
                }
            }
        }
        if query.is_some() && item.get("naming").and_then(|n| n.get("datasource")).is_none() {
            ctx.error(
                Code::MissingField,
                "a query source needs `naming.datasource`",
                item.pos,
                &path,
                "add `naming: {datasource: <data source name>}`",
            );
        }
    }
}

fn check_subpurposes(ctx: &mut FileCtx<'_>, node: &Node, parent: &str, path: &mut Vec<Seg>) {
    let Some(subs) = node.get("subpurposes").and_then(Node::as_seq) else { return };
    path.push(Seg::Key("subpurposes".into()));
    for (i, sub) in subs.iter().enumerate() {
        path.push(Seg::Index(i));
        if let Some((nk, nn)) = sub.entry("name")
            && let Some(name) = nn.as_str()
        {
            let ok = name
                .strip_prefix(parent)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| !r.is_empty());
            if !ok {
                path.push(Seg::Key(nk.name.clone()));
                let own = match name.rsplit('.').next() {
                    Some(own) if !own.is_empty() => shown(own).into_owned(),
                    _ => "<name>".to_owned(),
                };
                ctx.error(
                    Code::SubpurposeName,
                    format!(
                        "subpurpose `{}` is not named after its parent `{}`",
                        shown(name),
                        shown(parent)
                    ),
                    nn.pos,
                    path,
                    format!(
                        "subpurpose names are full dotted names: write `name: {}.{own}`",
                        shown(parent),
                    ),
                );
                path.pop();
            }
            check_subpurposes(ctx, sub, name, path);
        }
        path.pop();
    }
    path.pop();
}

/// Checks across files: duplicate natural keys and references between objects.
pub(crate) fn across(
    objects: &[Object],
    options: &LoadOptions,
    diags: &mut Vec<Diagnostic>,
) -> Vec<bool> {
    let mut keep = vec![true; objects.len()];
    // The same natural key twice.
    let mut first: BTreeMap<(Kind, &str), &Location> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        if let Some(prev) = first.get(&(o.kind, o.key.as_str())) {
            let what = match o.kind {
                Kind::License if o.key.starts_with("sha256:") => "the same license key".to_owned(),
                kind => format!("{} `{}`", kind.noun(), shown(&o.key)),
            };
            diags.push(
                Diagnostic::error(
                    Code::DuplicateObject,
                    format!("{what} is defined twice (first at {prev})"),
                )
                .at(o.key_location.clone())
                .hint("keep one definition; every object must be defined exactly once"),
            );
            keep[i] = false;
        } else {
            first.insert((o.kind, o.key.as_str()), &o.key_location);
        }
    }
    // Subpurposes share the purpose namespace.
    let mut purposes: BTreeMap<String, &Location> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        for name in o.purpose_names() {
            if let Some(prev) = purposes.get(&name) {
                if name != o.key {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicateObject,
                            format!(
                                "purpose `{}` is defined twice (first at {prev})",
                                shown(&name)
                            ),
                        )
                        .at(o.location.clone())
                        .hint("define each purpose once: either as a subpurpose or as its own document"),
                    );
                }
            } else {
                purposes.insert(name, &o.location);
            }
        }
    }
    // Projects naming purposes.
    let defined: BTreeSet<&str> = purposes.keys().map(String::as_str).collect();
    diags.extend(purpose_references(objects, &defined, options.known_purposes.as_ref()));
    keep
}

/// Projects naming purposes that neither a spec (`defined`) nor the tenant (`known`, when it
/// was read) has: errors when the tenant was read, warnings offline.
pub fn purpose_references(
    objects: &[Object],
    defined: &BTreeSet<&str>,
    known: Option<&BTreeSet<String>>,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // Suggestions cost one comparison per candidate; a tree with many unknown references and
    // many purposes gets them for the first few only.
    let candidates: Vec<&str> =
        defined.iter().copied().chain(known.into_iter().flatten().map(String::as_str)).collect();
    let mut comparisons_left: usize = 200_000;
    for o in objects {
        for r in o.references.iter().filter(|r| r.kind == Kind::Purpose) {
            let name = &r.name;
            if defined.contains(name.as_str()) || known.is_some_and(|k| k.contains(name)) {
                continue;
            }
            let suggestion = if comparisons_left >= candidates.len() {
                comparisons_left -= candidates.len();
                de::suggest(name, &candidates)
            } else {
                None
            };
            let hint = match suggestion {
                Some(s) => format!("did you mean `{}`?", shown(s)),
                None if known.is_none() => {
                    "define it in a purpose spec; if it exists on the tenant already, `plan` confirms it".to_owned()
                }
                None => "define it in a purpose spec, or create it on the tenant first".to_owned(),
            };
            let message = format!(
                "project `{}` names purpose `{}`, which no spec defines",
                shown(&o.key),
                shown(name)
            );
            let d = if known.is_some() {
                Diagnostic::error(
                    Code::UnknownReference,
                    format!("{message} and the tenant does not have"),
                )
            } else {
                Diagnostic::warning(Code::UnknownReference, message)
            };
            diags.push(d.at(r.location.clone()).hint(hint));
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Diagnostic;
    use crate::snapshot::Snapshot;
    use crate::spec::model::{RULE_TYPES, RuleType};
    use crate::spec::{Desired, LoadOptions, load};

    fn run(files: &[(&str, &str)]) -> (Desired, Vec<Diagnostic>) {
        let snapshot = Snapshot::from_texts(files.iter().copied());
        load(&snapshot, &LoadOptions::with_env(["LICENSE".to_string()]))
    }

    /// Each diagnostic as the user reads it: `file:line:col: severity[code]: message`, path, hint.
    fn shown(diags: &[Diagnostic]) -> Vec<String> {
        diags.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn subpurpose_names_must_extend_their_parents_name() {
        let (desired, diags) = run(&[(
            "p.yaml",
            "name: Research\nsubpurposes:\n  - name: Research.Clinical\n    subpurposes:\n      \
             - name: Clinical.Trials\n  - name: ResearchX\n  - name: Research.\n",
        )]);
        assert!(desired.objects.is_empty());
        assert_eq!(
            shown(&diags),
            [
                "p.yaml:5:15: error[subpurpose-name]: subpurpose `Clinical.Trials` is not named \
                 after its parent `Research.Clinical`\n  at: $.subpurposes[0].subpurposes[0].name\n  \
                 hint: subpurpose names are full dotted names: write `name: Research.Clinical.Trials`",
                "p.yaml:6:11: error[subpurpose-name]: subpurpose `ResearchX` is not named after its \
                 parent `Research`\n  at: $.subpurposes[1].name\n  \
                 hint: subpurpose names are full dotted names: write `name: Research.ResearchX`",
                "p.yaml:7:11: error[subpurpose-name]: subpurpose `Research.` is not named after its \
                 parent `Research`\n  at: $.subpurposes[2].name\n  \
                 hint: subpurpose names are full dotted names: write `name: Research.<name>`",
            ]
        );
    }

    #[test]
    fn actions_of_the_wrong_shape_for_the_policy_type_are_one_error_each() {
        let (desired, diags) = run(&[
            (
                "data.yaml",
                "policyKey: mask\nname: Mask\ntype: data\nactions:\n  rules:\n    - type: Masking\n",
            ),
            (
                "sub.yaml",
                "policyKey: sub\nname: Sub\ntype: subscription\nactions:\n  - type: anyone\n",
            ),
        ]);
        assert!(desired.objects.is_empty());
        assert_eq!(
            shown(&diags),
            [
                "data.yaml:5:3: error[actions-shape]: a data policy's `actions` must be a list of \
                 `{rules: [...]}`, not a mapping\n  at: $.actions\n  hint: write `actions:` followed \
                 by `- rules: [...]` items; a mapping belongs to subscription policies (`type: \
                 subscription`)",
                "sub.yaml:5:3: error[actions-shape]: a subscription policy's `actions` must be a \
                 mapping, not a list\n  at: $.actions\n  hint: write `actions: {type: \
                 anyone|approval|entitlements|manual, ...}`; lists of `{rules: [...]}` belong to \
                 data policies (`type: data`)",
            ]
        );
    }

    #[test]
    fn the_same_natural_key_in_two_documents_of_one_file_is_an_error_at_the_second() {
        let (desired, diags) = run(&[(
            "two.yaml",
            "policyKey: k\nname: A\ntype: subscription\nactions: {type: anyone}\n---\n# again\n\
             policyKey: k\nname: B\ntype: subscription\nactions: {type: manual}\n---\nname: P\n\
             ---\nname: P\n",
        )]);
        assert_eq!(
            shown(&diags),
            [
                "two.yaml:7:12: error[duplicate-object]: policy `k` is defined twice (first at \
                 two.yaml:1:12)\n  hint: keep one definition; every object must be defined \
                 exactly once",
                "two.yaml:14:7: error[duplicate-object]: purpose `P` is defined twice (first at \
                 two.yaml:12:7)\n  hint: keep one definition; every object must be defined \
                 exactly once",
            ]
        );
        // The first definition of each is kept (nothing is applied while errors exist).
        let names: Vec<&str> = desired.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(names, ["P", "k"]);
        assert_eq!(desired.objects[1].payload["name"], "A");
    }

    #[test]
    fn documented_spelling_drift_loads_clean_and_is_posted_as_written() {
        let (desired, diags) = run(&[(
            "drift.yaml",
            "projectKey: p\nname: P\nallowedMaskedJoins: true\nsubscriptionPolicy:\n  type: \
             approval\n  approvals:\n    - requiredPermissions: OWNER\n      \
             specificApproverRequired: false\n---\npolicyKey: rows\nname: Rows\ntype: data\n\
             actions:\n  - rules:\n      - type: Row Restriction By Custom Where Clause\n        \
             config: {predicate: \"a = 1\"}\n      - type: Row Restriction by User Entitlements\n\
             \x20       config: {matches: [{type: attribute, attribute: A, tag: T}]}\n---\n\
             licensekey: ${LICENSE}\n---\nconnectionKey: c\nconnection:\n  handler: Snowflake\n  \
             hostname: h\n  warehouse: w\n  userFiles:\n    - key: PRIV_KEY_FILE\n      \
             fileName: key.p8\n      content: ${LICENSE}\n",
        )]);
        assert_eq!(shown(&diags), Vec::<String>::new());
        assert_eq!(desired.objects.len(), 4);
        let payload = |key: &str| &desired.objects.iter().find(|o| o.key == key).unwrap().payload;
        assert_eq!(payload("p")["allowedMaskedJoins"], true);
        assert_eq!(
            payload("p")["subscriptionPolicy"]["approvals"][0]["requiredPermissions"],
            "OWNER"
        );
        let rules = &payload("rows")["actions"][0]["rules"];
        assert_eq!(rules[0]["type"], "Row Restriction By Custom Where Clause");
        assert_eq!(rules[1]["type"], "Row Restriction by User Entitlements");
        assert_eq!(payload("${LICENSE}"), &serde_json::json!({"licensekey": "${LICENSE}"}));
        assert_eq!(payload("c")["connection"]["userFiles"][0]["fileName"], "key.p8");
    }

    #[test]
    fn a_field_written_under_both_spellings_is_an_error_at_the_second() {
        let (desired, diags) = run(&[(
            "both.yaml",
            "projectKey: p\nname: P\nallowMaskedJoins: true\nsubscriptionPolicy:\n  type: \
             approval\n  approvals:\n    - requiredPermission: OWNER\n      \
             requiredPermissions: OWNER\nallowedMaskedJoins: true\n",
        )]);
        assert!(desired.objects.is_empty());
        let hint = "hint: keep one of them: Immuta documents both spellings of this field, and \
                    which one a tenant reads when both are sent is unknown";
        assert_eq!(
            shown(&diags),
            [
                format!(
                    "both.yaml:8:7: error[duplicate-key]: `requiredPermission` is written twice, \
                     also as `requiredPermissions`\n  at: \
                     $.subscriptionPolicy.approvals[0].requiredPermissions\n  {hint}"
                ),
                format!(
                    "both.yaml:9:1: error[duplicate-key]: `allowMaskedJoins` is written twice, \
                     also as `allowedMaskedJoins`\n  at: $.allowedMaskedJoins\n  {hint}"
                ),
            ]
        );
    }

    #[test]
    fn the_schema_knows_the_natural_keys_the_loader_infers_kinds_from() {
        let names: Vec<&str> = super::KEYS.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, crate::spec::model::NATURAL_KEYS);
    }

    #[test]
    fn rule_type_spellings_are_exactly_what_the_model_accepts() {
        let mut all = Vec::new();
        for kind in [
            RuleType::Masking,
            RuleType::Minimization,
            RuleType::PurposeRestriction,
            RuleType::TimeRestriction,
            RuleType::RowRestrictionByUserEntitlements,
            RuleType::RowRestrictionByCustomWhereClause,
        ] {
            for spelling in kind.spellings() {
                let parsed: RuleType = serde_json::from_value(serde_json::json!(spelling)).unwrap();
                assert_eq!(parsed, kind, "{spelling}");
                all.push(*spelling);
            }
        }
        assert_eq!(all, RULE_TYPES);
        let lower = serde_json::from_value::<RuleType>(serde_json::json!("masking"));
        assert!(lower.is_err());
    }

    #[test]
    fn a_connection_without_a_handler_is_a_warning_naming_the_likely_one() {
        let (desired, diags) = run(&[
            ("dbx.yaml", "connectionKey: dbx\nconnection:\n  hostname: h\n  httpPath: p\n"),
            ("other.yaml", "connectionKey: o\nconnection: {hostname: h}\n"),
        ]);
        assert_eq!(desired.objects.len(), 2, "a warning: the objects still load");
        assert_eq!(
            shown(&diags),
            [
                "dbx.yaml:3:3: warning[missing-field]: the connection has no `handler`: Immuta \
                 needs it to know which kind of database to connect to\n  at: $.connection\n  \
                 hint: add `handler: Databricks` (the connection looks like Databricks)",
                "other.yaml:2:13: warning[missing-field]: the connection has no `handler`: Immuta \
                 needs it to know which kind of database to connect to\n  at: $.connection\n  \
                 hint: add `handler: ...`, one of Snowflake, Databricks, Redshift, Google BigQuery, \
                 BigQuery, Presto, Trino, Athena",
            ]
        );
    }
}
