//! The second stage: what the tenant says, the reference check, and the plan
//! ([`Prepared::plan`]); or, for `plan --base`, the plan against the specs of another revision
//! with no tenant, no state and no secret ([`plan_offline`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use super::prepare::{Prepared, Specs, require_valid, targets};
use super::{Error, Result};
use crate::diagnostic::Diagnostic;
use crate::live::{self, Client, DryRunRequest, Licenses};
use crate::plan::{self, Observed, Plan, PlanInput, Target};
use crate::snapshot::{FileContent, Snapshot, SnapshotFile};
use crate::spec::secrets::{SecretSource, interpolate};
use crate::spec::{self, Desired, Kind, LoadOptions, validate};
use crate::state::State;

/// A plan against a tenant, with what it was made from.
#[derive(Debug)]
pub struct Planned<'a> {
    /// The specs, the state and the targets.
    pub prepared: Prepared<'a>,
    /// What was read from the tenant.
    pub observed: Observed,
    /// The plan.
    pub plan: Plan,
}

/// The phases of a plan as they happen, for a progress display (the CLI draws one on a
/// terminal). Every method does nothing by default; `()` reports nowhere.
pub trait PlanProgress: Sync {
    /// The tenant is being read: its listings, and `dry_runs` dry runs.
    fn reading(&self, _dry_runs: usize) {}
    /// One dry run was answered.
    fn dry_run_answered(&self) {}
}

impl PlanProgress for () {}

impl<'a> Prepared<'a> {
    /// Reads the tenant (every object's dry run with `refresh`, else only changed objects'),
    /// checks that every purpose a project names exists in the specs or on the tenant, and
    /// plans. Only reads: dropping the future abandons it with nothing changed.
    pub async fn plan(
        self,
        client: &Client,
        refresh: bool,
        parallelism: usize,
    ) -> Result<Planned<'a>> {
        self.plan_with(client, refresh, parallelism, &()).await
    }

    /// As [`Prepared::plan`], reporting its phases to `progress`.
    pub async fn plan_with(
        self,
        client: &Client,
        refresh: bool,
        parallelism: usize,
        progress: &dyn PlanProgress,
    ) -> Result<Planned<'a>> {
        let secrets = &self.specs.secrets;
        let mut observed =
            observe(client, &self.targets, &self.state, secrets, refresh, parallelism, progress)
                .await?;
        check_references(self.desired(), &observed)?;
        let mut plan = plan::plan(&self.input(&observed, refresh));
        // The access impact asks for the table tags the tenant reports for the managed data
        // sources it may concern (tags from outside Git are seen only this way); with them,
        // the plan is made again. The same specs, state and tenant ask for the same reads, so
        // a saved plan's fingerprint is reproduced at apply.
        let wanted = tag_reads(&plan, &observed);
        if !wanted.is_empty() {
            observed.tags =
                live::metadata::table_tags(client, &wanted, parallelism.saturating_mul(2)).await?;
            plan = plan::plan(&self.input(&observed, refresh));
        }
        Ok(Planned { prepared: self, observed, plan })
    }
}

impl Prepared<'_> {
    /// What the plan is computed from, with what the tenant said.
    fn input<'o>(&'o self, observed: &'o Observed, refresh: bool) -> PlanInput<'o> {
        PlanInput {
            targets: &self.targets,
            state: &self.state,
            observed: Some(observed),
            settings: &self.desired().settings,
            tenant: self.tenant.clone(),
            revision: self.desired().revision.clone(),
            base: None,
            refresh,
            now: SystemTime::now(),
        }
    }
}

/// Reads what the plan needs from the tenant: inventories, managed connection keys, and the dry
/// runs of changed objects (every object with `refresh`).
pub async fn observe(
    client: &Client,
    targets: &[Target<'_>],
    state: &State,
    secrets: &dyn SecretSource,
    refresh: bool,
    parallelism: usize,
    progress: &dyn PlanProgress,
) -> Result<Observed> {
    let mut requests = Vec::new();
    let by_id: HashMap<(Kind, &str), &Target<'_>> =
        targets.iter().map(|t| ((t.object.kind, t.object.key.as_str()), t)).collect();
    for id in plan::needs_dry_run(targets, state, refresh) {
        let Some(t) = by_id.get(&(id.kind, id.key.as_str())).copied() else {
            continue;
        };
        let payload = interpolate(&t.object.payload, secrets)
            .map_err(|source| Error::Secret { object: t.object.label(), source })?;
        let secrets = t
            .object
            .tainted_pointers()
            .filter_map(|p| payload.pointer(p)?.as_str().map(str::to_owned))
            .collect();
        requests.push(DryRunRequest { id, payload, options: t.object.options.clone(), secrets });
    }
    // Which connection keys exist, where the listings cannot tell: a managed connection whose
    // data-source names are recorded is found in the `/dataSource` listing, but one with no
    // recorded names needs a probe, and so does a desired connection not managed yet (its dry
    // run cannot tell whether the key exists when it has no tables; an existing key is adopted,
    // not created).
    let probe_keys = state
        .objects
        .iter()
        .filter(|e| e.kind == Kind::DataSource && e.names.is_empty())
        .map(|e| e.key.clone())
        .chain(
            targets
                .iter()
                .filter(|t| {
                    t.object.kind == Kind::DataSource
                        && state.get(Kind::DataSource, &t.object.key).is_none()
                })
                .map(|t| t.object.key.clone()),
        )
        .collect();
    let recorded = state
        .objects
        .iter()
        .filter(|e| e.kind == Kind::DataSource && !e.names.is_empty())
        .map(|e| (e.key.clone(), e.names.clone()))
        .collect();
    let manages_licenses = targets.iter().any(|t| t.object.kind == Kind::License)
        || state.objects.iter().any(|e| e.kind == Kind::License);
    let licenses = if manages_licenses { Licenses::Required } else { Licenses::IfPermitted };
    // Managed objects whose spec is gone: each one its listing leaves out is read by id, so
    // that a listing cut short (a proxy, a cap) never passes for a delete done outside.
    let desired: BTreeSet<(Kind, &str)> =
        targets.iter().map(|t| (t.object.kind, t.object.key.as_str())).collect();
    let deleting = state
        .objects
        .iter()
        .filter(|e| !desired.contains(&(e.kind, e.key.as_str())))
        .filter_map(|e| Some((crate::plan::ObjectId::new(e.kind, &e.key), e.id?)))
        .collect();
    progress.reading(requests.len());
    let reads = live::Reads { dry_runs: requests, probe_keys, recorded, licenses, deleting };
    // Dry runs and probes change nothing on the tenant: they run twice as wide as writes.
    let answered = || progress.dry_run_answered();
    Ok(live::observe_with(client, reads, parallelism.saturating_mul(2), &answered).await?)
}

/// The data sources (name and id) whose table tags the plan's access impact asks for, at most
/// [`live::metadata::MAX_TAG_READS`] (the impact says how many it could not read).
fn tag_reads(plan: &Plan, observed: &Observed) -> Vec<(String, i64)> {
    let ids: HashMap<&str, i64> = observed
        .inventory
        .data_sources
        .iter()
        .filter(|d| !d.deleted)
        .map(|d| (d.name.as_str(), d.id))
        .collect();
    plan.impact
        .wanted_tags
        .iter()
        .filter_map(|n| Some((n.clone(), *ids.get(n.as_str())?)))
        .take(live::metadata::MAX_TAG_READS)
        .collect()
}

/// Errors for projects naming purposes that neither the specs nor the tenant have.
fn check_references(desired: &Desired, observed: &Observed) -> Result<()> {
    let defined = desired.purpose_names();
    let defined: BTreeSet<&str> = defined.iter().map(String::as_str).collect();
    let known: BTreeSet<String> =
        observed.inventory.purposes.iter().map(|p| p.name.clone()).collect();
    require_valid(&validate::purpose_references(&desired.objects, &defined, Some(&known)))
}

/// The salt of the offline state: both sides of `plan --base` keep placeholders as written, so
/// no secret value is digested (literal values in the specs are in the repository anyway).
pub const OFFLINE_SALT: &str = "base";

/// An offline plan (`plan --base`).
#[derive(Debug)]
pub struct Offline {
    /// The plan: the specs against the base revision's, as if those had been applied.
    pub plan: Plan,
    /// Diagnostics of the base revision's files that were loaded (objects of invalid documents
    /// count as new).
    pub base_diagnostics: Vec<Diagnostic>,
}

/// `plan --base`: the specs of `current` (loaded offline into `specs`) against those of `base`,
/// the snapshot of revision `base_name`, which play the role of the last applied state. No
/// tenant, no state file and no secret values are needed: both sides are compared with
/// placeholders. Fails on invalid current specs.
///
/// Both snapshots are consumed: once the base state is made their texts are freed, before
/// the plan (a large tree's peak memory is the plan's).
pub fn plan_offline(
    specs: &Specs,
    current: Snapshot,
    base: Snapshot,
    base_name: &str,
) -> Result<Offline> {
    specs.require_valid()?;
    let desired = &specs.desired;
    let targets = targets(desired, None, OFFLINE_SALT.into(), None)?;
    let (state, base_diagnostics) = base_state(&base, &current, &targets, &specs.options)?;
    let revision = base.revision;
    drop((current, base.files));
    let plan = plan::plan(&PlanInput {
        targets: &targets,
        state: &state,
        observed: None,
        settings: &desired.settings,
        tenant: "offline".into(),
        revision: desired.revision.clone(),
        base: Some(format!("{base_name} ({})", revision.get(..12).unwrap_or(&revision))),
        refresh: false,
        now: SystemTime::now(),
    });
    Ok(Offline { plan, base_diagnostics })
}

/// The state a base revision describes (offline: `options.offline`, targets made with
/// [`OFFLINE_SALT`] and no secret source): every object of the `base` specs as if it had been
/// applied, and the diagnostics of the base files loaded.
///
/// A file whose bytes are the same in both revisions holds the same objects, so when the
/// settings and env files (which change how every file loads) are the same too, only the files
/// that differ are loaded, and the objects of the others are taken from `current`'s targets.
/// A pull request that changes a few files of a large tree costs a few files, not a tree.
fn base_state(
    base: &Snapshot,
    current: &Snapshot,
    current_targets: &[Target<'_>],
    options: &LoadOptions,
) -> Result<(State, Vec<Diagnostic>)> {
    let is_spec = |path: &str| spec::is_spec_file(path) && !spec::SETTINGS_FILES.contains(&path);
    let now: HashMap<&str, &FileContent> =
        current.files.iter().map(|f| (f.path.as_str(), &f.content)).collect();
    // Snapshots list their files sorted by path.
    let context = |f: &&SnapshotFile| !is_spec(&f.path);
    let same_context = base.files.iter().filter(context).eq(current.files.iter().filter(context));
    let unchanged: HashSet<&str> = if same_context {
        base.files
            .iter()
            .filter(|f| is_spec(&f.path) && now.get(f.path.as_str()) == Some(&&f.content))
            .map(|f| f.path.as_str())
            .collect()
    } else {
        HashSet::new()
    };
    let to_load = Snapshot {
        revision: base.revision.clone(),
        files: base
            .files
            .iter()
            .filter(|f| !unchanged.contains(f.path.as_str()))
            .cloned()
            .collect(),
    };
    let (desired, diagnostics) = spec::load(&to_load, options);
    let loaded = targets(&desired, None, OFFLINE_SALT.into(), None)?;
    let mut state = State::new("offline", OFFLINE_SALT);
    let reused =
        current_targets.iter().filter(|t| unchanged.contains(t.object.location.file.as_str()));
    state.upsert_all(reused.chain(&loaded).map(|t| t.entry(None, Vec::new(), &base.revision, "")));
    Ok((state, diagnostics))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The base state made the long way: every base file loaded.
    fn loaded_afresh(base: &Snapshot, options: &LoadOptions) -> State {
        let (desired, _) = spec::load(base, options);
        let targets = targets(&desired, None, OFFLINE_SALT.into(), None).unwrap();
        let mut state = State::new("offline", OFFLINE_SALT);
        state.upsert_all(targets.iter().map(|t| t.entry(None, Vec::new(), &base.revision, "")));
        state
    }

    #[test]
    fn the_base_state_reuses_unchanged_files_and_equals_loading_the_base_afresh() {
        let options = LoadOptions { offline: true, ..LoadOptions::default() };
        let policy = |name: &str| {
            format!("policyKey: k\nname: {name}\ntype: subscription\nactions:\n  type: anyone\n")
        };
        let base = Snapshot::from_texts([
            ("a.yaml", "name: Research\n".to_owned()),
            ("moved.yaml", "name: Audit\n".to_owned()),
            ("p.yaml", policy("Old")),
            ("gone.yaml", "projectKey: pk\nname: P\n".to_owned()),
        ]);
        let current = Snapshot::from_texts([
            ("a.yaml", "name: Research\n".to_owned()),
            ("elsewhere.yaml", "name: Audit\n".to_owned()),
            ("p.yaml", policy("New")),
            ("new.yaml", "name: Fresh\n".to_owned()),
        ]);
        let (desired, _) = spec::load(&current, &options);
        let now = targets(&desired, None, OFFLINE_SALT.into(), None).unwrap();
        let (state, _) = base_state(&base, &current, &now, &options).unwrap();
        assert_eq!(state, loaded_afresh(&base, &options));
        let keys: Vec<&str> = state.objects.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["Audit", "Research", "k", "pk"]);

        // Settings change how every file loads: nothing is reused then.
        let mut settled = current.clone();
        settled.files.push(SnapshotFile {
            path: "immuta-gitops.yaml".into(),
            content: FileContent::Bytes(std::sync::Arc::from(&b"exclude: [a.yaml]\n"[..])),
        });
        let (desired, _) = spec::load(&settled, &options);
        let now = targets(&desired, None, OFFLINE_SALT.into(), None).unwrap();
        let (state, _) = base_state(&base, &settled, &now, &options).unwrap();
        assert_eq!(state, loaded_afresh(&base, &options));
    }

    #[test]
    fn an_offline_plan_names_its_base_and_counts_changed_objects() {
        let inputs = super::super::Inputs {
            options: LoadOptions { offline: true, ..LoadOptions::default() },
            secrets_dir: "/nonexistent".into(),
        };
        let base = Snapshot::from_texts([("a.yaml", "name: Research\n".to_owned())]);
        let current = Snapshot::from_texts([
            ("a.yaml", "name: Research\n".to_owned()),
            ("b.yaml", "name: Audit\n".to_owned()),
        ]);
        let specs = Specs::load(&current, &inputs);
        let offline = plan_offline(&specs, current, base, "main").unwrap();
        assert_eq!(offline.plan.summary().create, 1, "{}", offline.plan.summary_line());
        assert_eq!(offline.plan.tenant, "offline");
        let shown = offline.plan.base.as_deref().unwrap_or_default();
        assert!(shown.starts_with("main ("), "{shown}");
        assert!(offline.base_diagnostics.is_empty());
    }
}
