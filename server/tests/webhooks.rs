//! POST /webhooks/stripe on both databases: signatures, duplicates, order of arrival, and the
//! records the events lead to (read again from the Stripe-compatible test server).

mod common;

use common::{
    stripe::{
        paying_customer, spawn_app_with_stripe, stripe_subscriptions, StripeServer, WEBHOOK_SECRET,
    },
    TestApp,
};
use domain::{billing::webhooks::sign, db::Backend, on_db};
use reqwest::{Method, StatusCode};

/// Stripe's example event with `object` (Stripe's example of that type) as its data, renamed.
/// The examples are end2end/stripe-examples.json (see scripts/stripe-examples.py).
fn event(id: &str, kind: &str, object_type: &str, object_id: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../end2end/stripe-examples.json"
    );
    let fixtures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect(path)).unwrap();
    assert!(
        fixtures["resources"][object_type].is_object(),
        "no example of a Stripe {object_type} in {path}: add it with scripts/stripe-examples.py"
    );
    let mut object = fixtures["resources"][object_type].clone();
    object["id"] = object_id.into();
    let mut event = fixtures["resources"]["event"].clone();
    event["id"] = id.into();
    event["type"] = kind.into();
    event["data"] = serde_json::json!({ "object": object });
    event.to_string()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn deliver(app: &TestApp, body: &str, signature: &str) -> StatusCode {
    app.client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    on_db!(&app.state.portal.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap())
}

async fn signatures_are_checked(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    let body = event(
        "evt_sig",
        "customer.subscription.updated",
        "subscription",
        "sub_unknown",
    );
    let bytes = body.as_bytes();

    assert_eq!(
        deliver(&app, &body, &sign(bytes, "whsec_wrong", now())).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(deliver(&app, &body, "").await, StatusCode::BAD_REQUEST);
    assert_eq!(
        deliver(&app, &body, &sign(bytes, WEBHOOK_SECRET, now() - 301)).await,
        StatusCode::BAD_REQUEST,
        "a 301-second-old signature is refused"
    );
    let tampered = body.replace("sub_unknown", "sub_other");
    assert_eq!(
        deliver(&app, &tampered, &sign(bytes, WEBHOOK_SECRET, now())).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM stripe_events").await, 0);

    // While a secret is rolled Stripe signs with both: any matching v1 will do.
    let good = sign(bytes, WEBHOOK_SECRET, now());
    let rolled = format!(
        "{},v1={}",
        sign(bytes, "whsec_old", now()),
        good.split("v1=").nth(1).unwrap()
    );
    assert_eq!(deliver(&app, &body, &rolled).await, StatusCode::OK);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM stripe_events").await, 1);

    // Events the portal does not act on are acknowledged (Stripe stops sending them) and
    // recorded, with no job.
    let other = event("evt_refund", "charge.refunded", "charge", "ch_1");
    assert_eq!(
        deliver(&app, &other, &sign(other.as_bytes(), WEBHOOK_SECRET, now())).await,
        StatusCode::OK
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM stripe_events").await, 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'stripe.sync'").await,
        1
    );
    app.cleanup().await;
}

async fn the_same_event_twenty_times_at_once_has_one_effect(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    let body = event("evt_dup", "invoice.paid", "invoice", "in_dup");
    let signature = sign(body.as_bytes(), WEBHOOK_SECRET, now());
    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = app
            .client
            .post(app.url("/webhooks/stripe"))
            .header("content-type", "application/json")
            .header("stripe-signature", &signature)
            .body(body.clone());
        deliveries.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = deliveries.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM stripe_events").await, 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'stripe.sync'").await,
        1
    );
    app.cleanup().await;
}

async fn events_in_any_order_end_in_stripes_state(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe(backend, &stripe).await;
    let _payer = paying_customer(&app, &stripe, "payer@example.com").await;
    let subscription = stripe_subscriptions(&stripe, &app).await[0].clone();
    let sub_id = subscription["id"].as_str().unwrap().to_string();

    // Changed at Stripe (by staff in Stripe's dashboard, say); the update's event arrives
    // before the creation's.
    stripe
        .api(
            Method::POST,
            &format!("/v1/subscriptions/{sub_id}"),
            &[("cancel_at_period_end", "true")],
        )
        .await;
    for (id, kind) in [
        ("evt_2", "customer.subscription.updated"),
        ("evt_1", "customer.subscription.created"),
    ] {
        let body = event(id, kind, "subscription", &sub_id);
        assert_eq!(
            deliver(&app, &body, &sign(body.as_bytes(), WEBHOOK_SECRET, now())).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'stripe.sync'").await,
        1,
        "two events about one object: one run"
    );
    app.run_jobs().await;
    let (status, ends): (String, bool) = on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT status, cancel_at_period_end FROM subscriptions WHERE stripe_subscription_id = $1"
    )
    .bind(&sub_id)
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!((status.as_str(), ends), ("active", true));

    // The paid invoice becomes the customer's billing record, with its tax and card.
    let invoice_id = subscription["latest_invoice"].as_str().unwrap();
    let body = event("evt_3", "invoice.paid", "invoice", invoice_id);
    deliver(&app, &body, &sign(body.as_bytes(), WEBHOOK_SECRET, now())).await;
    app.run_jobs().await;
    let (status, total, tax, last4, lines): (String, i64, i64, Option<String>, String) = on_db!(&app.state.portal.db, pool => sqlx::query_as(
            "SELECT status, total, tax, card_last4, tax_lines FROM invoices WHERE stripe_invoice_id = $1"
        )
        .bind(invoice_id)
        .fetch_one(pool)
        .await
        .unwrap());
    assert_eq!(
        (status.as_str(), total, tax, last4.as_deref()),
        ("paid", 5950, 950, Some("4242"))
    );
    assert!(lines.contains("\"amount\":950"), "{lines}");
    app.cleanup().await;
}

both_backends!(
    signatures_are_checked,
    the_same_event_twenty_times_at_once_has_one_effect,
    events_in_any_order_end_in_stripes_state,
);
