//! The Immuta REST client: authentication (`auth.rs`), requests (`request.rs`), retries and
//! listings.
//!
//! Requests carry `Authorization: Bearer <api key>`; on a `401` the client exchanges the key for
//! a session token (`POST /bim/apikey/authenticate`) once and retries with the token, which it
//! keeps for later requests (and exchanges again when it expires). The exchange is a request like
//! any other: classified, retried and reported to the [`Observer`] the same way. License calls
//! use a separate
//! admin key when one is configured, since tenants can make `GOVERNANCE` and
//! `APPLICATION_ADMIN` mutually exclusive.
//!
//! Which form of the credential the tenant takes is settled once per credential, before its
//! first request: `GET /bim/rpc/user/current` with `Bearer <key>`. A `401`, or a `500` (some
//! tenants answer a credential they do not take with a server error: fh-immuta-utils'
//! `handle_500`, "some of the API endpoints don't handle OAuth correctly"), is answered by the
//! exchange, so every later request carries the token; otherwise the key itself is used. The
//! requests of a command wait for this one look, so they neither race each other to the
//! exchange nor take a real `500` later for a refused key.
//!
//! Every request has a deadline: the configured timeout, a longer one for a data-source post
//! that asks Immuta to `wait` (the wait plus the timeout), or none for a wait below zero (then
//! only cancellation ends it). Writes are not re-sent after a timeout or a dropped connection:
//! the tenant may have carried them out ([`Error::may_have_taken_effect`]); `live::write`
//! asks a dry run first.
//!
//! V1 listings are read by [`Client::list`] (see `listing/`: every envelope, paging that a
//! server ignores or caps, concurrent pages once the count is known, a hard page limit).
//!
//! A tenant that never answered fails fast: a refused connection or a name that does not
//! resolve is tried once more, not `max_retries` times, and once a request has given up on
//! such a tenant every other request of the client (in flight, or started within the next
//! 15 s) fails with the same error instead of retrying on its own; one error, within a second. Retries are logged at
//! debug level; callers count them through the [`Observer`] and report them once.
//!
//! API keys and tokens are held as `SecretString`s, sent in headers marked sensitive, and never
//! logged; they and the secret values of every request are registered with [`crate::redact`]
//! before the first byte is sent, and the userinfo of the tenant URL is dropped (and
//! registered). Error messages quote the server's body only after it went through the
//! redaction layer, whole, before it is cut to length: an answer echoing the request or the
//! `Authorization` header shows `(sensitive)`.
//!
//! Redirects are not followed: a `3xx` is an error (a login page or a proxy answered, not the
//! Immuta API).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use backon::Retryable;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, DATE, HeaderValue, LOCATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

mod auth;
mod request;

use self::auth::Credential;
pub use self::auth::{ProbeAuth, Role};
pub use self::request::{Deadline, RawResponse, Request, Response, encode_segment};
use super::listing::{self, Ask, Limits, Listed, Page};
use super::retry::{self, Attempt, Decision, RetryPolicy};
use super::{Error, Result};

/// How to reach a tenant.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Tenant URL, e.g. `https://acme.hosted.immutacloud.com`.
    pub base_url: String,
    /// API key for data sources, policies, projects and purposes.
    pub api_key: SecretString,
    /// API key for the license endpoints, when different.
    pub admin_api_key: Option<SecretString>,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// How V1 listings are paged.
    pub listing: Limits,
}

impl ClientConfig {
    /// A configuration with default timeouts and retries.
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key,
            admin_api_key: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            listing: Limits::default(),
        }
    }
}

/// Receives one event per HTTP request and per retry (metrics, benchmarks).
pub trait Observer: Send + Sync {
    /// A request finished (after its retries): endpoint template, method, final status (None on
    /// a transport failure), duration of the last attempt.
    fn request(&self, endpoint: &str, method: &str, status: Option<u16>, took: Duration);
    /// A request is retried, for `reason` (`429`, `503`, `timeout`, `connection`...).
    fn retry(&self, endpoint: &str, reason: &str);
}

struct NoObserver;

impl Observer for NoObserver {
    fn request(&self, _: &str, _: &str, _: Option<u16>, _: Duration) {}
    fn retry(&self, _: &str, _: &str) {}
}

/// A client for one tenant. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    governance: Credential,
    admin: Option<Credential>,
    policy: RetryPolicy,
    timeout: Duration,
    listing: Limits,
    observer: Arc<dyn Observer>,
    /// Whether the tenant ever answered (any HTTP status).
    answered: AtomicBool,
    /// Set when a request gave up on a tenant that never answered: every request for the next
    /// [`UNREACHABLE_FOR`] fails at once with this error (URL and message of
    /// [`Error::Transport`]); a long-lived client (the reconciler) tries again after it.
    unreachable: std::sync::Mutex<Option<(String, String, Instant)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

/// What one HTTP exchange gave: status, `Retry-After`, `Date`, body.
struct Exchanged {
    status: StatusCode,
    retry_after: Option<String>,
    /// Where a redirect points.
    location: Option<String>,
    date: Option<SystemTime>,
    body: Vec<u8>,
}

/// Why one attempt failed.
#[derive(Debug)]
enum AttemptError {
    Retry { reason: &'static str, after: Option<Duration>, error: Error },
    Fatal(Error),
}

impl AttemptError {
    fn into_error(self) -> Error {
        match self {
            AttemptError::Retry { error, .. } | AttemptError::Fatal(error) => error,
        }
    }
}

/// `error`, retryable when the classifier says so.
fn decided(decision: Decision, error: Error) -> AttemptError {
    match decision {
        Decision::Retry { reason, after } => AttemptError::Retry { reason, after, error },
        Decision::Stop => AttemptError::Fatal(error),
    }
}

/// How long requests fail at once after one gave up on a tenant that never answered: long
/// enough for the rest of one command's reads, short against a reconciler's interval.
const UNREACHABLE_FOR: Duration = Duration::from_secs(15);

impl Client {
    /// A client for the tenant in `config`.
    pub fn new(config: ClientConfig) -> Result<Self> {
        Self::with_observer(config, Arc::new(NoObserver))
    }

    /// A client reporting every request to `observer`.
    pub fn with_observer(config: ClientConfig, observer: Arc<dyn Observer>) -> Result<Self> {
        let base =
            crate::redact::strip_userinfo(config.base_url.trim()).trim_end_matches('/').to_owned();
        crate::redact::register(config.api_key.expose_secret());
        if let Some(admin) = &config.admin_api_key {
            crate::redact::register(admin.expose_secret());
        }
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config(format!(
                "the Immuta URL `{base}` must start with https:// (or http:// for a local emulator)"
            )));
        }
        // Timeouts are per request (`Deadline`): a data-source post may wait longer, or forever.
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            // A redirect is a login page or a proxy, never the Immuta API: it is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("immuta-gitops/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("http://") {
            // Plain HTTP (the sandbox, a local emulator) needs no trust store: do not load the
            // system's CA certificates, which an image may lack and which cost CPU every run.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder.build().map_err(|e| {
            let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
            Error::Config(format!(
                "cannot build the HTTPS client{cause}; install the system's CA certificates \
                 (Debian: ca-certificates) or point SSL_CERT_FILE at a PEM bundle"
            ))
        })?;
        let credential = |k: SecretString| Credential {
            api_key: k,
            token: Mutex::new(None),
            settled: AtomicBool::new(false),
            settling: Mutex::new(()),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                governance: credential(config.api_key),
                admin: config.admin_api_key.map(credential),
                policy: config.retry,
                timeout: config.timeout,
                listing: config.listing,
                observer,
                answered: AtomicBool::new(false),
                unreachable: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The tenant URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The timeout of one request (unless it sets its own deadline).
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Whether a license-admin key of its own is configured.
    pub fn has_admin_key(&self) -> bool {
        self.inner.admin.is_some()
    }

    /// Sends a request with retries. Any status below 400 is returned; `404` is returned too
    /// (callers decide whether "not found" is fine); other statuses are errors.
    pub async fn send(&self, req: &Request<'_>) -> Result<Response> {
        let raw = self.send_raw(req).await?;
        let body = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
        Ok(Response { status: raw.status, body })
    }

    /// As [`Client::send`], with the body as it came (and the server's clock).
    pub async fn send_raw(&self, req: &Request<'_>) -> Result<RawResponse> {
        self.retrying(req, || self.attempt(req)).await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are used up: the one
    /// retry loop of the client. Whether to retry is [`retry::classify`]'s decision (carried by
    /// the [`AttemptError`]); how long to wait is [`retry::wait`]'s; every retry is logged and
    /// reported to the observer.
    async fn retrying<T, F, Fut>(&self, req: &Request<'_>, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, AttemptError>>,
    {
        if let Some(error) = self.unreachable() {
            return Err(error);
        }
        let policy = self.inner.policy;
        let observer = &self.inner.observer;
        let retried = AtomicUsize::new(0);
        let result = attempt
            .retry(retry::Schedule::new(policy))
            .sleep(tokio::time::sleep)
            .when(|e: &AttemptError| {
                let AttemptError::Retry { reason, .. } = e else { return false };
                // Fail fast (module docs): another request gave up on this tenant, or it never
                // answered and refuses the connection after one more try.
                let never_answered = !self.inner.answered.load(Ordering::Acquire);
                let tries = retried.fetch_add(1, Ordering::Relaxed);
                self.unreachable().is_none()
                    && !(never_answered && *reason == "connection" && tries >= 1)
            })
            .adjust(move |e, next| {
                // `next` is None once the retries are used up: keep it so, or backon retries forever.
                next.map(|backoff| match e {
                    AttemptError::Retry { after, .. } => retry::wait(&policy, *after, backoff),
                    AttemptError::Fatal(_) => backoff,
                })
            })
            .notify(|e, wait| {
                if let AttemptError::Retry { reason, error, .. } = e {
                    observer.retry(req.endpoint, reason);
                    tracing::debug!(
                        endpoint = req.endpoint,
                        method = %req.method,
                        reason,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "retrying Immuta request: {error}"
                    );
                }
            })
            .await;
        let error = match result {
            Ok(value) => return Ok(value),
            Err(e) => e.into_error(),
        };
        if let Error::Transport { url, message } = &error
            && !self.inner.answered.load(Ordering::Acquire)
            && let Ok(mut latch) = self.inner.unreachable.lock()
        {
            *latch = Some((url.clone(), message.clone(), Instant::now()));
        }
        Err(error)
    }

    /// The error every request gets once the tenant is known to be unreachable.
    fn unreachable(&self) -> Option<Error> {
        let latch = self.inner.unreachable.lock().ok()?;
        latch.as_ref().filter(|(_, _, at)| at.elapsed() < UNREACHABLE_FOR).map(
            |(url, message, _)| Error::Transport { url: url.clone(), message: message.clone() },
        )
    }

    async fn attempt(&self, req: &Request<'_>) -> std::result::Result<RawResponse, AttemptError> {
        let credential = self.credential(req.role);
        self.settle(credential).await?;
        // A 401 is answered by exchanging the key for a token and trying again. Twice at most:
        // once when the key itself is refused as a bearer, once more when the token expires
        // while the request waits (a real server's token lifetime can run out mid-run).
        let mut exchanges = 0;
        loop {
            let auth = self.authorization(credential).await;
            let answer = self.observed(req, Some(&auth)).await?;
            let status = answer.status;
            if status == StatusCode::UNAUTHORIZED && exchanges < 2 {
                exchanges += 1;
                self.exchange(credential).await?;
                continue;
            }
            if status.is_redirection() {
                return Err(AttemptError::Fatal(self.redirected(req, status, answer.location)));
            }
            if status.is_success() || status == StatusCode::NOT_FOUND {
                return Ok(RawResponse { status, date: answer.date, body: answer.body });
            }
            return Err(self.failed(req, status, answer.retry_after.as_deref(), &answer.body));
        }
    }

    /// One HTTP exchange, reported to the observer; a transport failure is classified.
    async fn observed(
        &self,
        req: &Request<'_>,
        auth: Option<&str>,
    ) -> std::result::Result<Exchanged, AttemptError> {
        let started = Instant::now();
        let outcome = self.once(req, auth).await;
        let took = started.elapsed();
        let method = req.method.as_str();
        match outcome {
            Ok(answer) => {
                self.inner.answered.store(true, Ordering::Release);
                self.inner.observer.request(
                    req.endpoint,
                    method,
                    Some(answer.status.as_u16()),
                    took,
                );
                Ok(answer)
            }
            Err(e) => {
                self.inner.observer.request(req.endpoint, method, None, took);
                let attempt =
                    Attempt::Transport { timeout: e.is_timeout(), connect: e.is_connect() };
                let decision = if req.resend {
                    retry::classify(attempt, SystemTime::now())
                } else {
                    retry::classify_write(attempt, SystemTime::now())
                };
                let url = self.url(&req.path);
                let message = transport_message(&e);
                let error = if req.resend || e.is_connect() {
                    Error::Transport { url, message }
                } else {
                    Error::NoAnswer {
                        method: req.method.to_string(),
                        path: req.path.clone(),
                        message,
                    }
                };
                Err(decided(decision, error))
            }
        }
    }

    /// The error of a redirect: the answer is not the tenant's (a login page, an SSO gateway, a
    /// captive proxy).
    fn redirected(&self, req: &Request<'_>, status: StatusCode, location: Option<String>) -> Error {
        let to = location
            .map(|l| {
                format!(
                    " to `{}`",
                    truncate(&crate::redact::redacted(&crate::redact::strip_userinfo(&l)), 200)
                )
            })
            .unwrap_or_default();
        Error::Status {
            method: req.method.to_string(),
            path: req.path.clone(),
            status: status.as_u16(),
            message: format!(
                "the answer is a redirect{to}, not an answer of the Immuta API (a login page, an SSO \
                 gateway or a proxy?); check the tenant URL and that nothing intercepts the API"
            ),
        }
    }

    /// The error of a failed status, retryable or not as the classifier decides.
    fn failed(
        &self,
        req: &Request<'_>,
        status: StatusCode,
        retry_after: Option<&str>,
        body: &[u8],
    ) -> AttemptError {
        let message = server_message(body);
        let classify = if req.resend { retry::classify } else { retry::classify_write };
        let error = match status.as_u16() {
            401 => Error::Unauthorized { url: self.url(&req.path), message },
            403 => {
                Error::Forbidden { method: req.method.to_string(), path: req.path.clone(), message }
            }
            code => Error::Status {
                method: req.method.to_string(),
                path: req.path.clone(),
                status: code,
                message,
            },
        };
        decided(classify(Attempt::Status { status, retry_after }, SystemTime::now()), error)
    }

    async fn once(
        &self,
        req: &Request<'_>,
        auth: Option<&str>,
    ) -> std::result::Result<Exchanged, reqwest::Error> {
        // Known before the first byte leaves: any answer quoting them is redacted.
        crate::redact::register_all(req.secrets);
        let mut builder = self.inner.http.request(req.method.clone(), self.url(&req.path));
        match req.deadline {
            Deadline::Default => builder = builder.timeout(self.inner.timeout),
            Deadline::Within(d) => builder = builder.timeout(d),
            Deadline::Unbounded => {}
        }
        if let Some(auth) = auth {
            let mut header =
                HeaderValue::from_str(auth).unwrap_or_else(|_| HeaderValue::from_static(""));
            header.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, header);
        }
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(body) = req.body {
            builder = builder.json(body);
        }
        let resp = builder.send().await?;
        let status = resp.status();
        let header = |name| resp.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        let retry_after = header(RETRY_AFTER).map(str::to_owned);
        let location = header(LOCATION).map(str::to_owned);
        let date = header(DATE).and_then(|d| httpdate::parse_http_date(d).ok());
        let body = resp.bytes().await?.to_vec();
        Ok(Exchanged { status, retry_after, location, date, body })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.inner.base, path)
    }

    /// Sends and requires a success status (404 is an error too).
    pub async fn send_ok(&self, req: &Request<'_>) -> Result<Value> {
        let resp = self.send(req).await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(Error::Status {
                method: req.method.to_string(),
                path: req.path.clone(),
                status: 404,
                message: server_message_value(&resp.body),
            });
        }
        Ok(resp.body)
    }

    /// Every item of a paged V1 listing at `path` (see `listing.rs`): any envelope, pages the
    /// server caps or ignores, the pages after the first fetched concurrently once a count says
    /// how many there are, and a hard page limit. `query` is sent with every page; `admin` uses
    /// the license-admin key.
    pub async fn list<T: DeserializeOwned + Listed>(
        &self,
        path: &str,
        endpoint: &'static str,
        query: &[(&'static str, String)],
        admin: bool,
    ) -> Result<Vec<T>> {
        self.list_mapped(path, endpoint, query, admin, Ok).await
    }

    /// As [`Client::list`], each item turned by `map` as its page arrives (a listing of tens
    /// of thousands of items is never held whole in its wire form).
    pub async fn list_mapped<T: DeserializeOwned + Listed, U>(
        &self,
        path: &str,
        endpoint: &'static str,
        query: &[(&'static str, String)],
        admin: bool,
        map: impl Fn(T) -> Result<U>,
    ) -> Result<Vec<U>> {
        let fetch = |ask| self.page(path, endpoint, query, ask, admin);
        listing::read_mapped(path, self.inner.listing, fetch, map).await
    }

    /// One page of a V1 listing.
    pub async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        endpoint: &'static str,
        query: &[(&'static str, String)],
        ask: Ask,
        admin: bool,
    ) -> Result<Page<T>> {
        let mut req = Request::get(path, endpoint);
        req.query = query.to_vec();
        if let Ask::Page { offset, size } = ask {
            req = req.query("size", size).query("offset", offset);
        }
        if admin {
            req = req.admin();
        }
        let raw = self.send_raw(&req).await?;
        if raw.status == StatusCode::NOT_FOUND {
            return Err(Error::Status {
                method: "GET".into(),
                path: path.to_owned(),
                status: 404,
                message: server_message(&raw.body),
            });
        }
        listing::parse(path, &raw.body)
    }
}

/// The items and total count of a small answer that may be a listing (a bare array, or an
/// object with the items under one of `listing::ITEM_KEYS`).
pub(super) fn envelope(body: &Value) -> Option<(Vec<Value>, Option<usize>)> {
    match body {
        Value::Array(items) => Some((items.clone(), None)),
        Value::Object(m) => {
            let items =
                listing::ITEM_KEYS.iter().find_map(|k| m.get(*k).and_then(Value::as_array))?;
            let count = listing::COUNT_KEYS
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_u64))
                .and_then(|c| usize::try_from(c).ok());
            Some((items.clone(), count))
        }
        _ => None,
    }
}

/// A transport error and its causes on one line, without the URL that [`Error::Transport`]
/// names already (reqwest's "error sending request for url (...)").
fn transport_message(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = e.to_string();
    if let Some(url) = e.url() {
        message = message.replace(&format!(" for url ({url})"), "");
    }
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    crate::redact::redacted(&message)
}

/// The longest server message quoted in an error.
const MESSAGE_LIMIT: usize = 500;

/// The message of an error body: the whole body through the redaction layer first, then its
/// `message` (or `error`, `detail`), or the text itself, cut to [`MESSAGE_LIMIT`] bytes.
fn server_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => server_message_value(&v),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = crate::redact::redact(text.trim());
            if text.is_empty() { "(no message)".to_owned() } else { truncate(&text, MESSAGE_LIMIT) }
        }
    }
}

/// As [`server_message`], for a body already parsed.
fn server_message_value(v: &Value) -> String {
    let v = crate::redact::redact_value(v.clone());
    for key in ["message", "error", "detail"] {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            return truncate(s, MESSAGE_LIMIT);
        }
    }
    if v.is_null() { "(no message)".to_owned() } else { truncate(&v.to_string(), MESSAGE_LIMIT) }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelopes_are_read_tolerantly() {
        assert_eq!(envelope(&json!([1, 2])), Some((vec![json!(1), json!(2)], None)));
        assert_eq!(envelope(&json!({"hits": [1], "count": 5})), Some((vec![json!(1)], Some(5))));
        assert_eq!(envelope(&json!({"purposes": [], "count": 0})), Some((vec![], Some(0))));
        assert_eq!(
            envelope(&json!({"projects": [2], "count": 1})),
            Some((vec![json!(2)], Some(1)))
        );
        assert_eq!(envelope(&json!({"other": 1})), None);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("my key/α"), "my%20key%2F%CE%B1");
    }

    #[test]
    fn server_messages_are_redacted_before_they_are_cut() {
        crate::redact::register("client-canary\"pw/7");
        let m = server_message(
            br#"{"statusCode":400,"message":"bad password client-canary\"pw/7 for user"}"#,
        );
        assert_eq!(m, "bad password (sensitive) for user");
        // An echo of the request, cut by the server in the middle of the secret.
        let body = format!(
            "{{\"body\":\"{}{{\\\"password\\\":\\\"client-canary\\\\\\\"pw",
            "x".repeat(440)
        );
        let m = server_message(body.as_bytes());
        assert!(!m.contains("client-ca"), "{m}");
        assert!(m.contains("(sensitive)"), "{m}");
        assert_eq!(server_message(b""), "(no message)");
    }
}
