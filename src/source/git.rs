//! Spec trees read straight from Git objects: a revision of a local repository (`plan --base`).
//!
//! Files are read from the commit's tree; no worktree is checked out, so the result cannot be
//! mixed with uncommitted edits, and a `.gitignore`d file never sneaks in. The remote source
//! ([`super::remote`]) reads its fetched commits with the same tree reader.

use std::path::Path;
use std::sync::Arc;

use super::{Error, Result};
use crate::snapshot::{FileContent, Snapshot, SnapshotFile};

/// Reads the files under `sub_path` (relative to the repository root, `/`-separated; empty for
/// the whole tree) at `rev` (any revision git understands: a branch, a tag, `HEAD~1`, a commit
/// id) of the repository containing `repo_dir`. `include` selects paths relative to `sub_path`.
pub fn read_revision(
    repo_dir: &Path,
    rev: &str,
    sub_path: &str,
    include: fn(&str) -> bool,
    max_file_size: u64,
) -> Result<Snapshot> {
    read_revision_like(
        repo_dir,
        rev,
        sub_path,
        include,
        max_file_size,
        &Snapshot::new(String::new(), Vec::new()),
    )
}

/// [`read_revision`], taking the bytes of every file whose blob is a file of `known` from
/// `known` instead of inflating it (`plan --base` passes the working tree, which shares most
/// files with the base revision; the snapshots then share those bytes too).
pub fn read_revision_like(
    repo_dir: &Path,
    rev: &str,
    sub_path: &str,
    include: fn(&str) -> bool,
    max_file_size: u64,
    known: &Snapshot,
) -> Result<Snapshot> {
    let shown = repo_dir.display().to_string();
    let git = |message: String| Error::Git { path: shown.clone(), message };
    let repo = gix::discover(repo_dir).map_err(|e| git(e.to_string()))?;
    let commit = repo
        .rev_parse_single(rev)
        .map_err(|e| {
            git(format!(
                "revision `{rev}` not found ({e}); fetch it first (e.g. `git fetch origin main`)"
            ))
        })?
        .object()
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| git(e.to_string()))?;
    let hash = repo.object_hash();
    let known: Known = known
        .files
        .iter()
        .filter_map(|f| match &f.content {
            FileContent::Bytes(bytes) => {
                gix::objs::compute_hash(hash, gix::objs::Kind::Blob, bytes)
                    .ok()
                    .map(|id| (id, Arc::clone(bytes)))
            }
            _ => None,
        })
        .collect();
    match read_tree(&commit, sub_path, include, max_file_size, &known).map_err(git)? {
        Some(snapshot) => Ok(snapshot),
        // The spec root does not exist at that revision: an empty tree, not an error (a PR that
        // adds the spec tree plans everything as new).
        None => Ok(Snapshot::new(commit.id.to_string(), Vec::new())),
    }
}

/// Reads the files under `sub_path` of `commit`'s tree into a snapshot whose revision is the
/// commit id; `None` when `sub_path` does not exist at that commit (callers decide whether that
/// is an empty tree or an error).
///
/// Hidden entries are skipped, symlinks are recorded as [`FileContent::OutsideRoot`] and never
/// followed, blobs above `max_file_size` are recorded as [`FileContent::TooLarge`] without being
/// inflated, and submodules (commit entries) are skipped. Any error reading an object is returned:
/// a tree that cannot be read completely is never a partial snapshot.
pub(super) fn read_tree(
    commit: &gix::Commit<'_>,
    sub_path: &str,
    include: fn(&str) -> bool,
    max_file_size: u64,
    known: &Known,
) -> std::result::Result<Option<Snapshot>, String> {
    let text = |e: gix::Error| e.to_string();
    let root = commit.tree().map_err(text)?;
    let prefix = sub_path.trim_start_matches("./").trim_matches('/');
    let tree = if prefix.is_empty() {
        root
    } else {
        match root.lookup_entry_by_path(prefix).map_err(text)? {
            Some(entry) if entry.mode().is_tree() => {
                entry.object().and_then(|o| o.peel_to_tree()).map_err(text)?
            }
            Some(_) => return Err(format!("`{prefix}` is not a directory")),
            None => return Ok(None),
        }
    };
    let mut files = Vec::new();
    let mut budget = super::max_tree_size();
    let limit = budget;
    walk(&tree, "", include, max_file_size, known, &mut files, &mut budget)
        .map_err(|e| if e.is_empty() { super::tree_too_large(limit) } else { e })?;
    Ok(Some(Snapshot::new(commit.id.to_string(), files)))
}

/// Pre-order walk of `tree` (entries in Git's order, a directory's files where it stands),
/// appending the included files under `dir` to `files`.
fn walk(
    tree: &gix::Tree<'_>,
    dir: &str,
    include: fn(&str) -> bool,
    max_file_size: u64,
    known: &Known,
    files: &mut Vec<SnapshotFile>,
    budget: &mut u64,
) -> std::result::Result<(), String> {
    let text = |e: gix::Error| e.to_string();
    for entry in tree.iter() {
        let entry = entry.map_err(text)?;
        let name = String::from_utf8_lossy(entry.filename());
        if name.starts_with('.') {
            continue;
        }
        let path = format!("{dir}{name}");
        let mode = entry.mode();
        if mode.is_tree() {
            let sub = entry.object().and_then(|o| o.peel_to_tree()).map_err(text)?;
            walk(&sub, &format!("{path}/"), include, max_file_size, known, files, budget)?;
            continue;
        }
        if mode.is_commit() || !include(&path) {
            continue;
        }
        let id = entry.object_id();
        let repo = entry.repo();
        let content = if mode.is_link() {
            // The blob holds the link target; it is never followed.
            let blob = repo.find_blob(id).map_err(text)?;
            FileContent::OutsideRoot { target: String::from_utf8_lossy(&blob.data).into_owned() }
        } else if let Some(bytes) = known.get(&id) {
            FileContent::Bytes(Arc::clone(bytes))
        } else {
            // The header gives the size without inflating the object.
            let size = repo.find_header(id).map_err(text)?.size();
            if size <= max_file_size {
                // The total size limit, checked before inflating: an empty error means "over".
                *budget = budget.checked_sub(size).ok_or_else(String::new)?;
            }
            if size > max_file_size {
                FileContent::TooLarge { size, limit: max_file_size }
            } else {
                FileContent::Bytes(Arc::from(repo.find_blob(id).map_err(text)?.data.as_slice()))
            }
        };
        files.push(SnapshotFile { path, content });
    }
    Ok(())
}

/// File contents by blob id, already in memory.
pub(super) type Known = std::collections::HashMap<gix::ObjectId, Arc<[u8]>>;

/// The path of `dir` relative to the root of the Git repository containing it (`/`-separated),
/// for `plan --base` on a spec root below the repository root.
pub fn path_in_repo(dir: &Path) -> Result<String> {
    let shown = dir.display().to_string();
    let repo = gix::discover(dir)
        .map_err(|e| Error::Git { path: shown.clone(), message: e.to_string() })?;
    let workdir = repo.workdir().ok_or_else(|| Error::Git {
        path: shown.clone(),
        message: "the repository is bare; --base needs a checkout".into(),
    })?;
    let canonical =
        std::fs::canonicalize(dir).map_err(|source| Error::Io { path: shown.clone(), source })?;
    let workdir = std::fs::canonicalize(workdir)
        .map_err(|source| Error::Io { path: shown.clone(), source })?;
    let rel = canonical.strip_prefix(&workdir).unwrap_or(Path::new(""));
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    }

    #[test]
    fn reads_a_sub_tree_at_a_revision_without_the_worktree() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        std::fs::create_dir_all(dir.path().join("specs/p")).unwrap();
        std::fs::create_dir_all(dir.path().join(".github")).unwrap();
        std::fs::write(dir.path().join("specs/p/a.yaml"), "name: A\n").unwrap();
        std::fs::write(dir.path().join(".github/ci.yml"), "x: 1\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "hi\n").unwrap();
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "one"]);
        std::fs::write(dir.path().join("specs/p/a.yaml"), "name: B\n").unwrap();
        git(dir.path(), &["commit", "-q", "-am", "two"]);
        std::fs::write(dir.path().join("specs/p/a.yaml"), "name: uncommitted\n").unwrap();

        let s = read_revision(dir.path(), "HEAD~1", "specs", |_| true, 1 << 20).unwrap();
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].path, "p/a.yaml");
        assert_eq!(s.files[0].content, FileContent::Bytes(Arc::from(&b"name: A\n"[..])));
        assert_eq!(s.revision.len(), 40);
        let head = read_revision(
            dir.path(),
            "HEAD",
            "",
            |p| p.ends_with(".yaml") || p.ends_with(".yml"),
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            head.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["specs/p/a.yaml"]
        );
        assert!(read_revision(dir.path(), "no-such-branch", "", |_| true, 1 << 20).is_err());
        assert_eq!(path_in_repo(&dir.path().join("specs")).unwrap(), "specs");
    }

    #[test]
    fn known_files_are_reused_and_only_changed_blobs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        std::fs::write(dir.path().join("a.yaml"), "name: A\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "name: B\n").unwrap();
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "one"]);
        let shared: Arc<[u8]> = Arc::from(&b"name: A\n"[..]);
        let known = Snapshot::new(
            "work",
            vec![
                SnapshotFile { path: "a.yaml".into(), content: FileContent::Bytes(shared.clone()) },
                SnapshotFile {
                    path: "b.yaml".into(),
                    content: FileContent::Bytes(Arc::from(&b"name: B2\n"[..])),
                },
            ],
        );
        let plain = read_revision(dir.path(), "HEAD", "", |_| true, 1 << 20).unwrap();
        let like = read_revision_like(dir.path(), "HEAD", "", |_| true, 1 << 20, &known).unwrap();
        assert_eq!(like, plain);
        let FileContent::Bytes(a) = &like.files[0].content else { panic!("{like:?}") };
        assert!(Arc::ptr_eq(a, &shared), "the unchanged file shares the known bytes");
        assert_eq!(like.files[1].content, FileContent::Bytes(Arc::from(&b"name: B\n"[..])));
    }
}
