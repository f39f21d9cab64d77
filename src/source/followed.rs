//! The source the reconciler follows: a remote Git repository, or a local directory that is
//! watched. Both read as snapshots ([`Followed::fetch`]); a watched directory also says when it
//! may have changed ([`Followed::changed`]), so the daemon's loop waits on it like on a timer.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::remote::{self, GitSource, GitSourceConfig};
use super::watch::{self, DirWatch};
use super::{Error, Result, dir};
use crate::snapshot::Snapshot;

/// Where the specs come from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// A Git repository, fetched shallowly into a bare cache.
    Git(GitSourceConfig),
    /// A local directory, watched.
    Dir {
        /// The spec root.
        root: PathBuf,
        /// Which relative paths to read (callers pass
        /// [`is_snapshot_file`](crate::spec::is_snapshot_file)).
        include: fn(&str) -> bool,
        /// Quiet time that ends a burst of file events.
        debounce: Duration,
        /// Periodic rescan, as a safety net for missed events.
        rescan_every: Duration,
    },
}

impl SourceConfig {
    /// The source for logs and `/status` (any password in a URL masked).
    pub fn describe(&self) -> String {
        match self {
            SourceConfig::Git(g) => {
                let path = if g.sub_path.is_empty() {
                    String::new()
                } else {
                    format!(" path {}", g.sub_path)
                };
                format!("{} ({}){path}", remote::redact_url(&g.url), g.reference)
            }
            SourceConfig::Dir { root, .. } => format!("directory {}", root.display()),
        }
    }

    /// How logs name a revision of this source, as Flux does: `main@sha1:<id>` for a branch
    /// or a tag, `sha1:<id>` for a pinned commit, the content digest of a directory as is.
    pub fn revision_label(&self, revision: &str) -> String {
        match self {
            SourceConfig::Git(g) => match &g.reference {
                remote::GitRef::Commit(_) => format!("sha1:{revision}"),
                reference => format!("{}@sha1:{revision}", reference.name()),
            },
            SourceConfig::Dir { .. } => revision.to_owned(),
        }
    }
}

/// A followed source.
pub struct Followed {
    kind: Kind,
}

enum Kind {
    Git(GitSource),
    Dir {
        root: PathBuf,
        include: fn(&str) -> bool,
        /// Kept alive for its `Drop`, which stops the watcher.
        _watch: DirWatch,
        /// One `()` per burst of changes (and per rescan tick).
        changed: mpsc::Receiver<()>,
    },
}

impl std::fmt::Debug for Followed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Git(_) => f.write_str("Followed::Git"),
            Kind::Dir { root, .. } => f.debug_struct("Followed::Dir").field("root", root).finish(),
        }
    }
}

impl Followed {
    /// Starts following `config` (a directory watch starts at once: call inside a Tokio
    /// runtime). Fails when a directory cannot be watched.
    pub fn start(config: &SourceConfig) -> Result<Followed> {
        let kind = match config {
            SourceConfig::Git(g) => Kind::Git(GitSource::new(g.clone())),
            SourceConfig::Dir { root, include, debounce, rescan_every } => {
                let (watch, changed) = watch::watcher(root.clone(), *debounce, *rescan_every)?;
                Kind::Dir { root: root.clone(), include: *include, _watch: watch, changed }
            }
        };
        Ok(Followed { kind })
    }

    /// The snapshot at the source's newest revision, or `None` when that is `last`. Only reads:
    /// dropping the future abandons it.
    pub async fn fetch(&self, last: Option<&str>) -> Result<Option<Snapshot>> {
        match &self.kind {
            Kind::Git(g) => g.fetch(last).await,
            Kind::Dir { root, include, .. } => {
                let (root, include) = (root.clone(), *include);
                let snapshot = tokio::task::spawn_blocking(move || {
                    dir::read(&root, &dir::ReadOptions { include, ..Default::default() })
                })
                .await
                .map_err(|e| Error::Io {
                    path: "watched directory".into(),
                    source: std::io::Error::other(e),
                })??;
                Ok((last != Some(snapshot.revision.as_str())).then_some(snapshot))
            }
        }
    }

    /// Completes when a watched directory may have changed; never for a Git source (it is
    /// polled) or once the watch has stopped. Cancel-safe.
    pub async fn changed(&mut self) {
        match &mut self.kind {
            Kind::Dir { changed, .. } => {
                if changed.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            Kind::Git(_) => std::future::pending().await,
        }
    }

    /// Takes a pending change signal, if one is waiting (so a burst coalesces into the pass
    /// that is about to run).
    pub fn take_changed(&mut self) -> bool {
        match &mut self.kind {
            Kind::Dir { changed, .. } => changed.try_recv().is_ok(),
            Kind::Git(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_file(_: &str) -> bool {
        true
    }

    #[tokio::test]
    async fn a_directory_reads_again_only_when_its_revision_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "name: Research\n").unwrap();
        let config = SourceConfig::Dir {
            root: dir.path().to_path_buf(),
            include: any_file,
            debounce: Duration::from_millis(10),
            rescan_every: Duration::from_secs(3600),
        };
        assert_eq!(config.describe(), format!("directory {}", dir.path().display()));
        assert_eq!(config.revision_label("dir:abc"), "dir:abc");
        let git = SourceConfig::Git(GitSourceConfig::new(
            "https://h/r.git",
            remote::GitRef::Branch("refs/heads/main".into()),
            "/c",
        ));
        assert_eq!(git.revision_label("0123"), "main@sha1:0123");
        let mut followed = Followed::start(&config).unwrap();
        let first = followed.fetch(None).await.unwrap().unwrap();
        assert_eq!(followed.fetch(Some(&first.revision)).await.unwrap(), None);
        std::fs::write(dir.path().join("a.yaml"), "name: Audit\n").unwrap();
        let second = followed.fetch(Some(&first.revision)).await.unwrap().unwrap();
        assert_ne!(second.revision, first.revision);
        // The change was signalled (the watch may take a moment to deliver it).
        tokio::time::timeout(Duration::from_secs(10), followed.changed()).await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_directory_cannot_be_followed() {
        let dir = tempfile::tempdir().unwrap();
        let config = SourceConfig::Dir {
            root: dir.path().join("missing"),
            include: any_file,
            debounce: Duration::from_millis(10),
            rescan_every: Duration::from_secs(3600),
        };
        assert!(matches!(Followed::start(&config), Err(Error::NotFound { .. })));
    }
}
