//! When to retry a request, and how long to wait.
//!
//! One classifier decides: [`classify`]. Transport failures (connect errors, timeouts, a
//! connection dropped before the response) and the statuses `429`, `502`, `503` and `504` are
//! *spurious*: the same request may well succeed a moment later. Every other status, above all
//! every other `4xx`, is final: retrying a rejected payload only hammers the tenant (crossplane
//! issue 2113 is what that looks like at scale). Retrying a POST is safe because every write we
//! send is an upsert by natural key or a delete by key.
//!
//! The schedule is exponential with full jitter (backon), from `min_delay` up to `max_delay`,
//! at most `max_retries` times. A `Retry-After` header (seconds or an HTTP date) on `429`/`503`
//! replaces the computed delay, capped at `max_retry_after` because servers sometimes say 3600.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

/// Retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// Largest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What to do after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Done (success or a final failure).
    Stop,
    /// Try again, after the server's `Retry-After` if it gave one.
    Retry {
        /// The server's requested wait.
        after: Option<Duration>,
        /// A short reason for logs and metrics.
        reason: &'static str,
    },
}

/// Outcome of one attempt, as the classifier sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// The server answered.
    Status {
        /// Status code.
        status: StatusCode,
        /// The `Retry-After` header, if any.
        retry_after: Option<&'a str>,
    },
    /// No complete answer: connect error, timeout, connection dropped.
    Transport {
        /// Whether it was a timeout.
        timeout: bool,
    },
}

/// The retry classifier: the only place that decides whether a request is retried.
pub fn classify(attempt: Attempt<'_>, now: SystemTime) -> Decision {
    match attempt {
        Attempt::Transport { timeout: true } => Decision::Retry { after: None, reason: "timeout" },
        Attempt::Transport { timeout: false } => {
            Decision::Retry { after: None, reason: "connection" }
        }
        Attempt::Status { status, retry_after } => match status.as_u16() {
            429 => Decision::Retry {
                after: retry_after.and_then(|v| parse_retry_after(v, now)),
                reason: "429",
            },
            503 => Decision::Retry {
                after: retry_after.and_then(|v| parse_retry_after(v, now)),
                reason: "503",
            },
            502 => Decision::Retry { after: None, reason: "502" },
            504 => Decision::Retry { after: None, reason: "504" },
            _ => Decision::Stop,
        },
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<&str>) -> Decision {
        let status = StatusCode::from_u16(code).unwrap();
        classify(Attempt::Status { status, retry_after }, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn only_spurious_failures_are_retried() {
        for code in [429, 502, 503, 504] {
            assert!(matches!(status(code, None), Decision::Retry { .. }), "{code}");
        }
        for code in [200, 400, 401, 403, 404, 409, 422, 500] {
            assert_eq!(status(code, None), Decision::Stop, "{code}");
        }
        assert!(matches!(
            classify(Attempt::Transport { timeout: false }, SystemTime::UNIX_EPOCH),
            Decision::Retry { reason: "connection", .. }
        ));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_http_date() {
        assert_eq!(
            status(429, Some("3")),
            Decision::Retry { after: Some(Duration::from_secs(3)), reason: "429" }
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
