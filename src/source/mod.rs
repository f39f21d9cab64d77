//! Sources produce immutable [`Snapshot`](crate::snapshot::Snapshot)s of a spec tree.
//!
//! **Invariant:** a source never parses specs. It reads bytes, applies size and path rules, and
//! records what it could not read as data in the snapshot. A source that cannot produce a
//! complete snapshot returns an [`Error`], never an empty or partial snapshot. (The one empty
//! snapshot on purpose: `plan --base` at a revision before the spec root existed.)
//!
//! - [`dir`]: a local directory (or file), read in full.
//! - [`watch`]: a "maybe changed" signal for a local directory; the consumer rereads with [`dir`].
//! - [`git`]: a revision of a local repository (`plan --base`); its tree reader is shared with
//!   [`remote`].
//! - [`remote`]: a remote repository followed through a shallow, bare cache (the sidecar).
//! - [`followed`]: what the reconciler follows, a remote repository or a watched directory, as
//!   one [`Followed`] source.

pub mod dir;
pub mod followed;
pub mod git;
pub mod remote;
pub mod watch;

use std::time::Duration;

pub use self::followed::{Followed, SourceConfig};

/// Default limit on the total size of a spec tree's files: 256 MiB, far above any real tree
/// (10,000 objects take a few MiB), well below what would exhaust a small pod's memory.
pub const DEFAULT_MAX_TREE_SIZE: u64 = 256 * 1024 * 1024;

/// The environment variable that raises (or lowers) the total size limit, in MiB.
pub const MAX_TREE_SIZE_ENV: &str = "IMMUTA_GITOPS_MAX_TREE_SIZE";

/// The total size limit of a spec tree: [`MAX_TREE_SIZE_ENV`] (MiB) when set to a number,
/// else [`DEFAULT_MAX_TREE_SIZE`]. Every source stops reading past it ([`Error::TreeTooLarge`]).
pub fn max_tree_size() -> u64 {
    std::env::var(MAX_TREE_SIZE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_MAX_TREE_SIZE, |mib| mib.saturating_mul(1024 * 1024))
}

/// The message of a tree over the limit, with how to raise it.
fn tree_too_large(limit: u64) -> String {
    format!(
        "the spec tree is larger than {} MiB in total; reading stopped\n  hint: check that the \
         spec root is the spec tree (not a data directory); to allow a larger tree, set \
         {MAX_TREE_SIZE_ENV} to a size in MiB (default {})",
        limit / (1024 * 1024),
        DEFAULT_MAX_TREE_SIZE / (1024 * 1024)
    )
}

/// Errors of a source as a whole (a single unreadable file is recorded in the snapshot instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The files of the spec tree together exceed the total size limit ([`max_tree_size`]).
    #[error("cannot read spec root `{path}`: {}", tree_too_large(*limit))]
    TreeTooLarge {
        /// The path as given.
        path: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The spec root does not exist.
    #[error("spec root `{path}` does not exist")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// A Git repository or revision cannot be read.
    #[error("git repository `{path}`: {message}")]
    Git {
        /// The repository path or URL.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The spec root cannot be read.
    #[error("cannot read spec root `{path}`")]
    Io {
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Talking to a remote Git repository failed (connect, authenticate, negotiate, download).
    #[error("fetching `{url}` failed: {message}\n  hint: {}", kind.hint())]
    Fetch {
        /// The remote URL, with any password in it masked.
        url: String,
        /// What kind of failure it was, for the hint and for retry decisions.
        kind: FetchErrorKind,
        /// Git's (or our) message, with credentials masked.
        message: String,
    },
    /// The configured branch, tag or commit does not exist at the remote (or the server refuses
    /// to serve that commit).
    #[error("{reference} not found at `{url}`{}", hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    RefNotFound {
        /// The remote URL, with any password in it masked.
        url: String,
        /// The reference as configured, e.g. ``branch `main` ``.
        reference: String,
        /// What to check.
        hint: Option<&'static str>,
    },
    /// The spec root does not exist (or is not a directory) at the fetched commit. An error, not
    /// an empty snapshot: a typo in the path must not read as "delete everything".
    #[error("spec root `{sub_path}` does not exist at commit {revision} of `{url}`")]
    SubPathNotFound {
        /// The remote URL, with any password in it masked.
        url: String,
        /// The fetched commit.
        revision: String,
        /// The spec root as configured.
        sub_path: String,
    },
    /// The configured reference is not a valid branch name, tag name or full commit id.
    #[error("invalid {reference}: {message}")]
    InvalidRef {
        /// The reference as configured.
        reference: String,
        /// What is wrong with it.
        message: String,
    },
    /// A fetch did not finish in time (it is cancelled in the background).
    #[error("fetching `{url}` timed out after {}", humantime::format_duration(*after))]
    Timeout {
        /// The remote URL, with any password in it masked.
        url: String,
        /// The time budget that ran out.
        after: Duration,
    },
    /// The local Git cache cannot be created, opened or rebuilt.
    #[error("git cache `{path}`: {message}")]
    Cache {
        /// The cache repository's path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A directory watch cannot be started.
    #[error("cannot watch `{path}`: {message}")]
    Watch {
        /// The watched root.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// What kind of failure a [`Error::Fetch`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// The remote rejected the credentials, or asked for credentials that are not configured.
    Auth,
    /// The server's TLS certificate or SSH host key could not be verified.
    Certificate,
    /// The remote could not be reached or the connection broke (worth retrying later).
    Network,
    /// Anything else the remote or the Git library reported.
    Other,
}

impl FetchErrorKind {
    /// What the user should check.
    pub fn hint(self) -> &'static str {
        match self {
            FetchErrorKind::Auth => {
                "authentication failed: check the token, password or SSH key and that it may \
                 read this repository"
            }
            FetchErrorKind::Certificate => {
                "the server's identity could not be verified: check the CA bundle (HTTPS) or \
                 `~/.ssh/known_hosts` (SSH)"
            }
            FetchErrorKind::Network => {
                "a network failure seems to have happened: check the URL, DNS, proxy and \
                 that the server is up; the next poll retries"
            }
            FetchErrorKind::Other => "the remote or the local Git library reported an error",
        }
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
