//! Everything that can wake the reconciler: one closed enum, so every source of work is visible
//! in one place (rust-analyzer's rule for event loops).
//!
//! Stopping is not a trigger: SIGTERM and Ctrl-C cancel the loop's `CancellationToken`, which
//! also abandons reads in flight (one shutdown mechanism, as in mini-redis).

/// A reason to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The poll timer fired: fetch the source and reconcile if the revision changed.
    Poll,
    /// A webhook delivery (GitHub push, GitLab push) nudged the loop.
    Webhook {
        /// The provider's delivery id, for logs.
        delivery: Option<String>,
        /// The pushed revision, when the payload names one.
        revision: Option<String>,
    },
    /// Files changed under a watched local directory.
    FilesChanged,
    /// The drift timer fired: compare the tenant with the last applied state.
    DriftCheck,
    /// SIGHUP: reconcile now, whatever the timers say.
    Reload,
}

impl Trigger {
    /// A stable, low-cardinality name for logs, metrics and `/status`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::Webhook { .. } => "webhook",
            Trigger::FilesChanged => "files",
            Trigger::DriftCheck => "drift",
            Trigger::Reload => "reload",
        }
    }

    /// Whether the trigger is about a new desired state (goes ahead of drift checks).
    pub fn is_source_change(&self) -> bool {
        matches!(
            self,
            Trigger::Poll | Trigger::Webhook { .. } | Trigger::FilesChanged | Trigger::Reload
        )
    }
}
