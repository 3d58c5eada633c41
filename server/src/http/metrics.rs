//! Prometheus metrics (OpenMetrics text, which Prometheus scrapes natively) at /metrics.

use crate::state::AppState;
use axum::{
    extract::State,
    http::{header, Method},
    response::IntoResponse,
};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
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
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portal");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let jobs_queued = Gauge::default();
        let jobs_failed = Gauge::default();
        let database_up = Gauge::default();
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
        Self {
            registry,
            requests,
            latency,
            jobs_queued,
            jobs_failed,
            database_up,
        }
    }
}

impl Metrics {
    /// Counts a request by method, route template (never the raw path, so ids do not explode
    /// the label space) and status, and records its latency.
    pub fn observe(&self, method: &Method, route: &str, status: u16, elapsed: std::time::Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
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

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
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
}
