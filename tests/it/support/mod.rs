//! Shared helpers: the binary under test, temporary spec trees, fixture paths.

#![allow(dead_code)] // Not every test module uses every helper.

use std::path::{Path, PathBuf};

pub mod git;
pub mod tenant;

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// The `immuta-gitops` binary, with colours off and no Immuta settings leaking in from the
/// developer's environment.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_immuta-gitops"));
    cmd.current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("IMMUTA_URL")
        .env_remove("IMMUTA_API_KEY")
        .env_remove("IMMUTA_ADMIN_API_KEY")
        .env_remove("IMMUTA_GITOPS_SECRETS_DIR")
        .env_remove("RUST_LOG");
    cmd
}

/// A temporary spec tree.
pub struct SpecDir {
    dir: tempfile::TempDir,
}

impl SpecDir {
    /// An empty tree.
    pub fn new() -> Self {
        SpecDir { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// Writes `text` to `rel` (creating directories).
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        self
    }

    /// Removes `rel`.
    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.dir.path().join(rel)).expect("remove");
        self
    }

    /// The tree's root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Stdout and stderr of a finished command, as one string.
pub fn output_text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The base URL a starting reconciler announces on stderr: the text line
/// `immuta-gitops reconciler serving on URL`, or with `--log-format json` the JSON log event
/// whose message starts with `serving` and whose `addr` field is the address.
pub fn serving_url(line: &str) -> Option<String> {
    if let Some(url) = line.strip_prefix("immuta-gitops reconciler serving on ") {
        return Some(url.to_owned());
    }
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &event["fields"];
    let message = fields["message"].as_str()?;
    let addr = fields["addr"].as_str()?;
    message.starts_with("serving ").then(|| format!("http://{addr}"))
}
