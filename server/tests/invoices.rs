//! Invoice documents: frozen when an invoice is finalised (a manual invoice issued, Stripe's
//! invoice finalised), shown to the customer's owner in the billing history and on the
//! invoice page, and to nobody else; totals checked against the lines. Both databases.

mod common;

use common::{
    browser::{api, Browser},
    stripe::{order, paying_customer, spawn_app_with_stripe_args, StripeServer},
    TestApp,
};
use domain::db::Backend;
use reqwest::header;

const PASSWORD: &str = "correct horse battery staple";

const SELLER: [&str; 12] = [
    "--seller-name",
    "Example Hosting Oy",
    "--seller-address",
    "Mannerheimintie 1; 00100 Helsinki; Finland",
    "--seller-vat-number",
    "FI12345671",
    "--seller-company-number",
    "1234567-1",
    "--seller-iban",
    "FI2112345600000785",
    "--seller-bic",
    "NDEAFIHH",
];

/// The invoice page's loader, as the page calls it.
async fn invoice(browser: &mut Browser<'_>, id: &str) -> serde_json::Value {
    let response = browser
        .app
        .client
        .post(browser.app.url("/api/invoice"))
        .header(header::ORIGIN, &browser.app.address)
        .header(header::COOKIE, browser.cookie.clone().unwrap_or_default())
        .form(&[("id", id)])
        .send()
        .await
        .unwrap();
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn stored(app: &TestApp, id: &str) -> (Option<String>, Option<i64>, Option<String>) {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT document, frozen_at, totals_mismatch FROM invoices WHERE id = $1"
    )
    .bind(uuid::Uuid::parse_str(id).unwrap())
    .fetch_one(pool)
    .await
    .unwrap())
}

async fn manual_invoices_are_frozen_documents_their_owner_sees(backend: Backend) {
    use domain::{
        audit::{Actor, RequestMeta},
        billing::manual,
    };
    let app = common::spawn_app_args(backend, None, &SELLER).await;
    let mut bea = Browser::new(&app);
    bea.sign_up_verified("bea@example.com", PASSWORD, "Bea")
        .await;
    bea.billing_details("NL").await;
    assert_eq!(api(&mut bea, "invoices").await, serde_json::json!([]));
    order(&mut bea, "starter", "bea-home", "eur").await;
    let sub = api(&mut bea, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, number) = manual::issue(
        &app.state.portal,
        &RequestMeta::default(),
        Actor::System,
        uuid::Uuid::parse_str(&sub).unwrap(),
    )
    .await
    .unwrap();
    let id = id.to_string();
    assert_eq!(number, "M-000001");

    // The billing history lists it by its random id.
    let rows = api(&mut bea, "invoices").await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["id"], id);
    assert_eq!(rows[0]["number"], "M-000001");
    assert_eq!(rows[0]["status"], "Open");

    // The document: the seller from configuration, the buyer, the bank details and the
    // payment reference, the line, the tax, the totals.
    let page = invoice(&mut bea, &id).await;
    let seller: Vec<&str> = page["seller"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        seller,
        [
            "Example Hosting Oy",
            "Mannerheimintie 1",
            "00100 Helsinki",
            "Finland",
            "VAT number FI12345671",
            "Company number 1234567-1"
        ]
    );
    assert_eq!(page["buyer"][0], "Ada Lovelace");
    assert!(page["buyer"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l == "The Netherlands"));
    assert_eq!(page["bank"][0], "IBAN FI21 1234 5600 0007 85");
    assert_eq!(page["bank"][1], "BIC NDEAFIHH");
    let reference = page["payment_reference"].as_str().unwrap();
    assert!(
        reference.starts_with("RF") && reference.ends_with("M000001"),
        "{reference}"
    );
    assert_eq!(page["lines"].as_array().unwrap().len(), 1);
    assert!(page["lines"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Starter"));
    assert_eq!(page["taxes"][0][0], "VAT 21 % (NL)");
    let (document, frozen_at, mismatch) = stored(&app, &id).await;
    assert!(frozen_at.is_some());
    assert_eq!(mismatch, None, "the totals add up");
    let document: serde_json::Value = serde_json::from_str(&document.unwrap()).unwrap();
    let subtotal = document["subtotal"].as_i64().unwrap();
    let tax = document["taxes"][0]["amount"].as_i64().unwrap();
    assert_eq!(
        tax,
        (subtotal * 2100 + 5000) / 10000,
        "21 %, rounded half up"
    );
    assert_eq!(document["total"].as_i64().unwrap(), subtotal + tax);

    // Billing details changed later leave the document as it was.
    bea.post(
        "/billing",
        &[
            ("name", "Bea Someone Else"),
            ("address_line1", "Other street 2"),
            ("postal_code", "1015 CJ"),
            ("city", "Amsterdam"),
            ("country", "NL"),
            ("billing_email", "billing@example.com"),
        ],
    )
    .await;
    assert_eq!(invoice(&mut bea, &id).await, page, "frozen");

    // The invoice page prints as the document (no navigation, A4).
    let html = bea
        .get(&format!("/billing/invoices/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Invoice M-000001"), "{html}");

    // Another customer: nothing, whatever the id.
    let mut cleo = Browser::new(&app);
    cleo.sign_up_verified("cleo@example.com", PASSWORD, "Cleo")
        .await;
    assert_eq!(invoice(&mut cleo, &id).await, serde_json::Value::Null);
    assert_eq!(api(&mut cleo, "invoices").await, serde_json::json!([]));
    assert_eq!(
        invoice(&mut cleo, "not-an-id").await,
        serde_json::Value::Null
    );

    // Invoices recorded before documents existed get theirs from the backfill job.
    domain::on_db!(&app.state.portal.db, pool => sqlx::query(
        "UPDATE invoices SET document = NULL, frozen_at = NULL"
    )
    .execute(pool)
    .await
    .map(|_| ())
    .unwrap());
    assert_eq!(api(&mut bea, "invoices").await, serde_json::json!([]));
    assert_eq!(
        domain::billing::documents::backfill(&app.state.portal)
            .await
            .unwrap(),
        1
    );
    assert_eq!(api(&mut bea, "invoices").await.as_array().unwrap().len(), 1);
    app.cleanup().await;
}

async fn stripe_invoices_are_frozen_when_finalised_and_their_totals_checked(backend: Backend) {
    let stripe = StripeServer::start().await;
    let app = spawn_app_with_stripe_args(backend, &stripe, &SELLER).await;
    stripe.send_webhooks_to(&app).await;
    let mut ada = paying_customer(&app, &stripe, "ada@example.com").await;
    app.wait_for_stripe_events("invoice.finalized", 1).await;
    app.run_jobs().await;
    // As at Stripe, the card a customer's SetupIntent saved is attached to that customer (the
    // payment method's sync would otherwise forget the card).
    let (pm, customer): (String, String) = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT c.stripe_payment_method_id, b.stripe_customer_id FROM cards c \
         JOIN billing_accounts b ON b.customer_id = c.customer_id"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    let at_stripe = stripe
        .api(
            reqwest::Method::GET,
            &format!("/v1/payment_methods/{pm}"),
            &[],
        )
        .await;
    assert_eq!(at_stripe["customer"], customer.as_str());
    let rows = api(&mut ada, "invoices").await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["status"], "Paid");
    let first = rows[0]["id"].as_str().unwrap().to_string();
    let page = invoice(&mut ada, &first).await;
    assert!(
        page["number"].as_str().unwrap().starts_with("LS-"),
        "{page}"
    );
    assert_eq!(page["taxes"][0][0], "VAT 19 % (DE)");
    assert!(page["paid"]
        .as_str()
        .unwrap()
        .contains("with the card ending in 4242"));
    assert_eq!(page["bank"], serde_json::json!([]), "a card invoice");
    assert_eq!(stored(&app, &first).await.2, None, "the totals add up");

    // An upgrade invoices the prorated difference: its lines carry the change.
    let sub = api(&mut ada, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ada.post(
        &format!("/homeservers/{sub}/plan"),
        &[("plan", "enterprise")],
    )
    .await;
    app.wait_for_stripe_events("invoice.finalized", 2).await;
    app.run_jobs().await;
    let rows = api(&mut ada, "invoices").await;
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    let upgrade = rows[0]["id"].as_str().unwrap().to_string();
    assert_ne!(upgrade, first, "newest first");
    let page = invoice(&mut ada, &upgrade).await;
    assert!(
        page["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["description"]
                .as_str()
                .unwrap()
                .contains("change of plan")),
        "{page}"
    );
    let (document, _, mismatch) = stored(&app, &upgrade).await;
    assert_eq!(mismatch, None, "{document:?}");
    app.cleanup().await;
}

both_backends!(
    manual_invoices_are_frozen_documents_their_owner_sees,
    stripe_invoices_are_frozen_when_finalised_and_their_totals_checked,
);
