//! Accounts over HTTP, on both databases: the form handlers, sessions and their security.

mod common;

use common::{
    browser::{api, location, set_cookie, Browser},
    TestApp,
};
use domain::on_db;
use reqwest::{header, StatusCode};

const PASSWORD: &str = "correct horse battery staple";

async fn session_keys_of(app: &TestApp, email: &str) -> Vec<String> {
    on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT s.id FROM sessions s JOIN users u ON u.id = s.account_id WHERE u.email_normalized = $1"
    )
    .bind(email)
    .fetch_all(pool)
    .await
    .unwrap())
}

async fn sign_up_and_sign_in_rotate_the_session_and_sign_out_ends_it(app: &TestApp) {
    let mut browser = Browser::new(app);
    let response = browser
        .sign_up("ada@example.com", PASSWORD, "Ada Lovelace")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sign-in");
    assert_eq!(browser.viewer().await, None, "sign-up does not sign in");

    // A visitor's session (here: one holding a flash) is replaced at sign-in.
    let before = browser.cookie.clone().expect("the flash made a session");
    let response = browser.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(location(&response), "/account");
    let after = browser.cookie.clone().unwrap();
    assert_ne!(before, after, "a new session id at sign-in");
    assert_eq!(browser.viewer().await.as_deref(), Some("Ada Lovelace"));
    let mut old = Browser::new(app);
    old.cookie = Some(before);
    assert_eq!(old.viewer().await, None, "the old id is worth nothing");

    let hash: String = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE email_normalized = 'ada@example.com'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert!(hash.starts_with("$2b$12$"), "{hash}");

    // Sign-out deletes the session on the server: a copied cookie is no use afterwards.
    let copy = browser.cookie.clone();
    let response = browser.post("/sign-out", &[]).await;
    assert_eq!(location(&response), "/");
    assert!(session_keys_of(app, "ada@example.com").await.is_empty());
    let mut thief = Browser::new(app);
    thief.cookie = copy;
    assert_eq!(thief.viewer().await, None);
}

async fn one_message_for_unknown_address_and_wrong_password(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser
        .sign_up("grace@example.com", PASSWORD, "Grace Hopper")
        .await;
    browser.flash().await;
    browser
        .sign_in("grace@example.com", "wrong password here")
        .await;
    let wrong = browser.flash().await;
    browser.sign_in("nobody@example.com", PASSWORD).await;
    let unknown = browser.flash().await;
    assert_eq!(wrong["alert"], unknown["alert"]);
    assert!(wrong["alert"].as_str().unwrap().contains("do not match"));
    assert_eq!(unknown["values"]["email"], "nobody@example.com");
}

async fn a_cross_origin_post_is_refused(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser.sign_up("ed@example.com", PASSWORD, "Ed").await;
    let response = app
        .client
        .post(app.url("/sign-in"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("email", "ed@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response).is_none(), "nothing signed in");
}

async fn the_72_byte_prefix_of_a_long_password_does_not_sign_in(app: &TestApp) {
    let long = format!("{}{}", "lantern velvet origami ".repeat(4), "x".repeat(8));
    assert_eq!(long.len(), 100);
    let mut browser = Browser::new(app);
    browser.sign_up("long@example.com", &long, "Long").await;
    browser.sign_in("long@example.com", &long[..72]).await;
    assert_eq!(browser.viewer().await, None);
    browser.sign_in("long@example.com", &long).await;
    assert_eq!(browser.viewer().await.as_deref(), Some("Long"));
}

async fn rate_limits_engage_per_ip_and_per_account(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser.sign_up("kim@example.com", PASSWORD, "Kim").await;
    // Five failures are free; the account then waits, even with the right password.
    for _ in 0..6 {
        browser
            .sign_in("kim@example.com", "wrong password here")
            .await;
    }
    browser.flash().await;
    browser.sign_in("kim@example.com", PASSWORD).await;
    let flash = browser.flash().await;
    assert!(
        flash["alert"]
            .as_str()
            .unwrap()
            .contains("Too many attempts"),
        "{flash}"
    );
    assert_eq!(browser.viewer().await, None);
    app.clock.advance(time::Duration::minutes(15));
    browser.sign_in("kim@example.com", PASSWORD).await;
    assert_eq!(browser.viewer().await.as_deref(), Some("Kim"));

    // Per IP: 20 attempts a minute (the default), then refusals without checking anything.
    let mut other = Browser::new(app);
    let mut limited = false;
    for _ in 0..25 {
        other.sign_in("nobody@example.com", "whatever it is").await;
        let flash = other.flash().await;
        if flash["alert"]
            .as_str()
            .is_some_and(|a| a.contains("Too many attempts"))
        {
            limited = true;
            break;
        }
    }
    assert!(limited, "the per-IP limit engaged");
}

async fn one_account_cannot_end_another_accounts_sessions(app: &TestApp) {
    let mut alice = Browser::new(app);
    alice.sign_up("alice@example.com", PASSWORD, "Alice").await;
    alice.sign_in("alice@example.com", PASSWORD).await;
    let mut bob = Browser::new(app);
    bob.sign_up("bob@example.com", PASSWORD, "Bob").await;
    bob.sign_in("bob@example.com", PASSWORD).await;
    let bobs = session_keys_of(app, "bob@example.com").await;
    assert_eq!(bobs.len(), 1);

    alice
        .post("/account/sessions/revoke", &[("id", &bobs[0])])
        .await;
    assert!(alice.flash().await["alert"]
        .as_str()
        .unwrap()
        .contains("no longer exists"));
    assert_eq!(bob.viewer().await.as_deref(), Some("Bob"), "bob still in");
    alice.post("/account/sessions/revoke-others", &[]).await;
    assert_eq!(bob.viewer().await.as_deref(), Some("Bob"));

    // Bob can end his own session from another device.
    let mut bob_phone = Browser::new(app);
    bob_phone.sign_in("bob@example.com", PASSWORD).await;
    bob_phone
        .post("/account/sessions/revoke", &[("id", &bobs[0])])
        .await;
    assert_eq!(bob.viewer().await, None);
    assert_eq!(bob_phone.viewer().await.as_deref(), Some("Bob"));
}

async fn sessions_end_after_the_absolute_lifetime(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser.sign_up("zoe@example.com", PASSWORD, "Zoe").await;
    browser.sign_in("zoe@example.com", PASSWORD).await;
    // Active every 11 hours, inside the 12-hour idle limit: still signed in after 165 hours ...
    for _ in 0..15 {
        app.clock.advance(time::Duration::hours(11));
        assert_eq!(browser.viewer().await.as_deref(), Some("Zoe"));
    }
    // ... and out once 7 days (168 hours) have passed since signing in.
    app.clock.advance(time::Duration::hours(4));
    assert_eq!(browser.viewer().await, None);

    // Idle for longer than 12 hours ends a session too.
    let mut idle = Browser::new(app);
    idle.sign_in("zoe@example.com", PASSWORD).await;
    assert_eq!(idle.viewer().await.as_deref(), Some("Zoe"));
    app.clock
        .advance(time::Duration::hours(12) + time::Duration::minutes(2));
    assert_eq!(idle.viewer().await, None);
}

async fn verification_link_confirms_the_address_once(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser.sign_up("vera@example.com", PASSWORD, "Vera").await;
    let text: String = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = 'vera@example.com'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/verify-email/"))
        .unwrap();
    let path = &link[link.find("/verify-email/").unwrap()..];
    // Opening the link (as a mail scanner would) shows a page and changes nothing.
    let page = browser.get(path).await;
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Confirm my email address"));
    let verified: Option<i64> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT email_verified_at FROM users WHERE email = 'vera@example.com'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(
        verified, None,
        "a GET of the link must not confirm the address"
    );
    let response = browser.post(path, &[]).await;
    assert_eq!(location(&response), "/sign-in");
    assert!(browser.flash().await["notice"]
        .as_str()
        .unwrap()
        .contains("confirmed"));
    browser.post(path, &[]).await;
    assert!(browser.flash().await["alert"]
        .as_str()
        .unwrap()
        .contains("not valid"));

    // Signing up again with the address answers the same and tells its owner.
    let response = Browser::new(app)
        .sign_up("VERA@example.com", PASSWORD, "Mallory")
        .await;
    assert_eq!(location(&response), "/sign-in");
    let subjects: Vec<String> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT subject FROM outbox_emails WHERE recipient = 'vera@example.com' ORDER BY created_at"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(
        subjects.last().map(String::as_str),
        Some("Someone tried to sign up with your address")
    );
}

/// The path of the newest link to `marker` (e.g. "/verify-email/") mailed to `to`.
async fn mailed_link(app: &TestApp, to: &str, marker: &str) -> String {
    let bodies: Vec<String> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = $1 ORDER BY created_at DESC"
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap());
    let link = bodies
        .iter()
        .flat_map(|text| text.split_whitespace())
        .find(|w| w.contains(marker))
        .unwrap_or_else(|| panic!("a link to {marker} mailed to {to}"));
    link[link.find(marker).unwrap()..].to_string()
}

async fn no_token_reaches_the_log(app: &TestApp) {
    let mut tokens = Vec::new();
    let mut browser = Browser::new(app);
    browser
        .sign_up("tessa@example.com", PASSWORD, "Tessa")
        .await;
    let verify = mailed_link(app, "tessa@example.com", "/verify-email/").await;
    tokens.push(verify["/verify-email/".len()..].to_string());
    // The query string is not logged either.
    browser.get(&format!("{verify}?again={}", tokens[0])).await;
    browser.post(&verify, &[]).await;
    browser.flash().await;
    browser.sign_in("tessa@example.com", PASSWORD).await;

    browser
        .post(
            "/account/email",
            &[("new_email", "tessa.new@example.com"), ("answer", PASSWORD)],
        )
        .await;
    assert!(browser.flash().await["notice"].is_string());
    let confirm = mailed_link(app, "tessa.new@example.com", "/confirm-email/").await;
    tokens.push(confirm["/confirm-email/".len()..].to_string());
    browser.get(&confirm).await;
    browser.post(&confirm, &[]).await;
    assert!(browser.flash().await["notice"].is_string());

    browser
        .post("/forgot-password", &[("email", "tessa.new@example.com")])
        .await;
    let reset = mailed_link(app, "tessa.new@example.com", "/reset-password/").await;
    tokens.push(reset["/reset-password/".len()..].to_string());
    browser.get(&reset).await;
    // A refused password, a cross-origin post (logged as refused) and the real reset.
    browser.post(&reset, &[("password", "short")]).await;
    let refused = app
        .client
        .post(app.url(&reset))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("password", "a whole new password here")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let response = browser
        .post(&reset, &[("password", "a whole new password here")])
        .await;
    assert_eq!(location(&response), "/sign-in");

    // A path no route matches (the 404 page) is not logged either.
    let secret = "not-a-route-3b9f0c1d7e";
    assert_eq!(
        browser
            .get(&format!("/no-such-page/{secret}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    tokens.push(secret.to_string());

    let log = common::logs();
    assert!(
        log.contains("route=/verify-email/{token}"),
        "the requests were logged, by route"
    );
    for token in &tokens {
        assert!(token.len() >= 16, "{token}");
        assert!(!log.contains(token.as_str()), "{token} is in the log");
    }
}

async fn address_taken_emails_are_limited_to_three_a_day(app: &TestApp) {
    const NOTICE: &str = "Someone tried to sign up with your address";
    let notices = || async {
        app.mail_subjects("tom@example.com")
            .await
            .iter()
            .filter(|s| s.as_str() == NOTICE)
            .count()
    };
    let mut owner = Browser::new(app);
    let first = owner.sign_up("tom@example.com", PASSWORD, "Tom").await;
    let answer = owner.flash().await;
    for attempt in 1..=4 {
        let mut stranger = Browser::new(app);
        let response = stranger
            .sign_up("tom@example.com", PASSWORD, "Mallory")
            .await;
        assert_eq!(response.status(), first.status(), "attempt {attempt}");
        assert_eq!(location(&response), "/sign-in", "attempt {attempt}");
        assert_eq!(stranger.flash().await, answer, "attempt {attempt}");
    }
    assert_eq!(notices().await, 3, "three a day, however many attempts");

    app.clock.advance(time::Duration::hours(24));
    let response = Browser::new(app)
        .sign_up("tom@example.com", PASSWORD, "Mallory")
        .await;
    assert_eq!(location(&response), "/sign-in");
    assert_eq!(notices().await, 4, "a day later, one more");
}

async fn sign_in_returns_only_to_the_portals_own_pages(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser.sign_up("nel@example.com", PASSWORD, "Nel").await;
    for (next, expected) in [
        ("/dashboard", "/dashboard"),
        ("/order", "/order"),
        ("/\t/evil.example", "/account"),
        ("//evil.example", "/account"),
        ("/\\evil.example", "/account"),
        ("/%2F%2Fevil.example", "/account"),
        ("https://evil.example", "/account"),
        ("", "/account"),
    ] {
        let response = browser
            .post(
                "/sign-in",
                &[
                    ("email", "nel@example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(location(&response), expected, "{next:?}");
    }
}

async fn password_change_reauthenticates_and_ends_the_other_sessions(app: &TestApp) {
    let mut laptop = Browser::new(app);
    laptop.sign_up("pat@example.com", PASSWORD, "Pat").await;
    laptop.sign_in("pat@example.com", PASSWORD).await;
    let mut phone = Browser::new(app);
    phone.sign_in("pat@example.com", PASSWORD).await;
    let fresh = "umbrella quartz meadow fiddle";

    laptop
        .post(
            "/account/password",
            &[
                ("current", "not my password at all"),
                ("new_password", fresh),
            ],
        )
        .await;
    let flash = laptop.flash().await;
    assert_eq!(
        flash["errors"]["current"],
        "That is not right. Please try again."
    );
    assert_eq!(
        phone.viewer().await.as_deref(),
        Some("Pat"),
        "nothing changed"
    );

    laptop
        .post(
            "/account/password",
            &[("current", PASSWORD), ("new_password", "short")],
        )
        .await;
    assert!(laptop.flash().await["errors"]["new_password"]
        .as_str()
        .unwrap()
        .contains("12 characters"));

    let before = laptop.cookie.clone();
    laptop
        .post(
            "/account/password",
            &[("current", PASSWORD), ("new_password", fresh)],
        )
        .await;
    assert_ne!(laptop.cookie, before, "a new session id after the change");
    assert!(laptop.flash().await["notice"]
        .as_str()
        .unwrap()
        .contains("password was changed"));
    assert_eq!(
        laptop.viewer().await.as_deref(),
        Some("Pat"),
        "still signed in here"
    );
    assert_eq!(phone.viewer().await, None, "signed out elsewhere");

    laptop.post("/account/name", &[("display_name", "")]).await;
    assert!(laptop.flash().await["errors"]["display_name"]
        .as_str()
        .unwrap()
        .contains("Enter your name"));
    laptop
        .post("/account/name", &[("display_name", "  Pat Smith ")])
        .await;
    assert_eq!(laptop.viewer().await.as_deref(), Some("Pat Smith"));
}

async fn forwarded_for_is_ignored_without_trusted_proxies(app: &TestApp) {
    let mut browser = Browser::new(app);
    browser.sign_up("fay@example.com", PASSWORD, "Fay").await;
    browser.sign_in("fay@example.com", PASSWORD).await;
    let response = app
        .client
        .get(app.url("/account"))
        .header(header::COOKIE, browser.cookie.clone().unwrap())
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ips: Vec<Option<String>> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT s.client_ip FROM sessions s JOIN users u ON u.id = s.account_id WHERE u.email_normalized = 'fay@example.com'"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(
        ips,
        vec![Some("127.0.0.1".to_string())],
        "the socket's peer"
    );
    let entries: Vec<Option<String>> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT client_ip FROM audit_log WHERE action = 'sign_in.password'"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(
        entries,
        vec![Some("127.0.0.1".to_string())],
        "full IP in the security log"
    );
}

async fn billing_details_are_validated_saved_and_their_history_shown(app: &TestApp) {
    let details = [
        ("name", "Ada Lovelace"),
        ("address_line1", "Unter den Linden 1"),
        ("postal_code", "10117"),
        ("city", "Berlin"),
        ("country", "DE"),
        ("billing_email", "billing@example.com"),
        ("vat_number", "DE12"),
    ];
    let mut anonymous = Browser::new(app);
    let response = anonymous.post("/billing", &details).await;
    assert_eq!(location(&response), "/sign-in");

    let mut ada = Browser::new(app);
    ada.sign_up("ada@example.com", PASSWORD, "Ada").await;
    ada.sign_in("ada@example.com", PASSWORD).await;
    ada.post("/billing", &details).await;
    let flash = ada.flash().await;
    assert!(flash["errors"]["vat_number"]
        .as_str()
        .unwrap()
        .contains("VAT number"));
    assert_eq!(
        flash["values"]["city"], "Berlin",
        "what was typed comes back"
    );

    let mut good = details.to_vec();
    good[6] = ("vat_number", "de 123 456 789");
    ada.post("/billing", &good).await;
    assert_eq!(
        ada.flash().await["notice"],
        "Your billing details were saved."
    );
    good[3] = ("city", "Potsdam");
    app.clock.advance(time::Duration::minutes(1));
    ada.post("/billing", &good).await;
    let billing = api(&mut ada, "billing").await;
    assert_eq!(billing["values"]["vat_number"], "DE123456789");
    assert_eq!(billing["values"]["city"], "Potsdam");
    assert_eq!(billing["history"][0]["field"], "City");
    assert_eq!(billing["history"][0]["old_value"], "Berlin");
    assert_eq!(billing["history"][0]["new_value"], "Potsdam");

    let mut bob = Browser::new(app);
    bob.sign_up("bob@example.com", PASSWORD, "Bob").await;
    bob.sign_in("bob@example.com", PASSWORD).await;
    let theirs = api(&mut bob, "billing").await;
    assert_eq!(
        theirs["values"],
        serde_json::json!({}),
        "another customer sees nothing"
    );
    assert_eq!(theirs["history"], serde_json::json!([]));
}

app_tests!(
    billing_details_are_validated_saved_and_their_history_shown,
    forwarded_for_is_ignored_without_trusted_proxies,
    password_change_reauthenticates_and_ends_the_other_sessions,
    sign_up_and_sign_in_rotate_the_session_and_sign_out_ends_it,
    one_message_for_unknown_address_and_wrong_password,
    a_cross_origin_post_is_refused,
    the_72_byte_prefix_of_a_long_password_does_not_sign_in,
    rate_limits_engage_per_ip_and_per_account,
    one_account_cannot_end_another_accounts_sessions,
    sessions_end_after_the_absolute_lifetime,
    verification_link_confirms_the_address_once,
    no_token_reaches_the_log,
    address_taken_emails_are_limited_to_three_a_day,
    sign_in_returns_only_to_the_portals_own_pages,
);

/// Behind a configured proxy, the right-most untrusted X-Forwarded-For entry is the client.
#[tokio::test]
async fn forwarded_for_is_believed_from_a_trusted_proxy() {
    let app = common::spawn_app_args(
        domain::db::Backend::Sqlite,
        None,
        &["--trusted-proxies", "127.0.0.1"],
    )
    .await;
    let mut browser = Browser::new(&app);
    browser.sign_up("gil@example.com", PASSWORD, "Gil").await;
    browser.sign_in("gil@example.com", PASSWORD).await;
    app.client
        .get(app.url("/account"))
        .header(header::COOKIE, browser.cookie.clone().unwrap())
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .send()
        .await
        .unwrap();
    let ips: Vec<Option<String>> = on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT s.client_ip FROM sessions s JOIN users u ON u.id = s.account_id WHERE u.email_normalized = 'gil@example.com'"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(ips, vec![Some("203.0.113.9".to_string())]);
    app.cleanup().await;
}
