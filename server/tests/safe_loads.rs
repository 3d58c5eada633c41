//! A page load changes nothing: signed in as a customer with a card and a paid homeserver,
//! GET every route of the portal (every Leptos page, found from the app's own route list, and
//! every plain route) and find no database change other than the session's last-seen time, and
//! no call at all to the Stripe test server. On both databases.

mod common;

use common::{
    browser::api,
    stripe::{paying_customer, spawn_app_with_stripe, StripeServer},
    TestApp,
};
use domain::{db::Backend, on_db};

/// Columns a GET may write: the session's last-seen time and what goes with it.
const MAY_CHANGE: &[(&str, &str)] = &[
    ("sessions", "last_seen_at"),
    ("sessions", "expires_at"),
    ("sessions", "client_ip"),
    ("sessions", "user_agent"),
];

async fn tables(app: &TestApp) -> Vec<String> {
    on_db!(&app.state.portal.db, pool => sqlx::query_scalar(match app.state.portal.db.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        Backend::Postgres => "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '_sqlx_migrations' ORDER BY table_name",
    })
    .fetch_all(pool)
    .await
    .unwrap())
}

async fn columns(app: &TestApp, table: &str) -> Vec<String> {
    on_db!(&app.state.portal.db, pool => sqlx::query_scalar(match app.state.portal.db.backend() {
        Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    })
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap())
}

/// Every row of every table as text (the columns a GET may write left out), sorted.
async fn snapshot(app: &TestApp) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for table in tables(app).await {
        let cols: Vec<String> = columns(app, &table)
            .await
            .into_iter()
            .filter(|c| !MAY_CHANGE.contains(&(table.as_str(), c.as_str())))
            .map(|c| match app.state.portal.db.backend() {
                // quote() renders every SQLite value (blobs too) as text.
                Backend::Sqlite => format!("quote({c})"),
                Backend::Postgres => format!("COALESCE(CAST({c} AS TEXT), '-')"),
            })
            .collect();
        let sql = format!("SELECT {} FROM {table}", cols.join(" || '|' || "));
        let mut rows: Vec<String> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(&sql)
            .fetch_all(pool)
            .await
            .unwrap());
        rows.sort();
        out.push((table, rows));
    }
    out
}

/// The paths to load: every Leptos route with its parameters filled in, and the plain routes.
fn paths(homeserver: &str) -> Vec<String> {
    let token = "a".repeat(64);
    let mut paths: Vec<String> = leptos_axum::generate_route_list(app::App)
        .into_iter()
        .map(|route| route.path().to_string())
        .map(|p| {
            p.replace(":token", &token)
                .replace("{token}", &token)
                .replace(":id", homeserver)
                .replace("{id}", homeserver)
        })
        .collect();
    assert!(paths.iter().any(|p| p == "/billing/card"), "{paths:?}");
    paths.extend(
        [
            "/billing/card?next=/order",
            "/healthz",
            "/readyz",
            "/metrics",
            "/robots.txt",
            "/.well-known/security.txt",
            "/favicon.ico",
            "/no-such-page",
            "/auth/oidc/callback",
        ]
        .map(String::from),
    );
    paths
}

async fn page_loads_change_nothing(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    let mut ada = paying_customer(&app, &stripe, "ada@example.com").await;
    let homeserver = api(&mut ada, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Move past the once-a-minute last-seen write, so loads may write it (and it is ignored).
    app.clock.advance(time::Duration::minutes(2));
    app.run_jobs().await;

    let before = snapshot(&app).await;
    let stripe_calls = stripe.calls().await;
    let paths = paths(&homeserver);
    for path in &paths {
        let response = ada.get(path).await;
        let status = response.status();
        assert!(status.as_u16() < 500, "{path}: {status}");
        // A session written back comes with its cookie again: a page load sends none (the
        // provider's callback is not a page: it answers a sign-in the visitor started).
        if !path.starts_with("/auth/") {
            assert!(
                response.headers().get("set-cookie").is_none(),
                "{path} wrote the session"
            );
        }
        if path == "/billing/card" {
            // Signed in, with a card: the page offers a new card entry, and starts none.
            let page = response.text().await.unwrap();
            assert!(
                page.contains("Visa ending in 4242") || page.contains("ending in 4242"),
                "{page}"
            );
            assert!(page.contains("Enter a card"), "{page}");
            assert!(!page.contains("_secret_"), "{page}");
        }
    }
    // The loaders the pages call are server functions: call them as a hydrated page would.
    for name in [
        "dashboard",
        "order_page",
        "account",
        "viewer",
        "two_factor",
        "confirm_payment_page",
    ] {
        api(&mut ada, name).await;
    }
    assert_eq!(
        stripe.calls().await,
        stripe_calls,
        "loading {} pages called Stripe",
        paths.len()
    );
    let after = snapshot(&app).await;
    for ((table, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(old, new, "a page load changed table {table}");
    }
    assert_eq!(before.len(), after.len());
    assert!(app.run_jobs().await == 0, "a page load enqueued a job");
    app.cleanup().await;
}

#[tokio::test]
async fn sqlite_page_loads_change_nothing() {
    page_loads_change_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_page_loads_change_nothing() {
    page_loads_change_nothing(Backend::Postgres).await;
}
