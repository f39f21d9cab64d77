//! The one reconcile operation, shared by the CLI (`validate`, `plan`, `apply`), the daemon and
//! the benchmark: load -> prepare -> plan -> apply, each stage a type that only the stage
//! before it can make, so no caller can skip a step or run them out of order.
//!
//! ```text
//! Snapshot --Specs::load--> Specs --prepare--> Prepared --plan--> Planned --apply--> apply::Outcome
//!              (+ secret files)    (state, targets)   (tenant read,        (refusals,
//!                                                      reference check)     then writes)
//! ```
//!
//! - [`prepare`]: [`Specs`] (the specs of a snapshot with every diagnostic, and where their
//!   secrets come from) and [`Prepared`] (valid specs, the state, the comparable targets).
//! - [`plan`]: [`Planned`] (what the tenant says, the reference check, the plan), and the
//!   offline `plan --base` path ([`plan_offline`]).
//! - [`apply`]: the safety refusals, with [`Safety`](crate::plan::Safety) built in one place
//!   ([`Overrides::safety`]) from the operator's flags and the repository settings, then the
//!   writes.
//! - [`saved`]: the saved-plan file of `plan --out` / `apply FILE` and its stale check.
//!
//! Every step fails closed with a typed [`Error`]: a spec error, an unreadable secret or a
//! failed tenant read stops the pipeline; none is ever taken for "nothing to do". Callers keep
//! what is theirs: the CLI prints and asks, the daemon records status and metrics, and either
//! may abandon a stage that only reads (the futures change nothing until `apply`).

pub mod apply;
pub mod plan;
pub mod prepare;
pub mod saved;

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;
use crate::live;
use crate::plan::Refusal;
use crate::spec::LoadOptions;
use crate::spec::secrets::InterpolateError;
use crate::state::store;

pub use self::apply::{ApplyOptions, Overrides};
pub use self::plan::{OFFLINE_SALT, Offline, PlanProgress, Planned, observe, plan_offline};
pub use self::prepare::{Prepared, Specs};

/// What loading a spec tree needs from outside the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// How to load (`--strict`, offline, the set environment variables).
    pub options: LoadOptions,
    /// Where `${file:PATH}` placeholders are read from.
    pub secrets_dir: PathBuf,
}

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The specs have errors (the diagnostics say which).
    #[error("the specs have {errors} error(s); first: {first}")]
    Specs {
        /// Number of errors.
        errors: usize,
        /// The first error, for one-line reports.
        first: String,
        /// Every diagnostic.
        diagnostics: Vec<Diagnostic>,
    },
    /// A placeholder could not be filled in.
    #[error("{object}")]
    Secret {
        /// The object.
        object: String,
        /// The cause.
        #[source]
        source: InterpolateError,
    },
    /// The tenant could not be read (fail closed).
    #[error(
        "cannot read the tenant; nothing was planned (a failed read is never taken for an empty tenant)"
    )]
    Live(#[from] live::Error),
    /// The state could not be read or written.
    #[error(transparent)]
    State(#[from] store::Error),
    /// The digest key could not be read or made.
    #[error(transparent)]
    Key(#[from] crate::state::key::Error),
    /// The state belongs to another tenant.
    #[error("{state} belongs to {found}, not {expected}: use another state for this tenant")]
    TenantMismatch {
        /// The state.
        state: String,
        /// The tenant recorded in it.
        found: String,
        /// The tenant in use.
        expected: String,
    },
    /// The state's secret digests were made with another key.
    #[error(
        "{state} was written with another digest key than {origin}: give the key it was written \
         with (--digest-key-file or IMMUTA_GITOPS_DIGEST_KEY); nothing was planned"
    )]
    KeyMismatch {
        /// The state.
        state: String,
        /// Where the key in use came from.
        origin: String,
    },
    /// The state's secret digests need a key that is not there.
    #[error(
        "{state} was written with a digest key that is not available: restore its key file, or \
         give the key (--digest-key-file or IMMUTA_GITOPS_DIGEST_KEY); nothing was planned"
    )]
    KeyMissing {
        /// The state.
        state: String,
    },
    /// The plan must not be carried out as is ([`Planned::refusals`]); nothing was written.
    #[error("refusing to apply: {}", refusals.iter().map(|r| format!("{} ({})", r.message, r.hint)).collect::<Vec<_>>().join("; "))]
    Refused {
        /// Every reason, with how to proceed.
        refusals: Vec<Refusal>,
    },
    /// An apply stopped as a whole (one object failing is a result, not an error).
    #[error(transparent)]
    Apply(#[from] crate::apply::Error),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
