//! Reading and writing the state file: atomically, journaled, and under a lock.
//!
//! A full write goes to a temporary file in the same directory, is flushed to disk, and is
//! renamed over the old file, so a crash leaves either the old or the new state, never a torn
//! one. During an apply, every successful object is recorded at once by appending one line to
//! a journal next to the state (`<state>.journal`); [`load`] replays it (ignoring a torn last
//! line), and [`Store::compact`] folds it into the state file at the end of the apply. So a run
//! killed mid-apply resumes exactly where it stopped, and applying 10,000 objects does not
//! rewrite a 10,000-entry file 10,000 times. (A journal line reaches the OS before the next
//! object starts; only a power loss can lose the last lines, and the next plan then adopts
//! those objects from the tenant.)
//!
//! A lock file next to the state (`<state>.lock`, held with an OS file lock that dies with the
//! process) stops a second process from applying to the same state.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Entry, STATE_VERSION, State};

/// State file errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("state file `{path}`: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid state file.
    #[error(
        "state file `{path}` is not valid: {message}; restore it from a backup, or move it away to re-adopt the tenant's objects"
    )]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file was written by a newer version.
    #[error(
        "state file `{path}` has format version {found}; this immuta-gitops understands {STATE_VERSION}: upgrade immuta-gitops"
    )]
    Version {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Another process holds the lock.
    #[error(
        "another immuta-gitops process ({holder}) holds the lock `{lock}` and is applying to \
         `{path}`; wait for it to finish"
    )]
    Locked {
        /// The state file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// One journal line.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Upsert { entry: Entry },
    Remove { kind: crate::spec::Kind, key: String },
    Revision { revision: String },
}

/// Reads the state and replays its journal; `None` when there is neither (a first run adopts
/// existing objects).
pub fn load(path: &Path) -> Result<Option<State>> {
    let Some(mut state) = load_file(path)? else {
        return Ok(None);
    };
    replay(path, &mut state)?;
    Ok(Some(state))
}

fn replay(path: &Path, state: &mut State) -> Result<usize> {
    let journal = sibling(path, ".journal");
    let text = match fs::read_to_string(&journal) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path)(e)),
    };
    let mut n = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Record>(line) {
            Ok(Record::Upsert { entry }) => state.upsert(entry),
            Ok(Record::Remove { kind, key }) => {
                state.remove(kind, &key);
            }
            Ok(Record::Revision { revision }) => state.revision = Some(revision),
            // A torn last line: the process died while writing it.
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => {
                return Err(Error::Corrupt {
                    path: journal,
                    message: format!("line {}: {e}", i + 1),
                });
            }
        }
        n += 1;
    }
    state.serial += n as u64;
    Ok(n)
}

fn load_file(path: &Path) -> Result<Option<State>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    // Only the version, before the whole file: every other field is skipped, not built (a
    // state of 10,000 objects parsed into a JSON tree twice would double the peak memory).
    #[derive(serde::Deserialize)]
    struct Version {
        version: Option<u64>,
    }
    let version = serde_json::from_str::<Version>(&text).ok().and_then(|v| v.version);
    if let Some(found) = version
        && found > u64::from(STATE_VERSION)
    {
        return Err(Error::Version {
            path: path.to_path_buf(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    let mut state: State = serde_json::from_str(&text)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), message: e.to_string() })?;
    state.objects.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    Ok(Some(state))
}

/// Writes the state atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, state: &State) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io(path))?;
    let mut text = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), message: e.to_string() })?;
    text.push(b'\n');
    let mut tmp = tempfile::Builder::new().prefix(".state-").tempfile_in(&dir).map_err(io(path))?;
    tmp.write_all(&text).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    if let Ok(d) = File::open(&dir) {
        // Best effort: make the rename itself durable.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The state of an apply in progress: every change is journaled at once.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    state: State,
    journal: Option<File>,
    pending: usize,
}

impl Store {
    /// Opens the state at `path` (replaying and folding in any journal left by a killed run),
    /// or starts `fresh` when there is none.
    pub fn open(path: &Path, fresh: impl FnOnce() -> State) -> Result<Store> {
        let mut state = match load_file(path)? {
            Some(s) => s,
            None => {
                let s = fresh();
                save(path, &s)?;
                s
            }
        };
        let replayed = replay(path, &mut state)?;
        let mut store = Store { path: path.to_path_buf(), state, journal: None, pending: replayed };
        store.compact()?;
        Ok(store)
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn record(&mut self, record: &Record) -> Result<()> {
        if self.journal.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(sibling(&self.path, ".journal"))
                .map_err(io(&self.path))?;
            self.journal = Some(file);
        }
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Corrupt { path: self.path.clone(), message: e.to_string() })?;
        line.push(b'\n');
        if let Some(journal) = &mut self.journal {
            journal.write_all(&line).map_err(io(&self.path))?;
        }
        self.pending += 1;
        self.state.serial += 1;
        Ok(())
    }

    /// Records an applied object.
    pub fn upsert(&mut self, entry: Entry) -> Result<()> {
        self.record(&Record::Upsert { entry: entry.clone() })?;
        self.state.upsert(entry);
        Ok(())
    }

    /// Records a deleted (or forgotten) object.
    pub fn remove(&mut self, kind: crate::spec::Kind, key: &str) -> Result<()> {
        self.record(&Record::Remove { kind, key: key.to_owned() })?;
        self.state.remove(kind, key);
        Ok(())
    }

    /// Records the revision that is now completely applied.
    pub fn set_revision(&mut self, revision: &str) -> Result<()> {
        self.record(&Record::Revision { revision: revision.to_owned() })?;
        self.state.revision = Some(revision.to_owned());
        Ok(())
    }

    /// Writes the whole state atomically and drops the journal.
    pub fn compact(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        save(&self.path, &self.state)?;
        self.journal = None;
        match fs::remove_file(sibling(&self.path, ".journal")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&self.path)(e)),
        }
        self.pending = 0;
        Ok(())
    }
}

/// An exclusive lock on a state file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock on `state_path`, failing at once when another process holds it.
    pub fn acquire(state_path: &Path) -> Result<Lock> {
        let lock_path = sibling(state_path, ".lock");
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io(state_path))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(state_path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "unknown process".to_owned()
                } else {
                    holder.to_owned()
                };
                return Err(Error::Locked {
                    path: state_path.to_path_buf(),
                    lock: lock_path,
                    holder,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(state_path)(e)),
        }
        file.set_len(0).map_err(io(state_path))?;
        let _ = write!(file, "pid {}", std::process::id());
        let _ = file.flush();
        Ok(Lock { _file: file, path: lock_path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_state_is_none_and_a_saved_state_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert!(load(&path).unwrap().is_none());
        let state = State::new("sandbox", "salt");
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state));
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, ["state.json"]);
    }

    #[test]
    fn corrupt_and_future_states_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(&path), Err(Error::Corrupt { .. })));
        fs::write(&path, r#"{"version": 99}"#).unwrap();
        assert!(matches!(load(&path), Err(Error::Version { found: 99, .. })));
    }

    fn entry(key: &str) -> Entry {
        Entry {
            kind: crate::spec::Kind::Policy,
            key: key.into(),
            id: Some(1),
            digest: "d".into(),
            payload: serde_json::json!({}).into(),
            prune: true,
            revision: "r".into(),
            applied_at: "t".into(),
            names: vec![],
        }
    }

    #[test]
    fn a_killed_apply_resumes_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut store = Store::open(&path, || State::new("sandbox", "salt")).unwrap();
        store.upsert(entry("a")).unwrap();
        store.upsert(entry("b")).unwrap();
        store.remove(crate::spec::Kind::Policy, "a").unwrap();
        // The process dies here, mid-write of a fourth record.
        drop(store);
        let mut journal = OpenOptions::new().append(true).open(sibling(&path, ".journal")).unwrap();
        journal.write_all(br#"{"op":"upsert","entry":{"kind":"pol"#).unwrap();
        let state = load(&path).unwrap().unwrap();
        let keys: Vec<_> = state.objects.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b"]);
        // Opening the store folds the journal into the state file.
        let store = Store::open(&path, || unreachable!()).unwrap();
        assert_eq!(store.state().objects.len(), 1);
        assert!(!sibling(&path, ".journal").exists());
        assert_eq!(load_file(&path).unwrap().unwrap().objects.len(), 1);
    }

    #[test]
    fn the_lock_is_exclusive_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let lock = Lock::acquire(&path).unwrap();
        match Lock::acquire(&path) {
            Err(Error::Locked { holder, .. }) => assert!(holder.starts_with("pid "), "{holder}"),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(lock);
        assert!(Lock::acquire(&path).is_ok());
    }
}
