//! Waiting for data sources that Immuta creates in the background.
//!
//! `POST /api/v2/data` answers at once by default (`wait` 0, the documented default) and
//! creates the data sources afterwards; a project posted in the same apply (or in an apply
//! right after) that names one of them is refused until it exists. So before the projects of a
//! plan are posted, the data sources they name that managed connections produce (recorded in
//! the state, or written by this apply) are looked up (`GET /dataSource?searchText=<name>`, an
//! exact match) until every one is listed, or the creation timeout passes (`apply
//! --creation-timeout`, ten minutes by default). The wait is reported to the
//! [`Progress`](super::Progress) when it starts and when it ends; a project whose data sources
//! did not appear in time is skipped, saying so, and the next apply posts it.
//!
//! Data sources no managed connection produces are not waited for: nothing here creates them,
//! and the plan's dry run found them (or the tenant refuses the project at once).
//! fh-immuta-utils polls `GET /jobs?connectionString=` instead; that route is absent from
//! Immuta's 2023 Swagger and the current docs describe `GET /jobs` with a required `bulkId`, so
//! the listing, which every tenant has, is what is asked.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Progress;
use crate::live::{self, Client};

/// How long an apply waits for data sources by default.
pub const DEFAULT_CREATION_TIMEOUT: Duration = Duration::from_secs(600);

/// The first pause between two looks; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(5);

/// The data-source names `payload` (a project) names among `fresh`, sorted.
pub(super) fn needed(payload: &Value, fresh: &BTreeSet<String>) -> Vec<String> {
    let names: BTreeSet<&str> = payload
        .get("datasources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|n| fresh.contains(*n))
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

/// Why the data sources were not all found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NotCreated {
    /// The names still missing.
    pub missing: Vec<String>,
    /// Why: the timeout, a cancellation, or a failed look.
    pub reason: String,
}

/// Looks up `names` until every one is listed, `timeout` passes, or `cancel` fires.
pub(super) async fn until_created(
    client: &Client,
    names: Vec<String>,
    timeout: Duration,
    cancel: &CancellationToken,
    parallelism: usize,
    progress: &dyn Progress,
) -> Result<(), NotCreated> {
    let started = Instant::now();
    let mut missing = names;
    let mut pause = FIRST_POLL;
    let mut announced = false;
    loop {
        missing = match live::missing_data_sources(client, &missing, parallelism).await {
            Ok(m) => m,
            Err(e) => {
                return Err(NotCreated {
                    missing,
                    reason: format!("they could not be looked up: {e}"),
                });
            }
        };
        if missing.is_empty() {
            if announced {
                let message = format!(
                    "the data sources exist (after {})",
                    humantime::format_duration(round(started.elapsed()))
                );
                tracing::info!("{message}");
                progress.waiting(&message);
            }
            return Ok(());
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(NotCreated {
                missing,
                reason: format!(
                    "Immuta had not created them after {} (it creates data sources in the \
                     background); raise --creation-timeout, or give the connection `gitops: \
                     {{wait: SECONDS}}`, and apply again",
                    humantime::format_duration(round(timeout))
                ),
            });
        }
        if !announced {
            announced = true;
            let shown: Vec<String> = missing.iter().take(5).map(|n| format!("`{n}`")).collect();
            let more = missing.len().saturating_sub(5);
            let message = format!(
                "waiting up to {} for Immuta to create the data sources the projects name: {}{}",
                humantime::format_duration(round(timeout)),
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            );
            tracing::info!("{message}");
            progress.waiting(&message);
        }
        let nap = pause.min(timeout - elapsed);
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = cancel.cancelled() => {
                return Err(NotCreated { missing, reason: "the run was cancelled".to_owned() });
            }
        }
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// `d` to whole milliseconds (shorter to read).
fn round(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_project_waits_only_for_the_data_sources_this_apply_wrote() {
        let fresh: BTreeSet<String> = ["a", "b"].map(String::from).into();
        let project = json!({"datasources": ["b", "old", "a", "b"]});
        assert_eq!(needed(&project, &fresh), ["a", "b"]);
        assert!(needed(&json!({"name": "no data sources"}), &fresh).is_empty());
    }
}
