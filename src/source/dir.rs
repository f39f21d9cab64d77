//! A local directory (or a single file) read into a snapshot.
//!
//! Hidden entries (`.git/`, `.github/`, Kubernetes' `..data/`) are skipped; symlinks are
//! followed only while their target stays inside the spec root (a Kubernetes ConfigMap mount is
//! a tree of such links), and files above a size limit are recorded, not read (and never read
//! past the limit, even when a file grows while it is read).
//!
//! A symlink leaving the root is recorded as [`FileContent::OutsideRoot`]: a file link under its
//! own path when `include` accepts it, a directory link under its path plus a trailing `/`
//! (whatever its name), so the loader can say that the files behind it were not read.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Error, Result};
use crate::snapshot::{FileContent, Snapshot, SnapshotFile};

/// Default limit on one file's size: 8 MiB is far above any sane spec file.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 8 * 1024 * 1024;

/// How a directory is read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Files larger than this are recorded as too large, not read.
    pub max_file_size: u64,
    /// Which relative paths to include (the caller decides what a spec file is).
    pub include: fn(&str) -> bool,
    /// The files read may hold at most this many bytes together ([`super::max_tree_size`]).
    pub max_total_size: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            include: |_| true,
            max_total_size: super::max_tree_size(),
        }
    }
}

/// A walk past the total size limit.
#[derive(Debug)]
struct OverLimit;

impl From<OverLimit> for std::io::Error {
    fn from(_: OverLimit) -> Self {
        std::io::Error::other(OverLimit)
    }
}

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the spec tree exceeds the total size limit")
    }
}

impl std::error::Error for OverLimit {}

/// Adds what `content` holds to `total`; past `limit`, the walk stops.
fn count(total: &mut u64, content: &FileContent, limit: u64) -> std::io::Result<()> {
    if let FileContent::Bytes(bytes) = content {
        *total = total.saturating_add(bytes.len() as u64);
        if *total > limit {
            return Err(OverLimit.into());
        }
    }
    Ok(())
}

/// Reads the tree under `root` (or the single file `root`) into a snapshot whose revision is a
/// digest of the contents.
pub fn read(root: &Path, options: &ReadOptions) -> Result<Snapshot> {
    let shown = root.display().to_string();
    let meta = fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: shown.clone() },
        _ => Error::Io { path: shown.clone(), source: e },
    })?;
    let canonical_root =
        fs::canonicalize(root).map_err(|e| Error::Io { path: shown.clone(), source: e })?;
    let mut files = Vec::new();
    if meta.is_file() {
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let content = read_file(&canonical_root, options.max_file_size);
        let mut total = 0;
        count(&mut total, &content, options.max_total_size).map_err(|_| Error::TreeTooLarge {
            path: shown.clone(),
            limit: options.max_total_size,
        })?;
        files.push(SnapshotFile { path: name, content });
    } else {
        let mut visited = HashSet::new();
        visited.insert(canonical_root.clone());
        let mut total = 0;
        walk(&canonical_root, &canonical_root, "", options, &mut visited, &mut files, &mut total)
            .map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<OverLimit>()) {
                Error::TreeTooLarge { path: shown.clone(), limit: options.max_total_size }
            } else {
                Error::Io { path: shown.clone(), source: e }
            }
        })?;
    }
    let mut snapshot = Snapshot::new(String::new(), files);
    snapshot.revision = snapshot.content_revision();
    Ok(snapshot)
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    options: &ReadOptions,
    visited: &mut HashSet<PathBuf>,
    out: &mut Vec<SnapshotFile>,
    total: &mut u64,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let path = entry.path();
        let file_type = entry.file_type()?;
        let (target, is_dir) = if file_type.is_symlink() {
            let link = fs::read_link(&path).map(|p| p.display().to_string()).unwrap_or_default();
            match fs::canonicalize(&path) {
                Ok(t) if t.starts_with(root) => {
                    let is_dir = t.is_dir();
                    (t, is_dir)
                }
                Ok(t) => {
                    let content = FileContent::OutsideRoot { target: link };
                    if t.is_dir() {
                        out.push(SnapshotFile { path: format!("{rel}/"), content });
                    } else if (options.include)(&rel) {
                        out.push(SnapshotFile { path: rel, content });
                    }
                    continue;
                }
                Err(e) => {
                    if (options.include)(&rel) {
                        let reason = format!("symlink to `{link}` cannot be followed: {e}");
                        out.push(SnapshotFile {
                            path: rel,
                            content: FileContent::Unreadable { reason },
                        });
                    }
                    continue;
                }
            }
        } else {
            (path.clone(), file_type.is_dir())
        };
        if is_dir {
            if visited.insert(target.clone()) {
                walk(root, &target, &rel, options, visited, out, total)?;
            }
        } else if (options.include)(&rel) {
            let content = read_file(&target, options.max_file_size);
            count(total, &content, options.max_total_size)?;
            out.push(SnapshotFile { path: rel, content });
        }
    }
    Ok(())
}

fn read_file(path: &Path, max: u64) -> FileContent {
    match fs::metadata(path) {
        Ok(m) if m.len() > max => FileContent::TooLarge { size: m.len(), limit: max },
        Ok(m) if !m.is_file() => FileContent::Unreadable { reason: "not a regular file".into() },
        Ok(m) => {
            // Read at most one byte past the limit: the file may grow between metadata and read.
            let mut bytes = Vec::with_capacity(usize::try_from(m.len()).unwrap_or(0));
            match fs::File::open(path)
                .and_then(|f| f.take(max.saturating_add(1)).read_to_end(&mut bytes))
            {
                Ok(n) if n as u64 > max => {
                    let size = fs::metadata(path).map_or(n as u64, |m| m.len().max(n as u64));
                    FileContent::TooLarge { size, limit: max }
                }
                Ok(_) => FileContent::Bytes(Arc::from(bytes)),
                Err(e) => FileContent::Unreadable { reason: e.to_string() },
            }
        }
        Err(e) => FileContent::Unreadable { reason: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(s: &Snapshot) -> Vec<&str> {
        s.files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn reads_nested_files_sorted_and_skips_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("b/c")).unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join("b/c/x.yaml"), "x: 1").unwrap();
        fs::write(dir.path().join("a.yaml"), "a: 1").unwrap();
        fs::write(dir.path().join(".git/config"), "secret").unwrap();
        fs::write(dir.path().join(".hidden.yaml"), "h: 1").unwrap();
        let s = read(dir.path(), &ReadOptions::default()).unwrap();
        assert_eq!(paths(&s), ["a.yaml", "b/c/x.yaml"]);
        assert!(s.revision.starts_with("dir:"));
    }

    #[test]
    fn symlinks_inside_the_root_are_followed_and_outside_ones_recorded() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.yaml"), "s: 1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("..data")).unwrap();
        fs::write(dir.path().join("..data/spec.yaml"), "name: P").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("..data/spec.yaml"),
            dir.path().join("spec.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.yaml"),
            dir.path().join("leak.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("elsewhere")).unwrap();
        let s = read(
            dir.path(),
            &ReadOptions { include: |p| p.ends_with(".yaml"), ..Default::default() },
        )
        .unwrap();
        assert_eq!(paths(&s), ["elsewhere/", "leak.yaml", "spec.yaml"]);
        assert!(matches!(s.files[0].content, FileContent::OutsideRoot { .. }));
        assert!(matches!(s.files[1].content, FileContent::OutsideRoot { .. }));
        assert_eq!(s.files[2].content, FileContent::Bytes(Arc::from(&b"name: P"[..])));
    }

    #[test]
    fn large_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big.yaml"), vec![b'x'; 100]).unwrap();
        let s = read(dir.path(), &ReadOptions { max_file_size: 10, ..Default::default() }).unwrap();
        assert_eq!(s.files[0].content, FileContent::TooLarge { size: 100, limit: 10 });
    }

    #[test]
    fn a_missing_root_is_an_error_and_a_single_file_works() {
        assert!(matches!(
            read(Path::new("/nonexistent/x"), &ReadOptions::default()),
            Err(Error::NotFound { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("one.yaml"), "name: P").unwrap();
        let s = read(&dir.path().join("one.yaml"), &ReadOptions::default()).unwrap();
        assert_eq!(paths(&s), ["one.yaml"]);
    }

    #[test]
    fn a_tree_over_the_total_size_limit_is_an_error_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.yaml", "b.yaml", "c.yaml"] {
            fs::write(dir.path().join(name), "x".repeat(40)).unwrap();
        }
        let options = |max_total_size| ReadOptions { max_total_size, ..Default::default() };
        assert_eq!(read(dir.path(), &options(120)).unwrap().files.len(), 3);
        let e = read(dir.path(), &options(100)).unwrap_err();
        assert!(matches!(e, Error::TreeTooLarge { limit: 100, .. }), "{e:?}");
        assert!(e.to_string().contains(super::super::MAX_TREE_SIZE_ENV), "{e}");
        let e = read(&dir.path().join("a.yaml"), &options(10)).unwrap_err();
        assert!(matches!(e, Error::TreeTooLarge { .. }), "{e:?}");
    }
}
