//! An immutable set of spec files at one revision: the seam between sources and the pipeline.
//!
//! Sources (a Git commit, a local directory) produce a [`Snapshot`]; everything after it (loading,
//! validation, planning) consumes one and never touches the file system or the network. A source
//! never parses specs: problems it meets while reading (a file too large, a symlink leaving the
//! spec root, unreadable bytes) are recorded as data in [`FileContent`] so the loader can report
//! them alongside every other diagnostic.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Files of a spec tree at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The revision: a Git commit id, or `dir:<sha256 of the contents>` for a local directory.
    pub revision: String,
    /// The files, sorted by path. Paths are relative to the spec root and use `/`.
    pub files: Vec<SnapshotFile>,
}

/// One file of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Path relative to the spec root, `/`-separated (for example `policies/mask.yaml`).
    pub path: String,
    /// The bytes, or why they could not be read.
    pub content: FileContent,
}

/// What a source could read of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// The file's bytes.
    Bytes(Arc<[u8]>),
    /// The file is larger than the source's limit and was not read.
    TooLarge {
        /// Size of the file in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is a symlink whose target lies outside the spec root; it was not followed.
    OutsideRoot {
        /// Where the link points, as the link says it.
        target: String,
    },
    /// The file could not be read (permissions, a dangling symlink, an I/O error).
    Unreadable {
        /// What went wrong.
        reason: String,
    },
}

impl Snapshot {
    /// Builds a snapshot from files, sorting them by path. The revision is given by the caller.
    pub fn new(revision: impl Into<String>, mut files: Vec<SnapshotFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Snapshot { revision: revision.into(), files }
    }

    /// Builds a snapshot from in-memory `(path, text)` pairs, with a content-derived revision.
    ///
    /// Used by tests, benchmarks and `plan --base` (where the files come from a Git tree).
    pub fn from_texts<P: Into<String>, T: AsRef<[u8]>>(
        files: impl IntoIterator<Item = (P, T)>,
    ) -> Self {
        let files = files
            .into_iter()
            .map(|(path, text)| SnapshotFile {
                path: path.into(),
                content: FileContent::Bytes(Arc::from(text.as_ref())),
            })
            .collect();
        let mut snapshot = Snapshot::new(String::new(), files);
        snapshot.revision = snapshot.content_revision();
        snapshot
    }

    /// A revision derived from the paths and contents: `dir:` + the first 16 hex digits of a
    /// SHA-256 over every path and content. Two snapshots with the same files have the same one.
    pub fn content_revision(&self) -> String {
        let mut hasher = Sha256::new();
        for file in &self.files {
            hasher.update((file.path.len() as u64).to_le_bytes());
            hasher.update(file.path.as_bytes());
            match &file.content {
                FileContent::Bytes(bytes) => {
                    hasher.update([0]);
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(bytes);
                }
                FileContent::TooLarge { size, .. } => {
                    hasher.update([1]);
                    hasher.update(size.to_le_bytes());
                }
                FileContent::OutsideRoot { target } => {
                    hasher.update([2]);
                    hasher.update(target.as_bytes());
                }
                FileContent::Unreadable { reason } => {
                    hasher.update([3]);
                    hasher.update(reason.as_bytes());
                }
            }
        }
        let digest = hasher.finalize();
        format!("dir:{}", &hex::encode(digest)[..16])
    }

    /// Keeps only the files under `sub_path` (a `/`-separated prefix) and makes their paths
    /// relative to it. An empty prefix keeps everything.
    pub fn with_sub_path(self, sub_path: &str) -> Self {
        let prefix = sub_path.trim_matches('/');
        if prefix.is_empty() {
            return self;
        }
        let files = self
            .files
            .into_iter()
            .filter_map(|mut f| {
                let rest = f.path.strip_prefix(prefix)?.strip_prefix('/')?.to_owned();
                f.path = rest;
                Some(f)
            })
            .collect();
        Snapshot { revision: self.revision, files }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_revision_depends_on_paths_and_bytes_only() {
        let a = Snapshot::from_texts([("a.yaml", "x: 1"), ("b.yaml", "y: 2")]);
        let b = Snapshot::from_texts([("b.yaml", "y: 2"), ("a.yaml", "x: 1")]);
        let c = Snapshot::from_texts([("a.yaml", "x: 2"), ("b.yaml", "y: 2")]);
        assert_eq!(a.revision, b.revision);
        assert_ne!(a.revision, c.revision);
        assert!(a.revision.starts_with("dir:"));
    }

    #[test]
    fn sub_path_keeps_only_files_below_it() {
        let s =
            Snapshot::from_texts([("specs/a.yaml", "x"), ("specsx/b.yaml", "y"), ("c.yaml", "z")]);
        let sub = s.with_sub_path("/specs/");
        let paths: Vec<_> = sub.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.yaml"]);
    }
}
