//! A tenant for `plan`/`apply` tests: an in-process emulator, a state directory, a spec tree,
//! and the real binary pointed at them (its path is given to [`Env::start`]).
//!
//! Tests must be `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`: the binary runs
//! on a blocking thread while the emulator keeps serving on the runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use immuta_emulator::{ADMIN_KEY, Emulator, EmulatorConfig, EmulatorHandle};
use immuta_gitops::apply::{self, Silent};
use immuta_gitops::live::{Client, ClientConfig};
use immuta_gitops::plan::{self, PlanInput, Safety, Target};
use immuta_gitops::snapshot::Snapshot;
use immuta_gitops::spec::envfile::EnvValues;
use immuta_gitops::spec::secrets::SecretSource;
use immuta_gitops::spec::{self, LoadOptions};
use immuta_gitops::state::State;
use immuta_gitops::state::file::FileStore;
use immuta_gitops::state::key::{self, Keys};
use immuta_gitops::state::store::Recorder;
use reqwest::Method;
use serde_json::{Value, json};

use super::SpecDir;

/// How long one run of the binary may take before the test fails (generous: the machine is
/// shared; a hung run is a failure, not a slow pass).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment every run gets: short retry waits, the password of the `shop` fixture, and no
/// system root certificates. The emulator speaks plain HTTP, and OpenSSL parsing the whole CA
/// bundle for every TLS context is half the CPU of a short run (the suite runs hundreds).
pub const BASE_ENV: &[(&str, &str)] = &[
    ("IMMUTA_GITOPS_RETRY_BASE_MS", "5"),
    ("SHOP_PASSWORD", "shop-password-1"),
    ("SSL_CERT_FILE", "/dev/null"),
    ("SSL_CERT_DIR", "/nonexistent"),
];

/// A client for test calls to emulators, shared by every test: building one costs a TLS
/// context (tens of milliseconds of CPU). Without pooled connections it can serve many
/// runtimes: each request connects on the runtime that sends it.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("an HTTP client")
        })
        .clone()
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Stdout parsed as JSON (`plan --format json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.text()))
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn must_exit(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code; output:\n{}", self.text());
        self
    }

    /// Asserts that stdout contains `needle`, showing stdout when it does not.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}:\n{}", self.stdout);
        self
    }

    /// Asserts that stderr contains `needle`, showing stderr when it does not.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self
    }
}

/// An emulator, a state directory and a spec tree.
pub struct Env {
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
    pub specs: SpecDir,
    state_dir: tempfile::TempDir,
    /// The binary under test.
    bin: PathBuf,
    /// The API key the binary uses.
    pub key: String,
    /// Environment variables every run gets (after the defaults, before a run's own).
    pub env: Vec<(String, String)>,
}

impl Env {
    /// An empty tenant with the admin key, for the binary at `bin`.
    pub async fn start(bin: impl Into<PathBuf>) -> Env {
        Env::start_with(bin, super::emulator_config()).await
    }

    /// A tenant with `config`, for the binary at `bin`; the binary uses the first key of
    /// `config` (or the admin key).
    pub async fn start_with(bin: impl Into<PathBuf>, config: EmulatorConfig) -> Env {
        let key = config.api_keys.first().map_or(ADMIN_KEY.to_owned(), |k| k.key.clone());
        let emu = Emulator::start_with(config).await.expect("the emulator starts");
        Env {
            emu,
            http: http_client(),
            specs: SpecDir::new(),
            state_dir: tempfile::tempdir().expect("temp dir"),
            bin: bin.into(),
            key,
            env: Vec::new(),
        }
    }

    pub fn url(&self) -> String {
        self.emu.base_url()
    }

    pub fn state_dir(&self) -> &Path {
        self.state_dir.path()
    }

    /// The state file the binary writes for this tenant.
    pub fn state_path(&self) -> PathBuf {
        self.state_dir.path().join("state.json")
    }

    /// The state file, parsed (`Null` when there is none).
    pub fn state_file(&self) -> Value {
        match std::fs::read_to_string(self.state_path()) {
            Ok(text) => serde_json::from_str(&text).expect("the state file is JSON"),
            Err(_) => Value::Null,
        }
    }

    /// Deletes the state file (and its journal and lock): the next run starts with no state.
    pub fn forget_state(&self) {
        for suffix in ["", ".journal", ".lock"] {
            let path = PathBuf::from(format!("{}{suffix}", self.state_path().display()));
            let _ = std::fs::remove_file(path);
        }
    }

    /// `(kind, key)` of every object in the state file.
    pub fn managed(&self) -> BTreeSet<(String, String)> {
        self.state_file()["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (str_of(&e["kind"]), str_of(&e["key"])))
            .collect()
    }

    /// Runs the binary against this tenant: `args` then `--url`, `--state-dir`, `--color never`.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[]).await
    }

    /// As [`Env::run`], with extra environment variables.
    pub async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args, env);
        let output = tokio::time::timeout(
            RUN_TIMEOUT,
            tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs")),
        )
        .await
        .unwrap_or_else(|_| panic!("`immuta-gitops {}` did not finish in time", args.join(" ")))
        .expect("the blocking task ends");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The command [`Env::run_env`] runs (for tests that spawn and kill it).
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.current_dir(self.specs.path())
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .env_remove("IMMUTA_URL")
            .env_remove("IMMUTA_ADMIN_API_KEY")
            .env_remove("IMMUTA_GITOPS_STATE_DIR")
            .env_remove("IMMUTA_GITOPS_SECRETS_DIR")
            .env_remove("RUST_LOG")
            .env("IMMUTA_API_KEY", &self.key)
            .stdin(std::process::Stdio::null())
            .args(args)
            .arg("--url")
            .arg(self.url())
            .arg("--state-dir")
            .arg(self.state_dir.path())
            .args(["--color", "never"]);
        for (k, v) in BASE_ENV {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `apply SPECS --auto-approve` without waiting for it (for tests that kill or
    /// interrupt it), its stdout and stderr sent to `output()` (`Stdio::null` or `Stdio::piped`).
    pub fn spawn_apply(&self, output: impl Fn() -> Stdio) -> Child {
        let specs = self.specs.path().display().to_string();
        self.command(&["apply", &specs, "--auto-approve"], &[])
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("the binary starts")
    }

    /// `plan SPECS extra...`.
    pub async fn plan(&self, extra: &[&str]) -> Run {
        let specs = self.specs.path().display().to_string();
        let mut args = vec!["plan", specs.as_str()];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// `plan SPECS --format json extra...`, which must succeed; the plan.
    pub async fn plan_json(&self, extra: &[&str]) -> Value {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        self.plan(&args).await.must_exit(0).json()
    }

    /// `apply SPECS --auto-approve extra...`.
    pub async fn apply(&self, extra: &[&str]) -> Run {
        let specs = self.specs.path().display().to_string();
        let mut args = vec!["apply", specs.as_str(), "--auto-approve"];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// `apply SPECS --auto-approve extra...`, which must be refused: exit 1, `reason` on stderr,
    /// and the tenant as it was (timestamps aside).
    pub async fn apply_refused(&self, extra: &[&str], reason: &str) -> Run {
        let before = without_times(&self.tenant().await);
        let run = self.apply(extra).await.must_exit(1);
        run.stderr_has(reason);
        assert_eq!(without_times(&self.tenant().await), before, "nothing changed");
        run
    }

    /// Applies the specs without the binary (for setting a test up cheaply): the library's
    /// load, read, plan and apply, with the state file and the variables the binary would use.
    /// Every change is allowed; it must succeed and leave nothing to do. Data-source posts ask
    /// Immuta to `wait` until their data sources exist.
    pub async fn apply_in_process(&self) {
        let snapshot = immuta_gitops::source::dir::read(
            self.specs.path(),
            &immuta_gitops::source::dir::ReadOptions {
                include: spec::is_snapshot_file,
                ..Default::default()
            },
        )
        .expect("the specs are readable");
        let vars: BTreeMap<String, String> = BASE_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain(self.env.iter().cloned())
            .collect();
        let mut config = ClientConfig::new(self.url(), self.key.clone().into());
        config.retry.min_delay = Duration::from_millis(5);
        config.retry.max_delay = Duration::from_millis(40);
        let client = Client::new(config).expect("a client");
        reconcile(&client, &self.state_path(), &self.url(), &snapshot, vars)
            .await
            .unwrap_or_else(|e| panic!("the in-process apply failed: {e}"));
    }

    /// Asserts that a plan shows no changes (`--detailed-exitcode` exits 0).
    pub async fn assert_converged(&self) {
        let run = self.plan(&["--detailed-exitcode"]).await;
        assert_eq!(run.code, 0, "the next plan must be empty:\n{}", run.text());
        assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    }

    // --- The emulator's test controls and API ---

    /// A `/_emulator/` control call that must succeed.
    pub async fn control(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let req = self.http.request(method, format!("{}/_emulator{path}", self.url()));
        must_succeed(req, &format!("control {path}"), body).await
    }

    /// Delays every request the emulator answers by `ms` milliseconds (0 = off).
    pub async fn set_latency(&self, ms: u64) {
        self.control(Method::PUT, "/latency", Some(&json!({ "ms": ms }))).await;
    }

    /// Plays the tenant variants `settings` (`DIMENSION=VALUE`); every other dimension is the
    /// default (the most realistic tenant).
    pub async fn set_variants(&self, settings: &[&str]) {
        let variants = immuta_emulator::Variants::parse(settings.iter().copied())
            .unwrap_or_else(|e| panic!("variants {settings:?}: {e}"));
        self.control(Method::PUT, "/variants", Some(&json!({ "variants": variants }))).await;
    }

    /// How long data sources posted from now on take to be created in the background.
    pub async fn set_creation_delay(&self, ms: u64) {
        self.control(Method::PUT, "/variants", Some(&json!({ "creationDelayMs": ms }))).await;
    }

    /// Waits (at most 30 s) until the request log satisfies `done`; `what` names the wait.
    pub async fn wait_for_requests(&self, what: &str, done: impl Fn(&[Value]) -> bool) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !done(&self.requests().await) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting: {what}"));
    }

    /// `GET /_emulator/state` (secrets as digests).
    pub async fn tenant(&self) -> Value {
        self.control(Method::GET, "/state", None).await
    }

    /// The request log.
    pub async fn requests(&self) -> Vec<Value> {
        self.control(Method::GET, "/requests", None).await.as_array().cloned().unwrap_or_default()
    }

    pub async fn clear_requests(&self) {
        self.control(Method::DELETE, "/requests", None).await;
    }

    /// Arms a fault rule.
    pub async fn fault(&self, rule: Value) {
        self.control(Method::POST, "/faults", Some(&rule)).await;
    }

    /// Rules still armed.
    pub async fn armed_faults(&self) -> Vec<Value> {
        let v = self.control(Method::GET, "/faults", None).await;
        v["faults"].as_array().cloned().unwrap_or_default()
    }

    pub async fn set_catalog(&self, catalog: &Value) {
        self.control(Method::PUT, "/catalog", Some(catalog)).await;
    }

    /// Edits an object as a UI user would (`kind`: data, datasource, policy, project, purpose).
    pub async fn tamper(&self, kind: &str, key: &str, patch: &Value) {
        let path = format!("/objects/{kind}/{}", encode(key));
        self.control(Method::PATCH, &path, Some(patch)).await;
    }

    /// Deletes an object out of band.
    pub async fn delete_out_of_band(&self, kind: &str, key: &str) {
        let path = format!("/objects/{kind}/{}", encode(key));
        self.control(Method::DELETE, &path, None).await;
    }

    /// Calls the Immuta API with the admin key, as a person would by hand; must succeed.
    pub async fn by_hand(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let req = self
            .http
            .request(method, format!("{}{path}", self.url()))
            .header("Authorization", format!("Bearer {}", self.key));
        must_succeed(req, path, body).await
    }

    /// What the tenant holds, by natural key.
    pub async fn view(&self) -> View {
        View::of(&self.tenant().await)
    }
}

/// Sends `req` (with `body` as JSON, if any), which must succeed; its JSON answer (`null` when it
/// has none). `what` names the call in the failure.
async fn must_succeed(req: reqwest::RequestBuilder, what: &str, body: Option<&Value>) -> Value {
    let req = match body {
        Some(b) => req.json(b),
        None => req,
    };
    let resp = req.send().await.expect("the call is answered");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

/// Percent-encodes a path segment (keys have spaces).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// A data source as the tenant holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ds {
    pub id: u64,
    pub name: String,
    pub disabled: bool,
}

/// The tenant's objects by natural key (from `GET /_emulator/state`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    pub policies: BTreeSet<String>,
    /// Full names, subpurposes included.
    pub purposes: BTreeSet<String>,
    pub projects: BTreeSet<String>,
    /// Connection keys with a stored payload.
    pub connections: BTreeSet<String>,
    /// Data sources per connection key.
    pub data_sources: BTreeMap<String, Vec<Ds>>,
    pub licenses: usize,
    /// Natural keys held twice (a duplicated object): always empty on a healthy tenant.
    pub duplicates: Vec<String>,
}

impl View {
    pub fn of(state: &Value) -> View {
        let values =
            |k: &str| state[k].as_object().map(|m| m.values().cloned().collect::<Vec<_>>());
        let mut v = View::default();
        let mut dup = |set: &mut BTreeSet<String>, kind: &str, key: String| {
            if !set.insert(key.clone()) {
                v.duplicates.push(format!("{kind} {key}"));
            }
        };
        for p in values("policies").unwrap_or_default() {
            dup(&mut v.policies, "policy", str_of(&p["policyKey"]));
        }
        for p in values("purposes").unwrap_or_default() {
            dup(&mut v.purposes, "purpose", str_of(&p["name"]));
        }
        for p in values("projects").unwrap_or_default() {
            dup(&mut v.projects, "project", str_of(&p["projectKey"]));
        }
        if let Some(c) = state["connections"].as_object() {
            v.connections = c.keys().cloned().collect();
        }
        for d in values("dataSources").unwrap_or_default() {
            v.data_sources.entry(str_of(&d["connectionKey"])).or_default().push(Ds {
                id: d["id"].as_u64().unwrap_or_default(),
                name: str_of(&d["name"]),
                disabled: d["deleted"].as_bool().unwrap_or(false),
            });
        }
        let mut names = BTreeSet::new();
        for list in v.data_sources.values_mut() {
            list.sort();
            for d in list.iter() {
                if !names.insert(d.name.clone()) {
                    v.duplicates.push(format!("data source {}", d.name));
                }
            }
        }
        v.licenses = values("licenses").map_or(0, |l| l.len());
        v
    }

    /// Names of the enabled data sources of a connection, sorted.
    pub fn active(&self, key: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .data_sources
            .get(key)
            .into_iter()
            .flatten()
            .filter(|d| !d.disabled)
            .map(|d| d.name.clone())
            .collect();
        names.sort();
        names
    }
}

/// The data sources of `state` (`GET /_emulator/state`) by name.
pub fn data_source_records(state: &Value) -> BTreeMap<String, Value> {
    state["dataSources"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .map(|d| (str_of(&d["name"]), d.clone()))
        .collect()
}

/// The stored V2 payload of the user project `key`.
pub fn project_payload(state: &Value, key: &str) -> Value {
    state["projects"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find(|p| p["projectKey"] == key)
        .map(|p| p["payload"].clone())
        .unwrap_or_else(|| panic!("project {key} is on the tenant"))
}

/// The state without timestamps (which every write moves), for "nothing changed" checks.
pub fn without_times(state: &Value) -> Value {
    match state {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "createdAt" | "updatedAt"))
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

/// The writes of a request log: `METHOD PATH` of every POST or DELETE that is not a dry run
/// (authentication exchanges excluded: they change nothing on the tenant).
pub fn writes(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r["method"] == "POST" || r["method"] == "DELETE" || r["method"] == "PUT")
        .filter(|r| r["path"] != "/bim/apikey/authenticate")
        .filter(|r| !r["query"].as_str().unwrap_or_default().contains("dryRun=true"))
        .map(|r| format!("{} {}", str_of(&r["method"]), str_of(&r["path"])))
        .collect()
}

/// The dry runs of a request log: `METHOD PATH` of every request with `dryRun=true`.
pub fn dry_runs(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r["query"].as_str().unwrap_or_default().contains("dryRun=true"))
        .map(|r| format!("{} {}", str_of(&r["method"]), str_of(&r["path"])))
        .collect()
}

/// The `type`s of the effects of the change of `kind`/`key` in a JSON plan.
pub fn effect_types(plan: &Value, kind: &str, key: &str) -> Vec<String> {
    change(plan, kind, key)["effects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| str_of(&e["type"]))
        .collect()
}

/// The change of `kind`/`key` in a JSON plan.
#[track_caller]
pub fn change<'a>(plan: &'a Value, kind: &str, key: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["kind"] == kind && c["key"] == key)
        .unwrap_or_else(|| panic!("no change for {kind} {key} in {plan:#}"))
}

/// `(kind, key, action)` of every change that is not a no-op.
pub fn actions(plan: &Value) -> Vec<(String, String, String)> {
    plan["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["action"] != "no_change")
        .map(|c| (str_of(&c["kind"]), str_of(&c["key"]), str_of(&c["action"])))
        .collect()
}

/// Asserts that the plan's changes are exactly `expected` (`(kind, key, action)`), in any order.
#[track_caller]
pub fn assert_actions(plan: &Value, expected: &[(&str, &str, &str)]) {
    let mut actual = actions(plan);
    actual.sort();
    let mut expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|&(kind, key, action)| (kind.into(), key.into(), action.into()))
        .collect();
    expected.sort();
    assert_eq!(actual, expected, "{plan:#}");
}

// --- Spec trees ---

/// Copies `specs-example/` into `dir`.
pub fn copy_example(dir: &SpecDir) {
    let root = super::repo_root().join("specs-example");
    copy_tree(&root, &root, dir);
}

fn copy_tree(root: &Path, at: &Path, dir: &SpecDir) {
    for entry in std::fs::read_dir(at).expect("specs-example is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            copy_tree(root, &path, dir);
        } else {
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
            dir.write(&rel, &std::fs::read_to_string(&path).expect("text file"));
        }
    }
}

/// Replaces `from` by `to` in the spec file `rel`; `from` must occur.
#[track_caller]
pub fn edit(dir: &SpecDir, rel: &str, from: &str, to: &str) {
    let path = dir.path().join(rel);
    let text = std::fs::read_to_string(&path).expect("the spec file exists");
    assert!(text.contains(from), "`{from}` is not in {rel}:\n{text}");
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

/// The data-source spec of the `shop` fixture: three tables on an "open" catalog (no catalog
/// entry: explicit tables are accepted as they are), table tags, two owners, and a password
/// from `SHOP_PASSWORD`.
pub const SHOP_DATA: &str = "\
connectionKey: shop
connection:
  handler: Snowflake
  hostname: shop.example.com
  port: 443
  database: SHOP
  warehouse: WH
  username: svc
  password: ${SHOP_PASSWORD}
options:
  tableTags: [Dept.Sales]
owners:
  - {type: group, name: stewards}
  - {type: user, name: maria@example.com}
sources:
  - {tableName: CUSTOMERS, schema: PUBLIC}
  - {tableName: ORDERS, schema: PUBLIC}
  - {tableName: REFUNDS, schema: PUBLIC}
";

/// A purpose with two subpurposes.
pub const SHOP_PURPOSE: &str = "\
name: Analytics
description: Aggregate analysis.
subpurposes:
  - name: Analytics.Marketing
  - name: Analytics.Product
";

/// Two policies.
pub const SHOP_POLICIES: &str = "\
name: Hash e-mail
policyKey: mask-email
type: data
actions:
  - rules:
      - type: Masking
        config:
          fields: [{type: columnTags, columnTag: PII.Email}]
          maskingConfig: {type: Hash}
circumstances:
  - {type: columnTags, columnTag: PII.Email}
---
name: Employees subscribe
policyKey: subscribe-employees
type: subscription
actions:
  type: entitlements
  entitlements: {operator: any, groups: [Employees]}
circumstances:
  - {type: tags, tag: Dept.Sales}
";

/// A project naming two of the shop's data sources and two purposes.
pub const SHOP_PROJECT: &str = "\
projectKey: insights
name: Insights
purposes: [Analytics, Analytics.Marketing]
datasources: [public customers, public orders]
";

/// The `shop` fixture's files: where each goes under the spec root, and its text.
pub const SHOP_FILES: [(&str, &str); 4] = [
    ("data/shop.yaml", SHOP_DATA),
    ("purposes/analytics.yaml", SHOP_PURPOSE),
    ("policies/policies.yaml", SHOP_POLICIES),
    ("projects/insights.yaml", SHOP_PROJECT),
];

/// Writes the `shop` fixture: 1 connection (3 tables), 1 purpose (2 subpurposes), 2 policies,
/// 1 project.
pub fn write_shop(dir: &SpecDir) {
    for (rel, text) in SHOP_FILES {
        dir.write(rel, text);
    }
}

/// Removes the `shop` fixture's files: every object it manages loses its spec.
pub fn remove_shop(dir: &SpecDir) {
    for (rel, _) in SHOP_FILES {
        dir.remove(rel);
    }
}

/// A policy spec with `key` (a masking policy on one column tag).
pub fn policy_spec(key: &str) -> String {
    format!(
        "name: Policy {key}\npolicyKey: {key}\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        \
         config:\n          fields: [{{type: columnTags, columnTag: Tag.{key}}}]\n          \
         maskingConfig: {{type: Hash}}\ncircumstances:\n  - {{type: columnTags, columnTag: Tag.{key}}}\n"
    )
}

/// The body of a hand-made policy (posted directly to the tenant).
pub fn hand_policy(key: &str) -> Value {
    json!({
        "name": format!("Hand-made {key}"),
        "policyKey": key,
        "type": "data",
        "actions": [{"rules": [{"type": "Masking", "config": {
            "fields": [{"type": "columnTags", "columnTag": "Hand.Made"}],
            "maskingConfig": {"type": "Hash"}}}]}],
        "circumstances": [{"type": "columnTags", "columnTag": "Hand.Made"}],
    })
}

// --- In-process reconcile (library) ---

/// Placeholder values: given variables, then the spec tree's env files.
pub struct Vars {
    vars: BTreeMap<String, String>,
    defaults: EnvValues,
}

impl SecretSource for Vars {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned().or_else(|| self.defaults.get(name).map(str::to_owned))
    }

    fn file(&self, path: &str) -> Result<String, String> {
        Err(format!("no secret files in tests ({path})"))
    }
}

/// Reads the tenant and plans `targets` over `state`, as `plan` does (no `--refresh`).
pub async fn plan_in_process(
    client: &Client,
    label: &str,
    desired: &spec::Desired,
    targets: &[Target<'_>],
    state: &State,
    secrets: &dyn SecretSource,
) -> Result<plan::Plan, String> {
    let observed = immuta_gitops::pipeline::observe(client, targets, state, secrets, false, 4, &())
        .await
        .map_err(|e| e.to_string())?;
    Ok(plan::plan(&PlanInput {
        targets,
        state,
        observed: Some(&observed),
        settings: &desired.settings,
        tenant: label.to_owned(),
        revision: desired.revision.clone(),
        base: None,
        refresh: false,
        now: std::time::SystemTime::now(),
    }))
}

/// Plan then apply `snapshot` with every change allowed (`--allow-destroy --force`), recording
/// in the state at `state_path` (created for tenant `label` when missing); then the next plan
/// must be empty. What went wrong, otherwise.
pub async fn reconcile(
    client: &Client,
    state_path: &Path,
    label: &str,
    snapshot: &Snapshot,
    vars: BTreeMap<String, String>,
) -> Result<(), String> {
    let names =
        vars.keys().cloned().chain(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
    let (desired, diags) = spec::load(snapshot, &LoadOptions::with_env(names));
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(format!("spec error: {d}"));
    }
    let secrets = Vars { vars, defaults: desired.env_defaults.clone() };
    // The key file the binary uses for this state (made here when missing, as an apply does).
    let keys = Keys::local(&key::local_path(state_path)).map_err(|e| e.to_string())?;
    let key = keys.ensure("the test state").map_err(|e| e.to_string())?.clone();
    let file = FileStore::new(state_path, "pid 0 on test: in-process apply");
    let mut store =
        Recorder::open(&file, State::keyed(label, key.id())).await.map_err(|e| e.to_string())?;
    let state = store.state().clone();
    let targets: Vec<Target<'_>> = desired
        .objects
        .iter()
        .map(|o| {
            plan::comparable(o, Some(&secrets), &key)
                .map(|comparable| Target::new(o, comparable))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let p = plan_in_process(client, label, &desired, &targets, &state, &secrets).await?;
    if !p.errors.is_empty() {
        return Err(format!("the tenant refuses the plan: {:?}", p.errors));
    }
    let safety = Safety { allow_destroy: true, force: true, max_delete_percent: 25 };
    let refusals = plan::refusals(&p, &state, &safety);
    if !refusals.is_empty() {
        return Err(format!("refused: {refusals:?}"));
    }
    // `wait: -1`: each data-source post answers once its data sources exist, so a test reads
    // the tenant it set up without racing Immuta's background creation.
    let options = apply::Options {
        parallelism: 4,
        revision: desired.revision.clone(),
        cancel: Default::default(),
        wait: Some(-1),
        creation_timeout: None,
    };
    let outcome = apply::apply(&p, &targets, &mut store, client, &secrets, &options, &Silent)
        .await
        .map_err(|e| e.to_string())?;
    if !outcome.is_success() {
        return Err(format!("apply failed: {:?}", outcome.results));
    }
    let state = store.state().clone();
    let next = plan_in_process(client, label, &desired, &targets, &state, &secrets).await?;
    if next.has_changes() {
        let left: Vec<String> = next
            .changes
            .iter()
            .filter(|c| c.action != plan::Action::NoOp)
            .map(|c| format!("{} {}", c.action.verb(), c.id))
            .collect();
        return Err(format!("the next plan is not empty: {left:?}"));
    }
    Ok(())
}
