//! The HTTP surface: Leptos pages and server functions, plain routes, and the middleware
//! every response passes through.

pub mod client_ip;
pub mod error_page;
pub mod forms;
pub mod gzip_splice;
pub mod health;
pub mod icons;
pub mod invoice_links;
pub mod metrics;
pub mod page_cache;
pub mod plain_page;
pub mod security;
pub mod sessions;
pub mod webhooks;

use crate::state::AppState;
use app::{shell::shell, App};
use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::{CompressionLayer, CompressionLevel},
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

/// Provides what pages and server functions need: the services and the request's nonce.
/// Captures the shared state (one `Arc`): axum clones route handlers per request.
fn leptos_context(state: AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(state.portal.clone());
        provide_context(app::server_fns::RequestAccount::default());
        provide_context(app::server_fns::AuthProviders(state.providers.buttons()));
        provide_context(app::server_fns::PrivacyContact(
            state.config.privacy_contact(),
        ));
        provide_context(app::server_fns::SessionPolicy {
            absolute_ms: state.config.session_absolute_hours * 3_600_000,
        });
        let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<security::CspNonce>().cloned());
        if let Some(nonce) = nonce {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0));
        }
    }
}

/// The one middleware at the edge (kept to one because every extra layer costs a boxed clone
/// of the service per request): the CSP nonce, the Origin check, the page cache, the security
/// headers, no-store for server functions, and the request metrics.
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = route_label(&request).to_string();
    // Server functions and every response to a visitor with a session are personal.
    let personal = request.uri().path().starts_with("/api/")
        || (page_cache::has_session_cookie(&request, state.session_cookie_name())
            && !request.uri().path().starts_with("/pkg/"));
    let nonce = security::new_nonce(&state);
    let csp = if request.uri().path().starts_with("/i/") {
        Some(invoice_links::POLICY.to_string())
    } else {
        security::STRIPE_PAGES
            .contains(&request.uri().path())
            .then_some(state.portal.payments.as_ref())
            .flatten()
            .map(|p| security::stripe_page_policy(&nonce, &p.config.js_url, &p.config.api_base))
    };
    let mut response = if let Some(refusal) = security::refuse_cross_origin(&state, &request) {
        refusal
    } else if let Some(key) = page_cache::cache_key(
        &request,
        state.session_cookie_name(),
        route != UNMATCHED_ROUTE,
    ) {
        page_cache::serve(&state, key, request, next, &nonce).await
    } else {
        request
            .extensions_mut()
            .insert(security::CspNonce(nonce.clone()));
        next.run(request).await
    };
    if personal {
        response = no_store(response);
    }
    security::apply(&mut response, &nonce, state.https, csp);
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

pub fn router(state: AppState) -> Router {
    let context = leptos_context(state.clone());
    let shell_state = state.clone();
    let app_shell = move || shell(shell_state.assets.clone());
    let fallback =
        leptos_axum::render_app_to_stream_with_context(context.clone(), app_shell.clone());

    let immutable = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    let pkg = ServiceBuilder::new().layer(immutable).service(
        ServeDir::new(state.config.site_root.join("pkg"))
            .precompressed_br()
            .precompressed_gzip(),
    );

    let routes = generate_route_list(App);
    let pages = Router::new().leptos_routes_with_context(&state, routes, context, app_shell);

    let routes = pages
        .merge(forms::routes())
        .route("/webhooks/stripe", post(webhooks::stripe))
        .route("/i/{token}", get(invoice_links::open))
        .route("/i/{token}/pdf", get(invoice_links::open_pdf))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route("/robots.txt", get(health::robots_txt))
        .route("/favicon.ico", get(icons::favicon_ico))
        .route("/favicon.svg", get(icons::favicon_svg))
        .route("/.well-known/security.txt", get(health::security_txt))
        .nest_service("/pkg", pkg)
        .fallback(move |request: Request<Body>| fallback(request));
    with_middleware(routes, state)
}

/// Wraps routes in the middleware every response passes through (outermost first): request
/// id, tracing span, the edge (nonce, Origin check, security headers, metrics), compression,
/// the panic catcher, a timeout, sessions.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    routes
        .layer(middleware::from_fn_with_state(
            state.clone(),
            sessions::touch,
        ))
        .layer(sessions::layer(&state))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), RandomRequestId))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn_with_state(state.clone(), edge))
                // Brotli's own default is its slowest level (11), meant for files compressed
                // once; pages compressed per response take 4, as CDNs do.
                .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
                .layer(CatchPanicLayer::custom(error_page::from_panic))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                )),
        )
        .with_state(state)
}

/// Request ids: random UUIDs from the thread-local generator (no system call per request).
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let bytes: [u8; 16] = rand::random();
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        HeaderValue::from_str(&id.to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// The route of a request no route matched (the 404 page, among others).
pub const UNMATCHED_ROUTE: &str = "other";

/// What logs and metrics say about a request's path: the matched route
/// (`/verify-email/{token}`), never the raw path nor the query, which can carry tokens.
pub fn route_label(request: &axum::http::Request<Body>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or(UNMATCHED_ROUTE)
}

fn request_span(request: &axum::http::Request<Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %metrics::method_label(request.method()),
        route = %route_label(request),
    )
}

/// Marks signed-in and personal responses as not cacheable by anyone.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
