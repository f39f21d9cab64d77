//! The long-lived reconciler: one loop over a closed set of triggers.
//!
//! - [`trigger`]: everything that can wake the loop.
//! - [`status`]: what the loop reports (served at `/status` and `/readyz`).
//!
//! [`run`] owns the loop. There is exactly one `select!` that dispatches work: the poll timer
//! (with jitter), the drift timer, and a channel that the webhook receiver, the directory
//! watcher and the signal handlers feed. Bursts coalesce (everything queued is drained into one
//! pass), one reconcile runs at a time, and a source change goes ahead of a drift check.
//!
//! Failure policy: a source error or an invalid spec tree never reads as "empty". The last good
//! revision stays applied, the daemon is marked degraded with the reason, and the next trigger
//! tries again. Drift found by the drift timer is reported; it is re-applied only with
//! self-heal, and then with an exponential backoff so a flapping object cannot hammer the
//! tenant. Each problem is kept by its cause ([`status::Problem`]) and cleared by the step that
//! proves it gone: a source that is readable again (even at the same revision) clears a source
//! error, a successful reconcile clears a bad revision.
//!
//! Cancellation (SIGTERM): reads change nothing, so a Git fetch or a tenant read in progress is
//! abandoned at once; writes in flight finish and are journaled, then the loop stops.

pub mod status;
pub mod trigger;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::status::{Problem, ReconcileRecord, Status, StatusHandle};
pub use self::trigger::Trigger;
use crate::apply::{ObjectResult, Progress, Status as ApplyStatus};
use crate::live::Client;
use crate::pipeline::{
    self, ApplyOptions, Error as PipelineError, Inputs, Overrides, Planned, Specs,
};
use crate::plan::{self, Action, Observed, Plan};
use crate::server::{self, Metrics, ServerState, WebhookConfig};
use crate::snapshot::Snapshot;
use crate::source::remote::{GitSource, GitSourceConfig};
use crate::source::{self, dir};
use crate::spec::{self, Kind, LoadOptions};
use crate::state::file;

/// Where the specs come from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// A Git repository, fetched shallowly into a bare cache.
    Git(GitSourceConfig),
    /// A local directory, watched.
    Dir(PathBuf),
}

/// Whether the daemon applies or only plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plan and apply.
    Apply,
    /// Plan and report; never write to the tenant.
    PlanOnly,
}

/// The daemon's resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The source.
    pub source: SourceConfig,
    /// Apply or plan only.
    pub mode: Mode,
    /// Poll interval (a random jitter of up to a tenth is added).
    pub interval: Duration,
    /// Drift check interval (`None`: no drift checks).
    pub drift_interval: Option<Duration>,
    /// Re-apply drift found by the drift check.
    pub self_heal: bool,
    /// Allow destructive changes (also allowed by `allowDestroy: true` in the repository).
    pub allow_destroy: bool,
    /// Allow mass deletions.
    pub force: bool,
    /// Treat spec warnings as errors.
    pub strict: bool,
    /// Requests in flight at once.
    pub parallelism: usize,
    /// The state file.
    pub state_path: PathBuf,
    /// The tenant label recorded in the state (`sandbox` or the URL).
    pub tenant: String,
    /// Directory for `${file:PATH}`.
    pub secrets_dir: PathBuf,
    /// Quiet time that ends a burst of file events (directory mode).
    pub debounce: Duration,
    /// Periodic rescan of a watched directory, as a safety net for missed events.
    pub rescan_every: Duration,
}

/// Daemon errors (a failing reconcile is not one: it degrades the daemon and is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the state lock: a second reconciler on the same state.
    #[error(
        "another immuta-gitops process ({holder}) holds the lock `{lock}`: a second reconciler \
         on the same state is refused; stop the other one, or give this one its own --state-dir"
    )]
    Locked {
        /// The lock file.
        lock: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// The state lock cannot be taken.
    #[error(transparent)]
    Lock(file::Error),
    /// The directory watcher cannot start.
    #[error(transparent)]
    Source(#[from] source::Error),
    /// The HTTP server failed.
    #[error(transparent)]
    Server(#[from] server::Error),
}

/// The first self-heal backoff; it doubles after each consecutive heal, up to [`HEAL_MAX`].
pub const HEAL_MIN: Duration = Duration::from_secs(30);
/// The longest self-heal backoff.
pub const HEAL_MAX: Duration = Duration::from_secs(3600);

/// Shared handles of a running daemon.
#[derive(Clone)]
pub struct Handles {
    /// The Immuta client (reporting to the metrics).
    pub client: Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Status.
    pub status: StatusHandle,
}

enum Source {
    Git(GitSource),
    Dir(PathBuf),
}

impl Source {
    fn describe(config: &SourceConfig) -> String {
        match config {
            SourceConfig::Git(g) => {
                let path = if g.sub_path.is_empty() {
                    String::new()
                } else {
                    format!(" path {}", g.sub_path)
                };
                format!("{} ({}){path}", source::remote::redact_url(&g.url), g.reference)
            }
            SourceConfig::Dir(p) => format!("directory {}", p.display()),
        }
    }

    async fn fetch(&self, last: Option<&str>) -> Result<Option<Snapshot>, source::Error> {
        match self {
            Source::Git(g) => g.fetch(last).await,
            Source::Dir(root) => {
                let root = root.clone();
                let snapshot = tokio::task::spawn_blocking(move || {
                    dir::read(
                        &root,
                        &dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() },
                    )
                })
                .await
                .map_err(|e| source::Error::Io {
                    path: "watched directory".into(),
                    source: std::io::Error::other(e),
                })??;
                Ok((last != Some(snapshot.revision.as_str())).then_some(snapshot))
            }
        }
    }
}

/// Whether a revision needs no new reconcile: it was reconciled and the result cannot change
/// without a new revision (invalid specs stay invalid; failures are retried).
fn settled(outcome: &str) -> bool {
    matches!(outcome, "applied" | "no_changes" | "planned" | "invalid" | "refused")
}

/// What one coalesced wake-up must do.
#[derive(Debug, Default)]
struct Work {
    source: Option<&'static str>,
    force: bool,
    drift: bool,
}

impl Work {
    fn add(&mut self, t: &Trigger) {
        if t.is_source_change() {
            // Keep the first name: it is what woke the loop.
            self.source.get_or_insert(t.name());
        }
        self.force |= matches!(t, Trigger::Reload);
        self.drift |= matches!(t, Trigger::DriftCheck);
    }
}

struct Daemon {
    config: Config,
    source: Source,
    handles: Handles,
    cancel: CancellationToken,
    /// The last valid snapshot (the drift check plans against it).
    last_good: Option<Snapshot>,
    /// The last revision reconciled and how it ended.
    last_done: Option<(String, &'static str)>,
    /// Self-heal backoff.
    heal_delay: Duration,
    heal_after: Option<Instant>,
}

/// Runs the reconciler until `cancel` fires (or the trigger channel closes). Serves the HTTP
/// endpoints on `listener` when one is given; the webhook feeds `triggers_tx`.
pub async fn run(
    config: Config,
    handles: Handles,
    listener: Option<tokio::net::TcpListener>,
    webhook: WebhookConfig,
    triggers_tx: mpsc::Sender<Trigger>,
    mut triggers: mpsc::Receiver<Trigger>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let _lock = file::Lock::acquire(&config.state_path).map_err(|e| match e {
        file::Error::Locked { lock, holder, .. } => Error::Locked { lock, holder },
        e => Error::Lock(e),
    })?;
    let description = Source::describe(&config.source);
    handles.status.update(|s| {
        s.mode = match config.mode {
            Mode::Apply => "apply".into(),
            Mode::PlanOnly => "plan-only".into(),
        };
        s.source = description.clone();
    });
    let server = match listener {
        Some(listener) => {
            let state = ServerState {
                metrics: handles.metrics.clone(),
                status: handles.status.clone(),
                triggers: triggers_tx.clone(),
                webhook: Arc::new(webhook),
            };
            let stop = cancel.clone();
            Some(tokio::spawn(server::serve(
                listener,
                state,
                async move { stop.cancelled().await },
            )))
        }
        None => None,
    };
    let (source, _watch) = match &config.source {
        SourceConfig::Git(g) => (Source::Git(GitSource::new(g.clone())), None),
        SourceConfig::Dir(root) => {
            let (watch, mut dirty) =
                source::watch::watcher(root.clone(), config.debounce, config.rescan_every)?;
            let tx = triggers_tx.clone();
            tokio::spawn(async move {
                while dirty.recv().await.is_some() {
                    // A full queue already holds a pending reconcile: this change coalesces.
                    let _ = tx.try_send(Trigger::FilesChanged);
                }
            });
            (Source::Dir(root.clone()), Some(watch))
        }
    };
    drop(triggers_tx);
    tracing::info!(source = %description, mode = ?config.mode, "reconciler started");
    let mut daemon = Daemon {
        config,
        source,
        handles,
        cancel: cancel.clone(),
        last_good: None,
        last_done: None,
        heal_delay: HEAL_MIN,
        heal_after: None,
    };
    let mut next_poll = Instant::now();
    let mut next_drift = daemon.config.drift_interval.map(|d| Instant::now() + d);
    loop {
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            t = triggers.recv() => match t {
                Some(Trigger::Shutdown) | None => break,
                Some(t) => t,
            },
            () = tokio::time::sleep_until(next_poll) => Trigger::Poll,
            () = sleep_until_opt(next_drift) => Trigger::DriftCheck,
        };
        let mut work = Work::default();
        work.add(&first);
        let mut stop = false;
        while let Ok(t) = triggers.try_recv() {
            if t == Trigger::Shutdown {
                stop = true;
            }
            work.add(&t);
        }
        if stop {
            break;
        }
        if let Some(name) = work.source {
            daemon.source_pass(name, work.force).await;
            next_poll = Instant::now() + jittered(daemon.config.interval);
        }
        if cancel.is_cancelled() {
            break;
        }
        if work.drift || next_drift.is_some_and(|d| Instant::now() >= d) {
            daemon.drift_pass().await;
            next_drift = daemon.config.drift_interval.map(|d| Instant::now() + d);
        }
    }
    tracing::info!("reconciler stopped");
    cancel.cancel();
    if let Some(server) = server {
        match server.await {
            Ok(result) => result?,
            Err(e) => tracing::warn!("the HTTP server task ended abnormally: {e}"),
        }
    }
    Ok(())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `interval` plus a random jitter of up to a tenth, so replicas and restarts spread out.
fn jittered(interval: Duration) -> Duration {
    let max = interval.as_millis() / 10;
    let extra =
        if max == 0 { 0 } else { rand::random::<u64>() % u64::try_from(max).unwrap_or(u64::MAX) };
    interval + Duration::from_millis(extra)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The outcome of a pass abandoned by shutdown while it was only reading (never recorded).
const CANCELLED: &str = "cancelled";

/// What a reconcile ended with.
struct Ended {
    outcome: &'static str,
    changes: usize,
    message: Option<String>,
    /// Why the daemon is degraded after this pass (`None`: nothing is wrong as far as it saw).
    problem: Option<String>,
}

impl Ended {
    fn ok(outcome: &'static str, changes: usize, message: Option<String>) -> Ended {
        Ended { outcome, changes, message, problem: None }
    }

    /// An unsuccessful pass: `message` for the history, `problem` for `degraded`.
    fn problem(outcome: &'static str, changes: usize, message: String, problem: String) -> Ended {
        Ended { outcome, changes, message: Some(message), problem: Some(problem) }
    }

    fn cancelled() -> Ended {
        Ended::ok(CANCELLED, 0, None)
    }
}

impl Daemon {
    fn record(
        &self,
        trigger: &'static str,
        revision: Option<String>,
        started: (String, Instant),
        ended: &Ended,
    ) {
        let took = started.1.elapsed();
        self.handles.metrics.reconcile(ended.outcome, took);
        let record = ReconcileRecord {
            trigger,
            revision,
            started_at: started.0,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            outcome: ended.outcome,
            changes: ended.changes,
            message: ended.message.clone(),
        };
        match ended.outcome {
            "failed" | "invalid" | "refused" | "source_error" => {
                tracing::warn!(trigger, outcome = ended.outcome, message = ?ended.message, "reconcile did not complete");
            }
            _ => tracing::info!(
                trigger,
                outcome = ended.outcome,
                changes = ended.changes,
                "reconciled"
            ),
        }
        self.handles.status.update(|s| s.record(record));
    }

    async fn source_pass(&mut self, trigger: &'static str, force: bool) {
        let started = (now_rfc3339(), Instant::now());
        let last = match &self.last_done {
            Some((rev, outcome)) if !force && settled(outcome) => Some(rev.clone()),
            _ => None,
        };
        // A fetch only reads: on shutdown it is abandoned rather than waited for.
        let fetched = tokio::select! {
            biased;
            () = self.cancel.cancelled() => {
                tracing::info!("shutdown: abandoned reading the source (nothing was changed)");
                return;
            }
            fetched = self.source.fetch(last.as_deref()) => fetched,
        };
        let snapshot = match fetched {
            Ok(Some(s)) => s,
            Ok(None) => {
                // Unchanged revision: nothing to reconcile, but a source error is over.
                if self.handles.status.snapshot().has_problem(Problem::Source) {
                    self.handles.status.update(|s| s.problem(Problem::Source, None));
                    let message = format!(
                        "the source is readable again; revision {} is unchanged",
                        last.as_deref().map(short).unwrap_or_default()
                    );
                    self.record(
                        trigger,
                        last,
                        started,
                        &Ended::ok("unchanged_revision", 0, Some(message)),
                    );
                }
                return;
            }
            Err(e) => {
                let good = self.handles.status.snapshot().applied_revision;
                let message = format!(
                    "cannot read the source: {e}; nothing was changed{}",
                    good.map(|r| format!(" (revision {r} stays applied)")).unwrap_or_default()
                );
                self.handles.status.update(|s| s.problem(Problem::Source, Some(message.clone())));
                let ended = Ended::problem("source_error", 0, message.clone(), message);
                self.record(trigger, None, started, &ended);
                return;
            }
        };
        let revision = snapshot.revision.clone();
        self.handles.status.update(|s| {
            s.source_revision = Some(revision.clone());
            s.problem(Problem::Source, None);
        });
        let ended = self.reconcile(&snapshot, false, None).await;
        if ended.outcome == CANCELLED {
            tracing::info!("shutdown: abandoned reading the tenant (nothing was written)");
            return;
        }
        self.handles.status.update(|s| {
            if ended.problem.is_none() {
                // The tenant was read and matches (or was made to match) this revision.
                s.problem(Problem::Drift, None);
            }
            s.problem(Problem::Revision, ended.problem.clone());
        });
        if ended.outcome != "invalid" {
            self.last_good = Some(snapshot);
        }
        self.last_done = Some((revision.clone(), ended.outcome));
        self.record(trigger, Some(revision), started, &ended);
    }

    async fn drift_pass(&mut self) {
        let Some(snapshot) = self.last_good.clone() else { return };
        let started = (now_rfc3339(), Instant::now());
        let heal = self.config.self_heal
            && self.config.mode == Mode::Apply
            && self.heal_after.is_none_or(|t| Instant::now() >= t);
        let ended = self.reconcile(&snapshot, true, Some(heal)).await;
        if ended.outcome == CANCELLED {
            tracing::info!("shutdown: abandoned the drift check (nothing was written)");
            return;
        }
        self.handles.status.update(|s| s.problem(Problem::Drift, ended.problem.clone()));
        if ended.outcome == "applied" {
            // Healed: the next heal waits longer, so a flapping object cannot hammer the tenant.
            self.heal_after = Some(Instant::now() + self.heal_delay);
            self.heal_delay = (self.heal_delay * 2).min(HEAL_MAX);
        } else if ended.outcome == "no_changes" {
            self.heal_delay = HEAL_MIN;
            self.heal_after = None;
        }
        self.record("drift", Some(snapshot.revision.clone()), started, &ended);
    }

    /// One pass: load, plan, and apply (or only report). `drift` = `Some(heal)` for a drift
    /// check (plan with every dry run; apply only when `heal`).
    async fn reconcile(&self, snapshot: &Snapshot, refresh: bool, drift: Option<bool>) -> Ended {
        match self.try_reconcile(snapshot, refresh, drift).await {
            Ok(ended) => ended,
            Err(e) => {
                let outcome = match e {
                    PipelineError::Specs { .. } => "invalid",
                    _ => "failed",
                };
                let message = match &e {
                    PipelineError::Specs { .. } => format!(
                        "revision {} is not valid: {e}; nothing was applied and the last good revision stays applied",
                        short(&snapshot.revision)
                    ),
                    _ => format!("{e}"),
                };
                if let PipelineError::Specs { diagnostics, .. } = &e {
                    for d in diagnostics.iter().filter(|d| d.is_error()) {
                        tracing::warn!(revision = %snapshot.revision, "{d}");
                    }
                }
                Ended::problem(outcome, 0, message.clone(), message)
            }
        }
    }

    async fn try_reconcile(
        &self,
        snapshot: &Snapshot,
        refresh: bool,
        drift: Option<bool>,
    ) -> pipeline::Result<Ended> {
        let c = &self.config;
        let inputs = Inputs {
            options: LoadOptions { strict: c.strict, ..LoadOptions::with_env(env_names()) },
            secrets_dir: c.secrets_dir.clone(),
        };
        let specs = Specs::load(snapshot, &inputs);
        let prepared = specs.prepare(&c.state_path, &c.tenant)?;
        // Listings and dry runs only read: on shutdown they are abandoned, not waited for.
        let planned = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Ok(Ended::cancelled()),
            planned = prepared.plan(&self.handles.client, refresh, c.parallelism) => planned?,
        };
        self.license_metrics(&planned.observed);
        let plan = &planned.plan;
        let summary = plan.summary();
        let changes =
            summary.create + summary.update + summary.delete + summary.replace + summary.adopt;
        self.handles.status.update(|s| {
            s.last_plan = Some(status::PlanSummary {
                revision: snapshot.revision.clone(),
                summary: plan.summary_line(),
                create: summary.create,
                update: summary.update,
                delete: summary.delete,
                effects: summary.effects,
            });
        });
        if let Some(heal) = drift {
            let items = drift_items(plan);
            for kind in Kind::ALL {
                let n = plan
                    .changes
                    .iter()
                    .filter(|ch| ch.id.kind == kind && ch.action != Action::NoOp)
                    .count();
                self.handles.metrics.drift(kind, i64::try_from(n).unwrap_or(i64::MAX));
            }
            self.handles.status.update(|s| s.drift = items.clone());
            if items.is_empty() {
                return Ok(Ended::ok("no_changes", 0, None));
            }
            if !heal {
                let message = format!("drift: {}", items.join(", "));
                return Ok(Ended::ok("drift", changes, Some(message)));
            }
        }
        if !plan.errors.is_empty() {
            let message = plan
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.object, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let problem = format!("the tenant refuses the specs: {message}");
            return Ok(Ended::problem("refused", changes, message, problem));
        }
        let overrides = Overrides { allow_destroy: c.allow_destroy, force: c.force };
        let refusals = planned.refusals(overrides);
        if !refusals.is_empty() {
            let message = refusals
                .iter()
                .map(|r| format!("{} ({})", r.message, r.hint))
                .collect::<Vec<_>>()
                .join("; ");
            let problem = format!("refusing to apply: {message}");
            return Ok(Ended::problem("refused", changes, message, problem));
        }
        if !plan.has_changes() {
            self.succeeded(&snapshot.revision);
            return Ok(Ended::ok("no_changes", 0, None));
        }
        if c.mode == Mode::PlanOnly {
            self.handles.status.update(|s| s.ready = true);
            return Ok(Ended::ok("planned", changes, Some(plan.summary_line())));
        }
        self.apply(&planned, overrides, snapshot).await
    }

    async fn apply(
        &self,
        planned: &Planned<'_>,
        overrides: Overrides,
        snapshot: &Snapshot,
    ) -> pipeline::Result<Ended> {
        let options = ApplyOptions {
            parallelism: self.config.parallelism,
            cancel: self.cancel.clone(),
            wait: None,
        };
        let progress = Counting(&self.handles.metrics);
        let outcome = planned.apply(overrides, &self.handles.client, &options, &progress).await?;
        let changes = outcome.writes();
        if outcome.is_success() {
            self.succeeded(&snapshot.revision);
            return Ok(Ended::ok("applied", changes, Some(planned.plan.summary_line())));
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
        Ok(Ended::problem("failed", changes, message.clone(), message))
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
            let now = SystemTime::now();
            let days = inv
                .licenses
                .iter()
                .flatten()
                .filter_map(|l| l.expires.as_deref().and_then(|e| plan::days_until(e, now)))
                .max();
            self.handles.metrics.license(status.active_users, status.seats, days);
        }
    }
}

/// Objects that differ from the last applied state, as `action object` strings.
fn drift_items(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::NoOp && c.blocked.is_none())
        .map(|c| format!("{} {}", c.action.verb(), c.id))
        .collect()
}

/// Counts applied changes in the metrics.
struct Counting<'a>(&'a Metrics);

impl Progress for Counting<'_> {
    fn done(&self, result: &ObjectResult) {
        if matches!(
            result.status,
            ApplyStatus::Applied
                | ApplyStatus::Deleted
                | ApplyStatus::Adopted
                | ApplyStatus::Forgotten
        ) {
            self.0.change(result.id.kind, result.action);
        }
    }
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

fn env_names() -> impl Iterator<Item = String> {
    std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_coalesce_and_source_changes_keep_the_first_name() {
        let mut w = Work::default();
        for t in [
            Trigger::DriftCheck,
            Trigger::Webhook { delivery: None, revision: None },
            Trigger::Poll,
            Trigger::FilesChanged,
        ] {
            w.add(&t);
        }
        assert_eq!(w.source, Some("webhook"));
        assert!(w.drift);
        assert!(!w.force);
        w.add(&Trigger::Reload);
        assert!(w.force);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(60));
            assert!(j >= Duration::from_secs(60) && j <= Duration::from_secs(66), "{j:?}");
        }
    }

    #[test]
    fn only_retryable_outcomes_are_reconciled_again_for_the_same_revision() {
        assert!(settled("applied") && settled("invalid") && settled("refused"));
        assert!(!settled("failed") && !settled("source_error"));
    }
}
