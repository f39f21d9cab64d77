//! The REST client (`live::Client`) against the emulator over real HTTP: the token exchange goes
//! through the same retries and observer as every request, and `Retry-After` is waited for (and
//! capped).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use immuta_gitops::emulator::ADMIN_KEY;
use immuta_gitops::live::retry::RetryPolicy;
use immuta_gitops::live::{Client, ClientConfig, Observer, Request};
use serde_json::{Value, json};

use crate::support::tenant::Env;

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
