//! `POST /webhook`: authenticate a GitHub or GitLab push delivery over its raw body, then nudge
//! the loop with a [`Trigger::Webhook`] and answer at once.
//!
//! - **GitHub**: `X-Hub-Signature-256: sha256=<hex>` must be the HMAC-SHA256 of the raw body
//!   bytes under the configured secret, checked in constant time. `X-GitHub-Event: ping` answers
//!   200; `push` to the tracked branch nudges with `X-GitHub-Delivery` and the payload's
//!   `after`. Both content types GitHub offers are read (`application/json`, and
//!   `application/x-www-form-urlencoded` with the JSON in its `payload` field).
//! - **GitLab**: `X-Gitlab-Token` must equal the configured token (compared in constant time,
//!   over digests so that its length does not leak either). `X-Gitlab-Event: Push Hook` to the
//!   tracked branch nudges with `X-Gitlab-Event-UUID` and the payload's `checkout_sha`.
//!
//! A delivery that is unsigned, wrongly signed or carries a wrong token answers **401 and
//! changes nothing**. Authenticated deliveries that are not pushes to the tracked branch answer
//! 202 with a note and send nothing. Accepted pushes answer 202 after a `try_send`: a full queue
//! means a reconcile is already pending, and the delivery coalesces into it. Every delivery is
//! counted in `immuta_gitops_webhook_deliveries_total{provider, result}` and logged with its
//! delivery id; bodies, signatures and tokens are never logged.
//!
//! With no secret configured the receiver is disabled and answers 404 ([`disabled`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::error::TrySendError;

use super::{ServerState, WebhookConfig};
use crate::daemon::Trigger;

/// The longest delivery id or event name kept for logs and triggers; longer ones are cut.
const MAX_HEADER_TEXT: usize = 128;

/// Which provider a delivery says it comes from (by its headers; authentication comes after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `X-GitHub-Event`, `X-Hub-Signature-256` or `X-GitHub-Delivery` present.
    GitHub,
    /// `X-Gitlab-Event` or `X-Gitlab-Token` present.
    GitLab,
    /// Neither: always unauthorized.
    Unknown,
}

impl Provider {
    /// Recognises the provider from the headers. GitHub's headers win when both are present;
    /// each provider is then held to its own credential.
    pub fn of(headers: &HeaderMap) -> Self {
        let has = |name: &str| headers.contains_key(name);
        if has("x-github-event") || has("x-hub-signature-256") || has("x-github-delivery") {
            Provider::GitHub
        } else if has("x-gitlab-event") || has("x-gitlab-token") {
            Provider::GitLab
        } else {
            Provider::Unknown
        }
    }

    /// The `provider` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Unknown => "unknown",
        }
    }

    /// The header naming the delivery, for logs and de-duplication.
    fn delivery_header(self) -> Option<&'static str> {
        match self {
            Provider::GitHub => Some("x-github-delivery"),
            Provider::GitLab => Some("x-gitlab-event-uuid"),
            Provider::Unknown => None,
        }
    }
}

/// What an authenticated (or not) delivery asks for. Pure: [`decide`] sends nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Missing or wrong credential, or the provider is not configured. The reason is for the
    /// log only; the answer does not say which check failed.
    Unauthorized(&'static str),
    /// Authenticated, but the request cannot be read (no event header, a push payload that is
    /// not JSON).
    BadRequest(String),
    /// A GitHub `ping`: answered 200, nothing sent.
    Pong,
    /// Authenticated and well-formed, but not a push to the tracked branch.
    Ignored(String),
    /// A push to the tracked branch: nudge the loop.
    Nudge {
        /// The pushed commit, when the payload names one (absent when the branch was deleted).
        revision: Option<String>,
    },
}

/// Authenticates the delivery and reads what it asks for.
pub fn decide(
    config: &WebhookConfig,
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Decision {
    match provider {
        Provider::GitHub => github(config, headers, body),
        Provider::GitLab => gitlab(config, headers, body),
        Provider::Unknown => Decision::Unauthorized("no GitHub or GitLab headers"),
    }
}

fn github(config: &WebhookConfig, headers: &HeaderMap, body: &[u8]) -> Decision {
    let Some(secret) = config.github_secret.as_ref().map(|s| s.expose_secret().as_bytes()) else {
        return Decision::Unauthorized("GitHub deliveries are not configured");
    };
    if secret.is_empty() {
        return Decision::Unauthorized("the GitHub secret is empty");
    }
    let Some(signature) = header_str(headers, "x-hub-signature-256") else {
        return Decision::Unauthorized("no X-Hub-Signature-256");
    };
    if !github_signature_valid(secret, signature, body) {
        return Decision::Unauthorized("X-Hub-Signature-256 does not match the body");
    }
    let Some(event) = header_text(headers, "x-github-event") else {
        return Decision::BadRequest("no X-GitHub-Event header".to_owned());
    };
    match event.as_str() {
        "ping" => Decision::Pong,
        "push" => {
            let json = if is_form(headers) {
                match form_field(body, "payload") {
                    Some(json) => json,
                    None => return Decision::BadRequest("form body without `payload`".to_owned()),
                }
            } else {
                body.to_vec()
            };
            match serde_json::from_slice::<GitHubPush>(&json) {
                Ok(push) => {
                    let revision = if push.deleted { None } else { push.after };
                    push_decision(config.branch.as_deref(), &push.git_ref, revision)
                }
                Err(e) => unreadable(&e),
            }
        }
        _ => Decision::Ignored(format!("GitHub event `{event}` ignored; only push nudges")),
    }
}

fn gitlab(config: &WebhookConfig, headers: &HeaderMap, body: &[u8]) -> Decision {
    let Some(expected) = config.gitlab_token.as_ref().map(|s| s.expose_secret().as_bytes()) else {
        return Decision::Unauthorized("GitLab deliveries are not configured");
    };
    if expected.is_empty() {
        return Decision::Unauthorized("the GitLab token is empty");
    }
    let Some(given) = headers.get("x-gitlab-token") else {
        return Decision::Unauthorized("no X-Gitlab-Token");
    };
    if !gitlab_token_valid(expected, given.as_bytes()) {
        return Decision::Unauthorized("X-Gitlab-Token does not match");
    }
    let Some(event) = header_text(headers, "x-gitlab-event") else {
        return Decision::BadRequest("no X-Gitlab-Event header".to_owned());
    };
    if event != "Push Hook" {
        return Decision::Ignored(format!("GitLab event `{event}` ignored; only Push Hook nudges"));
    }
    match serde_json::from_slice::<GitLabPush>(body) {
        Ok(push) => push_decision(config.branch.as_deref(), &push.git_ref, push.checkout_sha),
        Err(e) => unreadable(&e),
    }
}

/// A bad request for a payload that does not parse. Says where, never what: serde's messages
/// quote the offending values, and bodies are not logged.
fn unreadable(e: &serde_json::Error) -> Decision {
    let what = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "not a push payload",
        serde_json::error::Category::Eof => "truncated",
    };
    Decision::BadRequest(format!("push payload {what} (line {}, column {})", e.line(), e.column()))
}

/// The fields of a GitHub push payload we read.
#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
}

/// The fields of a GitLab push payload we read.
#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    checkout_sha: Option<String>,
}

fn push_decision(branch: Option<&str>, git_ref: &str, revision: Option<String>) -> Decision {
    if !tracks(branch, git_ref) {
        let tracked = branch.map(tracked_ref).unwrap_or_default();
        return Decision::Ignored(format!(
            "push to {} ignored; tracking {tracked}",
            truncate(git_ref)
        ));
    }
    Decision::Nudge { revision: revision.filter(|r| is_commit_id(r)) }
}

/// Whether a push to `git_ref` concerns the tracked `branch` (`None`: every ref does).
pub fn tracks(branch: Option<&str>, git_ref: &str) -> bool {
    branch.is_none_or(|b| git_ref == tracked_ref(b))
}

fn tracked_ref(branch: &str) -> String {
    if branch.starts_with("refs/") { branch.to_owned() } else { format!("refs/heads/{branch}") }
}

/// A hex object id that names a commit (the all-zero id of a deleted branch does not).
fn is_commit_id(s: &str) -> bool {
    (7..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b != b'0')
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`, compared in
/// constant time ([`Mac::verify_slice`]).
pub fn github_signature_valid(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Some(hex_signature) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(signature) = hex::decode(hex_signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// Whether `given` equals `expected`, in constant time. Both are hashed first, so the
/// comparison does not stop early on a length difference either.
pub fn gitlab_token_valid(expected: &[u8], given: &[u8]) -> bool {
    let expected = Sha256::digest(expected);
    let given = Sha256::digest(given);
    expected[..].ct_eq(&given[..]).into()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header's value for logs and triggers: visible ASCII, cut to [`MAX_HEADER_TEXT`].
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let text = header_str(headers, name)?.trim();
    (!text.is_empty()).then(|| truncate(text))
}

fn truncate(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(MAX_HEADER_TEXT).collect()
}

fn is_form(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.trim_start().starts_with("application/x-www-form-urlencoded"))
}

/// The percent-decoded value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key)? == name.as_bytes()).then(|| percent_decode(value)).flatten()
    })
}

/// Decodes `+` and `%XX`; `None` on a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (*bytes.next()? as char).to_digit(16)?;
                let lo = (*bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            _ => out.push(b),
        }
    }
    Some(out)
}

/// `POST /webhook` when at least one provider is configured.
pub async fn receive(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = Provider::of(&headers);
    let delivery = provider.delivery_header().and_then(|h| header_text(&headers, h));
    let shown = delivery.as_deref().unwrap_or("-");
    let source = provider.as_str();

    let (result, response) = match decide(&state.webhook, provider, &headers, &body) {
        Decision::Unauthorized(reason) => {
            tracing::warn!(
                provider = source,
                delivery = shown,
                reason,
                "webhook delivery rejected"
            );
            ("unauthorized", answer(StatusCode::UNAUTHORIZED, json!({ "error": "unauthorized" })))
        }
        Decision::BadRequest(note) => {
            tracing::warn!(
                provider = source,
                delivery = shown,
                note,
                "webhook delivery unreadable"
            );
            let body = json!({ "error": "bad request", "note": note });
            ("bad_request", answer(StatusCode::BAD_REQUEST, body))
        }
        Decision::Pong => {
            tracing::info!(provider = source, delivery = shown, "webhook ping");
            ("ignored", answer(StatusCode::OK, json!({ "result": "pong" })))
        }
        Decision::Ignored(note) => {
            tracing::info!(provider = source, delivery = shown, note, "webhook delivery ignored");
            ("ignored", answer(StatusCode::ACCEPTED, json!({ "result": "ignored", "note": note })))
        }
        Decision::Nudge { revision } => {
            let trigger =
                Trigger::Webhook { delivery: delivery.clone(), revision: revision.clone() };
            let body = json!({ "result": "accepted", "delivery": delivery, "revision": revision });
            match state.triggers.try_send(trigger) {
                Ok(()) => {
                    tracing::info!(
                        provider = source,
                        delivery = shown,
                        ?revision,
                        "webhook nudged"
                    );
                    ("accepted", answer(StatusCode::ACCEPTED, body))
                }
                Err(TrySendError::Full(_)) => {
                    tracing::info!(
                        provider = source,
                        delivery = shown,
                        ?revision,
                        "webhook coalesced into the reconcile already queued"
                    );
                    ("accepted", answer(StatusCode::ACCEPTED, body))
                }
                Err(TrySendError::Closed(_)) => {
                    tracing::warn!(
                        provider = source,
                        delivery = shown,
                        "webhook dropped: the reconcile loop has stopped"
                    );
                    let body = json!({ "error": "the reconciler is not running" });
                    ("unavailable", answer(StatusCode::SERVICE_UNAVAILABLE, body))
                }
            }
        }
    };
    state.metrics.webhook(source, result);
    response
}

/// `/webhook` when no provider is configured: 404 to every method.
pub async fn disabled() -> Response {
    let body = json!({ "error": "the webhook receiver is disabled (no secret configured)" });
    answer(StatusCode::NOT_FOUND, body)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use secrecy::SecretString;

    use super::*;

    /// GitHub's documented example ("Validating webhook deliveries").
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_PAYLOAD: &str = "Hello, World!";
    const DOC_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn config(branch: Option<&str>) -> WebhookConfig {
        WebhookConfig {
            github_secret: Some(SecretString::from("gh-secret")),
            gitlab_token: Some(SecretString::from("gl-token")),
            branch: branch.map(str::to_owned),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        map
    }

    #[test]
    fn github_documentation_example() {
        assert!(github_signature_valid(
            DOC_SECRET.as_bytes(),
            DOC_SIGNATURE,
            DOC_PAYLOAD.as_bytes()
        ));
        assert_eq!(sign(DOC_SECRET, DOC_PAYLOAD.as_bytes()), DOC_SIGNATURE);
    }

    #[test]
    fn github_signature_rejects_near_misses() {
        let secret = DOC_SECRET.as_bytes();
        let body = DOC_PAYLOAD.as_bytes();
        // One bit flipped in the last hex digit (7 -> 6).
        let flipped = DOC_SIGNATURE.replace("043e17", "043e16");
        assert!(!github_signature_valid(secret, &flipped, body));
        // The right digest without its prefix, with the SHA-1 prefix, truncated, not hex.
        let bare = DOC_SIGNATURE.trim_start_matches("sha256=");
        assert!(!github_signature_valid(secret, bare, body));
        assert!(!github_signature_valid(secret, &format!("sha1={bare}"), body));
        assert!(!github_signature_valid(secret, &DOC_SIGNATURE[..40], body));
        assert!(!github_signature_valid(secret, "sha256=zz", body));
        assert!(!github_signature_valid(secret, "", body));
        // Another secret, another body.
        assert!(!github_signature_valid(b"It's a Secret to Everybody!", DOC_SIGNATURE, body));
        assert!(!github_signature_valid(secret, DOC_SIGNATURE, b"Hello, World?"));
    }

    #[test]
    fn gitlab_token_compares_whole_values() {
        assert!(gitlab_token_valid(b"gl-token", b"gl-token"));
        assert!(!gitlab_token_valid(b"gl-token", b"gl-toke"));
        assert!(!gitlab_token_valid(b"gl-token", b"gl-token "));
        assert!(!gitlab_token_valid(b"gl-token", b""));
    }

    #[test]
    fn branch_tracking() {
        assert!(tracks(None, "refs/tags/v1"));
        assert!(tracks(Some("main"), "refs/heads/main"));
        assert!(tracks(Some("refs/heads/main"), "refs/heads/main"));
        assert!(!tracks(Some("main"), "refs/heads/main2"));
        assert!(!tracks(Some("main"), "refs/tags/main"));
        assert!(!tracks(Some("main"), "main"));
    }

    #[test]
    fn github_push_nudges_with_the_revision() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let body = format!(r#"{{"ref":"refs/heads/main","after":"{sha}","deleted":false}}"#);
        let sig = sign("gh-secret", body.as_bytes());
        let h = headers(&[("x-github-event", "push"), ("x-hub-signature-256", &sig)]);
        assert_eq!(
            decide(&config(Some("main")), Provider::of(&h), &h, body.as_bytes()),
            Decision::Nudge { revision: Some(sha.to_owned()) }
        );
        assert!(matches!(
            decide(&config(Some("dev")), Provider::of(&h), &h, body.as_bytes()),
            Decision::Ignored(_)
        ));
    }

    #[test]
    fn github_form_encoded_push_is_read() {
        let json = r#"{"ref":"refs/heads/main","after":"abcdef1234567"}"#;
        let encoded: String = json
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let body = format!("payload={encoded}");
        let sig = sign("gh-secret", body.as_bytes());
        let h = headers(&[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        assert_eq!(
            decide(&config(None), Provider::GitHub, &h, body.as_bytes()),
            Decision::Nudge { revision: Some("abcdef1234567".to_owned()) }
        );
    }

    #[test]
    fn deleted_branch_nudges_without_a_revision() {
        let body = r#"{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000","deleted":true}"#;
        let sig = sign("gh-secret", body.as_bytes());
        let h = headers(&[("x-github-event", "push"), ("x-hub-signature-256", &sig)]);
        assert_eq!(
            decide(&config(Some("main")), Provider::GitHub, &h, body.as_bytes()),
            Decision::Nudge { revision: None }
        );
    }

    #[test]
    fn authentication_comes_before_parsing() {
        // Garbage body, no signature: unauthorized, not a bad request.
        let h = headers(&[("x-github-event", "push")]);
        assert!(matches!(
            decide(&config(None), Provider::GitHub, &h, b"not json"),
            Decision::Unauthorized(_)
        ));
        // Signed garbage: a bad request.
        let sig = sign("gh-secret", b"not json");
        let h = headers(&[("x-github-event", "push"), ("x-hub-signature-256", &sig)]);
        assert!(matches!(
            decide(&config(None), Provider::GitHub, &h, b"not json"),
            Decision::BadRequest(_)
        ));
    }

    #[test]
    fn unconfigured_or_empty_secrets_never_authenticate() {
        let body = br#"{"ref":"refs/heads/main","after":"abcdef1"}"#;
        let h = headers(&[("x-github-event", "push"), ("x-hub-signature-256", &sign("", body))]);
        let empty = WebhookConfig {
            github_secret: Some(SecretString::from("")),
            ..WebhookConfig::default()
        };
        assert!(matches!(decide(&empty, Provider::GitHub, &h, body), Decision::Unauthorized(_)));
        assert!(empty.validate().is_err());
        let gitlab_only =
            WebhookConfig { gitlab_token: Some(SecretString::from("t")), ..Default::default() };
        assert!(matches!(
            decide(&gitlab_only, Provider::GitHub, &h, body),
            Decision::Unauthorized(_)
        ));
    }

    #[test]
    fn gitlab_push() {
        let body = br#"{"ref":"refs/heads/main","checkout_sha":"abcdef1234567"}"#;
        let h = headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "gl-token")]);
        assert_eq!(Provider::of(&h), Provider::GitLab);
        assert_eq!(
            decide(&config(Some("main")), Provider::GitLab, &h, body),
            Decision::Nudge { revision: Some("abcdef1234567".to_owned()) }
        );
        let h = headers(&[("x-gitlab-event", "Tag Push Hook"), ("x-gitlab-token", "gl-token")]);
        assert!(matches!(decide(&config(None), Provider::GitLab, &h, body), Decision::Ignored(_)));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_field(b"a=1&payload=%7B%22x%22+1%7D", "payload"),
            Some(b"{\"x\" 1}".to_vec())
        );
        assert_eq!(form_field(b"a=1", "payload"), None);
        assert_eq!(form_field(b"payload=%7", "payload"), None);
    }
}
