//! What the reconciler reports: the applied revision, the last plan, the last reconciles, and
//! why it is degraded. Shared between the loop (writer) and the HTTP server (reader).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::outcome::Outcome;

/// How many reconciles `/status` keeps.
pub const HISTORY: usize = 20;

/// One finished reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileRecord {
    /// What woke the loop (`poll`, `webhook`, `files`, `drift`, `reload`).
    pub trigger: &'static str,
    /// The source revision reconciled, when one was read.
    pub revision: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// How it ended, serialized as [`Outcome::as_str`] (`applied`, `no_changes`, `planned`,
    /// `drift`, `failed`, `invalid`, `unchanged_revision`, `source_error`, `refused`).
    pub outcome: Outcome,
    /// Number of changes planned (or applied).
    pub changes: usize,
    /// Details of a failure or a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The summary of the last plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    /// The revision planned.
    pub revision: String,
    /// The summary line (`N to create, ...`).
    pub summary: String,
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Implicit effects.
    pub effects: usize,
}

/// Where a problem that degrades the reconciler comes from. Each cause is set and cleared on its
/// own, so a successful step clears only the problems it proves gone: a readable source clears
/// a source error but not an invalid revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// The source could not be read (cleared by the next successful read, changed or not).
    Source,
    /// The newest revision could not be reconciled: invalid specs, a refusal, a failed or
    /// interrupted apply (cleared by the next successful reconcile of a revision).
    Revision,
    /// The last drift check failed (cleared by the next successful drift check or reconcile).
    Drift,
    /// The state's database cannot be reached to try the writer lock (cleared when it answers).
    State,
}

/// Whether this replica holds the state's writer lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Not decided yet (starting).
    #[default]
    Starting,
    /// Holds the writer lock: plans and applies.
    Leader,
    /// Another replica holds the lock: plans nothing, writes nothing, and takes over when the
    /// leader goes away.
    Standby,
}

/// The reconciler's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `apply` or `plan-only`.
    pub mode: String,
    /// Leader or standby.
    pub role: Role,
    /// Who holds the state's writer lock (this replica when it leads), as it names itself
    /// (`pid N on HOST: run`); `None` when nobody does or it cannot be told.
    pub leader: Option<String>,
    /// Where the state lives (never a password).
    pub state: String,
    /// The source (repository URL and ref, or directory).
    pub source: String,
    /// The revision last applied completely.
    pub applied_revision: Option<String>,
    /// The newest revision seen at the source.
    pub source_revision: Option<String>,
    /// Ready: at least one reconcile succeeded.
    pub ready: bool,
    /// Why the reconciler is degraded (the last good revision stays applied): every current
    /// [`Problem`], joined. Kept up to date by [`Status::problem`].
    pub degraded: Option<String>,
    /// The last plan.
    pub last_plan: Option<PlanSummary>,
    /// Drift found by the last drift check (objects), when one ran.
    pub drift: Vec<String>,
    /// The last reconciles, newest first.
    pub history: VecDeque<ReconcileRecord>,
    /// The current problems by cause (shown joined in `degraded`).
    #[serde(skip)]
    problems: BTreeMap<Problem, String>,
}

impl Status {
    /// Records a finished reconcile (keeps the newest [`HISTORY`]).
    pub fn record(&mut self, record: ReconcileRecord) {
        self.history.push_front(record);
        self.history.truncate(HISTORY);
    }

    /// Sets (`Some`) or clears (`None`) the problem of `cause`, and recomputes `degraded`.
    pub fn problem(&mut self, cause: Problem, reason: Option<String>) {
        match reason {
            Some(reason) => self.problems.insert(cause, reason),
            None => self.problems.remove(&cause),
        };
        let reasons: Vec<&str> = self.problems.values().map(String::as_str).collect();
        self.degraded = (!reasons.is_empty()).then(|| reasons.join("; "));
    }

    /// Whether a problem of `cause` is current.
    pub fn has_problem(&self, cause: Problem) -> bool {
        self.problems.contains_key(&cause)
    }
}

/// A shared handle on the status.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle(Arc<RwLock<Status>>);

impl StatusHandle {
    /// A handle on `status`.
    pub fn new(status: Status) -> Self {
        StatusHandle(Arc::new(RwLock::new(status)))
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> Status {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the status.
    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.0.write().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_cleared_on_its_own() {
        let mut s = Status::default();
        s.problem(Problem::Revision, Some("revision b is not valid".into()));
        s.problem(Problem::Source, Some("cannot read the source".into()));
        assert_eq!(s.degraded.as_deref(), Some("cannot read the source; revision b is not valid"));
        s.problem(Problem::Source, None);
        assert_eq!(s.degraded.as_deref(), Some("revision b is not valid"));
        assert!(!s.has_problem(Problem::Source) && s.has_problem(Problem::Revision));
        s.problem(Problem::Revision, None);
        assert_eq!(s.degraded, None);
    }
}
