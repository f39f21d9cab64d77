//! The last stage: the safety refusals, then the writes ([`Planned::apply`]).
//!
//! [`Safety`] is built here and nowhere else ([`Overrides::safety`]): what the operator allowed
//! (`--allow-destroy`, `--force`) on top of what the repository allows (`allowDestroy`,
//! `maxDeletePercent`). [`Planned::apply`] checks the refusals itself before its first write,
//! so a caller cannot apply a refused plan by forgetting to ask.

use tokio_util::sync::CancellationToken;

use super::plan::Planned;
use super::prepare::{migrate, targets};
use super::{Error, Result};
use crate::apply::{self, Outcome, Progress};
use crate::live::Client;
use crate::plan::{self, Refusal, Safety};
use crate::spec::RepoSettings;
use crate::state::store::Recorder;
use crate::state::{Record, State};

/// What the operator allows on top of the repository settings (`apply` and `run` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--allow-destroy`: deletes, replaces and implicit table removals (also allowed by
    /// `allowDestroy: true` in the repository).
    pub allow_destroy: bool,
    /// `--force`: plans that delete every managed object, or more than `maxDeletePercent`.
    pub force: bool,
}

impl Overrides {
    /// The safety options of an apply: the one place they are made.
    pub fn safety(self, settings: &RepoSettings) -> Safety {
        Safety {
            allow_destroy: self.allow_destroy || settings.allow_destroy,
            force: self.force,
            max_delete_percent: settings.max_delete_percent,
        }
    }
}

/// How to carry out a plan (the revision recorded comes from the specs).
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Objects in flight at once within one kind.
    pub parallelism: usize,
    /// Stop starting new objects once cancelled (objects in flight finish and are recorded).
    pub cancel: CancellationToken,
    /// Seconds Immuta may take to create data sources (`apply --wait`), for connections whose
    /// spec sets no `gitops: {wait}` of its own.
    pub wait: Option<i64>,
    /// How long projects wait for the data sources they name to be created (`apply
    /// --creation-timeout`; ten minutes when `None`).
    pub creation_timeout: Option<std::time::Duration>,
}

impl Planned<'_> {
    /// The reasons the plan must not be carried out (empty: go ahead): objects the tenant
    /// refuses, destruction not allowed, a mass deletion without `--force`.
    pub fn refusals(&self, overrides: Overrides) -> Vec<Refusal> {
        let safety = overrides.safety(&self.prepared.desired().settings);
        plan::refusals(&self.plan, &self.prepared.state, &safety)
    }

    /// Carries out the plan in its order, recording every success in the state at once.
    /// Refuses ([`Error::Refused`]) before any write when [`Planned::refusals`] is not empty.
    ///
    /// The caller holds the state's lock. The state is created by the first record (nothing
    /// applied: nothing created), the digest key of a file state by the first apply; the
    /// migrated digests of a format 1 state are recorded first.
    pub async fn apply(
        &self,
        overrides: Overrides,
        client: &Client,
        options: &ApplyOptions,
        progress: &dyn Progress,
    ) -> Result<Outcome> {
        let refusals = self.refusals(overrides);
        if !refusals.is_empty() {
            return Err(Error::Refused { refusals });
        }
        let prepared = &self.prepared;
        let store = prepared.store;
        let key = prepared.keys.ensure(&store.describe())?;
        let mut recorder = Recorder::open(store, State::keyed(&prepared.tenant, key.id())).await?;
        // Planned before any key existed: digest again with the key the state will keep, and
        // migrate the salted digests of the state as recorded (not as planned in memory).
        let rekeyed;
        let (targets, migrated) = if prepared.provisional {
            rekeyed = targets(prepared.desired(), Some(&prepared.specs.secrets), key.into(), None)?;
            let mut state = recorder.state().clone();
            let migrated = migrate(&mut state, &rekeyed, &prepared.specs.secrets)?;
            (&rekeyed[..], migrated)
        } else {
            (&prepared.targets[..], prepared.migrated.clone())
        };
        if recorder.state().key_id.as_deref() != Some(key.id().as_str()) {
            recorder.record(Record::Key { key_id: key.id() }).await?;
        }
        for entry in migrated {
            recorder.upsert(entry).await?;
        }
        let options = apply::Options {
            parallelism: options.parallelism,
            revision: prepared.desired().revision.clone(),
            cancel: options.cancel.clone(),
            wait: options.wait,
            creation_timeout: options.creation_timeout,
        };
        let outcome = apply::apply(
            &self.plan,
            targets,
            &mut recorder,
            client,
            &prepared.specs.secrets,
            &options,
            progress,
        )
        .await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_allows_destruction_and_the_flag_cannot_take_it_back() {
        let settings = |allow_destroy| RepoSettings {
            allow_destroy,
            max_delete_percent: 40,
            ..RepoSettings::default()
        };
        let none = Overrides::default();
        let both = Overrides { allow_destroy: true, force: true };
        assert_eq!(
            none.safety(&settings(false)),
            Safety { allow_destroy: false, force: false, max_delete_percent: 40 }
        );
        assert!(none.safety(&settings(true)).allow_destroy);
        assert_eq!(
            both.safety(&settings(false)),
            Safety { allow_destroy: true, force: true, max_delete_percent: 40 }
        );
    }
}
