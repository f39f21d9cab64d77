//! The file backend: the state as one JSON file, written atomically, journaled, and locked.
//!
//! A full write goes to a temporary file in the same directory, is flushed to disk, and is
//! renamed over the old file, so a crash leaves either the old or the new state, never a torn
//! one. During an apply, every successful object is recorded at once by appending one line to
//! a journal next to the state (`<state>.journal`); [`load`] replays it, and
//! [`FileStore`]'s compaction folds it into the state file at the end of the apply. So a run
//! killed mid-apply resumes exactly where it stopped, and applying 10,000 objects does not
//! rewrite a 10,000-entry file 10,000 times. (A journal line reaches the OS before the next
//! object starts; only a power loss can lose the last lines, and the next plan then adopts
//! those objects from the tenant.)
//!
//! The journal survives any number of crashes: a torn last line (the process died writing it)
//! is dropped with a warning, what was journaled before it is kept, and the next apply folds
//! the journal into the state before it appends anything, so a new record never lands behind a
//! torn one. A line that a run of an older version glued to a torn one is recovered.
//!
//! A lock file next to the state (`<state>.lock`, held with an OS file lock that dies with the
//! process) stops a second process from applying to the same state.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use super::store::{self, BoxFuture};
use super::{Record, STATE_VERSION, State};

/// State file errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("state file `{path}`")]
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
         `{path}`; wait for it to finish (or pass --lock-timeout to wait)"
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

/// Reads the state and replays its journal; `None` when there is neither (a first run adopts
/// existing objects). Never writes.
pub fn load(path: &Path) -> Result<Option<State>> {
    let Some(mut state) = load_file(path)? else {
        return Ok(None);
    };
    replay(path, &mut state)?;
    Ok(Some(state))
}

/// What a journal held.
#[derive(Debug, Default, PartialEq, Eq)]
struct Replayed {
    /// Records applied.
    records: usize,
    /// Whether there is a journal file at all.
    exists: bool,
}

/// Applies the journal's records to `state`. A torn last line is dropped with a warning; a
/// line that fails to parse before the end is a corrupt journal, unless it is a torn record
/// with a whole one glued behind it (what an older version appended after a crash), which is
/// recovered.
fn replay(path: &Path, state: &mut State) -> Result<Replayed> {
    let journal = sibling(path, ".journal");
    let bytes = match fs::read(&journal) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(io(path)(e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
    let mut replayed = Replayed { records: 0, exists: true };
    for (i, line) in lines.iter().enumerate() {
        let record = serde_json::from_str::<Record>(line).or_else(|e| {
            // A torn record with a whole one behind it on the same line: keep the whole one.
            match line.rfind(r#"{"op":"#).filter(|&at| at > 0) {
                Some(at) => serde_json::from_str::<Record>(&line[at..]).map_err(|_| e),
                None => Err(e),
            }
        });
        match record {
            Ok(record) => {
                state.apply(&record);
                replayed.records += 1;
            }
            Err(_) if i + 1 == lines.len() => {
                tracing::warn!(
                    journal = %journal.display(),
                    kept = replayed.records,
                    "the journal's last line is torn (a run died writing it): dropped; what was \
                     journaled before it is kept"
                );
            }
            Err(e) => {
                return Err(Error::Corrupt {
                    path: journal,
                    message: format!("line {}: {e}", i + 1),
                });
            }
        }
    }
    Ok(replayed)
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
        && (found > u64::from(STATE_VERSION) || found == 0)
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

/// What the `.gitignore` of a directory this tool creates says: everything in it (the state,
/// its journal, lock and key, the sandbox tenant, the Git cache) stays out of the repository it
/// may sit in (`.immuta-gitops/` is made in the current directory by default).
pub const GITIGNORE: &str =
    "# Made by immuta-gitops: its state, keys, lock and sandbox stay out of Git.\n*\n";

/// Creates `dir` and its missing parents; the topmost directory it creates gets a `.gitignore`
/// of `*` ([`GITIGNORE`]), as Python's virtualenvs and pytest's cache do. A directory that
/// exists already is left as it is.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let topmost = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .map(Path::to_path_buf);
    fs::create_dir_all(dir)?;
    if let Some(top) = topmost {
        fs::write(top.join(".gitignore"), GITIGNORE)?;
    }
    Ok(())
}

/// Writes the state atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, state: &State) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir(&dir).map_err(io(path))?;
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

fn remove_journal(path: &Path) -> Result<()> {
    match fs::remove_file(sibling(path, ".journal")) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// The state file as a [`store::Store`]. Nothing is written until an apply records its first
/// change.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    holder: String,
    /// The journal, opened for appending at the first record of an apply.
    journal: Mutex<Option<File>>,
}

impl FileStore {
    /// The store of the state file at `path`; `holder` is written into the lock file.
    pub fn new(path: &Path, holder: &str) -> FileStore {
        FileStore { path: path.to_path_buf(), holder: holder.to_owned(), journal: Mutex::new(None) }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn begin_sync(&self) -> Result<Option<State>> {
        let Some(mut state) = load_file(&self.path)? else {
            // A journal without a state file cannot be replayed onto anything: it is stale.
            remove_journal(&self.path)?;
            return Ok(None);
        };
        if replay(&self.path, &mut state)?.exists {
            // Fold it in now, so that new records never land behind a torn line.
            save(&self.path, &state)?;
            remove_journal(&self.path)?;
        }
        Ok(Some(state))
    }

    fn record_sync(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Corrupt { path: self.path.clone(), message: e.to_string() })?;
        line.push(b'\n');
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if journal.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(sibling(&self.path, ".journal"))
                .map_err(io(&self.path))?;
            *journal = Some(file);
        }
        if let Some(file) = journal.as_mut() {
            file.write_all(&line).map_err(io(&self.path))?;
        }
        Ok(())
    }

    fn replace_sync(&self, state: &State) -> Result<()> {
        save(&self.path, state)?;
        *self.journal.lock().unwrap_or_else(|e| e.into_inner()) = None;
        remove_journal(&self.path)
    }
}

impl store::Store for FileStore {
    fn describe(&self) -> String {
        format!("the state file `{}`", self.path.display())
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn load(&self) -> BoxFuture<'_, store::Result<Option<State>>> {
        Box::pin(async move { Ok(load(&self.path)?) })
    }

    fn begin(&self) -> BoxFuture<'_, store::Result<Option<State>>> {
        Box::pin(async move { Ok(self.begin_sync()?) })
    }

    fn create<'a>(&'a self, state: &'a State) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(async move { Ok(self.replace_sync(state)?) })
    }

    fn record<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(async move { Ok(self.record_sync(record)?) })
    }

    fn compact<'a>(&'a self, state: &'a State) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(async move { Ok(self.replace_sync(state)?) })
    }

    fn replace<'a>(&'a self, state: &'a State) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(async move { Ok(self.replace_sync(state)?) })
    }

    fn try_lock(&self) -> BoxFuture<'_, store::Result<store::Lock>> {
        Box::pin(async move {
            let lock = Lock::acquire_as(&self.path, &self.holder)?;
            Ok(store::Lock::new(Box::new(lock), CancellationToken::new()))
        })
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
        Lock::acquire_as(state_path, &format!("pid {}", std::process::id()))
    }

    /// As [`Lock::acquire`], naming the holder `holder` in the lock file.
    pub fn acquire_as(state_path: &Path, holder: &str) -> Result<Lock> {
        let lock_path = sibling(state_path, ".lock");
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir(dir).map_err(io(state_path))?;
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
        let _ = write!(file, "{holder}");
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
    use crate::state::store::{Recorder, Store};

    #[test]
    fn a_missing_state_is_none_and_a_saved_state_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert!(load(&path).unwrap().is_none());
        let state = State::new("sandbox", "salt");
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state));
        let mut leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        leftovers.sort();
        // `sub/` was made by the save: it keeps itself out of Git.
        assert_eq!(leftovers, [".gitignore", "state.json"]);
        assert_eq!(fs::read_to_string(dir.path().join("sub/.gitignore")).unwrap(), GITIGNORE);
        assert!(!dir.path().join(".gitignore").exists(), "an existing directory is left alone");
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
    fn a_format_1_state_reads_with_its_salt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let v1 = r#"{"version":1,"tenant":"t","salt":"abc","serial":3,"objects":[]}"#;
        fs::write(&path, v1).unwrap();
        let state = load(&path).unwrap().unwrap();
        assert_eq!((state.salt.as_str(), state.key_id.as_deref(), state.serial), ("abc", None, 3));
    }

    fn entry(key: &str) -> crate::state::Entry {
        crate::state::tests::entry(crate::spec::Kind::Policy, key)
    }

    fn keys(state: &State) -> Vec<&str> {
        state.objects.iter().map(|e| e.key.as_str()).collect()
    }

    fn tear(path: &Path) {
        let mut journal = OpenOptions::new().append(true).open(sibling(path, ".journal")).unwrap();
        journal.write_all(br#"{"op":"upsert","entry":{"kind":"pol"#).unwrap();
    }

    #[tokio::test]
    async fn a_torn_journal_survives_any_number_of_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = FileStore::new(&path, "test");
        for (round, key) in ["a", "b", "c"].into_iter().enumerate() {
            // An apply records one object, then dies writing the next record.
            let mut recorder = Recorder::open(&store, State::keyed("sandbox", "k")).await.unwrap();
            assert_eq!(recorder.state().objects.len(), round, "what was journaled is kept");
            recorder.upsert(entry(key)).await.unwrap();
            drop(recorder);
            *store.journal.lock().unwrap() = None;
            tear(&path);
            // Every read still works, and drops only the torn tail.
            assert_eq!(keys(&load(&path).unwrap().unwrap()).len(), round + 1);
        }
        let mut recorder = Recorder::open(&store, State::keyed("sandbox", "k")).await.unwrap();
        recorder.remove(crate::spec::Kind::Policy, "a").await.unwrap();
        recorder.finish().await.unwrap();
        assert_eq!(keys(&load_file(&path).unwrap().unwrap()), ["b", "c"]);
        assert!(!sibling(&path, ".journal").exists());
    }

    #[test]
    fn a_record_glued_behind_a_torn_one_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &State::new("t", "s")).unwrap();
        let whole = serde_json::to_string(&Record::Upsert { entry: entry("x") }).unwrap();
        let text = format!("{{\"op\":\"upsert\",\"entr{whole}\n{{\"op\":\"rev");
        fs::write(sibling(&path, ".journal"), text).unwrap();
        assert_eq!(keys(&load(&path).unwrap().unwrap()), ["x"]);
        fs::write(sibling(&path, ".journal"), "garbage\n{}\n").unwrap();
        assert!(matches!(load(&path), Err(Error::Corrupt { .. })));
    }

    #[tokio::test]
    async fn nothing_is_written_before_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = FileStore::new(&path, "test");
        assert_eq!(store.load().await.unwrap(), None);
        let mut recorder = Recorder::open(&store, State::keyed("t", "k")).await.unwrap();
        recorder.finish().await.unwrap();
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none(), "no file");
        recorder.upsert(entry("a")).await.unwrap();
        recorder.finish().await.unwrap();
        assert_eq!(keys(&load(&path).unwrap().unwrap()), ["a"]);
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
