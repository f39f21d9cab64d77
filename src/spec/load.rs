//! `load`: a snapshot in, the desired state and every diagnostic out.

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::document::document;
use super::envfile::{self, EnvValues};
use super::node::{self, Node, ParseErrorKind};
use super::text::{escaped, has_unsafe, shown};
use super::validate::{self, FileCtx};
use super::{Desired, LoadOptions, RepoSettings};
use crate::diagnostic::{self, Code, Diagnostic, Location};
use crate::snapshot::{FileContent, Snapshot, SnapshotFile};

/// Names of the repository settings file at the spec root.
pub const SETTINGS_FILES: [&str; 2] = ["immuta-gitops.yaml", "immuta-gitops.yml"];

/// Whether a path (relative, `/`-separated) is a spec file: `*.yaml`, `*.yml` or `*.json`, not
/// under a hidden directory (`.github/`, Kubernetes' `..data/`), not hidden itself.
pub fn is_spec_file(path: &str) -> bool {
    let has_ext =
        [".yaml", ".yml", ".json"].iter().any(|ext| path.to_ascii_lowercase().ends_with(ext));
    has_ext && !path.split('/').any(|c| c.starts_with('.'))
}

/// Whether a source should put a path into a snapshot: spec files, the settings file, and
/// env files (`*.env`, not hidden).
pub fn is_snapshot_file(path: &str) -> bool {
    is_spec_file(path) || (path.ends_with(".env") && !path.split('/').any(|c| c.starts_with('.')))
}

/// Loads and validates every spec file of `snapshot`.
///
/// Returns the desired state (only documents without errors) and every diagnostic, sorted by
/// file and position. When any diagnostic is an error, callers must apply nothing.
pub fn load(snapshot: &Snapshot, options: &LoadOptions) -> (Desired, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (settings, source) = read_settings(snapshot, &mut diags);
    let exclude = build_excludes(&settings, source.as_ref(), &mut diags);
    let env_defaults = read_env_files(snapshot, &settings, source.as_ref(), &mut diags);
    let mut env_options;
    let options = if env_defaults == EnvValues::default() {
        options
    } else {
        env_options = options.clone();
        env_options.env.extend(env_defaults.names().map(str::to_owned));
        &env_options
    };
    for file in &snapshot.files {
        if let FileContent::OutsideRoot { target } = &file.content
            && file.path.ends_with('/')
            && !exclude.is_match(&file.path)
        {
            // A directory symlink leaving the root (see `source::dir`): its files are not read.
            diags.push(
                Diagnostic::error(
                    Code::OutsideRoot,
                    format!(
                        "symlink to directory `{}` leaves the spec root; not followed, so no file \
                         in it is read",
                        escaped(target)
                    ),
                )
                .at(Location::file(escaped(&file.path)))
                .hint(
                    "keep spec files inside the spec root: replace the link with the directory, \
                     or exclude it in immuta-gitops.yaml (`exclude: [\"name/**\"]`)",
                ),
            );
        }
    }
    let spec_files: Vec<&SnapshotFile> = snapshot
        .files
        .iter()
        .filter(|f| {
            is_spec_file(&f.path)
                && !SETTINGS_FILES.contains(&f.path.as_str())
                && !exclude.is_match(&f.path)
        })
        .collect();
    let files = spec_files.len();
    // Files are independent until the cross-file checks: load them on every core, then merge
    // in path order.
    let results = crate::parallel::map(&spec_files, 32, |f| load_file(f, options));
    let mut objects = Vec::new();
    let mut secret_files = Vec::new();
    for mut r in results {
        objects.append(&mut r.objects);
        diags.append(&mut r.diags);
        secret_files.append(&mut r.secret_files);
    }
    let keep = validate::across(&objects, options, &mut diags);
    let mut objects: Vec<_> =
        objects.into_iter().zip(keep).filter_map(|(o, k)| k.then_some(o)).collect();
    objects.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    if options.strict || settings.strict {
        // Except a project naming a purpose no spec defines: only the tenant can tell whether
        // it exists, and `plan` asks it (an error then when it does not).
        let (deferred, mut promoted): (Vec<_>, Vec<_>) =
            diags.drain(..).partition(|d| d.code == crate::diagnostic::Code::UnknownReference);
        diagnostic::promote_warnings(&mut promoted);
        diags = promoted.into_iter().chain(deferred).collect();
    }
    diagnostic::sort(&mut diags);
    let desired = Desired {
        revision: snapshot.revision.clone(),
        objects,
        settings,
        files,
        env_defaults,
        secret_files,
    };
    (desired, diags)
}

/// What one file yields.
#[derive(Default)]
struct FileResult {
    objects: Vec<super::Object>,
    diags: Vec<Diagnostic>,
    secret_files: Vec<super::SecretFileRef>,
}

fn load_file(file: &SnapshotFile, options: &LoadOptions) -> FileResult {
    let mut diags = Vec::new();
    if has_unsafe(&file.path) {
        diags.push(
            Diagnostic::error(
                Code::Unreadable,
                "the file name contains control or bidirectional-formatting characters; the file is not read",
            )
            .at(Location::file(escaped(&file.path)))
            .hint("rename the file: spec file names are printed in diagnostics and logs"),
        );
        return FileResult { diags, ..FileResult::default() };
    }
    let Some(text) = file_text(file, &mut diags) else {
        return FileResult { diags, ..FileResult::default() };
    };
    let json = file.path.to_ascii_lowercase().ends_with(".json");
    let mut ctx = FileCtx::new(&file.path, options);
    let mut objects = Vec::new();
    for doc in node::parse_documents(text, json, &options.limits) {
        match doc.result {
            Ok(root) => objects.extend(document(&mut ctx, root)),
            Err(e) => {
                let pos = e.pos.unwrap_or(node::Pos { line: doc.start_line, column: 0 });
                let code = match e.kind {
                    ParseErrorKind::Budget => Code::Budget,
                    ParseErrorKind::DuplicateKey => Code::DuplicateKey,
                    ParseErrorKind::Unsupported => Code::InvalidValue,
                    ParseErrorKind::Syntax => Code::Syntax,
                };
                ctx.diags.push(
                    Diagnostic::error(code, e.message)
                        .at(Location::new(&file.path, pos.line, pos.column))
                        .hint(e.hint),
                );
            }
        }
    }
    diags.append(&mut ctx.diags);
    FileResult { objects, diags, secret_files: ctx.secret_files }
}

/// The file's text, or a diagnostic saying why there is none.
fn file_text<'a>(file: &'a SnapshotFile, diags: &mut Vec<Diagnostic>) -> Option<&'a str> {
    let mut at = Location::file(escaped(&file.path));
    let d = match &file.content {
        FileContent::Bytes(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => match text.find('\0') {
                None => return Some(text),
                Some(i) => {
                    at = line_col(&escaped(&file.path), text, i);
                    Diagnostic::error(
                        Code::Unreadable,
                        format!("the file contains a NUL byte (at byte offset {i}): binary data, not a spec"),
                    )
                    .hint(
                        "spec files are UTF-8 text; remove binary files from the spec tree, or \
                         exclude them in immuta-gitops.yaml (`exclude:`)",
                    )
                }
            },
            Err(e) => {
                let i = e.valid_up_to();
                let valid = bytes.get(..i).and_then(|b| std::str::from_utf8(b).ok());
                at = line_col(&escaped(&file.path), valid.unwrap_or_default(), i);
                Diagnostic::error(
                    Code::Unreadable,
                    format!("the file is not UTF-8 text (invalid byte at offset {i})"),
                )
                .hint(
                    "save the file as UTF-8 (not UTF-16 or Latin-1), or exclude it in \
                     immuta-gitops.yaml (`exclude:`)",
                )
            }
        },
        FileContent::TooLarge { size, limit } => Diagnostic::error(
            Code::Budget,
            format!("the file is {size} bytes, more than the limit of {limit}"),
        )
        .hint("split it into smaller files (one object per file is a good default)"),
        FileContent::OutsideRoot { target } => Diagnostic::error(
            Code::OutsideRoot,
            format!("symlink to `{}` leaves the spec root; not followed", escaped(target)),
        )
        .hint("keep spec files inside the spec root; replace the link with the file"),
        FileContent::Unreadable { reason } => {
            Diagnostic::error(Code::Unreadable, format!("cannot read: {}", escaped(reason)))
                .hint("check the file's permissions, or that a symlink's target exists")
        }
    };
    diags.push(d.at(at));
    None
}

/// The location of byte `offset` of `text` (1-based line and column in characters).
fn line_col(file: &str, text: &str, offset: usize) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Location::new(file, to_u32(line), to_u32(column))
}

/// The parsed settings file, for locating its entries in later diagnostics.
struct SettingsSource {
    path: String,
    root: Node,
}

impl SettingsSource {
    /// Where item `index` of the list `field` is written (the file, when unknown).
    fn item(source: Option<&Self>, field: &str, index: usize) -> Location {
        match source {
            Some(s) => {
                let pos = s
                    .root
                    .get(field)
                    .map(|list| list.as_seq().and_then(|items| items.get(index)).unwrap_or(list))
                    .map_or(s.root.pos, |n| n.pos);
                Location::new(&s.path, pos.line, pos.column)
            }
            None => Location::file(SETTINGS_FILES[0]),
        }
    }
}

fn read_settings(
    snapshot: &Snapshot,
    diags: &mut Vec<Diagnostic>,
) -> (RepoSettings, Option<SettingsSource>) {
    let mut settings = RepoSettings::default();
    let mut found = snapshot.files.iter().filter(|f| SETTINGS_FILES.contains(&f.path.as_str()));
    let Some(file) = found.next() else { return (settings, None) };
    if let Some(other) = found.next() {
        diags.push(
            Diagnostic::error(
                Code::Settings,
                format!(
                    "both `{}` and `{}` exist; only `{}` is read",
                    file.path, other.path, file.path
                ),
            )
            .at(Location::file(&other.path))
            .hint("keep one settings file"),
        );
    }
    let Some(text) = file_text(file, diags) else { return (settings, None) };
    let mut docs = node::parse_documents(text, false, &node::Limits::default()).into_iter();
    let first = docs.next();
    if let Some(second) = docs.next() {
        diags.push(
            Diagnostic::error(Code::Settings, "the settings file holds more than one document")
                .at(Location::new(&file.path, second.start_line, 0))
                .hint("keep one document: remove the `---` and merge the settings"),
        );
    }
    let root: Node = match first.map(|d| d.result) {
        None => return (settings, None),
        Some(Err(e)) => {
            let pos = e.pos.unwrap_or_default();
            let hint = match e.kind {
                ParseErrorKind::Syntax => "fix the YAML syntax of the settings file",
                _ => e.hint,
            };
            diags.push(
                Diagnostic::error(Code::Settings, e.message)
                    .at(Location::new(&file.path, pos.line, pos.column))
                    .hint(hint),
            );
            return (settings, None);
        }
        Some(Ok(root)) => root,
    };
    let checked = super::de::check::<super::model::RepoSettingsFile>(&root);
    for e in &checked.errors {
        let pos = e.pos.unwrap_or(root.pos);
        diags.push(
            Diagnostic::error(Code::Settings, e.message.clone())
                .at(Location::new(&file.path, pos.line, pos.column))
                .path(super::de::path_string(e.path.as_deref().unwrap_or_default()))
                .hint("see `immuta-gitops schema` for the settings file's fields"),
        );
    }
    for u in &checked.unknown_fields {
        let hint = match &u.suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => "known settings: allowDestroy, maxDeletePercent, strict, exclude, envFiles"
                .to_owned(),
        };
        diags.push(
            Diagnostic::error(Code::Settings, format!("unknown setting `{}`", shown(&u.key)))
                .at(Location::new(&file.path, u.pos.line, u.pos.column))
                .hint(hint),
        );
    }
    if let Some(s) = checked.value {
        settings.allow_destroy = s.allow_destroy.unwrap_or(false);
        settings.strict = s.strict.unwrap_or(false);
        settings.exclude = s.exclude.unwrap_or_default();
        settings.env_files = s.env_files.unwrap_or_default();
        if let Some(p) = s.max_delete_percent {
            if p > 100 {
                let pos = root.get("maxDeletePercent").map_or(root.pos, |n| n.pos);
                diags.push(
                    Diagnostic::error(
                        Code::Settings,
                        format!("maxDeletePercent is {p}, more than 100"),
                    )
                    .at(Location::new(&file.path, pos.line, pos.column))
                    .hint("use a percentage between 0 and 100"),
                );
            } else {
                settings.max_delete_percent = p;
            }
        }
    }
    (settings, Some(SettingsSource { path: file.path.clone(), root }))
}

fn read_env_files(
    snapshot: &Snapshot,
    settings: &RepoSettings,
    source: Option<&SettingsSource>,
    diags: &mut Vec<Diagnostic>,
) -> EnvValues {
    let mut values = EnvValues::default();
    for (i, name) in settings.env_files.iter().enumerate() {
        let at = SettingsSource::item(source, "envFiles", i);
        if !is_snapshot_file(name) || !name.ends_with(".env") {
            diags.push(
                Diagnostic::error(
                    Code::Settings,
                    format!(
                        "env file `{}` must be a `*.env` file inside the spec root",
                        shown(name)
                    ),
                )
                .at(at)
                .path(format!("$.envFiles[{i}]"))
                .hint("name a non-hidden `*.env` file relative to the spec root"),
            );
            continue;
        }
        let Some(file) = snapshot.files.iter().find(|f| f.path == name.trim_start_matches("./"))
        else {
            diags.push(
                Diagnostic::error(
                    Code::Settings,
                    format!("env file `{}` does not exist", shown(name)),
                )
                .at(at)
                .path(format!("$.envFiles[{i}]"))
                .hint("create it, or remove it from `envFiles`"),
            );
            continue;
        };
        let Some(text) = file_text(file, diags) else { continue };
        match envfile::parse(text) {
            Ok(v) => values.merge(v),
            Err(e) => diags.push(
                Diagnostic::error(Code::Settings, format!("env file syntax: {}", e.message))
                    .at(Location::new(&file.path, e.line, 1))
                    .hint("write `NAME=value` lines; quote values with spaces"),
            ),
        }
    }
    values
}

fn build_excludes(
    settings: &RepoSettings,
    source: Option<&SettingsSource>,
    diags: &mut Vec<Diagnostic>,
) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for (i, pattern) in settings.exclude.iter().enumerate() {
        match Glob::new(pattern) {
            Ok(g) => {
                builder.add(g);
            }
            Err(e) => diags.push(
                Diagnostic::error(
                    Code::Settings,
                    format!(
                        "invalid exclude pattern `{}`: {}",
                        shown(pattern),
                        shown(&e.kind().to_string())
                    ),
                )
                .at(SettingsSource::item(source, "exclude", i))
                .path(format!("$.exclude[{i}]"))
                .hint("use glob syntax, e.g. `drafts/**`"),
            ),
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn run(files: &[(&str, &str)]) -> (Desired, Vec<Diagnostic>) {
        let snapshot = Snapshot::from_texts(files.iter().copied());
        load(&snapshot, &LoadOptions::with_env(["DB_PASSWORD".to_string()]))
    }

    #[test]
    fn hidden_and_non_spec_files_are_skipped() {
        assert!(is_spec_file("a/b.yaml"));
        assert!(is_spec_file("x.JSON"));
        assert!(!is_spec_file(".github/workflows/ci.yml"));
        assert!(!is_spec_file("..data/spec.yaml"));
        assert!(!is_spec_file("README.md"));
    }

    #[test]
    fn a_small_tree_loads_into_objects_in_apply_order() {
        let (desired, diags) = run(&[
            ("p.yaml", "name: Research\nsubpurposes:\n  - name: Research.Clinical\n"),
            ("q.yaml", "policyKey: k\nname: K\ntype: subscription\nactions:\n  type: anyone\n"),
            ("proj.yaml", "projectKey: pk\nname: P\npurposes: [Research.Clinical]\n"),
        ]);
        assert!(diags.is_empty(), "{diags:#?}");
        let kinds: Vec<_> = desired.objects.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [Kind::Purpose, Kind::Policy, Kind::Project]);
        assert_eq!(desired.files, 3);
    }

    #[test]
    fn excluded_files_and_settings_are_honoured() {
        let (desired, diags) = run(&[
            ("immuta-gitops.yaml", "exclude: [\"drafts/**\"]\nmaxDeletePercent: 10\n"),
            ("drafts/broken.yaml", "this: [is broken\n"),
            ("p.yaml", "name: P\n"),
        ]);
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(desired.settings.max_delete_percent, 10);
        assert_eq!(desired.objects.len(), 1);
    }

    #[test]
    fn unknown_settings_are_errors() {
        let (_, diags) = run(&[("immuta-gitops.yaml", "allowDestory: true\n")]);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::Settings);
        assert_eq!(diags[0].hint.as_deref(), Some("did you mean `allowDestroy`?"));
    }

    #[test]
    fn settings_problems_point_at_the_entry() {
        let (_, diags) = run(&[(
            "immuta-gitops.yml",
            "envFiles:\n  - dev.env\n  - ../x.env\nexclude: [\"a/[\"]\n---\nstrict: true\n",
        )]);
        let got: Vec<String> =
            diags.iter().map(|d| d.location.as_ref().unwrap().to_string()).collect();
        assert_eq!(
            got,
            [
                "immuta-gitops.yml:2:5",
                "immuta-gitops.yml:3:5",
                "immuta-gitops.yml:4:11",
                "immuta-gitops.yml:5"
            ],
            "{diags:#?}"
        );
    }

    #[test]
    fn a_misspelt_natural_key_is_not_read_as_a_purpose() {
        let (desired, diags) =
            run(&[("p.yaml", "projectKy: fraud\nname: Fraud\npurposes: [Research]\n")]);
        assert!(desired.objects.is_empty());
        assert_eq!(diags[0].code, Code::UnknownKind, "{diags:#?}");
        assert_eq!(
            diags[0].hint.as_deref(),
            Some("write `projectKey`; if this really is a purpose, remove `projectKy`")
        );
    }

    #[test]
    fn gitops_block_is_stripped_from_the_payload_and_read_as_options() {
        let (desired, diags) =
            run(&[("p.yaml", "name: P\ngitops:\n  prune: false\n  reAcknowledgeRequired: true\n")]);
        assert!(diags.is_empty(), "{diags:#?}");
        let o = &desired.objects[0];
        assert_eq!(o.payload, serde_json::json!({"name": "P"}));
        assert!(!o.options.prune);
        assert!(o.options.re_acknowledge_required);
    }

    #[test]
    fn secrets_are_tainted_by_placeholder_and_by_field_name() {
        let (desired, diags) = run(&[(
            "ds.yaml",
            "connectionKey: c\nconnection:\n  handler: Databricks\n  hostname: h\n  httpPath: p\n  \
             password: ${DB_PASSWORD}\n  token: literal-token\n",
        )]);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(diags[0].code, Code::PlaintextSecret);
        assert!(!diags[0].to_string().contains("literal-token"));
        let o = &desired.objects[0];
        let pointers: Vec<&str> = o.tainted_pointers().collect();
        assert_eq!(pointers, ["/connection/password", "/connection/token"]);
        assert_eq!(o.tainted[0].location.line, 6);
    }
}
