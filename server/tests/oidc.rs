//! Sign-in with an OpenID Connect provider: a real provider process (oauth2-mock-server, in
//! end2end/node_modules) issuing signed ID tokens, on both databases.

mod common;

use common::TestApp;
use reqwest::{header, StatusCode};
use std::process::{Child, Command, Stdio};

/// The provider process; killed on drop.
struct Provider {
    child: Child,
    port: u16,
    control_port: u16,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// The provider and its control endpoint listen on ports they choose and say which.
    async fn start() -> Self {
        let end2end = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end");
        let mut command = Command::new("node");
        command
            .arg("oidc-provider.mjs")
            .current_dir(end2end)
            .stderr(Stdio::inherit());
        let (child, ports) = test_support::spawn_listening(
            command,
            "node end2end/oidc-provider.mjs (npm ci in end2end installs its package)",
        );
        assert_eq!(ports.len(), 2, "the provider's and the control port");
        Self {
            child,
            port: ports[0],
            control_port: ports[1],
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self) -> String {
        format!("http://127.0.0.1:{}/next", self.control_port)
    }

    /// Who signs in next, and what to spoil in the next ID token.
    async fn next(&self, next: serde_json::Value) {
        reqwest::Client::new()
            .post(self.control())
            .body(next.to_string())
            .send()
            .await
            .unwrap();
    }
}

async fn app_with(backend: domain::db::Backend, provider: &Provider) -> TestApp {
    let issuer = provider.issuer();
    common::spawn_app_args(
        backend,
        None,
        &[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            "portal",
            "--oidc-client-secret",
            "portal-secret",
            "--oidc-name",
            "Example SSO",
            "--x-client-id",
            "portal-x",
            "--x-client-secret",
            "portal-x-secret",
            "--x-authorize-url",
            &format!("{issuer}/authorize"),
            "--x-token-url",
            &format!("{issuer}/token"),
            "--x-user-url",
            &format!("{issuer}/userinfo"),
        ],
    )
    .await
}

/// A browser: keeps every cookie it is given (session and flow cookies).
struct Browser<'a> {
    app: &'a TestApp,
    cookies: std::collections::BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            self.app.url(url)
        };
        let mut request = self.app.client.get(&url);
        if url.starts_with(&self.app.address) {
            request = request.header(header::COOKIE, self.cookie_header());
        }
        let response = request.send().await.unwrap();
        if url.starts_with(&self.app.address) {
            self.keep(&response);
        }
        response
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .header(header::ORIGIN, &self.app.address)
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }

    async fn api(&mut self, name: &str) -> serde_json::Value {
        let text = self
            .app
            .client
            .post(self.app.url(&format!("/api/{name}")))
            .header(header::ORIGIN, &self.app.address)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Whether the flash's `kind` ("alert" or "notice") says `text` (the flash is used up).
    async fn flash_says(&mut self, kind: &str, text: &str) -> bool {
        self.api("flash").await[kind]
            .as_str()
            .is_some_and(|said| said.contains(text))
    }

    async fn viewer(&mut self) -> Option<String> {
        self.api("viewer").await["display_name"]
            .as_str()
            .map(str::to_string)
    }

    /// Starts the flow and lets the provider answer; returns the callback URL it sent us to.
    async fn visit_provider(&mut self) -> String {
        let start = self.get("/auth/oidc/start").await;
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let authorize = location(&start);
        assert!(authorize.contains("code_challenge="), "PKCE: {authorize}");
        assert!(authorize.contains("nonce="), "{authorize}");
        let answer = self.get(&authorize).await;
        assert!(answer.status().is_redirection(), "{}", answer.status());
        let back = location(&answer);
        assert!(
            back.starts_with(&self.app.url("/auth/oidc/callback")),
            "{back}"
        );
        back
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

async fn a_new_identity_signs_up_with_confirmations_then_signs_in(
    app: &TestApp,
    provider: &Provider,
) {
    provider
        .next(serde_json::json!({
            "sub": "sso-user-1", "email": "lin@example.com", "email_verified": true, "name": "Lin"
        }))
        .await;
    let mut browser = Browser::new(app);
    let page = browser.get("/sign-in").await.text().await.unwrap();
    assert!(
        page.contains("Continue with Example SSO"),
        "the button shows"
    );
    let back = browser.visit_provider().await;
    let response = browser.get(&back).await;
    assert_eq!(location(&response), "/sign-up/external");
    assert_eq!(
        browser.viewer().await,
        None,
        "not signed in before the confirmations"
    );

    // The same age and terms confirmations as a sign-up with a password.
    browser
        .post(
            "/sign-up/external",
            &[("email", "lin@example.com"), ("display_name", "Lin")],
        )
        .await;
    let flash = browser.api("flash").await;
    assert!(flash["errors"]["age"].is_string(), "{flash}");
    assert!(flash["errors"]["terms"].is_string(), "{flash}");
    let response = browser
        .post(
            "/sign-up/external",
            &[
                ("email", "lin@example.com"),
                ("display_name", "Lin"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/account");
    assert_eq!(browser.viewer().await.as_deref(), Some("Lin"));
    let account = browser.api("account").await;
    assert_eq!(
        account["viewer"]["email_verified"], true,
        "the provider vouched for this address"
    );
    assert_eq!(account["identities"][0]["provider"], "oidc");

    // Signed out, the identity signs straight in.
    browser.post("/sign-out", &[]).await;
    let back = browser.visit_provider().await;
    let response = browser.get(&back).await;
    assert_eq!(location(&response), "/account");
    assert_eq!(browser.viewer().await.as_deref(), Some("Lin"));

    // Without a password, a sensitive change needs a fresh sign-in at the provider first.
    let change = [("new_email", "lin.new@example.com"), ("answer", "")];
    browser.post("/account/email", &change).await;
    assert!(browser.flash_says("alert", "confirm with it first").await);
    let start = browser.get("/auth/oidc/start?intent=reauth").await;
    let authorize = location(&start);
    assert!(authorize.contains("prompt=login"), "{authorize}");
    assert!(authorize.contains("max_age=0"), "{authorize}");
    // This provider let Lin through without a new sign-in (its token has no auth_time):
    // that proves nothing.
    let answer = browser.get(&authorize).await;
    assert_eq!(location(&browser.get(&location(&answer)).await), "/account");
    assert!(
        browser
            .flash_says("alert", "did not confirm that you signed in just now")
            .await
    );
    browser.post("/account/email", &change).await;
    assert!(browser.flash_says("alert", "confirm with it first").await);
    // A sign-in older than the re-authentication proves nothing either.
    provider
        .next(serde_json::json!({ "auth_time": 1_000_000_000 }))
        .await;
    through_provider(&mut browser, "/auth/oidc/start?intent=reauth").await;
    assert!(browser.api("flash").await["alert"].is_string());
    // A fresh sign-in does.
    provider
        .next(serde_json::json!({ "auth_time": "now" }))
        .await;
    assert_eq!(
        through_provider(&mut browser, "/auth/oidc/start?intent=reauth").await,
        "/account"
    );
    assert!(browser.flash_says("notice", "that was you").await);
    browser.post("/account/email", &change).await;
    assert!(
        browser
            .flash_says("notice", "We sent a link to lin.new@example.com")
            .await
    );
}

async fn an_address_with_an_account_is_never_merged(app: &TestApp, provider: &Provider) {
    let mut owner = Browser::new(app);
    owner
        .post(
            "/sign-up",
            &[
                ("email", "kai@example.com"),
                ("password", "correct horse battery staple"),
                ("display_name", "Kai"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    provider
        .next(serde_json::json!({
            "sub": "sso-kai", "email": "kai@example.com", "email_verified": true, "name": "Kai"
        }))
        .await;
    // Kai confirmed the address (an unconfirmed one would reserve nothing).
    domain::on_db!(&app.state.portal.db, pool => sqlx::query(
        "UPDATE users SET email_verified_at = 1 WHERE email_normalized = 'kai@example.com'"
    )
    .execute(pool)
    .await
    .map(|_| ())
    .unwrap());
    let mut stranger = Browser::new(app);
    let back = stranger.visit_provider().await;
    assert_eq!(location(&stranger.get(&back).await), "/sign-up/external");
    stranger
        .post(
            "/sign-up/external",
            &[
                ("email", "kai@example.com"),
                ("display_name", "Kai"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    assert!(stranger.flash_says("alert", "exists already").await);
    assert_eq!(stranger.viewer().await, None);

    // The owner links it from the account page after re-authenticating.
    owner
        .post(
            "/sign-in",
            &[
                ("email", "kai@example.com"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    let response = owner
        .post(
            "/account/identities/link",
            &[("provider", "oidc"), ("answer", "wrong password here")],
        )
        .await;
    assert_eq!(location(&response), "/account");
    assert!(owner.api("flash").await["errors"]["answer"].is_string());
    let response = owner
        .post(
            "/account/identities/link",
            &[
                ("provider", "oidc"),
                ("answer", "correct horse battery staple"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/auth/oidc/start?intent=link");
    let start = owner.get("/auth/oidc/start?intent=link").await;
    let answer = owner.get(&location(&start)).await;
    owner.get(&location(&answer)).await;
    assert!(owner.flash_says("notice", "linked").await);
    let account = owner.api("account").await;
    assert_eq!(account["identities"][0]["provider"], "oidc");

    // Another account cannot unlink it by naming it.
    let mut other = Browser::new(app);
    other
        .post(
            "/sign-up",
            &[
                ("email", "mallory@example.com"),
                ("password", "correct horse battery staple"),
                ("display_name", "Mallory"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    other
        .post(
            "/sign-in",
            &[
                ("email", "mallory@example.com"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    other
        .post(
            "/account/identities/unlink",
            &[("provider", "oidc"), ("subject", "sso-kai")],
        )
        .await;
    assert!(other.flash_says("alert", "not linked").await);
    assert_eq!(
        other.api("account").await["identities"],
        serde_json::json!([])
    );
    assert_eq!(
        owner.api("account").await["identities"][0]["subject"],
        "sso-kai",
        "still the owner's"
    );

    // Now the identity signs in to the owner's account.
    let mut later = Browser::new(app);
    let back = later.visit_provider().await;
    assert_eq!(location(&later.get(&back).await), "/account");
    assert_eq!(later.viewer().await.as_deref(), Some("Kai"));
}

async fn spoiled_tokens_and_replayed_or_foreign_states_are_refused(
    app: &TestApp,
    provider: &Provider,
) {
    for spoil in ["nonce", "iss", "aud", "exp"] {
        provider
            .next(serde_json::json!({ "sub": format!("spoiled-{spoil}"), "spoil": spoil }))
            .await;
        let mut browser = Browser::new(app);
        let back = browser.visit_provider().await;
        let response = browser.get(&back).await;
        assert_eq!(location(&response), "/sign-in", "{spoil}");
        assert!(
            browser.api("flash").await["alert"]
                .as_str()
                .unwrap()
                .contains("could not be completed"),
            "{spoil}"
        );
        assert_eq!(browser.viewer().await, None, "{spoil}");
        assert!(
            !browser.cookies.contains_key("portal_oauth"),
            "the flow cookie is gone"
        );
    }

    // A good answer, replayed with the same flow cookie, works once.
    provider
        .next(serde_json::json!({ "sub": "replayed" }))
        .await;
    let mut browser = Browser::new(app);
    let back = browser.visit_provider().await;
    let flow_cookie = browser.cookies.get("portal_oauth").cloned().unwrap();
    assert_eq!(location(&browser.get(&back).await), "/sign-up/external");
    let mut replay = Browser::new(app);
    replay.cookies.insert("portal_oauth".into(), flow_cookie);
    assert_eq!(location(&replay.get(&back).await), "/sign-in");

    // A state from another flow (another browser's answer) is refused.
    let mut victim = Browser::new(app);
    let victims_answer = victim.visit_provider().await;
    let mut attacker = Browser::new(app);
    attacker.visit_provider().await;
    assert_eq!(
        location(&attacker.get(&victims_answer).await),
        "/sign-in",
        "another flow's state"
    );
    // And an answer without any flow cookie.
    let mut bare = Browser::new(app);
    assert_eq!(location(&bare.get(&victims_answer).await), "/sign-in");
}

/// X: OAuth 2.0 with PKCE against the same provider process standing in for X's endpoints.
async fn x_signs_up_with_an_address_the_portal_verifies(app: &TestApp, provider: &Provider) {
    provider
        .next(serde_json::json!({ "sub": "x-1234", "name": "Xena" }))
        .await;
    let mut browser = Browser::new(app);
    let start = browser.get("/auth/x/start").await;
    let authorize = location(&start);
    assert!(authorize.contains("code_challenge="), "PKCE: {authorize}");
    assert!(authorize.contains("users.read"), "{authorize}");
    let answer = browser.get(&authorize).await;
    let response = browser.get(&location(&answer)).await;
    assert_eq!(location(&response), "/sign-up/external");
    let pending = browser.api("external_sign_up").await;
    assert_eq!(pending["email"], "", "X gives no address");
    assert_eq!(pending["display_name"], "Xena");
    browser
        .post(
            "/sign-up/external",
            &[
                ("email", "xena@example.com"),
                ("display_name", "Xena"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    assert_eq!(browser.viewer().await.as_deref(), Some("Xena"));
    let account = browser.api("account").await;
    assert_eq!(account["viewer"]["email_verified"], false, "to be verified");
    assert_eq!(account["identities"][0]["provider"], "x");
    assert_eq!(account["identities"][0]["subject"], "x-1234");
    let subjects: Vec<String> = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT subject FROM outbox_emails WHERE recipient = 'xena@example.com'"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(subjects, vec!["Verify your email address".to_string()]);

    // Until the address is confirmed, the X login does not sign in (a fresh link goes out).
    browser.post("/sign-out", &[]).await;
    assert_eq!(x_sign_in(&mut browser).await, "/sign-in");
    assert_eq!(browser.viewer().await, None);
    assert!(
        browser
            .flash_says("alert", "confirm your email address first")
            .await
    );
    let link = last_link(app, "xena@example.com", "/verify-email/").await;
    assert_eq!(browser.get(&link).await.status(), StatusCode::OK);
    browser.post(&link, &[]).await;
    assert_eq!(x_sign_in(&mut browser).await, "/account");
    assert_eq!(browser.viewer().await.as_deref(), Some("Xena"));
    let account = browser.api("account").await;
    assert_eq!(
        account["identities"][0]["subject"], "x-1234",
        "the sign-up's own method stays when its confirmation link is followed"
    );

    // X cannot prove a fresh sign-in: a sensitive change is confirmed by a link to the address.
    let change = [("new_email", "xena.new@example.com"), ("answer", "")];
    assert_eq!(
        through_provider(&mut browser, "/auth/x/start?intent=reauth").await,
        "/account"
    );
    assert!(
        browser
            .flash_says("alert", "X did not confirm that you signed in just now")
            .await
    );
    let sent = browser.post("/account/reauth/email", &change).await;
    assert_eq!(location(&sent), "/account");
    let flash = browser.api("flash").await;
    assert!(
        flash["notice"]
            .as_str()
            .is_some_and(|n| n.contains("We sent a link to xena@example.com")),
        "{flash}"
    );
    let link = last_link(app, "xena@example.com", "/reauth/").await;
    // Another account cannot use it.
    let mut other = Browser::new(app);
    other
        .post(
            "/sign-up",
            &[
                ("email", "other@example.com"),
                ("password", "correct horse battery staple"),
                ("display_name", "Other"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    other
        .post(
            "/sign-in",
            &[
                ("email", "other@example.com"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    other.post(&link, &[]).await;
    assert!(
        other
            .flash_says("alert", "not valid for this account")
            .await
    );
    assert_eq!(browser.get(&link).await.status(), StatusCode::OK);
    browser.post(&link, &[]).await;
    assert!(browser.flash_says("notice", "that was you").await);
    browser.post("/account/email", &change).await;
    assert!(
        browser
            .flash_says("notice", "We sent a link to xena.new@example.com")
            .await
    );
}

/// Signs in with X (whoever the provider was told to sign in next); returns where it led.
async fn x_sign_in(browser: &mut Browser<'_>) -> String {
    through_provider(browser, "/auth/x/start").await
}

/// Starts a flow at `start`, lets the provider answer and follows its answer back to the
/// portal; returns where the portal then sends the browser.
async fn through_provider(browser: &mut Browser<'_>, start: &str) -> String {
    let start = browser.get(start).await;
    let answer = browser.get(&location(&start)).await;
    location(&browser.get(&location(&answer)).await)
}

/// The path of the newest link to `prefix` mailed to `to`.
async fn last_link(app: &TestApp, to: &str, prefix: &str) -> String {
    let texts: Vec<String> = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = $1 ORDER BY created_at DESC"
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap());
    let link = texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .find(|w| w.contains(prefix))
        .unwrap_or_else(|| panic!("a {prefix} link to {to}"));
    link[link.find(prefix).unwrap()..].to_string()
}

async fn subjects_to(app: &TestApp, to: &str) -> Vec<String> {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT subject FROM outbox_emails WHERE recipient = $1 ORDER BY created_at"
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap())
}

/// Mallory signs up through X with Vic's address (X gives none, so anyone can type any). The
/// account grants Mallory nothing once signed out, and when Vic takes the address back with a
/// reset link, Mallory's X login, sessions and everything added before the address was proven go.
async fn an_address_registered_by_a_stranger_is_taken_back_by_its_owner(
    app: &TestApp,
    provider: &Provider,
) {
    provider
        .next(serde_json::json!({ "sub": "x-mallory", "name": "Mallory" }))
        .await;
    let mut mallory = Browser::new(app);
    assert_eq!(x_sign_in(&mut mallory).await, "/sign-up/external");
    let signed_up = mallory
        .post(
            "/sign-up/external",
            &[
                ("email", "vic@example.com"),
                ("display_name", "Mallory"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    assert_eq!(location(&signed_up), "/account");
    assert_eq!(mallory.viewer().await.as_deref(), Some("Mallory"));

    // A second X sign-in (another browser) is refused: the address is not Mallory's to use.
    provider
        .next(serde_json::json!({ "sub": "x-mallory", "name": "Mallory" }))
        .await;
    let mut mallory_later = Browser::new(app);
    assert_eq!(x_sign_in(&mut mallory_later).await, "/sign-in");
    assert_eq!(mallory_later.viewer().await, None);

    // Vic, the owner of the address, resets the password through the link sent to it.
    let mut vic = Browser::new(app);
    vic.post("/forgot-password", &[("email", "vic@example.com")])
        .await;
    let reset = last_link(app, "vic@example.com", "/reset-password/").await;
    assert_eq!(vic.get(&reset).await.status(), StatusCode::OK);
    vic.post(&reset, &[("password", "vic's own long passphrase")])
        .await;
    vic.post(
        "/sign-in",
        &[
            ("email", "vic@example.com"),
            ("password", "vic's own long passphrase"),
        ],
    )
    .await;
    let account = vic.api("account").await;
    assert_eq!(account["viewer"]["email_verified"], true, "{account}");
    assert_eq!(
        account["identities"],
        serde_json::json!([]),
        "Mallory's X login is gone"
    );
    assert_eq!(mallory.viewer().await, None, "Mallory's session ended");
    assert!(
        subjects_to(app, "vic@example.com")
            .await
            .contains(&"We removed sign-in methods from your account".to_string()),
        "Vic is told"
    );

    // Mallory's X login now leads to a new sign-up, not into Vic's account.
    provider
        .next(serde_json::json!({ "sub": "x-mallory", "name": "Mallory" }))
        .await;
    let mut mallory_again = Browser::new(app);
    assert_eq!(x_sign_in(&mut mallory_again).await, "/sign-up/external");
    assert_eq!(mallory_again.viewer().await, None);
}

/// An address nobody proved reserves nothing: a provider vouching for it signs its owner up,
/// and the account that held it unproven goes.
async fn an_unproven_address_reserves_nothing(app: &TestApp, provider: &Provider) {
    provider
        .next(serde_json::json!({ "sub": "x-squatter", "name": "Squatter" }))
        .await;
    let mut squatter = Browser::new(app);
    assert_eq!(x_sign_in(&mut squatter).await, "/sign-up/external");
    squatter
        .post(
            "/sign-up/external",
            &[
                ("email", "wren@example.com"),
                ("display_name", "Squatter"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    assert_eq!(squatter.viewer().await.as_deref(), Some("Squatter"));

    provider
        .next(serde_json::json!({
            "sub": "sso-wren", "email": "wren@example.com", "email_verified": true, "name": "Wren"
        }))
        .await;
    let mut wren = Browser::new(app);
    let back = wren.visit_provider().await;
    assert_eq!(location(&wren.get(&back).await), "/sign-up/external");
    let response = wren
        .post(
            "/sign-up/external",
            &[
                ("email", "wren@example.com"),
                ("display_name", "Wren"),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/account");
    assert_eq!(wren.viewer().await.as_deref(), Some("Wren"));
    assert_eq!(
        squatter.viewer().await,
        None,
        "the squatter's account is gone"
    );
    let held: Vec<String> = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT display_name FROM users WHERE email_normalized = 'wren@example.com'"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(held, vec!["Wren".to_string()]);
}

macro_rules! oidc_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let provider = super::Provider::start().await;
                let app = super::app_with(domain::db::Backend::Sqlite, &provider).await;
                super::$name(&app, &provider).await;
                app.cleanup().await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let provider = super::Provider::start().await;
                let app = super::app_with(domain::db::Backend::Postgres, &provider).await;
                super::$name(&app, &provider).await;
                app.cleanup().await;
            })*
        }
    };
}

oidc_tests!(
    a_new_identity_signs_up_with_confirmations_then_signs_in,
    an_address_with_an_account_is_never_merged,
    spoiled_tokens_and_replayed_or_foreign_states_are_refused,
    x_signs_up_with_an_address_the_portal_verifies,
    an_address_registered_by_a_stranger_is_taken_back_by_its_owner,
    an_unproven_address_reserves_nothing,
);
