//! DNS-rebinding protection: the read endpoints (`/healthz`, `/readyz`, `/metrics`, `/status`)
//! answer only requests whose `Host` is an IP literal, `localhost`, or a name the operator
//! allowed (`run --allowed-host`).
//!
//! A web page on `evil.example` can make a browser resolve that name to `127.0.0.1` and read
//! what a local server answers: the request then carries `Host: evil.example`. Kubernetes
//! probes and Prometheus address the pod by IP (`Host: 10.1.2.3:8080`), port-forwards by
//! `localhost`, so they pass untouched; a Service or Ingress name must be allowed explicitly.
//! `/webhook` answers any Host: its deliveries are authenticated (HMAC or token) and arrive
//! through whatever name the Git host was given.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Host names the read endpoints answer besides IP literals and `localhost` (lowercase, no
/// port; `*` allows any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// The names given (`--allowed-host`), without ports, compared case-insensitively.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        AllowedHosts(
            names
                .into_iter()
                .map(|n| n.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        )
    }

    /// Whether a request with this `Host` header value is answered.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host.trim()).trim_end_matches('.').to_ascii_lowercase();
        let ip = name.trim_start_matches('[').trim_end_matches(']');
        ip.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || self.0.iter().any(|allowed| allowed == "*" || *allowed == name)
    }
}

/// `host` without a `:port` (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The middleware: refuses a read endpoint's request with an unexpected `Host` (421). A
/// request without `Host` (HTTP/1.0) comes from no browser and is answered.
pub(super) async fn check(allowed: Arc<AllowedHosts>, req: Request, next: Next) -> Response {
    if req.uri().path() != "/webhook"
        && let Some(host) = req.headers().get(header::HOST)
        && !host.to_str().is_ok_and(|h| allowed.allows(h))
    {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "unexpected Host: this endpoint answers IP addresses, localhost and the names given \
             with --allowed-host (DNS-rebinding protection)\n",
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_pass_other_names_only_when_allowed() {
        let none = AllowedHosts::default();
        for ok in
            ["10.1.2.3:8080", "127.0.0.1", "[::1]:8080", "[fe80::1]", "localhost:8080", "LOCALHOST"]
        {
            assert!(none.allows(ok), "{ok}");
        }
        for refused in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", ""] {
            assert!(!none.allows(refused), "{refused}");
        }
        let some = AllowedHosts::new(["Gitops.Internal.", " "]);
        assert!(some.allows("gitops.internal:8080"));
        assert!(some.allows("gitops.internal."));
        assert!(!some.allows("evil.example"));
        assert!(AllowedHosts::new(["*"]).allows("anything.example"));
    }
}
