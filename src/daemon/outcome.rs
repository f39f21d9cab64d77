//! How a reconcile pass ended: one closed set, one spelling.
//!
//! The spelling ([`Outcome::as_str`]) is the `result` label of `reconciles_total`, the `outcome`
//! of a `/status` history record, and the `outcome` field of the logs. What the loop does next
//! is decided by exhaustive matches here ([`Outcome::is_settled`], [`Outcome::is_problem`]), so
//! a new outcome cannot be added without deciding whether it is retried.

use std::fmt;

use serde::{Serialize, Serializer};

/// How a reconcile pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The plan was carried out completely.
    Applied,
    /// The tenant already matches the specs (or, for a drift check, the last applied state).
    NoChanges,
    /// Plan-only mode: the plan has changes and was only reported.
    Planned,
    /// A drift check found differences and self-heal is off (or backing off).
    Drift,
    /// The specs of the revision have errors; nothing was planned.
    Invalid,
    /// The plan must not be applied: the tenant refuses objects, or a safety refusal.
    Refused,
    /// The pass failed (a tenant read, the state, a secret) or the apply was incomplete.
    Failed,
    /// The source could not be read.
    SourceError,
    /// The source is readable again and still at the reconciled revision.
    UnchangedRevision,
    /// Abandoned by shutdown while it was only reading (never recorded).
    Cancelled,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 10] = [
        Outcome::Applied,
        Outcome::NoChanges,
        Outcome::Planned,
        Outcome::Drift,
        Outcome::Invalid,
        Outcome::Refused,
        Outcome::Failed,
        Outcome::SourceError,
        Outcome::UnchangedRevision,
        Outcome::Cancelled,
    ];

    /// The one spelling: metrics label, `/status` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::NoChanges => "no_changes",
            Outcome::Planned => "planned",
            Outcome::Drift => "drift",
            Outcome::Invalid => "invalid",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::SourceError => "source_error",
            Outcome::UnchangedRevision => "unchanged_revision",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Whether a revision that ended so needs no new reconcile until the revision changes (or
    /// SIGHUP forces one): the result cannot change without a new revision. Invalid specs stay
    /// invalid and a refused plan stays refused; failures are retried at the next poll.
    pub fn is_settled(self) -> bool {
        match self {
            Outcome::Applied
            | Outcome::NoChanges
            | Outcome::Planned
            | Outcome::Invalid
            | Outcome::Refused => true,
            Outcome::Drift
            | Outcome::Failed
            | Outcome::SourceError
            | Outcome::UnchangedRevision
            | Outcome::Cancelled => false,
        }
    }

    /// Whether the pass did not complete: logged as a warning rather than as information.
    pub fn is_problem(self) -> bool {
        match self {
            Outcome::Failed | Outcome::Invalid | Outcome::Refused | Outcome::SourceError => true,
            Outcome::Applied
            | Outcome::NoChanges
            | Outcome::Planned
            | Outcome::Drift
            | Outcome::UnchangedRevision
            | Outcome::Cancelled => false,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_lower_snake_case_spelling() {
        let mut seen = std::collections::BTreeSet::new();
        for o in Outcome::ALL {
            let s = o.as_str();
            assert!(seen.insert(s), "{s} spelled twice");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert_eq!(o.to_string(), s);
            assert_eq!(serde_json::to_value(o).unwrap(), serde_json::Value::from(s));
        }
    }

    #[test]
    fn only_retryable_outcomes_are_reconciled_again_for_the_same_revision() {
        let settled: Vec<&str> =
            Outcome::ALL.into_iter().filter(|o| o.is_settled()).map(Outcome::as_str).collect();
        assert_eq!(settled, ["applied", "no_changes", "planned", "invalid", "refused"]);
    }

    #[test]
    fn problems_are_the_passes_that_did_not_complete() {
        let problems: Vec<&str> =
            Outcome::ALL.into_iter().filter(|o| o.is_problem()).map(Outcome::as_str).collect();
        assert_eq!(problems, ["invalid", "refused", "failed", "source_error"]);
    }
}
