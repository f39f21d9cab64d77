//! One reconcile pass: the pipeline's stages, and what the daemon reports about them (status,
//! metrics). The loop decides when a pass runs and what it means for the next one; the pass
//! decides nothing about time.
//!
//! A source pass plans with the dry runs of changed objects and applies (or only reports in
//! plan-only mode). A drift pass plans with every dry run against the last good revision, and
//! applies only when healing. Either ends in a [`Reconciled`]: an [`Outcome`] and, when the
//! pass did not complete, the problem that degrades the daemon.

use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::outcome::Outcome;
use super::status::PlanSummary;
use super::{Config, Handles, Mode, short};
use crate::apply::{ObjectResult, Progress, Status as ApplyStatus};
use crate::live;
use crate::metrics::Metrics;
use crate::pipeline::{self, ApplyOptions, Inputs, Planned, Specs};
use crate::plan::observed::{LicenseStatus, LiveLicense};
use crate::plan::{self, Action, Change, Observed, Plan};
use crate::secret_store;
use crate::snapshot::Snapshot;
use crate::spec::{Kind, LoadOptions};

/// Which pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A new revision (or a forced one): plan changed objects, apply.
    Source,
    /// A drift check of the last good revision: plan every object; apply only with `heal`.
    Drift {
        /// Self-heal is on and not backing off.
        heal: bool,
    },
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The outcome.
    pub outcome: Outcome,
    /// Changes planned (or written, after an apply).
    pub changes: usize,
    /// Details for the history.
    pub message: Option<String>,
    /// Why the daemon is degraded after this pass (`None`: nothing is wrong as far as it saw).
    pub problem: Option<String>,
    /// The objects the pass changed, or would change (`create purpose "Fraud"`), for the log.
    pub objects: Vec<String>,
}

impl Reconciled {
    pub(super) fn ok(outcome: Outcome, changes: usize, message: Option<String>) -> Reconciled {
        Reconciled { outcome, changes, message, problem: None, objects: Vec::new() }
    }

    /// The same, naming the objects it changed or would change.
    fn with_objects(mut self, objects: Vec<String>) -> Reconciled {
        self.objects = objects;
        self
    }

    /// An unsuccessful pass: `message` for the history, `problem` for `degraded`.
    pub(super) fn problem(
        outcome: Outcome,
        changes: usize,
        message: String,
        problem: String,
    ) -> Reconciled {
        Reconciled {
            outcome,
            changes,
            message: Some(message),
            problem: Some(problem),
            objects: Vec::new(),
        }
    }

    /// A plan that must not be applied: the `reasons` joined for the history, and `why` before
    /// them for `degraded`.
    fn refused(changes: usize, reasons: impl Iterator<Item = String>, why: &str) -> Reconciled {
        let message = reasons.collect::<Vec<_>>().join("; ");
        let problem = format!("{why}: {message}");
        Reconciled::problem(Outcome::Refused, changes, message, problem)
    }

    fn cancelled() -> Reconciled {
        Reconciled::ok(Outcome::Cancelled, 0, None)
    }
}

/// What a pass works with: the configuration and the shared handles (never the loop's state).
/// `cancel` is cancelled by shutdown and by the loss of the writer lock.
pub(super) struct Context<'a> {
    pub config: &'a Config,
    pub handles: &'a Handles,
    pub cancel: &'a CancellationToken,
}

impl Context<'_> {
    /// One pass over `snapshot`. Never fails: an error is an outcome.
    pub async fn reconcile(&self, snapshot: &Snapshot, pass: Pass) -> Reconciled {
        match self.try_reconcile(snapshot, pass).await {
            Ok(reconciled) => reconciled,
            Err(e) => {
                let outcome = outcome_of(&e);
                let message = match &e {
                    pipeline::Error::Specs { diagnostics, .. } => {
                        for d in diagnostics.iter().filter(|d| d.is_error()) {
                            tracing::warn!(revision = %snapshot.revision, "{d}");
                        }
                        format!(
                            "revision {} is not valid: {e}; nothing was applied and the last good revision stays applied",
                            short(&snapshot.revision)
                        )
                    }
                    _ => crate::diagnostic::chain(&e),
                };
                Reconciled::problem(outcome, 0, message.clone(), message)
            }
        }
    }

    async fn try_reconcile(&self, snapshot: &Snapshot, pass: Pass) -> pipeline::Result<Reconciled> {
        let c = self.config;
        let inputs = Inputs {
            options: LoadOptions {
                strict: c.strict,
                ..LoadOptions::with_env(secret_store::env_names())
            },
            secrets_dir: c.secrets_dir.clone(),
        };
        let specs = Specs::load(snapshot, &inputs);
        let prepared = specs.prepare(&*c.store, &c.tenant, &c.keys).await?;
        let refresh = matches!(pass, Pass::Drift { .. });
        // Listings and dry runs only read: on shutdown they are abandoned, not waited for.
        let planned = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Ok(Reconciled::cancelled()),
            planned = prepared.plan(&self.handles.client, refresh, c.parallelism) => planned?,
        };
        self.license_metrics(&planned.observed);
        let plan = &planned.plan;
        let summary = plan.summary();
        let changes =
            summary.create + summary.update + summary.delete + summary.replace + summary.adopt;
        self.handles.status.update(|s| {
            s.last_plan = Some(PlanSummary {
                revision: snapshot.revision.clone(),
                summary: plan.summary_line(),
                create: summary.create,
                update: summary.update,
                delete: summary.delete,
                effects: summary.effects,
            });
        });
        if let Pass::Drift { heal } = pass {
            let drifted: Vec<&Change> = drifted(plan).collect();
            for kind in Kind::ALL {
                let n = drifted.iter().filter(|c| c.id.kind == kind).count();
                self.handles.metrics.drift(kind, i64::try_from(n).unwrap_or(i64::MAX));
            }
            let items: Vec<String> =
                drifted.iter().map(|c| format!("{} {}", c.action.verb(), c.id)).collect();
            self.handles.status.update(|s| s.drift = items.clone());
            if items.is_empty() {
                return Ok(Reconciled::ok(Outcome::NoChanges, 0, None));
            }
            if !heal {
                let message = format!("drift: {}", items.join(", "));
                return Ok(
                    Reconciled::ok(Outcome::Drift, changes, Some(message)).with_objects(items)
                );
            }
        }
        if !plan.errors.is_empty() {
            let rejected = plan.errors.iter().map(|e| format!("{}: {}", e.object, e.message));
            return Ok(Reconciled::refused(changes, rejected, "the tenant refuses the specs"));
        }
        let refusals = planned.refusals(c.overrides);
        if !refusals.is_empty() {
            let reasons = refusals.iter().map(|r| format!("{} ({})", r.message, r.hint));
            return Ok(Reconciled::refused(changes, reasons, "refusing to apply"));
        }
        let migrating = c.mode == Mode::Apply && planned.prepared.needs_recording();
        if !plan.has_changes() && !migrating {
            self.succeeded(&snapshot.revision);
            return Ok(Reconciled::ok(Outcome::NoChanges, 0, None));
        }
        if c.mode == Mode::PlanOnly {
            self.handles.status.update(|s| s.ready = true);
            let planned_objects = plan
                .changes
                .iter()
                .filter(|c| c.action != Action::NoOp)
                .map(|c| format!("{} {}", c.action.verb(), c.id))
                .collect();
            return Ok(Reconciled::ok(Outcome::Planned, changes, Some(plan.summary_line()))
                .with_objects(planned_objects));
        }
        self.apply(&planned, snapshot).await
    }

    async fn apply(
        &self,
        planned: &Planned<'_>,
        snapshot: &Snapshot,
    ) -> pipeline::Result<Reconciled> {
        let options = ApplyOptions {
            parallelism: self.config.parallelism,
            cancel: self.cancel.clone(),
            ..ApplyOptions::default()
        };
        let progress = Counting(&self.handles.metrics);
        let outcome =
            planned.apply(self.config.overrides, &self.handles.client, &options, &progress).await?;
        let changes = outcome.writes();
        let done: Vec<&ObjectResult> =
            outcome.results.iter().filter(|r| r.status.is_done()).collect();
        if done.iter().any(|r| r.id.kind == Kind::License) {
            // Seats and expiry changed: refresh the license metrics now, not at the next
            // drift check.
            self.refresh_license_metrics().await;
        }
        let objects = done.iter().map(|r| format!("{} {}", r.action.verb(), r.id)).collect();
        if outcome.is_success() {
            self.succeeded(&snapshot.revision);
            return Ok(Reconciled::ok(
                Outcome::Applied,
                changes,
                Some(planned.plan.summary_line()),
            )
            .with_objects(objects));
        }
        let failures: Vec<String> = outcome
            .results
            .iter()
            .filter_map(|r| match &r.status {
                ApplyStatus::Failed(m) => Some(format!("{}: {m}", r.id)),
                _ => None,
            })
            .collect();
        let message = if outcome.cancelled {
            format!("stopped by shutdown after {changes} write(s); the next run resumes")
        } else {
            format!(
                "apply incomplete: {} failed, {} skipped; {}",
                outcome.failed(),
                outcome.skipped(),
                failures.join("; ")
            )
        };
        Ok(Reconciled::problem(Outcome::Failed, changes, message.clone(), message)
            .with_objects(objects))
    }

    fn succeeded(&self, revision: &str) {
        self.handles.metrics.success_at(unix_now());
        self.handles.metrics.applied_revision(revision);
        self.handles.status.update(|s| {
            s.ready = true;
            s.applied_revision = Some(revision.to_owned());
        });
    }

    fn license_metrics(&self, observed: &Observed) {
        let inv = &observed.inventory;
        if let Some(status) = &inv.license_status {
            self.record_licenses(inv.licenses.as_deref().unwrap_or_default(), status);
        }
    }

    /// Reads the licenses again (after an apply that changed one) for the metrics. A failure
    /// only leaves the metrics as they were: the next read updates them.
    async fn refresh_license_metrics(&self) {
        match live::read_licenses(&self.handles.client).await {
            Ok((licenses, Some(status))) => self.record_licenses(&licenses, &status),
            Ok((_, None)) => {}
            Err(e) => tracing::debug!(error = %e, "cannot refresh the license metrics"),
        }
    }

    fn record_licenses(&self, licenses: &[LiveLicense], status: &LicenseStatus) {
        let expires_at = licenses
            .iter()
            .filter_map(|l| l.expires.as_deref().and_then(expiry_unix_seconds))
            .max();
        self.handles.metrics.license(status.active_users, status.seats, expires_at);
    }
}

/// A license's expiry (`2027-01-31` or an RFC 3339 time) in unix seconds: the same reading as
/// the license warnings ([`plan::days_until`]), at second precision.
fn expiry_unix_seconds(expires: &str) -> Option<i64> {
    let days = plan::days_until(expires, SystemTime::UNIX_EPOCH)?;
    let text =
        if expires.len() == 10 { format!("{expires}T00:00:00Z") } else { expires.to_owned() };
    match humantime::parse_rfc3339_weak(text.trim_end_matches('Z')) {
        Ok(at) => at
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok()),
        Err(_) => Some(days * 86_400),
    }
}

/// The outcome of a pass the pipeline stopped: invalid specs and refusals stay so until the
/// revision changes; everything else is retried.
fn outcome_of(e: &pipeline::Error) -> Outcome {
    match e {
        pipeline::Error::Specs { .. } => Outcome::Invalid,
        pipeline::Error::Refused { .. } => Outcome::Refused,
        pipeline::Error::Secret { .. }
        | pipeline::Error::Live(_)
        | pipeline::Error::State(_)
        | pipeline::Error::Key(_)
        | pipeline::Error::KeyMismatch { .. }
        | pipeline::Error::KeyMissing { .. }
        | pipeline::Error::TenantMismatch { .. }
        | pipeline::Error::Apply(_) => Outcome::Failed,
    }
}

/// The changes a drift check reports, counted the same way in `/status` and in the
/// `drift_items` metric: objects that differ from the last applied state. Blocked changes
/// (`prune: false`) are not drift: they are left alone on purpose.
fn drifted(plan: &Plan) -> impl Iterator<Item = &Change> {
    plan.changes.iter().filter(|c| c.action != Action::NoOp && c.blocked.is_none())
}

/// Counts the objects done in the `changes_total` metric.
struct Counting<'a>(&'a Metrics);

impl Progress for Counting<'_> {
    fn done(&self, result: &ObjectResult) {
        if result.status.is_done() {
            self.0.change(result.id.kind, result.action);
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_expiry_is_read_in_unix_seconds() {
        assert_eq!(expiry_unix_seconds("1970-01-02"), Some(86_400));
        assert_eq!(expiry_unix_seconds("2027-01-31T12:00:00Z"), Some(1_801_396_800));
        assert_eq!(expiry_unix_seconds("never"), None);
    }
}
