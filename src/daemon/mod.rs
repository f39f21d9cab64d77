//! The long-lived reconciler: one loop over a closed set of triggers.
//!
//! - [`trigger`]: everything that can wake the loop.
//! - [`reconcile`]: one pass (the pipeline's stages, plus status and metrics).
//! - [`outcome`]: how a pass ended, and whether the same revision is tried again.
//! - [`heal`]: the self-heal backoff.
//! - [`status`]: what the loop reports (served at `/status` and `/readyz`).
//!
//! [`Daemon::run`] owns the loop. There is exactly one `select!` that dispatches work: the poll
//! timer (with jitter), the drift timer, the followed directory's change signal, and a channel
//! that the webhook receiver and SIGHUP feed. Bursts coalesce (everything queued is drained into
//! one pass), one reconcile runs at a time, and a source change goes ahead of a drift check.
//!
//! The daemon does not know the HTTP server: `cli/run.rs` runs the two side by side, the server
//! sending [`Trigger`]s and reading the [`StatusHandle`] and the metrics.
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
//!
//! One writer per state: the daemon leads while it holds the state's writer lock. A state file
//! is one replica's (a second reconciler on it is refused at start). A shared state
//! (PostgreSQL) lets replicas run side by side: the one holding the lock leads; the others are
//! standby (they plan nothing and write nothing; `/status` names the leader, `/readyz` says
//! standby) and try the lock every [`STANDBY_POLL`]. A leader that loses the lock (its database
//! session ended) stops starting objects, lets the writes in flight finish (they can no longer
//! be recorded: the next leader's plan finds them) and becomes standby; a new leader starts
//! with a reconcile of the newest revision, from the state as last recorded.

pub mod heal;
pub mod outcome;
pub mod reconcile;
pub mod status;
pub mod trigger;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::heal::Backoff;
pub use self::outcome::Outcome;
use self::reconcile::{Context, Pass, Reconciled};
use self::status::Role;
pub use self::status::{Problem, ReconcileRecord, Status, StatusHandle};
pub use self::trigger::Trigger;
use crate::live::Client;
use crate::metrics::Metrics;
use crate::pipeline::Overrides;
use crate::snapshot::Snapshot;
use crate::source::{self, Followed, SourceConfig};
use crate::state::file;
use crate::state::key::Keys;
use crate::state::store::{self, Lock, Store};

/// How often a standby replica tries the writer lock: a leader killed with `kill -9` is
/// replaced within this (plus the time the database takes to notice a lost client: seconds).
pub const STANDBY_POLL: Duration = Duration::from_secs(2);

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
    /// What the operator allows on top of the repository settings (`--allow-destroy`,
    /// `--force`).
    pub overrides: Overrides,
    /// Treat spec warnings as errors.
    pub strict: bool,
    /// Requests in flight at once.
    pub parallelism: usize,
    /// Where the state lives.
    pub store: std::sync::Arc<dyn Store>,
    /// The key of secret digests.
    pub keys: std::sync::Arc<Keys>,
    /// The tenant label recorded in the state (`sandbox` or the URL).
    pub tenant: String,
    /// Directory for `${file:PATH}`.
    pub secrets_dir: PathBuf,
}

/// Why the daemon cannot start (a failing reconcile is not one: it degrades the daemon and is
/// retried).
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
    Lock(store::Error),
    /// The directory watcher cannot start.
    #[error(transparent)]
    Source(#[from] source::Error),
}

/// Shared handles of a running daemon.
#[derive(Clone)]
pub struct Handles {
    /// The Immuta client (reporting to the metrics).
    pub client: Client,
    /// Metrics.
    pub metrics: std::sync::Arc<Metrics>,
    /// Status.
    pub status: StatusHandle,
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

/// A started reconciler: it follows its source, and leads while it holds the state lock;
/// [`Daemon::run`] runs the loop.
pub struct Daemon {
    config: Config,
    source: Followed,
    handles: Handles,
    /// Shutdown.
    shutdown: CancellationToken,
    /// Shutdown, or the loss of the writer lock: what stops the passes of one leadership.
    cancel: CancellationToken,
    /// The writer lock, while this replica leads.
    lock: Option<Lock>,
    /// The last valid snapshot (the drift check plans against it).
    last_good: Option<Snapshot>,
    /// The last revision reconciled and how it ended.
    last_done: Option<(String, Outcome)>,
    /// Self-heal backoff.
    heal: Backoff,
}

impl Daemon {
    /// Tries the state lock (a state file held by another process is an error; a shared
    /// state makes this replica standby), starts following the source (a directory watch
    /// starts at once) and reports the mode, the role and the source in the status. `cancel`
    /// stops the loop: reads in flight are abandoned, writes in flight finish.
    pub async fn start(
        config: Config,
        handles: Handles,
        cancel: CancellationToken,
    ) -> Result<Daemon, Error> {
        let lock = match config.store.try_lock().await {
            Ok(lock) => Some(lock),
            Err(store::Error::File(file::Error::Locked { lock, holder, .. })) => {
                return Err(Error::Locked { lock, holder });
            }
            Err(e) if !config.store.is_shared() => return Err(Error::Lock(e)),
            Err(e) => {
                standby(&handles, &e);
                None
            }
        };
        let description = config.source.describe();
        let me = store::holder("run");
        handles.status.update(|s| {
            s.mode = match config.mode {
                Mode::Apply => "apply".into(),
                Mode::PlanOnly => "plan-only".into(),
            };
            s.source = description.clone();
            s.state = config.store.describe();
            if lock.is_some() {
                s.role = Role::Leader;
                s.leader = Some(me.clone());
            }
        });
        let source = Followed::start(&config.source)?;
        let mode = match config.mode {
            Mode::Apply => "apply",
            Mode::PlanOnly => "plan-only",
        };
        tracing::info!(source = %description, mode, "reconciler started");
        Ok(Daemon {
            config,
            source,
            handles,
            shutdown: cancel.clone(),
            cancel: cancel.child_token(),
            lock,
            last_good: None,
            last_done: None,
            heal: Backoff::default(),
        })
    }

    /// Runs the loop until the token is cancelled or every trigger sender is gone: standby
    /// until the writer lock is had, then leading until it is lost, and so on.
    pub async fn run(mut self, mut triggers: mpsc::Receiver<Trigger>) {
        loop {
            if self.lock.is_none() && !self.wait_for_lock(&mut triggers).await {
                break;
            }
            let Some(lost) = self.lock.as_ref().map(|l| l.lost().clone()) else { break };
            // The passes of this leadership stop at shutdown or when the lock is lost.
            self.cancel = self.shutdown.child_token();
            let cancel = self.cancel.clone();
            let stop = tokio::spawn(async move {
                lost.cancelled().await;
                cancel.cancel();
            });
            let more = self.lead(&mut triggers).await;
            stop.abort();
            if !more || self.shutdown.is_cancelled() {
                break;
            }
            // The lock was lost: whatever was in flight is finished; standby from now on.
            self.lock = None;
            self.last_done = None;
            let e = store::Error::LockLost {
                state: self.config.store.describe(),
                reason: "the database session ended".into(),
            };
            standby(&self.handles, &e);
            tracing::warn!("{e}; standby until the lock is free again");
        }
        tracing::info!("reconciler stopped");
    }

    /// Standby: tries the writer lock every [`STANDBY_POLL`] until it has it (`true`), or
    /// shutdown (`false`). Triggers are drained and ignored: the leader reconciles.
    async fn wait_for_lock(&mut self, triggers: &mut mpsc::Receiver<Trigger>) -> bool {
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return false,
                t = triggers.recv() => match t {
                    Some(t) => tracing::debug!(trigger = t.name(), "standby: ignored (the leader reconciles)"),
                    None => return false,
                },
                () = tokio::time::sleep(STANDBY_POLL) => match self.config.store.try_lock().await {
                    Ok(lock) => {
                        let me = store::holder("run");
                        tracing::info!(state = %self.config.store.describe(), "took the writer lock: leading");
                        self.handles.status.update(|s| {
                            s.role = Role::Leader;
                            s.leader = Some(me);
                            s.problem(Problem::State, None);
                        });
                        self.lock = Some(lock);
                        let _ = self.source.take_changed();
                        return true;
                    }
                    Err(e) => standby(&self.handles, &e),
                },
            }
        }
    }

    /// The leader's loop, until shutdown or the loss of the lock (`true`: lock lost, go on as
    /// standby), or no trigger sender left (`false`).
    async fn lead(&mut self, triggers: &mut mpsc::Receiver<Trigger>) -> bool {
        let cancel = self.cancel.clone();
        let mut next_poll = Instant::now();
        let mut next_drift = self.config.drift_interval.map(|d| Instant::now() + d);
        loop {
            let first = tokio::select! {
                biased;
                () = cancel.cancelled() => return true,
                t = triggers.recv() => match t {
                    Some(t) => t,
                    None => return false,
                },
                () = self.source.changed() => Trigger::FilesChanged,
                () = tokio::time::sleep_until(next_poll) => Trigger::Poll,
                () = sleep_until_opt(next_drift) => Trigger::DriftCheck,
            };
            let mut work = Work::default();
            work.add(&first);
            while let Ok(t) = triggers.try_recv() {
                work.add(&t);
            }
            if self.source.take_changed() {
                work.add(&Trigger::FilesChanged);
            }
            if let Some(name) = work.source {
                self.source_pass(name, work.force).await;
                next_poll = Instant::now() + jittered(self.config.interval);
            }
            if cancel.is_cancelled() {
                return true;
            }
            if work.drift || next_drift.is_some_and(|d| Instant::now() >= d) {
                self.drift_pass().await;
                next_drift = self.config.drift_interval.map(|d| Instant::now() + d);
            }
        }
    }

    fn context(&self) -> Context<'_> {
        Context { config: &self.config, handles: &self.handles, cancel: &self.cancel }
    }

    fn record(
        &self,
        trigger: &'static str,
        revision: Option<String>,
        started: (String, Instant),
        ended: &Reconciled,
    ) {
        let took = started.1.elapsed();
        let outcome = ended.outcome;
        self.handles.metrics.reconcile(outcome.as_str(), took);
        let record = ReconcileRecord {
            trigger,
            revision,
            started_at: started.0,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            outcome,
            changes: ended.changes,
            message: ended.message.clone(),
        };
        self.log_reconcile(trigger, record.revision.as_deref(), record.duration_ms, ended);
        self.handles.status.update(|s| s.record(record));
    }

    /// One log line per pass that names the revision (`main@sha1:<id>`, as Flux does) and the
    /// objects changed; never Rust debug text. Problems are warnings.
    fn log_reconcile(
        &self,
        trigger: &'static str,
        revision: Option<&str>,
        duration_ms: u64,
        ended: &Reconciled,
    ) {
        let outcome = ended.outcome;
        let label = revision.map(|r| self.config.source.revision_label(r)).unwrap_or_default();
        let objects = objects_text(&ended.objects);
        let detail = ended.message.as_deref().unwrap_or_default();
        let msg = match outcome {
            Outcome::Applied => format!("applied revision {label}"),
            Outcome::NoChanges => format!("revision {label} is in sync: no changes"),
            Outcome::Planned => format!("planned revision {label} (plan-only): {detail}"),
            Outcome::Drift => format!("drift from revision {label}: {objects}"),
            Outcome::UnchangedRevision | Outcome::SourceError => detail.to_owned(),
            Outcome::Invalid | Outcome::Refused | Outcome::Failed => {
                format!("revision {label} not applied ({outcome}): {detail}")
            }
            Outcome::Cancelled => "cancelled".to_owned(),
        };
        let changes = ended.changes;
        if outcome.is_problem() {
            tracing::warn!(trigger, %outcome, revision = %label, changes, duration_ms, objects, "{msg}");
        } else {
            tracing::info!(trigger, %outcome, revision = %label, changes, duration_ms, objects, "{msg}");
        }
    }

    async fn source_pass(&mut self, trigger: &'static str, force: bool) {
        let started = (now_rfc3339(), Instant::now());
        let last = match &self.last_done {
            Some((rev, outcome)) if !force && outcome.is_settled() => Some(rev.clone()),
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
                    let ended = Reconciled::ok(Outcome::UnchangedRevision, 0, Some(message));
                    self.record(trigger, last, started, &ended);
                }
                return;
            }
            Err(e) => {
                let good = self.handles.status.snapshot().applied_revision;
                let message = format!(
                    "cannot read the source: {}; nothing was changed{}",
                    crate::diagnostic::chain(&e),
                    good.map(|r| format!(" (revision {r} stays applied)")).unwrap_or_default()
                );
                self.handles.status.update(|s| s.problem(Problem::Source, Some(message.clone())));
                let ended = Reconciled::problem(Outcome::SourceError, 0, message.clone(), message);
                self.record(trigger, None, started, &ended);
                return;
            }
        };
        let revision = snapshot.revision.clone();
        self.handles.status.update(|s| {
            s.source_revision = Some(revision.clone());
            s.problem(Problem::Source, None);
        });
        let ended = self.context().reconcile(&snapshot, Pass::Source).await;
        if ended.outcome == Outcome::Cancelled {
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
        if ended.outcome != Outcome::Invalid {
            self.last_good = Some(snapshot);
        }
        self.last_done = Some((revision.clone(), ended.outcome));
        self.record(trigger, Some(revision), started, &ended);
    }

    async fn drift_pass(&mut self) {
        let Some(snapshot) = self.last_good.clone() else { return };
        let started = (now_rfc3339(), Instant::now());
        let heal =
            self.config.self_heal && self.config.mode == Mode::Apply && self.heal.allows_heal();
        let ended = self.context().reconcile(&snapshot, Pass::Drift { heal }).await;
        if ended.outcome == Outcome::Cancelled {
            tracing::info!("shutdown: abandoned the drift check (nothing was written)");
            return;
        }
        self.handles.status.update(|s| s.problem(Problem::Drift, ended.problem.clone()));
        self.heal.record(ended.outcome);
        self.record("drift", Some(snapshot.revision.clone()), started, &ended);
    }
}

/// Reports this replica as standby: who leads, or why the lock cannot be tried.
fn standby(handles: &Handles, why: &store::Error) {
    handles.status.update(|s| {
        s.role = Role::Standby;
        match why.lock_holder() {
            Some(holder) => {
                s.leader = Some(holder.to_owned());
                s.problem(Problem::State, None);
            }
            None => {
                s.leader = None;
                s.problem(Problem::State, Some(why.to_string()));
            }
        }
    });
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The objects of a pass for its log line: `create purpose "Alpha", update policy "x"`, the
/// first 20 and a count of the rest.
fn objects_text(objects: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = objects.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if objects.len() > SHOWN {
        text.push_str(&format!(" and {} more", objects.len() - SHOWN));
    }
    text
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

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
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
}
