//! The saved plan of `plan --out FILE` and `apply FILE`: the plan JSON (docs/plan-json.md, read
//! back by [`render::read_saved`]) plus the spec root the apply reloads, and the rules that
//! refuse a saved plan: made offline, made for another tenant, or stale.
//!
//! A saved plan is never carried out as written. `apply FILE` reloads the specs at its
//! `spec_root`, plans again against the tenant with the same reads (`refreshed`), and compares
//! the new plan's [`Fingerprint`] with the saved one ([`Saved::ensure_fresh`]): specs, state and
//! tenant must all be as they were, or nothing is applied.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::plan::render::{self, SavedPlanError};
use crate::plan::{Fingerprint, Plan};

/// Why a saved plan cannot be written, read or carried out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path is neither a directory nor a file.
    #[error(
        "`{path}` does not exist: pass the directory that holds your spec files, or a plan saved \
         with `plan --out`; nothing was applied"
    )]
    Missing {
        /// The path as given.
        path: String,
    },
    /// The file cannot be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a plan of a format this build reads.
    #[error("`{path}` is not a plan saved by `plan --out`")]
    NotAPlan {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: SavedPlanError,
    },
    /// A plan JSON without the spec root (printed by `plan --format json`, not saved).
    #[error("`{path}` has no spec_root: save plans with `immuta-gitops plan --out`")]
    NoSpecRoot {
        /// The file.
        path: String,
    },
    /// The plan could not be rendered as JSON.
    #[error("rendering the plan")]
    Render(#[source] serde_json::Error),
    /// The file cannot be written.
    #[error("cannot write the plan to `{path}`")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Made by `plan --base`: it compares revisions, not the tenant.
    #[error("this plan was made offline (`plan --base`); plan against the tenant, then apply")]
    Offline,
    /// Made for another tenant.
    #[error(
        "this plan was made for {made_for}, not {tenant}: plan against this tenant, then apply \
         that plan; nothing was applied"
    )]
    OtherTenant {
        /// The tenant in the file.
        made_for: String,
        /// The tenant in use.
        tenant: String,
    },
    /// Something it was made from changed.
    #[error(
        "the saved plan is stale: {} changed since it was made; run `plan` again and review the \
         new plan",
        parts.join(", ")
    )]
    Stale {
        /// What changed ([`stale_parts`]).
        parts: Vec<&'static str>,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What `apply FILE` needs from a saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The spec root to reload (absolute when it could be resolved at save time).
    pub spec_root: PathBuf,
    /// What the plan was made from.
    pub fingerprint: Fingerprint,
    /// The tenant it was made for (`offline` for `plan --base`).
    pub tenant: String,
    /// Made with `--refresh`: its fingerprint covers a dry run of every object.
    pub refreshed: bool,
}

/// Saves `plan` as JSON at `out`, with the spec root `apply FILE` reloads.
pub fn save(out: &Path, plan: &Plan, spec_root: &Path) -> Result<()> {
    let mut value: Value = serde_json::from_str(&render::json(plan)).map_err(Error::Render)?;
    let root = std::fs::canonicalize(spec_root).unwrap_or_else(|_| spec_root.to_path_buf());
    value["spec_root"] = Value::String(root.display().to_string());
    // A saved plan is an output like any other: through the redaction layer.
    crate::redact::current().redact_value(&mut value);
    let mut text = serde_json::to_vec_pretty(&value).map_err(Error::Render)?;
    text.push(b'\n');
    std::fs::write(out, text)
        .map_err(|source| Error::Write { path: out.display().to_string(), source })
}

/// Reads the plan saved at `path`; `None` when `path` is a directory (a spec root to plan
/// afresh).
pub fn read(path: &Path) -> Result<Option<Saved>> {
    let shown = || path.display().to_string();
    if path.is_dir() {
        return Ok(None);
    }
    if !path.exists() {
        return Err(Error::Missing { path: shown() });
    }
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Read { path: shown(), source })?;
    let saved =
        render::read_saved(&text).map_err(|source| Error::NotAPlan { path: shown(), source })?;
    // `read_saved` parsed the same text: this cannot fail, and a null reads as "no spec root".
    let value: Value = serde_json::from_str(&text).unwrap_or_default();
    let Some(root) = value.get("spec_root").and_then(Value::as_str) else {
        return Err(Error::NoSpecRoot { path: shown() });
    };
    Ok(Some(Saved {
        spec_root: PathBuf::from(root),
        fingerprint: saved.fingerprint,
        tenant: saved.tenant,
        refreshed: value.get("refreshed").and_then(Value::as_bool).unwrap_or(false),
    }))
}

impl Saved {
    /// Refuses a plan made offline (`plan --base`).
    pub fn ensure_online(&self) -> Result<()> {
        if self.tenant == "offline" { Err(Error::Offline) } else { Ok(()) }
    }

    /// Refuses a plan made for another tenant than `tenant`.
    pub fn ensure_for(&self, tenant: &str) -> Result<()> {
        if self.tenant == tenant {
            return Ok(());
        }
        Err(Error::OtherTenant { made_for: self.tenant.clone(), tenant: tenant.to_owned() })
    }

    /// Whether the new plan must read every object's dry run: a saved plan is checked against
    /// what it was made from, with the same reads.
    pub fn refresh(&self, requested: bool) -> bool {
        requested || self.refreshed
    }

    /// Refuses the saved plan when the plan made now differs in what it was made from.
    pub fn ensure_fresh(&self, now: &Fingerprint) -> Result<()> {
        let parts = stale_parts(&self.fingerprint, now);
        if parts.is_empty() { Ok(()) } else { Err(Error::Stale { parts }) }
    }
}

/// What changed since a plan was saved. What is read from the tenant (the dry runs of changed
/// objects) depends on the specs and the state, so a different reading is blamed on the tenant
/// only when they are unchanged.
pub fn stale_parts(saved: &Fingerprint, now: &Fingerprint) -> Vec<&'static str> {
    let mut parts = Vec::new();
    if saved.specs != now.specs {
        parts.push("the specs (or a secret value)");
    }
    if saved.state != now.state {
        parts.push("the state (another apply ran)");
    }
    if saved.live != now.live && parts.is_empty() {
        parts.push("the tenant");
    }
    parts
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::plan::PlanInput;
    use crate::spec::RepoSettings;
    use crate::state::State;

    fn fp(specs: &str, state: &str, live: &str) -> Fingerprint {
        Fingerprint { specs: specs.into(), state: state.into(), live: Some(live.into()) }
    }

    fn empty_plan(tenant: &str, refresh: bool) -> Plan {
        crate::plan::plan(&PlanInput {
            targets: &[],
            state: &State::new(tenant, "salt"),
            observed: None,
            settings: &RepoSettings::default(),
            tenant: tenant.to_owned(),
            revision: "r1".into(),
            base: None,
            refresh,
            now: SystemTime::now(),
        })
    }

    #[test]
    fn the_tenant_is_blamed_only_when_the_specs_and_state_are_unchanged() {
        let saved = fp("a", "b", "c");
        assert_eq!(stale_parts(&saved, &fp("a", "b", "c")), Vec::<&str>::new());
        assert_eq!(stale_parts(&saved, &fp("a", "b", "X")), ["the tenant"]);
        assert_eq!(stale_parts(&saved, &fp("X", "b", "X")), ["the specs (or a secret value)"]);
        assert_eq!(stale_parts(&saved, &fp("a", "X", "X")), ["the state (another apply ran)"]);
        assert_eq!(
            stale_parts(&saved, &fp("X", "X", "X")),
            ["the specs (or a secret value)", "the state (another apply ran)"]
        );
    }

    #[test]
    fn a_saved_plan_reads_back_with_its_spec_root_and_is_checked_against_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plan.json");
        let plan = empty_plan("https://t.example", true);
        save(&out, &plan, dir.path()).unwrap();
        let saved = read(&out).unwrap().unwrap();
        assert_eq!(saved.spec_root, std::fs::canonicalize(dir.path()).unwrap());
        assert_eq!(saved.tenant, "https://t.example");
        assert!(saved.refreshed && saved.refresh(false));
        assert!(saved.ensure_online().is_ok());
        assert!(saved.ensure_for("https://t.example").is_ok());
        assert!(matches!(saved.ensure_for("sandbox"), Err(Error::OtherTenant { .. })));
        assert!(saved.ensure_fresh(&plan.fingerprint).is_ok());
        let mut moved = plan.fingerprint.clone();
        moved.state = "another".into();
        let err = saved.ensure_fresh(&moved).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the saved plan is stale: the state (another apply ran) changed since it was made; \
             run `plan` again and review the new plan"
        );
    }

    #[test]
    fn directories_missing_files_plain_plan_json_and_offline_plans_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        assert!(matches!(read(&dir.path().join("nope.json")), Err(Error::Missing { .. })));
        let printed = dir.path().join("printed.json");
        std::fs::write(&printed, render::json(&empty_plan("t", false))).unwrap();
        assert!(matches!(read(&printed), Err(Error::NoSpecRoot { .. })));
        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "{}").unwrap();
        assert!(matches!(read(&junk), Err(Error::NotAPlan { .. })));
        let offline = dir.path().join("offline.json");
        save(&offline, &empty_plan("offline", false), dir.path()).unwrap();
        assert!(matches!(read(&offline).unwrap().unwrap().ensure_online(), Err(Error::Offline)));
    }
}
