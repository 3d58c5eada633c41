//! The HTTP surface: Leptos pages and server functions, plain routes, and the middleware
//! every response passes through.

pub mod client_ip;
pub mod error_page;
pub mod gzip_splice;
pub mod health;
pub mod metrics;
pub mod page_cache;
pub mod security;
pub mod sessions;

use crate::state::AppState;
use app::{shell::shell, App};
use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::Response,
    routing::get,
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

/// Provides what pages and server functions need: the services and the request's nonce.
fn leptos_context(portal: domain::Portal) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(portal.clone());
        let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<security::CspNonce>().cloned());
        if let Some(nonce) = nonce {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0));
        }
    }
}

/// Server-function answers are per request and may be personal: never cached.
async fn no_store_api(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if api {
        no_store(response)
    } else {
        response
    }
}

pub fn router(state: AppState) -> Router {
    let context = leptos_context(state.portal.clone());
    let assets = state.assets.clone();
    let app_shell = move || shell(assets.clone());
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
    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, context, app_shell)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            page_cache::serve,
        ));

    let routes = Router::new()
        .merge(pages)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route("/robots.txt", get(health::robots_txt))
        .route("/.well-known/security.txt", get(health::security_txt))
        .nest_service("/pkg", pkg)
        .fallback(move |request: Request<Body>| fallback(request));
    with_middleware(routes, state)
}

/// Wraps routes in the middleware every response passes through (outermost first): request
/// id, tracing span, metrics, security headers, compression, the panic catcher, a timeout, the
/// Origin check, sessions.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    routes
        .layer(middleware::from_fn(no_store_api))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            sessions::touch,
        ))
        .layer(sessions::layer(&state))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::origin_check,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    metrics::track,
                ))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    security::headers,
                ))
                .layer(CompressionLayer::new())
                .layer(CatchPanicLayer::custom(error_page::from_panic))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                )),
        )
        .with_state(state)
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
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Marks signed-in and personal responses as not cacheable by anyone.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
