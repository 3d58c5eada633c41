//! Session cookies and the session bookkeeping (last seen, IP, device).

use crate::{session_store::DbSessionStore, state::AppState};
use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use tower_sessions::{
    cookie::{Key, SameSite},
    service::SignedCookie,
    Expiry, Session, SessionManagerLayer,
};

pub fn layer(state: &AppState) -> SessionManagerLayer<DbSessionStore, SignedCookie> {
    SessionManagerLayer::new(DbSessionStore::new(
        state.portal.clone(),
        state.config.session_idle_minutes,
        state.config.session_absolute_hours,
    ))
    .with_name(state.session_cookie_name())
    .with_http_only(true)
    .with_same_site(SameSite::Lax)
    .with_secure(state.https)
    .with_path("/")
    // The cookie lives as long as a signed-in session may; the idle limit is kept on the
    // server, where each use extends it (see `touch`).
    .with_expiry(Expiry::OnInactivity(time::Duration::hours(
        state.config.session_absolute_hours,
    )))
    .with_signed(Key::from(&state.secrets_session_key))
}

/// Records the session's last use, client IP and user agent, and extends its idle expiry (at
/// most once a minute). Before the handler runs, so that the page listing the sessions shows
/// the current one complete; a session created by this request is recorded on its next one.
pub async fn touch(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let session = request.extensions().get::<Session>().cloned();
    let ip = super::client_ip::from_request(&request, &state.config.trusted_proxies)
        .map(|ip| ip.to_string());
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(id) = session.and_then(|s| s.id()) {
        let key = crate::session_store::storage_key(&id);
        let now = state.portal.clock.now_ms();
        if let Err(error) = domain::sessions::touch(
            &state.portal.db,
            &key,
            ip.as_deref(),
            user_agent.as_deref(),
            now,
            now + state.config.session_idle_minutes * 60_000,
        )
        .await
        {
            tracing::warn!(%error, "could not record session activity");
        }
    }
    next.run(request).await
}
