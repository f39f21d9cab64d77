//! A remote Git repository as a source: depth-1 fetches of one ref into a bare cache repository,
//! with the files read straight from the fetched commit's tree (nothing is checked out).
//!
//! # One fetch
//!
//! 1. Open the bare cache repository `cache_dir/<name>-<digest of the URL>.git`, creating it on
//!    first use. Only this source writes there.
//! 2. For a branch or a tag, list the remote's refs (one connection, no pack is transferred).
//!    A ref the remote does not advertise is [`Error::RefNotFound`]; an advertised commit equal to
//!    `last` is a no-op (`Ok(None)`, no tree read); a commit the cache already holds (after a
//!    restart) is read without downloading anything.
//! 3. Otherwise fetch exactly that ref with depth 1 and a forced refspec
//!    (`+refs/heads/B:refs/remotes/origin/B`, `+refs/tags/T:refs/tags/T`), so a force-push at the
//!    remote is followed like any other move. Tags are never auto-followed.
//! 4. Read the commit's tree under `sub_path` with [`super::git`]'s tree reader: hidden entries
//!    skipped, symlinks recorded as [`FileContent::OutsideRoot`](crate::snapshot::FileContent)
//!    and never followed, blobs above the size limit recorded, not inflated. The revision is the
//!    commit id. A `sub_path` missing at that commit is an error, never an empty snapshot.
//!
//! # Commit pins
//!
//! A [`GitRef::Commit`] must be a full 40-hex commit id. It is fetched **by id**, depth 1
//! (`+<id>:refs/pinned/commit`); the server must allow that (a plain `git` server needs
//! `uploadpack.allowReachableSHA1InWant=true`). When it refuses, the fetch fails with
//! [`Error::RefNotFound`] and a hint; we never fall back to fetching a branch deeper to find the
//! commit. Once the commit is in the cache, later fetches read it without any network: a commit
//! id names immutable content.
//!
//! # Timeouts
//!
//! All git2 work runs in [`tokio::task::spawn_blocking`]. Each call of [`GitSource::fetch`] is
//! bounded by `2 × (connect_timeout + transfer_timeout)` (the factor covers the one re-clone); when
//! that runs out the caller gets [`Error::Timeout`] at once, and the blocking task is told to stop:
//! the progress callbacks return `false` at their next call. Dropping the future (the daemon
//! abandons a fetch on shutdown) tells the task to stop the same way. Those callbacks also abort the
//! transfer once `transfer_timeout` has passed since the attempt started. A peer that goes
//! completely silent never calls them, so [`init_git_timeouts`] (called once from `main`) also sets
//! libgit2's process-wide socket timeouts.
//!
//! # Credentials
//!
//! [`GitAuth`] feeds libgit2's credential callback. libgit2 calls that callback again every time
//! the server rejects what it returned; a callback that always answers spins forever
//! (rust-lang/git2-rs#347). Ours answers each credential type at most once per connection and
//! fails the second time, so a wrong token is an [`FetchErrorKind::Auth`] error, not a loop.
//! Errors never contain credentials: the URL's password is masked and every configured secret is
//! scrubbed from libgit2's messages. HTTPS certificates are checked by libgit2 against the system
//! CA store; SSH host keys against `$HOME/.ssh/known_hosts` (mount one next to the key). Proxies
//! come from the usual `http(s)_proxy` environment and Git configuration.
//!
//! # The cache directory and libgit2's owner check
//!
//! libgit2 refuses to open a repository owned by another user ("not owned by current user"),
//! which bites containers whose volume was written under another uid. We leave that check **on**
//! (it is process-wide, and `plan --base` opens the user's own checkouts). It does not get in the
//! way: the cache repository is a subdirectory this process creates itself, so it is owned by the
//! process's uid whatever owns `cache_dir`. If the uid changes between runs, the stale cache fails
//! the check and is treated like a corrupt cache: wiped and re-cloned once (only `cache_dir` must
//! be writable).
//!
//! The cache is disposable: nothing garbage-collects it, so once it holds more than
//! 64 packs (one per fetch that brought something new) it is started afresh.
//!
//! # Corruption
//!
//! Like cargo, we re-clone once, and only for corruption-class errors: the cache cannot be opened,
//! its `HEAD` is unreadable, an object is missing or damaged, or a stale lock file is in the way
//! (so a cache directory must belong to one process: two replicas must not share a volume).
//! Network, authentication and server errors never wipe the cache. If the fresh clone fails the
//! same way, the error is returned.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, Cred, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions, Oid,
    ProxyOptions, RemoteCallbacks, Repository,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::dir::DEFAULT_MAX_FILE_SIZE;
use super::{Error, FetchErrorKind, Result};
use crate::snapshot::Snapshot;

/// Default budget for opening a connection (TCP, TLS or SSH handshake, ref advertisement).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Default budget for one transfer (negotiation and pack download).
pub const DEFAULT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// The local ref a pinned commit is fetched into (it keeps the objects referenced).
const PINNED_REF: &str = "refs/pinned/commit";

/// Every fetch that brings something new adds one pack, and nothing repacks a cache we never
/// garbage-collect; past this many packs the cache is started afresh (one depth-1 clone).
const MAX_PACKS: usize = 64;

/// Which ref of the remote to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// A branch name (`main`; a `refs/heads/` prefix is accepted).
    Branch(String),
    /// A tag name (`v1.2`; a `refs/tags/` prefix is accepted). Annotated tags are peeled.
    Tag(String),
    /// A full 40-hex commit id.
    Commit(String),
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRef::Branch(name) => write!(f, "branch `{name}`"),
            GitRef::Tag(name) => write!(f, "tag `{name}`"),
            GitRef::Commit(id) => write!(f, "commit `{id}`"),
        }
    }
}

/// How to authenticate to the remote.
#[derive(Debug, Clone)]
pub enum GitAuth {
    /// No credentials (public repositories, `git://`, `file://`).
    None,
    /// An HTTPS access token, sent as the password of user `x-access-token` (GitHub; GitLab and
    /// Bitbucket accept any user name with a token).
    HttpsToken(SecretString),
    /// HTTPS basic authentication.
    HttpsBasic {
        /// The user name.
        user: String,
        /// The password or token.
        password: SecretString,
    },
    /// An SSH private key held in memory (e.g. read from a mounted Secret).
    SshKey {
        /// The SSH user (usually `git`); a user name in the URL takes precedence.
        user: String,
        /// The private key in OpenSSH or PEM format.
        private_key: SecretString,
        /// The key's passphrase, if it has one.
        passphrase: Option<SecretString>,
    },
    /// Keys from a running `ssh-agent` (`SSH_AUTH_SOCK`); the user comes from the URL, else `git`.
    SshAgent,
}

/// Everything a [`GitSource`] needs. Build it once from the resolved configuration.
#[derive(Debug, Clone)]
pub struct GitSourceConfig {
    /// The remote URL (`https://…`, `ssh://…`, `git@host:path`, `git://…`, `file://…`).
    pub url: String,
    /// The ref to follow.
    pub reference: GitRef,
    /// The spec root inside the repository, `/`-separated; `""` is the repository root.
    pub sub_path: String,
    /// Where the bare cache repository lives (e.g. `STATE_DIR/git-cache`); created on first use.
    pub cache_dir: PathBuf,
    /// Credentials.
    pub auth: GitAuth,
    /// Budget for opening a connection.
    pub connect_timeout: Duration,
    /// Budget for one transfer.
    pub transfer_timeout: Duration,
    /// Files larger than this are recorded as too large, not read.
    pub max_file_size: u64,
    /// Which paths (relative to `sub_path`) to include; callers pass
    /// [`is_snapshot_file`](crate::spec::is_snapshot_file).
    pub include: fn(&str) -> bool,
}

impl GitSourceConfig {
    /// A configuration with defaults: the repository root, no credentials, the default timeouts
    /// and size limit, and every file included.
    pub fn new(url: impl Into<String>, reference: GitRef, cache_dir: impl Into<PathBuf>) -> Self {
        GitSourceConfig {
            url: url.into(),
            reference,
            sub_path: String::new(),
            cache_dir: cache_dir.into(),
            auth: GitAuth::None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            transfer_timeout: DEFAULT_TRANSFER_TIMEOUT,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            include: |_| true,
        }
    }
}

/// A remote Git repository followed through a bare cache repository (see the module docs).
///
/// Cheap to share behind an `Arc`; concurrent [`fetch`](GitSource::fetch)es of one source run one
/// after the other.
pub struct GitSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: GitSourceConfig,
    /// The bare cache repository: `cache_dir/<name>-<digest of the URL>.git`.
    repo_path: PathBuf,
    /// The URL with any password masked, for messages.
    shown_url: String,
    /// The open cache repository: `None` until first use, and after it was found corrupt.
    /// `Repository` is `Send` but not `Sync`, so it lives behind a mutex and only the blocking
    /// fetch task touches it.
    repo: Mutex<Option<Repository>>,
}

impl fmt::Debug for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.inner.shown_url)
            .field("reference", &self.inner.config.reference)
            .field("sub_path", &self.inner.config.sub_path)
            .field("cache", &self.inner.repo_path)
            .finish_non_exhaustive()
    }
}

impl GitSource {
    /// A source for `config`. Nothing is touched until the first [`fetch`](GitSource::fetch).
    pub fn new(config: GitSourceConfig) -> Self {
        let repo_path = config.cache_dir.join(cache_name(&config.url));
        let shown_url = redact_url(&config.url);
        GitSource {
            inner: Arc::new(Inner { config, repo_path, shown_url, repo: Mutex::new(None) }),
        }
    }

    /// The bare cache repository's path (for logs, and for tests that inspect it).
    pub fn cache_path(&self) -> &Path {
        &self.inner.repo_path
    }

    /// Fetches the configured ref (depth 1) and returns the snapshot of its commit; `None` when
    /// the remote revision equals `last` (a no-op: nothing downloaded, no tree read). Pass
    /// `None` to always get a snapshot.
    ///
    /// Every failure is an `Err`: an unreachable remote, rejected credentials, a missing ref or
    /// spec root, a tree that cannot be read. A snapshot is never partial or empty because of an
    /// error.
    pub async fn fetch(&self, last: Option<&str>) -> Result<Option<Snapshot>> {
        let inner = Arc::clone(&self.inner);
        let last = last.map(str::to_owned);
        // Tells the blocking task to stop when this future ends early: on the timeout below, or
        // when the caller drops it (the daemon abandons a fetch on shutdown). The task keeps
        // running until libgit2 next calls back.
        let cancel = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let task_cancel = Arc::clone(&cancel.0);
        let task = tokio::task::spawn_blocking(move || {
            fetch_blocking(&inner, last.as_deref(), &task_cancel)
        });
        let budget = (self.inner.config.connect_timeout + self.inner.config.transfer_timeout) * 2;
        match tokio::time::timeout(budget, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(Error::Fetch {
                url: self.inner.shown_url.clone(),
                kind: FetchErrorKind::Other,
                message: format!("the fetch task failed: {join}"),
            }),
            Err(_) => Err(Error::Timeout { url: self.inner.shown_url.clone(), after: budget }),
        }
    }
}

/// Raises its flag when dropped: the blocking fetch checks it at every libgit2 callback.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sets libgit2's process-wide socket timeouts: `connect` for opening a connection, `transfer`
/// for each read or write on it (an idle timeout; [`GitSource::fetch`] bounds the whole fetch).
///
/// # Safety
///
/// libgit2 keeps these in globals written without synchronisation. Call this once, at startup,
/// before any thread uses libgit2 (in `main`, before the runtime starts fetching).
pub unsafe fn init_git_timeouts(connect: Duration, transfer: Duration) -> Result<()> {
    let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    let failed =
        |e: git2::Error| Error::Git { path: "libgit2 options".into(), message: e.message().into() };
    // SAFETY: the caller guarantees no other thread uses libgit2 yet.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(millis(connect)).map_err(failed)?;
        git2::opts::set_server_timeout_in_milliseconds(millis(transfer)).map_err(failed)?;
    }
    Ok(())
}

/// How one attempt failed: a corrupt cache is rebuilt once, anything else is returned as is.
enum Failure {
    Corrupt(String),
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

fn fetch_blocking(
    inner: &Inner,
    last: Option<&str>,
    cancel: &AtomicBool,
) -> Result<Option<Snapshot>> {
    let mut slot = match inner.repo.lock() {
        Ok(slot) => slot,
        Err(poisoned) => {
            // A previous fetch panicked mid-way: reopen the repository rather than trust it.
            let mut slot = poisoned.into_inner();
            *slot = None;
            slot
        }
    };
    let first = match attempt(inner, &mut slot, last, cancel) {
        Err(Failure::Corrupt(message)) => message,
        Err(Failure::Fatal(e)) => return Err(e),
        Ok(result) => return Ok(result),
    };
    tracing::warn!(
        cache = %inner.repo_path.display(),
        error = %first,
        "the git cache is corrupt; re-cloning it once"
    );
    *slot = None;
    wipe(&inner.repo_path)?;
    match attempt(inner, &mut slot, last, cancel) {
        Ok(result) => Ok(result),
        Err(Failure::Fatal(e)) => Err(e),
        Err(Failure::Corrupt(second)) => {
            *slot = None;
            Err(Error::Cache {
                path: inner.repo_path.display().to_string(),
                message: format!("still unreadable after re-cloning it: {second} (first: {first})"),
            })
        }
    }
}

/// What to fetch for the configured ref.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// A branch or tag: the remote's ref name and the local ref it is fetched into.
    Ref { remote: String, local: String },
    /// A commit, fetched by id.
    Commit(Oid),
}

fn want(reference: &GitRef) -> Result<Want> {
    let invalid = |message: &str| Error::InvalidRef {
        reference: reference.to_string(),
        message: message.to_owned(),
    };
    let checked = |name: String| {
        if git2::Reference::is_valid_name(&name) {
            Ok(name)
        } else {
            Err(invalid("not a valid Git ref name"))
        }
    };
    match reference {
        GitRef::Branch(name) => {
            let name = name.strip_prefix("refs/heads/").unwrap_or(name);
            Ok(Want::Ref {
                remote: checked(format!("refs/heads/{name}"))?,
                local: checked(format!("refs/remotes/origin/{name}"))?,
            })
        }
        GitRef::Tag(name) => {
            let name = name.strip_prefix("refs/tags/").unwrap_or(name);
            let name = checked(format!("refs/tags/{name}"))?;
            Ok(Want::Ref { remote: name.clone(), local: name })
        }
        GitRef::Commit(id) => {
            if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("a commit must be given as its full 40-hex id"));
            }
            Oid::from_str(id).map(Want::Commit).map_err(|e| invalid(e.message()))
        }
    }
}

fn attempt(
    inner: &Inner,
    slot: &mut Option<Repository>,
    last: Option<&str>,
    cancel: &AtomicBool,
) -> std::result::Result<Option<Snapshot>, Failure> {
    if cancel.load(Ordering::Relaxed) {
        return Err(Failure::Fatal(timeout(inner)));
    }
    let want = want(&inner.config.reference)?;
    let packs = pack_count(&inner.repo_path);
    if packs > MAX_PACKS {
        tracing::info!(
            cache = %inner.repo_path.display(),
            packs,
            "the git cache has accumulated many packs; starting it afresh"
        );
        *slot = None;
        wipe(&inner.repo_path)?;
    }
    if slot.is_none() {
        *slot = Some(open_or_init(inner)?);
    }
    let Some(repo) = slot.as_ref() else {
        return Err(Failure::Corrupt("the cache repository is not open".into()));
    };
    let started = Instant::now();
    let commit_id = match &want {
        Want::Ref { remote, local } => {
            let Some((advertised, peeled)) = list_remote(inner, repo, remote, started, cancel)?
            else {
                return Err(Failure::Fatal(ref_not_found(inner, None)));
            };
            let remote_commit = peeled.unwrap_or(advertised);
            if last == Some(remote_commit.to_string().as_str()) {
                return Ok(None);
            }
            let cached = repo.refname_to_id(local).is_ok_and(|id| id == advertised);
            if !cached {
                download(inner, repo, &format!("+{remote}:{local}"), started, cancel)?;
            }
            let reference = repo.find_reference(local).map_err(|e| {
                if e.code() == ErrorCode::NotFound {
                    // The ref vanished between listing and fetching.
                    Failure::Fatal(ref_not_found(inner, None))
                } else {
                    Failure::Corrupt(e.message().to_owned())
                }
            })?;
            let commit = reference.peel_to_commit().map_err(corrupt)?;
            commit.id()
        }
        Want::Commit(id) => {
            if last == Some(id.to_string().as_str()) {
                return Ok(None);
            }
            if repo.find_commit(*id).is_err() {
                download(inner, repo, &format!("+{id}:{PINNED_REF}"), started, cancel)?;
            }
            *id
        }
    };
    if last == Some(commit_id.to_string().as_str()) {
        return Ok(None);
    }
    let commit = repo.find_commit(commit_id).map_err(corrupt)?;
    let config = &inner.config;
    match super::git::read_tree(
        repo,
        &commit,
        &config.sub_path,
        config.include,
        config.max_file_size,
        &super::git::Known::new(),
    ) {
        Ok(Some(snapshot)) => Ok(Some(snapshot)),
        Ok(None) => Err(Failure::Fatal(Error::SubPathNotFound {
            url: inner.shown_url.clone(),
            revision: commit_id.to_string(),
            sub_path: config.sub_path.clone(),
        })),
        Err(e) => Err(corrupt(e)),
    }
}

fn corrupt(e: git2::Error) -> Failure {
    Failure::Corrupt(e.message().to_owned())
}

fn timeout(inner: &Inner) -> Error {
    Error::Timeout { url: inner.shown_url.clone(), after: inner.config.transfer_timeout }
}

fn ref_not_found(inner: &Inner, hint: Option<&'static str>) -> Error {
    let hint = hint.or(match inner.config.reference {
        GitRef::Branch(_) | GitRef::Tag(_) => {
            Some("check the name (it is case-sensitive) and that the credentials may read it")
        }
        GitRef::Commit(_) => None,
    });
    Error::RefNotFound {
        url: inner.shown_url.clone(),
        reference: inner.config.reference.to_string(),
        hint,
    }
}

/// Opens the cache repository, or creates it when it does not exist yet. A cache that exists but
/// cannot be opened (or has an unreadable `HEAD`) is corrupt.
fn open_or_init(inner: &Inner) -> std::result::Result<Repository, Failure> {
    let path = &inner.repo_path;
    let cache_error = |message: String| {
        Failure::Fatal(Error::Cache { path: path.display().to_string(), message })
    };
    if std::fs::symlink_metadata(path).is_ok() {
        let repo = Repository::open_bare(path).map_err(corrupt)?;
        repo.find_reference("HEAD").map_err(corrupt)?;
        return Ok(repo);
    }
    std::fs::create_dir_all(&inner.config.cache_dir)
        .map_err(|e| cache_error(format!("cannot create the cache directory: {e}")))?;
    Repository::init_bare(path)
        .map_err(|e| cache_error(format!("cannot create the cache repository: {}", e.message())))
}

/// How many packs the cache repository holds (0 when it does not exist).
fn pack_count(repo_path: &Path) -> usize {
    std::fs::read_dir(repo_path.join("objects/pack")).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count()
    })
}

fn wipe(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Cache {
            path: path.display().to_string(),
            message: format!("cannot remove the corrupt cache: {e}"),
        }),
    }
}

/// Lists the remote's refs (one connection, no pack) and returns the advertised id of `name` and,
/// for an annotated tag, the commit it peels to.
fn list_remote(
    inner: &Inner,
    repo: &Repository,
    name: &str,
    started: Instant,
    cancel: &AtomicBool,
) -> std::result::Result<Option<(Oid, Option<Oid>)>, Failure> {
    let state = CallbackState::new(inner, started, cancel);
    let mut remote =
        repo.remote_anonymous(&inner.config.url).map_err(|e| network_failure(inner, &e, &state))?;
    let connection = remote
        .connect_auth(Direction::Fetch, Some(state.callbacks()), Some(proxy_options()))
        .map_err(|e| network_failure(inner, &e, &state))?;
    let heads = connection.list().map_err(|e| network_failure(inner, &e, &state))?;
    let peeled_name = format!("{name}^{{}}");
    let mut advertised = None;
    let mut peeled = None;
    for head in heads {
        if head.name() == name {
            advertised = Some(head.oid());
        } else if head.name() == peeled_name {
            peeled = Some(head.oid());
        }
    }
    Ok(advertised.map(|id| (id, peeled)))
}

/// Fetches exactly `refspec`, depth 1, without tags.
fn download(
    inner: &Inner,
    repo: &Repository,
    refspec: &str,
    started: Instant,
    cancel: &AtomicBool,
) -> std::result::Result<(), Failure> {
    let state = CallbackState::new(inner, started, cancel);
    let mut remote =
        repo.remote_anonymous(&inner.config.url).map_err(|e| network_failure(inner, &e, &state))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(state.callbacks())
        .proxy_options(proxy_options())
        .depth(1)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    remote.fetch(&[refspec], Some(&mut options), None).map_err(|e| {
        // libgit2 refuses locally when the server does not advertise fetching by id; the
        // server answers "not our ref" for an id it does not have or will not serve.
        let refused = e.message().contains("cannot fetch a specific object")
            || e.message().contains("not our ref")
            || (e.class() == ErrorClass::Reference && e.code() == ErrorCode::NotFound);
        if refused && !state.aborted() {
            let hint = match inner.config.reference {
                GitRef::Commit(_) => Some(
                    "the server refused to send this commit: it must exist and be reachable from \
                     a branch or tag, and a plain git server needs \
                     `uploadpack.allowReachableSHA1InWant=true`; or pin a tag instead",
                ),
                _ => None,
            };
            return Failure::Fatal(ref_not_found(inner, hint));
        }
        network_failure(inner, &e, &state)
    })
}

fn proxy_options() -> ProxyOptions<'static> {
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    proxy
}

/// Maps an error of a network operation: our own abort is a timeout, damaged local data is
/// corruption (re-clone), everything else is a typed fetch error with credentials scrubbed.
fn network_failure(inner: &Inner, e: &git2::Error, state: &CallbackState<'_>) -> Failure {
    if state.timed_out.get() {
        return Failure::Fatal(timeout(inner));
    }
    let kind = if state.auth_failed.get() {
        FetchErrorKind::Auth
    } else if is_corruption(e) {
        return Failure::Corrupt(scrub(&inner.config, &inner.shown_url, e.message()));
    } else {
        fetch_error_kind(e)
    };
    Failure::Fatal(Error::Fetch {
        url: inner.shown_url.clone(),
        kind,
        message: scrub(&inner.config, &inner.shown_url, e.message()),
    })
}

/// Errors that mean the local cache is damaged (so one re-clone is worth it). Deliberately
/// narrow: a network, TLS, SSH, HTTP or authentication error is never one.
///
/// A lock file counts: only this source writes to its cache (one process per cache directory),
/// and it holds the repository's mutex while it does, so a lock file is left over from a crash.
/// libgit2 reports it with class `Os` and, after a fetch, loses the `Locked` code on the way.
fn is_corruption(e: &git2::Error) -> bool {
    matches!(e.code(), ErrorCode::Locked | ErrorCode::Owner | ErrorCode::HashsumMismatch)
        || e.message().starts_with("failed to lock file")
        || matches!(
            e.class(),
            ErrorClass::Odb
                | ErrorClass::Object
                | ErrorClass::Zlib
                | ErrorClass::Reference
                | ErrorClass::Repository
                | ErrorClass::Index
                | ErrorClass::Tree
                | ErrorClass::Indexer
                | ErrorClass::Sha1
        )
}

/// The kind of an error from a network operation (where an `Os` error is a socket's: libgit2
/// reports "failed to connect" and failed reads with that class).
fn fetch_error_kind(e: &git2::Error) -> FetchErrorKind {
    match (e.code(), e.class()) {
        (ErrorCode::Auth, _) => FetchErrorKind::Auth,
        (ErrorCode::Certificate, _) => FetchErrorKind::Certificate,
        (ErrorCode::Timeout | ErrorCode::Eof, _) => FetchErrorKind::Network,
        (_, ErrorClass::Net | ErrorClass::Ssl | ErrorClass::Ssh | ErrorClass::Http) => {
            FetchErrorKind::Network
        }
        (_, ErrorClass::Os) => FetchErrorKind::Network,
        _ => FetchErrorKind::Other,
    }
}

/// Masks the URL's password and every configured secret in a message from libgit2.
fn scrub(config: &GitSourceConfig, shown_url: &str, message: &str) -> String {
    let mut message = message.replace(&config.url, shown_url);
    let mut secrets: Vec<&str> = url_secrets(&config.url);
    match &config.auth {
        GitAuth::HttpsToken(token) => secrets.push(token.expose_secret()),
        GitAuth::HttpsBasic { password, .. } => secrets.push(password.expose_secret()),
        GitAuth::SshKey { private_key, passphrase, .. } => {
            secrets.push(private_key.expose_secret());
            if let Some(p) = passphrase {
                secrets.push(p.expose_secret());
            }
        }
        GitAuth::None | GitAuth::SshAgent => {}
    }
    for secret in secrets {
        if !secret.is_empty() {
            message = message.replace(secret, "***");
        }
    }
    message
}

/// The userinfo of a URL split at the `@` that ends the authority: `(scheme, userinfo, rest)`.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = url.find("://")?;
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((&url[..scheme_end], &rest[..at], &rest[at + 1..]))
}

/// The secrets a URL carries: the password, or a user name that is really a token (`https://TOKEN@host`).
fn url_secrets(url: &str) -> Vec<&str> {
    match split_userinfo(url) {
        Some((_, userinfo, _)) => match userinfo.split_once(':') {
            Some((_, password)) => vec![password],
            None if !userinfo.eq_ignore_ascii_case("git") => vec![userinfo],
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// The URL with its password (or a token in the user-name position) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, userinfo, rest)) = split_userinfo(url) else {
        return url.to_owned();
    };
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if scheme.starts_with("ssh") || userinfo.eq_ignore_ascii_case("git") => {
            userinfo.to_owned()
        }
        None => "***".to_owned(),
    };
    format!("{scheme}://{shown}@{rest}")
}

/// The cache repository's directory name: the repository's name (for people looking at the
/// volume) and a digest of the whole URL (so two URLs never share a cache).
fn cache_name(url: &str) -> String {
    let digest = hex::encode(Sha256::digest(url.as_bytes()));
    let last = url.trim_end_matches('/').rsplit(['/', ':']).next().unwrap_or_default();
    let last = last.strip_suffix(".git").unwrap_or(last);
    let name: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    let name = name.trim_start_matches('.');
    let name = if name.is_empty() { "repo" } else { name };
    format!("{name}-{}.git", &digest[..16])
}

/// Per-connection state shared by the callbacks of one libgit2 operation.
struct CallbackState<'a> {
    auth: &'a GitAuth,
    attempts: RefCell<CredentialAttempts>,
    /// Set when the credential callback gave up: the error is an authentication failure.
    auth_failed: Cell<bool>,
    /// Set when a progress callback aborted the transfer for lack of time.
    timed_out: Cell<bool>,
    started: Instant,
    transfer_timeout: Duration,
    cancel: &'a AtomicBool,
}

impl<'a> CallbackState<'a> {
    fn new(inner: &'a Inner, started: Instant, cancel: &'a AtomicBool) -> Self {
        CallbackState {
            auth: &inner.config.auth,
            attempts: RefCell::default(),
            auth_failed: Cell::new(false),
            timed_out: Cell::new(false),
            started,
            transfer_timeout: inner.config.transfer_timeout,
            cancel,
        }
    }

    fn aborted(&self) -> bool {
        self.timed_out.get() || self.auth_failed.get()
    }

    /// Whether the transfer may go on; records a timeout when it may not.
    fn keep_going(&self) -> bool {
        if self.cancel.load(Ordering::Relaxed) || self.started.elapsed() > self.transfer_timeout {
            self.timed_out.set(true);
            return false;
        }
        true
    }

    fn callbacks(&'a self) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(move |_url, username_from_url, allowed| {
            if !self.keep_going() {
                return Err(git2::Error::from_str("cancelled"));
            }
            let choice = choose_credential(
                self.auth,
                username_from_url,
                allowed,
                &mut self.attempts.borrow_mut(),
            );
            match choice.and_then(|choice| build_credential(self.auth, &choice)) {
                Ok(cred) => Ok(cred),
                Err(message) => {
                    self.auth_failed.set(true);
                    Err(git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, message))
                }
            }
        });
        callbacks.transfer_progress(move |_| self.keep_going());
        callbacks.sideband_progress(move |_| self.keep_going());
        callbacks
    }
}

/// How many times each credential type was handed out on one connection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct CredentialAttempts {
    username: u32,
    user_pass: u32,
    ssh_key: u32,
}

/// What the credential callback answers (the secret itself is looked up when it is built).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CredentialChoice {
    /// The SSH user name (libgit2 asks for it before the key when the URL has none).
    Username(String),
    /// HTTPS user and password (or token).
    UserPass { user: String },
    /// An in-memory SSH key.
    SshKeyFromMemory { user: String },
    /// Keys from `ssh-agent`.
    SshAgent { user: String },
}

/// Decides what to answer to libgit2's credential request, at most once per credential type:
/// libgit2 asks again when the server rejects an answer, and a second request for the same type
/// means the first was rejected. Returns the message of the authentication error otherwise.
fn choose_credential(
    auth: &GitAuth,
    username_from_url: Option<&str>,
    allowed: CredentialType,
    attempts: &mut CredentialAttempts,
) -> std::result::Result<CredentialChoice, String> {
    fn once(count: &mut u32, rejected: impl FnOnce() -> String) -> std::result::Result<(), String> {
        *count += 1;
        if *count > 1 { Err(rejected()) } else { Ok(()) }
    }
    let ssh_user = |configured: &str| username_from_url.unwrap_or(configured).to_owned();
    match auth {
        GitAuth::None => Err(format!(
            "the remote asks for credentials ({}) but none are configured",
            describe(allowed)
        )),
        GitAuth::HttpsToken(_) | GitAuth::HttpsBasic { .. } => {
            let user = match auth {
                GitAuth::HttpsBasic { user, .. } => user.clone(),
                _ => "x-access-token".to_owned(),
            };
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return Err(format!(
                    "the remote asks for {} but an HTTPS token or password is configured",
                    describe(allowed)
                ));
            }
            once(&mut attempts.user_pass, || {
                format!("the remote rejected the HTTPS credentials of user `{user}`")
            })?;
            Ok(CredentialChoice::UserPass { user })
        }
        GitAuth::SshKey { .. } | GitAuth::SshAgent
            if allowed.contains(CredentialType::USERNAME) =>
        {
            let user = match auth {
                GitAuth::SshKey { user, .. } => ssh_user(user),
                _ => ssh_user("git"),
            };
            once(&mut attempts.username, || format!("the SSH server rejected user `{user}`"))?;
            Ok(CredentialChoice::Username(user))
        }
        GitAuth::SshKey { user, .. } => {
            let user = ssh_user(user);
            if !allowed.contains(CredentialType::SSH_MEMORY) {
                return Err(format!(
                    "the remote asks for {} but an SSH key is configured",
                    describe(allowed)
                ));
            }
            once(&mut attempts.ssh_key, || {
                format!("the SSH server rejected the key for user `{user}`")
            })?;
            Ok(CredentialChoice::SshKeyFromMemory { user })
        }
        GitAuth::SshAgent => {
            let user = ssh_user("git");
            if !allowed.contains(CredentialType::SSH_KEY) {
                return Err(format!(
                    "the remote asks for {} but ssh-agent is configured",
                    describe(allowed)
                ));
            }
            once(&mut attempts.ssh_key, || {
                format!("the SSH server rejected every ssh-agent key for user `{user}`")
            })?;
            Ok(CredentialChoice::SshAgent { user })
        }
    }
}

/// Builds libgit2's credential for a choice, taking the secret from `auth`.
fn build_credential(
    auth: &GitAuth,
    choice: &CredentialChoice,
) -> std::result::Result<Cred, String> {
    let built = match (choice, auth) {
        (CredentialChoice::Username(user), _) => Cred::username(user),
        (CredentialChoice::UserPass { user }, GitAuth::HttpsToken(token)) => {
            Cred::userpass_plaintext(user, token.expose_secret())
        }
        (CredentialChoice::UserPass { user }, GitAuth::HttpsBasic { password, .. }) => {
            Cred::userpass_plaintext(user, password.expose_secret())
        }
        (
            CredentialChoice::SshKeyFromMemory { user },
            GitAuth::SshKey { private_key, passphrase, .. },
        ) => Cred::ssh_key_from_memory(
            user,
            None,
            private_key.expose_secret(),
            passphrase.as_ref().map(|p| p.expose_secret()),
        ),
        (CredentialChoice::SshAgent { user }, _) => Cred::ssh_key_from_agent(user),
        _ => return Err("internal error: the credential does not match the configuration".into()),
    };
    // libgit2's messages here are about the key format, never the key itself.
    built.map_err(|e| format!("cannot use the configured credentials: {}", e.message()))
}

fn describe(allowed: CredentialType) -> String {
    let names = [
        (CredentialType::USER_PASS_PLAINTEXT, "user and password"),
        (CredentialType::SSH_KEY, "an SSH key"),
        (CredentialType::SSH_MEMORY, "an SSH key"),
        (CredentialType::SSH_CUSTOM, "a custom SSH signature"),
        (CredentialType::DEFAULT, "NTLM/Negotiate"),
        (CredentialType::SSH_INTERACTIVE, "keyboard-interactive SSH"),
        (CredentialType::USERNAME, "a user name"),
    ];
    let mut found: Vec<&str> = Vec::new();
    for (flag, name) in names {
        if allowed.contains(flag) && !found.contains(&name) {
            found.push(name);
        }
    }
    if found.is_empty() { "unknown credentials".into() } else { found.join(" or ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> GitAuth {
        GitAuth::HttpsToken(SecretString::from("ghp_secret"))
    }

    fn key() -> GitAuth {
        GitAuth::SshKey {
            user: "git".into(),
            private_key: SecretString::from("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"),
            passphrase: Some(SecretString::from("hunter2")),
        }
    }

    #[test]
    fn an_https_token_is_offered_once_and_a_second_request_is_an_auth_error() {
        let mut attempts = CredentialAttempts::default();
        let allowed = CredentialType::USER_PASS_PLAINTEXT;
        let first = choose_credential(&token(), None, allowed, &mut attempts);
        assert_eq!(first, Ok(CredentialChoice::UserPass { user: "x-access-token".into() }));
        let second = choose_credential(&token(), None, allowed, &mut attempts);
        assert!(second.unwrap_err().contains("rejected"));
        // It stays rejected however often libgit2 asks.
        assert!(choose_credential(&token(), None, allowed, &mut attempts).is_err());
        assert_eq!(attempts.user_pass, 3);
    }

    #[test]
    fn basic_auth_uses_the_configured_user() {
        let auth = GitAuth::HttpsBasic { user: "ci".into(), password: SecretString::from("pw") };
        let mut attempts = CredentialAttempts::default();
        let choice = choose_credential(
            &auth,
            Some("ignored"),
            CredentialType::USER_PASS_PLAINTEXT,
            &mut attempts,
        );
        assert_eq!(choice, Ok(CredentialChoice::UserPass { user: "ci".into() }));
        let cred = build_credential(&auth, &choice.unwrap()).unwrap();
        assert_eq!(cred.credtype(), CredentialType::USER_PASS_PLAINTEXT.bits());
    }

    #[test]
    fn ssh_asks_for_the_user_then_the_key_each_once() {
        let mut attempts = CredentialAttempts::default();
        let user = choose_credential(&key(), None, CredentialType::USERNAME, &mut attempts);
        assert_eq!(user, Ok(CredentialChoice::Username("git".into())));
        let allowed =
            CredentialType::SSH_KEY | CredentialType::SSH_MEMORY | CredentialType::SSH_CUSTOM;
        let first = choose_credential(&key(), Some("deploy"), allowed, &mut attempts);
        assert_eq!(first, Ok(CredentialChoice::SshKeyFromMemory { user: "deploy".into() }));
        let cred = build_credential(&key(), &first.unwrap()).unwrap();
        assert_eq!(cred.credtype(), CredentialType::SSH_MEMORY.bits());
        assert!(choose_credential(&key(), Some("deploy"), allowed, &mut attempts).is_err());
        assert!(choose_credential(&key(), None, CredentialType::USERNAME, &mut attempts).is_err());
    }

    #[test]
    fn ssh_agent_is_offered_once() {
        let mut attempts = CredentialAttempts::default();
        let allowed = CredentialType::SSH_KEY;
        let first = choose_credential(&GitAuth::SshAgent, None, allowed, &mut attempts);
        assert_eq!(first, Ok(CredentialChoice::SshAgent { user: "git".into() }));
        assert!(choose_credential(&GitAuth::SshAgent, None, allowed, &mut attempts).is_err());
    }

    #[test]
    fn missing_or_mismatched_credentials_fail_without_answering() {
        let mut attempts = CredentialAttempts::default();
        let none = choose_credential(
            &GitAuth::None,
            None,
            CredentialType::USER_PASS_PLAINTEXT,
            &mut attempts,
        );
        assert!(none.unwrap_err().contains("none are configured"));
        let mismatch = choose_credential(&token(), None, CredentialType::SSH_KEY, &mut attempts);
        assert!(mismatch.unwrap_err().contains("an SSH key"));
        let mismatch =
            choose_credential(&key(), None, CredentialType::USER_PASS_PLAINTEXT, &mut attempts);
        assert!(mismatch.unwrap_err().contains("user and password"));
        assert_eq!(attempts, CredentialAttempts::default());
    }

    #[test]
    fn urls_are_shown_without_passwords_or_tokens() {
        assert_eq!(
            redact_url("https://x-access-token:ghp_1@github.com/o/r.git"),
            "https://x-access-token:***@github.com/o/r.git"
        );
        assert_eq!(redact_url("https://ghp_1@github.com/o/r"), "https://***@github.com/o/r");
        assert_eq!(redact_url("ssh://git@host:22/o/r.git"), "ssh://git@host:22/o/r.git");
        assert_eq!(redact_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn messages_are_scrubbed_of_every_secret() {
        let mut config =
            GitSourceConfig::new("https://u:pw1@h/r", GitRef::Branch("m".into()), "/c");
        config.auth = token();
        let shown = redact_url(&config.url);
        let message = "failed https://u:pw1@h/r with ghp_secret and pw1";
        assert_eq!(scrub(&config, &shown, message), "failed https://u:***@h/r with *** and ***");
        config.auth = key();
        assert_eq!(scrub(&config, &shown, "bad hunter2"), "bad ***");
    }

    #[test]
    fn refs_are_validated_and_mapped_to_one_refspec() {
        assert_eq!(
            want(&GitRef::Branch("refs/heads/main".into())).unwrap(),
            Want::Ref {
                remote: "refs/heads/main".into(),
                local: "refs/remotes/origin/main".into()
            }
        );
        assert_eq!(
            want(&GitRef::Tag("v1".into())).unwrap(),
            Want::Ref { remote: "refs/tags/v1".into(), local: "refs/tags/v1".into() }
        );
        for bad in ["main:refs/heads/x", "a..b", "", "x y"] {
            assert!(
                matches!(want(&GitRef::Branch(bad.into())), Err(Error::InvalidRef { .. })),
                "{bad}"
            );
        }
        assert!(matches!(want(&GitRef::Commit("abc123".into())), Err(Error::InvalidRef { .. })));
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            want(&GitRef::Commit(id.into())).unwrap(),
            Want::Commit(Oid::from_str(id).unwrap())
        );
    }

    #[test]
    fn cache_names_are_readable_and_distinct_per_url() {
        let a = cache_name("https://github.com/org/immuta-specs.git");
        assert!(a.starts_with("immuta-specs-") && a.ends_with(".git"), "{a}");
        assert_ne!(a, cache_name("https://gitlab.com/org/immuta-specs.git"));
        assert!(cache_name("git@github.com:org/specs").starts_with("specs-"));
        assert!(cache_name("https://h/").starts_with("h-"));
        assert!(cache_name("file:///..").starts_with("repo-"));
    }

    #[test]
    fn packs_are_counted_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pack_count(&dir.path().join("missing.git")), 0);
        let pack = dir.path().join("objects/pack");
        std::fs::create_dir_all(&pack).unwrap();
        for name in ["pack-a.pack", "pack-a.idx", "pack-b.pack", "pack-c.keep"] {
            std::fs::write(pack.join(name), "").unwrap();
        }
        assert_eq!(pack_count(dir.path()), 2);
    }

    #[test]
    fn only_damaged_local_data_counts_as_corruption() {
        let err = |code, class| git2::Error::new(code, class, "x");
        assert!(is_corruption(&err(ErrorCode::NotFound, ErrorClass::Odb)));
        assert!(is_corruption(&err(ErrorCode::Locked, ErrorClass::Os)));
        assert!(is_corruption(&git2::Error::new(
            ErrorCode::GenericError,
            ErrorClass::Os,
            "failed to lock file '/c/refs/remotes/origin/main.lock' for writing: "
        )));
        assert!(is_corruption(&err(ErrorCode::Owner, ErrorClass::Config)));
        assert!(!is_corruption(&err(ErrorCode::GenericError, ErrorClass::Net)));
        assert!(!is_corruption(&err(ErrorCode::Auth, ErrorClass::Http)));
        assert!(!is_corruption(&err(ErrorCode::Certificate, ErrorClass::Ssl)));
        assert_eq!(fetch_error_kind(&err(ErrorCode::Auth, ErrorClass::Ssh)), FetchErrorKind::Auth);
        assert_eq!(
            fetch_error_kind(&err(ErrorCode::GenericError, ErrorClass::Net)),
            FetchErrorKind::Network
        );
    }
}
