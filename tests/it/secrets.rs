//! Secret hygiene: every command and output format, with a distinct canary in every secret the
//! tool handles, and a scan of everything it prints, logs, stores or serves.
//!
//! Canaries sit in every secret field the loader knows ([`SECRET_FIELDS`] and
//! `userFiles[].content`), each three ways: as `${VAR}`, as `${file:...}` and as a literal
//! (rotated at every commit); in fields that are not secret but take a placeholder (tainted, so
//! never shown either); in an env file; in three license keys; in the Immuta API keys (from the
//! environment and from `--api-key-file`); in the Git HTTPS token, a URL password and an SSH
//! key; and in the GitHub webhook secret and the GitLab token.
//!
//! One tenant serves every step: the `emulator` command itself, as a subprocess. The commands:
//! `validate` (text, json), `schema`, `plan` (text, json, markdown, `--out`, `--base REV`
//! offline), `apply` (a saved plan, with its journal watched, and a directory), `license
//! status` (text, json), and `run`: a repository served by `git daemon` (two commits applied,
//! the second woken by a signed webhook), a watched directory with rotated secrets (JSON logs),
//! and two repositories that reject the HTTPS token or cannot be reached with the SSH key.
//!
//! Scanned: stdout and stderr of every command (debug logs, text and JSON), the state file, the
//! journal seen during an apply, saved plans, `/status`, `/metrics`, `/healthz`, `/readyz` and
//! webhook answers; and on the tenant side the emulator's output, request log, state and data
//! file. The tenant may hold the values of non-secret fields (it needs them) but never a secret
//! field's value, and it must have received every secret (as the digest it stores), so a scan
//! that finds nothing is not a scan of nothing.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use immuta_gitops::spec::secrets::SECRET_FIELDS;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::git::{GitDaemon, GitFixture, RejectingHttpServer, free_port};
use crate::support::tenant::writes;
use crate::support::{SpecDir, output_text, serving_url};

const BIN: &str = env!("CARGO_BIN_EXE_immuta-gitops");
const API_KEY: &str = "canary-api-key-4a1f9c";
const ADMIN_API_KEY: &str = "canary-admin-api-key-2b8d4e";
const WEBHOOK_SECRET: &str = "canary-webhook-secret-77e0b2";
const GITLAB_TOKEN: &str = "canary-gitlab-token-3c9a51";
const GIT_TOKEN: &str = "canary-git-token-e81f07";
const URL_PASSWORD: &str = "canary-url-password-5a0c3d";
const SSH_KEY: &str = "canary-ssh-key-d4b6a9";
/// Interpolated into a field that is not secret (`connectionStringOptions`).
const OPTIONS: &str = "canary-tainted-options-0f2e6b";
/// A default from an env file the repository lists, interpolated into `username`.
const ENV_FILE_USER: &str = "canary-env-file-user-9e4c21";
const LICENSE_ENV: &str = "IMMUTA-TEST;seats=11;expires=2031-03-04;softSeats=7";
const LICENSE_FILE: &str = "IMMUTA-TEST;seats=12;expires=2031-05-06;hardSeats=false";
const LICENSE_LITERAL: &str = "IMMUTA-TEST;seats=13;expires=2031-07-08;softSeats=1";
/// Literal secrets are rotated at every commit: generations 0 to 3.
const GENERATIONS: u32 = 4;

/// The secret fields of a connection: every field the loader treats as secret (license keys
/// are documents of their own), then `userFile` for `userFiles[].content`.
fn connection_fields() -> Vec<&'static str> {
    let mut fields: Vec<&str> =
        SECRET_FIELDS.iter().copied().filter(|f| !f.eq_ignore_ascii_case("licenseKey")).collect();
    fields.push("userFile");
    fields
}

/// The canary of `field` from `origin` (`env`, `env2` once rotated, `file`, `literal<N>`).
fn canary(origin: &str, field: &str) -> String {
    format!("canary-{origin}-{field}-7c1e")
}

fn env_var(field: &str) -> String {
    format!("C_ENV_{field}")
}

/// Every canary, labelled; and the values the tenant is allowed to hold (non-secret fields).
struct Canaries {
    all: Vec<(String, String)>,
    tenant_may_hold: Vec<String>,
}

impl Canaries {
    fn new() -> Self {
        let mut all: Vec<(String, String)> = [
            ("IMMUTA_API_KEY", API_KEY),
            ("IMMUTA_ADMIN_API_KEY", ADMIN_API_KEY),
            ("IMMUTA_GITOPS_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("IMMUTA_GITOPS_GITLAB_TOKEN", GITLAB_TOKEN),
            ("IMMUTA_GITOPS_GIT_TOKEN", GIT_TOKEN),
            ("the password in --repo", URL_PASSWORD),
            ("--ssh-key-file", SSH_KEY),
            ("tainted connectionStringOptions", OPTIONS),
            ("env file default", ENV_FILE_USER),
            ("licenseKey ${VAR}", LICENSE_ENV),
            ("licensekey ${file:...}", LICENSE_FILE),
            ("licenseKey literal", LICENSE_LITERAL),
        ]
        .into_iter()
        .map(|(l, v)| (l.to_owned(), v.to_owned()))
        .collect();
        let literals = (0..GENERATIONS).map(|g| format!("literal{g}"));
        let origins: Vec<String> =
            ["env", "env2", "file"].map(String::from).into_iter().chain(literals).collect();
        for field in connection_fields() {
            for origin in &origins {
                all.push((format!("{field} ({origin})"), canary(origin, field)));
            }
        }
        Canaries { all, tenant_may_hold: vec![OPTIONS.to_owned(), ENV_FILE_USER.to_owned()] }
    }
}

/// What a scanned text is: what the tool shows, what it stores, or what the tenant records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Printed, logged or served: no canary, and no salted digest of one either.
    Output,
    /// The state and its journal: no canary; salted digests by design.
    State,
    /// The tenant's records: no secret field's value (non-secret fields are its business).
    Tenant,
}

/// What the scans found.
struct Scan {
    canaries: Canaries,
    found: Vec<String>,
    scanned: usize,
}

impl Scan {
    fn check(&mut self, kind: Kind, what: &str, text: &str) {
        self.scanned += 1;
        for (label, value) in &self.canaries.all {
            if kind == Kind::Tenant && self.canaries.tenant_may_hold.contains(value) {
                continue;
            }
            if let Some(at) = text.find(value.as_str()) {
                let from = text.floor_char_boundary(at.saturating_sub(80));
                let to = text.ceil_char_boundary((at + value.len() + 80).min(text.len()));
                self.found.push(format!("{label} in {what}: …{}…", &text[from..to]));
            }
        }
        if kind == Kind::Output
            && let Some(at) = text.find("(sensitive:")
        {
            let to = text.ceil_char_boundary((at + 40).min(text.len()));
            self.found.push(format!("a salted digest in {what}: {}", &text[at..to]));
        }
    }

    fn output(&mut self, what: &str, text: &str) {
        self.check(Kind::Output, what, text);
    }

    fn tenant(&mut self, what: &str, text: &str) {
        self.check(Kind::Tenant, what, text);
    }

    /// Every file under `dir` except the Git cache (the repository as fetched, which holds the
    /// literal secrets its authors committed).
    fn state_dir(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "git-cache" {
                    self.state_dir(&path);
                }
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let kind = if name == "state.json" || name == "state.json.journal" {
                Kind::State
            } else {
                Kind::Output
            };
            self.check(kind, &path.display().to_string(), &text);
        }
    }
}

/// A spec tree at `generation`: three connections holding every secret field (from the
/// environment, from secret files, literal), three license keys, a purpose, settings and an
/// env file.
fn write_specs(repo: &GitFixture, generation: u32) {
    let connection = |key: &str, extra: &str, value: &dyn Fn(&str) -> String| {
        let mut doc = format!(
            "connectionKey: {key}\nconnection:\n  handler: Snowflake\n  hostname: {key}.example.com\n  \
             warehouse: W\n  database: D\n{extra}"
        );
        for field in connection_fields().into_iter().filter(|f| *f != "userFile") {
            doc.push_str(&format!("  {field}: \"{}\"\n", value(field)));
        }
        doc.push_str(&format!(
            "  userFiles:\n    - keyName: PRIV_KEY_FILE\n      content: \"{}\"\n\
             sources:\n  - tableName: {key}\n    schema: S\n",
            value("userFile")
        ));
        doc
    };
    let extra = "  username: \"${C_ENVFILE}\"\n  connectionStringOptions: \"opts=${C_OPTS};x=1\"\n";
    repo.write("ds-env.yaml", connection("canary-env", extra, &|f| format!("${{{}}}", env_var(f))));
    repo.write("ds-file.yaml", connection("canary-file", "", &|f| format!("${{file:file-{f}}}")));
    let literal = format!("literal{generation}");
    repo.write("ds-literal.yaml", connection("canary-literal", "", &|f| canary(&literal, f)));
    repo.write(
        "licenses.yaml",
        format!(
            "licenseKey: \"${{C_LIC}}\"\n---\nlicensekey: \"${{file:license}}\"\n---\n\
             licenseKey: \"{LICENSE_LITERAL}\"\n"
        ),
    );
    repo.write(
        "purpose.yaml",
        format!("name: Canary purpose\ndescription: generation {generation}\n"),
    );
    repo.write("immuta-gitops.yaml", "envFiles: [canary.env]\n");
    repo.write("canary.env", format!("C_ENVFILE={ENV_FILE_USER}\n"));
}

/// A running process whose stdout and stderr are collected, and the URL it announced.
struct Running {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    base: String,
}

impl Running {
    fn start(cmd: &mut Command, announced: fn(&str) -> Option<String>) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let readers = [stdout, stderr]
            .into_iter()
            .map(|stream| {
                let (tx, output) = (tx.clone(), output.clone());
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        if let Some(url) = announced(&line) {
                            let _ = tx.send(url);
                        }
                        let mut all = output.lock().unwrap();
                        all.push_str(&line);
                        all.push('\n');
                    }
                })
            })
            .collect();
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no address announced:\n{}", output.lock().unwrap()));
        Running { child, output, readers, base }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM, then everything it printed.
    fn stop(&mut self) -> (ExitStatus, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        (status, self.output())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn emulator_url(line: &str) -> Option<String> {
    line.strip_prefix("immuta emulator listening on ").map(str::to_owned)
}

/// Where everything lives.
struct Ctx {
    url: String,
    state: PathBuf,
    secrets: PathBuf,
    http: reqwest::Client,
}

impl Ctx {
    /// The binary with every secret in its environment and debug logs.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--color")
            .arg("never")
            .args(args)
            .env("IMMUTA_URL", &self.url)
            .env("IMMUTA_API_KEY", API_KEY)
            .env("IMMUTA_ADMIN_API_KEY", ADMIN_API_KEY)
            .env("IMMUTA_GITOPS_STATE_DIR", &self.state)
            .env("IMMUTA_GITOPS_SECRETS_DIR", &self.secrets)
            .env("IMMUTA_GITOPS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("IMMUTA_GITOPS_GITLAB_TOKEN", GITLAB_TOKEN)
            .env("IMMUTA_GITOPS_GIT_TOKEN", GIT_TOKEN)
            .env("IMMUTA_GITOPS_LISTEN", "127.0.0.1:0")
            .env("IMMUTA_GITOPS_RETRY_BASE_MS", "5")
            .env("C_OPTS", OPTIONS)
            .env("C_LIC", LICENSE_ENV)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .env_remove("C_ENVFILE")
            .stdin(Stdio::null());
        for field in connection_fields() {
            cmd.env(env_var(field), canary("env", field));
        }
        cmd
    }

    /// Runs a command to its end; fails unless it exits with `code`.
    fn run(&self, scan: &mut Scan, what: &str, mut cmd: Command, code: i32) -> String {
        let out = cmd.output().unwrap();
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(code), "{what}:\n{text}");
        scan.output(what, &text);
        text
    }

    async fn get(&self, url: String) -> String {
        self.http.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// The tenant's request log.
    async fn requests(&self) -> Vec<Value> {
        let log = self.get(format!("{}/_emulator/requests", self.url)).await;
        serde_json::from_str::<Value>(&log).unwrap().as_array().cloned().unwrap_or_default()
    }

    async fn latency(&self, ms: u64) {
        let url = format!("{}/_emulator/latency", self.url);
        let answer = self.http.put(url).json(&json!({ "ms": ms })).send().await.unwrap();
        assert!(answer.status().is_success());
    }
}

/// Polls a reconciler's `/status` until `done`.
async fn wait_for(
    http: &reqwest::Client,
    run: &Running,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = match http.get(format!("{}/status", run.base)).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "no {what}: {status:#}\n{}", run.output());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn outcome(status: &Value) -> &str {
    status["history"][0]["outcome"].as_str().unwrap_or_default()
}

/// Scans a reconciler's endpoints, then stops it and scans what it printed.
async fn scan_and_stop(ctx: &Ctx, scan: &mut Scan, what: &str, run: &mut Running) {
    for path in ["/status", "/metrics", "/readyz", "/healthz"] {
        let body = ctx.get(format!("{}{path}", run.base)).await;
        scan.output(&format!("{what}: {path}"), &body);
    }
    let (status, output) = run.stop();
    assert!(status.success(), "{what}: {status:?}\n{output}");
    scan.output(&format!("{what}: stdout and stderr"), &output);
}

fn hub_signature(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_output_file_log_or_endpoint_ever_shows_a_secret() {
    let mut scan = Scan { canaries: Canaries::new(), found: Vec::new(), scanned: 0 };
    let secrets = SpecDir::new();
    for field in connection_fields() {
        secrets.write(&format!("file-{field}"), &canary("file", field));
    }
    secrets.write("license", LICENSE_FILE);
    let keys = SpecDir::new();
    keys.write("api.key", &format!("{API_KEY}\n"));
    keys.write("admin.key", &format!("{ADMIN_API_KEY}\n"));
    keys.write(
        "id_canary",
        &format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{SSH_KEY}\n-----END OPENSSH PRIVATE KEY-----\n"
        ),
    );
    let state = SpecDir::new();
    let tenant_dir = SpecDir::new();
    let data_file = tenant_dir.path().join("tenant.json");

    // The tenant: the `emulator` command, with debug logs.
    let mut emulator = Running::start(
        Command::new(BIN)
            .args(["emulator", "--listen", "127.0.0.1:0", "--api-key", API_KEY])
            .args(["--api-key", ADMIN_API_KEY, "--data-file"])
            .arg(&data_file)
            .env("RUST_LOG", "debug"),
        emulator_url,
    );
    let ctx = Ctx {
        url: emulator.base.clone(),
        state: state.path().to_owned(),
        secrets: secrets.path().to_owned(),
        http: reqwest::Client::new(),
    };

    // A repository: the base commit, then the head the commands plan and apply.
    let repo = GitFixture::new();
    write_specs(&repo, 0);
    let base = repo.commit("base");
    write_specs(&repo, 1);
    repo.commit("head");
    let work = repo.work();
    let spec = work.to_str().unwrap();
    let saved = state.path().join("plan.json");
    let saved = saved.to_str().unwrap();

    // Every command and format before the first apply.
    let before_apply: &[(&str, &[&str])] = &[
        ("validate", &["validate", spec]),
        ("validate --format json", &["validate", spec, "--format", "json"]),
        ("schema", &["schema"]),
        ("schema --settings", &["schema", "--settings"]),
        ("plan --format text", &["plan", spec, "--format", "text"]),
        ("plan --format json", &["plan", spec, "--format", "json"]),
        ("plan --format markdown", &["plan", spec, "--format", "markdown"]),
        ("plan --out", &["plan", spec, "--out", saved]),
    ];
    for (what, args) in before_apply {
        ctx.run(&mut scan, what, ctx.command(args), 0);
    }
    assert!(std::fs::read_to_string(saved).unwrap().contains("canary-literal"));

    // `plan --base`: offline, against the base commit. The rotated literals are changes, shown
    // masked.
    for format in ["text", "json", "markdown"] {
        let what = format!("plan --base --format {format}");
        let args = ["plan", spec, "--base", base.as_str(), "--format", format];
        let text = ctx.run(&mut scan, &what, ctx.command(&args), 0);
        assert!(text.contains("(sensitive, changed)"), "{what}:\n{text}");
    }

    // `apply` of the saved plan, slowed down so that its journal can be read as it grows.
    ctx.latency(100).await;
    let mut apply = ctx.command(&["--log-format", "json", "apply", saved, "--parallelism", "1"]);
    let apply_out = tempfile::NamedTempFile::new().unwrap();
    let mut apply = apply
        .stdout(apply_out.reopen().unwrap())
        .stderr(apply_out.reopen().unwrap())
        .spawn()
        .unwrap();
    let journal_path = state.path().join("state.json.journal");
    let mut journals = Vec::new();
    let applied = loop {
        if let Ok(text) = std::fs::read_to_string(&journal_path)
            && journals.last() != Some(&text)
        {
            journals.push(text);
        }
        if let Some(status) = apply.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    ctx.latency(0).await;
    let text = std::fs::read_to_string(apply_out.path()).unwrap();
    assert!(applied.success(), "apply plan.json:\n{text}");
    scan.output("apply plan.json (JSON logs)", &text);
    assert!(journals.iter().any(|j| j.contains("canary-env")), "no journal seen: {journals:#?}");
    for (i, journal) in journals.iter().enumerate() {
        scan.check(Kind::State, &format!("state.json.journal during apply (version {i})"), journal);
    }

    // After the apply: nothing left to do, and every read-only command again.
    let after_apply: &[(&str, &[&str])] = &[
        ("plan --refresh after apply", &["plan", spec, "--refresh", "--detailed-exitcode"]),
        ("apply a directory", &["apply", spec, "--auto-approve"]),
        ("license status", &["license", "status"]),
        ("license status --format json", &["license", "status", "--format", "json"]),
    ];
    for (what, args) in after_apply {
        ctx.run(&mut scan, what, ctx.command(args), 0);
    }
    let mut cmd = ctx.command(&["license", "status", "--api-key-file"]);
    cmd.arg(keys.path().join("api.key"));
    cmd.arg("--admin-api-key-file").arg(keys.path().join("admin.key"));
    cmd.env_remove("IMMUTA_API_KEY").env_remove("IMMUTA_ADMIN_API_KEY");
    ctx.run(&mut scan, "license status (keys from files)", cmd, 0);

    // A rotated secret is planned as `(sensitive, changed)`, never by value.
    let mut cmd = ctx.command(&["plan", spec, "--format", "json"]);
    cmd.env(env_var("password"), canary("env2", "password"));
    let text = ctx.run(&mut scan, "plan with a rotated password", cmd, 0);
    assert!(text.contains("(sensitive, changed)"), "{text}");

    // `run --repo`: a repository on `git daemon`; the reconciler applies a new commit, then one
    // that a signed webhook announces. Text logs.
    let daemon = GitDaemon::serve(&repo.base_path());
    write_specs(&repo, 2);
    let third = repo.commit("third");
    let writes_before = writes(&ctx.requests().await).len();
    let mut run = Running::start(
        &mut ctx.command(&["run", "--repo", &daemon.url("repo.git"), "--interval", "1h"]),
        serving_url,
    );
    let applied = |rev: &str| {
        let rev = rev.to_owned();
        move |s: &Value| s["applied_revision"] == rev.as_str() && outcome(s) == "applied"
    };
    wait_for(&ctx.http, &run, "apply of the third commit", applied(&third)).await;
    write_specs(&repo, 3);
    let fourth = repo.commit("fourth");
    let body = json!({"ref": "refs/heads/main", "after": fourth}).to_string();
    let answer = ctx
        .http
        .post(format!("{}/webhook", run.base))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "delivery-1")
        .header("X-Hub-Signature-256", hub_signature(&body))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    scan.output("signed GitHub webhook answer", &answer.text().await.unwrap());
    wait_for(&ctx.http, &run, "apply of the fourth commit", applied(&fourth)).await;
    let daemon_writes = writes(&ctx.requests().await).len() - writes_before;
    assert!(daemon_writes >= 4, "the reconciler applied {daemon_writes} writes");
    // Webhooks with a wrong signature or token (the secrets in the body) and a right token.
    let deliveries = [
        ("X-GitHub-Event", "push", "X-Hub-Signature-256", format!("sha256={}", "0".repeat(64))),
        ("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "wrong".to_owned()),
        ("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", GITLAB_TOKEN.to_owned()),
    ];
    for (event, kind, auth, value) in deliveries {
        let body = json!({"ref": "refs/heads/main", "checkout_sha": fourth, "secret": WEBHOOK_SECRET, "token": GITLAB_TOKEN});
        let answer = ctx
            .http
            .post(format!("{}/webhook", run.base))
            .header(event, kind)
            .header(auth, &value)
            .header("X-Gitlab-Event-UUID", "uuid-1")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let code = answer.status().as_u16();
        let right = value == GITLAB_TOKEN;
        assert!(if right { code < 300 } else { code == 401 }, "{auth}: {code}");
        scan.output(&format!("webhook answer ({auth}, {code})"), &answer.text().await.unwrap());
    }
    scan_and_stop(&ctx, &mut scan, "run --repo", &mut run).await;

    // `run --dir` with JSON logs: the environment's secrets rotated, so it applies an update.
    let writes_before = writes(&ctx.requests().await).len();
    let mut cmd = ctx.command(&["--log-format", "json", "run", "--dir", spec, "--interval", "1h"]);
    for field in connection_fields() {
        cmd.env(env_var(field), canary("env2", field));
    }
    let mut run = Running::start(&mut cmd, serving_url);
    wait_for(&ctx.http, &run, "apply of the rotated secrets", |s| outcome(s) == "applied").await;
    assert!(writes(&ctx.requests().await).len() > writes_before);
    scan_and_stop(&ctx, &mut scan, "run --dir --log-format json", &mut run).await;

    // `run --repo` over HTTPS with a token and a password in the URL, both rejected; and over
    // SSH with a key, to a port where nothing listens. Each fails to read its source.
    let git_server = RejectingHttpServer::start();
    let failing_state = SpecDir::new();
    let https_url = git_server.url(Some(&format!("ci:{URL_PASSWORD}")));
    let ssh_url = format!("ssh://git@127.0.0.1:{}/repo.git", free_port());
    let ssh_key = keys.path().join("id_canary");
    let failing: [(&str, Vec<&str>); 2] = [
        ("run --repo https (rejected token)", vec!["--repo", &https_url]),
        (
            "run --repo ssh (key file)",
            vec!["--repo", &ssh_url, "--ssh-key-file", ssh_key.to_str().unwrap()],
        ),
    ];
    for (what, args) in failing {
        let mut cmd = ctx.command(&["run", "--interval", "1h"]);
        cmd.args(args).env("IMMUTA_GITOPS_STATE_DIR", failing_state.path());
        if what.contains("ssh") {
            cmd.env_remove("IMMUTA_GITOPS_GIT_TOKEN");
        }
        let mut run = Running::start(&mut cmd, serving_url);
        wait_for(&ctx.http, &run, what, |s| outcome(s) == "source_error").await;
        scan_and_stop(&ctx, &mut scan, what, &mut run).await;
    }
    assert!(git_server.requests() >= 2, "the token was never offered");

    // Everything on disk: state, saved plan, lock.
    scan.state_dir(state.path());
    scan.state_dir(failing_state.path());

    // The tenant received every secret (it stores their digests) and no value of one.
    let tenant = ctx.get(format!("{}/_emulator/state", ctx.url)).await;
    let mut delivered: Vec<String> =
        [LICENSE_ENV, LICENSE_FILE, LICENSE_LITERAL].map(String::from).to_vec();
    for field in connection_fields() {
        for origin in ["env2", "file", &format!("literal{}", GENERATIONS - 1)] {
            delivered.push(canary(origin, field));
        }
    }
    let digest = |v: &String| format!("sha256:{}", hex::encode(Sha256::digest(v.as_bytes())));
    let undelivered: Vec<&String> =
        delivered.iter().filter(|v| !tenant.contains(&digest(v))).collect();
    assert!(tenant.contains(OPTIONS) && tenant.contains(ENV_FILE_USER), "no interpolation");
    scan.tenant("the emulator's state", &tenant);
    let requests = ctx.get(format!("{}/_emulator/requests", ctx.url)).await;
    scan.tenant("the emulator's request log", &requests);
    let (status, output) = emulator.stop();
    assert!(status.success(), "emulator: {status:?}\n{output}");
    scan.tenant("the emulator's output (debug logs)", &output);
    scan.tenant("the emulator's data file", &std::fs::read_to_string(&data_file).unwrap());

    eprintln!(
        "{} outputs and files scanned for {} canaries",
        scan.scanned,
        scan.canaries.all.len()
    );
    assert!(scan.found.is_empty(), "{} leaks:\n{}", scan.found.len(), scan.found.join("\n\n"));
    assert!(undelivered.is_empty(), "the tenant holds no digest of {undelivered:#?}");
}
