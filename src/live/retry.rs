//! When to retry a request, and how long to wait.
//!
//! One classifier decides: [`classify`]. Transport failures (connect errors, timeouts, a
//! connection dropped before the response) and the statuses `429`, `502`, `503` and `504` are
//! *spurious*: the same request may well succeed a moment later. Every other status, above all
//! every other `4xx`, is final: retrying a rejected payload only hammers the tenant (crossplane
//! issue 2113 is what that looks like at scale).
//!
//! How long to wait is decided in one place too: [`wait`]. A `Retry-After` header (seconds or an
//! HTTP date) on `429`/`503` is honoured, capped at `max_retry_after` because servers sometimes
//! say 3600. Otherwise the wait is exponential, `min_delay` doubled per retry up to `max_delay`,
//! with "equal" jitter: half of it fixed, half random, so clients that failed together do not
//! retry together, yet none retries at once. At most `max_retries` retries ([`Schedule`], which
//! drives backon).
//!
//! Writes are classified by [`classify_write`]: a write may have reached the tenant when it
//! got no answer (a timeout, a connection dropped after it was sent) or a gateway error (`502`,
//! `504`: the gateway gave up, the tenant may not have). Re-sending it blindly is not safe: a
//! license post is no upsert, and a data-source post may be creating tables in the background.
//! Such failures stop, and `live::write` asks a dry run whether the write took effect before it
//! sends it again. A write that never left (a refused connection) and `429`/`503` (refused
//! before any work) are retried like any request.

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
        /// Whether the connection could not be made (so nothing was sent).
        connect: bool,
    },
}

/// The retry classifier: the only place that decides whether a request is retried.
pub fn classify(attempt: Attempt<'_>, now: SystemTime) -> Decision {
    match attempt {
        Attempt::Transport { timeout: true, .. } => {
            Decision::Retry { after: None, reason: "timeout" }
        }
        Attempt::Transport { timeout: false, .. } => {
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

/// The classifier of writes: as [`classify`], except that a write which may have reached the
/// tenant (no answer after it was sent, `502`, `504`) is not retried (see the module docs).
pub fn classify_write(attempt: Attempt<'_>, now: SystemTime) -> Decision {
    match attempt {
        Attempt::Transport { connect: false, .. } => Decision::Stop,
        Attempt::Status { status, .. } if matches!(status.as_u16(), 502 | 504) => Decision::Stop,
        other => classify(other, now),
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

/// The exponential wait before retry number `retry` (0 for the first), without a `Retry-After`:
/// `min_delay * 2^retry`, at most `max_delay`, of which the upper half is scaled by `jitter`
/// (a sample of `[0, 1]`; clamped).
pub fn backoff(policy: &RetryPolicy, retry: u32, jitter: f64) -> Duration {
    let full = policy
        .min_delay
        .checked_mul(2u32.saturating_pow(retry))
        .unwrap_or(Duration::MAX)
        .min(policy.max_delay);
    let half = full / 2;
    half + (full - half).mul_f64(jitter.clamp(0.0, 1.0))
}

/// The wait before a retry: the server's `Retry-After` (from [`classify`]) when it gave one,
/// capped at `max_retry_after`; otherwise `backoff`.
pub fn wait(policy: &RetryPolicy, retry_after: Option<Duration>, backoff: Duration) -> Duration {
    match retry_after {
        Some(after) => after.min(policy.max_retry_after),
        None => backoff,
    }
}

/// The backoff schedule of one request: [`backoff`] for each of the `max_retries` retries, with
/// fresh jitter each time (then nothing: the retries are used up).
#[derive(Debug, Clone)]
pub struct Schedule {
    policy: RetryPolicy,
    retry: u32,
}

impl Schedule {
    /// The schedule of `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Schedule { policy, retry: 0 }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if usize::try_from(self.retry).map_or(true, |r| r >= self.policy.max_retries) {
            return None;
        }
        let wait = backoff(&self.policy, self.retry, rand::random::<f64>());
        self.retry += 1;
        Some(wait)
    }
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
            classify(Attempt::Transport { timeout: false, connect: true }, SystemTime::UNIX_EPOCH),
            Decision::Retry { reason: "connection", .. }
        ));
    }

    #[test]
    fn a_write_that_may_have_reached_the_tenant_is_not_retried() {
        let write = |attempt| classify_write(attempt, SystemTime::UNIX_EPOCH);
        assert_eq!(write(Attempt::Transport { timeout: true, connect: false }), Decision::Stop);
        assert_eq!(write(Attempt::Transport { timeout: false, connect: false }), Decision::Stop);
        for code in [502, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(write(Attempt::Status { status, retry_after: None }), Decision::Stop);
        }
        // Never sent, or refused before any work: retried.
        assert!(matches!(
            write(Attempt::Transport { timeout: false, connect: true }),
            Decision::Retry { reason: "connection", .. }
        ));
        for code in [429, 503] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(
                write(Attempt::Status { status, retry_after: None }),
                Decision::Retry { .. }
            ));
        }
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
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::from_secs(0))
        );
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(30),
        }
    }

    /// The wait the client computes after `decision`, for retry number `retry`.
    fn wait_after(decision: Decision, retry: u32, jitter: f64) -> Duration {
        let Decision::Retry { after, .. } = decision else { panic!("not retried: {decision:?}") };
        wait(&policy(), after, backoff(&policy(), retry, jitter))
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        let at = |v| {
            classify(
                Attempt::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: Some(v) },
                now,
            )
        };
        // Seconds, whatever the retry number and the jitter.
        assert_eq!(wait_after(at("7"), 0, 0.0), Duration::from_secs(7));
        assert_eq!(wait_after(at("7"), 3, 1.0), Duration::from_secs(7));
        // An HTTP date, 12 s from now.
        assert_eq!(
            wait_after(at("Sun, 06 Nov 1994 08:49:42 GMT"), 0, 0.5),
            Duration::from_secs(12)
        );
        // 503 reads it too.
        let unavailable = classify(
            Attempt::Status { status: StatusCode::SERVICE_UNAVAILABLE, retry_after: Some("2") },
            now,
        );
        assert_eq!(wait_after(unavailable, 0, 0.5), Duration::from_secs(2));
        // Capped: a server asking for an hour gets `max_retry_after`.
        assert_eq!(wait_after(at("3600"), 0, 0.5), Duration::from_secs(30));
        assert_eq!(
            wait_after(at("Mon, 07 Nov 1994 08:49:37 GMT"), 0, 0.5),
            Duration::from_secs(30)
        );
        // Unreadable: the exponential backoff.
        assert_eq!(wait_after(at("soon"), 0, 1.0), Duration::from_millis(100));
    }

    #[test]
    fn without_retry_after_the_wait_doubles_with_jitter_up_to_the_maximum() {
        let p = policy();
        let ms = |retry, jitter| backoff(&p, retry, jitter).as_millis();
        // Half fixed, half jitter: [50, 100] ms, then [100, 200], [200, 400], [400, 800].
        assert_eq!((ms(0, 0.0), ms(0, 0.5), ms(0, 1.0)), (50, 75, 100));
        assert_eq!((ms(1, 0.0), ms(1, 1.0)), (100, 200));
        assert_eq!((ms(2, 0.0), ms(2, 1.0)), (200, 400));
        assert_eq!((ms(3, 0.0), ms(3, 1.0)), (400, 800));
        // Capped at `max_delay` from then on, even where 2^retry overflows.
        assert_eq!((ms(4, 0.0), ms(4, 1.0)), (500, 1000));
        assert_eq!((ms(40, 0.0), ms(40, 1.0)), (500, 1000));
        // A jitter sample outside [0, 1] is clamped.
        assert_eq!((ms(0, -3.0), ms(0, 7.0)), (50, 100));
        // Spurious failures without Retry-After wait the backoff.
        for decision in [
            classify(Attempt::Transport { timeout: true, connect: false }, SystemTime::UNIX_EPOCH),
            status(502, None),
            status(429, None),
        ] {
            assert_eq!(wait_after(decision, 2, 0.25), Duration::from_millis(250));
        }
    }

    #[test]
    fn the_schedule_stops_after_max_retries_with_jittered_waits() {
        let waits: Vec<Duration> = Schedule::new(policy()).collect();
        assert_eq!(waits.len(), 4);
        for (retry, w) in waits.iter().enumerate() {
            let full = Duration::from_millis(100 << retry);
            assert!(
                *w >= full / 2 && *w <= full,
                "retry {retry}: {w:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        assert_eq!(Schedule::new(RetryPolicy { max_retries: 0, ..policy() }).count(), 0);
        // The jitter is random: many schedules do not all wait alike.
        let firsts: std::collections::BTreeSet<Duration> =
            (0..20).filter_map(|_| Schedule::new(policy()).next()).collect();
        assert!(firsts.len() > 1, "{firsts:?}");
    }
}
