//! The request log behind `GET /_emulator/requests`: method, path, query, body (secrets masked)
//! and status of every non-control request, newest last.

use std::collections::VecDeque;

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::http::is_yaml;
use super::secrets::{MASK, Redaction, Secrets};

/// How many requests the log keeps; older ones are forgotten first.
pub(crate) const CAPACITY: usize = 10_000;

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestRecord {
    pub(crate) method: String,
    pub(crate) path: String,
    /// The raw query string with secret parameters masked; `null` when there was none.
    pub(crate) query: Option<String>,
    /// The body as JSON with secrets masked; `null` when empty; a placeholder string when it
    /// was neither JSON nor YAML (never the raw text, which may hold a secret).
    pub(crate) body: Value,
    /// The status answered; 0 when the connection was dropped without an answer.
    pub(crate) status: u16,
}

/// The bounded log.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: VecDeque<RequestRecord>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, record: RequestRecord) {
        if self.entries.len() >= CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(record);
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &RequestRecord> {
        self.entries.iter()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The body as it is logged: parsed (YAML or JSON by content type) with secrets masked.
pub(crate) fn logged_body(secrets: Secrets, headers: &HeaderMap, body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    let parsed = if is_yaml(headers) {
        serde_saphyr::from_slice::<Value>(body).ok()
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    match parsed {
        Some(mut value) => {
            secrets.redact(&mut value, Redaction::Mask);
            value
        }
        None => Value::String(format!("<{} bytes, not parseable>", body.len())),
    }
}

/// The query string with values of secret parameters (e.g. `apikey`) masked.
pub(crate) fn logged_query(secrets: Secrets, query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if secrets.is_secret_key(key) => format!("{key}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}
