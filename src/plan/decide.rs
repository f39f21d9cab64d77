//! Deciding, per object, what `apply` will do: [`plan`] walks the desired objects
//! ([`plan_target`]: create, update, replace, adopt, re-create after drift, or nothing) and the
//! managed objects whose spec is gone ([`plan_delete`]), using an index of what the tenant has
//! ([`LiveIndex`]) and the effects an adoption would have. A dry-run rejection that only waits
//! for objects this plan creates first becomes a warning ([`unverifiable`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use serde_json::Value;

use super::order::{dependencies, order};
use super::warnings::{license_warnings, object_warnings, unmanaged};
use super::{
    Action, Change, DryRun, Effect, Fingerprint, ObjectId, Observed, Plan, PlanError, Target,
    Warning, diff, effects, impact, specs_fingerprint,
};
use crate::spec::text::shown;
use crate::spec::{Kind, RepoSettings};
use crate::state::{self, State};

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

/// Computes the plan: one [`Change`] per desired object (`plan_target`), one per managed
/// object whose spec is gone (`plan_delete`), in apply order, with the warnings, the objects
/// the tenant refuses, the unmanaged objects and the fingerprint.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let observed = input.observed;
    let tenant = observed.map(tenant_facts);
    // The decisions take a fraction of the impact's time (about 16 ms against 90 on the
    // benchmark's 10,000 objects): computing the impact on a second thread, with its cold
    // allocator arena, cost more than it overlapped.
    let mut plan = decisions(input);
    let mut impact = impact::impact(&impact_input(input, tenant.as_ref()));
    let adopted: Vec<(Kind, &str)> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Adopt)
        .map(|c| (c.id.kind, c.id.key.as_str()))
        .collect();
    impact::adopted(&mut impact, &adopted);
    plan.impact = impact;
    plan
}

/// The plan without its access impact (`impact` left empty): per object, what `apply` will
/// do. For callers that need only the decisions, and for measuring what the impact adds
/// (`benches/reconcile`).
pub fn decisions(input: &PlanInput<'_>) -> Plan {
    let observed = input.observed;
    let index = observed.map(LiveIndex::new);
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let desired_ids: BTreeSet<ObjectId> =
        input.targets.iter().map(|t| ObjectId::new(t.object.kind, &t.object.key)).collect();

    for t in input.targets {
        let change = plan_target(t, input, index.as_ref());
        if let Some(DryRun::Rejected { status, message }) = &change.server {
            errors.push(PlanError {
                object: change.id.clone(),
                message: format!("the tenant refuses it ({status}): {message}"),
            });
        }
        if let Some(DryRun::Unknown { reason }) = &change.server {
            warnings.push(Warning {
                object: Some(change.id.clone()),
                code: "dry-run-unknown",
                message: format!(
                    "the tenant's dry run of {} cannot be read ({reason}): whether the post changes \
                     anything is unknown",
                    change.id
                ),
            });
        }
        if change.action != Action::NoOp {
            warnings.extend(object_warnings(t));
        }
        changes.push(change);
    }

    // Deletes: managed objects whose spec is gone.
    for entry in input.state.objects.iter().rev() {
        if !desired_ids.contains(&ObjectId::new(entry.kind, &entry.key)) {
            changes.push(plan_delete(entry, index.as_ref()));
        }
    }
    order(&mut changes);
    unverifiable(&mut changes, &mut errors, &mut warnings, input);

    warnings.extend(settings_raised(input.settings, input.state));
    if let Some(o) = observed {
        warnings.extend(license_warnings(&o.inventory, input.now));
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
        impact: impact::Impact::default(),
        fingerprint: Fingerprint {
            specs: specs_fingerprint(input.targets),
            state: input.state.fingerprint(),
            live: observed.map(Observed::fingerprint),
        },
    }
}

/// The change of one desired object: a create, an adoption when it is new to the state
/// ([`new_object`]), otherwise what the last applied payload and the tenant say ([`managed`]).
fn plan_target(t: &Target<'_>, input: &PlanInput<'_>, index: Option<&LiveIndex<'_>>) -> Change {
    let id = ObjectId::new(t.object.kind, &t.object.key);
    let prev = input.state.get(id.kind, &id.key);
    let dry = input.observed.and_then(|o| o.dry_runs.get(&id));
    let presence = index.map(|i| i.presence(&id, prev));
    let mut change = Change {
        id,
        action: Action::NoOp,
        reason: None,
        fields: Vec::new(),
        before: None,
        after: Some(t.comparable.clone()),
        effects: Vec::new(),
        live_id: prev.and_then(|p| p.id),
        location: Some(t.object.location.clone()),
        server: dry.cloned(),
        blocked: None,
        write: true,
    };
    match prev {
        None => new_object(&mut change, t, presence, dry, input.observed),
        Some(prev) => managed(&mut change, t, prev, presence, dry, input.observed),
    }
    change
}

/// An object the state does not have: adopted when the tenant has it, otherwise created.
fn new_object(
    change: &mut Change,
    t: &Target<'_>,
    presence: Option<Presence>,
    dry: Option<&DryRun>,
    observed: Option<&Observed>,
) {
    match presence {
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
    }
}

/// A managed object: unchanged, updated or replaced when its payload changed, created again
/// when deleted outside, posted again when changed outside, or a state-only update when only
/// its prune protection changed.
fn managed(
    change: &mut Change,
    t: &Target<'_>,
    prev: &state::Entry,
    presence: Option<Presence>,
    dry: Option<&DryRun>,
    observed: Option<&Observed>,
) {
    let kind = change.id.kind;
    // Read (parsed, for a payload read from a state) only when the payload changed.
    let before = || prev.payload.value();
    if prev.digest == t.digest {
        // Unchanged (the usual case): one shared copy, nothing to compare.
        change.before = change.after.clone();
    } else {
        change.before = Some(prev.payload.clone());
        change.fields = diff::field_changes(before(), &t.comparable);
    }
    let gone = matches!(presence, Some(Presence::Absent | Presence::Unlisted));
    if gone {
        change.action = Action::Create;
        change.reason = Some("deleted outside immuta-gitops; it will be created again".to_owned());
    } else if !change.fields.is_empty() {
        change.effects =
            effects::effects(kind, before(), &t.comparable, &prev.names, dry, &t.object.options);
        let replace =
            change.effects.iter().any(|e| matches!(e, Effect::DataSourcesRecreated { .. }));
        change.action = if replace { Action::Replace } else { Action::Update };
    } else if dry.is_some_and(DryRun::changes_something)
        && !matches!(dry, Some(DryRun::Rejected { .. } | DryRun::Unknown { .. }))
    {
        change.action = Action::Update;
        change.reason = dry.map(|d| drifted(&change.id, before(), d, observed));
        change.effects =
            effects::effects(kind, before(), &t.comparable, &prev.names, dry, &t.object.options);
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

/// Why an object whose spec did not change is posted again: what the tenant's dry run reported
/// and, where a listing exposes the field, which one differs. Immuta's V1 listings show a
/// policy's and a project's `name` in the V2 vocabulary; their other fields are in V1 shapes,
/// which are never compared with V2 specs field by field (`reference/immuta-api.md` §2.3).
fn drifted(id: &ObjectId, applied: &Value, dry: &DryRun, observed: Option<&Observed>) -> String {
    let names = |items: &[String]| {
        let shown: Vec<String> = items.iter().take(5).map(|n| format!("`{}`", shown(n))).collect();
        let more = items.len().saturating_sub(5);
        if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
    };
    let reported = match dry {
        DryRun::Data { creating, updating, deleting, tags_updated, .. } => {
            let mut parts = Vec::new();
            for (verb, items) in [("create", creating), ("update", updating), ("delete", deleting)]
            {
                if !items.is_empty() {
                    parts.push(format!("{verb} data sources {}", names(items)));
                }
            }
            if *tags_updated {
                parts.push("change tags".to_owned());
            }
            format!("the tenant's dry run says posting the spec would {}", parts.join(", "))
        }
        DryRun::Object { creating: true, .. } => {
            "the tenant's dry run says posting the spec would create it".to_owned()
        }
        DryRun::Object { .. } | DryRun::Rejected { .. } => {
            "the tenant's dry run says posting the spec would update it".to_owned()
        }
        DryRun::Unknown { reason } => format!(
            "the tenant's dry run could not be read ({reason}): what posting the spec would do \
             is unknown"
        ),
    };
    let listed = observed.and_then(|o| match id.kind {
        Kind::Policy => o.policy(&id.key).map(|p| p.name.as_str()),
        Kind::Project => o.project(&id.key).map(|p| p.name.as_str()),
        _ => None,
    });
    let field = match (listed, applied.get("name").and_then(Value::as_str)) {
        (Some(live), Some(spec)) if live != spec => format!(
            "; `name` differs: the tenant lists `{}`, the spec says `{}`",
            shown(live),
            shown(spec)
        ),
        (Some(_), Some(_)) => "; its listing shows the same `name`, and the listings show no \
             other field of it: compare it on the tenant to see what was edited"
            .to_owned(),
        _ => "; the tenant's listings do not show which field differs: compare it on the tenant"
            .to_owned(),
    };
    format!("changed outside immuta-gitops: {reported}{field}; the spec is posted again")
}

/// The delete of a managed object whose spec is gone: blocked by `prune: false`, state-only
/// when the tenant no longer has it.
fn plan_delete(entry: &state::Entry, index: Option<&LiveIndex<'_>>) -> Change {
    let id = ObjectId::new(entry.kind, &entry.key);
    let presence = index.map(|i| i.presence(&id, Some(entry)));
    let mut change = Change {
        id,
        action: Action::Delete,
        reason: None,
        fields: Vec::new(),
        before: Some(entry.payload.clone()),
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
        change.blocked =
            Some("`gitops: {prune: false}`: left on the tenant and no longer managed".to_owned());
        change.write = false;
    } else if matches!(presence, Some(Presence::Absent)) {
        change.reason = Some(
            "already deleted on the tenant (confirmed by reading it); only removed from the state"
                .to_owned(),
        );
        change.write = false;
    } else if matches!(presence, Some(Presence::Unlisted)) {
        // A listing that leaves an object out proves nothing (a proxy may cut it short): the
        // delete is sent, and only the tenant's own 404 lets the state forget the object.
        change.reason = Some(
            "missing on the tenant: not verified (its listing does not show it); the delete is \
             sent, and the object leaves the state only once the tenant confirms it is gone"
                .to_owned(),
        );
    } else if entry.kind == Kind::DataSource {
        change.reason = Some("every data source of the connection is deleted".to_owned());
    }
    change
}

/// A dry run the tenant rejects because the object names something this very plan creates
/// (a project naming a purpose created before it) says nothing yet: the tenant checks the
/// object when it is applied, after its dependencies. Nor does one of a project naming data
/// sources that Immuta is still creating for a managed connection (recorded in the state, not
/// listed yet, the key present): apply waits for them before posting it. Such rejections
/// become warnings.
fn unverifiable(
    changes: &mut [Change],
    errors: &mut Vec<PlanError>,
    warnings: &mut Vec<Warning>,
    input: &PlanInput<'_>,
) {
    if errors.is_empty() {
        return;
    }
    let pending: BTreeSet<ObjectId> = changes
        .iter()
        .filter(|c| {
            matches!(c.action, Action::Create | Action::Update | Action::Replace)
                || (c.action == Action::Adopt && c.write)
        })
        .map(|c| c.id.clone())
        .collect();
    let deps = if pending.is_empty() {
        std::collections::BTreeMap::new()
    } else {
        dependencies(input.targets, input.state, |id| {
            input.observed.and_then(|o| o.dry_runs.get(id))
        })
    };
    let creating = still_creating(input);
    let named_data_sources = |id: &ObjectId| -> Vec<String> {
        if id.kind != Kind::Project || creating.is_empty() {
            return Vec::new();
        }
        let Some(t) =
            input.targets.iter().find(|t| t.object.kind == id.kind && t.object.key == id.key)
        else {
            return Vec::new();
        };
        let names: BTreeSet<&str> = t
            .object
            .payload
            .get("datasources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|n| creating.contains(n))
            .collect();
        names.into_iter().map(|n| format!("`{n}`")).collect()
    };
    errors.retain(|e| {
        let waiting: Vec<String> = deps
            .get(&e.object)
            .into_iter()
            .flatten()
            .filter(|d| pending.contains(d))
            .map(ToString::to_string)
            .collect();
        let unborn = named_data_sources(&e.object);
        if waiting.is_empty() && unborn.is_empty() {
            return true;
        }
        if let Some(c) = changes.iter_mut().find(|c| c.id == e.object) {
            c.server = None;
        }
        let message = if waiting.is_empty() {
            format!(
                "{} names data sources that Immuta is still creating ({}); apply waits for them \
                 before posting it (its dry run now says: {})",
                e.object,
                unborn.join(", "),
                e.message
            )
        } else {
            format!(
                "{} names objects this plan creates or changes first ({}); the tenant checks it when it is \
                 applied after them (its dry run now says: {})",
                e.object,
                waiting.join(", "),
                e.message
            )
        };
        warnings.push(Warning { object: Some(e.object.clone()), code: "unverified", message });
        false
    });
}

/// Data-source names recorded for managed connections whose key exists on the tenant but that
/// the listing does not show enabled: Immuta is still creating them.
fn still_creating<'a>(input: &PlanInput<'a>) -> BTreeSet<&'a str> {
    let Some(o) = input.observed else { return BTreeSet::new() };
    let listed: HashSet<&str> =
        o.inventory.data_sources.iter().filter(|d| !d.deleted).map(|d| d.name.as_str()).collect();
    input
        .state
        .objects
        .iter()
        .filter(|e| e.kind == Kind::DataSource && o.inventory.data_keys.get(&e.key) == Some(&true))
        .flat_map(|e| e.names.iter().map(String::as_str))
        .filter(|n| !listed.contains(n))
        .collect()
}

/// Whether an object exists on the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// It exists (with its id, when the listing has one).
    Present(Option<i64>),
    /// It does not: its own check says so (a read by id answering 404, a connection-key
    /// probe), or, for a desired object, its listing does not show it.
    Absent,
    /// Its listing does not show it, and nothing else was asked: not verified.
    Unlisted,
    /// The tenant gives no way to tell.
    Unknown,
}

/// What the tenant has, indexed once per plan (the listings can hold tens of thousands of
/// objects; a linear search per object would make planning quadratic).
struct LiveIndex<'a> {
    observed: &'a Observed,
    policies: HashMap<&'a str, i64>,
    projects: HashMap<&'a str, i64>,
    purposes: HashMap<&'a str, Option<i64>>,
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
            licenses: inv.licenses.as_ref().map(|l| l.iter().filter_map(|l| l.id).collect()),
        }
    }

    fn presence(&self, id: &ObjectId, entry: Option<&state::Entry>) -> Presence {
        // Not listed: what a read by id found, if one was made; otherwise unverified.
        let unlisted = || match self.observed.inventory.found_by_id(id) {
            Some(true) => Presence::Present(entry.and_then(|e| e.id)),
            Some(false) => Presence::Absent,
            None => Presence::Unlisted,
        };
        let found = |v: Option<&i64>| v.map_or_else(unlisted, |i| Presence::Present(Some(*i)));
        match id.kind {
            Kind::Policy => found(self.policies.get(id.key.as_str())),
            Kind::Project => found(self.projects.get(id.key.as_str())),
            Kind::Purpose => {
                self.purposes.get(id.key.as_str()).map_or_else(unlisted, |i| Presence::Present(*i))
            }
            Kind::DataSource => match self.observed.inventory.data_keys.get(&id.key) {
                Some(true) => Presence::Present(None),
                Some(false) => Presence::Absent,
                None => match entry {
                    Some(e) if !e.names.is_empty() => {
                        if e.names.iter().any(|n| self.data_sources.contains(n.as_str())) {
                            Presence::Present(None)
                        } else {
                            Presence::Unlisted
                        }
                    }
                    _ => Presence::Unknown,
                },
            },
            Kind::License => match (&self.licenses, entry.and_then(|e| e.id)) {
                (Some(ids), Some(lid)) => {
                    if ids.contains(&lid) {
                        Presence::Present(Some(lid))
                    } else {
                        unlisted()
                    }
                }
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
    let mut out = replaced_on_adoption(t, dry, o);
    out.extend(effects::parameter_effects(
        t.object.kind,
        None,
        &t.comparable,
        &t.object.options,
        dry,
    ));
    out
}

/// What posting over an unmanaged object replaces (see [`adoption_effects`]).
fn replaced_on_adoption(t: &Target<'_>, dry: Option<&DryRun>, o: &Observed) -> Vec<Effect> {
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

/// What the impact model compares: the last applied payloads before; the desired ones after,
/// with the objects a blocked delete keeps on the tenant (`prune: false` on a removed spec),
/// which keep acting.
fn impact_input<'a>(
    input: &'a PlanInput<'a>,
    tenant: Option<&'a impact::TenantFacts>,
) -> impact::Input<'a> {
    let side = |e: &'a state::Entry| impact::Side {
        kind: e.kind,
        key: &e.key,
        payload: &e.payload,
        digest: &e.digest,
        names: &e.names,
    };
    let desired: HashSet<(Kind, &str)> =
        input.targets.iter().map(|t| (t.object.kind, t.object.key.as_str())).collect();
    let mut after: Vec<impact::Side<'a>> = input
        .targets
        .iter()
        .map(|t| impact::Side {
            kind: t.object.kind,
            key: &t.object.key,
            payload: &t.comparable,
            digest: &t.digest,
            names: &[],
        })
        .collect();
    after.extend(
        input
            .state
            .objects
            .iter()
            .filter(|e| !e.prune && !desired.contains(&(e.kind, e.key.as_str())))
            .map(side),
    );
    impact::Input { before: input.state.objects.iter().map(side).collect(), after, tenant }
}

/// What the tenant says that the impact model uses: listed data sources, the tags read for it,
/// and the dry runs' fates of data sources.
fn tenant_facts(o: &Observed) -> impact::TenantFacts {
    let mut facts = impact::TenantFacts {
        tags: o.tags.clone(),
        data_sources: o
            .inventory
            .data_sources
            .iter()
            .filter(|d| !d.deleted)
            .map(|d| d.name.clone())
            .collect(),
        ..impact::TenantFacts::default()
    };
    for (id, dry) in &o.dry_runs {
        if let (Kind::DataSource, DryRun::Data { creating, updating, deleting, no_change, .. }) =
            (id.kind, dry)
        {
            facts.deleting.insert(id.key.clone(), deleting.clone());
            facts.keeping.insert(
                id.key.clone(),
                creating.iter().chain(updating).chain(no_change).cloned().collect(),
            );
        }
    }
    facts
}

/// A repository that raises `allowDestroy` or `maxDeletePercent` above what the state records
/// as accepted (the defaults when nothing is) weakens the operator's protection: a destructive
/// change, shown on every plan, that takes effect only through an apply with `--allow-destroy`.
fn settings_raised(settings: &RepoSettings, state: &State) -> Option<Warning> {
    let accepted = state.safety.unwrap_or_default();
    let mut raised = Vec::new();
    if settings.allow_destroy && !accepted.allow_destroy {
        raised.push("`allowDestroy` false -> true".to_owned());
    }
    if settings.max_delete_percent > accepted.max_delete_percent {
        raised.push(format!(
            "`maxDeletePercent` {} -> {}",
            accepted.max_delete_percent, settings.max_delete_percent
        ));
    }
    if raised.is_empty() {
        return None;
    }
    Some(Warning {
        object: None,
        code: "settings-raised",
        message: format!(
            "destructive: the repository settings raise {}; until an apply with --allow-destroy \
             accepts them, the values last applied hold",
            raised.join(" and ")
        ),
    })
}
