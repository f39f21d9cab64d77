//! The Prometheus series: a [`Metrics`] value owns its `prometheus_client` registry (no global
//! recorder), the daemon's loop, the Immuta client and the webhook receiver record into it, and
//! the server's `/metrics` renders it. It sits at the crate root, beside both the daemon and the
//! server, so that neither imports the other for it (controller-rs keeps `metrics.rs` there too).
//!
//! Every series is prefixed `immuta_gitops_`:
//!
//! | series | type | labels |
//! | ------ | ---- | ------ |
//! | `reconciles_total` | counter | `result` |
//! | `reconcile_duration_seconds` | histogram | |
//! | `last_success_timestamp_seconds` | gauge (unix seconds) | |
//! | `applied_revision_info` | gauge = 1 | `revision` (only the current one) |
//! | `changes_total` | counter | `kind`, `action` |
//! | `api_requests_total` | counter | `endpoint`, `method`, `status` (code or `error`) |
//! | `api_request_duration_seconds` | histogram | `endpoint`, `method` |
//! | `api_retries_total` | counter | `endpoint`, `reason` |
//! | `drift_items` | gauge | `kind` |
//! | `license_seats_used`, `license_seats` | gauge | |
//! | `license_days_to_expiry` | gauge (absent when the license does not expire) | |
//! | `webhook_deliveries_total` | counter | `provider`, `result` |
//!
//! Labels stay low-cardinality: results and reasons are fixed words, endpoints are the
//! templates the client passes (`/api/v2/data/{key}`), never URLs with keys or ids in them.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::plan::Action;
use crate::spec::Kind;

/// The prefix of every series name.
pub const PREFIX: &str = "immuta_gitops";

/// The content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    revision: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    kind: &'static str,
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    method: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    endpoint: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: String,
}

/// A gauge without labels that can be absent (a family whose only member has no labels).
type OptionalGauge = Family<[(&'static str, &'static str); 0], Gauge>;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Reconcile durations: 0.1 s to about 7 min.
fn reconcile_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 13))
}

/// Immuta API request durations: 5 ms to about 20 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// The reconciler's metrics and the registry that renders them.
///
/// Shared as `Arc<Metrics>` between the loop, the Immuta client (as its
/// [`Observer`](crate::live::Observer)) and the server. Recording never fails and never blocks
/// for long.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    last_success: Gauge,
    applied_revision: Family<RevisionLabels, Gauge>,
    /// The revision currently in `applied_revision`; the lock also serialises replacing it so
    /// that a scrape never sees two stale revisions or none after the first.
    current_revision: Mutex<Option<String>>,
    changes: Family<ChangeLabels, Counter>,
    api_requests: Family<RequestLabels, Counter>,
    api_request_duration: HistogramFamily<EndpointLabels>,
    api_retries: Family<RetryLabels, Counter>,
    drift_items: Family<KindLabels, Gauge>,
    license_seats_used: Gauge,
    license_seats: Gauge,
    license_days_to_expiry: OptionalGauge,
    webhook_deliveries: Family<WebhookLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series, registered and empty.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix(PREFIX),
            reconciles: Family::default(),
            reconcile_duration: reconcile_buckets(),
            last_success: Gauge::default(),
            applied_revision: Family::default(),
            current_revision: Mutex::new(None),
            changes: Family::default(),
            api_requests: Family::default(),
            api_request_duration: Family::new_with_constructor(request_buckets),
            api_retries: Family::default(),
            drift_items: Family::default(),
            license_seats_used: Gauge::default(),
            license_seats: Gauge::default(),
            license_days_to_expiry: Family::default(),
            webhook_deliveries: Family::default(),
        };
        metrics.register();
        metrics
    }

    /// Registers every series (borrowing the registry and the families disjointly).
    fn register(&mut self) {
        let registry = &mut self.registry;
        // The counter encoder adds `_total`, the unit adds `_seconds`.
        registry.register("reconciles", "Reconciles finished, by result", self.reconciles.clone());
        registry.register_with_unit(
            "reconcile_duration",
            "How long a reconcile took",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        registry.register_with_unit(
            "last_success_timestamp",
            "When the last successful reconcile finished (unix seconds)",
            Unit::Seconds,
            self.last_success.clone(),
        );
        registry.register(
            "applied_revision_info",
            "The source revision last applied completely (value is always 1)",
            self.applied_revision.clone(),
        );
        registry.register(
            "changes",
            "Changes applied to the tenant, by kind and action",
            self.changes.clone(),
        );
        registry.register(
            "api_requests",
            "Immuta API requests finished (after retries), by endpoint, method and status",
            self.api_requests.clone(),
        );
        registry.register_with_unit(
            "api_request_duration",
            "Duration of the last attempt of an Immuta API request",
            Unit::Seconds,
            self.api_request_duration.clone(),
        );
        registry.register(
            "api_retries",
            "Immuta API requests retried, by endpoint and reason",
            self.api_retries.clone(),
        );
        registry.register(
            "drift_items",
            "Managed objects that drifted from the last applied state, by kind",
            self.drift_items.clone(),
        );
        registry.register(
            "license_seats_used",
            "License seats in use",
            self.license_seats_used.clone(),
        );
        registry.register("license_seats", "License seats available", self.license_seats.clone());
        registry.register(
            "license_days_to_expiry",
            "Days until the license expires (absent when it does not)",
            self.license_days_to_expiry.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries, by provider and result",
            self.webhook_deliveries.clone(),
        );
    }

    /// The OpenMetrics text exposition of every series, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            // Writing into a String cannot fail; an encoder error would be a bug in a label.
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }

    /// A reconcile finished with `result` (the spelling of the daemon's `Outcome`: `applied`,
    /// `no_changes`, `failed`, ...) after `took`.
    pub fn reconcile(&self, result: &str, took: Duration) {
        self.reconciles.get_or_create(&ResultLabels { result: result.to_owned() }).inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// A reconcile succeeded at `unix_seconds`.
    pub fn success_at(&self, unix_seconds: i64) {
        self.last_success.set(unix_seconds);
    }

    /// `revision` is now applied completely; the previous revision's series disappears.
    pub fn applied_revision(&self, revision: &str) {
        let mut current = self.current_revision.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_deref() == Some(revision) {
            return;
        }
        // Add the new series before removing the old one, so a scrape in between sees one.
        self.applied_revision
            .get_or_create(&RevisionLabels { revision: revision.to_owned() })
            .set(1);
        if let Some(old) = current.take() {
            self.applied_revision.remove(&RevisionLabels { revision: old });
        }
        *current = Some(revision.to_owned());
    }

    /// One change of `kind` was applied with `action`.
    pub fn change(&self, kind: Kind, action: Action) {
        self.changes
            .get_or_create(&ChangeLabels { kind: kind.as_str(), action: action.as_str() })
            .inc();
    }

    /// The last drift check found `items` drifted objects of `kind`.
    pub fn drift(&self, kind: Kind, items: i64) {
        self.drift_items.get_or_create(&KindLabels { kind: kind.as_str() }).set(items);
    }

    /// The license status: seats used and available, and days to expiry (`None`: no expiry,
    /// and the series is removed).
    pub fn license(&self, seats_used: i64, seats: i64, days_to_expiry: Option<i64>) {
        self.license_seats_used.set(seats_used);
        self.license_seats.set(seats);
        match days_to_expiry {
            Some(days) => {
                self.license_days_to_expiry.get_or_create(&[]).set(days);
            }
            None => {
                self.license_days_to_expiry.remove(&[]);
            }
        }
    }

    /// A webhook delivery from `provider` (`github`, `gitlab`, `unknown`) ended with `result`
    /// (`accepted`, `ignored`, `unauthorized`, `bad_request`, `unavailable`).
    pub fn webhook(&self, provider: &str, result: &str) {
        self.webhook_deliveries
            .get_or_create(&WebhookLabels {
                provider: provider.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }
}

impl crate::live::Observer for Metrics {
    fn request(&self, endpoint: &str, method: &str, status: Option<u16>, took: Duration) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.api_requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.api_request_duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    fn retry(&self, endpoint: &str, reason: &str) {
        self.api_retries
            .get_or_create(&RetryLabels {
                endpoint: endpoint.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Observer;

    #[test]
    fn counters_read_directly() {
        let m = Metrics::new();
        m.webhook("github", "accepted");
        m.webhook("github", "accepted");
        m.webhook("gitlab", "unauthorized");
        let got = |p: &str, r: &str| {
            m.webhook_deliveries
                .get(&WebhookLabels { provider: p.into(), result: r.into() })
                .map(|c| c.get())
        };
        assert_eq!(got("github", "accepted"), Some(2));
        assert_eq!(got("gitlab", "unauthorized"), Some(1));
        assert_eq!(got("gitlab", "accepted"), None);
    }

    #[test]
    fn only_the_current_revision_is_exposed() {
        let m = Metrics::new();
        m.applied_revision("aaa");
        m.applied_revision("bbb");
        m.applied_revision("bbb");
        let text = m.render();
        assert!(
            text.contains("immuta_gitops_applied_revision_info{revision=\"bbb\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("aaa"), "{text}");
    }

    #[test]
    fn days_to_expiry_disappears_without_expiry() {
        let m = Metrics::new();
        m.license(3, 10, Some(30));
        assert!(m.render().contains("immuta_gitops_license_days_to_expiry 30\n"));
        m.license(3, 10, None);
        let text = m.render();
        assert!(!text.contains("immuta_gitops_license_days_to_expiry "), "{text}");
        assert!(text.contains("immuta_gitops_license_seats 10\n"), "{text}");
    }

    #[test]
    fn transport_failures_are_labelled_error() {
        let m = Metrics::new();
        m.request("/api/v2/data", "POST", None, Duration::from_millis(3));
        m.request("/api/v2/data", "POST", Some(200), Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains(
                "immuta_gitops_api_requests_total{endpoint=\"/api/v2/data\",method=\"POST\",status=\"error\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("status=\"200\"} 1\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
