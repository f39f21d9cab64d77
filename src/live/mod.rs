//! The Immuta tenant: a REST client ([`client`]), the retry classifier ([`retry`]), tolerant
//! V1 listings ([`listing`]), the writes (`write.rs`: posts confirmed in the tenant's own
//! words, dry runs, deletes), the reads (`read.rs`: inventories and [`observe`], which reads
//! what a plan needs), and [`metadata`], the table tags the access impact asks for.
//!
//! Wire formats of the Immuta API live here and only here: V2 responses and V1 listings are
//! decoded into the plain [`crate::plan::observed`] types the planner reads.
//!
//! Decoding is as tolerant as the sources are varied, and fails closed only where a value the
//! plan needs is missing:
//! - Listed items are read for the few fields the plan uses (`Row`); every other field is
//!   skipped. Ids are numbers or numbers in strings.
//! - Purposes come flat (every subpurpose a row of its own, Immuta's Swagger `Model21`) or
//!   nested, with subpurposes as names (Swagger: `subpurposes: [string]`), as objects without
//!   an id (Terraform's `PurposeResponse.Subpurposes []Purpose{name, description,
//!   acknowledgement}`), or as objects with one. A subpurpose name without its parent's prefix
//!   is taken as the short name and qualified. Only root purposes need an id (they are deleted
//!   by id; a subpurpose goes with its root).
//! - Project `type` is read in any case (`schema`, `Schema`: the Swagger enum is capitalised).
//! - Licenses may come without an `id` (Swagger `Model39` has none); `licenseSeats` may be
//!   `"Unlimited"` (Swagger `x-alternatives`), which reads as no seat limit.

mod acknowledge;
pub mod client;
pub mod doctor;
mod license;
pub mod listing;
pub mod metadata;
mod read;
pub mod retry;
mod write;

pub use self::client::{Client, ClientConfig, Deadline, Observer, Request};
pub use self::license::{LicenseUsage, UserCount, license_usage};
pub use self::read::{
    DryRunRequest, Licenses, Reads, inventory, observe, observe_with, read_licenses,
};
pub use self::write::{
    Written, data_key_exists, delete, dry_run, missing_data_sources, v2_params, v2_path, write,
    write_deadline,
};
use crate::spec::secrets::InterpolateError;

/// Errors talking to the tenant.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// No answer (after retries): the tenant is unreachable, timed out or dropped the connection.
    #[error("cannot reach the Immuta tenant ({url}): {message}")]
    Transport {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// A write was sent but got no answer (a timeout, a dropped connection): it may have taken
    /// effect, so it was not sent again blindly.
    #[error("{method} {path} got no answer ({message}); it may have taken effect on the tenant")]
    NoAnswer {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// The transport error.
        message: String,
    },
    /// The API key (or token) was refused.
    #[error("the Immuta tenant refused the API key ({url}): {message}")]
    Unauthorized {
        /// The URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The key lacks a permission.
    #[error(
        "{method} {path} was refused (403): the API key lacks a permission ({message}); {}",
        permission_hint(path)
    )]
    Forbidden {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// The server's message.
        message: String,
    },
    /// Any other failed status (after retries for 429/502/503/504).
    #[error("{method} {path} failed ({status}): {message}")]
    Status {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// Status code.
        status: u16,
        /// The server's message (secrets masked).
        message: String,
    },
    /// A write answered by something other than the tenant's own words: a JSON answer of the
    /// documented shape. The write is not counted as done.
    #[error(
        "{method} {path} is not confirmed: the answer is {answer}, not the Immuta API's (a login \
         page, an SSO gateway or a proxy may have answered); the next plan shows what the tenant has"
    )]
    Unconfirmed {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// What came instead.
        answer: &'static str,
    },
    /// An answer we cannot read.
    #[error("unexpected answer from {path}: {message}")]
    Decode {
        /// Path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A placeholder could not be filled in.
    #[error(transparent)]
    Secret(#[from] InterpolateError),
}

impl Error {
    /// Whether the tenant rejected the request itself (a 4xx other than 401/403): the object is
    /// wrong, not the connection.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Status { status, .. } if (400..500).contains(status))
    }

    /// Whether a write that failed this way may still have taken effect: it got no answer, or a
    /// gateway gave up on it (`502`, `504`).
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, Error::NoAnswer { .. })
            || matches!(self, Error::Status { status: 502 | 504, .. })
    }
}

fn permission_hint(path: &str) -> &'static str {
    if path.starts_with("/api/v2/data") || path.starts_with("/dataSource") {
        "data sources need CREATE_DATA_SOURCE"
    } else if path.starts_with("/api/v2/project") {
        "projects need CREATE_PROJECT"
    } else if path.starts_with("/admin/license") {
        "licenses need APPLICATION_ADMIN (set IMMUTA_ADMIN_API_KEY when GOVERNANCE and APPLICATION_ADMIN are separate)"
    } else {
        "policies and purposes need GOVERNANCE"
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
