//! Session cookies and the session bookkeeping (last seen, IP, device).

use crate::{session_store::DbSessionStore, state::AppState};
use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use std::{collections::HashMap, sync::Mutex};
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

/// How often a session's use is written: its last-seen time, IP and user agent are this fresh.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Sessions remembered as recently written; past this (and after dropping the stale ones) every
/// request writes again, which is correct, only slower.
const MAX_REMEMBERED: usize = 100_000;

/// The sessions this replica wrote as used within the last minute, by storage key. The
/// database write is conditional too (see `domain::sessions::touch`), but on SQLite even an
/// UPDATE that matches no row takes the one write lock: remembering here keeps a busy session's
/// requests from writing at all.
#[derive(Default)]
pub struct RecentlyTouched(Mutex<HashMap<String, i64>>);

impl RecentlyTouched {
    /// Whether `key` is due a write at `now`; when it is, it counts as written from now on.
    fn due(&self, key: &str, now: i64) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return true;
        };
        if seen.get(key).is_some_and(|at| now - at < TOUCH_EVERY_MS) {
            return false;
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, at| now - *at < TOUCH_EVERY_MS);
        }
        if seen.len() < MAX_REMEMBERED {
            seen.insert(key.to_string(), now);
        }
        true
    }
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
        if !state.recently_touched.due(&key, now) {
            return next.run(request).await;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_due_once_a_minute() {
        let touched = RecentlyTouched::default();
        assert!(touched.due("a", 0), "first use");
        assert!(!touched.due("a", 59_999), "within the minute");
        assert!(touched.due("b", 1), "each session on its own");
        assert!(touched.due("a", 60_000), "a minute later");
        assert!(!touched.due("a", 60_001));
    }

    #[test]
    fn a_full_memory_forgets_stale_sessions_and_never_skips_a_due_write() {
        let touched = RecentlyTouched::default();
        for i in 0..MAX_REMEMBERED {
            assert!(touched.due(&i.to_string(), 0));
        }
        assert!(touched.due("late", 10), "full: the write happens");
        assert!(touched.due("late", 20), "and is not remembered");
        assert!(
            touched.due("later", TOUCH_EVERY_MS),
            "stale entries make room"
        );
        assert!(!touched.due("later", TOUCH_EVERY_MS + 1));
        assert_eq!(touched.0.lock().unwrap().len(), 1);
    }
}
