//! Prometheus metrics (OpenMetrics text, which Prometheus scrapes natively) at /metrics, behind
//! a bearer token when PORTAL_METRICS_TOKEN is set. Every label comes from a closed set.

use crate::state::AppState;
use axum::{
    extract::State,
    http::{header, HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The method as a label (and in logs): the standard ones by name, any other as "other", so
/// that made-up methods cannot grow the label space.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 16,
    ))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    jobs_queued: Gauge,
    jobs_failed: Gauge,
    database_up: Gauge,
    unknown_prices: Gauge,
    invoice_mismatches: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portal");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let jobs_queued = Gauge::default();
        let jobs_failed = Gauge::default();
        let database_up = Gauge::default();
        let unknown_prices = Gauge::default();
        let invoice_mismatches = Gauge::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to first response byte",
            latency.clone(),
        );
        registry.register(
            "jobs_queued",
            "Jobs waiting or running",
            jobs_queued.clone(),
        );
        registry.register(
            "jobs_failed",
            "Jobs that exhausted their retries",
            jobs_failed.clone(),
        );
        registry.register(
            "database_up",
            "1 when the database answers",
            database_up.clone(),
        );
        registry.register(
            "subscriptions_unknown_price",
            "Subscriptions whose Stripe price is no plan of the catalogue (flagged, plan left as it was)",
            unknown_prices.clone(),
        );
        registry.register(
            "invoices_totals_mismatch",
            "Invoices whose totals do not add up from their lines (recorded on the invoice)",
            invoice_mismatches.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            jobs_queued,
            jobs_failed,
            database_up,
            unknown_prices,
            invoice_mismatches,
        }
    }
}

impl Metrics {
    /// Counts a request by method, route template (never the raw path, so ids do not explode
    /// the label space) and status, and records its latency.
    pub fn observe(&self, method: &Method, route: &str, status: u16, elapsed: std::time::Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// Whether the request may read the metrics: always without a configured token, else only
/// with `Authorization: Bearer <token>` (compared in constant time).
fn authorized(expected: Option<&str>, headers: &HeaderMap) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let Some(expected) = expected else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Digests of equal length, so neither the comparison nor its length tells anything.
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(state.metrics_token.as_deref(), &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Bearer"),
                (header::CACHE_CONTROL, "no-store"),
            ],
        )
            .into_response();
    }
    let metrics = &state.metrics;
    match domain::jobs::counts(&state.portal.db).await {
        Ok(counts) => {
            metrics.jobs_queued.set(counts.queued);
            metrics.jobs_failed.set(counts.failed);
            metrics.database_up.set(1);
        }
        Err(_) => {
            metrics.database_up.set(0);
        }
    }
    for (gauge, count) in [
        (
            &metrics.unknown_prices,
            domain::billing::subscriptions::unknown_price_count(&state.portal.db).await,
        ),
        (
            &metrics.invoice_mismatches,
            domain::billing::documents::mismatch_count(&state.portal.db).await,
        ),
    ] {
        match count {
            Ok(count) => {
                gauge.set(count);
            }
            Err(_) => {
                metrics.database_up.set(0);
            }
        }
    }
    let mut body = String::new();
    if encode(&mut body, &metrics.registry).is_err() {
        body = "# metrics could not be encoded\n".into();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_standard_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
        assert_eq!(
            method_label(&Method::from_bytes(b"X-MADE-UP-1").unwrap()),
            "other"
        );
    }

    #[test]
    fn the_token_is_required_when_set() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert!(authorized(None, &HeaderMap::new()));
        assert!(!authorized(Some("s3cret"), &HeaderMap::new()));
        assert!(!authorized(Some("s3cret"), &with("Bearer wrong")));
        assert!(!authorized(Some("s3cret"), &with("Bearer s3cre")));
        assert!(!authorized(Some("s3cret"), &with("Basic s3cret")));
        assert!(!authorized(Some("s3cret"), &with("s3cret")));
        assert!(authorized(Some("s3cret"), &with("Bearer s3cret")));
    }
}
