//! The reconciler end to end: the real `run` binary, a Git repository served by `git daemon`
//! on loopback (or a watched directory), and the in-process emulator.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use immuta_emulator::{ADMIN_KEY, Emulator, EmulatorHandle};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::git::{GitDaemon, GitFixture, SilentServer};
use crate::support::tenant::{Env, writes};
use crate::support::{
    Log, SpecDir, bin, emulator_config, follow_serving, json_answer, output_text,
};

const SECRET: &str = "webhook-secret-for-tests";

/// A running `immuta-gitops run`, killed on drop.
struct Reconciler {
    child: Child,
    base: String,
    log: Log,
    http: reqwest::Client,
}

impl Reconciler {
    fn start(
        emulator: &EmulatorHandle,
        state_dir: &Path,
        source: &[&str],
        extra: &[&str],
    ) -> Reconciler {
        // Drift checks are off unless the test asks for them.
        let drift: &[&str] =
            if extra.contains(&"--drift-interval") { &[] } else { &["--drift-interval", "0s"] };
        let mut child = Command::new(env!("CARGO_BIN_EXE_immuta-gitops"))
            .arg("run")
            .args(source)
            .args(["--interval", "1h"])
            .args(drift)
            .arg("--url")
            .arg(emulator.base_url())
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .env("IMMUTA_API_KEY", ADMIN_KEY)
            // The listen address through the environment, as the container image sets it.
            .env("IMMUTA_GITOPS_LISTEN", "127.0.0.1:0")
            .env("IMMUTA_GITOPS_WEBHOOK_SECRET", SECRET)
            .env("IMMUTA_GITOPS_RETRY_BASE_MS", "5")
            .env("NO_COLOR", "1")
            .env_remove("IMMUTA_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the reconciler");
        let (base, log) = follow_serving(&mut child, "the reconciler");
        Reconciler { child, base, log, http: reqwest::Client::new() }
    }

    /// `GET path` on the reconciler's server: the status code and the body.
    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// The stderr lines so far.
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `text`.
    async fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().iter().any(|l| l.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "no log line with {text:?}:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (`HUP`, `TERM`...) to the process.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    async fn status(&self) -> Value {
        match self.http.get(format!("{}/status", self.base)).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// Waits until `/status` satisfies `done`, failing with the status and log after 30 s.
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}\nstatus: {status:#}\nlog:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn webhook(&self, revision: &str) -> u16 {
        let body = json!({"ref": "refs/heads/main", "after": revision}).to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        self.http
            .post(format!("{}/webhook", self.base))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", "delivery-1")
            .header("X-Hub-Signature-256", signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(Duration::from_secs(20))
    }

    /// Sends SIGTERM and fails unless the process exits within `limit`.
    fn terminate_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the reconciler did not stop within {limit:?} of SIGTERM:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the purposes `Alpha` and `Beta` to the spec tree of `env`; the tree, for `--dir`.
fn alpha_and_beta(env: &Env) -> String {
    env.specs.write("a.yaml", &purpose("Alpha"));
    env.specs.write("b.yaml", &purpose("Beta"));
    env.specs.path().to_str().unwrap().to_owned()
}

fn applied(status: &Value) -> Option<&str> {
    status["applied_revision"].as_str()
}

async fn purposes(emulator: &EmulatorHandle) -> Vec<String> {
    let url = format!("{}/governance/purpose", emulator.base_url());
    let v = json_answer(reqwest::Client::new().get(url).header("Authorization", ADMIN_KEY)).await;
    let mut names: Vec<String> = v["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn purpose(name: &str) -> String {
    format!("name: {name}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_applied_webhooks_wake_the_loop_and_broken_specs_are_held_back() {
    let emulator = Emulator::start_with(emulator_config()).await.unwrap();
    let repo = GitFixture::new();
    repo.write("specs/a.yaml", purpose("Alpha"));
    let first = repo.commit("first");
    let server = GitDaemon::serve(&repo.base_path());
    let state = SpecDir::new();
    let url = server.url("repo.git");
    let daemon =
        Reconciler::start(&emulator, state.path(), &["--repo", &url, "--path", "specs"], &[]);

    // The first poll applies the head commit.
    let s = daemon.wait_for("the first commit", |s| applied(s) == Some(first.as_str())).await;
    assert_eq!(s["ready"], true);
    assert_eq!(purposes(&emulator).await, ["Alpha"]);

    // A new commit is applied after a webhook, long before the 1 h poll.
    repo.write("specs/b.yaml", purpose("Beta"));
    let second = repo.commit("second");
    let started = Instant::now();
    assert_eq!(daemon.webhook(&second).await, 202);
    daemon.wait_for("the second commit", |s| applied(s) == Some(second.as_str())).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(purposes(&emulator).await, ["Alpha", "Beta"]);

    // A broken spec is not applied: /status says why, the tenant keeps the last good state.
    repo.write("specs/c.yaml", "name: [unclosed\n");
    repo.remove("specs/a.yaml");
    let broken = repo.commit("broken");
    daemon.webhook(&broken).await;
    let s = daemon
        .wait_for("the broken commit to be refused", |s| {
            s["source_revision"] == broken.as_str() && s["history"][0]["outcome"] == "invalid"
        })
        .await;
    assert_eq!(applied(&s), Some(second.as_str()));
    let reason = s["degraded"].as_str().unwrap();
    assert!(reason.contains("is not valid") && reason.contains("c.yaml"), "{reason}");
    assert_eq!(
        purposes(&emulator).await,
        ["Alpha", "Beta"],
        "nothing was applied, nothing deleted"
    );

    // The fixing commit converges (the removal of a.yaml is a destructive change: refused
    // without --allow-destroy, so the fix also restores it).
    repo.write("specs/c.yaml", purpose("Gamma"));
    repo.write("specs/a.yaml", purpose("Alpha"));
    let fixed = repo.commit("fixed");
    daemon.webhook(&fixed).await;
    let s = daemon.wait_for("the fixing commit", |s| applied(s) == Some(fixed.as_str())).await;
    assert!(s["degraded"].is_null(), "{s:#}");
    assert_eq!(purposes(&emulator).await, ["Alpha", "Beta", "Gamma"]);

    // A force-push (rewritten history) is followed.
    repo.reset_hard(&first);
    repo.write("specs/b.yaml", purpose("Beta"));
    repo.write("specs/c.yaml", purpose("Gamma"));
    repo.write("specs/d.yaml", purpose("Delta"));
    let rewritten = repo.commit("rewritten");
    daemon.webhook(&rewritten).await;
    daemon.wait_for("the force-pushed commit", |s| applied(s) == Some(rewritten.as_str())).await;
    assert_eq!(purposes(&emulator).await, ["Alpha", "Beta", "Delta", "Gamma"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_server_going_away_degrades_and_deletes_nothing() {
    let emulator = Emulator::start_with(emulator_config()).await.unwrap();
    let repo = GitFixture::new();
    repo.write("a.yaml", purpose("Alpha"));
    repo.write("b.yaml", purpose("Beta"));
    let head = repo.commit("first");
    let mut server = GitDaemon::serve(&repo.base_path());
    let state = SpecDir::new();
    let url = server.url("repo.git");
    let daemon = Reconciler::start(
        &emulator,
        state.path(),
        &["--repo", &url],
        &["--allow-destroy", "--force"],
    );
    daemon.wait_for("the first commit", |s| applied(s) == Some(head.as_str())).await;

    server.kill();
    daemon.webhook(&head).await;
    let s =
        daemon.wait_for("a source error", |s| s["history"][0]["outcome"] == "source_error").await;
    assert!(s["degraded"].as_str().unwrap().contains("cannot read the source"), "{s:#}");
    assert_eq!(s["ready"], true, "the last good revision stays applied");
    assert_eq!(applied(&s), Some(head.as_str()));
    assert_eq!(
        purposes(&emulator).await,
        ["Alpha", "Beta"],
        "a failed fetch is never an empty tree"
    );

    // The server comes back with the same revision: nothing to apply, but the source error
    // is over, and /status and /readyz say so.
    server.restart();
    daemon.webhook(&head).await;
    let s = daemon.wait_for("the source error to clear", |s| s["degraded"].is_null()).await;
    let record = &s["history"][0];
    assert_eq!(record["outcome"], "unchanged_revision", "{s:#}");
    assert!(record["message"].as_str().unwrap().contains("readable again"), "{record}");
    assert_eq!(applied(&s), Some(head.as_str()));
    let (code, body) = daemon.get("/readyz").await;
    assert_eq!(code, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert!(ready["degraded"].is_null(), "{ready}");
    assert_eq!(purposes(&emulator).await, ["Alpha", "Beta"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_apply_stops_cleanly_and_the_next_run_resumes() {
    let emulator = Emulator::start_with(emulator_config()).await.unwrap();
    let http = reqwest::Client::new();
    http.put(format!("{}/_emulator/latency", emulator.base_url()))
        .json(&json!({"ms": 150}))
        .send()
        .await
        .unwrap();
    let specs = SpecDir::new();
    for i in 0..30 {
        specs.write(&format!("p{i:02}.yaml"), &purpose(&format!("Purpose {i:02}")));
    }
    let state = SpecDir::new();
    let dir = specs.path().to_str().unwrap().to_owned();
    let mut daemon =
        Reconciler::start(&emulator, state.path(), &["--dir", &dir], &["--parallelism", "2"]);
    // Wait until some, not all, purposes exist, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = purposes(&emulator).await.len();
        if n >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the apply did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = daemon.terminate();
    assert!(status.success(), "SIGTERM must exit 0: {status:?}");
    let partial = purposes(&emulator).await.len();
    assert!(partial < 30, "the apply should have been stopped part way ({partial})");
    let journal_or_state = std::fs::read_to_string(state.path().join("state.json")).unwrap();
    let recorded = journal_or_state.matches("\"kind\": \"purpose\"").count();
    assert_eq!(recorded, partial, "every object created is recorded in the state");

    // A new run finishes the job: no object lost or duplicated.
    http.put(format!("{}/_emulator/latency", emulator.base_url()))
        .json(&json!({"ms": 0}))
        .send()
        .await
        .unwrap();
    let daemon = Reconciler::start(&emulator, state.path(), &["--dir", &dir], &[]);
    daemon.wait_for("convergence", |s| s["history"][0]["outcome"] == "applied").await;
    let names = purposes(&emulator).await;
    assert_eq!(names.len(), 30);
    let expected: Vec<String> = (0..30).map(|i| format!("Purpose {i:02}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_directory_reconciles_each_edit_exactly_once() {
    let emulator = Emulator::start_with(emulator_config()).await.unwrap();
    // A Kubernetes ConfigMap layout: `..data -> ..v1`, `spec.yaml -> ..data/spec.yaml`.
    let root = SpecDir::new();
    let dir = root.path();
    std::fs::create_dir(dir.join("..v1")).unwrap();
    std::fs::write(dir.join("..v1/cm.yaml"), purpose("From configmap v1")).unwrap();
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/cm.yaml", dir.join("cm.yaml")).unwrap();
    root.write("a.yaml", &purpose("Alpha"));
    let state = SpecDir::new();
    let daemon = Reconciler::start(
        &emulator,
        state.path(),
        &["--dir", dir.to_str().unwrap()],
        &["--debounce", "150ms", "--rescan", "1h", "--allow-destroy"],
    );
    daemon.wait_for("the first reconcile", |s| s["history"][0]["outcome"] == "applied").await;
    assert_eq!(purposes(&emulator).await, ["Alpha", "From configmap v1"]);

    let count = |s: &Value| s["history"].as_array().map_or(0, Vec::len);
    let mut seen = count(&daemon.status().await);
    // Each edit leads to exactly one more reconcile, which applies exactly one change.
    type Step<'a> = (&'a str, Box<dyn Fn() + 'a>, Vec<&'a str>);
    let steps: Vec<Step<'_>> = vec![
        (
            "edit",
            Box::new(|| {
                std::fs::write(dir.join("a.yaml"), "name: Alpha\ndescription: edited\n").unwrap()
            }),
            vec!["Alpha", "From configmap v1"],
        ),
        (
            "add",
            Box::new(|| std::fs::write(dir.join("b.yaml"), purpose("Beta")).unwrap()),
            vec!["Alpha", "Beta", "From configmap v1"],
        ),
        (
            "delete",
            Box::new(|| std::fs::remove_file(dir.join("b.yaml")).unwrap()),
            vec!["Alpha", "From configmap v1"],
        ),
        (
            "symlink swap",
            Box::new(|| {
                std::fs::create_dir(dir.join("..v2")).unwrap();
                std::fs::write(dir.join("..v2/cm.yaml"), purpose("From configmap v2")).unwrap();
                std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
                std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
                std::fs::remove_dir_all(dir.join("..v1")).unwrap();
            }),
            vec!["Alpha", "From configmap v2"],
        ),
    ];
    for (what, step, expected) in steps {
        step();
        let s = daemon.wait_for(what, |s| count(s) > seen).await;
        // Let any straggling event arrive: it must not cause another reconcile.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let s2 = daemon.status().await;
        assert_eq!(count(&s2), seen + 1, "{what}: exactly one reconcile\n{s2:#}");
        let record = &s["history"][0];
        assert_eq!(record["trigger"], "files", "{what}: {record}");
        assert_eq!(record["outcome"], "applied", "{what}: {record}");
        assert_eq!(purposes(&emulator).await, expected, "{what}");
        seen += 1;
    }
}

/// A set of purpose names, as [`crate::support::tenant::View`] holds them (read from the
/// emulator's state dump, so it works while the API's listings are faulted).
fn names(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

/// Waits until `done` holds, failing with `what` after 30 s.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reconciles_now_and_sigterm_abandons_a_slow_tenant_read() {
    let env = Env::start().await;
    let repo = GitFixture::new();
    repo.write("a.yaml", purpose("Alpha"));
    let first = repo.commit("first");
    let server = GitDaemon::serve(&repo.base_path());
    let url = server.url("repo.git");
    let mut daemon = Reconciler::start(&env.emu, env.state_dir(), &["--repo", &url], &[]);
    daemon.wait_for("the first commit", |s| applied(s) == Some(first.as_str())).await;

    // SIGHUP reconciles now: the new commit is applied without a webhook or the 1 h poll.
    repo.write("b.yaml", purpose("Beta"));
    let second = repo.commit("second");
    daemon.signal("HUP");
    let s = daemon.wait_for("the second commit", |s| applied(s) == Some(second.as_str())).await;
    assert_eq!(s["history"][0]["trigger"], "reload", "{s:#}");
    assert_eq!(purposes(&env.emu).await, ["Alpha", "Beta"]);

    // The next read of the tenant hangs for a minute; SIGTERM arrives while it is waiting.
    let before = std::fs::read_to_string(env.state_path()).unwrap();
    env.fault(json!({"method": "GET", "pathPrefix": "/governance/purpose", "delayMs": 60_000}))
        .await;
    env.clear_requests().await;
    repo.write("c.yaml", purpose("Gamma"));
    repo.commit("third");
    daemon.signal("HUP");
    eventually("the slow listing to be requested", || async {
        env.armed_faults().await.is_empty()
    })
    .await;
    let started = Instant::now();
    let exit = daemon.terminate_within(Duration::from_secs(10));
    assert!(exit.success(), "SIGTERM must exit 0: {exit:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Reads are abandoned; nothing was written, the state is as it was.
    assert_eq!(writes(&env.requests().await), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(env.state_path()).unwrap(), before);
    assert!(!env.state_dir().join("state.json.journal").exists());
    assert_eq!(purposes(&env.emu).await, ["Alpha", "Beta"]);
    assert!(
        daemon.log().iter().any(|l| l.contains("abandoned reading the tenant")),
        "{}",
        daemon.log().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_hanging_git_fetch_exits_promptly() {
    let emulator = Emulator::start_with(emulator_config()).await.unwrap();
    // Accepts the connection and never answers: the fetch would wait for its 2 min timeout.
    let silent = SilentServer::start();
    let state = SpecDir::new();
    let mut daemon = Reconciler::start(&emulator, state.path(), &["--repo", &silent.url()], &[]);
    daemon.wait_for_log("reconciler started").await;
    // The first poll fetches at once; give it a moment to be inside the blocking Git read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(daemon.status().await["history"].as_array().unwrap().is_empty(), "still fetching");
    let started = Instant::now();
    let exit = daemon.terminate_within(Duration::from_secs(10));
    assert!(exit.success(), "SIGTERM must exit 0: {exit:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!state.path().join("state.json").exists(), "nothing was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_healed_only_with_self_heal_and_shown_in_metrics() {
    let env = Env::start().await;
    let dir = alpha_and_beta(&env);
    let source = ["--dir", dir.as_str()];
    let mut daemon =
        Reconciler::start(&env.emu, env.state_dir(), &source, &["--drift-interval", "200ms"]);
    let s = daemon
        .wait_for("the first reconcile", |s| {
            s["history"].as_array().unwrap().iter().any(|r| r["outcome"] == "applied")
        })
        .await;
    let revision = applied(&s).unwrap().to_owned();

    // /metrics after a reconcile: the counter, the applied revision, the changes by kind.
    let (code, metrics) = daemon.get("/metrics").await;
    assert_eq!(code, 200);
    for series in [
        "immuta_gitops_reconciles_total{result=\"applied\"} 1\n".to_owned(),
        format!("immuta_gitops_applied_revision_info{{revision=\"{revision}\"}} 1\n"),
        "immuta_gitops_changes_total{kind=\"purpose\",action=\"create\"} 2\n".to_owned(),
    ] {
        assert!(metrics.contains(&series), "{series} missing from:\n{metrics}");
    }

    // A second reconciler on the same state is refused, naming the lock.
    let out = bin()
        .args(["run", "--dir", &dir, "--listen", "127.0.0.1:0", "--url", &env.url()])
        .arg("--state-dir")
        .arg(env.state_dir())
        .env("IMMUTA_API_KEY", ADMIN_KEY)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("another immuta-gitops process (pid "), "{text}");
    assert!(text.contains("state.json.lock"), "{text}");
    assert!(text.contains("--state-dir"), "{text}");

    // Without --self-heal, drift is reported (in /status and /metrics), never re-applied.
    env.clear_requests().await;
    env.tamper("purpose", "Alpha", &json!({"description": "edited in the UI"})).await;
    let drifted = |s: &Value| {
        s["history"].as_array().unwrap().iter().filter(|r| r["outcome"] == "drift").count()
    };
    let s = daemon.wait_for("two drift reports", |s| drifted(s) >= 2).await;
    assert_eq!(s["drift"], json!(["update purpose \"Alpha\""]), "{s:#}");
    assert!(s["degraded"].is_null(), "drift is reported, not a failure: {s:#}");
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(metrics.contains("immuta_gitops_drift_items{kind=\"purpose\"} 1\n"), "{metrics}");
    assert_eq!(writes(&env.requests().await), Vec::<String>::new(), "drift is only reported");
    let tenant = env.tenant().await;
    assert!(tenant.to_string().contains("edited in the UI"), "the edit stays");
    assert!(daemon.terminate().success());

    // With --self-heal, the drift check puts the object back.
    let daemon = Reconciler::start(
        &env.emu,
        env.state_dir(),
        &source,
        &["--drift-interval", "200ms", "--self-heal"],
    );
    let s = daemon
        .wait_for("the heal", |s| {
            s["history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["trigger"] == "drift" && r["outcome"] == "applied")
        })
        .await;
    assert!(s["degraded"].is_null(), "{s:#}");
    assert_eq!(writes(&env.requests().await), ["POST /api/v2/purpose"]);
    assert!(!env.tenant().await.to_string().contains("edited in the UI"), "the edit is undone");
    let s = daemon.wait_for("a clean drift check", |s| s["drift"] == json!([])).await;
    assert_eq!(s["history"][0]["outcome"], "no_changes", "{s:#}");
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains("immuta_gitops_changes_total{kind=\"purpose\",action=\"update\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("immuta_gitops_drift_items{kind=\"purpose\"} 0\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_only_never_writes_and_json_logs_are_one_object_per_line() {
    let env = Env::start().await;
    let dir = alpha_and_beta(&env);
    let mut daemon = Reconciler::start(
        &env.emu,
        env.state_dir(),
        &["--dir", &dir],
        &["--mode", "plan-only", "--log-format", "json"],
    );
    let s = daemon.wait_for("a plan", |s| s["history"][0]["outcome"] == "planned").await;
    assert_eq!(s["mode"], "plan-only");
    assert_eq!(s["last_plan"]["create"], 2, "{s:#}");
    assert!(s["last_plan"]["summary"].as_str().unwrap().contains("2 to create"), "{s:#}");
    assert_eq!(s["history"][0]["changes"], 2);
    assert!(s["applied_revision"].is_null() && s["degraded"].is_null(), "{s:#}");
    let (code, _) = daemon.get("/readyz").await;
    assert_eq!(code, 200);
    assert_eq!(writes(&env.requests().await), Vec::<String>::new(), "plan-only never writes");
    assert!(purposes(&env.emu).await.is_empty());
    let recorded = env.state_file();
    assert!(
        recorded.is_null() || recorded["objects"].as_array().is_some_and(Vec::is_empty),
        "plan-only records nothing as applied: {recorded:#}"
    );

    assert!(daemon.terminate().success());
    let log = daemon.log();
    assert!(log.len() >= 3, "{log:?}");
    for line in &log {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event.is_object() && event["level"].is_string(), "{line}");
    }
    // Flat lines: `level`, `msg` and the fields at the top level.
    let events: Vec<Value> = log.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let planned = events
        .iter()
        .find(|e| e["msg"].as_str().is_some_and(|m| m.starts_with("planned revision dir:")))
        .unwrap_or_else(|| panic!("{log:#?}"));
    assert_eq!(planned["level"], "info");
    assert_eq!(planned["outcome"], "planned");
    assert_eq!(planned["changes"], 2);
    assert!(planned["objects"].as_str().unwrap().contains("create purpose \"Alpha\""), "{planned}");
    assert!(planned.get("fields").is_none(), "{planned}");
    assert!(events.iter().any(|e| e["msg"] == "reconciler stopped"), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tenant_degrades_with_a_reason_and_deletes_nothing() {
    let env = Env::start().await;
    let dir = alpha_and_beta(&env);
    let daemon = Reconciler::start(
        &env.emu,
        env.state_dir(),
        &["--dir", &dir],
        &["--allow-destroy", "--force", "--debounce", "100ms"],
    );
    let s =
        daemon.wait_for("the first reconcile", |s| s["history"][0]["outcome"] == "applied").await;
    let good = applied(&s).unwrap().to_owned();

    // The purpose listing answers 503 far beyond the retries; b.yaml is removed meanwhile.
    env.fault(
        json!({"method": "GET", "pathPrefix": "/governance/purpose", "status": 503, "count": 1000}),
    )
    .await;
    env.clear_requests().await;
    env.specs.remove("b.yaml");
    let s = daemon.wait_for("a failed reconcile", |s| s["history"][0]["outcome"] == "failed").await;
    let reason = s["degraded"].as_str().unwrap_or_default();
    assert!(reason.contains("/governance/purpose") && reason.contains("503"), "{s:#}");
    assert_eq!(s["ready"], true, "the last good revision stays applied");
    assert_eq!(applied(&s), Some(good.as_str()));
    assert_eq!(
        writes(&env.requests().await),
        Vec::<String>::new(),
        "a failed read deletes nothing"
    );
    assert_eq!(env.view().await.purposes, names(&["Alpha", "Beta"]));

    // The tenant recovers: the next reconcile applies the deletion and clears the reason.
    env.control(reqwest::Method::DELETE, "/faults", None).await;
    daemon.signal("HUP");
    let s = daemon.wait_for("recovery", |s| s["history"][0]["outcome"] == "applied").await;
    assert!(s["degraded"].is_null(), "{s:#}");
    assert_eq!(env.view().await.purposes, names(&["Alpha"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_dir_with_path_reads_only_the_sub_directory() {
    let env = Env::start().await;
    env.specs.write("specs/a.yaml", &purpose("Alpha"));
    env.specs.write("other/b.yaml", &purpose("Beta"));
    env.specs.write("c.yaml", &purpose("Gamma"));
    let dir = env.specs.path().to_str().unwrap().to_owned();
    let daemon =
        Reconciler::start(&env.emu, env.state_dir(), &["--dir", &dir, "--path", "specs"], &[]);
    let s =
        daemon.wait_for("the first reconcile", |s| s["history"][0]["outcome"] == "applied").await;
    assert!(s["source"].as_str().unwrap().ends_with("specs"), "{s:#}");
    assert_eq!(purposes(&env.emu).await, ["Alpha"], "only the specs under --path");
    drop(daemon);

    // A --path that leaves the directory, or does not exist, is refused before anything runs.
    for (path, expected) in [
        ("../elsewhere", "must stay inside the spec root"),
        ("missing", "is not a directory under --dir"),
    ] {
        let out = bin()
            .args(["run", "--dir", &dir, "--path", path, "--url", &env.url()])
            .arg("--state-dir")
            .arg(env.state_dir())
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{path}: {text}");
        assert!(text.contains(expected), "{path}: {text}");
    }
}

/// The YAML documents of the fenced `yaml` blocks of a Markdown file.
fn yaml_blocks(markdown: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for block in markdown.split("```yaml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let parsed: Vec<Value> = serde_saphyr::from_multiple(text)
            .unwrap_or_else(|e| panic!("a YAML block does not parse: {e}\n{text}"));
        docs.extend(parsed);
    }
    docs
}

#[test]
fn the_image_and_the_sidecar_manifest_listen_where_probes_reach() {
    // Arguments replace CMD, so the image's listen address must not depend on CMD.
    let dockerfile =
        std::fs::read_to_string(crate::support::repo_root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("\nENV IMMUTA_GITOPS_LISTEN=0.0.0.0:8080\n"), "{dockerfile}");
    assert!(!dockerfile.contains("127.0.0.1"), "{dockerfile}");

    let docs =
        std::fs::read_to_string(crate::support::repo_root().join("docs/kubernetes.md")).unwrap();
    let manifests = yaml_blocks(&docs);
    let sidecar_pod = manifests
        .iter()
        .filter(|m| m["kind"] == "Deployment")
        .map(|m| &m["spec"]["template"]["spec"])
        .find(|pod| pod["containers"].as_array().is_some_and(|c| c.len() >= 2))
        .expect("a Deployment whose pod runs immuta-gitops next to a main container");
    let containers = sidecar_pod["containers"].as_array().unwrap();
    let ours = containers
        .iter()
        .find(|c| c["image"].as_str().unwrap_or_default().contains("immuta-gitops"))
        .expect("the immuta-gitops container");
    assert_eq!(ours["args"][0], "run");
    let listen = ours["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "IMMUTA_GITOPS_LISTEN")
        .and_then(|e| e["value"].as_str())
        .expect("the sidecar sets its listen address");
    let port: u64 =
        listen.strip_prefix("0.0.0.0:").expect("listens on every interface").parse().unwrap();
    let port_name = ours["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["containerPort"] == port)
        .and_then(|p| p["name"].as_str())
        .expect("the listen port is declared");
    for other in containers.iter().filter(|c| !std::ptr::eq(*c, ours)) {
        for p in other["ports"].as_array().into_iter().flatten() {
            assert_ne!(p["containerPort"], port, "the pod shares one network namespace");
        }
    }
    assert_eq!(ours["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(ours["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(ours[probe]["httpGet"]["port"], port_name, "{probe}");
    }
    assert!(
        ours["envFrom"].as_array().unwrap().iter().any(|e| e["secretRef"]["name"].is_string()),
        "secrets come from a Secret"
    );
    let mount = ours["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/immuta-gitops")
        .expect("the state directory is mounted");
    let volume = sidecar_pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the state volume");
    assert!(volume["persistentVolumeClaim"]["claimName"].is_string(), "{volume}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_repository_is_followed_by_file_url_or_by_path() {
    let emulator = Emulator::start_with(emulator_config()).await.unwrap();
    let repo = GitFixture::new();
    repo.write("specs/a.yaml", purpose("Alpha"));
    let first = repo.commit("first");
    let file_url = format!("file://{}", repo.served().display());
    let state = SpecDir::new();
    let daemon =
        Reconciler::start(&emulator, state.path(), &["--repo", &file_url, "--path", "specs"], &[]);
    daemon.wait_for("the first commit", |s| applied(s) == Some(first.as_str())).await;
    assert_eq!(purposes(&emulator).await, ["Alpha"]);
    // The log names the revision the way Flux does, and the objects applied.
    daemon.wait_for_log(&format!("applied revision main@sha1:{first}")).await;
    let log = daemon.log().join("\n");
    assert!(log.contains(r#"objects="create purpose \"Alpha\"""#), "{log}");
    assert!(!log.contains("Some("), "no Rust Debug text in logs:\n{log}");
    drop(daemon);

    // The work tree's path (a checkout, not a URL) is followed too.
    repo.write("specs/b.yaml", purpose("Beta"));
    let second = repo.commit("second");
    let work = repo.work().display().to_string();
    let daemon =
        Reconciler::start(&emulator, state.path(), &["--repo", &work, "--path", "specs"], &[]);
    daemon.wait_for("the second commit", |s| applied(s) == Some(second.as_str())).await;
    assert_eq!(purposes(&emulator).await, ["Alpha", "Beta"]);
}
