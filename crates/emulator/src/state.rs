//! The shared state behind every handler: the store (one lock), auth, traffic controls, and
//! the data file the store is persisted to.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::faults::Faults;
use super::http::{ApiError, ApiResult};
use super::reqlog::RequestLog;
use super::secrets::Secrets;
use super::store::Store;
use super::variants::Variants;
use super::{EmulatorConfig, Error};

/// Locks a mutex, recovering the data if a panicking thread poisoned it (every mutation keeps
/// the store consistent before it can panic, so the data is still usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The emulator's shared state; cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct EmulatorState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The tenant. One lock for all objects: requests are short and never do I/O under it.
    pub(crate) store: Mutex<Store>,
    pub(crate) auth: Mutex<Auth>,
    pub(crate) faults: Mutex<Faults>,
    /// Answers no documented API gives (`misbehave.rs`).
    pub(crate) misbehaviours: Mutex<super::misbehave::Misbehaviours>,
    pub(crate) requests: Mutex<RequestLog>,
    persister: Option<Persister>,
    /// [`EmulatorConfig::secret_fields`].
    secrets: Secrets,
    /// [`EmulatorConfig::rule_types`].
    rule_types: &'static [&'static str],
    /// The variants played and the creation delay (`PUT /_emulator/variants` changes them).
    pub(crate) behaviour: Mutex<Behaviour>,
    /// Listings that lie ([`crate::lies`]).
    pub(crate) lies: Mutex<crate::lies::Lies>,
}

/// How the tenant behaves: [`EmulatorConfig::variants`] and
/// [`EmulatorConfig::creation_delay`], changeable at run time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Behaviour {
    pub(crate) variants: Variants,
    pub(crate) creation_delay: std::time::Duration,
}

impl std::fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorState")
            .field("data_file", &self.inner.persister.as_ref().map(|p| &p.path))
            .finish_non_exhaustive()
    }
}

impl EmulatorState {
    /// Builds the state from a configuration, loading the data file if one is configured (a
    /// missing file is an empty tenant).
    pub fn new(config: &EmulatorConfig) -> Result<EmulatorState, Error> {
        let mut store = match &config.data_file {
            Some(path) => load(path)?,
            None => Store::default(),
        };
        if !config.catalog.is_empty() {
            store.catalog = config.catalog.clone();
        }
        if config.k_anonymization {
            store.settings.k_anonymization = true;
        }
        let persister = config.data_file.as_ref().map(|path| Persister {
            path: path.clone(),
            generation: AtomicU64::new(0),
            written: Mutex::new(0),
        });
        Ok(EmulatorState {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                auth: Mutex::new(Auth::new(&config.api_keys, config.token_ttl)),
                faults: Mutex::new(Faults::default()),
                misbehaviours: Mutex::default(),
                requests: Mutex::new(RequestLog::default()),
                lies: Mutex::default(),
                persister,
                secrets: Secrets::new(config.secret_fields),
                rule_types: config.rule_types,
                behaviour: Mutex::new(Behaviour {
                    variants: config.variants,
                    creation_delay: config.creation_delay,
                }),
            }),
        })
    }

    /// The secret fields: what is masked in the request log and digested in the store.
    pub(crate) fn secrets(&self) -> Secrets {
        self.inner.secrets
    }

    /// The data-policy rule types `POST /api/v2/policy` accepts.
    pub(crate) fn rule_types(&self) -> &'static [&'static str] {
        self.inner.rule_types
    }

    /// The variants the tenant plays now.
    pub fn variants(&self) -> Variants {
        lock(&self.inner.behaviour).variants
    }

    /// How long background creation takes now.
    pub(crate) fn creation_delay(&self) -> std::time::Duration {
        lock(&self.inner.behaviour).creation_delay
    }

    /// Reads the store under its lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&lock(&self.inner.store))
    }

    /// Runs a mutation under the store lock; on success, and when `persist` is set, writes the
    /// data file (if any) before returning.
    pub(crate) async fn mutate<R>(
        &self,
        persist: bool,
        f: impl FnOnce(&mut Store) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let (result, snapshot) = {
            let mut store = lock(&self.inner.store);
            let result = f(&mut store)?;
            let snapshot = match (&self.inner.persister, persist) {
                (Some(p), true) => Some(p.snapshot(&store).map_err(|e| {
                    ApiError::internal(format!("could not serialise the store: {e}"))
                })?),
                _ => None,
            };
            (result, snapshot)
        };
        if let Some(snapshot) = snapshot {
            self.write(snapshot).await.map_err(|e| {
                tracing::error!(error = %e, "emulator data file not written");
                ApiError::internal(format!("the data file could not be written: {e}"))
            })?;
        }
        Ok(result)
    }

    /// Writes the data file now (used at shutdown); a no-op without a data file.
    pub async fn flush(&self) -> Result<(), Error> {
        let snapshot = {
            let store = lock(&self.inner.store);
            match &self.inner.persister {
                Some(p) => Some(p.snapshot(&store).map_err(|e| Error::WriteDataFile {
                    path: p.path.clone(),
                    source: std::io::Error::other(e),
                })?),
                None => None,
            }
        };
        match snapshot {
            Some(snapshot) => self.write(snapshot).await,
            None => Ok(()),
        }
    }

    async fn write(&self, snapshot: Snapshot) -> Result<(), Error> {
        let state = self.clone();
        let path = snapshot.path.clone();
        tokio::task::spawn_blocking(move || match &state.inner.persister {
            Some(p) => p.write(snapshot),
            None => Ok(()),
        })
        .await
        .map_err(|e| Error::WriteDataFile { path, source: std::io::Error::other(e) })?
    }
}

/// What the data file holds.
#[derive(Deserialize)]
struct DataFile {
    format: String,
    store: Store,
}

/// [`DataFile`] for writing, borrowing the store.
#[derive(Serialize)]
struct DataFileRef<'a> {
    format: &'a str,
    store: &'a Store,
}

const FORMAT: &str = "immuta-gitops-emulator/1";

/// Writes the store to the data file, in order, atomically.
struct Persister {
    path: PathBuf,
    /// Generation of the latest snapshot taken.
    generation: AtomicU64,
    /// Generation of the latest snapshot written; the lock also serialises writers.
    written: Mutex<u64>,
}

struct Snapshot {
    generation: u64,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Persister {
    /// Serialises the store; called under the store lock so generations follow mutations.
    fn snapshot(&self, store: &Store) -> Result<Snapshot, serde_json::Error> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let file = DataFileRef { format: FORMAT, store };
        let bytes = serde_json::to_vec_pretty(&file)?;
        Ok(Snapshot { generation, path: self.path.clone(), bytes })
    }

    /// Writes a snapshot unless a newer one was written already: a temporary file in the same
    /// directory, synced, then renamed over the data file.
    fn write(&self, snapshot: Snapshot) -> Result<(), Error> {
        let mut written = lock(&self.written);
        if snapshot.generation <= *written {
            return Ok(());
        }
        let err = |source| Error::WriteDataFile { path: self.path.clone(), source };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        tmp.write_all(&snapshot.bytes).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&self.path).map_err(|e| err(e.error))?;
        *written = snapshot.generation;
        Ok(())
    }
}

/// Loads a data file; a missing file is an empty tenant.
fn load(path: &Path) -> Result<Store, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
        Err(source) => return Err(Error::ReadDataFile { path: path.to_owned(), source }),
    };
    let file: DataFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::CorruptDataFile { path: path.to_owned(), message: e.to_string() })?;
    if file.format != FORMAT {
        return Err(Error::CorruptDataFile {
            path: path.to_owned(),
            message: format!("unknown format {:?} (expected {FORMAT:?})", file.format),
        });
    }
    Ok(file.store)
}
