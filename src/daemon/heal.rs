//! The self-heal backoff: drift is re-applied at once the first time, then only after a wait
//! that doubles with each consecutive heal (from [`HEAL_MIN`] up to [`HEAL_MAX`]), so an object
//! that something outside keeps changing back cannot make the reconciler hammer the tenant. A
//! drift check that finds nothing resets it.
//!
//! Time is tokio's [`Instant`], so tests run under paused time.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::Outcome;

/// The first self-heal backoff; it doubles after each consecutive heal, up to [`HEAL_MAX`].
pub const HEAL_MIN: Duration = Duration::from_secs(30);
/// The longest self-heal backoff.
pub const HEAL_MAX: Duration = Duration::from_secs(3600);

/// When the next heal may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the next heal.
    delay: Duration,
    /// No heal before this instant (`None`: heal at once).
    after: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { delay: HEAL_MIN, after: None }
    }
}

impl Backoff {
    /// Whether a drift check may heal now.
    pub fn allows_heal(&self) -> bool {
        self.after.is_none_or(|t| Instant::now() >= t)
    }

    /// Records how a drift check ended: a heal ([`Outcome::Applied`]) makes the next one wait
    /// (twice as long each time); no drift ([`Outcome::NoChanges`]) resets the wait; anything
    /// else (drift only reported, a failure) leaves it as it is.
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Applied => {
                self.after = Some(Instant::now() + self.delay);
                self.delay = (self.delay * 2).min(HEAL_MAX);
            }
            Outcome::NoChanges => *self = Backoff::default(),
            Outcome::Planned
            | Outcome::Drift
            | Outcome::Invalid
            | Outcome::Refused
            | Outcome::Failed
            | Outcome::SourceError
            | Outcome::UnchangedRevision
            | Outcome::Cancelled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Advances paused time by `secs` seconds.
    async fn wait(secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_heal_runs_at_once_and_the_next_waits_thirty_seconds() {
        let mut b = Backoff::default();
        assert!(b.allows_heal());
        b.record(Outcome::Applied);
        assert!(!b.allows_heal());
        wait(29).await;
        assert!(!b.allows_heal());
        wait(1).await;
        assert!(b.allows_heal());
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_heals_double_the_wait_up_to_an_hour() {
        let mut b = Backoff::default();
        let mut expected = Vec::new();
        let mut waits = Vec::new();
        let mut delay = HEAL_MIN;
        for _ in 0..10 {
            b.record(Outcome::Applied);
            // Find the wait by stepping a second at a time.
            let mut waited = 0;
            while !b.allows_heal() {
                wait(1).await;
                waited += 1;
            }
            waits.push(waited);
            expected.push(delay.as_secs());
            delay = (delay * 2).min(HEAL_MAX);
        }
        assert_eq!(waits, expected);
        assert_eq!(&waits[..8], [30, 60, 120, 240, 480, 960, 1920, 3600]);
        assert_eq!(waits[9], 3600);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_drift_check_resets_and_other_outcomes_keep_the_backoff() {
        let mut b = Backoff::default();
        b.record(Outcome::Applied);
        b.record(Outcome::Applied);
        let backing_off = b.clone();
        for o in [Outcome::Drift, Outcome::Failed, Outcome::Refused, Outcome::Cancelled] {
            b.record(o);
            assert_eq!(b, backing_off, "{o}");
        }
        assert!(!b.allows_heal());
        b.record(Outcome::NoChanges);
        assert_eq!(b, Backoff::default());
        assert!(b.allows_heal());
    }
}
