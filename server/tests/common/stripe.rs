//! A real Stripe-compatible server for tests: localstripe behind the compatibility layer
//! (end2end/stripe-compat.py), one process per test, and the portal configured to use it.

use super::{browser::Browser, spawn_app_args, TestApp};
use domain::db::Backend;
use std::process::{Child, Command, Stdio};

pub const PUBLISHABLE_KEY: &str = "pk_test_portal";
pub const SECRET_KEY: &str = "sk_test_portal";
pub const WEBHOOK_SECRET: &str = "whsec_test_portal";

pub struct StripeServer {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
    /// The sample plan catalogue with the ids of the prices made for it.
    pub plans_file: std::path::PathBuf,
}

impl Drop for StripeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn python() -> String {
    std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

impl StripeServer {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "portal-stripe-{}",
            domain::random::token(&domain::OsRandom, 8)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let plans_file = dir.join("plans.toml");
        let end2end = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end");
        // The layer listens on a port it chooses and says which, once its prices exist.
        let mut command = Command::new(python());
        command
            .arg("stripe-compat.py")
            .arg("--seed-plans")
            .arg("../config/plans.toml")
            .arg("--write-plans")
            .arg(&plans_file)
            .current_dir(end2end)
            .stderr(Stdio::inherit());
        let (child, ports) = test_support::spawn_listening(
            command,
            "end2end/stripe-compat.py with PORTAL_TEST_PYTHON (scripts/setup.sh --test installs localstripe)",
        );
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{}", ports[0]),
            client: reqwest::Client::new(),
            plans_file,
        };
        let ready = server
            .client
            .get(format!("{}/_compat/ready", server.base))
            .send()
            .await;
        assert!(
            ready.is_ok_and(|r| r.status().is_success()),
            "the Stripe test server is ready once it says where it listens"
        );
        server
    }

    /// How many Stripe API requests the server has been sent so far (from anyone).
    pub async fn calls(&self) -> u64 {
        let text = self
            .client
            .get(format!("{}/_compat/calls", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        body["calls"].as_u64().unwrap()
    }

    /// A call with the secret key, as the portal makes them.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> serde_json::Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(SECRET_KEY, Some(""))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Sends the webhook events of everything that happens at the test server to `app`, signed
    /// with the portal's webhook secret, as a Stripe account's endpoint does.
    pub async fn send_webhooks_to(&self, app: &TestApp) {
        let response = self
            .client
            .post(format!("{}/_config/webhooks/portal", self.base))
            .form(&[
                ("url", app.url("/webhooks/stripe").as_str()),
                ("secret", WEBHOOK_SECRET),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Makes the server take `seconds` before it passes a `POST path` on (a slow network).
    pub async fn delay(&self, path: &str, seconds: f64) {
        let response = self
            .client
            .post(format!("{}/_compat/delay", self.base))
            .form(&[("path", path), ("seconds", &seconds.to_string())])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Runs localstripe's own renewal step for a subscription now (the role of Stripe's test
    /// clocks: localstripe renews nothing by itself). Returns the subscription after it.
    pub async fn renew(&self, subscription: &str) -> serde_json::Value {
        self.api(
            reqwest::Method::POST,
            &format!("/_compat/renew/{subscription}"),
            &[],
        )
        .await
    }

    /// What Stripe.js does in the browser with the card the customer typed: confirms the
    /// SetupIntent with the publishable key. Returns the SetupIntent's id.
    pub async fn confirm_card_setup(
        &self,
        client_secret: &str,
        number: &str,
    ) -> Result<String, String> {
        let id = client_secret.split("_secret_").next().unwrap();
        let body = serde_json::json!({
            "key": PUBLISHABLE_KEY,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": { "number": number, "exp_month": "8", "exp_year": "2031", "cvc": "123" },
            },
        });
        let response = self
            .client
            .post(format!("{}/v1/setup_intents/{id}/confirm", self.base))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        if status.is_success() {
            Ok(answer["id"].as_str().unwrap().to_string())
        } else {
            Err(answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        }
    }
}

impl StripeServer {
    /// What localstripe's Stripe.js does when the customer completes (or fails) the bank's
    /// check in its 3-D Secure window: for a SetupIntent, confirms it again; for a payment,
    /// calls its `_authenticate` step. Both with the publishable key and the client secret only.
    pub async fn authenticate(&self, client_secret: &str, success: bool) -> serde_json::Value {
        let id = client_secret.split("_secret_").next().unwrap();
        let (path, body) = if id.starts_with("seti_") {
            (
                format!(
                    "/v1/setup_intents/{id}/{}",
                    if success { "confirm" } else { "cancel" }
                ),
                serde_json::json!({ "key": PUBLISHABLE_KEY, "use_stripe_sdk": true, "client_secret": client_secret }),
            )
        } else {
            (
                format!("/v1/payment_intents/{id}/_authenticate?success={success}"),
                serde_json::json!({ "key": PUBLISHABLE_KEY, "client_secret": client_secret }),
            )
        };
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }
}

/// A portal that bills through the test Stripe server.
pub async fn spawn_app_with_stripe(backend: Backend, stripe: &StripeServer) -> TestApp {
    spawn_app_with_stripe_args(backend, stripe, &[]).await
}

/// As [`spawn_app_with_stripe`], with more command-line settings.
pub async fn spawn_app_with_stripe_args(
    backend: Backend,
    stripe: &StripeServer,
    extra: &[&str],
) -> TestApp {
    let js = format!("{}/js.stripe.com/v3/", stripe.base);
    let mut args = vec![
        "--plans-file",
        stripe.plans_file.to_str().unwrap(),
        "--stripe-secret-key",
        SECRET_KEY,
        "--stripe-publishable-key",
        PUBLISHABLE_KEY,
        "--stripe-webhook-secret",
        WEBHOOK_SECRET,
        "--stripe-api-base",
        &stripe.base,
        "--stripe-js-url",
        &js,
        "--stripe-timeout-seconds",
        "10",
    ];
    args.extend_from_slice(extra);
    spawn_app_args(backend, None, &args).await
}

pub fn first_region(app: &TestApp) -> String {
    app.state
        .portal
        .regions
        .regions
        .iter()
        .find(|r| r.available)
        .unwrap()
        .id
        .clone()
}

pub async fn card_page(browser: &mut Browser<'_>, next: &str) -> serde_json::Value {
    super::browser::api_with(browser, "card_page", &[("next", next)]).await
}

/// Presses "Enter a card" (a POST: the card entry starts at Stripe), then loads the card page,
/// which now carries the SetupIntent's client secret.
pub async fn start_card_entry(browser: &mut Browser<'_>, next: &str) -> serde_json::Value {
    let response = browser.post("/billing/card/setup", &[("next", next)]).await;
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    card_page(browser, next).await
}

/// Enters a card as the browser does: Stripe.js confirms the SetupIntent with Stripe, then the
/// page posts the SetupIntent's id.
/// Returns the portal's answer and the SetupIntent's id.
pub async fn add_card(
    stripe: &StripeServer,
    browser: &mut Browser<'_>,
    number: &str,
) -> (reqwest::Response, String) {
    let page = start_card_entry(browser, "/order").await;
    let secret = page["client_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("seti_"), "{page}");
    let setup_intent = stripe.confirm_card_setup(&secret, number).await.unwrap();
    let response = browser
        .post(
            "/billing/card",
            &[("setup_intent", &setup_intent), ("next", "/order")],
        )
        .await;
    (response, setup_intent)
}

pub async fn order(
    browser: &mut Browser<'_>,
    plan: &str,
    name: &str,
    currency: &str,
) -> reqwest::Response {
    let region = first_region(browser.app);
    browser
        .post(
            "/order",
            &[
                ("plan", plan),
                ("interval", "monthly"),
                ("region", &region),
                ("name", name),
                ("currency", currency),
            ],
        )
        .await
}

/// The subscriptions Stripe holds for the (first) customer of the portal, whatever their status.
pub async fn stripe_subscriptions(stripe: &StripeServer, app: &TestApp) -> Vec<serde_json::Value> {
    let customer: String = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT stripe_customer_id FROM billing_accounts WHERE stripe_customer_id IS NOT NULL LIMIT 1"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    let list = stripe
        .api(
            reqwest::Method::GET,
            &format!("/v1/subscriptions?customer={customer}&status=all"),
            &[],
        )
        .await;
    list["data"].as_array().unwrap().clone()
}

/// A verified customer in Germany with a Visa card and one Business homeserver, paid.
pub async fn paying_customer<'a>(
    app: &'a TestApp,
    stripe: &StripeServer,
    email: &str,
) -> Browser<'a> {
    let mut browser = Browser::new(app);
    browser
        .sign_up_verified(email, "correct horse battery staple", "Payer")
        .await;
    browser.billing_details("DE").await;
    add_card(stripe, &mut browser, "4242424242424242").await;
    order(&mut browser, "business", "payer-home", "eur").await;
    let flash = browser.flash().await;
    assert!(
        flash["notice"]
            .as_str()
            .is_some_and(|n| n.contains("is paid")),
        "{flash}"
    );
    browser
}
