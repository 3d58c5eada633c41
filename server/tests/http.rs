//! The HTTP surface end to end over real sockets, on SQLite and PostgreSQL.

mod common;

use common::TestApp;
use reqwest::{header, StatusCode};

fn nonce_of(csp: &str) -> String {
    let start = csp.find("'nonce-").expect("CSP has a nonce") + 7;
    csp[start..].split('\'').next().unwrap().to_string()
}

fn assert_security_headers(response: &reqwest::Response) {
    let h = response.headers();
    assert!(h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(
        h[header::REFERRER_POLICY],
        "strict-origin-when-cross-origin"
    );
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert!(h.contains_key("x-request-id"));
    assert!(
        !h.contains_key(header::STRICT_TRANSPORT_SECURITY),
        "no HSTS over plain http"
    );
}

async fn health_and_readiness(app: &TestApp) {
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ready\n");
}

async fn landing_page_lists_plans_with_a_fresh_nonce_per_response(app: &TestApp) {
    let mut nonces = Vec::new();
    for _ in 0..3 {
        let r = app.get("/").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_security_headers(&r);
        let nonce = nonce_of(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap(),
        );
        let body = r.text().await.unwrap();
        assert!(
            body.contains("Starter") && body.contains("Business") && body.contains("Enterprise")
        );
        assert!(body.contains("€10"), "monthly prices by default");
        assert!(
            body.contains(&format!("nonce=\"{nonce}\"")),
            "the page's scripts carry the header's nonce"
        );
        assert!(
            !body.contains("PortalNoncePlaceholder"),
            "cache placeholder never leaks"
        );
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(
        nonces.len(),
        3,
        "each response has its own nonce, cached or not"
    );

    let body = app.get("/?billing=annual").await.text().await.unwrap();
    assert!(body.contains("€100") && body.contains("per year"));
}

async fn unknown_paths_get_the_404_page(app: &TestApp) {
    let r = app.get("/no/such/page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&r);
    let body = r.text().await.unwrap();
    assert!(body.contains("Page not found"));
}

async fn cross_origin_posts_are_refused(app: &TestApp) {
    let evil = app
        .client
        .post(app.url("/api/plans"))
        .header(header::ORIGIN, "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    assert_security_headers(&evil);

    let same = app
        .client
        .post(app.url("/api/plans"))
        .header(header::ORIGIN, &app.address)
        .header("sec-fetch-site", "same-origin")
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(same.headers()[header::CACHE_CONTROL], "no-store");
    assert!(same.text().await.unwrap().contains("\"starter\""));
}

async fn responses_are_compressed(app: &TestApp) {
    // Cached anonymous pages (the landing page, and the 404 page for any unknown path) come
    // as gzip assembled around the nonce (or plain to the rare client that takes no gzip);
    // other pages are compressed on the fly, brotli preferred.
    for (path, accept, expected) in [
        ("/", "br, gzip", "gzip"),
        ("/", "gzip", "gzip"),
        ("/", "br", "identity"),
        ("/no-such-page", "br, gzip", "gzip"),
        ("/another/unknown?page=2", "br, gzip", "gzip"),
        ("/no-such-page", "br", "identity"),
        ("/sign-in", "br, gzip", "br"),
        ("/sign-in", "gzip", "gzip"),
    ] {
        let r = app
            .client
            .get(app.url(path))
            .header(header::ACCEPT_ENCODING, accept)
            .send()
            .await
            .unwrap();
        let encoding = r
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("identity");
        assert_eq!(encoding, expected, "{path} with Accept-Encoding: {accept}");
        let unknown = path.starts_with("/no-such") || path.starts_with("/another");
        let status = if unknown {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(r.status(), status, "{path}");
        if expected == "gzip" {
            let nonce = nonce_of(
                r.headers()[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap(),
            );
            let bytes = r.bytes().await.unwrap();
            let mut html = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut html)
                .unwrap();
            assert!(
                html.contains("</html>"),
                "complete page: {path} {}",
                &html[html.len().saturating_sub(600)..]
            );
            assert!(
                html.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: the response's own nonce"
            );
            if path == "/" {
                assert!(html.contains("€10"));
            }
            if unknown {
                assert!(html.contains("Page not found"), "{path}: {html}");
            }
        }
    }
}

async fn hashed_assets_are_cached_forever(app: &TestApp) {
    let r = app.get("/pkg/portal.test.css").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_security_headers(&r);
}

async fn metrics_count_requests(app: &TestApp) {
    app.get("/healthz").await;
    let body = app.get("/metrics").await.text().await.unwrap();
    assert!(
        body.contains(
            "portal_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        "{body}"
    );
    assert!(body.contains("portal_database_up 1"));
    assert!(body.contains("portal_jobs_queued"));
}

async fn metrics_label_only_the_standard_methods(app: &TestApp) {
    for method in ["PROPFIND", "MADE-UP-1", "MADE-UP-2"] {
        app.client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/healthz"),
            )
            .send()
            .await
            .unwrap();
    }
    let body = app.get("/metrics").await.text().await.unwrap();
    assert!(!body.contains("PROPFIND"), "{body}");
    assert!(!body.contains("MADE-UP"), "{body}");
    assert!(
        body.contains(
            "portal_http_requests_total{method=\"other\",route=\"/healthz\",status=\"405\"} 3"
        ),
        "{body}"
    );
}

async fn robots_and_security_txt(app: &TestApp) {
    let robots = app.get("/robots.txt").await.text().await.unwrap();
    assert!(robots.contains("Disallow: /account"));
    assert!(
        robots.contains("Disallow: /i/"),
        "invoice links are not crawled"
    );
    let security = app
        .get("/.well-known/security.txt")
        .await
        .text()
        .await
        .unwrap();
    assert!(security.contains("Contact: mailto:security@127.0.0.1"));
    // A year after the injected clock's now (2026-11-22).
    assert!(
        security.contains("Expires: 2027-11-22T12:00:00Z"),
        "{security}"
    );
    assert!(security.contains(&format!(
        "Canonical: {}/.well-known/security.txt",
        app.address
    )));
}

/// Browsers ask for /favicon.ico on a first visit: it is served, and the shell links the icons.
async fn the_site_icon_is_served_and_linked(app: &TestApp) {
    let ico = app.get("/favicon.ico").await;
    assert_eq!(ico.status(), 200);
    assert_eq!(ico.headers()["content-type"], "image/x-icon");
    let bytes = ico.bytes().await.unwrap();
    assert_eq!(&bytes[..4], &[0, 0, 1, 0], "an ICO header");
    let svg = app.get("/favicon.svg").await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let page = app.get("/").await.text().await.unwrap();
    assert!(
        page.contains(r#"<link rel="icon" href="/favicon.ico""#),
        "{page}"
    );
    assert!(page.contains(r#"href="/favicon.svg""#));
}

/// Each sentence of the privacy policy, with the test that proves the portal does what it says.
/// A sentence added to the policy without a proof here fails the test below.
const PRIVACY_CLAIMS: &[(&str, &str)] = &[
    (
        "We keep what running your account needs",
        "every_table_and_column_is_in_the_personal_data_registry",
    ),
    (
        "Your password is never stored",
        "another_pepper_refuses_every_password",
    ),
    (
        "To bill you we keep the billing details you enter",
        "billing_details_keep_a_history_of_every_change_scoped_by_customer",
    ),
    (
        "Card numbers never reach our servers",
        "assert_no_card_numbers_logged",
    ),
    (
        "We use your email address to confirm your account",
        "every_kind_has_its_messages",
    ),
    (
        "For security we record sign-ins and other security events",
        "cookies_are_http_only_lax_and_rows_record_the_device",
    ),
    (
        "For a copy of the data we hold about you",
        "privacy_policy_claims_only_what_exists",
    ),
];

/// The text of the page's `<section class="... legal">`, tags removed.
fn legal_text(page: &str) -> String {
    let start = page.find("legal\">").expect("the legal section");
    let section = &page[start..page[start..].find("</section>").unwrap() + start];
    let mut text = String::new();
    let mut in_tag = false;
    for c in section.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push('\n');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&#39;", "'").replace("&amp;", "&")
}

/// Every test function name in the repository's tests (Rust and Playwright).
fn test_sources() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut out = String::new();
    let mut dirs = vec![
        format!("{root}/server/tests"),
        format!("{root}/domain/tests"),
        format!("{root}/domain/src"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path.display().to_string());
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The privacy policy says only what the portal does: each sentence is tied to a feature with
/// its test, and the operator's contact for data requests is shown.
async fn privacy_policy_claims_only_what_exists(app: &TestApp) {
    let page = app.get("/privacy").await.text().await.unwrap();
    let text = legal_text(&page);
    let sources = test_sources();
    let paragraphs: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 40)
        .collect();
    assert!(paragraphs.len() >= PRIVACY_CLAIMS.len(), "{text}");
    for paragraph in paragraphs {
        for sentence in paragraph.split_inclusive(". ").map(str::trim) {
            let Some((_, proof)) = PRIVACY_CLAIMS
                .iter()
                .find(|(start, _)| sentence.starts_with(start))
            else {
                panic!(
                    "no feature and test behind this sentence of the privacy policy: {sentence:?}"
                );
            };
            assert!(
                sources.contains(&format!("fn {proof}(")),
                "the test {proof} that proves {sentence:?} is gone"
            );
        }
    }
    assert!(text.contains("privacy@127.0.0.1"), "the contact: {text}");
    let terms = legal_text(&app.get("/terms").await.text().await.unwrap());
    assert!(terms.contains("privacy@127.0.0.1"), "{terms}");
    for untrue in ["at any time", "30 days", "backed up", "monitored"] {
        assert!(
            !text.contains(untrue) && !terms.contains(untrue),
            "{untrue}"
        );
    }
}

app_tests!(
    the_site_icon_is_served_and_linked,
    privacy_policy_claims_only_what_exists,
    health_and_readiness,
    landing_page_lists_plans_with_a_fresh_nonce_per_response,
    unknown_paths_get_the_404_page,
    cross_origin_posts_are_refused,
    responses_are_compressed,
    hashed_assets_are_cached_forever,
    metrics_count_requests,
    metrics_label_only_the_standard_methods,
    robots_and_security_txt,
);

/// With PORTAL_METRICS_TOKEN set, /metrics answers only the bearer of that token.
#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let app = common::spawn_app_args(
        domain::db::Backend::Sqlite,
        None,
        &["--metrics-token", "scrape-me-7f3a"],
    )
    .await;
    let scrape = |authorization: Option<&str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request.send()
    };
    for wrong in [
        None,
        Some("Bearer wrong"),
        Some("Bearer scrape-me-7f3"),
        Some("Bearer scrape-me-7f3a0"),
        Some("Basic scrape-me-7f3a"),
        Some("scrape-me-7f3a"),
    ] {
        let response = scrape(wrong).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("portal_"), "{body}");
    }
    let response = scrape(Some("Bearer scrape-me-7f3a")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("portal_database_up 1"));
    app.cleanup().await;
}

mod panics {
    use axum::{routing::get, Router};

    /// A handler that panics yields the 500 page, with the security headers, and the server
    /// keeps serving.
    #[tokio::test]
    async fn a_panicking_handler_gets_the_500_page() {
        let app = crate::common::spawn_app(domain::db::Backend::Sqlite).await;
        let routes: Router<server::state::AppState> = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("boom")
                } else {
                    ""
                }
            }),
        );
        let router = server::http::with_middleware(routes, app.state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        let client = reqwest::Client::new();
        let r = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r
            .headers()
            .contains_key(reqwest::header::CONTENT_SECURITY_POLICY));
        assert_eq!(r.headers()[reqwest::header::CACHE_CONTROL], "no-store");
        let body = r.text().await.unwrap();
        assert!(body.contains("Something went wrong"));
        assert!(!body.contains("boom"), "the panic message is not shown");
        let again = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            again.status(),
            reqwest::StatusCode::INTERNAL_SERVER_ERROR,
            "still serving"
        );
        app.cleanup().await;
    }
}
