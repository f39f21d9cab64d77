//! A watched local directory: one "dirty" signal per burst of file events, plus a periodic rescan
//! tick as the safety net for events that never come.
//!
//! # Contract
//!
//! [`watcher`] returns a [`DirWatch`] guard and a [`Receiver<()>`](tokio::sync::mpsc::Receiver).
//! Each `()` means only "the tree may have changed": the consumer rescans with
//! [`super::dir::read`] and compares the snapshot's revision with the last one. The watcher never
//! reads or parses files, and it never says *which* file changed, because that answer is wrong
//! for the case that matters most: a Kubernetes ConfigMap update swaps a `..data` symlink
//! atomically, the user-visible `spec.yaml -> ..data/spec.yaml` link gets no event at all, and the
//! events that do come name paths under the *old* target (see `rust-crates.md` §3).
//!
//! - Events: `notify-debouncer-full` watches the root recursively with the platform's native
//!   watcher (inotify on Linux), or with [`notify::PollWatcher`] when the native one cannot start
//!   (no inotify, watch limit reached). Every debounced burst holding at least one event that is
//!   not an `Access` sends one signal; watcher errors (such as an inotify queue overflow) do too.
//! - Rescan tick: every `rescan_every`, a signal is sent whatever happened. It covers missed or
//!   overflowed events, NFS and overlay mounts that deliver none, and single-file or `subPath`
//!   mounts that are never updated in place.
//! - Coalescing: the channel holds one signal; a signal sent while one is pending is dropped,
//!   which is right since one rescan answers both.
//! - Dropping the [`DirWatch`] stops the watcher and the tick; the receiver then yields `None`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    DebounceEventResult, Debouncer, NoCache, RecommendedCache, new_debouncer, new_debouncer_opt,
};
use tokio::sync::mpsc;

use super::{Error, Result};

/// The shortest debounce accepted (notify's debouncer ticks at a quarter of it).
const MIN_DEBOUNCE: Duration = Duration::from_millis(10);

/// The shortest poll interval used when falling back to polling (each poll walks the tree).
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Which mechanism delivers the file events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchBackend {
    /// The platform's native watcher (inotify on Linux).
    Native,
    /// Polling the tree's metadata, the fallback when the native watcher cannot start.
    Poll,
}

/// A running directory watch. Dropping it stops the watcher and the rescan tick.
pub struct DirWatch {
    root: PathBuf,
    backend: WatchBackend,
    /// Kept alive for its `Drop`, which stops notify's threads.
    _debouncer: Watching,
    /// The periodic rescan tick.
    ticker: tokio::task::JoinHandle<()>,
}

/// The debouncer of either backend, held only for its `Drop`.
#[expect(dead_code, reason = "held only so that its Drop stops notify's threads")]
enum Watching {
    Native(Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(Debouncer<PollWatcher, NoCache>),
}

impl std::fmt::Debug for DirWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatch")
            .field("root", &self.root)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl DirWatch {
    /// The watched root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Which mechanism delivers the events (for the startup log).
    pub fn backend(&self) -> WatchBackend {
        self.backend
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// Watches `root` recursively. Returns the guard and a receiver that gets one `()` per debounced
/// burst of changes (bursts end after `debounce` without events) and one every `rescan_every`.
///
/// Must be called inside a Tokio runtime (the tick is a Tokio task, so tests can pause time).
/// Fails when `root` does not exist, when `rescan_every` is zero, or when neither the native
/// watcher nor polling can watch the root.
pub fn watcher(
    root: PathBuf,
    debounce: Duration,
    rescan_every: Duration,
) -> Result<(DirWatch, mpsc::Receiver<()>)> {
    start(root, debounce, rescan_every, false)
}

fn start(
    root: PathBuf,
    debounce: Duration,
    rescan_every: Duration,
    force_poll: bool,
) -> Result<(DirWatch, mpsc::Receiver<()>)> {
    let shown = root.display().to_string();
    let watch_error = |message: String| Error::Watch { path: shown.clone(), message };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| watch_error("the watcher must be started inside a Tokio runtime".into()))?;
    if rescan_every.is_zero() {
        return Err(watch_error("the rescan interval must be longer than zero".into()));
    }
    std::fs::metadata(&root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: shown.clone() },
        _ => Error::Io { path: shown.clone(), source: e },
    })?;
    let debounce = debounce.max(MIN_DEBOUNCE);
    let (tx, rx) = mpsc::channel(1);

    let native = if force_poll {
        Err("polling was requested".to_owned())
    } else {
        watch_native(&root, debounce, tx.clone())
    };
    let (debouncer, backend) = match native {
        Ok(debouncer) => (Watching::Native(debouncer), WatchBackend::Native),
        Err(native_error) => {
            tracing::warn!(
                root = %shown,
                error = %native_error,
                "the native file watcher cannot start; polling instead"
            );
            let debouncer = watch_polling(&root, debounce, tx.clone()).map_err(|e| {
                watch_error(format!("{native_error}; polling cannot start either: {e}"))
            })?;
            (Watching::Poll(debouncer), WatchBackend::Poll)
        }
    };
    let ticker = runtime.spawn(tick(tx, rescan_every));
    Ok((DirWatch { root, backend, _debouncer: debouncer, ticker }, rx))
}

fn watch_native(
    root: &Path,
    debounce: Duration,
    tx: mpsc::Sender<()>,
) -> std::result::Result<Debouncer<RecommendedWatcher, RecommendedCache>, String> {
    let mut debouncer = new_debouncer(debounce, None, on_events(tx)).map_err(|e| e.to_string())?;
    debouncer.watch(root, RecursiveMode::Recursive).map_err(|e| e.to_string())?;
    Ok(debouncer)
}

fn watch_polling(
    root: &Path,
    debounce: Duration,
    tx: mpsc::Sender<()>,
) -> std::result::Result<Debouncer<PollWatcher, NoCache>, String> {
    let config = notify::Config::default().with_poll_interval(debounce.max(MIN_POLL_INTERVAL));
    let mut debouncer = new_debouncer_opt::<_, PollWatcher, NoCache>(
        debounce,
        None,
        on_events(tx),
        NoCache::new(),
        config,
    )
    .map_err(|e| e.to_string())?;
    debouncer.watch(root, RecursiveMode::Recursive).map_err(|e| e.to_string())?;
    Ok(debouncer)
}

/// The debouncer's handler (it runs on notify's thread): any burst with a non-`Access` event, or
/// any watcher error, marks the tree dirty.
fn on_events(tx: mpsc::Sender<()>) -> impl FnMut(DebounceEventResult) + Send + 'static {
    move |result: DebounceEventResult| {
        let dirty = match result {
            Ok(events) => events.iter().any(|e| !matches!(e.event.kind, EventKind::Access(_))),
            Err(errors) => {
                for error in &errors {
                    tracing::warn!(%error, "file watcher error; rescanning");
                }
                true
            }
        };
        if dirty {
            signal(&tx);
        }
    }
}

/// Sends a dirty signal unless one is already pending (or nobody listens any more).
fn signal(tx: &mpsc::Sender<()>) -> bool {
    !matches!(tx.try_send(()), Err(mpsc::error::TrySendError::Closed(())))
}

async fn tick(tx: mpsc::Sender<()>, every: Duration) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !signal(&tx) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    async fn next(rx: &mut mpsc::Receiver<()>) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await, Ok(Some(())))
    }

    #[tokio::test]
    async fn polling_is_a_working_fallback() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "a: 1").unwrap();
        let (watch, mut rx) =
            start(dir.path().to_path_buf(), Duration::from_millis(100), LONG, true).unwrap();
        assert_eq!(watch.backend(), WatchBackend::Poll);
        // Let the poller take its first look before changing anything.
        tokio::time::sleep(Duration::from_millis(300)).await;
        fs::write(dir.path().join("b.yaml"), "b: 1").unwrap();
        assert!(next(&mut rx).await, "no signal from the poll watcher");
    }

    #[tokio::test]
    async fn a_missing_root_or_a_zero_interval_is_an_error() {
        let missing =
            watcher(PathBuf::from("/nonexistent/specs"), Duration::from_millis(100), LONG);
        assert!(matches!(missing, Err(Error::NotFound { .. })));
        let dir = tempfile::tempdir().unwrap();
        let zero = watcher(dir.path().to_path_buf(), Duration::from_millis(100), Duration::ZERO);
        assert!(matches!(zero, Err(Error::Watch { .. })));
    }

    #[test]
    fn outside_a_runtime_it_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let result = watcher(dir.path().to_path_buf(), Duration::from_millis(100), LONG);
        assert!(matches!(result, Err(Error::Watch { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn the_tick_fires_on_schedule_and_coalesces() {
        let (tx, mut rx) = mpsc::channel(1);
        let task = tokio::spawn(tick(tx, Duration::from_secs(60)));
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(rx.try_recv().is_err());
        // Three periods pass unread: one pending signal, not three.
        tokio::time::sleep(Duration::from_secs(62 + 120)).await;
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
        drop(rx);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(task.is_finished(), "the tick stops once the receiver is gone");
    }
}
