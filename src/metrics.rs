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
//! | `license_expiry_timestamp_seconds` | gauge (unix seconds; absent when no license expires) | |
//! | `webhook_deliveries_total` | counter | `provider`, `result` |
//! | `build_info` | gauge = 1 | `version`, `commit`, `build_date` |
//!
//! Labels stay low-cardinality: results and reasons are fixed words, endpoints are the
//! templates the client passes (`/api/v2/data/{key}`), never URLs with keys or ids in them.
//!
//! Families with a closed set of labels (`reconciles_total` by result, `drift_items` by kind,
//! `changes_total` by kind and action, `webhook_deliveries_total` by provider and result) have
//! every series from the start, at 0, so that `absent()` and `rate()` alerts work before the
//! first event. Times are in seconds and timestamps in unix seconds (Prometheus' base units):
//! alert on `immuta_gitops_license_expiry_timestamp_seconds - time() < 30 * 86400`.
//!
//! `/metrics` answers OpenMetrics to a scraper that asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does) and the Prometheus text format 0.0.4
//! otherwise ([`Metrics::render_text`]; what `promtool check metrics` and `curl` read).

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

/// The content type of [`Metrics::render`] (OpenMetrics).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`Metrics::render_text`] (the Prometheus text format).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `result` labels of `reconciles_total`: every outcome a pass records (a pass abandoned
/// by shutdown is never recorded). The spellings are the daemon's `Outcome::as_str`.
pub const RECONCILE_RESULTS: [&str; 9] = [
    "applied",
    "no_changes",
    "planned",
    "drift",
    "invalid",
    "refused",
    "failed",
    "source_error",
    "unchanged_revision",
];

/// The `provider` and `result` labels of `webhook_deliveries_total`.
const WEBHOOK_PROVIDERS: [&str; 3] = ["github", "gitlab", "unknown"];
const WEBHOOK_RESULTS: [&str; 5] =
    ["accepted", "ignored", "unauthorized", "bad_request", "unavailable"];

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
    build_date: &'static str,
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
    license_expiry: OptionalGauge,
    webhook_deliveries: Family<WebhookLabels, Counter>,
    build_info: Family<BuildLabels, Gauge>,
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
            license_expiry: Family::default(),
            webhook_deliveries: Family::default(),
            build_info: Family::default(),
        };
        metrics.register();
        metrics.initialise();
        metrics
    }

    /// Creates every series of the closed label sets at 0, and `build_info`.
    fn initialise(&self) {
        for result in RECONCILE_RESULTS {
            let _ = self.reconciles.get_or_create(&ResultLabels { result: result.to_owned() });
        }
        for kind in Kind::ALL {
            let _ = self.drift_items.get_or_create(&KindLabels { kind: kind.as_str() });
            for action in Action::ALL.into_iter().filter(|a| *a != Action::NoOp) {
                let labels = ChangeLabels { kind: kind.as_str(), action: action.as_str() };
                let _ = self.changes.get_or_create(&labels);
            }
        }
        for provider in WEBHOOK_PROVIDERS {
            for result in WEBHOOK_RESULTS {
                let _ = self.webhook_deliveries.get_or_create(&WebhookLabels {
                    provider: provider.to_owned(),
                    result: result.to_owned(),
                });
            }
        }
        self.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("IMMUTA_GITOPS_COMMIT"),
                build_date: env!("IMMUTA_GITOPS_BUILD_DATE"),
            })
            .set(1);
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
        registry.register_with_unit(
            "license_expiry_timestamp",
            "When the license expires, unix seconds (absent when no license expires)",
            Unit::Seconds,
            self.license_expiry.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries, by provider and result",
            self.webhook_deliveries.clone(),
        );
        registry.register(
            "build_info",
            "The running binary: version, commit and build date (value is always 1)",
            self.build_info.clone(),
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

    /// Every series in the Prometheus text format 0.0.4: the OpenMetrics exposition without
    /// `# UNIT` and `# EOF`, with counter families named by their `_total` samples.
    pub fn render_text(&self) -> String {
        openmetrics_to_text(&self.render())
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

    /// The license status: seats used and available, and when the license expires in unix
    /// seconds (`None`: no expiry, and the series is removed).
    pub fn license(&self, seats_used: i64, seats: i64, expires_at: Option<i64>) {
        self.license_seats_used.set(seats_used);
        self.license_seats.set(seats);
        match expires_at {
            Some(at) => {
                self.license_expiry.get_or_create(&[]).set(at);
            }
            None => {
                self.license_expiry.remove(&[]);
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

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition (as prometheus-client writes
/// it): `# UNIT` lines and `# EOF` dropped, and a counter family's `# HELP` and `# TYPE` named by
/// its samples (`x_total`), which is how the text format names counters.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
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
        // Initialised at 0 (a closed label set), not absent.
        assert_eq!(got("gitlab", "accepted"), Some(0));
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
    fn the_expiry_timestamp_disappears_without_expiry() {
        let m = Metrics::new();
        m.license(3, 10, Some(1_800_000_000));
        assert!(m.render().contains("immuta_gitops_license_expiry_timestamp_seconds 1800000000\n"));
        m.license(3, 10, None);
        let text = m.render();
        assert!(!text.contains("immuta_gitops_license_expiry_timestamp_seconds "), "{text}");
        assert!(text.contains("immuta_gitops_license_seats 10\n"), "{text}");
    }

    #[test]
    fn closed_label_sets_start_at_zero_and_build_info_is_set() {
        let text = Metrics::new().render();
        for result in RECONCILE_RESULTS {
            let line = format!("immuta_gitops_reconciles_total{{result=\"{result}\"}} 0\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("immuta_gitops_drift_items{kind=\"policy\"} 0\n"), "{text}");
        assert!(
            text.contains("immuta_gitops_changes_total{kind=\"policy\",action=\"create\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "immuta_gitops_webhook_deliveries_total{provider=\"github\",result=\"accepted\"} 0\n"
            ),
            "{text}"
        );
        let build = format!(
            "immuta_gitops_build_info{{version=\"{}\",commit=\"{}\",build_date=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION"),
            env!("IMMUTA_GITOPS_COMMIT"),
            env!("IMMUTA_GITOPS_BUILD_DATE")
        );
        assert!(text.contains(&build), "{text}");
    }

    #[test]
    fn the_reconcile_results_are_the_recorded_outcomes() {
        let recorded: Vec<&str> = crate::daemon::Outcome::ALL
            .into_iter()
            .filter(|o| *o != crate::daemon::Outcome::Cancelled)
            .map(|o| o.as_str())
            .collect();
        assert_eq!(recorded, RECONCILE_RESULTS);
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_drops_openmetrics_lines() {
        let m = Metrics::new();
        m.reconcile("applied", Duration::from_millis(5));
        let text = m.render_text();
        assert!(text.contains("# TYPE immuta_gitops_reconciles_total counter\n"), "{text}");
        assert!(text.contains("# HELP immuta_gitops_reconciles_total Reconciles"), "{text}");
        assert!(text.contains("immuta_gitops_reconciles_total{result=\"applied\"} 1\n"));
        assert!(text.contains("# TYPE immuta_gitops_reconcile_duration_seconds histogram\n"));
        assert!(!text.contains("# UNIT") && !text.contains("# EOF"), "{text}");
        // Every family has its help text.
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(families, helps);
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
