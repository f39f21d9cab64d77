//! What is sent and what comes back: [`Request`] (its builder, deadline and credential role)
//! and the two shapes of an answer.

use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Role;

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The client's timeout.
    Default,
    /// This long.
    Within(Duration),
    /// No limit (a data-source post with a negative `wait`); only cancellation ends it.
    Unbounded,
}

/// A request: method, path, query, optional JSON body, and the secret values it carries (for
/// redacting error messages).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: Method,
    /// Path, already percent-encoded (`/api/v2/data/my%20key`).
    pub path: String,
    /// Low-cardinality name for metrics (`/api/v2/data/{key}`).
    pub endpoint: &'static str,
    /// Query parameters.
    pub query: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<&'a Value>,
    /// Which credential.
    pub role: Role,
    /// Secret values in the body, masked in any error message.
    pub secrets: &'a [String],
    /// How long it may take.
    pub deadline: Deadline,
    /// Whether it may be sent again when it got no answer (a timeout, a dropped connection).
    /// False for writes: the tenant may have carried them out.
    pub resend: bool,
}

impl<'a> Request<'a> {
    /// A GET.
    pub fn get(path: impl Into<String>, endpoint: &'static str) -> Self {
        Request {
            method: Method::GET,
            path: path.into(),
            endpoint,
            query: Vec::new(),
            body: None,
            role: Role::Governance,
            secrets: &[],
            deadline: Deadline::Default,
            resend: true,
        }
    }

    /// A POST with a JSON body.
    pub fn post(path: impl Into<String>, endpoint: &'static str, body: &'a Value) -> Self {
        Request { method: Method::POST, body: Some(body), ..Request::get(path, endpoint) }
    }

    /// A DELETE.
    pub fn delete(path: impl Into<String>, endpoint: &'static str) -> Self {
        Request { method: Method::DELETE, ..Request::get(path, endpoint) }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// Uses the license-admin credential.
    pub fn admin(mut self) -> Self {
        self.role = Role::Admin;
        self
    }

    /// Declares the secret values of the body.
    pub fn secrets(mut self, secrets: &'a [String]) -> Self {
        self.secrets = secrets;
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    /// Marks the request as a write: never sent again once it may have reached the tenant.
    pub fn write(mut self) -> Self {
        self.resend = false;
        self
    }
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

/// A response as it came: status, the `Date` header, and the body's bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: StatusCode,
    /// The server's clock (`Date`), when it sent one.
    pub date: Option<SystemTime>,
    /// The body.
    pub body: Vec<u8>,
}

/// Percent-encodes one path segment (a natural key can contain spaces and slashes).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
