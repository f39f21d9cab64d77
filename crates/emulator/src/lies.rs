//! A tenant that lies in its listings, and the guard of the test controls.
//!
//! **Lying listings** (`PUT /_emulator/lies`, `DELETE /_emulator/lies`): a proxy, a cache or a
//! broken tenant may answer a V1 listing with fewer items than exist (empty, or capped at a
//! page), and with a `count` that agrees with what it sent, so no client can tell from the
//! listing alone. Each rule names an exact path (`/policy/global`, `/project`,
//! `/governance/purpose`, `/dataSource`, `/admin/license`) and how many items to keep; the
//! answer's items are cut to that many and its count set to match. Reads of one object by id
//! (`GET /policy/global/{id}`) still tell the truth.
//!
//! **The controls' guard**: `/_emulator/` changes a tenant, so a web page must not be able to
//! drive it. A request with an `Origin` (or `Sec-Fetch-Site: cross-site`) from elsewhere than
//! the emulator itself is refused (403), and a request that changes something with a body must
//! say `Content-Type: application/json` (415): `text/plain`, forms and multipart bodies, which
//! browsers send cross-origin without asking, are refused.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::http::ApiError;
use super::state::{EmulatorState, lock};

/// Keys under which listings hold their items.
const ITEM_KEYS: &[&str] =
    &["hits", "projects", "purposes", "dataSources", "results", "data", "items", "licenses"];

/// The largest listing answer rewritten.
const MAX_LISTING: usize = 64 * 1024 * 1024;

/// One lie: the listing at `path` shows at most `keep` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lie {
    path: String,
    keep: usize,
}

/// The lies told, by path.
#[derive(Debug, Default)]
pub(crate) struct Lies(Vec<Lie>);

/// `PUT /_emulator/lies` `{"rules": [{"path": "/policy/global", "keep": 0}]}`: replaces the
/// lies told.
pub(crate) async fn put_lies(
    State(state): State<EmulatorState>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, m.to_owned());
    let mut rules = Vec::new();
    for rule in
        body.get("rules").and_then(Value::as_array).ok_or_else(|| bad("expected {rules: [...]}"))?
    {
        let path =
            rule.get("path").and_then(Value::as_str).ok_or_else(|| bad("a rule needs a `path`"))?;
        let keep = rule.get("keep").and_then(Value::as_u64).unwrap_or(0);
        rules
            .push(Lie { path: path.to_owned(), keep: usize::try_from(keep).unwrap_or(usize::MAX) });
    }
    let n = rules.len();
    lock(&state.inner.lies).0 = rules;
    Ok(Json(json!({ "rules": n })))
}

/// `DELETE /_emulator/lies`: the listings tell the truth again.
pub(crate) async fn clear_lies(State(state): State<EmulatorState>) -> Json<Value> {
    lock(&state.inner.lies).0.clear();
    Json(json!({ "rules": 0 }))
}

/// Middleware over the whole API: cuts the listings a lie names.
pub(crate) async fn lie(
    State(state): State<EmulatorState>,
    request: Request,
    next: Next,
) -> Response {
    let keep = if request.method() == Method::GET {
        let path = request.uri().path();
        lock(&state.inner.lies).0.iter().find(|l| l.path == path).map(|l| l.keep)
    } else {
        None
    };
    let response = next.run(request).await;
    let Some(keep) = keep else { return response };
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LISTING).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut listing) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    cut(&mut listing, keep);
    let mut response = Response::from_parts(parts, Body::from(listing.to_string()));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// Cuts a listing's items to `keep` and makes its count agree.
fn cut(listing: &mut Value, keep: usize) {
    match listing {
        Value::Array(items) => items.truncate(keep),
        Value::Object(map) => {
            let mut kept = None;
            for key in ITEM_KEYS {
                if let Some(Value::Array(items)) = map.get_mut(*key) {
                    items.truncate(keep);
                    kept = Some(items.len());
                    break;
                }
            }
            if let Some(n) = kept {
                for key in ["count", "total", "totalCount"] {
                    if map.contains_key(key) {
                        map.insert(key.to_owned(), json!(n));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Middleware over `/_emulator/`: refuses cross-origin requests and bodies that are not JSON.
pub(crate) async fn guard(request: Request, next: Next) -> Response {
    if let Some(refusal) = refusal(request.method(), request.headers()) {
        return refusal.into_response();
    }
    next.run(request).await
}

fn refusal(method: &Method, headers: &HeaderMap) -> Option<ApiError> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).unwrap_or_default();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = [format!("http://{host}"), format!("https://{host}")];
        if host.is_empty() || !origin.to_str().is_ok_and(|o| own.iter().any(|x| x == o)) {
            return Some(ApiError::new(
                StatusCode::FORBIDDEN,
                "the emulator's controls refuse cross-origin requests".to_owned(),
            ));
        }
    }
    if text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "the emulator's controls refuse cross-origin requests".to_owned(),
        ));
    }
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let has_body = headers.contains_key(header::CONTENT_TYPE)
        || text(header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    if changes && has_body {
        let json = text(header::CONTENT_TYPE).is_some_and(|t| {
            let essence = t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            essence == "application/json"
        });
        if !json {
            return Some(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the emulator's controls take `Content-Type: application/json` bodies only"
                    .to_owned(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_cut_and_their_counts_agree() {
        let mut v = json!({"hits": [1, 2, 3], "count": 3, "facets": {}});
        cut(&mut v, 1);
        assert_eq!(v, json!({"hits": [1], "count": 1, "facets": {}}));
        let mut v = json!([1, 2]);
        cut(&mut v, 0);
        assert_eq!(v, json!([]));
    }

    #[test]
    fn cross_origin_and_non_json_control_requests_are_refused() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let host = ("host", "127.0.0.1:9000");
        let ok = headers(&[host, ("content-type", "application/json; charset=utf-8")]);
        assert!(refusal(&Method::PUT, &ok).is_none());
        assert!(refusal(&Method::POST, &headers(&[host])).is_none());
        assert!(
            refusal(&Method::POST, &headers(&[host, ("origin", "http://127.0.0.1:9000")]))
                .is_none()
        );
        for bad in [
            headers(&[host, ("origin", "https://evil.example")]),
            headers(&[host, ("origin", "null")]),
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("content-type", "text/plain")]),
            headers(&[host, ("content-type", "application/x-www-form-urlencoded")]),
            headers(&[host, ("content-length", "12")]),
        ] {
            assert!(refusal(&Method::POST, &bad).is_some(), "{bad:?}");
        }
        assert!(
            refusal(&Method::GET, &headers(&[host, ("origin", "https://evil.example")])).is_some()
        );
    }
}
