//! Sources produce immutable [`Snapshot`](crate::snapshot::Snapshot)s of a spec tree.
//!
//! **Invariant:** a source never parses specs. It reads bytes, applies size and path rules, and
//! records what it could not read as data in the snapshot.

pub mod dir;
pub mod git;

/// Errors of a source as a whole (a single unreadable file is recorded in the snapshot instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    #[error("cannot read spec root `{path}`: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
