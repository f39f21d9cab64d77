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
use crate::state::{Record, SafetySettings, State};

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
    ///
    /// The repository's `allowDestroy` and `maxDeletePercent` count as far as the operator
    /// accepted them: up to the values `accepted` (recorded in the state by the last apply;
    /// the defaults when none was), or in full with `--allow-destroy`. A merged commit that
    /// raises them therefore cannot take the operator's protection away by itself.
    pub fn safety(self, settings: &RepoSettings, accepted: Option<&SafetySettings>) -> Safety {
        let effective = self.settings_in_effect(settings, accepted);
        Safety {
            allow_destroy: self.allow_destroy || effective.allow_destroy,
            force: self.force,
            max_delete_percent: effective.max_delete_percent,
        }
    }

    /// The repository's safety settings in effect for this apply (and recorded by it): as
    /// written with `--allow-destroy`, otherwise no more than `accepted`.
    pub fn settings_in_effect(
        self,
        settings: &RepoSettings,
        accepted: Option<&SafetySettings>,
    ) -> SafetySettings {
        let written = repository_safety(settings);
        if self.allow_destroy {
            written
        } else {
            written.stricter(&accepted.copied().unwrap_or_default())
        }
    }
}

/// The safety settings a repository's settings file writes.
pub fn repository_safety(settings: &RepoSettings) -> SafetySettings {
    SafetySettings {
        allow_destroy: settings.allow_destroy,
        max_delete_percent: settings.max_delete_percent,
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
    /// The safety settings an apply under `overrides` would record although the plan has no
    /// change: a raise the operator accepts with `--allow-destroy`, or a lowering, in an
    /// existing state (`None`: nothing to record).
    pub fn settings_to_record(&self, overrides: Overrides) -> Option<SafetySettings> {
        let prepared = &self.prepared;
        let state = &prepared.state;
        let in_effect =
            overrides.settings_in_effect(&prepared.desired().settings, state.safety.as_ref());
        (prepared.exists && state.safety.unwrap_or_default() != in_effect).then_some(in_effect)
    }

    /// The reasons the plan must not be carried out (empty: go ahead): objects the tenant
    /// refuses, destruction not allowed, a mass deletion without `--force`.
    pub fn refusals(&self, overrides: Overrides) -> Vec<Refusal> {
        let prepared = &self.prepared;
        let safety = overrides.safety(&prepared.desired().settings, prepared.state.safety.as_ref());
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
        // Record the safety settings this apply ran under once it succeeded: a raise accepted
        // with --allow-destroy, or a lowering, holds from now on.
        let in_effect = overrides
            .settings_in_effect(&prepared.desired().settings, recorder.state().safety.as_ref());
        if outcome.is_success() && recorder.state().safety != Some(in_effect) {
            recorder.record(Record::Safety { settings: in_effect }).await?;
            recorder.finish().await?;
        }
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
        let accepted = SafetySettings { allow_destroy: true, max_delete_percent: 40 };
        assert_eq!(
            none.safety(&settings(false), Some(&accepted)),
            Safety { allow_destroy: false, force: false, max_delete_percent: 40 }
        );
        assert!(none.safety(&settings(true), Some(&accepted)).allow_destroy);
        assert_eq!(
            both.safety(&settings(false), None),
            Safety { allow_destroy: true, force: true, max_delete_percent: 40 }
        );
    }

    #[test]
    fn raised_repository_settings_count_only_once_the_operator_accepted_them() {
        let raised = RepoSettings {
            allow_destroy: true,
            max_delete_percent: 100,
            ..RepoSettings::default()
        };
        // Never accepted (a state without settings, or a new one): the defaults hold.
        let none = Overrides::default();
        assert_eq!(
            none.safety(&raised, None),
            Safety { allow_destroy: false, force: false, max_delete_percent: 25 }
        );
        // Accepted lower values hold too.
        let accepted = SafetySettings { allow_destroy: false, max_delete_percent: 30 };
        assert_eq!(none.safety(&raised, Some(&accepted)).max_delete_percent, 30);
        // --allow-destroy accepts them (and the apply records them).
        let operator = Overrides { allow_destroy: true, force: false };
        assert_eq!(operator.safety(&raised, None).max_delete_percent, 100);
        assert_eq!(
            operator.settings_in_effect(&raised, None),
            SafetySettings { allow_destroy: true, max_delete_percent: 100 }
        );
        // Lowering needs nobody's consent.
        let lowered = RepoSettings { max_delete_percent: 10, ..RepoSettings::default() };
        assert_eq!(none.settings_in_effect(&lowered, Some(&accepted)).max_delete_percent, 10);
    }
}
