//! Semantic checks of spec documents, on the located tree: per document (placeholders, literal
//! secrets, the `Null` trap, then one file per kind) and across files (duplicate natural keys,
//! references between objects).
//!
//! `FileCtx` collects one file's diagnostics and runs typed validation (`FileCtx::typed`).
//! The walk in this file visits every value once: it checks placeholders, records the tainted
//! (secret) values, flags literal secrets and catches `maskingConfig.type: Null`.
//!
//! - `policy.rs`: policy types, actions shapes, rule configs, masking.
//! - `data_source.rs`: connections (handler, required fields) and `sources` entries.
//! - `purpose.rs`: subpurpose names.
//! - `across.rs`: checks across files (`across`, [`purpose_references`]).
//!
//! Checks on the located tree run before typed validation, so the most specific message wins
//! when both see the same value (the `Null` trap reports "quote it", not "expected a string").
//! Where documents become [`Object`](super::Object)s is `spec/document.rs`.

mod across;
mod data_source;
mod keys;
mod policy;
mod purpose;
#[cfg(test)]
mod tests;

use serde::de::DeserializeOwned;

pub(crate) use self::across::across;
pub use self::across::purpose_references;
pub(super) use self::data_source::check_data_source;
pub(super) use self::keys::check_keys;
pub(super) use self::policy::policy;
pub(super) use self::purpose::check_subpurposes;
use super::de::{self, Seg, path_string};
pub use super::document::license_key_id;
use super::model;
use super::node::{Node, Pos, Value};
use super::secrets::{self, SecretRef};
use super::text::shown;
use super::{LoadOptions, SecretFileRef, Tainted};
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

    pub(super) fn loc(&self, pos: Pos) -> Location {
        Location::new(self.file, pos.line, pos.column)
    }

    pub(super) fn push(&mut self, d: Diagnostic, pos: Pos, path: &[Seg]) {
        let d = d.at(self.loc(pos));
        self.diags.push(if path.is_empty() { d } else { d.path(path_string(path)) });
    }

    pub(super) fn error(
        &mut self,
        code: Code,
        message: impl Into<String>,
        pos: Pos,
        path: &[Seg],
        hint: impl Into<String>,
    ) {
        self.push(Diagnostic::error(code, message).hint(hint), pos, path);
    }

    pub(super) fn warning(
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
    pub(super) fn typed<T: DeserializeOwned>(&mut self, node: &Node, base: &[Seg]) -> Option<T> {
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
            let in_gitops = matches!(u.path.first(), Some(Seg::Key(k)) if k == "gitops");
            let mut path = base.to_vec();
            path.extend(u.path);
            path.push(Seg::Key(u.key.clone()));
            if in_gitops {
                // `gitops:` is this tool's own block and is never posted: a typo there would
                // silently drop an option (a `prune: false` that does not protect).
                let hint = match &u.suggestion {
                    Some(s) => format!(
                        "did you mean `{s}`? `gitops:` holds this tool's own options and is never \
                         posted to Immuta"
                    ),
                    None => "`gitops:` holds this tool's own options and is never posted to \
                             Immuta; see `immuta-gitops schema` for the options of this kind"
                        .to_owned(),
                };
                self.error(
                    Code::UnknownField,
                    format!("unknown option `{}` in `gitops:`", shown(&u.key)),
                    u.pos,
                    &path,
                    hint,
                );
                continue;
            }
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

/// Walks the whole document once (see [`walk`]) and returns its tainted (secret) values.
pub(super) fn tainted_values(ctx: &mut FileCtx<'_>, root: &Node) -> Vec<Tainted> {
    let mut tainted = Vec::new();
    walk(ctx, root, &mut Vec::new(), &mut tainted);
    tainted
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
