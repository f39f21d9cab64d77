//! Connections: the accept loop of [`serve_with`](super::serve_with), which keeps the server
//! answering however many clients connect and however slowly they talk.
//!
//! `axum::serve` keeps every connection for as long as the client likes: 300 idle connections
//! held open by a scanner (or a misbehaving proxy) were enough to hang `/healthz`. Here:
//!
//! - **Header read timeout** ([`Limits::header_timeout`]): a connection that has not sent a whole
//!   request head within it is closed, whether it sends nothing at all (idle, also between
//!   keep-alive requests) or trickles bytes (slowloris). Bodies are bounded by the router's
//!   request timeout.
//! - **Connection limit** ([`Limits::max_connections`]): at the limit, a new connection is
//!   still accepted and the *oldest* one is shut down (gracefully: a request in flight
//!   finishes, an idle connection closes at once). So a flood of idle connections can never
//!   lock a probe out: the newest client is always served.
//!
//! Only HTTP/1.1 is served (probes, Prometheus and webhook senders all speak it).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Default for [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Default for [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection shut down (at the limit, or on shutdown) may take to finish the
/// request in flight before it is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connection limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once; at the limit the oldest is shut down for the newest.
    pub max_connections: usize,
    /// Longest wait for a request head, on a new connection and between keep-alive requests.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: DEFAULT_MAX_CONNECTIONS, header_timeout: DEFAULT_HEADER_TIMEOUT }
    }
}

/// The open connections, oldest first, each with the token that shuts it down.
#[derive(Default)]
struct Open {
    next: u64,
    live: BTreeMap<u64, CancellationToken>,
}

/// Serves `app` on `listener` until `shutdown`, within `limits`; then stops accepting, shuts
/// every connection down gracefully and waits for them (at most [`SHUTDOWN_GRACE`] each).
pub(super) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a little, never
                // spin, never stop serving.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, token) = {
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            while open.live.len() >= limits.max_connections.max(1) {
                match open.live.pop_first() {
                    Some((_, oldest)) => oldest.cancel(),
                    None => break,
                }
            }
            let id = open.next;
            open.next += 1;
            let token = stop.child_token();
            open.live.insert(id, token.clone());
            (id, token)
        };
        let service = TowerToHyperService::new(app.clone());
        let open = Arc::clone(&open);
        tasks.spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
                }
            }
            open.lock().unwrap_or_else(PoisonError::into_inner).live.remove(&id);
        });
    }
    drop(listener);
    stop.cancel();
    while tasks.join_next().await.is_some() {}
}
