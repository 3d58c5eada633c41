//! Liveness, readiness, robots.txt and security.txt.

use crate::state::AppState;
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
};
use time::format_description::well_known::Rfc3339;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], "ok\n")
}

/// The process can serve: its database answers.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.portal.db.ping().await {
        (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            "ready\n",
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, "no-store")],
            "database unreachable\n",
        )
    }
}

pub async fn robots_txt() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User-agent: *\nDisallow: /account\nDisallow: /billing/\nDisallow: /i/\nDisallow: /api/\nAllow: /\n",
    )
}

/// RFC 9116: contact from configuration, an expiry a year ahead, and the canonical URL.
pub async fn security_txt(State(state): State<AppState>) -> impl IntoResponse {
    let expires = (state.portal.clock.now() + time::Duration::days(365))
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let body = format!(
        "Contact: {contact}\nExpires: {expires}\nPreferred-Languages: en\nCanonical: {url}/.well-known/security.txt\n",
        contact = state.config.security_contact(),
        url = state.public_url,
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}
