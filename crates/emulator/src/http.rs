//! HTTP plumbing shared by the handlers: the request as a handler reads it ([`Call`]), the JSON
//! error body, request bodies (JSON or YAML) and query parameters.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Permission;
use super::auth::{Caller, authorize};
use super::json::canonical;
use super::secrets::{Redaction, Secrets};
use super::state::EmulatorState;

/// One request as a handler reads it: the shared state, the query, the headers and the body,
/// extracted together so that a handler's signature names only what is particular to it (a path
/// parameter).
pub(crate) struct Call {
    pub(crate) state: EmulatorState,
    pub(crate) query: Query,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl FromRequest<EmulatorState> for Call {
    /// Axum's own rejections (of the query and the body), answered as they would be by its
    /// `Query` and `Bytes` extractors.
    type Rejection = Response;

    async fn from_request(request: Request, state: &EmulatorState) -> Result<Call, Response> {
        let (mut parts, body) = request.into_parts();
        let axum::extract::Query(query) =
            axum::extract::Query::<Query>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Call { state: state.clone(), query, headers, body })
    }
}

/// A documented query parameter a handler accepts without acting on it: only validated.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param {
    /// A boolean ([`query_bool`]).
    Flag(&'static str),
    /// A number ([`query_number`]).
    Number(&'static str),
}

/// A V2 call past its prologue: the caller holds the permission and the query is valid.
pub(crate) struct V2 {
    pub(crate) caller: Caller,
    pub(crate) dry_run: bool,
}

impl Call {
    /// Authenticates the caller and checks that its key holds `needed` (if any); `action` names
    /// the call in the 403 message.
    pub(crate) fn authorize(&self, needed: Option<Permission>, action: &str) -> ApiResult<Caller> {
        authorize(&self.state, &self.headers, needed, action)
    }

    /// The prologue every V2 call shares, in this order: the caller holds `needed`, `dryRun` is
    /// read, and the other documented query parameters (`params`) are valid.
    pub(crate) fn v2(&self, needed: Permission, action: &str, params: &[Param]) -> ApiResult<V2> {
        let caller = self.authorize(Some(needed), action)?;
        let dry_run = query_bool(&self.query, "dryRun")?;
        for param in params {
            match *param {
                Param::Flag(name) => query_bool(&self.query, name).map(drop)?,
                Param::Number(name) => query_number(&self.query, name).map(drop)?,
            }
        }
        Ok(V2 { caller, dry_run })
    }

    /// The body, which must be a JSON/YAML object ([`parse_object_body`]).
    pub(crate) fn object_body(&self) -> ApiResult<Value> {
        parse_object_body(&self.headers, &self.body)
    }

    /// The body as a V2 payload is stored and compared ([`stored_payload`]).
    pub(crate) fn stored_payload(&self) -> ApiResult<Value> {
        stored_payload(self.state.secrets(), &self.headers, &self.body)
    }

    /// The paging and name filter of a V1 listing ([`Listing::from_query`]).
    pub(crate) fn listing(&self, size_param: &str, default_size: usize) -> ApiResult<Listing> {
        Listing::from_query(&self.query, size_param, default_size)
    }
}

/// An error answered to the client as `{"statusCode", "error", "message"}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// Value of a `Retry-After` header, for injected faults.
    pub(crate) retry_after: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(value) = self.retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// What handlers return.
pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;

/// Answers `value` as a 200 JSON response.
pub(crate) fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

/// True when the request's `Content-Type` names YAML.
pub(crate) fn is_yaml(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(media.as_str(), "application/yaml" | "text/yaml" | "application/x-yaml")
}

/// Parses a request body as YAML (by content type) or JSON into a value.
///
/// Parser messages are returned to the caller only (never logged), since a snippet of the input
/// may contain a secret.
pub(crate) fn parse_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if is_yaml(headers) {
        // Only the first line: the rest is a snippet of the input, which may hold a secret.
        serde_saphyr::from_slice::<Value>(body).map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("").trim_start_matches("error: ");
            ApiError::bad_request(format!("the request body is not valid YAML: {first}"))
        })
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

/// Parses a body that must be a JSON/YAML object.
pub(crate) fn parse_object_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let value = parse_body(headers, body)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::bad_request("the request body must be an object"))
    }
}

/// A V2 payload as it is stored and compared: parsed, secrets replaced by digests, keys sorted.
pub(crate) fn stored_payload(
    secrets: Secrets,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Value> {
    let mut payload = parse_object_body(headers, body)?;
    secrets.redact(&mut payload, Redaction::Digest);
    Ok(canonical(payload))
}

/// Query parameters of one request.
pub(crate) type Query = HashMap<String, String>;

/// A boolean query parameter (`true`/`false`, also `1`/`0`), `false` when absent.
pub(crate) fn query_bool(query: &Query, name: &str) -> ApiResult<bool> {
    match query.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v.is_empty() || v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(_) => {
            Err(ApiError::bad_request(format!("query parameter {name} must be true or false")))
        }
    }
}

/// A non-negative integer query parameter with a default.
pub(crate) fn query_usize(query: &Query, name: &str, default: usize) -> ApiResult<usize> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("query parameter {name} must be a non-negative integer"))
        }),
    }
}

/// A numeric query parameter, only validated (the emulator does its work synchronously).
pub(crate) fn query_number(query: &Query, name: &str) -> ApiResult<Option<f64>> {
    match query.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("query parameter {name} must be a number"))),
    }
}

/// Parses a numeric path id.
pub(crate) fn path_id(raw: &str, what: &str) -> ApiResult<u64> {
    raw.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("{what} id must be a positive integer")))
}

/// Paging and name filter of a V1 listing: `offset`, a page size, and `searchText` (a
/// case-insensitive substring of the name).
pub(crate) struct Listing {
    offset: usize,
    size: usize,
    search: Option<String>,
}

impl Listing {
    /// Reads `offset` (default 0), the page size from `size_param` (default `default_size`) and
    /// `searchText`.
    pub(crate) fn from_query(
        query: &Query,
        size_param: &str,
        default_size: usize,
    ) -> ApiResult<Listing> {
        Ok(Listing {
            offset: query_usize(query, "offset", 0)?,
            size: query_usize(query, size_param, default_size)?,
            search: query.get("searchText").map(|s| s.to_lowercase()),
        })
    }

    /// Every item, whatever `offset` and `size` asked (a tenant that ignores paging).
    pub(crate) fn unpaged(&mut self) {
        self.offset = 0;
        self.size = usize::MAX;
    }

    /// At most `cap` items a page, whatever `size` asked.
    pub(crate) fn cap(&mut self, cap: usize) {
        self.size = self.size.min(cap);
    }

    /// Whether `name` passes the `searchText` filter.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.search.as_ref().is_none_or(|s| name.to_lowercase().contains(s))
    }

    /// One page of `items`, with the total count.
    pub(crate) fn page<T>(&self, items: Vec<T>) -> (Vec<T>, usize) {
        let count = items.len();
        (items.into_iter().skip(self.offset).take(self.size).collect(), count)
    }

    /// One page of what `items` yields, with the total count; `view` runs for the page's items
    /// only, so paging through a large tenant costs one view per item, not one per item per page.
    pub(crate) fn page_of<T>(
        &self,
        items: impl Iterator<Item = T>,
        mut view: impl FnMut(T) -> Value,
    ) -> (Vec<Value>, usize) {
        let mut count = 0;
        let mut page = Vec::new();
        for item in items {
            if count >= self.offset && page.len() < self.size {
                page.push(view(item));
            }
            count += 1;
        }
        (page, count)
    }
}
