//! Session cookies and the session table, through the portal's own middleware.

mod common;

use axum::{routing::get, Router};
use domain::{db::Backend, on_db};
use reqwest::header;
use server::state::AppState;
use tower_sessions::Session;

/// A route that puts something in the session, as sign-in will.
fn routes() -> Router<AppState> {
    Router::new().route(
        "/test/session",
        get(|session: Session| async move {
            let visits: u32 = session.get("visits").await.ok().flatten().unwrap_or(0);
            session
                .insert("visits", visits + 1)
                .await
                .expect("session stores");
            format!("visits={}", visits + 1)
        }),
    )
}

async fn session_rows(app: &common::TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT id, client_ip, user_agent FROM sessions"
    )
    .fetch_all(pool)
    .await
    .unwrap())
}

async fn cookies_are_http_only_lax_and_rows_record_the_device(backend: Backend) {
    let app = common::spawn_app(backend).await;
    let base = common::serve(server::http::with_middleware(routes(), app.state.clone())).await;
    let client = reqwest::Client::new();

    let first = client
        .get(format!("{base}/test/session"))
        .send()
        .await
        .unwrap();
    let cookie = first.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("portal_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-http runs cannot use Secure cookies: {cookie}"
    );
    assert_eq!(first.text().await.unwrap(), "visits=1");

    let rows = session_rows(&app).await;
    assert_eq!(rows.len(), 1, "one session stored");
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("portal_session=");
    assert!(
        !value.contains(&rows[0].0) && !rows[0].0.contains(value),
        "the table holds a hash, not the cookie"
    );
    assert_eq!(rows[0].0.len(), 64);

    let pair = cookie.split(';').next().unwrap().to_string();
    let second = client
        .get(format!("{base}/test/session"))
        .header(header::COOKIE, &pair)
        .header(header::USER_AGENT, "TestAgent/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        second.text().await.unwrap(),
        "visits=2",
        "the session was loaded from the database"
    );
    let rows = session_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_deref(), Some("127.0.0.1"));
    assert_eq!(rows[0].2.as_deref(), Some("TestAgent/1.0"));

    let forged = client
        .get(format!("{base}/test/session"))
        .header(header::COOKIE, format!("{pair}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.text().await.unwrap(),
        "visits=1",
        "a tampered cookie starts a new session"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn sqlite_cookies_are_http_only_lax_and_rows_record_the_device() {
    cookies_are_http_only_lax_and_rows_record_the_device(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_cookies_are_http_only_lax_and_rows_record_the_device() {
    cookies_are_http_only_lax_and_rows_record_the_device(Backend::Postgres).await;
}

#[tokio::test]
async fn behind_https_cookies_are_secure_host_cookies_and_hsts_is_sent() {
    let app = common::spawn_app_with(Backend::Sqlite, Some("https://portal.example")).await;
    let base = common::serve(server::http::with_middleware(routes(), app.state.clone())).await;
    let response = reqwest::get(format!("{base}/test/session")).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("__Host-portal_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Domain="),
        "__Host- cookies carry no Domain: {cookie}"
    );
    assert!(response.headers()[header::STRICT_TRANSPORT_SECURITY]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    app.cleanup().await;
}
