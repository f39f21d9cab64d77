//! Where the key of secret digests comes from. It is never part of the state: a leaked state
//! (a file, a database dump) then holds digests nobody can test guesses against.
//!
//! - Given by the operator: a file (`--digest-key-file`) or the environment
//!   (`IMMUTA_GITOPS_DIGEST_KEY`). Required for PostgreSQL state, whose writers (CI jobs,
//!   reconciler replicas) must all digest with the same key.
//! - The file backend's own key file (`<state>.key`, mode 0600): read when it exists, generated
//!   with 32 random bytes at the first write. A read-only command never creates it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::spec::secrets::{DigestKey, ShortKey};

/// The file backend's key file of the state file at `state`: `<state>.key`.
pub fn local_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Makes the key known to the redaction layer (when it is text).
fn register(key: &[u8]) {
    if let Ok(text) = std::str::from_utf8(trim(key)) {
        crate::redact::register(text);
    }
}

/// Digest key errors. None of them holds key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file cannot be read.
    #[error("cannot read the digest key file `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file cannot be written.
    #[error("cannot write the digest key file `{path}`")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key is too short.
    #[error("{origin}")]
    Short {
        /// Where the key came from.
        origin: String,
        /// The cause.
        #[source]
        source: ShortKey,
    },
    /// A shared state needs a key the operator provides.
    #[error(
        "{state} needs a digest key for secrets, the same for every job and replica: set \
         IMMUTA_GITOPS_DIGEST_KEY, or pass --digest-key-file FILE (32 random bytes, e.g. \
         `head -c 32 /dev/urandom | base64`)"
    )]
    Missing {
        /// The state.
        state: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The digest key of one state, as far as it is known.
#[derive(Debug, Default)]
pub struct Keys {
    /// Given by the operator, or read from the local key file.
    known: OnceLock<DigestKey>,
    /// The file backend's key file, generated at the first write when missing.
    local: Option<PathBuf>,
    /// Where a given key came from (for messages).
    origin: String,
}

impl Keys {
    /// A key the operator gave; `origin` names where from (`IMMUTA_GITOPS_DIGEST_KEY`, a file).
    pub fn given(key: &[u8], origin: &str) -> Result<Keys> {
        register(key);
        let key = DigestKey::new(trim(key))
            .map_err(|source| Error::Short { origin: origin.to_owned(), source })?;
        let known = OnceLock::new();
        let _ = known.set(key);
        Ok(Keys { known, local: None, origin: origin.to_owned() })
    }

    /// A key read from the file at `path`, which must exist.
    pub fn from_file(path: &Path) -> Result<Keys> {
        let bytes = std::fs::read(path)
            .map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        Keys::given(&bytes, &format!("the digest key file `{}`", path.display()))
    }

    /// The file backend's key file at `path`: read when it exists, else generated at the first
    /// write ([`Keys::ensure`]).
    pub fn local(path: &Path) -> Result<Keys> {
        let origin = format!("the digest key file `{}`", path.display());
        let known = OnceLock::new();
        match std::fs::read(path) {
            Ok(bytes) => {
                register(&bytes);
                let key = DigestKey::new(trim(&bytes))
                    .map_err(|source| Error::Short { origin: origin.clone(), source })?;
                let _ = known.set(key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Read { path: path.to_path_buf(), source }),
        }
        Ok(Keys { known, local: Some(path.to_path_buf()), origin })
    }

    /// No key (a shared state whose operator gave none): [`Keys::ensure`] fails.
    pub fn none() -> Keys {
        Keys::default()
    }

    /// The key, when it exists already.
    pub fn current(&self) -> Option<&DigestKey> {
        self.known.get()
    }

    /// Where the key comes from, for messages (never the key).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key, generating the local key file when there is none yet (the first write to a
    /// file state). `state` names the state in the error of a shared state without a key.
    pub fn ensure(&self, state: &str) -> Result<&DigestKey> {
        if let Some(key) = self.known.get() {
            return Ok(key);
        }
        let Some(path) = &self.local else {
            return Err(Error::Missing { state: state.to_owned() });
        };
        let text = hex::encode(rand::random::<[u8; 32]>());
        write_new(path, text.as_bytes())?;
        let key = DigestKey::new(text.into_bytes())
            .map_err(|source| Error::Short { origin: self.origin.clone(), source })?;
        Ok(self.known.get_or_init(|| key))
    }
}

impl Keys {
    /// Writes the current key into a new key file at `path` (0600; an existing file is never
    /// replaced): a state copied to a file keeps working on its own.
    pub fn copy_to(&self, path: &Path) -> Result<()> {
        match self.known.get() {
            Some(key) => write_new(path, key.material()),
            None => Ok(()),
        }
    }
}

/// Key material without surrounding whitespace (a trailing newline in a file or a Secret).
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Writes a new file readable by its owner only (0600), never replacing one.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |source| Error::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::file::create_dir(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.write_all(b"\n").map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_key_is_generated_once_at_the_first_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.key");
        let keys = Keys::local(&path).unwrap();
        assert!(keys.current().is_none() && !path.exists(), "reading creates nothing");
        let id = keys.ensure("state").unwrap().id();
        assert_eq!(keys.ensure("state").unwrap().id(), id);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Keys::local(&path).unwrap().current().unwrap().id(), id);
        assert_eq!(Keys::from_file(&path).unwrap().current().unwrap().id(), id);
    }

    #[test]
    fn given_keys_are_trimmed_and_checked_and_a_shared_state_needs_one() {
        let a = Keys::given(b"  0123456789abcdef0123\n", "env").unwrap();
        let b = Keys::given(b"0123456789abcdef0123", "env").unwrap();
        assert_eq!(a.current(), b.current());
        let err = Keys::given(b"short\n", "IMMUTA_GITOPS_DIGEST_KEY").unwrap_err();
        let text = crate::diagnostic::chain(&err);
        assert!(text.starts_with("IMMUTA_GITOPS_DIGEST_KEY: the digest key has 5"), "{text}");
        let err = Keys::none().ensure("PostgreSQL state `x`").unwrap_err();
        assert!(err.to_string().contains("IMMUTA_GITOPS_DIGEST_KEY"), "{err}");
    }
}
