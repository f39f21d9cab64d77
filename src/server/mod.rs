//! The reconciler's HTTP server: webhook receiver, health and readiness, Prometheus metrics and
//! `/status`.
//!
//! **Invariant:** the server never calls Immuta and never does reconcile work. It only nudges
//! the loop by sending a [`Trigger`] on a channel, and reads shared state (the [`StatusHandle`]
//! and the [`Metrics`] registry) that the loop writes.
//!
//! Routes:
//!
//! | route           | answer |
//! | --------------- | ------ |
//! | `POST /webhook` | GitHub or GitLab push deliveries, authenticated, then a nudge ([`webhook`]) |
//! | `GET /healthz`  | `200 ok` while the process runs |
//! | `GET /readyz`   | `200` once a reconcile succeeded, else `503` with the reason |
//! | `GET /metrics`  | Prometheus series: OpenMetrics if accepted, else text 0.0.4 ([`crate::metrics`]) |
//! | `GET /status`   | the [`Status`](crate::daemon::Status) as JSON, never cached |
//!
//! Unknown paths answer 404 and known paths with the wrong method 405. Every request is traced
//! (method, path, status and latency; never headers or bodies) and cut off after
//! [`REQUEST_TIMEOUT`].
//!
//! [`serve`] takes a listener the caller bound and a shutdown future (mini-redis's
//! `run(listener, shutdown)`), so tests run it on `127.0.0.1:0`.

mod conn;
pub mod health;
mod host;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{any, get, post};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use self::conn::{DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Limits};
pub use self::host::AllowedHosts;
use crate::daemon::{StatusHandle, Trigger};
use crate::metrics::Metrics;

/// The largest webhook body accepted; larger deliveries answer 413. GitHub caps its payloads at
/// 25 MB but push payloads are far smaller; 1 MiB leaves room for pushes of many commits.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// How long one request may take before it is answered 408. GitHub gives up on a receiver after
/// about 10 s; every route here answers in microseconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A webhook secret or token is configured but empty: anyone could sign with it.
    #[error("the {provider} webhook secret is empty; unset it or give a real secret")]
    EmptySecret {
        /// `github` or `gitlab`.
        provider: &'static str,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How webhook deliveries are authenticated and filtered.
///
/// With neither `github_secret` nor `gitlab_token` set the receiver is **disabled**:
/// `/webhook` answers 404 to every method, and the reconciler relies on polling alone.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    /// The GitHub webhook secret: deliveries must carry `X-Hub-Signature-256`, the HMAC-SHA256
    /// of the raw body under this secret. `None` rejects GitHub deliveries.
    pub github_secret: Option<SecretString>,
    /// The GitLab secret token: deliveries must carry it in `X-Gitlab-Token`. `None` rejects
    /// GitLab deliveries.
    pub gitlab_token: Option<SecretString>,
    /// The tracked branch (`main`, or a full `refs/heads/main`): only pushes to it nudge the
    /// loop; pushes to other refs are acknowledged and ignored. `None` = a push to any ref
    /// nudges.
    pub branch: Option<String>,
}

impl WebhookConfig {
    /// Whether at least one provider is configured (otherwise `/webhook` answers 404).
    pub fn is_enabled(&self) -> bool {
        self.github_secret.is_some() || self.gitlab_token.is_some()
    }

    /// Refuses empty secrets: an HMAC under an empty key, or an empty token, authenticates
    /// nobody in particular.
    pub fn validate(&self) -> Result<()> {
        use secrecy::ExposeSecret;
        if self.github_secret.as_ref().is_some_and(|s| s.expose_secret().is_empty()) {
            return Err(Error::EmptySecret { provider: "github" });
        }
        if self.gitlab_token.as_ref().is_some_and(|s| s.expose_secret().is_empty()) {
            return Err(Error::EmptySecret { provider: "gitlab" });
        }
        Ok(())
    }
}

/// What every handler shares: cloned into each request (all fields are cheap handles).
#[derive(Clone)]
pub struct ServerState {
    /// The metrics registry, also written by the loop and the Immuta client.
    pub metrics: Arc<Metrics>,
    /// The reconciler's status, written by the loop; read by `/status` and `/readyz`.
    pub status: StatusHandle,
    /// The loop's trigger queue. The server only ever sends [`Trigger::Webhook`], with
    /// `try_send`: a full queue means a reconcile is already pending, and the delivery
    /// coalesces into it.
    pub triggers: mpsc::Sender<Trigger>,
    /// Webhook authentication and the tracked branch.
    pub webhook: Arc<WebhookConfig>,
}

/// Every route, with tracing, the request timeout and the webhook body limit.
pub fn router(state: ServerState) -> Router {
    let webhook = if state.webhook.is_enabled() {
        post(webhook::receive).layer(RequestBodyLimitLayer::new(WEBHOOK_BODY_LIMIT))
    } else {
        any(webhook::disabled)
    };
    Router::new()
        .route("/webhook", webhook)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/status", get(health::status))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        // The default span records method, URI and version; headers (which carry the
        // signature or the GitLab token) and bodies are never recorded.
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How the server guards itself (`run` flags): connection limits and the Host names its read
/// endpoints answer.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Connection limit and header read timeout ([`Limits`]).
    pub limits: Limits,
    /// Host names `/healthz`, `/readyz`, `/metrics` and `/status` answer besides IP literals
    /// and `localhost` ([`AllowedHosts`]).
    pub allowed_hosts: AllowedHosts,
}

/// Serves [`router`] on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish; with the default [`ServeOptions`].
///
/// Refuses to start with an empty webhook secret ([`WebhookConfig::validate`]).
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_with(listener, state, ServeOptions::default(), shutdown).await
}

/// [`serve`] with `options`: idle and slow connections closed, at most
/// [`Limits::max_connections`] open (the oldest shut down for the newest), and the read
/// endpoints refusing Host names that are not expected ([`AllowedHosts`]: DNS-rebinding
/// protection).
pub async fn serve_with(
    listener: TcpListener,
    state: ServerState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    state.webhook.validate()?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, webhook = state.webhook.is_enabled(), "HTTP server listening");
    }
    let hosts = Arc::new(options.allowed_hosts);
    let app = router(state).layer(axum::middleware::from_fn(move |req, next| {
        host::check(Arc::clone(&hosts), req, next)
    }));
    conn::run(listener, app, options.limits, shutdown).await;
    Ok(())
}
