//! The reconcile pipeline shared by the CLI (`plan`, `apply`) and the daemon: specs from a
//! snapshot, comparable targets, what the tenant says, and the plan.
//!
//! ```text
//! Snapshot -> load (+ secret files) -> Desired -> targets -> observe tenant -> plan
//! ```
//!
//! Every step fails closed with a typed [`Error`]: a spec error, an unreadable secret or a
//! failed tenant read stops the pipeline; none is ever taken for "nothing to do".

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::diagnostic::{Diagnostic, Severity};
use crate::live::{self, Client, DryRunRequest, Licenses};
use crate::plan::{self, Observed, Plan, PlanInput, Target};
use crate::secret_store::{self, ProcessSecrets};
use crate::snapshot::Snapshot;
use crate::spec::secrets::{InterpolateError, SecretSource, interpolate};
use crate::spec::{self, Desired, Kind, LoadOptions, validate};
use crate::state::{State, file};

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The specs have errors (the diagnostics say which).
    #[error("the specs have {errors} error(s); first: {first}")]
    Specs {
        /// Number of errors.
        errors: usize,
        /// The first error, for one-line reports.
        first: String,
        /// Every diagnostic.
        diagnostics: Vec<Diagnostic>,
    },
    /// A placeholder could not be filled in.
    #[error("{object}: {source}")]
    Secret {
        /// The object.
        object: String,
        /// The cause.
        #[source]
        source: InterpolateError,
    },
    /// The tenant could not be read (fail closed).
    #[error(
        "cannot read the tenant; nothing was planned (a failed read is never taken for an empty tenant): {0}"
    )]
    Live(#[from] live::Error),
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] file::Error),
    /// The state file belongs to another tenant.
    #[error(
        "the state file `{path}` belongs to {found}, not {expected}: use another state file for this tenant"
    )]
    TenantMismatch {
        /// The state file.
        path: String,
        /// The tenant recorded in it.
        found: String,
        /// The tenant in use.
        expected: String,
    },
}

impl Error {
    /// A stable, low-cardinality label for metrics and `/status`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Specs { .. } => "invalid",
            Error::Secret { .. } => "secret",
            Error::Live(e) => e.metric_label(),
            Error::State(_) | Error::TenantMismatch { .. } => "state",
        }
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Loads the specs of a snapshot and checks that every `${file:...}` can be read (unless the
/// load is offline: no secret value is ever read then).
pub fn load(
    snapshot: &Snapshot,
    options: &LoadOptions,
    secrets_dir: &std::path::Path,
) -> (Desired, Vec<Diagnostic>) {
    let (desired, mut diags) = spec::load(snapshot, options);
    if !options.offline {
        let source = ProcessSecrets::new(secrets_dir).with_defaults(desired.env_defaults.clone());
        diags.extend(secret_store::check_files(&desired, &source));
        crate::diagnostic::sort(&mut diags);
    }
    (desired, diags)
}

/// Fails with [`Error::Specs`] when any diagnostic is an error.
pub fn require_valid(diags: &[Diagnostic]) -> Result<()> {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.severity == Severity::Error).collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(Error::Specs {
            errors: errors.len(),
            first: first.to_string().lines().next().unwrap_or_default().to_owned(),
            diagnostics: diags.to_vec(),
        }),
    }
}

/// The comparable targets of the desired objects (secrets filled in from `source` and digested,
/// or compared as written without one).
pub fn targets<'a>(
    desired: &'a Desired,
    source: Option<&dyn SecretSource>,
    salt: &str,
) -> Result<Vec<Target<'a>>> {
    crate::parallel::map(&desired.objects, 32, |o| {
        let comparable = plan::comparable(o, source, salt).map_err(|source| Error::Secret {
            object: format!("{} ({})", o.label(), o.location),
            source,
        })?;
        Ok(Target::new(o, comparable))
    })
    .into_iter()
    .collect()
}

/// The salt of the offline state [`base_state`] builds: both sides of `plan --base` keep
/// placeholders as written, so no secret is digested.
pub const OFFLINE_SALT: &str = "base";

/// What [`base_state`] read.
#[derive(Debug)]
pub struct Base {
    /// The base revision's objects, as if they had been applied.
    pub state: State,
    /// Diagnostics of the base revision's files that were loaded.
    pub diagnostics: Vec<Diagnostic>,
}

/// The state a base revision describes, for `plan --base` (offline: `options.offline`, targets
/// made with [`OFFLINE_SALT`] and no secret source): every object of the `base` specs as if it
/// had been applied.
///
/// A file whose bytes are the same in both revisions holds the same objects, so when the
/// settings and env files (which change how every file loads) are the same too, only the files
/// that differ are loaded, and the objects of the others are taken from `current`'s targets.
/// A pull request that changes a few files of a large tree costs a few files, not a tree.
pub fn base_state(
    base: &Snapshot,
    current: &Snapshot,
    current_targets: &[Target<'_>],
    options: &LoadOptions,
) -> Result<Base> {
    use std::collections::{HashMap, HashSet};
    let is_spec = |path: &str| spec::is_spec_file(path) && !spec::SETTINGS_FILES.contains(&path);
    let now: HashMap<&str, &crate::snapshot::FileContent> =
        current.files.iter().map(|f| (f.path.as_str(), &f.content)).collect();
    // Snapshots list their files sorted by path.
    let context = |f: &&crate::snapshot::SnapshotFile| !is_spec(&f.path);
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
    let loaded = targets(&desired, None, OFFLINE_SALT)?;
    let mut state = State::new("offline", OFFLINE_SALT);
    let reused =
        current_targets.iter().filter(|t| unchanged.contains(t.object.location.file.as_str()));
    state.upsert_all(reused.chain(&loaded).map(|t| t.entry(None, Vec::new(), &base.revision, "")));
    Ok(Base { state, diagnostics })
}

/// The state of `tenant` at `path`; created empty (with a fresh random salt) when missing, so
/// that a saved plan and its apply digest secrets with the same salt.
pub fn state_for(path: &std::path::Path, tenant: &str) -> Result<State> {
    match file::load(path)? {
        Some(state) if state.tenant != tenant => Err(Error::TenantMismatch {
            path: path.display().to_string(),
            found: state.tenant,
            expected: tenant.to_owned(),
        }),
        Some(state) => Ok(state),
        None => {
            let bytes: [u8; 16] = rand::random();
            let state = State::new(tenant, hex::encode(bytes));
            file::save(path, &state)?;
            Ok(state)
        }
    }
}

/// Reads what the plan needs from the tenant: inventories, managed connection keys, and the dry
/// runs of changed objects (every object with `refresh`).
pub async fn observe(
    client: &Client,
    targets: &[Target<'_>],
    state: &State,
    source: &dyn SecretSource,
    refresh: bool,
    parallelism: usize,
) -> Result<Observed> {
    let mut requests = Vec::new();
    let by_id: std::collections::HashMap<(Kind, &str), &Target<'_>> =
        targets.iter().map(|t| ((t.object.kind, t.object.key.as_str()), t)).collect();
    for id in plan::needs_dry_run(targets, state, refresh) {
        let Some(t) = by_id.get(&(id.kind, id.key.as_str())).copied() else {
            continue;
        };
        let payload = interpolate(&t.object.payload, source)
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
    let manages_licenses = targets.iter().any(|t| t.object.kind == Kind::License)
        || state.objects.iter().any(|e| e.kind == Kind::License);
    let licenses = if manages_licenses { Licenses::Required } else { Licenses::IfPermitted };
    // Dry runs and probes change nothing on the tenant: they run twice as wide as writes.
    Ok(live::observe(client, requests, probe_keys, licenses, parallelism.saturating_mul(2)).await?)
}

/// Errors for projects naming purposes that neither the specs nor the tenant have.
pub fn check_references(desired: &Desired, observed: &Observed) -> Result<()> {
    let defined = desired.purpose_names();
    let defined: BTreeSet<&str> = defined.iter().map(String::as_str).collect();
    let known: BTreeSet<String> =
        observed.inventory.purposes.iter().map(|p| p.name.clone()).collect();
    require_valid(&validate::purpose_references(&desired.objects, &defined, Some(&known)))
}

/// The plan against a tenant.
pub fn plan_live(
    desired: &Desired,
    targets: &[Target<'_>],
    state: &State,
    observed: &Observed,
    tenant: &str,
    refresh: bool,
) -> Plan {
    plan::plan(&PlanInput {
        targets,
        state,
        observed: Some(observed),
        settings: &desired.settings,
        tenant: tenant.to_owned(),
        revision: desired.revision.clone(),
        base: None,
        refresh,
        now: SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The base state made the long way: every base file loaded.
    fn loaded_afresh(base: &Snapshot, options: &LoadOptions) -> State {
        let (desired, _) = spec::load(base, options);
        let targets = targets(&desired, None, OFFLINE_SALT).unwrap();
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
        let now = targets(&desired, None, OFFLINE_SALT).unwrap();
        let got = base_state(&base, &current, &now, &options).unwrap();
        assert_eq!(got.state, loaded_afresh(&base, &options));
        let keys: Vec<&str> = got.state.objects.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["Audit", "Research", "k", "pk"]);

        // Settings change how every file loads: nothing is reused then.
        let mut settled = current.clone();
        settled.files.push(crate::snapshot::SnapshotFile {
            path: "immuta-gitops.yaml".into(),
            content: crate::snapshot::FileContent::Bytes(std::sync::Arc::from(
                &b"exclude: [a.yaml]\n"[..],
            )),
        });
        let (desired, _) = spec::load(&settled, &options);
        let now = targets(&desired, None, OFFLINE_SALT).unwrap();
        let got = base_state(&base, &settled, &now, &options).unwrap();
        assert_eq!(got.state, loaded_afresh(&base, &options));
    }
}
