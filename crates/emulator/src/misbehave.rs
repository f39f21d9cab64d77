//! Misbehaviours: a tenant (or whatever sits in front of it) answering in ways the API never
//! documents, for the next matching requests — the hostile world a client must survive.
//!
//! `POST /_emulator/misbehaviours` with `{"kind": K, "method"?, "pathPrefix"?, "dryRun"?,
//! "count"?, "cutAt"?}` arms a rule for the next `count` (default 1) requests matching the
//! method, the path prefix and, when given, whether the request is a dry run (`dryRun=true` in
//! the query). `GET` lists the armed rules, `DELETE` disarms them all. The kinds:
//!
//! - `echo`: `400` whose JSON `message` quotes the request body as is (so JSON-escaped on the
//!   wire), URL-encoded (`%XX`, and `+` for spaces), base64-encoded, and the query string; cut
//!   at `cutAt` bytes when given (a server that truncates its echo in the middle of a value).
//! - `echo-text`: the same message as a `text/plain` body.
//! - `echo-auth`: `403` whose message quotes the `Authorization` header.
//! - `redirect`: `302` to a login page (the request never reaches the API).
//! - `html`: `200 text/html` (a captive proxy or an SSO gateway).
//! - `empty`: `200` with an empty body.
//! - `shape`: `200` with JSON of an unexpected shape.
//! - `lose`: served normally (the write takes effect), then the connection is dropped without an
//!   answer.
//!
//! Rules apply after the front door's faults and latency, and are logged like any request.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use super::faults::ConnectionKill;
use super::http::{ApiError, ApiResult, Call, ok};
use super::json::{as_object, opt_str};
use super::state::{EmulatorState, lock};

/// How a matching request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    Echo,
    EchoText,
    EchoAuth,
    Redirect,
    Html,
    Empty,
    Shape,
    Lose,
}

impl Kind {
    const ALL: &'static [(&'static str, Kind)] = &[
        ("echo", Kind::Echo),
        ("echo-text", Kind::EchoText),
        ("echo-auth", Kind::EchoAuth),
        ("redirect", Kind::Redirect),
        ("html", Kind::Html),
        ("empty", Kind::Empty),
        ("shape", Kind::Shape),
        ("lose", Kind::Lose),
    ];
}

/// One armed rule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cut_at: Option<usize>,
    remaining: u64,
}

/// The armed rules.
#[derive(Debug, Default)]
pub(crate) struct Misbehaviours {
    rules: Vec<Rule>,
}

impl Misbehaviours {
    fn add(&mut self, body: &Value) -> Result<Rule, ApiError> {
        let obj = as_object(body, "the request body")?;
        const KNOWN: &[&str] = &["kind", "method", "pathPrefix", "dryRun", "count", "cutAt"];
        if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown field {unknown} (expected one of {})",
                KNOWN.join(", ")
            )));
        }
        let name = opt_str(obj, "kind", "")?.unwrap_or_default();
        let kind =
            Kind::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k).ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|(n, _)| *n).collect();
                ApiError::bad_request(format!("kind must be one of {}", known.join(", ")))
            })?;
        let number = |field: &str| match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("{field} must be a positive integer"))
            }),
        };
        let dry_run = match obj.get("dryRun") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ApiError::bad_request("dryRun must be a boolean")),
        };
        let rule = Rule {
            kind,
            method: opt_str(obj, "method", "")?.map(str::to_ascii_uppercase),
            path_prefix: opt_str(obj, "pathPrefix", "")?.map(str::to_owned),
            dry_run,
            cut_at: number("cutAt")?.and_then(|n| usize::try_from(n).ok()),
            remaining: number("count")?.unwrap_or(1),
        };
        self.rules.push(rule.clone());
        Ok(rule)
    }

    /// Consumes one use of the first rule matching the request.
    fn take(&mut self, method: &str, path: &str, dry_run: bool) -> Option<Rule> {
        let index = self.rules.iter().position(|r| {
            r.method.as_deref().is_none_or(|m| m == method)
                && r.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
                && r.dry_run.is_none_or(|d| d == dry_run)
        })?;
        let rule = &mut self.rules[index];
        rule.remaining -= 1;
        let taken = rule.clone();
        if rule.remaining == 0 {
            self.rules.remove(index);
        }
        Some(taken)
    }
}

/// `POST /_emulator/misbehaviours`: arms a rule; answers it.
pub(crate) async fn add(call: Call) -> ApiResult {
    let body = call.object_body()?;
    let rule = lock(&call.state.inner.misbehaviours).add(&body)?;
    ok(json!(rule))
}

/// `GET /_emulator/misbehaviours`: the armed rules.
pub(crate) async fn list(State(state): State<EmulatorState>) -> ApiResult {
    ok(json!(lock(&state.inner.misbehaviours).rules))
}

/// `DELETE /_emulator/misbehaviours`: disarms every rule.
pub(crate) async fn clear(State(state): State<EmulatorState>) -> ApiResult {
    lock(&state.inner.misbehaviours).rules.clear();
    ok(json!({ "cleared": true }))
}

/// The middleware: answers a matching request as its rule says.
pub(crate) async fn layer(
    State(state): State<EmulatorState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/_emulator") {
        return next.run(request).await;
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let dry_run = query.split('&').any(|p| p.eq_ignore_ascii_case("dryRun=true"));
    let method = request.method().as_str().to_owned();
    let Some(rule) = lock(&state.inner.misbehaviours).take(&method, &path, dry_run) else {
        return next.run(request).await;
    };
    match rule.kind {
        Kind::Lose => {
            let kill =
                request.extensions().get::<ConnectInfo<ConnectionKill>>().map(|c| c.0.clone());
            let response = next.run(request).await;
            match kill {
                Some(kill) => {
                    kill.kill();
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
                None => response,
            }
        }
        Kind::Redirect => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_static("/login?next=%2Fapi&reason=session-expired"),
            );
            response
        }
        Kind::Html => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><html><body><form action=\"/login\">Sign in</form></body></html>",
        )
            .into_response(),
        Kind::Empty => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "").into_response()
        }
        Kind::Shape => {
            (StatusCode::OK, axum::Json(json!({"status": "queued", "ok": true}))).into_response()
        }
        Kind::EchoAuth => {
            let auth = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let message = format!("permission denied for request with Authorization: {auth}");
            (StatusCode::FORBIDDEN, axum::Json(json!({"statusCode": 403, "message": message})))
                .into_response()
        }
        Kind::Echo | Kind::EchoText => {
            let body = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let raw = String::from_utf8_lossy(&body).into_owned();
            let mut message = format!(
                "invalid request {raw} (form: {}) (base64: {}) (query: {query})",
                url_encoded(&raw),
                base64::engine::general_purpose::STANDARD.encode(&body)
            );
            if let Some(cut) = rule.cut_at.filter(|c| *c < message.len()) {
                let mut end = cut;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
            }
            if rule.kind == Kind::EchoText {
                return (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain")], message)
                    .into_response();
            }
            let answer = json!({"statusCode": 400, "error": "Bad Request", "message": message});
            (StatusCode::BAD_REQUEST, axum::Json(answer)).into_response()
        }
    }
}

/// `application/x-www-form-urlencoded` encoding.
fn url_encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._*".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
