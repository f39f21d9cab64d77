//! The plan JSON: a versioned wire format (documented in `docs/plan-json.md`), written by
//! `plan --format json` and `plan --out`, read back by `apply plan.json`.
//!
//! The types here are this format's own, converted by hand from the planner's types, so a
//! refactoring of the planner cannot change the format by accident. Within `format_version` 1
//! fields and enum values are added, never renamed or removed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{clean, unmarked};
use crate::plan::impact::{BrokenReference, Direction, Finding, Subject};
use crate::plan::{Action, Change, DryRun, Effect, FieldChange, Fingerprint, ObjectId, Plan};
use crate::spec::Kind;

/// The `format_version` this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Renders `plan` as pretty-printed JSON with a trailing newline.
pub fn json(plan: &Plan) -> String {
    let doc = PlanDoc::from(plan);
    // Serializing plain structs of strings, numbers and JSON values cannot fail; fall back to an
    // empty object rather than panicking, just in case.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// The top-level document.
#[derive(Debug, Serialize)]
struct PlanDoc {
    format_version: u32,
    tenant: String,
    revision: String,
    base: Option<String>,
    refreshed: bool,
    compared: String,
    has_changes: bool,
    summary: SummaryDoc,
    impact: Vec<FindingDoc>,
    impact_basis: BasisDoc,
    broken_references: Vec<ReferenceDoc>,
    changes: Vec<ChangeDoc>,
    warnings: Vec<WarningDoc>,
    errors: Vec<ErrorDoc>,
    unmanaged: Vec<UnmanagedDoc>,
    fingerprint: FingerprintDoc,
}

/// Counts.
#[derive(Debug, Serialize)]
struct SummaryDoc {
    create: usize,
    update: usize,
    delete: usize,
    replace: usize,
    adopt: usize,
    unchanged: usize,
    blocked: usize,
    effects: usize,
    destructive: usize,
    errors: usize,
    widening: usize,
    narrowing: usize,
    broken_references: usize,
}

/// One access-impact finding.
#[derive(Debug, Serialize)]
struct FindingDoc {
    #[serde(rename = "type")]
    kind: &'static str,
    direction: &'static str,
    confidence: &'static str,
    policy: Option<String>,
    subjects: Vec<SubjectDoc>,
    was: Option<String>,
    now: Option<String>,
    who: Option<String>,
    caveat: Option<String>,
    source: &'static str,
    description: String,
}

/// What a finding is about, tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SubjectDoc {
    Column { data_source: String, column: String, connection: String, table: String },
    DataSource { data_source: String, connection: String, table: String },
    Connection { connection: String, data_sources: usize },
    Project { key: String },
}

/// Where the impact's facts came from.
#[derive(Debug, Serialize)]
struct BasisDoc {
    offline: bool,
    tenant_tags_read: usize,
    tenant_tagged: usize,
    tenant_tags_unread: usize,
}

/// A reference the plan leaves dangling.
#[derive(Debug, Serialize)]
struct ReferenceDoc {
    severity: &'static str,
    code: &'static str,
    object: ObjectDoc,
    name: String,
    message: String,
}

/// One object's change.
#[derive(Debug, Serialize)]
struct ChangeDoc {
    kind: &'static str,
    key: String,
    action: &'static str,
    destructive: bool,
    write: bool,
    blocked: Option<String>,
    reason: Option<String>,
    live_id: Option<i64>,
    location: Option<String>,
    fields: Vec<FieldDoc>,
    effects: Vec<EffectDoc>,
    server: Option<ServerDoc>,
    before: Option<Value>,
    after: Option<Value>,
}

/// One changed field.
#[derive(Debug, Serialize)]
struct FieldDoc {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<Value>,
    sensitive: bool,
}

/// An implicit effect: its type and data, a sentence, and whether it destroys something.
#[derive(Debug, Serialize)]
struct EffectDoc {
    #[serde(flatten)]
    detail: EffectDetail,
    description: String,
    destructive: bool,
}

/// The data of an implicit effect, tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EffectDetail {
    TablesRemoved { tables: Vec<String>, hard_delete: bool },
    TableTagsReplaced { removed: Vec<String>, added: Vec<String> },
    OwnersReplaced { removed: Vec<String>, added: Vec<String>, all_but_caller: bool },
    DataSourcesRecreated { fields: Vec<String>, names: Vec<String> },
    SubpurposesRemoved { names: Vec<String> },
    ProjectDataSourcesRemoved { names: Vec<String> },
    ProjectPurposesRemoved { names: Vec<String> },
    WorkspaceDeleted { deletes_data: bool },
    Recertification,
    ReAcknowledgement { purposes: Vec<String> },
}

/// The server's dry-run answer, tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerDoc {
    Data {
        creating: Vec<String>,
        updating: Vec<String>,
        deleting: Vec<String>,
        no_change: Vec<String>,
        detection_running: bool,
        tags_updated: bool,
    },
    Object {
        creating: bool,
        updating: bool,
        data_sources_added: i64,
        data_sources_removed: i64,
    },
    Rejected {
        status: u16,
        message: String,
    },
    Unknown {
        reason: String,
    },
}

/// An object reference.
#[derive(Debug, Serialize)]
struct ObjectDoc {
    kind: &'static str,
    key: String,
}

/// A warning.
#[derive(Debug, Serialize)]
struct WarningDoc {
    code: &'static str,
    object: Option<ObjectDoc>,
    message: String,
}

/// An object the tenant refuses.
#[derive(Debug, Serialize)]
struct ErrorDoc {
    object: ObjectDoc,
    message: String,
}

/// An object nobody manages.
#[derive(Debug, Serialize)]
struct UnmanagedDoc {
    kind: &'static str,
    name: String,
    id: Option<i64>,
}

/// What the plan was computed from.
#[derive(Debug, Serialize)]
struct FingerprintDoc {
    specs: String,
    state: String,
    live: Option<String>,
}

/// The kind of a wire name.
fn parse_kind(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == name)
}

fn object_doc(id: &ObjectId) -> ObjectDoc {
    ObjectDoc { kind: id.kind.as_str(), key: id.key.clone() }
}

fn text(s: &str) -> String {
    unmarked(s).into_owned()
}

fn texts(items: Vec<String>) -> Vec<String> {
    items.iter().map(|s| text(s)).collect()
}

fn opt_text(s: Option<&String>) -> Option<String> {
    s.map(|s| text(s))
}

impl From<&Plan> for PlanDoc {
    fn from(plan: &Plan) -> Self {
        let s = plan.summary();
        PlanDoc {
            format_version: FORMAT_VERSION,
            tenant: text(&plan.tenant),
            revision: text(&plan.revision),
            base: opt_text(plan.base.as_ref()),
            refreshed: plan.refreshed,
            compared: plan.compared(),
            has_changes: plan.has_changes(),
            summary: SummaryDoc {
                create: s.create,
                update: s.update,
                delete: s.delete,
                replace: s.replace,
                adopt: s.adopt,
                unchanged: s.unchanged,
                blocked: plan.changes.iter().filter(|c| c.blocked.is_some()).count(),
                effects: s.effects,
                destructive: s.destructive,
                errors: plan.errors.len(),
                widening: plan.impact.count(Direction::Widening),
                narrowing: plan.impact.count(Direction::Narrowing),
                broken_references: plan.impact.references.len(),
            },
            impact: plan.impact.findings.iter().map(FindingDoc::from).collect(),
            impact_basis: BasisDoc {
                offline: plan.impact.basis.offline,
                tenant_tags_read: plan.impact.basis.tenant_tags_read,
                tenant_tagged: plan.impact.basis.tenant_tagged,
                tenant_tags_unread: plan.impact.basis.tenant_tags_unread,
            },
            broken_references: plan.impact.references.iter().map(ReferenceDoc::from).collect(),
            changes: plan.changes.iter().map(ChangeDoc::from).collect(),
            warnings: plan
                .warnings
                .iter()
                .map(|w| WarningDoc {
                    code: w.code,
                    object: w.object.as_ref().map(object_doc),
                    message: text(&w.message),
                })
                .collect(),
            errors: plan
                .errors
                .iter()
                .map(|e| ErrorDoc { object: object_doc(&e.object), message: text(&e.message) })
                .collect(),
            unmanaged: plan
                .unmanaged
                .iter()
                .map(|u| UnmanagedDoc { kind: u.kind.as_str(), name: text(&u.name), id: u.id })
                .collect(),
            fingerprint: FingerprintDoc {
                specs: plan.fingerprint.specs.clone(),
                state: plan.fingerprint.state.clone(),
                live: plan.fingerprint.live.clone(),
            },
        }
    }
}

impl From<&Finding> for FindingDoc {
    fn from(f: &Finding) -> Self {
        FindingDoc {
            kind: f.kind.as_str(),
            direction: f.direction.as_str(),
            confidence: f.confidence.as_str(),
            policy: opt_text(f.policy.as_ref()),
            subjects: f
                .subjects
                .iter()
                .map(|s| match s {
                    Subject::Column { source, column } => SubjectDoc::Column {
                        data_source: text(&source.data_source),
                        column: text(column),
                        connection: text(&source.connection),
                        table: text(&source.table),
                    },
                    Subject::DataSource { source } => SubjectDoc::DataSource {
                        data_source: text(&source.data_source),
                        connection: text(&source.connection),
                        table: text(&source.table),
                    },
                    Subject::Connection { connection, data_sources } => SubjectDoc::Connection {
                        connection: text(connection),
                        data_sources: *data_sources,
                    },
                    Subject::Project { key } => SubjectDoc::Project { key: text(key) },
                })
                .collect(),
            was: opt_text(f.was.as_ref()),
            now: opt_text(f.now.as_ref()),
            who: opt_text(f.who.as_ref()),
            caveat: opt_text(f.caveat.as_ref()),
            source: if f.tenant { "tenant" } else { "specs" },
            description: text(&f.describe()),
        }
    }
}

impl From<&BrokenReference> for ReferenceDoc {
    fn from(r: &BrokenReference) -> Self {
        ReferenceDoc {
            severity: r.severity.as_str(),
            code: r.code,
            object: object_doc(&r.object),
            name: text(&r.name),
            message: text(&r.message),
        }
    }
}

impl From<&Change> for ChangeDoc {
    fn from(c: &Change) -> Self {
        ChangeDoc {
            kind: c.id.kind.as_str(),
            key: c.id.key.clone(),
            action: c.action.as_str(),
            destructive: c.is_destructive(),
            write: c.write,
            blocked: opt_text(c.blocked.as_ref()),
            reason: opt_text(c.reason.as_ref()),
            live_id: c.live_id,
            location: c.location.as_ref().map(|l| text(&l.to_string())),
            fields: c.fields.iter().map(FieldDoc::from).collect(),
            effects: c.effects.iter().map(EffectDoc::from).collect(),
            server: c.server.as_ref().map(ServerDoc::from),
            before: c.before.as_deref().map(|b| clean(b, None)),
            after: c.after.as_deref().map(|a| clean(a, c.before.as_deref())),
        }
    }
}

impl From<&FieldChange> for FieldDoc {
    fn from(f: &FieldChange) -> Self {
        FieldDoc {
            path: f.path.clone(),
            before: f.before.as_ref().map(|b| clean(b, None)),
            after: f.after.as_ref().map(|a| clean(a, None)),
            sensitive: f.sensitive,
        }
    }
}

impl From<&Effect> for EffectDoc {
    fn from(e: &Effect) -> Self {
        let detail = match e.clone() {
            Effect::TablesRemoved { tables, hard_delete } => {
                EffectDetail::TablesRemoved { tables: texts(tables), hard_delete }
            }
            Effect::TableTagsReplaced { removed, added } => {
                EffectDetail::TableTagsReplaced { removed: texts(removed), added: texts(added) }
            }
            Effect::OwnersReplaced { removed, added, all_but_caller } => {
                EffectDetail::OwnersReplaced {
                    removed: texts(removed),
                    added: texts(added),
                    all_but_caller,
                }
            }
            Effect::DataSourcesRecreated { fields, names } => {
                EffectDetail::DataSourcesRecreated { fields, names: texts(names) }
            }
            Effect::SubpurposesRemoved { names } => {
                EffectDetail::SubpurposesRemoved { names: texts(names) }
            }
            Effect::ProjectDataSourcesRemoved { names } => {
                EffectDetail::ProjectDataSourcesRemoved { names: texts(names) }
            }
            Effect::ProjectPurposesRemoved { names } => {
                EffectDetail::ProjectPurposesRemoved { names: texts(names) }
            }
            Effect::WorkspaceDeleted { deletes_data } => {
                EffectDetail::WorkspaceDeleted { deletes_data }
            }
            Effect::Recertification => EffectDetail::Recertification,
            Effect::ReAcknowledgement { purposes } => {
                EffectDetail::ReAcknowledgement { purposes: texts(purposes) }
            }
        };
        EffectDoc { detail, description: text(&e.describe()), destructive: e.is_destructive() }
    }
}

impl From<&DryRun> for ServerDoc {
    fn from(d: &DryRun) -> Self {
        match d.clone() {
            DryRun::Data {
                creating,
                updating,
                deleting,
                no_change,
                detection_running,
                tags_updated,
            } => ServerDoc::Data {
                creating: texts(creating),
                updating: texts(updating),
                deleting: texts(deleting),
                no_change: texts(no_change),
                detection_running,
                tags_updated,
            },
            DryRun::Object {
                creating, updating, data_sources_added, data_sources_removed, ..
            } => ServerDoc::Object { creating, updating, data_sources_added, data_sources_removed },
            DryRun::Rejected { status, message } => {
                ServerDoc::Rejected { status, message: text(&message) }
            }
            DryRun::Unknown { reason } => ServerDoc::Unknown { reason: text(&reason) },
        }
    }
}

/// What `apply plan.json` needs from a saved plan: what it was computed from and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPlan {
    /// The format version of the file (always [`FORMAT_VERSION`] once read).
    pub format_version: u32,
    /// The tenant the plan was made for.
    pub tenant: String,
    /// The specs revision.
    pub revision: String,
    /// The `--base` revision, if one was used.
    pub base: Option<String>,
    /// What the plan was computed from; `apply` refuses the plan when it no longer matches.
    pub fingerprint: Fingerprint,
    /// Every object of the plan, no-ops included, in apply order.
    pub changes: Vec<SavedChange>,
}

/// One object of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedChange {
    /// Its kind.
    pub kind: Kind,
    /// Its natural key.
    pub key: String,
    /// What the plan does with it.
    pub action: Action,
    /// Whether the change is blocked (kept by `gitops: {prune: false}`).
    pub blocked: bool,
}

/// Why a saved plan cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// Not JSON at all.
    #[error("the saved plan is not valid JSON")]
    Syntax(#[source] serde_json::Error),
    /// JSON, but not a plan (no `format_version`).
    #[error("not an immuta-gitops plan: `format_version` is missing or not a number")]
    NotAPlan,
    /// Written by a version of immuta-gitops that uses another format.
    #[error(
        "the saved plan has format_version {found}, but this immuta-gitops reads format_version \
         {supported}; plan again with this version (`immuta-gitops plan --out`)"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
    /// The right version, but fields are missing or of the wrong type.
    #[error("the saved plan (format_version 1) is malformed")]
    Malformed(#[source] serde_json::Error),
    /// A kind or action this build does not know.
    #[error("the saved plan names an unknown {field} `{value}`")]
    UnknownValue {
        /// `kind` or `action`.
        field: &'static str,
        /// The value found.
        value: String,
    },
}

/// The part of the document [`read_saved`] reads; everything else is ignored.
#[derive(Debug, Deserialize)]
struct SavedDoc {
    tenant: String,
    revision: String,
    #[serde(default)]
    base: Option<String>,
    fingerprint: Fingerprint,
    changes: Vec<SavedChangeDoc>,
}

#[derive(Debug, Deserialize)]
struct SavedChangeDoc {
    kind: String,
    key: String,
    action: String,
    #[serde(default)]
    blocked: Option<String>,
}

/// Reads a plan saved by `plan --out` (the output of [`json`]).
///
/// The version is checked before anything else, so a file from a future format is reported as
/// such rather than as malformed.
pub fn read_saved(text: &str) -> Result<SavedPlan, SavedPlanError> {
    let value: Value = serde_json::from_str(text).map_err(SavedPlanError::Syntax)?;
    let version =
        value.get("format_version").and_then(Value::as_u64).ok_or(SavedPlanError::NotAPlan)?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(SavedPlanError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let doc: SavedDoc = serde_json::from_value(value).map_err(SavedPlanError::Malformed)?;
    let changes =
        doc.changes
            .into_iter()
            .map(|c| {
                let kind = parse_kind(&c.kind).ok_or_else(|| SavedPlanError::UnknownValue {
                    field: "kind",
                    value: c.kind.clone(),
                })?;
                let action = Action::parse(&c.action).ok_or_else(|| {
                    SavedPlanError::UnknownValue { field: "action", value: c.action.clone() }
                })?;
                Ok(SavedChange { kind, key: c.key, action, blocked: c.blocked.is_some() })
            })
            .collect::<Result<Vec<_>, SavedPlanError>>()?;
    Ok(SavedPlan {
        format_version: FORMAT_VERSION,
        tenant: doc.tenant,
        revision: doc.revision,
        base: doc.base,
        fingerprint: doc.fingerprint,
        changes,
    })
}
