//! Carrying out a plan: in order, with bounded concurrency, recording every success at once.
//!
//! Changes run in the plan's order: licenses, purposes, data sources, policies, projects, then
//! deletes in reverse. Within one kind, up to `parallelism` objects are in flight. An object
//! whose write fails (a 4xx, or retries used up) stops the objects that depend on it (a project
//! on its purposes and data sources, a policy on the purposes it exempts) but not its unrelated
//! siblings. Every success is journaled in the state before the next object starts, so a
//! killed run resumes cleanly; a cancelled run finishes the objects in flight and stops.
//!
//! Before the projects are posted, the data sources they name that come from managed
//! connections (written by this apply or an earlier one) are waited for ([`wait`]): Immuta
//! creates them in the background. A data-source post that
//! asks Immuta to `wait` is the one write a cancellation abandons (Immuta goes on creating; the
//! next plan reads what it did), since a negative `wait` has no end of its own.
//!
//! [`render`] shows the results to people.

pub mod render;
mod wait;

pub use self::wait::DEFAULT_CREATION_TIMEOUT;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::live::{self, Client};
use crate::plan::{self, Action, Change, DryRun, ObjectId, Plan, Target};
use crate::spec::Kind;
use crate::spec::secrets::{self, SecretSource};
use crate::state::store::{self, Recorder};

/// Errors that stop an apply as a whole (one object failing is an [`Status::Failed`] result).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state could not be recorded: stop at once, or applied objects would be forgotten.
    #[error("cannot record progress in the state")]
    State(#[from] store::Error),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Posted.
    Applied,
    /// Taken under management without a write.
    Adopted,
    /// Deleted on the tenant.
    Deleted,
    /// Removed from the state only (`prune: false`, or already gone).
    Forgotten,
    /// Changed in the state only (its `gitops:` protection), without a call.
    Recorded,
    /// Nothing to do.
    Unchanged,
    /// The write failed.
    Failed(String),
    /// Not attempted.
    Skipped(String),
}

impl Status {
    /// Whether the object's change was carried out: written on the tenant, adopted, forgotten
    /// or recorded in the state. The one definition of "done", shared by the apply summary and
    /// the `changes_total` metric (a write on the tenant is narrower: [`Outcome::writes`]).
    pub fn is_done(&self) -> bool {
        match self {
            Status::Applied
            | Status::Adopted
            | Status::Deleted
            | Status::Forgotten
            | Status::Recorded => true,
            Status::Unchanged | Status::Failed(_) | Status::Skipped(_) => false,
        }
    }
}

/// The result for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectResult {
    /// The object.
    pub id: ObjectId,
    /// What the plan said.
    pub action: Action,
    /// What happened.
    pub status: Status,
    /// How long it took.
    pub took: Duration,
}

/// The results of an apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// One result per change, in plan order.
    pub results: Vec<ObjectResult>,
    /// Whether the run was cancelled before the end.
    pub cancelled: bool,
}

impl Outcome {
    /// Objects that failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.status, Status::Failed(_))).count()
    }

    /// Objects not attempted.
    pub fn skipped(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.status, Status::Skipped(_))).count()
    }

    /// Whether everything in the plan was done.
    pub fn is_success(&self) -> bool {
        !self.cancelled && self.failed() == 0 && self.skipped() == 0
    }

    /// Objects written on the tenant (posted or deleted): the calls that changed it, which is
    /// narrower than the objects done ([`Status::is_done`]).
    pub fn writes(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.status, Status::Applied | Status::Deleted))
            .count()
    }
}

/// Receives progress (a progress bar, logs, metrics).
pub trait Progress: Sync {
    /// An object finished.
    fn done(&self, result: &ObjectResult);

    /// The apply waits for the tenant (Immuta creating data sources), or stopped waiting.
    fn waiting(&self, _message: &str) {}
}

/// No progress reporting.
pub struct Silent;

impl Progress for Silent {
    fn done(&self, _: &ObjectResult) {}
}

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Objects in flight at once within one kind.
    pub parallelism: usize,
    /// The revision being applied (recorded in the state).
    pub revision: String,
    /// Stop starting new objects once cancelled.
    pub cancel: CancellationToken,
    /// Seconds to wait for data sources to be created (`apply --wait`), for connections whose
    /// spec sets no `gitops: {wait}` of its own.
    pub wait: Option<i64>,
    /// How long projects wait for the data sources they name to be created (`apply
    /// --creation-timeout`; [`DEFAULT_CREATION_TIMEOUT`] when `None`).
    pub creation_timeout: Option<Duration>,
}

/// A state change decided by a finished object.
enum StateOp {
    Upsert(crate::state::Entry),
    Remove(Kind, String),
    /// Records the object's `prune` protection, keeping the rest of its entry.
    SetPrune(Kind, String, bool),
    None,
}

/// Applies `plan`. `targets` are the desired objects the plan was computed from.
pub async fn apply(
    plan: &Plan,
    targets: &[Target<'_>],
    store: &mut Recorder<'_>,
    client: &Client,
    secrets: &(dyn SecretSource + Sync),
    options: &Options,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let by_id: BTreeMap<ObjectId, &Target<'_>> =
        targets.iter().map(|t| (ObjectId::new(t.object.kind, &t.object.key), t)).collect();
    let deps = plan::dependencies(targets, store.state(), |id| {
        plan.changes.iter().find(|c| &c.id == id).and_then(|c| c.server.as_ref())
    });
    let mut outcome = Outcome::default();
    let mut bad: BTreeMap<ObjectId, String> = BTreeMap::new();
    // Data sources of managed connections (recorded, or written by this apply): a project
    // naming one waits until it exists, since Immuta may still be creating it.
    let mut fresh: BTreeSet<String> = store
        .state()
        .objects
        .iter()
        .filter(|e| e.kind == Kind::DataSource)
        .flat_map(|e| e.names.iter().cloned())
        .collect();
    let applied_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();

    let mut start = 0;
    while start < plan.changes.len() {
        // One phase: consecutive changes of the same kind and direction.
        let phase_key = |c: &Change| (c.action == Action::Delete, c.id.kind);
        let key = phase_key(&plan.changes[start]);
        let end = plan.changes[start..]
            .iter()
            .position(|c| phase_key(c) != key)
            .map_or(plan.changes.len(), |n| start + n);
        let phase = &plan.changes[start..end];
        start = end;

        let mut pending = Vec::new();
        for change in phase {
            if let Some((dep, why)) =
                deps.get(&change.id).into_iter().flatten().find_map(|d| bad.get(d).map(|w| (d, w)))
            {
                let reason = format!("depends on {dep}, which {why}");
                let r = ObjectResult {
                    id: change.id.clone(),
                    action: change.action,
                    status: Status::Skipped(reason),
                    took: Duration::ZERO,
                };
                progress.done(&r);
                bad.insert(change.id.clone(), "was skipped".into());
                outcome.results.push(r);
            } else if options.cancel.is_cancelled() {
                let r = ObjectResult {
                    id: change.id.clone(),
                    action: change.action,
                    status: Status::Skipped("the run was cancelled".into()),
                    took: Duration::ZERO,
                };
                outcome.cancelled = true;
                outcome.results.push(r);
            } else {
                pending.push(change);
            }
        }
        if key == (false, Kind::Project) && !fresh.is_empty() {
            pending = await_data_sources(pending, &by_id, &fresh, client, options, progress)
                .await
                .into_iter()
                .filter_map(|waited| match waited {
                    Ok(change) => Some(change),
                    Err(result) => {
                        progress.done(&result);
                        bad.insert(result.id.clone(), "was skipped".into());
                        outcome.results.push(result);
                        None
                    }
                })
                .collect();
        }
        // The futures are built up front, not by a closure inside the stream: a stream holding a
        // closure over borrowed changes makes `apply`'s future not `Send` (the compiler cannot
        // prove the closure works for every lifetime), so it could not run in a spawned task.
        let jobs: Vec<_> = pending
            .into_iter()
            .map(|change| {
                let target = by_id.get(&change.id).copied();
                let cancel = options.cancel.clone();
                let applied_at = applied_at.as_str();
                let revision = options.revision.as_str();
                let wait = options.wait;
                async move {
                    if cancel.is_cancelled() {
                        let r = ObjectResult {
                            id: change.id.clone(),
                            action: change.action,
                            status: Status::Skipped("the run was cancelled".into()),
                            took: Duration::ZERO,
                        };
                        return (r, StateOp::None);
                    }
                    let started = Instant::now();
                    let (status, op) = execute(
                        change,
                        target,
                        client,
                        secrets,
                        (revision, applied_at),
                        wait,
                        &cancel,
                    )
                    .await;
                    (
                        ObjectResult {
                            id: change.id.clone(),
                            action: change.action,
                            status,
                            took: started.elapsed(),
                        },
                        op,
                    )
                }
            })
            .collect();
        let mut running = stream::iter(jobs).buffer_unordered(options.parallelism.max(1));
        while let Some((result, op)) = running.next().await {
            if let StateOp::Upsert(entry) = &op
                && entry.kind == Kind::DataSource
                && result.status == Status::Applied
            {
                fresh.extend(entry.names.iter().cloned());
            }
            match op {
                StateOp::Upsert(entry) => store.upsert(entry).await?,
                StateOp::Remove(kind, key) => store.remove(kind, &key).await?,
                StateOp::SetPrune(kind, key, prune) => {
                    if let Some(mut entry) = store.state().get(kind, &key).cloned() {
                        entry.prune = prune;
                        store.upsert(entry).await?;
                    }
                }
                StateOp::None => {}
            }
            match &result.status {
                Status::Failed(_) => {
                    bad.insert(result.id.clone(), "failed".into());
                }
                Status::Skipped(_) => {
                    outcome.cancelled |= options.cancel.is_cancelled();
                    bad.insert(result.id.clone(), "was skipped".into());
                }
                _ => {}
            }
            progress.done(&result);
            outcome.results.push(result);
        }
    }
    if outcome.is_success() {
        store.set_revision(&options.revision).await?;
    }
    store.finish().await?;
    // Report in plan order.
    let order: BTreeMap<&ObjectId, usize> =
        plan.changes.iter().enumerate().map(|(i, c)| (&c.id, i)).collect();
    outcome.results.sort_by_key(|r| order.get(&r.id).copied().unwrap_or(usize::MAX));
    Ok(outcome)
}

/// The project changes of `pending`, each ready to post (`Ok`) or skipped (`Err`) because a data
/// source it names, written by this apply, was not created in time.
async fn await_data_sources<'c>(
    pending: Vec<&'c Change>,
    by_id: &BTreeMap<ObjectId, &Target<'_>>,
    fresh: &BTreeSet<String>,
    client: &Client,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<Result<&'c Change, ObjectResult>> {
    let needs: BTreeMap<&ObjectId, Vec<String>> = pending
        .iter()
        .filter(|c| c.action != Action::NoOp && c.write)
        .filter_map(|c| {
            let names = wait::needed(&by_id.get(&c.id)?.object.payload, fresh);
            (!names.is_empty()).then_some((&c.id, names))
        })
        .collect();
    let all: BTreeSet<String> = needs.values().flatten().cloned().collect();
    if all.is_empty() {
        return pending.into_iter().map(Ok).collect();
    }
    let timeout = options.creation_timeout.unwrap_or(DEFAULT_CREATION_TIMEOUT);
    let parallelism = options.parallelism.max(1).saturating_mul(2);
    let waited = wait::until_created(
        client,
        all.into_iter().collect(),
        timeout,
        &options.cancel,
        parallelism,
        progress,
    )
    .await;
    let Err(not_created) = waited else {
        return pending.into_iter().map(Ok).collect();
    };
    progress.waiting(&format!("stopped waiting for data sources: {}", not_created.reason));
    pending
        .into_iter()
        .map(|change| {
            let missing: Vec<String> = needs
                .get(&change.id)
                .into_iter()
                .flatten()
                .filter(|n| not_created.missing.contains(n))
                .map(|n| format!("`{n}`"))
                .collect();
            if missing.is_empty() {
                return Ok(change);
            }
            Err(ObjectResult {
                id: change.id.clone(),
                action: change.action,
                status: Status::Skipped(format!(
                    "names data source(s) {} that this apply wrote and that do not exist yet: {}",
                    missing.join(", "),
                    not_created.reason
                )),
                took: Duration::ZERO,
            })
        })
        .collect()
}

/// The secret values of a resolved payload (for redacting error messages).
fn secret_values(resolved: &Value, target: &Target<'_>) -> Vec<String> {
    target
        .object
        .tainted_pointers()
        .filter_map(|p| resolved.pointer(p).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

async fn execute(
    change: &Change,
    target: Option<&Target<'_>>,
    client: &Client,
    secrets: &(dyn SecretSource + Sync),
    (revision, applied_at): (&str, &str),
    wait: Option<i64>,
    cancel: &CancellationToken,
) -> (Status, StateOp) {
    let id = &change.id;
    match (change.action, target) {
        (Action::NoOp, _) => (Status::Unchanged, StateOp::None),
        (Action::Delete, _) if !change.write => {
            (Status::Forgotten, StateOp::Remove(id.kind, id.key.clone()))
        }
        (Action::Delete, _) => match live::delete(client, id.kind, &id.key, change.live_id).await {
            Ok(true) => (Status::Deleted, StateOp::Remove(id.kind, id.key.clone())),
            Ok(false) => (Status::Forgotten, StateOp::Remove(id.kind, id.key.clone())),
            Err(e) => (Status::Failed(e.to_string()), StateOp::None),
        },
        (_, None) => (
            Status::Failed("the plan names an object the specs do not define".into()),
            StateOp::None,
        ),
        (Action::Update, Some(t)) if !change.write => {
            (Status::Recorded, StateOp::SetPrune(id.kind, id.key.clone(), t.object.options.prune))
        }
        (Action::Adopt, Some(t)) if !change.write => {
            let names = match &change.server {
                Some(DryRun::Data { no_change, .. }) => no_change.clone(),
                _ => Vec::new(),
            };
            (Status::Adopted, StateOp::Upsert(t.entry(change.live_id, names, revision, applied_at)))
        }
        (Action::Create | Action::Update | Action::Replace | Action::Adopt, Some(t)) => {
            let resolved = match secrets::interpolate(&t.object.payload, secrets) {
                Ok(v) => v,
                Err(e) => return (Status::Failed(e.to_string()), StateOp::None),
            };
            let secret_list = secret_values(&resolved, t);
            let mut object_options = t.object.options.clone();
            object_options.wait = object_options.wait.or(wait);
            let write = live::write(client, id.kind, &resolved, &object_options, &secret_list);
            let written = match object_options.wait {
                // Immuta holds the answer while it creates (forever, below zero): a
                // cancellation stops waiting for it. Immuta goes on; the next plan reads it.
                Some(w) if w != 0 && id.kind == Kind::DataSource => tokio::select! {
                    written = write => written,
                    () = cancel.cancelled() => {
                        let message = format!(
                            "interrupted while Immuta was creating the data sources (wait={w}); \
                             the post may have taken effect: the next plan shows what it did"
                        );
                        return (Status::Failed(message), StateOp::None);
                    }
                },
                _ => write.await,
            };
            match written {
                Ok(written) => {
                    let entry =
                        t.entry(written.id.or(change.live_id), written.names, revision, applied_at);
                    (Status::Applied, StateOp::Upsert(entry))
                }
                Err(e) => (Status::Failed(e.to_string()), StateOp::None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `apply` can run in a spawned task (a daemon's reconcile, a background job): this only
    /// compiles while its future is `Send`.
    #[allow(dead_code)]
    fn apply_is_send<'a>(
        plan: &'a Plan,
        targets: &'a [Target<'a>],
        store: &'a mut Recorder<'a>,
        client: &'a Client,
        secrets: &'a (dyn SecretSource + Sync),
        options: &'a Options,
        progress: &'a dyn Progress,
    ) {
        fn send<T: Send>(_: T) {}
        send(apply(plan, targets, store, client, secrets, options, progress));
    }
}
