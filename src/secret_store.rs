//! Where placeholder values come from at send time: the process environment and a secrets
//! directory for `${file:PATH}`.
//!
//! `${file:PATH}` is resolved against the secrets directory (`--secrets-dir`, default
//! `/run/secrets`): a relative path is joined to it, an absolute path must lie inside it, and the
//! resolved file (after following symlinks) must still lie inside it. `..` is refused by the
//! loader already. A trailing newline is dropped (files written by `echo` end in one; Kubernetes
//! Secrets do not). Files above 1 MiB are refused. Reasons never contain file content.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::diagnostic::{Code, Diagnostic};
use crate::spec::Desired;
use crate::spec::envfile::EnvValues;
use crate::spec::secrets::SecretSource;
use crate::spec::text::escaped;

/// The default secrets directory (Docker and Kubernetes convention).
pub const DEFAULT_SECRETS_DIR: &str = "/run/secrets";

/// Largest secret file read.
pub const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// Names of the environment variables that are set: what `${NAME}` placeholders are checked
/// against when specs are loaded (values are read only when a payload is sent).
pub fn env_names() -> impl Iterator<Item = String> {
    std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())
}

/// Secrets from the process environment and a secrets directory.
///
/// A secret file is read once per `ProcessSecrets` (one plan or apply; the daemon makes a new
/// one for every reconcile, so a rotated file is picked up), however many placeholders name it.
#[derive(Clone)]
pub struct ProcessSecrets {
    secrets_dir: PathBuf,
    defaults: EnvValues,
    files: Arc<Mutex<HashMap<String, Result<String, String>>>>,
}

impl std::fmt::Debug for ProcessSecrets {
    /// Never shows values: only where they come from.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSecrets")
            .field("secrets_dir", &self.secrets_dir)
            .finish_non_exhaustive()
    }
}

impl ProcessSecrets {
    /// Secrets from the environment and `secrets_dir`.
    pub fn new(secrets_dir: impl Into<PathBuf>) -> Self {
        ProcessSecrets {
            secrets_dir: secrets_dir.into(),
            defaults: EnvValues::default(),
            files: Arc::default(),
        }
    }

    /// Adds default values for variables the environment does not set (env files).
    pub fn with_defaults(mut self, defaults: EnvValues) -> Self {
        self.defaults = defaults;
        self
    }

    /// Where `path` resolves, or why it is not allowed.
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let p = Path::new(path);
        if p.components().any(|c| c == Component::ParentDir) {
            return Err("the path must not contain `..`".into());
        }
        let joined = if p.is_absolute() { p.to_path_buf() } else { self.secrets_dir.join(p) };
        let root = std::fs::canonicalize(&self.secrets_dir).map_err(|e| {
            format!("the secrets directory `{}` is not readable: {e}", self.secrets_dir.display())
        })?;
        let target = std::fs::canonicalize(&joined).map_err(|e| format!("{e}"))?;
        if !target.starts_with(&root) {
            return Err(format!(
                "the file lies outside the secrets directory `{}` (set --secrets-dir to allow another directory)",
                self.secrets_dir.display()
            ));
        }
        Ok(target)
    }
}

impl SecretSource for ProcessSecrets {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| self.defaults.get(name).map(str::to_owned))
    }

    fn file(&self, path: &str) -> Result<String, String> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.entry(path.to_owned()).or_insert_with(|| self.read_file(path)).clone()
    }
}

impl ProcessSecrets {
    fn read_file(&self, path: &str) -> Result<String, String> {
        let target = self.resolve(path)?;
        let meta = std::fs::metadata(&target).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if meta.len() > MAX_SECRET_FILE {
            return Err(format!("the file is larger than {MAX_SECRET_FILE} bytes"));
        }
        let bytes = std::fs::read(&target).map_err(|e| e.to_string())?;
        let mut text =
            String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_string())?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(text)
    }
}

/// Checks that every `${file:...}` of the spec tree can be read. Values are read and dropped at
/// once; only problems are reported. Each distinct path is read once, however many placeholders
/// name it (a spec naming a 1 MiB secret file 100,000 times must not read 100 GB).
pub fn check_files(desired: &Desired, source: &dyn SecretSource) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut checked: HashMap<&str, Result<(), String>> = HashMap::new();
    for r in &desired.secret_files {
        let result =
            checked.entry(r.file.as_str()).or_insert_with(|| source.file(&r.file).map(drop));
        if let Err(reason) = result {
            diags.push(
                Diagnostic::error(
                    Code::SecretFile,
                    format!(
                        "secret file `{}` cannot be read: {}",
                        escaped(&r.file),
                        escaped(reason)
                    ),
                )
                .at(r.location.clone())
                .path(r.path.clone())
                .hint(
                    "mount the file under the secrets directory (--secrets-dir), or fix the path",
                ),
            );
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_inside_the_secrets_dir_are_read_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), "s3cret\n").unwrap();
        std::fs::write(outside.path().join("other"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("other"), dir.path().join("escape"))
            .unwrap();
        let s = ProcessSecrets::new(dir.path());
        assert_eq!(s.file("db").unwrap(), "s3cret");
        assert_eq!(s.file(&dir.path().join("db").display().to_string()).unwrap(), "s3cret");
        assert!(s.file("../x").unwrap_err().contains(".."));
        assert!(s.file("escape").unwrap_err().contains("outside the secrets directory"));
        assert!(s.file(&outside.path().join("other").display().to_string()).is_err());
        assert!(s.file("missing").is_err());
    }
}
