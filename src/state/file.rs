//! Reading and writing the state file: atomically, and under a lock.
//!
//! Writes go to a temporary file in the same directory, are flushed to disk, and renamed over
//! the old file, so a crash leaves either the old or the new state, never a torn one. A lock
//! file next to the state (`<state>.lock`, held with an OS file lock that dies with the process)
//! stops a second process from applying to the same state.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{STATE_VERSION, State};

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
        "another immuta-gitops process ({holder}) is applying to `{path}`; wait for it to finish"
    )]
    Locked {
        /// The state file.
        path: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Reads the state; `None` when the file does not exist (a first run adopts existing objects).
pub fn load(path: &Path) -> Result<Option<State>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
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

/// An exclusive lock on a state file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock on `state_path`, failing at once when another process holds it.
    pub fn acquire(state_path: &Path) -> Result<Lock> {
        let mut lock_path = state_path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
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
                return Err(Error::Locked { path: state_path.to_path_buf(), holder });
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
