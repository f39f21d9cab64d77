//! Fault injection: failing, delaying or dropping the next matching requests, steady latency, and
//! the listener that lets a request's TCP connection be dropped without an answer.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::http::{Method, StatusCode};
use axum::serve::{IncomingStream, Listener};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::http::ApiError;
use super::json::{as_object, opt_bool, opt_str};

/// Fault rules and the steady latency.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    next_id: u64,
    /// Added to every (non-control) request.
    pub(crate) latency: Duration,
}

/// One rule: the next `remaining` matching requests get this treatment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FaultRule {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
    remaining: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<String>,
    delay_ms: u64,
    /// Served normally, then the answer is held this long (the work is done: a client that
    /// gives up before then cannot know it).
    after_ms: u64,
    drop: bool,
}

/// What to do to one request.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) delay: Duration,
    /// How long a request served normally has its answer held.
    pub(crate) after: Duration,
    pub(crate) outcome: Outcome,
}

/// The end of a faulted request.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Serve it normally (after the delay).
    Pass,
    /// Answer this error instead.
    Fail(ApiError),
    /// Close the TCP connection without an answer.
    Drop,
}

impl Faults {
    /// Adds a rule from a `POST /_emulator/faults` body.
    pub(crate) fn add(&mut self, body: &Value) -> Result<FaultRule, ApiError> {
        let obj = as_object(body, "the request body")?;
        const KNOWN: &[&str] = &[
            "method",
            "pathPrefix",
            "count",
            "status",
            "retryAfter",
            "delayMs",
            "afterMs",
            "drop",
        ];
        if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown field {unknown} (expected one of {})",
                KNOWN.join(", ")
            )));
        }
        let method = opt_str(obj, "method", "")?.map(str::to_ascii_uppercase);
        if let Some(m) = &method {
            Method::from_bytes(m.as_bytes())
                .map_err(|_| ApiError::bad_request("method must be an HTTP method"))?;
        }
        let count = match obj.get("count") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request("count must be a positive integer"))?,
        };
        let status = match obj.get("status") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| StatusCode::from_u16(*n).is_ok() && *n >= 200)
                    .ok_or_else(|| ApiError::bad_request("status must be an HTTP status code"))?,
            ),
        };
        let retry_after = match obj.get("retryAfter") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(ApiError::bad_request("retryAfter must be a string or number")),
        };
        let delay_ms = match obj.get("delayMs") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| ApiError::bad_request("delayMs must be a non-negative integer"))?,
        };
        let after_ms = match obj.get("afterMs") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| ApiError::bad_request("afterMs must be a non-negative integer"))?,
        };
        let drop = opt_bool(obj, "drop", "")?.unwrap_or(false);
        if status.is_none() && delay_ms == 0 && after_ms == 0 && !drop {
            return Err(ApiError::bad_request(
                "a fault needs at least one of status, delayMs, afterMs or drop: true",
            ));
        }
        if drop && status.is_some() {
            return Err(ApiError::bad_request("a fault cannot both drop and answer a status"));
        }
        if after_ms > 0 && (drop || status.is_some()) {
            return Err(ApiError::bad_request(
                "afterMs holds the answer of a request served normally: not with status or drop",
            ));
        }
        self.next_id += 1;
        let rule = FaultRule {
            id: self.next_id,
            method,
            path_prefix: opt_str(obj, "pathPrefix", "")?.map(str::to_owned),
            remaining: count,
            status,
            retry_after,
            delay_ms,
            after_ms,
            drop,
        };
        self.rules.push(rule.clone());
        Ok(rule)
    }

    /// Rules still armed.
    pub(crate) fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Removes every rule (latency is kept).
    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// Consumes one use of the first rule matching this request.
    pub(crate) fn take(&mut self, method: &Method, path: &str) -> Option<Fault> {
        let index = self.rules.iter().position(|r| {
            r.method.as_deref().is_none_or(|m| m == method.as_str())
                && r.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
        })?;
        let rule = &mut self.rules[index];
        rule.remaining -= 1;
        let outcome = if rule.drop {
            Outcome::Drop
        } else if let Some(code) = rule.status.and_then(|s| StatusCode::from_u16(s).ok()) {
            let mut error =
                ApiError::new(code, format!("injected fault (emulator rule {})", rule.id));
            error.retry_after = rule.retry_after.clone();
            Outcome::Fail(error)
        } else {
            Outcome::Pass
        };
        let fault = Fault {
            delay: Duration::from_millis(rule.delay_ms),
            after: Duration::from_millis(rule.after_ms),
            outcome,
        };
        if rule.remaining == 0 {
            self.rules.remove(index);
        }
        Some(fault)
    }
}

/// A TCP listener whose connections can be killed from a request handler.
#[derive(Debug)]
pub(crate) struct KillableListener(pub(crate) TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Small JSON answers: don't let Nagle hold them back.
                    let _ = stream.set_nodelay(true);
                    let killed = Arc::new(AtomicBool::new(false));
                    return (KillableStream { inner: stream, killed }, addr);
                }
                // Too many open files and the like: back off briefly, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that fails every I/O call once killed, so hyper closes it without writing.
#[derive(Debug)]
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

/// The kill switch of the connection a request came in on (request extension via
/// `ConnectInfo`).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionKill(Arc<AtomicBool>);

impl ConnectionKill {
    /// Marks the connection dead: hyper's next read or write fails and the socket is closed.
    pub(crate) fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnectionKill {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnectionKill(stream.io().killed.clone())
    }
}

impl KillableStream {
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "dropped by an emulator fault"))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
