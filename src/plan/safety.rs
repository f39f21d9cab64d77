//! The safety rules of `apply`: a plan the tenant refuses, a plan that leaves a reference
//! dangling (a project listing a data source or purpose the plan removes) without `--force`, a
//! destructive plan without `--allow-destroy`, and a mass deletion (every managed object, or
//! more than `maxDeletePercent` of them) without `--force` are refused ([`refusals`]).
//!
//! Deletions are counted in data sources, not only in objects: a connection is one object but
//! holds one data source per table, and a post that drops tables from it disables or deletes
//! those data sources as surely as a delete would ([`deletions`], [`managed`]).

use super::{Action, Change, DryRun, Effect, Plan};
use crate::spec::Kind;
use crate::state::State;

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
    let broken: Vec<String> = plan.impact.errors().map(|r| r.message.clone()).collect();
    if !broken.is_empty() && !safety.force {
        out.push(Refusal {
            message: format!(
                "the plan leaves {} reference(s) dangling: {}",
                broken.len(),
                broken.join("; ")
            ),
            hint:
                "fix the references in the same change (the apply would otherwise fail half-way); \
                   if the tenant has those objects outside these specs, re-run with --force"
                    .into(),
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
    let managed = managed(state);
    let deletes: usize = plan.changes.iter().map(|c| deletions(c, state)).sum();
    if !safety.force && managed > 0 {
        if deletes >= managed {
            out.push(Refusal {
                message: format!("the plan deletes every managed object ({deletes} of {managed})"),
                hint: "an empty or mis-pathed spec tree looks like this; if it is really meant, re-run with --force".into(),
            });
        } else if deletes > 1 && deletes * 100 > usize::from(safety.max_delete_percent) * managed {
            out.push(Refusal {
                message: format!(
                    "the plan deletes or disables {deletes} of {managed} managed objects and data \
                     sources, more than {}%",
                    safety.max_delete_percent
                ),
                hint: "check the plan; re-run with --force to proceed, or raise `maxDeletePercent` in immuta-gitops.yaml"
                    .into(),
            });
        }
    }
    out
}

/// How many managed things the state holds for the mass-deletion guard: one per object, except
/// a connection, which counts one per data source recorded for it (at least one).
pub fn managed(state: &State) -> usize {
    state
        .objects
        .iter()
        .map(|e| if e.kind == Kind::DataSource { e.names.len().max(1) } else { 1 })
        .sum()
}

/// How many objects and data sources `change` deletes or disables: a delete counts one object,
/// or every data source recorded for a connection; a post counts every data source it drops
/// or recreates (`sources` cut, identity fields changed, or what the tenant's dry run says it
/// deletes, whichever is more), and every subpurpose it removes. A change kept back
/// (`prune: false`) deletes nothing.
pub fn deletions(change: &Change, state: &State) -> usize {
    if change.blocked.is_some() {
        return 0;
    }
    if change.action == Action::Delete {
        return match change.id.kind {
            Kind::DataSource => {
                state.get(change.id.kind, &change.id.key).map_or(1, |e| e.names.len().max(1))
            }
            _ => 1,
        };
    }
    // Data sources dropped or recreated, as the spec says; the dry run may say more (it names
    // the same data sources, so the larger count is taken, never the sum).
    let mut data_sources = 0;
    let mut subpurposes = 0;
    for effect in &change.effects {
        match effect {
            Effect::TablesRemoved { tables, .. } => data_sources += tables.len(),
            Effect::DataSourcesRecreated { names, .. } => data_sources += names.len().max(1),
            Effect::SubpurposesRemoved { names } => subpurposes += names.len(),
            _ => {}
        }
    }
    if let Some(DryRun::Data { deleting, .. }) = &change.server {
        data_sources = data_sources.max(deleting.len());
    }
    data_sources + subpurposes
}
