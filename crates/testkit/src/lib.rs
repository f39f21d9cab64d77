//! Test support for immuta-gitops, shared by the integration tests (`tests/it`) and the
//! benchmark (`benches/reconcile`): temporary spec trees, Git fixtures served by `git daemon`,
//! a tenant (the in-process emulator, a state directory, the real binary) for `plan`/`apply`
//! tests, and a real PostgreSQL for the state's PostgreSQL backend.
//!
//! The kit is a library, so it cannot know where Cargo put the binary under test
//! (`CARGO_BIN_EXE_*` is set only for a package's own tests and benches): callers pass that path
//! in ([`bin`], [`tenant::Env::start`]).

#![deny(clippy::all)]

use std::path::{Path, PathBuf};

use immuta_emulator::EmulatorConfig;
use immuta_gitops::spec::model::RULE_TYPES;
use immuta_gitops::spec::secrets::SECRET_FIELDS;

pub mod git;
pub mod postgres;
pub mod tenant;

/// The repository root (where the workspace's `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    // This crate lives in `crates/testkit/`.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).expect("crates/testkit is two levels down").to_owned()
}

/// The emulator's defaults with the spec loader's lists, as the binary's sandbox tenant gets
/// them: the fields the loader treats as secret and the rule types it accepts.
pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig::new(SECRET_FIELDS, RULE_TYPES)
}

/// A fixture path under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// The `immuta-gitops` binary at `path`, run from the repository root, with colours off and no
/// Immuta settings leaking in from the developer's environment.
///
/// `CI` is removed too: `.ci/run` exports `CI=true`, under which a command without a tenant URL
/// refuses the embedded sandbox. Tests run the binary as on a developer's machine, where the
/// README's first command applies to the sandbox; tests of the CI rule set `CI` themselves.
pub fn bin(path: impl AsRef<Path>) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(path.as_ref());
    cmd.current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("CI")
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

impl Default for SpecDir {
    fn default() -> Self {
        SpecDir::new()
    }
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

/// Sends `request` and parses its answer as JSON, whatever the status; panics when it is not
/// answered or the answer is not JSON.
pub async fn json_answer(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("the request is answered");
    response.json().await.expect("the answer is JSON")
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
    // JSON log lines are flat: `msg` and the fields at the top level.
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = event["msg"].as_str()?;
    let addr = event["addr"].as_str()?;
    message.starts_with("serving ").then(|| format!("http://{addr}"))
}

/// The lines a started reconciler has written to stderr so far (shared with the thread that
/// reads them).
pub type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Follows the stderr of a starting reconciler (`what` names it in the failure): every line is
/// kept in the returned log, and the base URL it announces ([`serving_url`]) is returned once
/// it does, within 30 s (a panic with its log otherwise).
pub fn follow_serving(child: &mut std::process::Child, what: &str) -> (String, Log) {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("the reconciler's stderr is piped");
    let log = Log::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = serving_url(&line) {
                let _ = tx.send(url);
            }
            lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    let base = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap_or_else(|_| {
        let log = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
        panic!("{what} did not start:\n{log}")
    });
    (base, log)
}
