//! The reconciler's HTTP server over real HTTP on `127.0.0.1:0`: webhook authentication and
//! nudging (triggers read from the channel), health, readiness, `/status` and `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use immuta_gitops::daemon::{Outcome, ReconcileRecord, StatusHandle, Trigger};
use immuta_gitops::live::Observer;
use immuta_gitops::metrics::Metrics;
use immuta_gitops::plan::Action;
use immuta_gitops::server::{self, ServerState, WebhookConfig};
use immuta_gitops::spec::Kind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const GITHUB_SECRET: &str = "gh-webhook-secret-3f9a";
const GITLAB_TOKEN: &str = "gl-webhook-token-77c1";
const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

/// A running server, the receiving end of its trigger queue, and the state it shares.
struct Server {
    addr: SocketAddr,
    http: reqwest::Client,
    triggers: mpsc::Receiver<Trigger>,
    status: StatusHandle,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::Error>>>,
}

/// One answer: status, headers, raw body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn both_providers(branch: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        github_secret: Some(SecretString::from(GITHUB_SECRET)),
        gitlab_token: Some(SecretString::from(GITLAB_TOKEN)),
        branch: branch.map(str::to_owned),
    }
}

impl Server {
    /// Tracks `main`, with both providers configured and room for 8 triggers.
    async fn start() -> Server {
        Server::start_with(both_providers(Some("main")), 8).await
    }

    async fn start_with(webhook: WebhookConfig, capacity: usize) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, triggers) = mpsc::channel(capacity);
        let state = ServerState {
            metrics: Arc::new(Metrics::new()),
            status: StatusHandle::default(),
            triggers: tx,
            webhook: Arc::new(webhook),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (status, metrics) = (state.status.clone(), state.metrics.clone());
        let task = tokio::spawn(server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            http: reqwest::Client::new(),
            triggers,
            status,
            metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> Answer {
        answer(self.http.get(self.url(path)).send().await.expect("answered")).await
    }

    /// Posts `body` to `/webhook` with `headers`.
    async fn deliver(&self, headers: &[(&str, String)], body: impl Into<Vec<u8>>) -> Answer {
        let mut request = self.http.post(self.url("/webhook")).body(body.into());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        answer(request.send().await.expect("answered")).await
    }

    /// The triggers queued so far (without waiting).
    fn queued(&mut self) -> Vec<Trigger> {
        std::iter::from_fn(|| self.triggers.try_recv().ok()).collect()
    }

    async fn metrics_text(&self) -> String {
        self.get("/metrics").await.text
    }

    /// Stops the server and waits for `serve` to return.
    async fn shutdown(&mut self) -> Result<(), server::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("not shut down yet");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve did not panic")
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer { status, headers, text }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn github_push(branch: &str, after: &str) -> String {
    serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "deleted": false,
        "repository": { "full_name": "acme/immuta-specs" },
        "pusher": { "name": "octocat" },
    })
    .to_string()
}

fn github_headers(
    event: &str,
    delivery: &str,
    signature: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Delivery", delivery.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ];
    if let Some(signature) = signature {
        headers.push(("X-Hub-Signature-256", signature));
    }
    headers
}

/// A correctly signed GitHub push to `branch`.
async fn signed_push(server: &Server, delivery: &str, branch: &str) -> Answer {
    let body = github_push(branch, SHA);
    let signature = sign(GITHUB_SECRET, body.as_bytes());
    server.deliver(&github_headers("push", delivery, Some(signature)), body).await
}

fn gitlab_push(branch: &str) -> String {
    serde_json::json!({
        "object_kind": "push",
        "ref": format!("refs/heads/{branch}"),
        "checkout_sha": SHA,
        "project": { "path_with_namespace": "acme/immuta-specs" },
    })
    .to_string()
}

fn gitlab_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Gitlab-Event", "Push Hook".to_owned()),
        ("X-Gitlab-Event-UUID", "gl-delivery-1".to_owned()),
        ("X-Gitlab-Token", token.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ]
}

/// One sample of the OpenMetrics text: the value of `name{labels}` (exact label set).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> =
        labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, got) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}')?)?),
            None => (series, BTreeMap::new()),
        };
        (series_name == name && got == want).then(|| value.parse().ok()).flatten()
    })
}

/// `k="v",k2="v2"` (values may hold `{`, `}` and escaped quotes).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => value.push(chars.next()?.1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    Some(labels)
}

fn webhook_count(text: &str, provider: &str, result: &str) -> f64 {
    sample(
        text,
        "immuta_gitops_webhook_deliveries_total",
        &[("provider", provider), ("result", result)],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn signed_github_push_to_the_tracked_branch_sends_one_trigger() {
    let mut server = Server::start().await;
    let started = Instant::now();
    let answer = signed_push(&server, "72d3162e-cc78-11e3-81ab-4c9367dc0958", "main").await;
    let took = started.elapsed();

    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    assert_eq!(answer.json()["result"], "accepted");
    assert_eq!(
        server.queued(),
        vec![Trigger::Webhook {
            delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned()),
            revision: Some(SHA.to_owned()),
        }]
    );
    assert_eq!(webhook_count(&server.metrics_text().await, "github", "accepted"), 1.0);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn github_ping_answers_200_without_a_trigger() {
    let mut server = Server::start().await;
    let body = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let headers = github_headers("ping", "ping-1", Some(sign(GITHUB_SECRET, body.as_bytes())));
    let answer = server.deliver(&headers, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(server.queued().is_empty());
}

#[tokio::test]
async fn push_to_another_branch_is_acknowledged_without_a_trigger() {
    let mut server = Server::start().await;
    let answer = signed_push(&server, "d-1", "feature/x").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(answer.json()["result"], "ignored");
    assert!(answer.json()["note"].as_str().is_some_and(|n| n.contains("refs/heads/main")));
    assert!(server.queued().is_empty());
    assert_eq!(webhook_count(&server.metrics_text().await, "github", "ignored"), 1.0);
}

#[tokio::test]
async fn unauthenticated_github_deliveries_are_401_and_change_nothing() {
    let mut server = Server::start().await;
    let body = github_push("main", SHA);
    let good = sign(GITHUB_SECRET, body.as_bytes());
    // One bit flipped: the last hex digit XOR 1.
    let flipped = {
        let (head, last) = good.split_at(good.len() - 1);
        let digit = u8::from_str_radix(last, 16).expect("hex digit") ^ 1;
        format!("{head}{digit:x}")
    };
    let tampered = body.replace(SHA, "1111111111111111111111111111111111111111");

    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("unsigned", None, &body),
        ("one bit flipped", Some(flipped), &body),
        ("another secret", Some(sign("not-the-secret", body.as_bytes())), &body),
        ("tampered body", Some(good.clone()), &tampered),
        ("sha1 header form", Some(good.replace("sha256=", "sha1=")), &body),
    ];
    let n = cases.len();
    for (case, signature, body) in cases {
        let answer =
            server.deliver(&github_headers("push", case, signature), body.to_owned()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{case}: {}", answer.text);
        assert_eq!(answer.json()["error"], "unauthorized", "{case}");
        assert!(server.queued().is_empty(), "{case} sent a trigger");
    }
    let text = server.metrics_text().await;
    assert_eq!(webhook_count(&text, "github", "unauthorized"), n as f64);
    assert_eq!(webhook_count(&text, "github", "accepted"), 0.0);

    // No provider headers at all.
    let answer = server.deliver(&[], body).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(server.queued().is_empty());
    assert_eq!(webhook_count(&server.metrics_text().await, "unknown", "unauthorized"), 1.0);
}

#[tokio::test]
async fn signed_but_unreadable_push_is_400_without_a_trigger() {
    let mut server = Server::start().await;
    // The 400 says where the payload is wrong, never what it holds.
    let body = r#"{"ref":"refs/heads/main","after":424242}"#;
    let answer = server
        .deliver(&github_headers("push", "d-bad", Some(sign(GITHUB_SECRET, body.as_bytes()))), body)
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(!answer.text.contains("424242"), "{}", answer.text);
    assert!(server.queued().is_empty());
    assert_eq!(webhook_count(&server.metrics_text().await, "github", "bad_request"), 1.0);
}

#[tokio::test]
async fn gitlab_token_right_nudges_and_wrong_is_401() {
    let mut server = Server::start().await;
    let answer = server.deliver(&gitlab_headers(GITLAB_TOKEN), gitlab_push("main")).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(
        server.queued(),
        vec![Trigger::Webhook {
            delivery: Some("gl-delivery-1".to_owned()),
            revision: Some(SHA.to_owned()),
        }]
    );

    for wrong in ["gl-webhook-token-77c2", "gl-webhook-token-77c", "", GITHUB_SECRET] {
        let answer = server.deliver(&gitlab_headers(wrong), gitlab_push("main")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "token {wrong:?}");
        assert!(server.queued().is_empty());
    }
    let text = server.metrics_text().await;
    assert_eq!(webhook_count(&text, "gitlab", "accepted"), 1.0);
    assert_eq!(webhook_count(&text, "gitlab", "unauthorized"), 4.0);
}

#[tokio::test]
async fn webhook_is_404_when_no_secret_is_configured() {
    let mut server = Server::start_with(WebhookConfig::default(), 8).await;
    let body = github_push("main", SHA);
    let signature = sign(GITHUB_SECRET, body.as_bytes());
    let answer = server.deliver(&github_headers("push", "d-1", Some(signature)), body).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/webhook").await.status, StatusCode::NOT_FOUND);
    assert!(server.queued().is_empty());
}

#[tokio::test]
async fn oversized_body_is_413() {
    let mut server = Server::start().await;
    let body = vec![b' '; server::WEBHOOK_BODY_LIMIT + 1];
    let signature = sign(GITHUB_SECRET, &body);
    let answer = server.deliver(&github_headers("push", "big", Some(signature)), body).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(server.queued().is_empty());
}

#[tokio::test]
async fn burst_into_a_full_queue_coalesces() {
    // Capacity 1 and nobody receiving: the first delivery queues, the other 19 coalesce.
    let mut server = Server::start_with(both_providers(Some("main")), 1).await;
    let deliveries = (0..20).map(|i| {
        let server = &server;
        async move { signed_push(server, &format!("burst-{i}"), "main").await.status }
    });
    let statuses = futures::future::join_all(deliveries).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::ACCEPTED), "{statuses:?}");
    let queued = server.queued();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(webhook_count(&server.metrics_text().await, "github", "accepted"), 20.0);
}

#[tokio::test]
async fn healthz_is_ok() {
    let server = Server::start().await;
    let answer = server.get("/healthz").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text, "ok");
}

#[tokio::test]
async fn readyz_follows_the_first_successful_reconcile() {
    let server = Server::start().await;
    let answer = server.get("/readyz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["ready"], false);
    assert_eq!(answer.json()["reason"], "no successful reconcile yet");

    server.status.update(|s| s.degraded = Some("source: cannot fetch".to_owned()));
    assert_eq!(server.get("/readyz").await.json()["reason"], "source: cannot fetch");

    server.status.update(|s| {
        s.ready = true;
        s.degraded = None;
    });
    let answer = server.get("/readyz").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["ready"], true);
}

#[tokio::test]
async fn status_serves_the_shared_status_uncached() {
    let server = Server::start().await;
    server.status.update(|s| {
        s.mode = "apply".to_owned();
        s.applied_revision = Some(SHA.to_owned());
        s.record(ReconcileRecord {
            trigger: "webhook",
            revision: Some(SHA.to_owned()),
            started_at: "2026-11-25T05:00:00Z".to_owned(),
            duration_ms: 1234,
            outcome: Outcome::Applied,
            changes: 3,
            message: None,
        });
    });
    let answer = server.get("/status").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let status = answer.json();
    assert_eq!(status["mode"], "apply");
    assert_eq!(status["applied_revision"], SHA);
    let record = &status["history"][0];
    assert_eq!(record["trigger"], "webhook");
    assert_eq!(record["outcome"], "applied");
    assert_eq!(record["changes"], 3);
    assert_eq!(record["duration_ms"], 1234);
}

#[tokio::test]
async fn metrics_expose_every_series() {
    let server = Server::start().await;
    let m = &server.metrics;
    m.reconcile("applied", Duration::from_millis(1500));
    m.reconcile("failed", Duration::from_millis(200));
    m.success_at(1_764_046_800);
    m.applied_revision("old0000");
    m.applied_revision(SHA);
    m.change(Kind::DataSource, Action::Create);
    m.change(Kind::Policy, Action::NoOp);
    m.drift(Kind::Project, 2);
    m.license(40, 50, Some(1_800_000_000));
    m.webhook("gitlab", "ignored");
    m.request("/api/v2/data", "POST", Some(200), Duration::from_millis(40));
    m.request("/api/v2/data/{key}", "DELETE", None, Duration::from_millis(5));
    m.retry("/api/v2/data", "429");

    // Prometheus asks for OpenMetrics and gets it.
    let openmetrics = server
        .http
        .get(server.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        openmetrics.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = openmetrics.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE immuta_gitops_reconciles counter\n"), "{om}");

    // Anything else (curl, promtool) gets the Prometheus text format.
    let answer = server.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &answer.text;
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");

    let p = |name: &str| format!("immuta_gitops_{name}");
    let has = |name: &str, labels: &[(&str, &str)]| sample(text, &p(name), labels);
    assert_eq!(has("reconciles_total", &[("result", "applied")]), Some(1.0));
    assert_eq!(has("reconciles_total", &[("result", "failed")]), Some(1.0));
    assert_eq!(has("reconcile_duration_seconds_count", &[]), Some(2.0));
    assert_eq!(has("reconcile_duration_seconds_sum", &[]), Some(1.7));
    assert_eq!(has("reconcile_duration_seconds_bucket", &[("le", "+Inf")]), Some(2.0));
    assert_eq!(has("last_success_timestamp_seconds", &[]), Some(1_764_046_800.0));
    assert_eq!(has("applied_revision_info", &[("revision", SHA)]), Some(1.0));
    assert_eq!(has("applied_revision_info", &[("revision", "old0000")]), None);
    assert_eq!(has("changes_total", &[("kind", "datasource"), ("action", "create")]), Some(1.0));
    assert_eq!(has("changes_total", &[("kind", "policy"), ("action", "no_change")]), Some(1.0));
    assert_eq!(has("drift_items", &[("kind", "project")]), Some(2.0));
    assert_eq!(has("license_seats_used", &[]), Some(40.0));
    assert_eq!(has("license_seats", &[]), Some(50.0));
    assert_eq!(has("license_expiry_timestamp_seconds", &[]), Some(1_800_000_000.0));
    assert_eq!(
        has("webhook_deliveries_total", &[("provider", "gitlab"), ("result", "ignored")]),
        Some(1.0)
    );
    assert_eq!(
        has(
            "api_requests_total",
            &[("endpoint", "/api/v2/data"), ("method", "POST"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(
        has(
            "api_requests_total",
            &[("endpoint", "/api/v2/data/{key}"), ("method", "DELETE"), ("status", "error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        has(
            "api_request_duration_seconds_count",
            &[("endpoint", "/api/v2/data"), ("method", "POST")]
        ),
        Some(1.0)
    );
    assert_eq!(
        has("api_retries_total", &[("endpoint", "/api/v2/data"), ("reason", "429")]),
        Some(1.0)
    );

    // Every series announces its type and help (the text format names counters `_total`).
    for (name, kind) in [
        ("reconciles_total", "counter"),
        ("reconcile_duration_seconds", "histogram"),
        ("last_success_timestamp_seconds", "gauge"),
        ("applied_revision_info", "gauge"),
        ("changes_total", "counter"),
        ("api_requests_total", "counter"),
        ("api_request_duration_seconds", "histogram"),
        ("api_retries_total", "counter"),
        ("drift_items", "gauge"),
        ("license_seats_used", "gauge"),
        ("license_seats", "gauge"),
        ("license_expiry_timestamp_seconds", "gauge"),
        ("webhook_deliveries_total", "counter"),
        ("build_info", "gauge"),
    ] {
        let line = format!("# TYPE {} {kind}\n", p(name));
        assert!(text.contains(&line), "missing {line:?}");
        assert!(text.contains(&format!("# HELP {} ", p(name))), "no help for {name}");
    }
}

#[tokio::test]
async fn secrets_never_appear_in_answers() {
    let server = Server::start().await;
    let mut seen = Vec::new();
    let body = github_push("main", SHA);
    let good = sign(GITHUB_SECRET, body.as_bytes());
    for signature in [None, Some(good.clone()), Some(sign("x", b"y"))] {
        seen.push(server.deliver(&github_headers("push", "s", signature), body.clone()).await);
    }
    seen.push(server.deliver(&github_headers("ping", "s", Some(good)), body.clone()).await);
    seen.push(server.deliver(&gitlab_headers(GITLAB_TOKEN), gitlab_push("dev")).await);
    seen.push(server.deliver(&gitlab_headers("wrong"), gitlab_push("main")).await);
    for path in ["/metrics", "/status", "/readyz", "/healthz", "/nope"] {
        seen.push(server.get(path).await);
    }
    for answer in &seen {
        let headers = format!("{:?}", answer.headers);
        for secret in [GITHUB_SECRET, GITLAB_TOKEN] {
            assert!(!answer.text.contains(secret), "secret in body: {}", answer.text);
            assert!(!headers.contains(secret), "secret in headers: {headers}");
        }
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = Server::start().await;
    assert_eq!(server.get("/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/webhook").await.status, StatusCode::METHOD_NOT_ALLOWED);
    let answer = server.http.post(server.url("/healthz")).send().await.expect("answered");
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn serve_refuses_an_empty_secret() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let (tx, _rx) = mpsc::channel(1);
    let state = ServerState {
        metrics: Arc::new(Metrics::new()),
        status: StatusHandle::default(),
        triggers: tx,
        webhook: Arc::new(WebhookConfig {
            github_secret: Some(SecretString::from("")),
            ..WebhookConfig::default()
        }),
    };
    let result = server::serve(listener, state, std::future::pending()).await;
    assert!(matches!(result, Err(server::Error::EmptySecret { provider: "github" })), "{result:?}");
}

#[tokio::test]
async fn a_closed_queue_is_503() {
    let mut server = Server::start().await;
    let (_, closed) = mpsc::channel(1);
    // Drop the receiver: the loop has stopped.
    drop(std::mem::replace(&mut server.triggers, closed));
    let answer = signed_push(&server, "late", "main").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.text);
    assert_eq!(webhook_count(&server.metrics_text().await, "github", "unavailable"), 1.0);
}
