//! Pure planning: desired state × last applied state × what the tenant says -> [`Plan`].
//!
//! A plan lists, per object, what `apply` will do (create, update, delete, replace, adopt or
//! nothing), the field-level difference in canonical form ([`normalize`]), and the implicit
//! effects of Immuta's full-replace semantics ([`effects`]). Secrets never appear: payloads are
//! compared with salted digests in place of secret values and shown as `(sensitive)`.
//!
//! **Invariant:** this module does no I/O. The tenant's answers arrive as [`Observed`] values
//! that the caller fetched; the clock arrives as a parameter.

pub mod diff;
pub mod effects;
pub mod normalize;
pub mod observed;
pub mod render;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

pub use self::diff::FieldChange;
pub use self::effects::Effect;
pub use self::observed::{DryRun, ObjectId, Observed};
use crate::diagnostic::Location;
use crate::spec::secrets::{self, InterpolateError, SecretSource};
use crate::spec::{Kind, Object, RepoSettings};
use crate::state::{self, State};

/// What `apply` does with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Post a new object.
    Create,
    /// Post the changed object.
    Update,
    /// Delete a managed object whose spec was removed.
    Delete,
    /// Delete and recreate (a data-source connection whose identity changed).
    Replace,
    /// Take an object that already exists on the tenant under management.
    Adopt,
    /// Nothing to do.
    NoOp,
}

impl Action {
    /// Terraform-like symbol used by every renderer.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
            Action::Adopt => "<=",
            Action::NoOp => " ",
        }
    }

    /// Verb for sentences.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
            Action::Adopt => "adopt",
            Action::NoOp => "no change",
        }
    }
}

/// One object's planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Which object.
    pub id: ObjectId,
    /// What happens.
    pub action: Action,
    /// Why, when it is not obvious (drift, adoption).
    pub reason: Option<String>,
    /// Changed fields (masked).
    pub fields: Vec<FieldChange>,
    /// The last applied payload, canonical, secrets as salted digests (shared with the state
    /// entry: renderers mask them for display).
    pub before: Option<Arc<Value>>,
    /// The desired payload, canonical, secrets as salted digests (shared with the target).
    pub after: Option<Arc<Value>>,
    /// What Immuta will also do.
    pub effects: Vec<Effect>,
    /// Immuta's id, when known.
    pub live_id: Option<i64>,
    /// Where the spec is.
    pub location: Option<Location>,
    /// The server's dry-run answer, when one was asked.
    pub server: Option<DryRun>,
    /// Set when the change will not be carried out, and why (`prune: false`).
    pub blocked: Option<String>,
    /// Whether `apply` calls the API for it (adopting an identical object, or forgetting a
    /// blocked or already-gone object, only updates the state).
    pub write: bool,
}

impl Change {
    /// Whether the change destroys something: a delete, a replace, or a destructive effect.
    pub fn is_destructive(&self) -> bool {
        self.blocked.is_none()
            && (matches!(self.action, Action::Delete | Action::Replace)
                || self.effects.iter().any(Effect::is_destructive))
    }
}

/// A consequence a reviewer must see that is not a change itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The object concerned, if one.
    pub object: Option<ObjectId>,
    /// Stable code (`k-anonymization`, `license-expiry`, `license-seats`, `schema-monitoring`...).
    pub code: &'static str,
    /// The warning.
    pub message: String,
}

/// An object the tenant refuses (its dry run failed): the plan cannot be applied as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The object.
    pub object: ObjectId,
    /// The server's answer.
    pub message: String,
}

/// An object on the tenant that no spec and no state entry covers: listed, never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmanaged {
    /// Its kind.
    pub kind: Kind,
    /// Its name or key.
    pub name: String,
    /// Its id.
    pub id: Option<i64>,
}

/// What a plan was computed from; `apply` of a saved plan refuses when any part changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// Digest of the desired payloads (secrets as salted digests) and options.
    pub specs: String,
    /// Digest of the state.
    pub state: String,
    /// Digest of what was read from the tenant (`None` offline).
    pub live: Option<String>,
}

/// A plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The tenant (URL, `sandbox`, or `offline`).
    pub tenant: String,
    /// Revision of the specs.
    pub revision: String,
    /// `plan --base REV`: the revision used as the last applied state.
    pub base: Option<String>,
    /// Whether every object's dry run was asked (`--refresh`).
    pub refreshed: bool,
    /// Every object, in apply order: creates and updates by kind, then deletes in reverse.
    pub changes: Vec<Change>,
    /// Consequences to review.
    pub warnings: Vec<Warning>,
    /// Objects the tenant refuses.
    pub errors: Vec<PlanError>,
    /// Objects on the tenant nobody manages.
    pub unmanaged: Vec<Unmanaged>,
    /// What it was computed from.
    pub fingerprint: Fingerprint,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Objects to create (including re-creations after drift).
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Objects to replace.
    pub replace: usize,
    /// Objects to adopt.
    pub adopt: usize,
    /// Unchanged objects.
    pub unchanged: usize,
    /// Implicit effects.
    pub effects: usize,
    /// Destructive changes.
    pub destructive: usize,
}

impl Plan {
    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            if c.blocked.is_some() {
                continue;
            }
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::Replace => s.replace += 1,
                Action::Adopt => s.adopt += 1,
                Action::NoOp => s.unchanged += 1,
            }
            s.effects += c.effects.len();
            s.destructive += usize::from(c.is_destructive());
        }
        s
    }

    /// Whether applying would change anything on the tenant or in the state.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// The `N to create, M to update, K to delete, E implicit effects` line.
    pub fn summary_line(&self) -> String {
        let s = self.summary();
        let mut line = format!(
            "{} to create, {} to update, {} to delete, {} implicit effect{}",
            s.create,
            s.update,
            s.delete,
            s.effects,
            if s.effects == 1 { "" } else { "s" }
        );
        if s.replace > 0 {
            line.push_str(&format!(", {} to replace", s.replace));
        }
        if s.adopt > 0 {
            line.push_str(&format!(", {} to adopt", s.adopt));
        }
        line
    }
}

/// A desired object with its comparable payload.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The spec object.
    pub object: &'a Object,
    /// Canonical payload with secrets as `(sensitive:<salted digest>)`; shared with the state
    /// entries and plan changes made from it.
    pub comparable: Arc<Value>,
    /// [`state::payload_digest`] of `comparable`, computed once.
    pub digest: String,
}

impl<'a> Target<'a> {
    /// The target of `object` with its comparable payload (see [`comparable`]).
    pub fn new(object: &'a Object, comparable: Value) -> Self {
        let digest = state::payload_digest(&comparable);
        Target { object, comparable: Arc::new(comparable), digest }
    }

    /// The state entry recording this object as applied.
    pub fn entry(
        &self,
        id: Option<i64>,
        names: Vec<String>,
        revision: &str,
        applied_at: &str,
    ) -> state::Entry {
        state::Entry {
            kind: self.object.kind,
            key: self.object.key.clone(),
            id,
            digest: self.digest.clone(),
            payload: Arc::clone(&self.comparable),
            prune: self.object.options.prune,
            revision: revision.to_owned(),
            applied_at: applied_at.to_owned(),
            names,
        }
    }
}

/// The canonical, comparable form of a desired payload. With a secret source, placeholders are
/// filled in first, so a changed secret value shows up as a changed digest; without one
/// (`plan --base` in CI), placeholders are compared as written.
pub fn comparable(
    object: &Object,
    source: Option<&dyn SecretSource>,
    salt: &str,
) -> Result<Value, InterpolateError> {
    let mut resolved = match source {
        Some(s) => secrets::interpolate(&object.payload, s)?,
        None => object.payload.clone(),
    };
    secrets::mask_with_digests(&mut resolved, object.tainted_pointers(), salt);
    Ok(normalize::canonical_owned(resolved))
}

/// The objects whose server dry run a plan needs: every object under `--refresh`, otherwise
/// those that differ from the last applied payload or are not managed yet.
pub fn needs_dry_run(targets: &[Target<'_>], state: &State, refresh: bool) -> Vec<ObjectId> {
    targets
        .iter()
        .filter(|t| {
            refresh || state.get(t.object.kind, &t.object.key).is_none_or(|e| e.digest != t.digest)
        })
        .filter(|t| t.object.kind != Kind::License)
        .map(|t| ObjectId::new(t.object.kind, &t.object.key))
        .collect()
}

/// Everything a plan is computed from.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// Desired objects.
    pub targets: &'a [Target<'a>],
    /// Last applied state (or, with `--base`, the state the base revision describes).
    pub state: &'a State,
    /// What the tenant says, `None` offline.
    pub observed: Option<&'a Observed>,
    /// Repository settings.
    pub settings: &'a RepoSettings,
    /// Tenant label.
    pub tenant: String,
    /// Specs revision.
    pub revision: String,
    /// `--base` revision.
    pub base: Option<String>,
    /// `--refresh`.
    pub refresh: bool,
    /// The clock (for license expiry).
    pub now: SystemTime,
}

/// Computes the plan.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let observed = input.observed;
    let index = observed.map(LiveIndex::new);
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let desired_ids: BTreeSet<ObjectId> =
        input.targets.iter().map(|t| ObjectId::new(t.object.kind, &t.object.key)).collect();

    for t in input.targets {
        let id = ObjectId::new(t.object.kind, &t.object.key);
        let prev = input.state.get(id.kind, &id.key);
        let dry = observed.and_then(|o| o.dry_runs.get(&id));
        if let Some(DryRun::Rejected { status, message }) = dry {
            errors.push(PlanError {
                object: id.clone(),
                message: format!("the tenant refuses it ({status}): {message}"),
            });
        }
        let after = Some(Arc::clone(&t.comparable));
        let mut change = Change {
            id: id.clone(),
            action: Action::NoOp,
            reason: None,
            fields: Vec::new(),
            before: None,
            after,
            effects: Vec::new(),
            live_id: prev.and_then(|p| p.id),
            location: Some(t.object.location.clone()),
            server: dry.cloned(),
            blocked: None,
            write: true,
        };
        let presence = index.as_ref().map(|i| i.presence(&id, prev));
        match prev {
            None => match presence {
                Some(Presence::Present(live_id)) => {
                    change.action = Action::Adopt;
                    change.live_id = live_id.or(change.live_id);
                    let differs = dry.is_none_or(DryRun::changes_something);
                    change.write = differs;
                    change.reason = Some(if differs {
                        "exists on the tenant but is not managed yet; it differs from the spec and will be posted"
                            .to_owned()
                    } else {
                        "exists on the tenant and matches the spec; it is recorded as managed without a write"
                            .to_owned()
                    });
                    if differs && let Some(o) = observed {
                        change.effects = adoption_effects(t, dry, o);
                    }
                }
                _ => change.action = Action::Create,
            },
            Some(prev) => {
                let before: &Value = &prev.payload;
                if prev.digest == t.digest {
                    // Unchanged (the usual case): one shared copy, nothing to compare.
                    change.before = change.after.clone();
                } else {
                    change.before = Some(Arc::clone(&prev.payload));
                    change.fields = diff::field_changes(before, &t.comparable);
                }
                let gone = matches!(presence, Some(Presence::Absent));
                if gone {
                    change.action = Action::Create;
                    change.reason =
                        Some("deleted outside immuta-gitops; it will be created again".to_owned());
                } else if !change.fields.is_empty() {
                    change.effects =
                        effects::effects(id.kind, before, &t.comparable, &prev.names, dry);
                    let replace = change
                        .effects
                        .iter()
                        .any(|e| matches!(e, Effect::DataSourcesRecreated { .. }));
                    change.action = if replace { Action::Replace } else { Action::Update };
                } else if dry.is_some_and(DryRun::changes_something)
                    && !matches!(dry, Some(DryRun::Rejected { .. }))
                {
                    change.action = Action::Update;
                    change.reason = Some(
                        "changed outside immuta-gitops (the tenant reports a difference); the spec is posted again"
                            .to_owned(),
                    );
                    change.effects =
                        effects::effects(id.kind, before, &t.comparable, &prev.names, dry);
                } else if prev.prune != t.object.options.prune {
                    // The payload is unchanged but the protection is not: only the state,
                    // which is what a later delete reads, needs to learn it.
                    change.action = Action::Update;
                    change.write = false;
                    change.reason = Some(if t.object.options.prune {
                        "`gitops: {prune: false}` removed: the object may be deleted again once its spec is; only the state is updated".to_owned()
                    } else {
                        "`gitops: {prune: false}` added: the object will be kept on the tenant when its spec is deleted; only the state is updated".to_owned()
                    });
                }
            }
        }
        if change.action != Action::NoOp {
            warnings.extend(object_warnings(t));
        }
        changes.push(change);
    }

    // Deletes: managed objects whose spec is gone.
    for entry in input.state.objects.iter().rev() {
        let id = ObjectId::new(entry.kind, &entry.key);
        if desired_ids.contains(&id) {
            continue;
        }
        let presence = index.as_ref().map(|i| i.presence(&id, Some(entry)));
        let mut change = Change {
            id,
            action: Action::Delete,
            reason: None,
            fields: Vec::new(),
            before: Some(Arc::clone(&entry.payload)),
            after: None,
            effects: Vec::new(),
            live_id: entry.id,
            location: None,
            server: None,
            blocked: None,
            write: true,
        };
        if let Some(Presence::Present(Some(live_id))) = presence {
            change.live_id = Some(live_id);
        }
        if !entry.prune {
            change.blocked = Some(
                "`gitops: {prune: false}`: left on the tenant and no longer managed".to_owned(),
            );
            change.write = false;
        } else if matches!(presence, Some(Presence::Absent)) {
            change.reason =
                Some("already deleted on the tenant; only removed from the state".to_owned());
            change.write = false;
        } else if entry.kind == Kind::DataSource {
            change.reason = Some("every data source of the connection is deleted".to_owned());
        }
        changes.push(change);
    }
    order(&mut changes);
    unverifiable(&mut changes, &mut errors, &mut warnings, input);

    if let Some(o) = observed {
        warnings.extend(license_warnings(o, input.now));
    }
    let unmanaged = observed.map(|o| unmanaged(o, input.state, input.targets)).unwrap_or_default();
    Plan {
        tenant: input.tenant.clone(),
        revision: input.revision.clone(),
        base: input.base.clone(),
        refreshed: input.refresh,
        changes,
        warnings,
        errors,
        unmanaged,
        fingerprint: Fingerprint {
            specs: specs_fingerprint(input.targets),
            state: input.state.fingerprint(),
            live: observed.map(Observed::fingerprint),
        },
    }
}

/// A dry run the tenant rejects because the object names something this very plan creates
/// (a project naming a purpose created before it) says nothing yet: the tenant checks the
/// object when it is applied, after its dependencies. Such rejections become warnings.
fn unverifiable(
    changes: &mut [Change],
    errors: &mut Vec<PlanError>,
    warnings: &mut Vec<Warning>,
    input: &PlanInput<'_>,
) {
    let pending: BTreeSet<ObjectId> = changes
        .iter()
        .filter(|c| {
            matches!(c.action, Action::Create | Action::Update | Action::Replace)
                || (c.action == Action::Adopt && c.write)
        })
        .map(|c| c.id.clone())
        .collect();
    if pending.is_empty() || errors.is_empty() {
        return;
    }
    let deps = dependencies(input.targets, input.state, |id| {
        input.observed.and_then(|o| o.dry_runs.get(id))
    });
    errors.retain(|e| {
        let waiting: Vec<String> = deps
            .get(&e.object)
            .into_iter()
            .flatten()
            .filter(|d| pending.contains(d))
            .map(ToString::to_string)
            .collect();
        if waiting.is_empty() {
            return true;
        }
        if let Some(c) = changes.iter_mut().find(|c| c.id == e.object) {
            c.server = None;
        }
        warnings.push(Warning {
            object: Some(e.object.clone()),
            code: "unverified",
            message: format!(
                "{} names objects this plan creates or changes first ({}); the tenant checks it when it is \
                 applied after them (its dry run now says: {})",
                e.object,
                waiting.join(", "),
                e.message
            ),
        });
        false
    });
}

/// Apply order: creates, updates and no-ops by kind (licenses, purposes, data sources, policies,
/// projects), then deletes in reverse kind order.
fn order(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        let rank = |c: &Change| {
            if c.action == Action::Delete {
                (1, std::cmp::Reverse(c.id.kind), c.id.key.clone())
            } else {
                (0, std::cmp::Reverse(Kind::Project), c.id.key.clone())
            }
        };
        let (ra, rb) = (rank(a), rank(b));
        ra.0.cmp(&rb.0)
            .then_with(|| if ra.0 == 0 { a.id.kind.cmp(&b.id.kind) } else { ra.1.cmp(&rb.1) })
            .then_with(|| ra.2.cmp(&rb.2))
    });
}

/// Whether an object exists on the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// It exists (with its id, when the listing has one).
    Present(Option<i64>),
    /// It does not.
    Absent,
    /// The tenant gives no way to tell.
    Unknown,
}

/// What the tenant has, indexed once per plan (the listings can hold tens of thousands of
/// objects; a linear search per object would make planning quadratic).
struct LiveIndex<'a> {
    observed: &'a Observed,
    policies: HashMap<&'a str, i64>,
    projects: HashMap<&'a str, i64>,
    purposes: HashMap<&'a str, i64>,
    data_sources: HashSet<&'a str>,
    licenses: Option<HashSet<i64>>,
}

impl<'a> LiveIndex<'a> {
    fn new(o: &'a Observed) -> Self {
        let inv = &o.inventory;
        LiveIndex {
            observed: o,
            policies: inv
                .policies
                .iter()
                .filter_map(|p| Some((p.policy_key.as_deref()?, p.id)))
                .collect(),
            projects: inv
                .projects
                .iter()
                .filter(|p| !p.is_schema)
                .filter_map(|p| Some((p.project_key.as_deref()?, p.id)))
                .collect(),
            purposes: inv.purposes.iter().map(|p| (p.name.as_str(), p.id)).collect(),
            data_sources: inv
                .data_sources
                .iter()
                .filter(|d| !d.deleted)
                .map(|d| d.name.as_str())
                .collect(),
            licenses: inv.licenses.as_ref().map(|l| l.iter().map(|l| l.id).collect()),
        }
    }

    fn presence(&self, id: &ObjectId, entry: Option<&state::Entry>) -> Presence {
        let found = |v: Option<&i64>| v.map_or(Presence::Absent, |i| Presence::Present(Some(*i)));
        match id.kind {
            Kind::Policy => found(self.policies.get(id.key.as_str())),
            Kind::Project => found(self.projects.get(id.key.as_str())),
            Kind::Purpose => found(self.purposes.get(id.key.as_str())),
            Kind::DataSource => match self.observed.inventory.data_keys.get(&id.key) {
                Some(true) => Presence::Present(None),
                Some(false) => Presence::Absent,
                None => match entry {
                    Some(e) if !e.names.is_empty() => {
                        if e.names.iter().any(|n| self.data_sources.contains(n.as_str())) {
                            Presence::Present(None)
                        } else {
                            Presence::Absent
                        }
                    }
                    _ => Presence::Unknown,
                },
            },
            Kind::License => match (&self.licenses, entry.and_then(|e| e.id)) {
                (Some(ids), Some(lid)) => found(ids.get(&lid)),
                _ => Presence::Unknown,
            },
        }
    }
}

/// What posting the spec over an object that exists but is not managed yet destroys. There is no
/// last applied payload to compare with, so only what the tenant tells is known: the data
/// sources its dry run would delete or disable, and the subpurposes it lists that the spec
/// leaves out.
fn adoption_effects(t: &Target<'_>, dry: Option<&DryRun>, o: &Observed) -> Vec<Effect> {
    match (t.object.kind, dry) {
        (Kind::DataSource, Some(DryRun::Data { deleting, .. })) if !deleting.is_empty() => {
            let hard_delete = t
                .comparable
                .get("options")
                .and_then(|o| o.get("hardDelete"))
                .and_then(Value::as_bool)
                == Some(true);
            vec![Effect::TablesRemoved { tables: deleting.clone(), hard_delete }]
        }
        (Kind::Purpose, _) => {
            let kept: BTreeSet<String> = t.object.purpose_names().into_iter().collect();
            let prefix = format!("{}.", t.object.key);
            let names: Vec<String> = o
                .inventory
                .purposes
                .iter()
                .filter(|p| p.name.starts_with(&prefix) && !kept.contains(&p.name))
                .map(|p| p.name.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if names.is_empty() { Vec::new() } else { vec![Effect::SubpurposesRemoved { names }] }
        }
        _ => Vec::new(),
    }
}

fn object_warnings(t: &Target<'_>) -> Vec<Warning> {
    let id = ObjectId::new(t.object.kind, &t.object.key);
    let mut out = Vec::new();
    match t.object.kind {
        Kind::Policy if uses_k_anonymization(&t.object.payload) => out.push(Warning {
            object: Some(id),
            code: "k-anonymization",
            message: format!(
                "policy `{}` uses K-Anonymization masking: the tenant must have k-anonymization activated, \
                 and Immuta samples the targeted columns and stores the results in its metadata database \
                 (check this is allowed by your data-localization rules)",
                t.object.key
            ),
        }),
        Kind::DataSource if effects::schema_monitoring(&t.object.payload) => out.push(Warning {
            object: Some(id),
            code: "schema-monitoring",
            message: format!(
                "connection `{}` registers every table (`sources` omitted or `all: true`): schema monitoring \
                 is on, so Immuta adds and disables data sources as tables appear and disappear, outside Git",
                t.object.key
            ),
        }),
        _ => {}
    }
    out
}

fn uses_k_anonymization(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.get("maskingConfig").and_then(|c| c.get("type")).and_then(Value::as_str)
                == Some("K-Anonymization")
                || m.values().any(uses_k_anonymization)
        }
        Value::Array(items) => items.iter().any(uses_k_anonymization),
        _ => false,
    }
}

/// Days from `now` to an expiry date (`2030-12-31` or RFC 3339); negative when past.
pub fn days_until(expires: &str, now: SystemTime) -> Option<i64> {
    let text =
        if expires.len() == 10 { format!("{expires}T00:00:00Z") } else { expires.to_owned() };
    let at = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    let secs = match at.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_secs()).ok()?,
    };
    Some(secs / 86_400)
}

/// Expiring licenses and nearly full seats, whenever the tenant let us read them: an expired
/// license stops the tenant, whoever manages the key.
fn license_warnings(o: &Observed, now: SystemTime) -> Vec<Warning> {
    let mut out = Vec::new();
    for l in o.inventory.licenses.iter().flatten() {
        if let Some(days) = l.expires.as_deref().and_then(|e| days_until(e, now))
            && days < 30
        {
            let message = if days < 0 {
                format!("license {} expired {} days ago", l.id, -days)
            } else {
                format!("license {} expires in {days} days", l.id)
            };
            out.push(Warning { object: None, code: "license-expiry", message });
        }
    }
    if let Some(s) = &o.inventory.license_status
        && s.seats > 0
        && s.active_users * 100 > s.seats * 90
    {
        out.push(Warning {
            object: None,
            code: "license-seats",
            message: format!(
                "{} of {} licensed seats are used ({}%)",
                s.active_users,
                s.seats,
                s.active_users * 100 / s.seats
            ),
        });
    }
    out
}

fn unmanaged(o: &Observed, state: &State, targets: &[Target<'_>]) -> Vec<Unmanaged> {
    let known: BTreeSet<(Kind, &str)> = state
        .objects
        .iter()
        .map(|e| (e.kind, e.key.as_str()))
        .chain(targets.iter().map(|t| (t.object.kind, t.object.key.as_str())))
        .collect();
    let mut purposes: BTreeSet<String> = BTreeSet::new();
    for t in targets {
        purposes.extend(t.object.purpose_names());
    }
    for e in state.objects.iter().filter(|e| e.kind == Kind::Purpose) {
        purposes.insert(e.key.clone());
        let mut stack: Vec<&Value> = vec![&e.payload];
        while let Some(v) = stack.pop() {
            for s in v.get("subpurposes").and_then(Value::as_array).into_iter().flatten() {
                if let Some(n) = s.get("name").and_then(Value::as_str) {
                    purposes.insert(n.to_owned());
                }
                stack.push(s);
            }
        }
    }
    let managed_names: BTreeSet<&str> = state
        .objects
        .iter()
        .flat_map(|e| e.names.iter().map(String::as_str))
        .chain(o.dry_runs.values().flat_map(|d| {
            match d {
                DryRun::Data { creating, updating, deleting, no_change, .. } => creating
                    .iter()
                    .chain(updating)
                    .chain(deleting)
                    .chain(no_change)
                    .map(String::as_str)
                    .collect(),
                _ => Vec::new(),
            }
        }))
        .collect();
    let managed_licenses: BTreeSet<i64> =
        state.objects.iter().filter(|e| e.kind == Kind::License).filter_map(|e| e.id).collect();
    let mut out = Vec::new();
    for p in &o.inventory.policies {
        if !p.system_generated
            && !p.policy_key.as_deref().is_some_and(|k| known.contains(&(Kind::Policy, k)))
        {
            out.push(Unmanaged {
                kind: Kind::Policy,
                name: p.policy_key.clone().unwrap_or_else(|| p.name.clone()),
                id: Some(p.id),
            });
        }
    }
    for p in &o.inventory.projects {
        if !p.is_schema
            && !p.project_key.as_deref().is_some_and(|k| known.contains(&(Kind::Project, k)))
        {
            out.push(Unmanaged {
                kind: Kind::Project,
                name: p.project_key.clone().unwrap_or_else(|| p.name.clone()),
                id: Some(p.id),
            });
        }
    }
    for p in &o.inventory.purposes {
        if !p.system_generated && !purposes.contains(&p.name) {
            out.push(Unmanaged { kind: Kind::Purpose, name: p.name.clone(), id: Some(p.id) });
        }
    }
    for d in &o.inventory.data_sources {
        if !d.deleted && !managed_names.contains(d.name.as_str()) {
            out.push(Unmanaged { kind: Kind::DataSource, name: d.name.clone(), id: Some(d.id) });
        }
    }
    for l in o.inventory.licenses.iter().flatten() {
        if !managed_licenses.contains(&l.id) {
            out.push(Unmanaged {
                kind: Kind::License,
                name: format!("license {}", l.id),
                id: Some(l.id),
            });
        }
    }
    out
}

/// A digest of the desired state as the planner sees it.
pub fn specs_fingerprint(targets: &[Target<'_>]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut sorted: Vec<&Target<'_>> = targets.iter().collect();
    sorted.sort_by(|a, b| (a.object.kind, &a.object.key).cmp(&(b.object.kind, &b.object.key)));
    for t in sorted {
        h.update(t.object.kind.as_str().as_bytes());
        h.update([0]);
        h.update(t.object.key.as_bytes());
        h.update([0]);
        h.update(t.digest.as_bytes());
        h.update([0]);
        h.update(format!("{:?}", t.object.options).as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// For each desired object, the objects it depends on: a project on the purposes it names and on the
/// connections that produce the data sources it names; a policy on the purposes its exceptions
/// name. Deletes run in reverse and need no edges: the tenant refuses to delete what is in use.
pub fn dependencies<'d>(
    targets: &[Target<'_>],
    state: &State,
    dry_run: impl Fn(&ObjectId) -> Option<&'d DryRun>,
) -> BTreeMap<ObjectId, Vec<ObjectId>> {
    let mut purpose_owner: BTreeMap<String, ObjectId> = BTreeMap::new();
    for t in targets.iter().filter(|t| t.object.kind == Kind::Purpose) {
        for name in t.object.purpose_names() {
            purpose_owner.insert(name, ObjectId::new(Kind::Purpose, &t.object.key));
        }
    }
    let mut data_owner: BTreeMap<String, ObjectId> = BTreeMap::new();
    for e in state.objects.iter().filter(|e| e.kind == Kind::DataSource) {
        for n in &e.names {
            data_owner.insert(n.clone(), ObjectId::new(Kind::DataSource, &e.key));
        }
    }
    for t in targets.iter().filter(|t| t.object.kind == Kind::DataSource) {
        let id = ObjectId::new(Kind::DataSource, &t.object.key);
        if let Some(DryRun::Data { creating, updating, no_change, .. }) = dry_run(&id) {
            for n in creating.iter().chain(updating).chain(no_change) {
                data_owner.insert(n.clone(), id.clone());
            }
        }
    }
    let mut deps = BTreeMap::new();
    for t in targets {
        let id = ObjectId::new(t.object.kind, &t.object.key);
        let mut d: BTreeSet<ObjectId> = BTreeSet::new();
        for r in &t.object.references {
            let owner = match r.kind {
                Kind::Purpose => purpose_owner.get(&r.name),
                Kind::DataSource => data_owner.get(&r.name),
                _ => None,
            };
            d.extend(owner.cloned());
        }
        if t.object.kind == Kind::Policy {
            let mut names = Vec::new();
            exception_purposes(&t.object.payload, &mut names);
            d.extend(names.iter().filter_map(|n| purpose_owner.get(n).cloned()));
        }
        d.remove(&id);
        if !d.is_empty() {
            deps.insert(id, d.into_iter().collect());
        }
    }
    deps
}

fn exception_purposes(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(p) =
                m.get("exceptions").and_then(|e| e.get("purposes")).and_then(Value::as_array)
            {
                out.extend(p.iter().filter_map(|x| x.as_str().map(str::to_owned)));
            }
            m.values().for_each(|x| exception_purposes(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| exception_purposes(x, out)),
        _ => {}
    }
}

/// Why `apply` refuses a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong.
    pub message: String,
    /// How to proceed.
    pub hint: String,
}

/// Safety options of `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safety {
    /// `--allow-destroy` or `allowDestroy: true`.
    pub allow_destroy: bool,
    /// `--force`.
    pub force: bool,
    /// Largest share (percent) of managed objects a plan may delete without `--force`.
    pub max_delete_percent: u8,
}

/// The reasons `apply` must not carry out `plan` (empty: go ahead).
///
/// Deleting a single object is never treated as a mass deletion; deleting every managed object
/// always is, whatever the threshold.
pub fn refusals(plan: &Plan, state: &State, safety: &Safety) -> Vec<Refusal> {
    let mut out = Vec::new();
    if !plan.errors.is_empty() {
        out.push(Refusal {
            message: format!(
                "the tenant refuses {} object(s) (see the plan's errors)",
                plan.errors.len()
            ),
            hint: "fix the specs so that the tenant accepts them, then plan again".into(),
        });
    }
    let destructive: Vec<String> =
        plan.changes.iter().filter(|c| c.is_destructive()).map(|c| c.id.to_string()).collect();
    if !destructive.is_empty() && !safety.allow_destroy {
        out.push(Refusal {
            message: format!("the plan destroys data or objects: {}", destructive.join(", ")),
            hint: "review the plan, then re-run with --allow-destroy (or set `allowDestroy: true` in immuta-gitops.yaml)"
                .into(),
        });
    }
    let managed = state.objects.len();
    let deletes =
        plan.changes.iter().filter(|c| c.action == Action::Delete && c.blocked.is_none()).count();
    if !safety.force && managed > 0 {
        if deletes == managed {
            out.push(Refusal {
                message: format!("the plan deletes every managed object ({deletes} of {managed})"),
                hint: "an empty or mis-pathed spec tree looks like this; if it is really meant, re-run with --force".into(),
            });
        } else if deletes > 1 && deletes * 100 > usize::from(safety.max_delete_percent) * managed {
            out.push(Refusal {
                message: format!(
                    "the plan deletes {deletes} of {managed} managed objects, more than {}%",
                    safety.max_delete_percent
                ),
                hint: "check the plan; re-run with --force to proceed, or raise `maxDeletePercent` in immuta-gitops.yaml"
                    .into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
