//! Cards and homeserver orders over HTTP, against a real Stripe-compatible server (localstripe
//! behind end2end/stripe-compat.py), on both databases; and manual billing without Stripe.

mod common;

use common::{
    browser::{api, database_mentions, location, Browser},
    stripe::{
        add_card, card_page, order, paying_customer, spawn_app_with_stripe,
        spawn_app_with_stripe_args, start_card_entry, stripe_subscriptions, StripeServer,
    },
    TestApp,
};
use domain::db::Backend;
use reqwest::{header, Method};

const PASSWORD: &str = "correct horse battery staple";
const VISA: &str = "4242424242424242";
const DECLINED_AT_SETUP: &str = "4000000000000002";
const DECLINED_AT_CHARGE: &str = "4000000000000341";

async fn a_customer_adds_a_card_orders_and_sees_the_homeserver(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    let mut ada = Browser::new(&app);
    ada.sign_up_verified("ada@example.com", PASSWORD, "Ada")
        .await;

    // Nothing can be ordered before billing details and a card.
    let response = order(&mut ada, "business", "ada-team", "eur").await;
    assert_eq!(location(&response), "/order");
    assert!(ada.flash().await["alert"]
        .as_str()
        .unwrap()
        .contains("billing details"));
    ada.billing_details("DE").await;
    order(&mut ada, "business", "ada-team", "eur").await;
    assert!(ada.flash().await["alert"]
        .as_str()
        .unwrap()
        .contains("payment card"));

    // Only the card page (and the payment-confirmation page) allow Stripe.js, from the
    // configured origin.
    let card_csp = ada.get("/billing/card").await.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        card_csp.contains(&format!("connect-src 'self' {}", stripe.base))
            && card_csp.contains(&stripe.base),
        "{card_csp}"
    );
    let other_csp = ada.get("/billing").await.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!other_csp.contains(&stripe.base), "{other_csp}");

    let (response, adas_intent) = add_card(&stripe, &mut ada, VISA).await;
    assert_eq!(location(&response), "/order");
    assert_eq!(ada.flash().await["notice"], "Your card was saved.");
    let page = card_page(&mut ada, "").await;
    assert_eq!(page["card"]["brand"], "visa");
    assert_eq!(page["card"]["last4"], "4242");
    assert_eq!(page["card"]["expires"], "08/2031");

    let response = order(&mut ada, "business", "Ada-Team", "eur").await;
    assert_eq!(location(&response), "/dashboard");
    let flash = ada.flash().await;
    assert!(
        flash["notice"]
            .as_str()
            .is_some_and(|n| n.contains("ada-team is paid")),
        "{flash}"
    );

    let dashboard = api(&mut ada, "dashboard").await;
    let row = &dashboard["rows"][0];
    assert_eq!(row["server_name"], "ada-team");
    assert_eq!(row["plan"], "Business");
    assert_eq!(
        row["status_key"],
        "dashboard.status_waiting_for_provisioning"
    );
    assert!(
        row["region"].as_str().unwrap().contains('('),
        "shown with its location: {row}"
    );
    assert!(
        row["next_payment"].as_str().is_some_and(|d| !d.is_empty()),
        "{row}"
    );
    assert_eq!(dashboard["card"]["last4"], "4242");

    // Stripe has one subscription, taxed at Germany's rate, its first invoice paid.
    let subscriptions = stripe_subscriptions(&stripe, &app).await;
    assert_eq!(subscriptions.len(), 1);
    let sub = &subscriptions[0];
    assert_eq!(sub["status"], "active");
    assert_eq!(
        sub["items"]["data"][0]["price"]["id"],
        "price_business_eur_month"
    );
    assert_eq!(sub["items"]["data"][0]["tax_rates"][0]["percentage"], 19.0);
    let invoice = stripe
        .api(
            Method::GET,
            &format!("/v1/invoices/{}", sub["latest_invoice"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["total"], 5950, "50.00 EUR plus 19 % VAT");

    // A retry of the same order (a crash after Stripe answered, a double click) makes no
    // second subscription: the portal finds the first by its metadata.
    let account = domain::accounts::profile::load(
        &app.state.portal.db,
        customer_user(&app, "ada@example.com").await,
    )
    .await
    .unwrap()
    .unwrap();
    let subscription_id = uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap();
    domain::on_db!(&app.state.portal.db, pool => sqlx::query("UPDATE subscriptions SET status = 'pending' WHERE id = $1")
        .bind(subscription_id)
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap());
    domain::billing::subscriptions::start(
        &app.state.portal,
        account.customer_id.unwrap(),
        subscription_id,
        &account,
    )
    .await
    .unwrap();
    assert_eq!(stripe_subscriptions(&stripe, &app).await.len(), 1);
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["status_key"],
        "dashboard.status_waiting_for_provisioning"
    );

    // The name is taken for good; another customer sees none of this.
    let mut bob = Browser::new(&app);
    bob.sign_up_verified("bob@example.com", PASSWORD, "Bob")
        .await;
    assert_eq!(
        api(&mut bob, "dashboard").await["rows"],
        serde_json::json!([])
    );
    assert_eq!(
        card_page(&mut bob, "").await["card"],
        serde_json::Value::Null
    );
    bob.billing_details("FR").await;
    add_card(&stripe, &mut bob, VISA).await;
    order(&mut bob, "starter", "ada-team", "eur").await;
    assert_eq!(
        bob.flash().await["errors"]["name"],
        "This name is taken. Please choose another."
    );

    // (Starter's 14-day trial is not ordered here: localstripe has no trialing state. The
    // trial is read from a Stripe object in domain/tests/data, see billing::stripe's tests.)
    order(&mut bob, "business", "bob-home", "eur").await;
    assert!(bob.flash().await["notice"]
        .as_str()
        .is_some_and(|n| n.contains("bob-home is paid")));

    // Bob cannot take Ada's card by posting her SetupIntent's id.
    bob.post("/billing/card", &[("setup_intent", &adas_intent)])
        .await;
    assert!(bob.flash().await["alert"]
        .as_str()
        .unwrap()
        .contains("could not be confirmed"));

    assert_eq!(
        database_mentions(&app.state.portal.db, VISA).await,
        Vec::<String>::new()
    );
    assert_no_card_numbers_logged(&[VISA]);
    app.cleanup().await;
}

/// The portal's log (every line, debug for its own crates and the Stripe client) holds none of
/// the card numbers.
fn assert_no_card_numbers_logged(numbers: &[&str]) {
    let logs = common::logs();
    if std::env::var("PORTAL_TEST_LOG").is_ok() {
        return; // the log went to the test's output instead
    }
    assert!(logs.contains("stripe"), "the log was captured");
    for number in numbers {
        assert!(!logs.contains(number), "{number} in the log");
    }
}

async fn customer_user(app: &TestApp, email: &str) -> uuid::Uuid {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar("SELECT id FROM users WHERE email_normalized = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap())
}

async fn declined_cards_leave_nothing_behind(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    let mut ada = Browser::new(&app);
    ada.sign_up_verified("ada@example.com", PASSWORD, "Ada")
        .await;
    ada.billing_details("FI").await;

    // Declined when it is set up: Stripe.js tells the customer; the portal never saw a card.
    let page = start_card_entry(&mut ada, "").await;
    let refused = stripe
        .confirm_card_setup(page["client_secret"].as_str().unwrap(), DECLINED_AT_SETUP)
        .await;
    assert_eq!(refused, Err("Your card was declined.".to_string()));
    let response = ada
        .post("/billing/card", &[("setup_intent", "seti_made_up")])
        .await;
    assert_eq!(location(&response), "/billing/card");
    assert!(ada.flash().await["alert"]
        .as_str()
        .unwrap()
        .contains("could not be confirmed"));
    assert_eq!(
        card_page(&mut ada, "").await["card"],
        serde_json::Value::Null
    );

    // Accepted when set up, declined when charged (Business has no trial): the order stays,
    // waiting for another card.
    add_card(&stripe, &mut ada, DECLINED_AT_CHARGE).await;
    let response = order(&mut ada, "business", "ada-home", "eur").await;
    assert_eq!(location(&response), "/dashboard");
    assert_eq!(
        ada.flash().await["alert"],
        "Your card was declined. Please use another card."
    );
    let row = &api(&mut ada, "dashboard").await["rows"][0];
    assert_eq!(row["status_key"], "dashboard.status_payment_failed");
    assert!(
        stripe_subscriptions(&stripe, &app)
            .await
            .iter()
            .all(|s| s["status"] != "active"),
        "Stripe made no running subscription"
    );
    assert_no_card_numbers_logged(&[DECLINED_AT_SETUP, DECLINED_AT_CHARGE]);
    for number in [DECLINED_AT_SETUP, DECLINED_AT_CHARGE] {
        assert_eq!(
            database_mentions(&app.state.portal.db, number).await,
            Vec::<String>::new()
        );
    }
    app.cleanup().await;
}

/// Without Stripe keys (the embedded default) orders are paid by bank transfer.
async fn without_stripe_orders_wait_for_a_bank_transfer(backend: Backend) {
    let app = common::spawn_app(backend).await;
    let mut ada = Browser::new(&app);
    ada.sign_up("ada@example.com", PASSWORD, "Ada").await;
    ada.sign_in("ada@example.com", PASSWORD).await;
    ada.billing_details("NL").await;
    order(&mut ada, "starter", "ada-home", "eur").await;
    assert!(
        ada.flash().await["alert"]
            .as_str()
            .unwrap()
            .contains("Confirm your email"),
        "unverified accounts cannot buy"
    );

    let mut bea = Browser::new(&app);
    bea.sign_up_verified("bea@example.com", PASSWORD, "Bea")
        .await;
    bea.billing_details("NL").await;
    let page = api(&mut bea, "order_page").await;
    assert_eq!(page["by_card"], false);
    assert_eq!(page["currency_fixed"], false);
    order(&mut bea, "nonsense", "x", "eur").await;
    let flash = bea.flash().await;
    assert_eq!(flash["errors"]["plan"], "Choose a plan.");
    assert_eq!(flash["errors"]["name"], "Use at least 3 characters.");
    assert_eq!(flash["values"]["name"], "x", "what was typed comes back");

    let response = order(&mut bea, "starter", "bea-home", "usd").await;
    assert_eq!(location(&response), "/dashboard");
    assert!(bea.flash().await["notice"]
        .as_str()
        .unwrap()
        .contains("bank transfer"));
    let row = &api(&mut bea, "dashboard").await["rows"][0];
    assert_eq!(row["status_key"], "dashboard.status_awaiting_transfer");
    assert_eq!(row["by_card"], false);

    // The currency is fixed by the first purchase.
    let page = api(&mut bea, "order_page").await;
    assert_eq!(page["currency_fixed"], true);
    assert_eq!(page["currency"], "usd");
    order(&mut bea, "starter", "bea-second", "eur").await;
    assert_eq!(
        bea.flash().await["errors"]["currency"],
        "You already pay in another currency."
    );

    // The order's invoice was issued and emailed with it (21 % Dutch VAT on 11.00 USD); the
    // money arrives, it is marked paid: the homeserver is paid and waits for provisioning
    // until the period's end.
    use domain::{
        audit::{Actor, RequestMeta},
        billing::manual,
    };
    let portal = &app.state.portal;
    let id = uuid::Uuid::parse_str(
        api(&mut bea, "dashboard").await["rows"][0]["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let meta = RequestMeta::default();
    let (invoice, number, total, tax, status): (uuid::Uuid, String, i64, i64, String) = domain::on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT id, number, total, tax, status FROM invoices WHERE subscription_id = $1"
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(number, "M-000001");
    assert_eq!((total, tax, status.as_str()), (1331, 231, "open"));
    assert!(app
        .mail_subjects("bea@example.com")
        .await
        .contains(&"Invoice M-000001 for bea-home".to_string()));
    // Staff cannot issue another while it is open.
    assert!(matches!(
        manual::issue(portal, &meta, Actor::System, id).await,
        Err(manual::ManualError::AlreadyOpen(number)) if number == "M-000001"
    ));
    manual::mark_paid(portal, &meta, Actor::System, invoice)
        .await
        .unwrap();
    let row = &api(&mut bea, "dashboard").await["rows"][0];
    assert_eq!(
        row["status_key"],
        "dashboard.status_waiting_for_provisioning"
    );
    assert_eq!(row["next_payment"], "22 December 2026");
    assert!(matches!(
        manual::void(portal, &meta, Actor::System, invoice).await,
        Err(manual::ManualError::NotOpen(..))
    ));
    let (second, number) = manual::issue(portal, &meta, Actor::System, id)
        .await
        .unwrap();
    assert_eq!(number, "M-000002");
    manual::void(portal, &meta, Actor::System, second)
        .await
        .unwrap();

    assert_eq!(
        api(&mut bea, "dashboard").await["rows"][0]["status_key"],
        "dashboard.status_waiting_for_provisioning"
    );
    assert_eq!(
        api(&mut bea, "dashboard").await["rows"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The next period's invoice is due in 14 days. Unpaid after that, the subscription is past
    // due; 14 days later the homeserver is marked for suspension; paying restores it.
    let state = |portal: &domain::Portal| {
        let db = portal.db.clone();
        async move {
            let row: (String, Option<i64>) = domain::on_db!(&db, pool => sqlx::query_as(
                "SELECT s.status, h.suspension_marked_at FROM subscriptions s \
                 JOIN homeservers h ON h.id = s.homeserver_id WHERE s.id = $1"
            )
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap());
            row
        }
    };
    let (third, _) = manual::issue(portal, &meta, Actor::System, id)
        .await
        .unwrap();
    app.clock.advance(time::Duration::days(13));
    app.run_jobs().await;
    assert_eq!(state(portal).await, ("active".to_string(), None));
    app.clock.advance(time::Duration::days(1));
    app.run_jobs().await;
    assert_eq!(state(portal).await.0, "past_due");
    app.clock.advance(time::Duration::days(14));
    app.run_jobs().await;
    assert_eq!(state(portal).await.1, Some(portal.clock.now_ms()));
    assert!(app
        .mail_subjects("bea@example.com")
        .await
        .contains(&"bea-home will be suspended".to_string()));
    manual::mark_paid(portal, &meta, Actor::System, third)
        .await
        .unwrap();
    assert_eq!(state(portal).await, ("active".to_string(), None));

    // An invoice never paid ends the subscription 30 days after it fell due.
    manual::issue(portal, &meta, Actor::System, id)
        .await
        .unwrap();
    app.clock.advance(time::Duration::days(14 + 29));
    app.run_jobs().await;
    assert_eq!(state(portal).await.0, "past_due");
    app.clock.advance(time::Duration::days(1));
    app.run_jobs().await;
    assert_eq!(state(portal).await.0, "canceled");
    app.cleanup().await;
}

/// Manual invoice numbers come from a counter taken in the issuing transaction: invoices issued
/// at once get consecutive numbers with no gap and no duplicate; an invoice marked paid twice
/// at once is paid once; invoices outlive their customer's account, naming the buyer.
async fn manual_invoices_are_numbered_paid_once_and_outlive_the_account(backend: Backend) {
    use domain::{
        audit::{Actor, RequestMeta},
        billing::manual,
    };
    let app = common::spawn_app(backend).await;
    let mut bea = Browser::new(&app);
    bea.sign_up_verified("bea@example.com", PASSWORD, "Bea")
        .await;
    bea.billing_details("NL").await;
    // Five orders: each is issued its first invoice, M-000001 to M-000005. Staff void them.
    for n in 1..=5 {
        order(&mut bea, "starter", &format!("bea-home-{n}"), "eur").await;
    }
    let rows = api(&mut bea, "dashboard").await;
    let subscriptions: Vec<uuid::Uuid> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| uuid::Uuid::parse_str(r["id"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(subscriptions.len(), 5);
    let portal = &app.state.portal;
    let first: Vec<uuid::Uuid> = domain::on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM invoices ORDER BY number"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(first.len(), 5);
    for invoice in first {
        manual::void(portal, &RequestMeta::default(), Actor::System, invoice)
            .await
            .unwrap();
    }

    // Fifty at once, ten for each subscription: one invoice each, the others refused while
    // it is open, and the five numbers follow on without a gap or a duplicate.
    let mut issuing = tokio::task::JoinSet::new();
    for id in subscriptions.iter().cycle().take(50).copied() {
        let portal = portal.clone();
        issuing.spawn(async move {
            manual::issue(&portal, &RequestMeta::default(), Actor::System, id)
                .await
                .map_err(|e| e.to_string())
        });
    }
    let outcomes = issuing.join_all().await;
    let issued: Vec<&(uuid::Uuid, String)> =
        outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert!(
        outcomes
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.contains("is still open")),
        "{outcomes:?}"
    );
    let mut numbers: Vec<String> = issued.iter().map(|(_, number)| number.clone()).collect();
    numbers.sort();
    let expected: Vec<String> = (6..=10).map(|n| format!("M-{n:06}")).collect();
    assert_eq!(numbers, expected);
    let id = subscriptions[0];
    let invoice = issued[0].0;
    let mut paying = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let portal = portal.clone();
        paying.spawn(async move {
            manual::mark_paid(&portal, &RequestMeta::default(), Actor::System, invoice).await
        });
    }
    let outcomes = paying.join_all().await;
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|r| matches!(
            r,
            Err(manual::ManualError::NotOpen(
                _,
                domain::billing::InvoiceStatus::Paid
            ))
        )),
        "{outcomes:?}"
    );
    let count = |sql: &'static str| {
        let db = portal.db.clone();
        async move {
            let n: i64 =
                domain::on_db!(&db, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap());
            n
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_log WHERE action = 'invoice.marked_paid'").await,
        1
    );
    // Voiding a paid invoice changes nothing either.
    assert!(matches!(
        manual::void(portal, &RequestMeta::default(), Actor::System, invoice).await,
        Err(manual::ManualError::NotOpen(..))
    ));

    // The account goes (as the data-rights work will delete it): its invoices stay, without
    // the account, naming the buyer as the billing details said.
    let customer: uuid::Uuid = domain::on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT customer_id FROM subscriptions WHERE id = $1"
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap());
    domain::on_db!(&portal.db, pool => sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(customer)
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap());
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM invoices WHERE customer_id IS NULL AND subscription_id IS NULL"
        )
        .await,
        10
    );
    let (status, buyer): (String, String) = domain::on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT status, buyer FROM invoices WHERE id = $1"
    )
    .bind(invoice)
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(status, "paid");
    let buyer: serde_json::Value = serde_json::from_str(&buyer).unwrap();
    assert_eq!(buyer["country"], "NL");
    assert_eq!(buyer["name"], "Ada Lovelace");
    assert_eq!(buyer["billing_email"], "billing@example.com");
    // The next invoice of the series goes on from the last one.
    assert_eq!(
        count("SELECT last_number FROM invoice_number_series WHERE series = 'M'").await,
        10
    );
    app.cleanup().await;
}

/// An order is not lost with its request: a double click makes one order, a client that goes
/// away while Stripe is slow does not cancel the payment, and an order whose portal process was
/// killed before Stripe answered is completed by the recovery job of another replica.
async fn an_order_outlives_its_request_and_its_process(backend: Backend) {
    use reqwest::header::{COOKIE, ORIGIN};
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    // Real time: a second portal process (below) checks the session against its own clock.
    app.clock.set(time::OffsetDateTime::now_utc());
    let ada = paying_customer(&app, &stripe, "ada@example.com").await;
    let cookie = ada.cookie.clone().unwrap();
    let region = common::stripe::first_region(&app);
    let form = |name: &'static str| {
        vec![
            ("plan", "business".to_string()),
            ("interval", "monthly".to_string()),
            ("region", region.clone()),
            ("name", name.to_string()),
            ("currency", "eur".to_string()),
        ]
    };
    let homeserver = |name: &'static str| {
        let db = app.state.portal.db.clone();
        async move {
            let row: Option<(String, Option<String>, i64)> = domain::on_db!(&db, pool => sqlx::query_as(
                "SELECT s.status, s.stripe_subscription_id, (SELECT COUNT(*) FROM homeservers WHERE name = $1) \
                 FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id WHERE h.name = $1"
            )
            .bind(name)
            .fetch_optional(pool)
            .await
            .unwrap());
            row
        }
    };

    // A double click: the same order twice at once. Both answers lead to the dashboard; there
    // is one order and one subscription.
    let mut clicks = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let request = app
            .client
            .post(app.url("/order"))
            .header(ORIGIN, &app.address)
            .header(COOKIE, &cookie)
            .form(&form("twice"));
        clicks.spawn(async move { request.send().await.unwrap() });
    }
    for response in clicks.join_all().await {
        assert_eq!(location(&response), "/dashboard");
    }
    let (status, stripe_id, count) = homeserver("twice").await.unwrap();
    assert_eq!((status.as_str(), count), ("active", 1));
    assert!(stripe_id.is_some());
    assert_eq!(stripe_subscriptions(&stripe, &app).await.len(), 2);

    // A client that goes away while Stripe is slow: the payment goes on without it (no
    // webhook reaches this portal and no job runs, so only the order's own step records it).
    stripe.delay("/v1/subscriptions", 3.0).await;
    let gone = app
        .client
        .post(app.url("/order"))
        .header(ORIGIN, &app.address)
        .header(COOKIE, &cookie)
        .form(&form("patient"))
        .timeout(std::time::Duration::from_millis(1200))
        .send()
        .await;
    assert!(gone.is_err_and(|e| e.is_timeout()));
    let mut recorded = None;
    for _ in 0..100 {
        recorded = homeserver("patient").await;
        if recorded
            .as_ref()
            .is_some_and(|(status, _, _)| status == "active")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(recorded.map(|r| r.0).as_deref(), Some("active"));
    assert_eq!(stripe_subscriptions(&stripe, &app).await.len(), 3);
    stripe.delay("/v1/subscriptions", 0.0).await;

    // A second portal process on the same database, whose Stripe never answers (a black hole
    // that accepts connections and says nothing), takes an order and is killed (SIGKILL) while
    // it waits for Stripe.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hole.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    let (mut replica, replica_url) = spawn_replica(&app, &stripe, &format!("http://{hole_addr}"));
    let order = app
        .client
        .post(format!("{replica_url}/order"))
        .header(ORIGIN, &replica_url)
        .header(COOKIE, &cookie)
        .form(&form("survivor"))
        .send();
    let pending = tokio::spawn(order);
    let mut placed = None;
    for _ in 0..100 {
        placed = homeserver("survivor").await;
        if placed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(placed.map(|p| p.0).as_deref(), Some("pending"));
    replica.kill().unwrap();
    replica.wait().unwrap();
    assert!(
        pending.await.unwrap().is_err(),
        "the killed process answered nothing"
    );
    assert_eq!(stripe_subscriptions(&stripe, &app).await.len(), 3);

    // Once the dead process's hold on the order ends (its Stripe calls' longest time, 75 s
    // with its 5-second timeout), this replica's recovery job creates the subscription, once.
    app.clock.advance(time::Duration::seconds(61));
    app.run_jobs().await;
    assert_eq!(
        homeserver("survivor").await.unwrap().0,
        "pending",
        "still held"
    );
    app.clock.advance(time::Duration::minutes(5));
    app.run_jobs().await;
    let (status, _, count) = homeserver("survivor").await.unwrap();
    assert_eq!((status.as_str(), count), ("active", 1));
    assert_eq!(stripe_subscriptions(&stripe, &app).await.len(), 4);
    app.run_jobs().await;
    assert_eq!(stripe_subscriptions(&stripe, &app).await.len(), 4);
    assert_eq!(
        api(
            &mut Browser {
                app: &app,
                cookie: Some(cookie)
            },
            "dashboard"
        )
        .await["rows"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    app.cleanup().await;
}

/// Starts the portal binary as a second replica of `app` (same database, data directory and
/// secrets) with Stripe at `stripe_base`; returns it and its address. The caller kills it and
/// waits for it.
#[allow(clippy::zombie_processes)]
fn spawn_replica(
    app: &TestApp,
    stripe: &StripeServer,
    stripe_base: &str,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTAL_DATA_DIR", &app.data_dir)
        .env("LEPTOS_SITE_ROOT", app.data_dir.join("site"))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", &app.database_url)
        .env("PORTAL_LOG_FORMAT", "json")
        .env("PORTAL_PLANS_FILE", &stripe.plans_file)
        .env("STRIPE_SECRET_KEY", common::stripe::SECRET_KEY)
        .env("STRIPE_PUBLISHABLE_KEY", common::stripe::PUBLISHABLE_KEY)
        .env("STRIPE_WEBHOOK_SECRET", common::stripe::WEBHOOK_SECRET)
        .env("STRIPE_API_BASE", stripe_base)
        .env("STRIPE_TIMEOUT_SECONDS", "5")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the replica says where it listens");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if json["fields"]["message"] == "portal ready" {
            let addr = json["fields"]["addr"].as_str().unwrap().to_string();
            return (child, format!("http://{addr}"));
        }
    }
}

async fn manage(browser: &mut Browser<'_>, id: &str) -> serde_json::Value {
    common::browser::api_with(browser, "manage", &[("id", id)]).await
}

async fn plans_change_and_subscriptions_end_and_resume(backend: Backend) {
    let stripe = StripeServer::start().await;
    let vies = common::vies::ViesServer::start();
    let app =
        common::stripe::spawn_app_with_stripe_args(backend, &stripe, &["--vies-url", &vies.base])
            .await;
    stripe.send_webhooks_to(&app).await;
    let mut ada = paying_customer(&app, &stripe, "ada@example.com").await;
    let id = api(&mut ada, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/homeservers/{id}");

    // Stripe's preview of the change ("See the price" POSTs), then the change.
    let page = manage(&mut ada, &id).await;
    assert_eq!(page["changeable"], true);
    assert_eq!(
        page["preview"],
        serde_json::Value::Null,
        "loading asks nothing"
    );
    let response = ada
        .post(&format!("{base}/preview"), &[("plan", "enterprise")])
        .await;
    assert_eq!(location(&response), base);
    let page = manage(&mut ada, &id).await;
    assert_eq!(page["preview"][0], "enterprise");
    assert!(
        page["preview"][1].as_str().unwrap().starts_with('€'),
        "{page}"
    );
    let response = ada
        .post(&format!("{base}/plan"), &[("plan", "enterprise")])
        .await;
    assert_eq!(location(&response), base);
    assert_eq!(ada.flash().await["notice"], "The plan was changed.");
    let sub = &stripe_subscriptions(&stripe, &app).await[0];
    assert_eq!(
        sub["items"]["data"][0]["price"]["id"],
        "price_enterprise_eur_month"
    );
    assert_eq!(sub["status"], "active");
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["plan"],
        "Enterprise"
    );
    ada.post(&format!("{base}/plan"), &[("plan", "enterprise")])
        .await;
    assert_eq!(
        ada.flash().await["alert"],
        "This is already the homeserver's plan."
    );

    // Cancel at the end of the period, then resume before it.
    ada.post(&format!("{base}/cancel"), &[]).await;
    assert_eq!(
        ada.flash().await["notice"],
        "The subscription will end at the end of the period."
    );
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["cancel_at_period_end"],
        true
    );
    let row = &api(&mut ada, "dashboard").await["rows"][0];
    assert_eq!(
        (
            row["cancel_at_period_end"].clone(),
            row["next_payment"].clone()
        ),
        (true.into(), serde_json::Value::Null)
    );
    ada.post(&format!("{base}/resume"), &[]).await;
    assert_eq!(ada.flash().await["notice"], "The subscription goes on.");
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["cancel_at_period_end"],
        false
    );
    assert!(api(&mut ada, "dashboard").await["rows"][0]["next_payment"].is_string());

    // Another customer cannot touch it.
    let mut eve = Browser::new(&app);
    eve.sign_up_verified("eve@example.com", PASSWORD, "Eve")
        .await;
    for action in ["cancel", "resume"] {
        let response = eve.post(&format!("{base}/{action}"), &[]).await;
        assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    }
    // New billing details (a French business with a VAT number): the tax is decided again
    // and the subscription carries the reverse charge from its next invoice on.
    ada.post(
        "/billing",
        &[
            ("name", "Ada SAS"),
            ("address_line1", "1 rue de Rivoli"),
            ("postal_code", "75001"),
            ("city", "Paris"),
            ("country", "FR"),
            ("billing_email", "billing@example.com"),
            ("vat_number", "FR40303265045"),
        ],
    )
    .await;
    assert_eq!(
        ada.flash().await["notice"],
        "Your billing details were saved."
    );
    app.run_jobs().await;
    let sub = &stripe_subscriptions(&stripe, &app).await[0];
    assert_eq!(sub["items"]["data"][0]["tax_rates"][0]["percentage"], 0.0);
    let key: Option<String> = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT tax_key FROM subscriptions LIMIT 1"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(key.as_deref(), Some("vat-reverse-charge"));
    let customer = stripe
        .api(
            Method::GET,
            &format!("/v1/customers/{}", sub["customer"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(
        (
            customer["name"].as_str(),
            customer["address"]["city"].as_str()
        ),
        (Some("Ada SAS"), Some("Paris"))
    );

    let response = eve
        .post(&format!("{base}/plan"), &[("plan", "starter")])
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["items"]["data"][0]["price"]["id"],
        "price_enterprise_eur_month"
    );

    // A change made at Stripe (in its dashboard, say) is followed: the price maps back to its
    // plan and interval.
    let plan_row = || {
        let db = app.state.portal.db.clone();
        async move {
            let row: (String, String, Option<String>) = domain::on_db!(&db, pool => sqlx::query_as(
                "SELECT plan_id, billing_interval, unknown_stripe_price FROM subscriptions"
            )
            .fetch_one(pool)
            .await
            .unwrap());
            row
        }
    };
    let change_at_stripe = |price: &'static str| {
        let stripe = &stripe;
        let app = &app;
        async move {
            let sub = &stripe_subscriptions(stripe, app).await[0];
            let item = sub["items"]["data"][0]["id"].as_str().unwrap().to_string();
            let seen = app.stripe_events("customer.subscription.updated").await;
            stripe
                .api(
                    Method::POST,
                    &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
                    &[("items[0][id]", &item), ("items[0][price]", price)],
                )
                .await;
            app.wait_for_stripe_events("customer.subscription.updated", seen + 1)
                .await;
            app.run_jobs().await;
        }
    };
    change_at_stripe("price_starter_eur_year").await;
    assert_eq!(
        plan_row().await,
        ("starter".to_string(), "annual".to_string(), None)
    );
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["plan"],
        "Starter"
    );
    // A price that is no plan of the catalogue is recorded and flagged, not guessed.
    stripe
        .api(
            Method::POST,
            "/v1/plans",
            &[
                ("id", "price_mystery"),
                ("amount", "777"),
                ("currency", "eur"),
                ("interval", "year"),
                ("product[name]", "Mystery"),
            ],
        )
        .await;
    change_at_stripe("price_mystery").await;
    assert_eq!(
        plan_row().await,
        (
            "starter".to_string(),
            "annual".to_string(),
            Some("price_mystery".to_string())
        )
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portal_subscriptions_unknown_price 1"),
        "{metrics}"
    );
    app.cleanup().await;
}

async fn a_declined_upgrade_changes_nothing_and_a_declined_renewal_walks_through_dunning(
    backend: Backend,
) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    stripe.send_webhooks_to(&app).await;
    let mut ada = paying_customer(&app, &stripe, "ada@example.com").await;
    let id = api(&mut ada, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let subscription = |app: &TestApp| {
        let db = app.state.portal.db.clone();
        let id = uuid::Uuid::parse_str(&id).unwrap();
        async move {
            let row: (String, Option<i64>) = domain::on_db!(&db, pool => sqlx::query_as(
                "SELECT s.status, h.suspension_marked_at FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id WHERE s.id = $1"
            )
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap());
            row
        }
    };

    // A card that is accepted but declined when charged pays for an upgrade: the upgrade
    // waits for its payment (pending_if_incomplete), so Stripe, and the portal, keep the old
    // plan and the subscription stays active.
    add_card(&stripe, &mut ada, DECLINED_AT_CHARGE).await;
    ada.flash().await;
    ada.post(
        &format!("/homeservers/{id}/plan"),
        &[("plan", "enterprise")],
    )
    .await;
    assert_eq!(
        ada.flash().await["alert"],
        "Your card was declined, so the plan was not changed. Please add another card and try again."
    );
    let at_stripe = stripe_subscriptions(&stripe, &app).await[0].clone();
    assert_eq!(at_stripe["status"], "active");
    assert_eq!(
        at_stripe["items"]["data"][0]["price"]["id"],
        "price_business_eur_month"
    );
    app.run_jobs().await;
    assert_eq!(subscription(&app).await, ("active".to_string(), None));
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["plan"],
        "Business"
    );
    let requested: (i64, String) = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT COUNT(*), MAX(CAST(details AS TEXT)) FROM audit_log WHERE action = 'subscription.plan_change_requested'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(requested.0, 1);
    let details: serde_json::Value = serde_json::from_str(&requested.1).unwrap();
    assert_eq!(details["applied"], false, "{details}");

    // The renewal is declined too (localstripe's own renewal step, run now): past due.
    let seen = app.stripe_events("customer.subscription.updated").await;
    stripe.renew(at_stripe["id"].as_str().unwrap()).await;
    app.wait_for_stripe_events("customer.subscription.updated", seen + 1)
        .await;
    app.run_jobs().await;
    assert_eq!(subscription(&app).await, ("past_due".to_string(), None));
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["status"],
        "past_due"
    );
    assert_eq!(
        api(&mut ada, "viewer").await["past_due"],
        true,
        "the banner shows"
    );
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["status_key"],
        "dashboard.status_past_due"
    );
    let failed = app
        .mail_text(
            "ada@example.com",
            "We could not take the payment for payer-home",
        )
        .await
        .expect("the payment failed email");
    // It carries the card page and a link to the unpaid invoice, which opens it.
    assert!(failed.contains("Update my card:"), "{failed}");
    assert!(failed.contains("Open the invoice:"), "{failed}");
    let start = failed.find("/i/").expect("a link to the invoice") + 3;
    let opened = reqwest::get(app.url(&format!("/i/{}", &failed[start..start + 43])))
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    assert!(opened.text().await.unwrap().contains("Invoice LS-"));

    // 13 days on: nothing yet. 14 days: marked for suspension, once.
    app.clock.advance(time::Duration::days(13));
    app.run_jobs().await;
    assert_eq!(subscription(&app).await.1, None);
    app.clock.advance(time::Duration::days(1));
    app.run_jobs().await;
    let marked = subscription(&app).await;
    assert_eq!(marked.0, "past_due");
    assert_eq!(marked.1, Some(app.state.portal.clock.now_ms()));
    app.clock.advance(time::Duration::hours(2));
    app.run_jobs().await;
    assert_eq!(subscription(&app).await, marked, "marked once");
    assert!(app
        .mail_subjects("ada@example.com")
        .await
        .contains(&"payer-home will be suspended".to_string()));

    // 30 days: the subscription is ended through Stripe.
    app.clock.advance(time::Duration::days(16));
    app.run_jobs().await;
    assert_eq!(subscription(&app).await.0, "canceled");
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["status"],
        "canceled"
    );
    assert!(app
        .mail_subjects("ada@example.com")
        .await
        .contains(&"The subscription of payer-home has ended".to_string()));
    // (Ada's session ended long ago; the banner's question, asked directly.)
    let owner: uuid::Uuid = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT m.user_id FROM memberships m JOIN subscriptions s ON s.customer_id = m.customer_id LIMIT 1"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    let account = domain::accounts::profile::load(&app.state.portal.db, owner)
        .await
        .unwrap()
        .unwrap();
    assert!(!account.card_payment_overdue);

    assert_no_card_numbers_logged(&[VISA, DECLINED_AT_CHARGE]);
    for number in [VISA, DECLINED_AT_CHARGE] {
        assert_eq!(
            database_mentions(&app.state.portal.db, number).await,
            Vec::<String>::new()
        );
    }
    app.cleanup().await;
}

/// localstripe's card that asks for the bank's check (3-D Secure) on every payment.
const THREE_D_SECURE: &str = "4000002500003155";

/// On the payment-confirmation page: the bank's check passes (what the test server's Stripe.js
/// does on "Complete authentication"), then the page's form comes back. Returns the flash.
async fn confirm_in_the_banks_window(
    stripe: &StripeServer,
    browser: &mut Browser<'_>,
    subscription: &str,
) -> serde_json::Value {
    let secret = api(browser, "confirm_payment_page").await["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        secret.starts_with("pi_"),
        "the page carries the payment's client secret"
    );
    stripe.authenticate(&secret, true).await;
    browser
        .post(&format!("/billing/confirm-payment/{subscription}"), &[])
        .await;
    browser.flash().await
}

async fn payments_that_need_3d_secure_wait_for_the_customer(backend: Backend) {
    let stripe = StripeServer::start().await;
    // Twelve payment actions in a few seconds: the limit is raised so that this test does not
    // depend on the default.
    let app =
        spawn_app_with_stripe_args(backend, &stripe, &["--stripe-actions-per-minute", "30"]).await;
    stripe.send_webhooks_to(&app).await;
    let mut ada = Browser::new(&app);
    ada.sign_up_verified("ada@example.com", PASSWORD, "Ada")
        .await;
    ada.billing_details("DE").await;
    // The card is saved once the bank's check of its setup is done.
    let page = start_card_entry(&mut ada, "/order").await;
    let secret = page["client_secret"].as_str().unwrap().to_string();
    let setup_intent = stripe
        .confirm_card_setup(&secret, THREE_D_SECURE)
        .await
        .unwrap();
    stripe.authenticate(&secret, true).await;
    ada.post("/billing/card", &[("setup_intent", &setup_intent)])
        .await;
    assert_eq!(ada.flash().await["notice"], "Your card was saved.");

    // The order's first payment waits for the customer: the order answers with the
    // payment-confirmation page, which carries the payment's client secret.
    let response = order(&mut ada, "business", "ada-home", "eur").await;
    assert_eq!(location(&response), "/billing/confirm-payment");
    let csp = ada.get("/billing/confirm-payment").await.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains(&stripe.base), "Stripe.js is allowed: {csp}");
    let calls = stripe.calls().await;
    let page = api(&mut ada, "confirm_payment_page").await;
    assert_eq!(
        stripe.calls().await,
        calls,
        "loading the page asks Stripe nothing"
    );
    let secret = page["client_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("pi_"), "{page}");
    assert!(page["amount"].as_str().unwrap().starts_with('€'), "{page}");
    let row = api(&mut ada, "dashboard").await["rows"][0].clone();
    assert_eq!(row["status_key"], "dashboard.status_needs_confirmation");
    assert_eq!(row["needs_confirmation"], true);
    let id = row["id"].as_str().unwrap().to_string();
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["status"],
        "incomplete"
    );

    // Coming back without the bank's check changes nothing: Stripe says the payment waits.
    ada.post(&format!("/billing/confirm-payment/{id}"), &[])
        .await;
    assert_eq!(
        ada.flash().await["alert"],
        "The payment was not confirmed, so it is still open. You can try again from your dashboard."
    );
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["needs_confirmation"],
        true
    );

    // "Confirm the payment" on the dashboard starts it again; the bank's check passes.
    let response = ada
        .post(&format!("/billing/confirm-payment/{id}/start"), &[])
        .await;
    assert_eq!(location(&response), "/billing/confirm-payment");
    assert_eq!(
        confirm_in_the_banks_window(&stripe, &mut ada, &id).await["notice"],
        "Thank you: the payment for ada-home went through."
    );
    let row = api(&mut ada, "dashboard").await["rows"][0].clone();
    assert_eq!(
        row["status_key"],
        "dashboard.status_waiting_for_provisioning"
    );
    assert_eq!(row["needs_confirmation"], false);
    let at_stripe = stripe_subscriptions(&stripe, &app).await[0].clone();
    assert_eq!(at_stripe["status"], "active");
    assert_eq!(
        api(&mut ada, "confirm_payment_page").await["client_secret"],
        "",
        "the confirmation is over"
    );
    ada.post(&format!("/billing/confirm-payment/{id}"), &[])
        .await;
    assert_eq!(
        ada.flash().await["notice"],
        "No payment waits for your confirmation any more.",
        "the form sent twice"
    );

    // An upgrade's payment waits too (off the order's page, the case of a renewal): the plan
    // stays until it is paid, then changes.
    let response = ada
        .post(
            &format!("/homeservers/{id}/plan"),
            &[("plan", "enterprise")],
        )
        .await;
    assert_eq!(location(&response), "/billing/confirm-payment");
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["plan"],
        "Business"
    );
    assert!(
        confirm_in_the_banks_window(&stripe, &mut ada, &id).await["notice"]
            .as_str()
            .unwrap()
            .contains("went through")
    );
    let row = api(&mut ada, "dashboard").await["rows"][0].clone();
    assert_eq!(row["plan"], "Enterprise");
    assert_eq!(row["needs_confirmation"], false);
    assert_eq!(
        stripe_subscriptions(&stripe, &app).await[0]["items"]["data"][0]["price"]["id"],
        "price_enterprise_eur_month"
    );
    let subject = "Your bank asks you to confirm the payment for ada-home".to_string();
    app.run_jobs().await;
    assert!(
        !app.mail_subjects("ada@example.com")
            .await
            .contains(&subject),
        "no email for a payment confirmed in the browser that asked for it"
    );

    // A renewal that needs the bank's check: Stripe's invoice.payment_action_required; the
    // dashboard asks for the confirmation and the customer is emailed, once.
    let seen = app.stripe_events("invoice.payment_action_required").await;
    stripe.renew(at_stripe["id"].as_str().unwrap()).await;
    app.wait_for_stripe_events("invoice.payment_action_required", seen + 1)
        .await;
    app.run_jobs().await;
    app.run_jobs().await;
    let row = api(&mut ada, "dashboard").await["rows"][0].clone();
    assert_eq!(row["status_key"], "dashboard.status_needs_confirmation");
    let mails = app.mail_subjects("ada@example.com").await;
    assert_eq!(
        mails.iter().filter(|s| **s == subject).count(),
        1,
        "{mails:?}"
    );
    ada.post(&format!("/billing/confirm-payment/{id}/start"), &[])
        .await;
    assert!(
        confirm_in_the_banks_window(&stripe, &mut ada, &id).await["notice"]
            .as_str()
            .unwrap()
            .contains("went through")
    );
    assert_eq!(
        api(&mut ada, "dashboard").await["rows"][0]["status_key"],
        "dashboard.status_waiting_for_provisioning"
    );
    let audited: i64 = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'subscription.payment_action_required'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(audited, 3, "the order, the upgrade and the renewal");
    assert_no_card_numbers_logged(&[THREE_D_SECURE]);
    assert!(
        !common::logs().contains(&secret),
        "no client secret in the log"
    );
    app.cleanup().await;
}

/// The Stripe test layer carries out payment_behavior and proration_behavior or refuses the
/// request as Stripe would (400, Stripe's error shape): no test passes on a parameter thrown
/// away, or on an update Stripe refuses.
async fn the_stripe_test_layer_refuses_what_it_cannot_carry_out(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    paying_customer(&app, &stripe, "ada@example.com").await;
    let sub = stripe_subscriptions(&stripe, &app).await[0].clone();
    let (id, item) = (
        sub["id"].as_str().unwrap(),
        sub["items"]["data"][0]["id"].as_str().unwrap(),
    );
    let update = |form: Vec<(&'static str, String)>| {
        let request = stripe
            .client
            .post(format!("{}/v1/subscriptions/{id}", stripe.base))
            .basic_auth(common::stripe::SECRET_KEY, Some(""))
            .form(&form);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, body)
        }
    };
    let item_id = || ("items[0][id]", item.to_string());
    let price = || ("items[0][price]", "price_enterprise_eur_month".to_string());
    for (form, says) in [
        // Stripe accepts only price and quantity on the items of a pending update.
        (
            vec![
                item_id(),
                price(),
                ("items[0][tax_rates][0]", "txr_x".to_string()),
                ("payment_behavior", "pending_if_incomplete".into()),
                ("proration_behavior", "always_invoice".into()),
            ],
            "items accept only price and quantity",
        ),
        (
            vec![
                item_id(),
                price(),
                ("payment_behavior", "pending_if_incomplete".into()),
                ("cancel_at_period_end", "true".into()),
            ],
            "cancel_at_period_end cannot be updated",
        ),
        (
            vec![
                item_id(),
                price(),
                ("payment_behavior", "error_if_incomplete".into()),
            ],
            "not carried out by this test layer",
        ),
        (
            vec![item_id(), price(), ("proration_behavior", "none".into())],
            "not carried out by this test layer",
        ),
        (
            vec![
                item_id(),
                price(),
                ("proration_behavior", "sometimes".into()),
            ],
            "Invalid proration_behavior",
        ),
    ] {
        let (status, body) = update(form).await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    // A tax rate's country is carried out as its jurisdiction: one that differs is refused.
    let response = stripe
        .client
        .post(format!("{}/v1/tax_rates", stripe.base))
        .basic_auth(common::stripe::SECRET_KEY, Some(""))
        .form(&[
            ("display_name", "VAT"),
            ("percentage", "19"),
            ("inclusive", "false"),
            ("country", "DE"),
            ("jurisdiction", "FR"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("jurisdiction"));
    // Nothing changed at the test server.
    let after = stripe_subscriptions(&stripe, &app).await[0].clone();
    assert_eq!(
        after["items"]["data"][0]["price"]["id"],
        "price_business_eur_month"
    );
    assert_eq!(after["cancel_at_period_end"], false);
    app.cleanup().await;
}

/// A customer's payment actions are limited per minute: past the limit an action is refused
/// with a message before Stripe is asked anything, and another customer is not held back.
async fn payment_actions_past_the_limit_are_refused_before_stripe_is_asked(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app =
        spawn_app_with_stripe_args(backend, &stripe, &["--stripe-actions-per-minute", "2"]).await;
    let mut ada = Browser::new(&app);
    ada.sign_up_verified("ada@example.com", PASSWORD, "Ada")
        .await;
    ada.billing_details("DE").await;
    for _ in 0..2 {
        let page = start_card_entry(&mut ada, "/order").await;
        assert!(page["client_secret"].as_str().unwrap().starts_with("seti_"));
    }
    let calls = stripe.calls().await;
    ada.post("/billing/card/setup", &[("next", "/order")]).await;
    assert_eq!(
        ada.flash().await["alert"],
        "Too many payment requests in a short time. Nothing was sent; please wait a minute and try again."
    );
    assert_eq!(stripe.calls().await, calls, "Stripe was asked nothing");

    let mut bob = Browser::new(&app);
    bob.sign_up_verified("bob@example.com", PASSWORD, "Bob")
        .await;
    bob.billing_details("DE").await;
    let page = start_card_entry(&mut bob, "/order").await;
    assert!(page["client_secret"].as_str().unwrap().starts_with("seti_"));
    app.cleanup().await;
}

both_backends!(
    the_stripe_test_layer_refuses_what_it_cannot_carry_out,
    payment_actions_past_the_limit_are_refused_before_stripe_is_asked,
    payments_that_need_3d_secure_wait_for_the_customer,
    plans_change_and_subscriptions_end_and_resume,
    a_declined_upgrade_changes_nothing_and_a_declined_renewal_walks_through_dunning,
    a_customer_adds_a_card_orders_and_sees_the_homeserver,
    declined_cards_leave_nothing_behind,
    without_stripe_orders_wait_for_a_bank_transfer,
    manual_invoices_are_numbered_paid_once_and_outlive_the_account,
    an_order_outlives_its_request_and_its_process,
);
