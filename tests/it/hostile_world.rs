//! Issue 12's deletes, inputs and servers, each against a tenant or a client that misbehaves in
//! exactly that way: a connection cut to one table, a listing that lies (empty), a merged
//! commit that raises the repository's safety settings, bidirectional controls in a spec, a
//! tree too large, 1,000 idle connections, a slow client, a foreign `Host`, an empty webhook
//! secret and a web page driving the emulator.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::tenant::{Env, change};
use crate::support::{SpecDir, bin, serving_url};

/// A connection of six tables on an open catalog, `hardDelete` as given.
fn six_tables(hard_delete: bool) -> String {
    let tables: String =
        (1..=6).map(|i| format!("  - {{tableName: T{i}, schema: PUBLIC}}\n")).collect();
    format!(
        "connectionKey: wide\nconnection: {{handler: PostgreSQL, hostname: pg.example.com, \
         port: 5432, database: DB, username: u, password: '${{SHOP_PASSWORD}}'}}\n\
         options: {{hardDelete: {hard_delete}}}\nsources:\n{tables}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sources_a_post_drops_count_towards_the_mass_deletion_guard() {
    let env = Env::start().await;
    env.specs.write("data/wide.yaml", &six_tables(true));
    env.apply_in_process().await;
    let kept = "  - {tableName: T1, schema: PUBLIC}\n";
    let text = std::fs::read_to_string(env.specs.path().join("data/wide.yaml")).unwrap();
    let cut = text.split(kept).next().unwrap().to_owned() + kept;
    env.specs.write("data/wide.yaml", &cut);
    // One object, five data sources deleted (hardDelete): --allow-destroy alone is not enough.
    env.apply_refused(&["--allow-destroy"], "deletes or disables 5 of 6 managed objects").await;
    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    env.assert_converged().await;
}

/// Makes the tenant's policy listing come back empty (with a count of 0); reads by id still
/// tell the truth.
async fn lie_about_policies(env: &Env) {
    let rules = json!({"rules": [{"path": "/policy/global", "keep": 0}]});
    env.control(Method::PUT, "/lies", Some(&rules)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_comes_back_empty_never_turns_a_delete_into_a_forget() {
    let env = Env::with_policies(4).await;
    env.specs.remove("policies/p4.yaml");
    lie_about_policies(&env).await;
    let plan = env.plan_json(&[]).await;
    let c = change(&plan, "policy", "p4");
    assert_eq!(c["action"], "delete", "{c:#}");
    assert_eq!(c["write"], true, "the read by id finds it: it is deleted, not forgotten: {c:#}");
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    env.control(Method::DELETE, "/lies", None).await;
    assert!(!env.view().await.policies.contains("p4"), "deleted on the tenant");

    // Really deleted outside, with the listing still lying: the read by id confirms it.
    env.specs.remove("policies/p3.yaml");
    env.delete_out_of_band("policy", "p3").await;
    lie_about_policies(&env).await;
    let plan = env.plan_json(&[]).await;
    let c = change(&plan, "policy", "p3");
    assert_eq!(c["write"], false, "{c:#}");
    assert!(c["reason"].as_str().unwrap_or_default().contains("confirmed"), "{c:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_repository_safety_settings_needs_the_operators_allow_destroy_once() {
    let env = Env::with_policies(4).await;
    env.specs.write("immuta-gitops.yaml", "allowDestroy: true\nmaxDeletePercent: 100\n");
    env.specs.remove("policies/p4.yaml");
    env.specs.remove("policies/p3.yaml");
    let text = env.plan(&[]).await.stdout;
    assert!(text.contains("[settings-raised]"), "{text}");
    assert!(text.contains("`maxDeletePercent` 25 -> 100"), "{text}");
    env.apply_refused(&[], "the plan destroys data or objects").await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    assert_eq!(env.state_file()["safety"], json!({"allowDestroy": true, "maxDeletePercent": 100}));
    // Accepted once: the repository's settings now hold on their own.
    assert!(!env.plan(&[]).await.stdout.contains("settings-raised"));
    env.specs.remove("policies/p2.yaml");
    env.apply(&[]).await.must_exit(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidirectional_and_control_characters_are_escaped_in_text_and_markdown_plans() {
    let env = Env::start().await;
    env.specs.write("p.yaml", "name: Audit\ndescription: \"pay \\u202Eeulav\\u2066 \\u061C\"\n");
    for extra in [&[][..], &["--format", "markdown"][..]] {
        let out = env.plan(extra).await.must_exit(0).stdout;
        for raw in ['\u{202e}', '\u{2066}', '\u{61c}'] {
            assert!(!out.contains(raw), "{raw:?} reached the plan raw:\n{out}");
        }
        assert!(out.contains("\\u{202e}eulav\\u{2066}"), "{out}");
    }
    // The plan JSON is for machines: the value as written.
    let plan = env.plan_json(&[]).await;
    assert!(plan.to_string().contains('\u{202e}'));
}

#[test]
fn a_spec_tree_over_the_total_size_limit_is_refused_with_how_to_raise_it() {
    let specs = SpecDir::new();
    specs.write("a.yaml", &format!("name: A\ndescription: {}\n", "x".repeat(700_000)));
    specs.write("b.yaml", &format!("name: B\ndescription: {}\n", "x".repeat(700_000)));
    let out = bin()
        .args(["validate", &specs.path().display().to_string()])
        .env("IMMUTA_GITOPS_MAX_TREE_SIZE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("larger than 1 MiB") && err.contains("IMMUTA_GITOPS_MAX_TREE_SIZE"),
        "{err}"
    );
    bin().args(["validate", &specs.path().display().to_string()]).assert().success();
}

/// `immuta-gitops run --dir` on an empty tree against `env`, killed on drop.
struct Sidecar {
    child: Child,
    addr: String,
}

impl Sidecar {
    fn start(env: &Env, extra: &[&str]) -> Sidecar {
        let mut child = Command::new(crate::support::BIN)
            .args(["run", "--dir", &env.specs.path().display().to_string()])
            .args(["--interval", "1h", "--drift-interval", "0s", "--listen", "127.0.0.1:0"])
            .args(["--url", &env.url(), "--state-dir", &env.state_dir().display().to_string()])
            .args(extra)
            .env("IMMUTA_API_KEY", &env.key)
            .env_remove("IMMUTA_URL")
            .env_remove("IMMUTA_GITOPS_WEBHOOK_SECRET")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = serving_url(&line) {
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(30)).expect("the sidecar serves");
        let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        Sidecar { child, addr }
    }

    /// One raw HTTP/1.1 request (`Connection: close`) with `host`: the whole answer.
    fn get(&self, path: &str, host: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the server closes `s` within 20 s (EOF or reset; never a timeout).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_never_keep_healthz_from_answering() {
    let env = Env::start().await;
    let sidecar = Sidecar::start(&env, &[]);
    let addr = sidecar.addr.clone();
    let (mut idle, answer) = tokio::task::spawn_blocking(move || {
        let idle: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(&addr).unwrap()).collect();
        let started = Instant::now();
        let answer = sidecar.get("/healthz", "127.0.0.1");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        (idle, (answer, sidecar))
    })
    .await
    .unwrap();
    assert!(answer.0.starts_with("HTTP/1.1 200"), "{}", answer.0);
    // The oldest idle connections made room: the server closed them.
    assert!(closed_by_server(&mut idle[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_and_only_expected_hosts_are_answered() {
    let env = Env::start().await;
    let sidecar =
        Sidecar::start(&env, &["--header-timeout", "1s", "--allowed-host", "gitops.example"]);
    let addr = sidecar.addr.clone();
    tokio::task::spawn_blocking(move || {
        let mut idle = TcpStream::connect(&addr).unwrap();
        let mut slow = TcpStream::connect(&addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
        assert!(closed_by_server(&mut idle), "an idle connection is closed");
        assert!(closed_by_server(&mut slow), "a slow request head is cut off");

        assert!(sidecar.get("/status", "evil.example").starts_with("HTTP/1.1 421"));
        assert!(sidecar.get("/metrics", "evil.example:8080").starts_with("HTTP/1.1 421"));
        assert!(sidecar.get("/status", "gitops.example:8080").starts_with("HTTP/1.1 200"));
        assert!(sidecar.get("/healthz", &addr).starts_with("HTTP/1.1 200"));
        assert!(sidecar.get("/healthz", "localhost").starts_with("HTTP/1.1 200"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_webhook_secret_is_a_startup_error() {
    let env = Env::start().await;
    let dir = env.specs.path().display().to_string();
    let empty = env.specs.path().join("..").join("empty-webhook-secret");
    std::fs::write(&empty, "  \n").unwrap();
    let base =
        ["run", "--dir", dir.as_str(), "--listen", "127.0.0.1:0", "--url", "http://127.0.0.1:9"];
    let out = bin()
        .args(base)
        .args(["--webhook-secret-file", &empty.display().to_string()])
        .env("IMMUTA_API_KEY", "k")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"), "{out:?}");
    let out = bin()
        .args(base)
        .env("IMMUTA_API_KEY", "k")
        .env("IMMUTA_GITOPS_WEBHOOK_SECRET", "")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set but empty"), "{out:?}");
    let _ = std::fs::remove_file(empty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulators_controls_refuse_web_pages() {
    let env = Env::start().await;
    let reset = format!("{}/_emulator/reset", env.url());
    let status = |r: reqwest::Response| r.status().as_u16();
    let text_plain =
        env.http.post(&reset).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(status(text_plain), 415);
    let foreign =
        env.http.post(&reset).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(status(foreign), 403);
    let form = env
        .http
        .put(format!("{}/_emulator/latency", env.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("ms=5")
        .send()
        .await
        .unwrap();
    assert_eq!(status(form), 415);
    env.set_latency(0).await;
    let ok = env.http.post(&reset).send().await.unwrap();
    assert_eq!(status(ok), 200);
}
