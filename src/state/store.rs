//! Where a state lives: one [`Store`] interface, two backends (the JSON file of [`file`] and
//! PostgreSQL's [`postgres`]), chosen by [`open`] from `--state` (a path or a `postgres://`
//! URL).
//!
//! A store is bound to one state: a file, or the row of one tenant and state name in a database
//! shared by several tenants and spec roots. It reads without writing ([`Store::load`]: `plan`
//! and `validate` create nothing), records an apply one object at a time ([`Recorder`]: every
//! [`Record`] is durable before the next object starts, and a state is created, so bound to its
//! tenant, only by the first record of an apply), and holds the one-writer lock
//! ([`Store::try_lock`]).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Entry, Record, State, file, key, postgres};
use crate::spec::Kind;

/// A boxed future, as the [`Store`] trait's methods return (so a store can be a `dyn Store`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// State errors, whichever the backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state file.
    #[error(transparent)]
    File(#[from] file::Error),
    /// The PostgreSQL state.
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    /// The digest key.
    #[error(transparent)]
    Key(#[from] key::Error),
    /// Another process holds the writer lock.
    #[error(
        "{state} is locked by {holder}, which is applying to it: wait for it to finish, or pass \
         --lock-timeout to wait"
    )]
    Locked {
        /// The state.
        state: String,
        /// Who holds the lock.
        holder: String,
    },
    /// The writer lock was lost (the database connection broke): nothing more is recorded.
    #[error(
        "{state}: the writer lock was lost ({reason}); nothing more is recorded, and the next run \
         resumes from what was"
    )]
    LockLost {
        /// The state.
        state: String,
        /// Why.
        reason: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether another process holds the writer lock (whichever the backend), and who.
    pub fn lock_holder(&self) -> Option<&str> {
        match self {
            Error::Locked { holder, .. } | Error::File(file::Error::Locked { holder, .. }) => {
                Some(holder)
            }
            _ => None,
        }
    }
}

/// The one-writer lock of a state, held until dropped (or until the process dies: an OS file
/// lock, or a PostgreSQL session lock).
pub struct Lock {
    lost: CancellationToken,
    _held: Box<dyn Send + Sync>,
}

impl Lock {
    /// A lock held by `held`, reported lost through `lost`.
    pub fn new(held: Box<dyn Send + Sync>, lost: CancellationToken) -> Lock {
        Lock { lost, _held: held }
    }

    /// Cancelled when the lock is gone although not dropped (the database connection broke):
    /// the holder must stop writing.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("lost", &self.lost.is_cancelled()).finish()
    }
}

/// A state backend bound to one state.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The state for messages: `state file `PATH``, or `PostgreSQL state `NAME` of TENANT at
    /// postgres://user@host/db` (never a password).
    fn describe(&self) -> String;

    /// Whether replicas share this state over the network (PostgreSQL): a `run` that does not
    /// get the lock waits as a standby instead of exiting.
    fn is_shared(&self) -> bool;

    /// Reads the state; `None` when nothing was ever applied. Never writes.
    fn load(&self) -> BoxFuture<'_, Result<Option<State>>>;

    /// Before recording (under the lock): the state with anything a killed run left folded in
    /// (a torn last journal line dropped with a warning); `None` when there is no state yet.
    fn begin(&self) -> BoxFuture<'_, Result<Option<State>>>;

    /// Creates the state (its first record binds it to its tenant).
    fn create<'a>(&'a self, state: &'a State) -> BoxFuture<'a, Result<()>>;

    /// Records one change durably (journaled, with the object's state in one transaction).
    fn record<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<()>>;

    /// Folds the records of an apply into the state (`state` is the state after them).
    fn compact<'a>(&'a self, state: &'a State) -> BoxFuture<'a, Result<()>>;

    /// Replaces the whole state (`state migrate`, `state rm`).
    fn replace<'a>(&'a self, state: &'a State) -> BoxFuture<'a, Result<()>>;

    /// Takes the writer lock, or fails at once with [`Error::Locked`] naming the holder.
    fn try_lock(&self) -> BoxFuture<'_, Result<Lock>>;
}

/// Takes the lock of `store`, waiting up to `timeout` while another process holds it (polled
/// every `every`); then [`Error::Locked`] names the holder.
pub async fn lock_within(store: &dyn Store, timeout: Duration, every: Duration) -> Result<Lock> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match store.try_lock().await {
            Err(e) if e.lock_holder().is_some() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(every.min(deadline - tokio::time::Instant::now())).await;
            }
            other => return other,
        }
    }
}

/// Where `--state` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A JSON file.
    File(PathBuf),
    /// A PostgreSQL database (`postgres://` or `postgresql://`; no password in it).
    Postgres(String),
}

impl Location {
    /// `--state`: a `postgres://`/`postgresql://` URL, or a path.
    pub fn parse(text: &str) -> Location {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Location::Postgres(text.trim().to_owned())
        } else {
            Location::File(PathBuf::from(text))
        }
    }
}

/// How to reach a state: where, which one, and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where.
    pub location: Location,
    /// The tenant label (a state of PostgreSQL is keyed by it and `name`).
    pub tenant: String,
    /// The state's name within the database, for several spec roots on one tenant.
    pub name: String,
    /// The database password (from the environment or a file; never printed).
    pub password: Option<secrecy::SecretString>,
    /// Who we are, as other processes are told when we hold the lock (`pid N on HOST: apply`).
    pub holder: String,
}

/// Opens the store `target` names (connecting to the database, creating or migrating its
/// schema; a file store touches nothing until it writes).
pub async fn open(target: &Target) -> Result<Box<dyn Store>> {
    Ok(match &target.location {
        Location::File(path) => Box::new(file::FileStore::new(path, &target.holder)),
        Location::Postgres(url) => Box::new(postgres::PgStore::connect(target, url).await?),
    })
}

/// The name other processes see for this one: `pid N on HOST: ROLE`.
pub fn holder(role: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("pid {} on {host}: {role}", std::process::id())
}

/// Records an apply through a [`Store`]: the state as recorded so far, and every change made
/// durable at once.
pub struct Recorder<'a> {
    store: &'a dyn Store,
    state: State,
    exists: bool,
    pending: usize,
}

impl<'a> Recorder<'a> {
    /// Starts recording in `store` ([`Store::begin`]); `fresh` is the state to create at the
    /// first record when there is none yet (nothing applied: nothing created).
    pub async fn open(store: &'a dyn Store, fresh: State) -> Result<Recorder<'a>> {
        let (state, exists) = match store.begin().await? {
            Some(state) => (state, true),
            None => (fresh, false),
        };
        Ok(Recorder { store, state, exists, pending: 0 })
    }

    /// The state as recorded so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records one change (creating the state first when this is its first record).
    pub async fn record(&mut self, record: Record) -> Result<()> {
        if !self.exists {
            self.store.create(&self.state).await?;
            self.exists = true;
        }
        self.store.record(&record).await?;
        self.state.apply(&record);
        self.pending += 1;
        Ok(())
    }

    /// Records an applied object.
    pub async fn upsert(&mut self, entry: Entry) -> Result<()> {
        self.record(Record::Upsert { entry }).await
    }

    /// Records a deleted (or forgotten) object.
    pub async fn remove(&mut self, kind: Kind, key: &str) -> Result<()> {
        self.record(Record::Remove { kind, key: key.to_owned() }).await
    }

    /// Records the revision that is now completely applied.
    pub async fn set_revision(&mut self, revision: &str) -> Result<()> {
        self.record(Record::Revision { revision: revision.to_owned() }).await
    }

    /// Folds what was recorded into the state ([`Store::compact`]).
    pub async fn finish(&mut self) -> Result<()> {
        if self.pending > 0 {
            self.store.compact(&self.state).await?;
            self.pending = 0;
        }
        Ok(())
    }
}
