//! What a failed fetch means and how it is shown: the error's kind (network, authentication,
//! ref not found, corruption) for the caller's retry and hint, and every message scrubbed of the
//! URL's userinfo and of the configured credentials.

use super::*;

/// Every message of a gitoxide error, outermost first, without repeats.
pub(super) fn chain(e: &gix::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.iter_errors() {
        let text = cause.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Maps an error of a network operation: damaged local data is corruption (re-clone),
/// everything else is a typed fetch error with credentials scrubbed.
pub(super) fn network_failure(inner: &Inner, e: &gix::Error, auth_failed: bool) -> Failure {
    let message = scrub(&inner.config, &inner.shown_url, &chain(e));
    let kind = if auth_failed {
        FetchErrorKind::Auth
    } else if is_corruption(e) {
        return Failure::Corrupt(message);
    } else {
        fetch_error_kind(e)
    };
    Failure::Fatal(Error::Fetch { url: inner.shown_url.clone(), kind, message })
}

/// Errors that mean the local cache is damaged (so one re-clone is worth it). Deliberately
/// narrow: a network, TLS, SSH, HTTP or authentication error is never one.
///
/// A lock file counts: only this source writes to its cache (one process per cache directory),
/// and it holds the source's mutex while it does, so a lock file is left over from a crash.
pub(super) fn is_corruption(e: &gix::Error) -> bool {
    if e.is_unauthenticated() || e.is_permission_denied() {
        return false;
    }
    e.is_corrupted()
        || e.iter_errors().any(|cause| {
            let text = cause.to_string();
            text.contains(".lock") && (text.contains("lock") || text.contains("exists"))
        })
}

/// The kind of an error from a network operation.
pub(super) fn fetch_error_kind(e: &gix::Error) -> FetchErrorKind {
    if e.is_unauthenticated() || e.is_permission_denied() {
        return FetchErrorKind::Auth;
    }
    let text = chain(e).to_ascii_lowercase();
    if text.contains("certificate") || text.contains("host key verification failed") {
        return FetchErrorKind::Certificate;
    }
    let network_io = e.iter_errors().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            use std::io::ErrorKind::*;
            matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | TimedOut
                    | WouldBlock
                    | BrokenPipe
                    | UnexpectedEof
                    | HostUnreachable
                    | NetworkUnreachable
                    | NetworkDown
                    | AddrNotAvailable
            )
        }) || cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect() || r.is_timeout())
    });
    if network_io || e.can_retry_lenient() || text.contains("could not connect") {
        FetchErrorKind::Network
    } else {
        FetchErrorKind::Other
    }
}

/// Masks the URL's password and every configured secret in a message from Git.
pub(super) fn scrub(config: &GitSourceConfig, shown_url: &str, message: &str) -> String {
    let mut message = message.replace(&config.url, shown_url);
    let mut secrets: Vec<&str> = url_secrets(&config.url);
    match &config.auth {
        GitAuth::HttpsToken(token) => secrets.push(token.expose_secret()),
        GitAuth::HttpsBasic { password, .. } => secrets.push(password.expose_secret()),
        GitAuth::SshKey { private_key, .. } => secrets.push(private_key.expose_secret()),
        GitAuth::None | GitAuth::SshAgent => {}
    }
    for secret in secrets {
        if !secret.is_empty() {
            message = message.replace(secret, "***");
        }
    }
    crate::redact::redacted(&message)
}

/// The userinfo of a URL split at the `@` that ends the authority: `(scheme, userinfo, rest)`.
pub(super) fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = url.find("://")?;
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((&url[..scheme_end], &rest[..at], &rest[at + 1..]))
}

/// The secrets a URL carries: the password, or a user name that is really a token (`https://TOKEN@host`).
pub(super) fn url_secrets(url: &str) -> Vec<&str> {
    match split_userinfo(url) {
        Some((_, userinfo, _)) => match userinfo.split_once(':') {
            Some((_, password)) => vec![password],
            None if !userinfo.eq_ignore_ascii_case("git") => vec![userinfo],
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// The URL with its password (or a token in the user-name position) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    // Known to the redaction layer from now on, in every encoding.
    crate::redact::register_all(url_secrets(url));
    let Some((scheme, userinfo, rest)) = split_userinfo(url) else {
        return url.to_owned();
    };
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if scheme.starts_with("ssh") || userinfo.eq_ignore_ascii_case("git") => {
            userinfo.to_owned()
        }
        None => "***".to_owned(),
    };
    format!("{scheme}://{shown}@{rest}")
}
