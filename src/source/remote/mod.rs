//! A remote Git repository as a source: depth-1 fetches of one ref into a bare cache repository,
//! with the files read straight from the fetched commit's tree (nothing is checked out).
//!
//! Git is spoken by gitoxide (`gix`), in pure Rust: no libgit2, libssh2 or OpenSSL. HTTPS goes
//! through the same reqwest and rustls as the Immuta client; `git://` through a TCP connection
//! of our own (so that it has our timeouts); `file://` and local paths through the
//! `git-upload-pack` program and SSH through the `ssh` program, as `git` itself does.
//!
//! # One fetch
//!
//! 1. Open the bare cache repository `cache_dir/<name>-<digest of the URL>.git`, creating it on
//!    first use. Only this source writes there.
//! 2. Connect and list the remote's refs for exactly the wanted ref (one round trip; no pack is
//!    transferred yet). For a branch or a tag the remote does not advertise,
//!    [`Error::RefNotFound`]; an advertised commit equal to `last` is a no-op (`Ok(None)`, no
//!    tree read); a commit the cache already holds (after a restart) is read without
//!    downloading anything.
//! 3. Otherwise, on the same connection, fetch exactly that ref with depth 1 and a forced
//!    refspec (`+refs/heads/B:refs/remotes/origin/B`, `+refs/tags/T:refs/tags/T`), so a
//!    force-push at the remote is followed like any other move. Tags are never auto-followed.
//! 4. Read the commit's tree under `sub_path` with [`super::git`]'s tree reader: hidden entries
//!    skipped, symlinks recorded as [`FileContent::OutsideRoot`](crate::snapshot::FileContent)
//!    and never followed, blobs above the size limit recorded, not inflated. The revision is the
//!    commit id. A `sub_path` missing at that commit is an error, never an empty snapshot.
//!
//! # Commit pins
//!
//! A [`GitRef::Commit`] must be a full 40-hex commit id. It is fetched **by id**, depth 1
//! (`+<id>:refs/pinned/commit`). A server speaking protocol v2 (what we ask for) serves any
//! reachable commit; one that only speaks protocol v0 must allow it
//! (`uploadpack.allowReachableSHA1InWant=true`). When the server refuses, the fetch
//! fails with [`Error::RefNotFound`] and a hint; we never fall back to fetching a branch deeper to
//! find the commit. Once the commit is in the cache, later fetches read it without any network:
//! a commit id names immutable content.
//!
//! # Timeouts
//!
//! All Git work runs in [`tokio::task::spawn_blocking`]. Each call of [`GitSource::fetch`] is
//! bounded by `2 × (connect_timeout + transfer_timeout)` (the factor covers the one re-clone); when
//! that runs out the caller gets [`Error::Timeout`] at once, and the blocking task is told to stop
//! through gitoxide's interrupt flag. Dropping the future (the daemon abandons a fetch on
//! shutdown) tells the task to stop the same way. A peer that goes completely silent never
//! reaches that flag, so every transport also has its own timeouts: `git://` sockets have
//! `connect_timeout` to connect and `transfer_timeout` as read and write timeouts, HTTPS requests
//! the same as reqwest's connect and request timeouts, and `ssh` gets `ConnectTimeout` and
//! server-alive probes.
//!
//! # Credentials
//!
//! HTTPS credentials ([`GitAuth::HttpsToken`], [`GitAuth::HttpsBasic`]) are handed to gitoxide's
//! credential request, never to a credential helper, and at most once per connection: a second
//! request means the server rejected them, and that is an [`FetchErrorKind::Auth`] error, never a
//! loop. gitoxide sends credentials over plain `http://` only to a loopback address (a test
//! server, a port-forward); elsewhere a token needs `https://`. SSH keys
//! ([`GitAuth::SshKey`]) are written, for the duration of one fetch, to a file only this user may
//! read (next to the cache, removed afterwards) and given to `ssh -i`; host keys are checked by
//! `ssh` against `$HOME/.ssh/known_hosts` (mount one next to the key) in batch mode, so an
//! unknown host fails instead of prompting. Errors never contain credentials: the URL's password
//! is masked and every configured secret is scrubbed from the messages. HTTPS certificates are
//! checked by rustls against the system's CA store (`SSL_CERT_FILE` and `SSL_CERT_DIR` apply);
//! proxies come from the usual `http(s)_proxy` environment.
//!
//! # The cache directory
//!
//! gitoxide opens the cache *isolated*: no system or user Git configuration, no credential
//! helpers, no environment overrides; what it does is decided here. A repository owned by another
//! user (a volume written under another uid) is opened with reduced trust rather than refused.
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

use std::fmt;
use std::io::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::protocol::handshake::Ref;
use gix::protocol::transport::client::blocking_io::Transport;
use gix::remote::Direction;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::dir::DEFAULT_MAX_FILE_SIZE;
use super::{Error, FetchErrorKind, Result};
use crate::snapshot::Snapshot;

mod failure;
mod transport;

pub use failure::redact_url;
use failure::{chain, network_failure, scrub};
use transport::{connect, credentials, http_options};

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

impl GitRef {
    /// The name a log line gives the ref: `main`, `v1.2`, or the commit id.
    pub fn name(&self) -> &str {
        match self {
            GitRef::Branch(name) => name.strip_prefix("refs/heads/").unwrap_or(name),
            GitRef::Tag(name) => name.strip_prefix("refs/tags/").unwrap_or(name),
            GitRef::Commit(id) => id,
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
    /// An SSH private key without a passphrase (e.g. read from a mounted Secret), used through
    /// the `ssh` program.
    SshKey {
        /// The SSH user (usually `git`); a user name in the URL takes precedence.
        user: String,
        /// The private key in OpenSSH or PEM format.
        private_key: SecretString,
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
    /// Held while a fetch runs: one writer of the cache at a time. The repository itself is
    /// opened afresh by every fetch (milliseconds for a bare cache), so a damaged one is never
    /// kept open.
    busy: Mutex<()>,
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
        GitSource { inner: Arc::new(Inner { config, repo_path, shown_url, busy: Mutex::new(()) }) }
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
        // when the caller drops it (the daemon abandons a fetch on shutdown).
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

/// Raises its flag when dropped: gitoxide checks it while it receives a pack.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
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
    // A previous fetch that panicked left nothing open: the repository is reopened anyway.
    let _busy = inner.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = match attempt(inner, last, cancel) {
        Err(Failure::Corrupt(message)) => message,
        Err(Failure::Fatal(e)) => return Err(e),
        Ok(result) => return Ok(result),
    };
    tracing::warn!(
        cache = %inner.repo_path.display(),
        error = %first,
        "the git cache is corrupt; re-cloning it once"
    );
    wipe(&inner.repo_path)?;
    match attempt(inner, last, cancel) {
        Ok(result) => Ok(result),
        Err(Failure::Fatal(e)) => Err(e),
        Err(Failure::Corrupt(second)) => Err(Error::Cache {
            path: inner.repo_path.display().to_string(),
            message: format!("still unreadable after re-cloning it: {second} (first: {first})"),
        }),
    }
}

/// What to fetch for the configured ref.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// A branch or tag: the remote's ref name and the local ref it is fetched into.
    Ref { remote: String, local: String },
    /// A commit, fetched by id.
    Commit(ObjectId),
}

impl Want {
    /// The one refspec of the fetch (forced: a force-push is followed).
    fn refspec(&self) -> String {
        match self {
            Want::Ref { remote, local } => format!("+{remote}:{local}"),
            Want::Commit(id) => format!("+{id}:{PINNED_REF}"),
        }
    }

    /// The local ref the fetch writes.
    fn local(&self) -> &str {
        match self {
            Want::Ref { local, .. } => local,
            Want::Commit(_) => PINNED_REF,
        }
    }
}

fn want(reference: &GitRef) -> Result<Want> {
    let invalid = |message: &str| Error::InvalidRef {
        reference: reference.to_string(),
        message: message.to_owned(),
    };
    let checked = |name: String| {
        if gix::validate::reference::name(name.as_bytes().as_bstr()).is_ok() {
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
            ObjectId::from_hex(id.as_bytes()).map(Want::Commit).map_err(|e| invalid(&e.to_string()))
        }
    }
}

fn attempt(
    inner: &Inner,
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
        wipe(&inner.repo_path)?;
    }
    let repo = open_or_init(inner)?;
    let local_id = |repo: &gix::Repository| {
        repo.try_find_reference(want.local())
            .ok()
            .flatten()
            .and_then(|mut r| r.peel_to_id().ok().map(gix::Id::detach))
    };
    let commit_id = match &want {
        Want::Commit(id) => {
            if last == Some(id.to_string().as_str()) {
                return Ok(None);
            }
            if !repo.has_object(id) {
                fetch(inner, &repo, &want, last, cancel)?;
            }
            *id
        }
        Want::Ref { .. } => match fetch(inner, &repo, &want, last, cancel)? {
            Fetched::Unchanged => return Ok(None),
            Fetched::Done => local_id(&repo).ok_or_else(|| {
                // The ref vanished between listing and fetching, or the cache lost it.
                Failure::Corrupt(format!("the fetched ref {} is missing", want.local()))
            })?,
        },
    };
    if last == Some(commit_id.to_string().as_str()) {
        return Ok(None);
    }
    let commit = repo
        .find_object(commit_id)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| Failure::Corrupt(chain(&e)))?;
    let config = &inner.config;
    match super::git::read_tree(
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
        Err(e) => Err(Failure::Corrupt(e)),
    }
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

/// The hint of a commit the server would not send.
const COMMIT_REFUSED: &str = "the server refused to send this commit: it must exist and be \
    reachable from a branch or tag, and a plain git server needs \
    `uploadpack.allowReachableSHA1InWant=true`; or pin a tag instead";

/// gitoxide's options for the cache: no system, user or environment configuration.
fn open_options() -> gix::open::Options {
    gix::open::Options::isolated()
}

/// Opens the cache repository, or creates it when it does not exist yet. A cache that exists but
/// cannot be opened (or has an unreadable `HEAD`) is corrupt.
fn open_or_init(inner: &Inner) -> std::result::Result<gix::Repository, Failure> {
    let path = &inner.repo_path;
    if std::fs::symlink_metadata(path).is_ok() {
        let repo = gix::open_opts(path, open_options()).map_err(|e| Failure::Corrupt(chain(&e)))?;
        repo.head().map_err(|e| Failure::Corrupt(chain(&e)))?;
        return Ok(repo);
    }
    let cache_error = |message: String| {
        Failure::Fatal(Error::Cache { path: path.display().to_string(), message })
    };
    std::fs::create_dir_all(&inner.config.cache_dir)
        .map_err(|e| cache_error(format!("cannot create the cache directory: {e}")))?;
    gix::ThreadSafeRepository::init_opts(
        path,
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        open_options(),
    )
    .map(|repo| repo.to_thread_local())
    .map_err(|e| cache_error(format!("cannot create the cache repository: {}", chain(&e))))
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

/// What a fetch of a branch or tag found.
enum Fetched {
    /// The remote is at `last`: nothing was downloaded.
    Unchanged,
    /// The local ref now names the remote's commit (downloaded, or already in the cache).
    Done,
}

/// Connects, lists the wanted ref and, unless the remote is at `last` or the cache already has
/// the advertised object, fetches it with depth 1 on the same connection.
fn fetch(
    inner: &Inner,
    repo: &gix::Repository,
    want: &Want,
    last: Option<&str>,
    cancel: &AtomicBool,
) -> std::result::Result<Fetched, Failure> {
    let config = &inner.config;
    let auth_failed = Arc::new(AtomicBool::new(false));
    let network = |e: gix::Error| network_failure(inner, &e, auth_failed.load(Ordering::Relaxed));
    let remote = repo
        .remote_at(config.url.as_str())
        .and_then(|r| r.with_refspecs([want.refspec().as_str()], Direction::Fetch))
        .map_err(|e| {
            Failure::Fatal(Error::Fetch {
                url: inner.shown_url.clone(),
                kind: FetchErrorKind::Other,
                message: format!("not a Git URL: {}", scrub(config, &inner.shown_url, &chain(&e))),
            })
        })?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let mut key_file = None;
    let transport = connect(inner, &remote, &mut key_file)?;
    let connection = remote
        .to_connection_with_transport(transport)
        .with_credentials(credentials(config.auth.clone(), Arc::clone(&auth_failed)));
    let connection = match http_options(config, &remote) {
        Some(options) => connection.with_transport_options(options),
        None => connection,
    };
    let prepared = connection
        .prepare_fetch(gix::progress::Discard, gix::remote::ref_map::Options::default())
        .map_err(network)?;
    if let Want::Ref { remote: name, .. } = want {
        let Some((advertised, peeled)) = advertised(&prepared.ref_map().remote_refs, name) else {
            return Err(Failure::Fatal(ref_not_found(inner, None)));
        };
        let remote_commit = peeled.unwrap_or(advertised);
        if last == Some(remote_commit.to_string().as_str()) {
            return Ok(Fetched::Unchanged);
        }
        let cached = repo
            .try_find_reference(want.local())
            .ok()
            .flatten()
            .is_some_and(|r| r.target().try_id().is_some_and(|id| id == advertised));
        if cached {
            return Ok(Fetched::Done);
        }
    }
    let depth = NonZeroU32::MIN;
    let outcome = prepared
        .with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth))
        .receive(gix::progress::Discard, cancel);
    drop(key_file);
    match outcome {
        Ok(_) => Ok(Fetched::Done),
        Err(e) if cancel.load(Ordering::Relaxed) || e.is_cancelled() => {
            Err(Failure::Fatal(timeout(inner)))
        }
        Err(e) if matches!(want, Want::Commit(_)) && refused_commit(&e) => {
            Err(Failure::Fatal(ref_not_found(inner, Some(COMMIT_REFUSED))))
        }
        Err(e) => Err(network(e)),
    }
}

/// The advertised id of `name` and, for an annotated tag, the commit it peels to.
fn advertised(refs: &[Ref], name: &str) -> Option<(ObjectId, Option<ObjectId>)> {
    refs.iter().find_map(|r| {
        let (full_name, target, peeled) = r.unpack();
        (full_name == name.as_bytes())
            .then(|| target.map(|t| (t.to_owned(), peeled.map(ToOwned::to_owned))))
            .flatten()
    })
}

/// Whether the server refused to send a commit asked for by id (or gitoxide refused to ask
/// because the server does not allow it).
fn refused_commit(e: &gix::Error) -> bool {
    let text = chain(e);
    text.contains("not our ref")
        || text.contains("allow-reachable-sha1-in-want")
        || text.contains("allow-tip-sha1-in-want")
        || text.contains("None of the refspec")
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

#[cfg(test)]
mod tests;
