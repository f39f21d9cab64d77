//! The read-only routes: `/healthz` (liveness), `/readyz` (readiness), `/metrics` and `/status`.
//! They read the shared status and registry and change nothing. `/readyz` and `/status` answer
//! through the redaction layer ([`crate::redact`]): a reason quoting a tenant's answer or a Git
//! error cannot carry a secret.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::ServerState;
use crate::daemon::status::Role;
use crate::metrics::{CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// Why `/readyz` answers 503 before the first successful reconcile, when the loop has not
/// said anything more specific.
pub const NOT_READY_YET: &str = "no successful reconcile yet";

/// `GET /healthz`: `200 ok` while the process runs (liveness says nothing about the tenant).
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: `200` once a reconcile succeeded (and while the last good revision stays
/// applied, even when degraded), else `503`. Both answer a small JSON body with the reason. A
/// standby replica (another one holds the state's writer lock) is ready to take over: `200`,
/// with `"role": "standby"` and the leader's name, so a rolling update can proceed.
pub async fn readyz(State(state): State<ServerState>) -> Response {
    let status = state.status.snapshot();
    if status.role == Role::Standby {
        let body = json!({
            "ready": true,
            "role": "standby",
            "leader": status.leader,
            "degraded": status.degraded,
        });
        return (StatusCode::OK, redacted(body)).into_response();
    }
    if status.ready {
        let body = json!({
            "ready": true,
            "applied_revision": status.applied_revision,
            "degraded": status.degraded,
        });
        (StatusCode::OK, redacted(body)).into_response()
    } else {
        let reason = status.degraded.unwrap_or_else(|| NOT_READY_YET.to_owned());
        (StatusCode::SERVICE_UNAVAILABLE, redacted(json!({ "ready": false, "reason": reason })))
            .into_response()
    }
}

/// `GET /metrics`: every series, in OpenMetrics when the scraper accepts it (Prometheus asks
/// for it), else in the Prometheus text format 0.0.4 (`curl`, `promtool check metrics`).
pub async fn metrics(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render()).into_response()
    } else {
        ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], state.metrics.render_text()).into_response()
    }
}

/// `GET /status`: the reconciler's [`Status`](crate::daemon::Status) as JSON, never cached.
pub async fn status(State(state): State<ServerState>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], redacted(state.status.snapshot())).into_response()
}

/// A JSON body with every string through the redaction layer.
fn redacted(body: impl Serialize) -> Json<Value> {
    let value = serde_json::to_value(body)
        .unwrap_or_else(|e| json!({ "error": format!("the status cannot be shown: {e}") }));
    Json(crate::redact::redact_value(value))
}
