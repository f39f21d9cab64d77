//! PostgreSQL state end to end: the real binary against the emulator and a real PostgreSQL
//! (`support::postgres`). CI jobs on fresh runners, two concurrent applies, the database going
//! away mid-apply, two `run` replicas with a leader killed mid-apply, the `state` commands, and
//! read-only commands that write nothing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use immuta_emulator::ADMIN_KEY;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::postgres::{Proxy, TestDb};
use crate::support::tenant::{Env, Run, write_shop};
use crate::support::{BIN, Log, SpecDir, follow_serving};

/// The digest key every writer of the shared state is given.
const KEY: &str = "digest-key-of-the-shared-state-tests";

/// The environment of a process using `db`: its password and the digest key.
fn pg_env(db: &TestDb) -> Vec<(String, String)> {
    let mut env = db.env();
    env.push(("IMMUTA_GITOPS_DIGEST_KEY".into(), KEY.into()));
    env
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `args` run against `env`'s tenant with the state in `url`.
async fn run_pg(env: &Env, db: &TestDb, url: &str, args: &[&str]) -> Run {
    let vars = pg_env(db);
    let mut all = args.to_vec();
    all.extend(["--state", url]);
    env.run_env(&all, &pairs(&vars)).await
}

fn path(dir: &SpecDir) -> String {
    dir.path().display().to_string()
}

/// `count` purposes, one file each.
fn purposes(dir: &SpecDir, count: usize) {
    for i in 0..count {
        dir.write(&format!("purposes/p{i:02}.yaml"), &format!("name: Purpose {i:02}\n"));
    }
}

/// Objects the database records for any state.
async fn recorded(db: &TestDb) -> i64 {
    let client = db.client().await;
    match client.query_one("SELECT count(*) FROM immuta_gitops_objects", &[]).await {
        Ok(row) => row.get(0),
        Err(_) => 0,
    }
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Non-dry-run posts of purposes by name, from the tenant's request log.
async fn purpose_posts(env: &Env) -> std::collections::BTreeMap<String, usize> {
    let mut posts = std::collections::BTreeMap::new();
    for r in env.requests().await {
        let dry = r["query"].as_str().unwrap_or_default().contains("dryRun=true");
        if r["method"] == "POST" && r["path"] == "/api/v2/purpose" && !dry {
            *posts.entry(r["body"]["name"].as_str().unwrap_or_default().to_owned()).or_default() +=
                1;
        }
    }
    posts
}

async fn latency(env: &Env, ms: u64) {
    env.control(Method::PUT, "/latency", Some(&json!({ "ms": ms }))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_jobs_on_fresh_runners_share_the_state_and_delete_what_git_removed() {
    let env = Env::start().await;
    let db = TestDb::create().await;
    let url = db.url();
    // The first job: a fresh checkout, applied.
    let first = SpecDir::new();
    write_shop(&first);
    let run = run_pg(&env, &db, &url, &["apply", &path(&first), "--auto-approve"]).await;
    let run = run.must_exit(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.text());
    assert!(env.view().await.projects.contains("insights"));
    // A later job on another fresh runner: the project's spec was deleted in Git.
    let second = SpecDir::new();
    write_shop(&second);
    second.remove("projects/insights.yaml");
    let run =
        run_pg(&env, &db, &url, &["apply", &path(&second), "--auto-approve", "--allow-destroy"])
            .await
            .must_exit(0);
    assert!(run.stdout.contains("deleted"), "{}", run.text());
    assert!(!env.view().await.projects.contains("insights"), "the removed object is deleted");
    // A third job plans nothing; no runner kept a state of its own.
    let third = SpecDir::new();
    write_shop(&third);
    third.remove("projects/insights.yaml");
    let run = run_pg(&env, &db, &url, &["plan", &path(&third), "--detailed-exitcode"]).await;
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(std::fs::read_dir(env.state_dir()).unwrap().next().is_none(), "no local state");
    for secret in [db.password.clone().unwrap_or_default(), KEY.to_owned()] {
        assert!(secret.is_empty() || !run.text().contains(&secret), "never printed");
    }
    // `state list` shows what the database holds.
    let run = run_pg(&env, &db, &url, &["state", "list"]).await.must_exit(0);
    assert!(run.stdout.contains("datasource shop"), "{}", run.stdout);
    assert!(!run.stdout.contains("project insights"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_refuses_naming_the_first_or_waits_for_it() {
    let env = Env::start().await;
    let db = TestDb::create().await;
    let url = db.url();
    purposes(&env.specs, 12);
    latency(&env, 150).await;
    let specs = path(&env.specs);
    let vars = pg_env(&db);
    let mut first = env
        .command(
            &["apply", &specs, "--auto-approve", "--parallelism", "1", "--state", &url],
            &pairs(&vars),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = format!("pid {} on ", first.id());
    let client = db.client().await;
    wait_until("the first apply to hold the lock", Duration::from_secs(30), || {
        let client = &client;
        let pid = pid.clone();
        async move {
            client
                .query("SELECT holder FROM immuta_gitops_locks", &[])
                .await
                .map(|rows| rows.iter().any(|r| r.get::<_, String>(0).starts_with(&pid)))
                .unwrap_or(false)
        }
    })
    .await;
    let refused = run_pg(&env, &db, &url, &["apply", &specs, "--auto-approve"]).await.must_exit(1);
    assert!(refused.stderr.contains(&format!("is locked by {pid}")), "{}", refused.text());
    assert!(refused.stderr.contains(": apply, which is applying"), "{}", refused.text());
    let waited =
        run_pg(&env, &db, &url, &["apply", &specs, "--auto-approve", "--lock-timeout", "60s"])
            .await;
    let waited = waited.must_exit(0);
    assert!(first.wait().unwrap().success());
    assert!(waited.stdout.contains("No changes."), "it ran after the first: {}", waited.text());
    assert!(purpose_posts(&env).await.values().all(|&n| n == 1), "each purpose posted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_mid_apply_fails_closed_and_the_next_apply_resumes() {
    let env = Env::start().await;
    let db = TestDb::create().await;
    let proxy = Proxy::start(db.addr).await;
    let url = db.url_at(proxy.addr);
    purposes(&env.specs, 16);
    latency(&env, 100).await;
    let specs = path(&env.specs);
    let vars = pg_env(&db);
    let child = env
        .command(
            &["apply", &specs, "--auto-approve", "--parallelism", "1", "--state", &url],
            &pairs(&vars),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a few objects recorded", Duration::from_secs(30), || {
        let db = &db;
        async move { recorded(db).await >= 3 }
    })
    .await;
    proxy.cut();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "fails closed: {text}");
    assert!(!text.contains("Apply complete"), "{text}");
    let kept = recorded(&db).await;
    assert!(kept >= 3, "what was recorded is kept");
    // The database comes back: the same command finishes the job, nothing written twice.
    proxy.restore();
    latency(&env, 0).await;
    let run = run_pg(&env, &db, &url, &["apply", &specs, "--auto-approve"]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.text());
    assert_eq!(recorded(&db).await, 16);
    let posts = purpose_posts(&env).await;
    assert_eq!(posts.len(), 16, "{posts:?}");
    assert!(posts.values().all(|&n| n == 1), "no object written twice: {posts:?}");
    assert!(env.view().await.duplicates.is_empty());
    let run = run_pg(&env, &db, &url, &["plan", &specs, "--detailed-exitcode"]).await;
    assert_eq!(run.code, 0, "{}", run.text());
}

/// A running `immuta-gitops run`, killed on drop.
struct Replica {
    child: Child,
    base: String,
    log: Log,
}

impl Replica {
    fn start(env: &Env, db: &TestDb, url: &str, specs: &Path) -> Replica {
        let state_dir = tempfile::tempdir().unwrap().keep();
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("--dir")
            .arg(specs)
            .args(["--interval", "1h", "--drift-interval", "0s", "--parallelism", "1"])
            .args(["--url", &env.url(), "--state", url])
            .arg("--state-dir")
            .arg(&state_dir)
            .env("IMMUTA_API_KEY", ADMIN_KEY)
            .env("IMMUTA_GITOPS_LISTEN", "127.0.0.1:0")
            .env("IMMUTA_GITOPS_RETRY_BASE_MS", "5")
            .env("NO_COLOR", "1")
            .env_remove("IMMUTA_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in pg_env(db) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (base, log) = follow_serving(&mut child, "the replica");
        Replica { child, base, log }
    }

    async fn get(&self, route: &str) -> (u16, Value) {
        match reqwest::get(format!("{}{route}", self.base)).await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (_, status) = self.get("/status").await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nstatus: {status:#}\nlog:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_a_leader_killed_mid_apply_is_replaced() {
    let env = Env::start().await;
    let db = TestDb::create().await;
    let url = db.url();
    let specs = SpecDir::new();
    purposes(&specs, 24);
    latency(&env, 100).await;
    let a = Replica::start(&env, &db, &url, specs.path());
    a.wait_for("a to lead", Duration::from_secs(30), |s| s["role"] == "leader").await;
    let b = Replica::start(&env, &db, &url, specs.path());
    let a_pid = format!("pid {} on ", a.child.id());
    let status =
        b.wait_for("b to be standby", Duration::from_secs(30), |s| s["role"] == "standby").await;
    assert!(status["leader"].as_str().unwrap_or_default().starts_with(&a_pid), "{status:#}");
    assert!(status["state"].as_str().unwrap_or_default().starts_with("the PostgreSQL state"));
    let (code, ready) = b.get("/readyz").await;
    assert_eq!((code, ready["role"].as_str()), (200, Some("standby")), "{ready}");
    // A is mid-apply: kill it.
    wait_until("a few objects recorded", Duration::from_secs(30), || {
        let db = &db;
        async move { recorded(db).await >= 4 }
    })
    .await;
    let killed = Instant::now();
    assert!(
        Command::new("kill").args(["-KILL", &a.child.id().to_string()]).status().unwrap().success()
    );
    let recorded_by_a = recorded(&db).await;
    b.wait_for("b to take over", Duration::from_secs(15), |s| s["role"] == "leader").await;
    let took_over = killed.elapsed();
    assert!(took_over < Duration::from_secs(15), "took over in {took_over:?}");
    let status = b
        .wait_for("b to converge", Duration::from_secs(60), |s| s["applied_revision"].is_string())
        .await;
    assert!(status["history"][0]["outcome"] == "applied", "{status:#}");
    // Converged: every object once, nothing written twice, nothing lost.
    latency(&env, 0).await;
    let posts = purpose_posts(&env).await;
    assert_eq!(posts.len(), 24, "{posts:?}");
    assert!(posts.values().all(|&n| n == 1), "no object written twice: {posts:?}");
    assert!(env.view().await.duplicates.is_empty());
    assert_eq!(recorded(&db).await, 24);
    assert!(recorded_by_a >= 4);
    let text = status.to_string();
    assert!(
        !text.contains(&db.password.clone().unwrap_or_else(|| KEY.into())) && !text.contains(KEY)
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_commands_forget_and_migrate_between_a_file_and_postgres() {
    let env = Env::start().await;
    let db = TestDb::create().await;
    let url = db.url();
    write_shop(&env.specs);
    env.apply(&[]).await.must_exit(0);
    let file = env.state_path().display().to_string();
    let key_file = format!("{file}.key");
    assert!(Path::new(&key_file).exists(), "the file state made its digest key");
    let state = env.state_file();
    assert_eq!(state["version"], 2);
    let digests = state.to_string();
    assert!(digests.contains("(sensitive:k:"), "keyed digests: {digests}");

    // `state show` masks secrets; `state rm` asks, then forgets.
    let run = env.run(&["state", "show", "datasource", "shop"]).await.must_exit(0);
    assert!(run.stdout.contains("\"password\": \"(sensitive)\""), "{}", run.stdout);
    let run = env.run(&["state", "rm", "purpose", "Analytics"]).await.must_exit(1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.text());
    env.run(&["state", "rm", "purpose", "Analytics", "--auto-approve"]).await.must_exit(0);
    assert!(!env.managed().contains(&("purpose".into(), "Analytics".into())));
    let plan = env.plan_json(&[]).await;
    assert!(plan.to_string().contains("\"adopt\""), "a forgotten object is adopted again");
    env.apply(&[]).await.must_exit(0);

    // File -> PostgreSQL: the same plan (no change), with the file's key given.
    let vars = pg_env(&db);
    let mut with_key: Vec<(&str, &str)> =
        pairs(&vars).into_iter().filter(|(k, _)| *k != "IMMUTA_GITOPS_DIGEST_KEY").collect();
    with_key.push(("IMMUTA_GITOPS_DIGEST_KEY_FILE", &key_file));
    let run = env.run_env(&["state", "migrate", "--to", &url], &with_key).await.must_exit(0);
    assert!(run.stdout.contains("reads back identical"), "{}", run.text());
    let specs = path(&env.specs);
    let run =
        env.run_env(&["plan", &specs, "--detailed-exitcode", "--state", &url], &with_key).await;
    assert_eq!(run.code, 0, "no change after the migration: {}", run.text());
    // ... and back to a new file, which gets the key beside it.
    let back = env.state_dir().join("back.json").display().to_string();
    let run = env
        .run_env(&["state", "migrate", "--state", &url, "--to", &back], &with_key)
        .await
        .must_exit(0);
    assert!(Path::new(&format!("{back}.key")).exists(), "{}", run.text());
    let run = env.run(&["plan", &specs, "--detailed-exitcode", "--state", &back]).await;
    assert_eq!(run.code, 0, "no change on the file again: {}", run.text());
    // A second migration to the same place is refused unless forced.
    let run = env.run_env(&["state", "migrate", "--to", &url], &with_key).await.must_exit(1);
    assert!(run.stderr.contains("--force"), "{}", run.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_write_nothing_and_a_state_binds_only_when_applied() {
    let env = Env::start().await;
    write_shop(&env.specs);
    // A plan against a wrong (closed) URL: an error, and no file.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let specs = path(&env.specs);
    let out = crate::support::bin()
        .args(["plan", &specs, "--max-retries", "0", "--timeout", "5s"])
        .args(["--url", &format!("http://{closed}")])
        .arg("--state-dir")
        .arg(env.state_dir())
        .env("IMMUTA_API_KEY", "a-key")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", crate::support::output_text(&out));
    env.plan(&[]).await.must_exit(0);
    env.run(&["validate", &specs]).await;
    let files: Vec<_> = std::fs::read_dir(env.state_dir()).unwrap().collect();
    assert!(files.is_empty(), "plan and validate write nothing: {files:?}");
    // Nor in a database: a plan on an empty one creates no table.
    let db = TestDb::create().await;
    let run = run_pg(&env, &db, &db.url(), &["plan", &specs]).await.must_exit(0);
    assert!(run.stdout.contains("to create"), "{}", run.text());
    let client = db.client().await;
    let row = client.query_one("SELECT to_regclass('immuta_gitops_states') IS NULL", &[]).await;
    assert!(row.unwrap().get::<_, bool>(0), "no schema was created by a plan");
    // Applying binds the state to the tenant.
    env.apply(&[]).await.must_exit(0);
    assert_eq!(env.state_file()["tenant"], env.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salted_digests_of_an_old_state_migrate_on_the_next_apply_without_a_change() {
    let env = Env::start().await;
    write_shop(&env.specs);
    env.apply(&[]).await.must_exit(0);
    // Make the state what an older version wrote: format 1, salted digests, no key.
    let mut state = env.state_file();
    let salt = "0123456789abcdef0123456789abcdef";
    let secret = env.env.iter().find(|(k, _)| k == "SHOP_PASSWORD").map(|(_, v)| v.clone());
    let secret = secret.unwrap_or_else(|| "shop-password-1".into());
    let salted =
        format!("(sensitive:{})", immuta_gitops::spec::secrets::secret_digest(&secret, salt));
    let mut text = state.to_string();
    let keyed = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "shop")
        .map(|e| e["payload"]["connection"]["password"].as_str().unwrap().to_owned())
        .unwrap();
    text = text.replace(&keyed, &salted);
    state = serde_json::from_str(&text).unwrap();
    state["version"] = json!(1);
    state["salt"] = json!(salt);
    state.as_object_mut().unwrap().remove("key_id");
    // The entry's digest is the digest of its payload.
    for e in state["objects"].as_array_mut().unwrap() {
        let payload: Value = e["payload"].clone();
        e["digest"] = json!(immuta_gitops::state::payload_digest(&payload));
    }
    std::fs::write(env.state_path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    std::fs::remove_file(format!("{}.key", env.state_path().display())).unwrap();

    env.assert_converged().await;
    assert!(
        !Path::new(&format!("{}.key", env.state_path().display())).exists(),
        "plan made no key"
    );
    env.clear_requests().await;
    let run = env.apply(&[]).await.must_exit(0);
    assert_eq!(
        crate::support::tenant::writes(&env.requests().await),
        Vec::<String>::new(),
        "{}",
        run.text()
    );
    let migrated = env.state_file();
    assert_eq!(migrated["version"], 2);
    assert!(migrated["key_id"].is_string());
    assert!(!migrated.to_string().contains(&salted), "the salted digest is gone");
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_database_connection_steps_down_and_the_standby_leads() {
    let env = Env::start().await;
    let db = TestDb::create().await;
    let proxy = Proxy::start(db.addr).await;
    let specs = SpecDir::new();
    purposes(&specs, 3);
    let a = Replica::start(&env, &db, &db.url_at(proxy.addr), specs.path());
    a.wait_for("a to apply", Duration::from_secs(30), |s| s["applied_revision"].is_string()).await;
    let b = Replica::start(&env, &db, &db.url(), specs.path());
    b.wait_for("b to be standby", Duration::from_secs(30), |s| s["role"] == "standby").await;
    // A's database goes away (a network partition, a failover of the database server).
    let cut = Instant::now();
    proxy.cut();
    b.wait_for("b to lead", Duration::from_secs(15), |s| s["role"] == "leader").await;
    assert!(cut.elapsed() < Duration::from_secs(15), "took over in {:?}", cut.elapsed());
    let status =
        a.wait_for("a to step down", Duration::from_secs(15), |s| s["role"] == "standby").await;
    assert!(status["degraded"].is_string(), "a says why: {status:#}");
    // B, the new leader, reconciles the specs (nothing left to do) and a new spec.
    specs.write("purposes/new.yaml", "name: Added later\n");
    b.wait_for("b to apply the new spec", Duration::from_secs(30), |s| {
        s["history"][0]["outcome"] == "applied"
    })
    .await;
    assert!(env.view().await.purposes.contains("Added later"));
    assert!(purpose_posts(&env).await.values().all(|&n| n == 1));
}
