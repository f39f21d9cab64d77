//! The REST client (`live::Client`) against the emulator over real HTTP: the token exchange goes
//! through the same retries and observer as every request, `Retry-After` is waited for (and
//! capped), and V1 listings are paged to their `count`, also through a server that caps its
//! pages below ours (the binary, through a proxy), failing closed when the pages end early.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use immuta_emulator::ADMIN_KEY;
use immuta_gitops::live::retry::RetryPolicy;
use immuta_gitops::live::{Client, ClientConfig, Observer, Request};
use serde_json::{Value, json};

use crate::support::tenant::{BASE_ENV, Env, Run, edit, http_client, writes};

/// Every request and retry the client reports.
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(String, String, Option<u16>)>>,
    retries: Mutex<Vec<(String, String)>>,
}

impl Observer for Recorder {
    fn request(&self, endpoint: &str, method: &str, status: Option<u16>, _: Duration) {
        self.requests.lock().unwrap().push((endpoint.to_owned(), method.to_owned(), status));
    }

    fn retry(&self, endpoint: &str, reason: &str) {
        self.retries.lock().unwrap().push((endpoint.to_owned(), reason.to_owned()));
    }
}

impl Recorder {
    /// Statuses of the requests to `endpoint`, in order (None: no answer).
    fn statuses(&self, endpoint: &str) -> Vec<Option<u16>> {
        let requests = self.requests.lock().unwrap();
        requests.iter().filter(|r| r.0 == endpoint).map(|r| r.2).collect()
    }

    /// Reasons of the retries of `endpoint`.
    fn retries(&self, endpoint: &str) -> Vec<String> {
        let retries = self.retries.lock().unwrap();
        retries.iter().filter(|r| r.0 == endpoint).map(|r| r.1.clone()).collect()
    }
}

/// Short waits (as `IMMUTA_GITOPS_RETRY_BASE_MS=5`), `Retry-After` honoured up to `max_after`.
fn client(env: &Env, max_after: Duration, observer: Arc<Recorder>) -> Client {
    let mut config = ClientConfig::new(env.url(), ADMIN_KEY.to_owned().into());
    config.retry = RetryPolicy {
        max_retries: 5,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        max_retry_after: max_after,
    };
    Client::with_observer(config, observer).expect("a client")
}

/// Statuses of the emulator's log entries for `path` (0: dropped).
fn logged(log: &[Value], method: &str, path: &str) -> Vec<u64> {
    log.iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .map(|r| r["status"].as_u64().unwrap_or(999))
        .collect()
}

const EXCHANGE: &str = "/bim/apikey/authenticate";

/// One token-exchange cell: the first listing is refused (401), so the client exchanges its
/// key, and the exchange meets `fault` `count` times. What the caller got, the log, the observer.
async fn exchange_case(
    fault: Value,
    count: u64,
) -> (Result<Value, String>, Vec<Value>, Arc<Recorder>) {
    let env = Env::start().await;
    env.fault(json!({"method": "GET", "pathPrefix": "/dataSource", "status": 401})).await;
    let mut rule = fault;
    rule["method"] = json!("POST");
    rule["pathPrefix"] = json!(EXCHANGE);
    rule["count"] = json!(count);
    env.fault(rule).await;
    let recorder = Arc::new(Recorder::default());
    let client = client(&env, Duration::from_millis(40), recorder.clone());
    let result = client
        .send_ok(&Request::get("/dataSource", "/dataSource"))
        .await
        .map_err(|e| e.to_string());
    (result, env.requests().await, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_exchange_is_retried_by_the_classifier_and_observed() {
    let cells = [
        (json!({"status": 429, "retryAfter": "0"}), 1, vec![429, 200], "429"),
        (json!({"status": 503}), 2, vec![503, 503, 200], "503"),
        (json!({"status": 502}), 1, vec![502, 200], "502"),
        (json!({"drop": true}), 1, vec![0, 200], "connection"),
    ];
    for (fault, count, statuses, reason) in cells {
        let name = fault.to_string();
        let (result, log, recorder) = exchange_case(fault, count).await;
        let body = result.unwrap_or_else(|e| panic!("{name}: the request failed: {e}"));
        assert!(body["hits"].is_array(), "{name}: {body}");
        assert_eq!(logged(&log, "POST", EXCHANGE), statuses, "{name}");
        assert_eq!(
            logged(&log, "GET", "/dataSource"),
            [401, 200],
            "{name}: sent again with the token"
        );
        let observed: Vec<Option<u16>> =
            statuses.iter().map(|s| u16::try_from(*s).ok().filter(|s| *s != 0)).collect();
        assert_eq!(recorder.statuses(EXCHANGE), observed, "{name}: every attempt observed");
        let faulted = usize::try_from(count).unwrap();
        assert_eq!(recorder.retries(EXCHANGE), vec![reason; faulted], "{name}: retries observed");
        assert!(
            recorder.retries("/dataSource").is_empty(),
            "{name}: the listing itself was not retried"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_exchange_that_keeps_failing_is_reported_as_what_it_is() {
    // 503 beyond the retries: 1 + 5 attempts, then a server error (not "the key was refused"),
    // and the request that needed the token is not sent again.
    let (result, log, recorder) = exchange_case(json!({"status": 503}), 6).await;
    let err = result.expect_err("the exchange never succeeds");
    assert!(err.contains("POST /bim/apikey/authenticate failed (503)"), "{err}");
    assert!(!err.contains("refused"), "{err}");
    assert_eq!(logged(&log, "POST", EXCHANGE), [503; 6]);
    assert_eq!(logged(&log, "GET", "/dataSource"), [401]);
    assert_eq!(recorder.retries(EXCHANGE).len(), 5);

    // 500: final at once.
    let (result, log, recorder) = exchange_case(json!({"status": 500}), 1).await;
    let err = result.expect_err("the exchange fails");
    assert!(err.contains("POST /bim/apikey/authenticate failed (500)"), "{err}");
    assert_eq!(logged(&log, "POST", EXCHANGE), [500]);
    assert_eq!(recorder.statuses(EXCHANGE), [Some(500)]);
    assert!(recorder.retries(EXCHANGE).is_empty());

    // 401: the key is refused; not retried.
    let (result, log, _) = exchange_case(json!({"status": 401}), 1).await;
    let err = result.expect_err("the key is refused");
    assert!(err.contains("the API key was refused (401"), "{err}");
    assert!(err.contains("IMMUTA_API_KEY"), "{err}");
    assert_eq!(logged(&log, "POST", EXCHANGE), [401]);
}

/// How long one listing takes when its first answer is `429` with `Retry-After: retry_after`.
async fn wait_for_429(retry_after: &str, max_after: Duration) -> Duration {
    let env = Env::start().await;
    env.fault(json!({"method": "GET", "pathPrefix": "/dataSource", "status": 429, "retryAfter": retry_after}))
        .await;
    let recorder = Arc::new(Recorder::default());
    let client = client(&env, max_after, recorder.clone());
    let started = Instant::now();
    client.send_ok(&Request::get("/dataSource", "/dataSource")).await.expect("retried");
    let took = started.elapsed();
    assert_eq!(logged(&env.requests().await, "GET", "/dataSource"), [429, 200]);
    assert_eq!(recorder.retries("/dataSource"), ["429"]);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_are_waited_for() {
    // The backoff is 5-40 ms; only the header makes the client wait a second.
    let took = wait_for_429("1", Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(900), "waited {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_dates_are_waited_for() {
    // An HTTP date has whole seconds: the retry waits until that second has come.
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    let target = httpdate::parse_http_date(&at).expect("a date");
    let took = wait_for_429(&at, Duration::from_secs(10)).await;
    assert!(std::time::SystemTime::now() >= target, "retried before {at} (after {took:?})");
    assert!(took >= Duration::from_millis(200), "not the 5-40 ms backoff: waited {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_capped() {
    let took = wait_for_429("3600", Duration::from_millis(150)).await;
    assert!(took >= Duration::from_millis(150), "waited {took:?}");
    assert!(took < Duration::from_secs(3), "an hour is capped at 150 ms: waited {took:?}");
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

/// `GET path` pages of a request log, as `offset` values.
fn offsets(log: &[Value], path: &str) -> Vec<u64> {
    log.iter()
        .filter(|r| r["method"] == "GET" && r["path"] == path)
        .map(|r| {
            let query = r["query"].as_str().unwrap_or_default();
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no offset in {query}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_read_page_by_page_to_their_count() {
    let env = Env::start().await;
    let tables: String =
        (1..=7).map(|i| format!("  - {{tableName: T{i}, schema: PUBLIC}}\n")).collect();
    env.specs.write(
        "data/wide.yaml",
        &format!(
            "connectionKey: wide\nconnection:\n  handler: Snowflake\n  hostname: wide.example.com\n  \
             port: 443\n  database: W\n  warehouse: WH\n  username: u\n  password: p\nsources:\n{tables}"
        ),
    );
    for i in 1..=12 {
        env.specs.write(
            &format!("projects/p{i}.yaml"),
            &format!("projectKey: p{i}\nname: Project {i}\n"),
        );
    }
    env.apply_in_process().await;
    env.clear_requests().await;
    let paged = |size| {
        let mut config = ClientConfig::new(env.url(), ADMIN_KEY.to_owned().into());
        config.listing.page_size = size;
        Client::new(config).expect("a client")
    };

    let data: Vec<Value> =
        paged(3).list("/dataSource", "/dataSource", &[], false).await.expect("listed");
    let names: Vec<&str> = data.iter().filter_map(|d| d["name"].as_str()).collect();
    let expected: Vec<String> = (1..=7).map(|i| format!("public t{i}")).collect();
    assert_eq!(names, expected);
    let projects: Vec<Value> =
        paged(5).list("/project", "/project", &[], false).await.expect("listed");
    let keys: std::collections::BTreeSet<&str> =
        projects.iter().filter_map(|p| p["projectKey"].as_str()).collect();
    for i in 1..=12 {
        assert!(keys.contains(format!("p{i}").as_str()), "p{i} in {keys:?}");
    }
    // And the schema project of `PUBLIC`, once.
    assert_eq!(projects.len(), 13, "{projects:#?}");
    let log = env.requests().await;
    // The first page gives the count; the others are asked for together, in any order.
    assert_eq!(offsets(&log, "/dataSource")[0], 0);
    assert_eq!(sorted(offsets(&log, "/dataSource")), [0, 3, 6]);
    assert_eq!(sorted(offsets(&log, "/project")), [0, 5, 10]);
}

// --- A server that caps its pages ---

/// A reverse proxy to an emulator, standing for a tenant whose counted V1 listings
/// (`/dataSource`, `/project`, `/governance/purpose`) answer at most `cap` items a page whatever
/// `size` asks; `/dataSource` announces `extra` more items than it has (a listing that ends
/// early).
struct CappingProxy {
    url: String,
    extra: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

struct Upstream {
    url: String,
    cap: usize,
    extra: Arc<AtomicU64>,
}

impl CappingProxy {
    async fn start(upstream: String, cap: usize) -> CappingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let extra = Arc::new(AtomicU64::new(0));
        let state = Arc::new(Upstream { url: upstream, cap, extra: extra.clone() });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CappingProxy { url, extra, task }
    }
}

impl Drop for CappingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(up): State<Arc<Upstream>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let capped =
        method == Method::GET && matches!(path, "/dataSource" | "/project" | "/governance/purpose");
    let mut query = uri.query().unwrap_or_default().to_owned();
    if capped {
        query = query
            .split('&')
            .map(|kv| match kv.strip_prefix("size=").and_then(|v| v.parse::<usize>().ok()) {
                Some(size) => format!("size={}", size.min(up.cap)),
                None => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    let mut req = http_client().request(method, format!("{}{path}?{query}", up.url)).body(body);
    for name in ["authorization", "content-type"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let Ok(resp) = req.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = resp.status();
    let mut out = HeaderMap::new();
    for name in ["content-type", "retry-after"] {
        if let Some(v) = resp.headers().get(name) {
            out.insert(name, v.clone());
        }
    }
    let mut bytes = resp.bytes().await.unwrap_or_default();
    let extra = up.extra.load(Ordering::SeqCst);
    if path == "/dataSource" && status.is_success() && extra > 0 {
        let mut v: Value = serde_json::from_slice(&bytes).expect("a listing is JSON");
        let count = v["count"].as_u64().expect("a counted listing");
        v["count"] = json!(count + extra);
        bytes = Bytes::from(serde_json::to_vec(&v).expect("JSON"));
    }
    (status, out, bytes).into_response()
}

/// Runs the binary against `url` with `env`'s state directory and key.
async fn run_via(env: &Env, url: &str, args: &[&str]) -> Run {
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["--url", url, "--color", "never", "--state-dir"].map(String::from));
    args.push(env.state_dir().display().to_string());
    let (dir, key) = (env.specs.path().to_owned(), env.key.clone());
    let out = tokio::task::spawn_blocking(move || {
        crate::support::bin()
            .current_dir(dir)
            .args(args)
            .env("IMMUTA_API_KEY", key)
            .envs(BASE_ENV.iter().copied())
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("the blocking task ends");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_capping_its_pages_is_read_to_the_end_and_a_short_listing_fails_closed() {
    let env = Env::shop().await;
    let proxy = CappingProxy::start(env.url(), 1).await;
    let specs = env.specs.path().display().to_string();

    // Pages of one item, asked for 200 at a time: every data source, project and purpose is
    // found, so the next plan is empty (a listing cut at its first page would read as objects
    // deleted outside immuta-gitops).
    run_via(&env, &proxy.url, &["apply", &specs, "--auto-approve"]).await.must_exit(0);
    env.clear_requests().await;
    let run =
        run_via(&env, &proxy.url, &["plan", &specs, "--detailed-exitcode"]).await.must_exit(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    let log = env.requests().await;
    assert_eq!(sorted(offsets(&log, "/dataSource")), [0, 1, 2], "three data sources, one a page");
    assert!(offsets(&log, "/project").len() >= 2, "{log:#?}");

    // The pages end two items short of the announced count: nothing is planned or applied.
    proxy.extra.store(2, Ordering::SeqCst);
    edit(&env.specs, "policies/policies.yaml", "Hash e-mail", "Hash e-mails");
    env.clear_requests().await;
    for args in [vec!["plan", &specs], vec!["apply", &specs, "--auto-approve"]] {
        let run = run_via(&env, &proxy.url, &args).await.must_exit(1);
        let text = run.text();
        assert!(text.contains("cannot read the tenant; nothing was planned"), "{text}");
        assert!(text.contains("unexpected answer from /dataSource"), "{text}");
        assert!(text.contains("announced 5 items but its pages ended after 3"), "{text}");
    }
    assert_eq!(writes(&env.requests().await), Vec::<String>::new());
}
