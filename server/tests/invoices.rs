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
    common::browser::api_with(browser, "invoice", &[("id", id)]).await
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
    let app = common::spawn_app_args(backend, None, &SELLER).await;
    let (mut bea, id) = customer_with_an_invoice(&app).await;

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

    // The customer's owner was emailed the invoice, with the bank details, the reference
    // and a link that opens it without signing in.
    let (subject, body): (String, String) = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT subject, text_body FROM outbox_emails WHERE recipient = 'bea@example.com' \
         AND subject LIKE 'Invoice %'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(subject, "Invoice M-000001 for bea-home");
    assert!(
        body.contains("IBAN FI21 1234 5600 0007 85 (BIC NDEAFIHH)"),
        "{body}"
    );
    assert!(body.contains(reference), "{body}");
    let start = body.find("/i/").expect("the email carries a link") + 3;
    let token = &body[start..start + 43];
    let (status, _, opened) = anonymous(&app, &format!("/i/{token}")).await;
    assert_eq!(status, 200);
    assert!(opened.contains("Invoice M-000001"));
    assert_eq!(
        invoice(&mut bea, &id).await["links"][0]["created_by"],
        "The portal",
        "the email's link is listed with the others"
    );

    // Paid: a receipt, with a link of its own.
    domain::billing::manual::mark_paid(
        &app.state.portal,
        &domain::audit::RequestMeta::default(),
        domain::audit::Actor::System,
        uuid::Uuid::parse_str(&id).unwrap(),
    )
    .await
    .unwrap();
    assert!(app
        .mail_subjects("bea@example.com")
        .await
        .contains(&"Receipt: invoice M-000001 is paid".to_string()));
    let page = invoice(&mut bea, &id).await;
    assert_eq!(page["status"], "Paid");
    assert_eq!(page["links"].as_array().unwrap().len(), 2);

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

/// A bank-transfer customer (Bea, in the Netherlands) with one manual invoice issued.
async fn customer_with_an_invoice(app: &TestApp) -> (Browser<'_>, String) {
    use domain::{
        audit::{Actor, RequestMeta},
        billing::manual,
    };
    let mut bea = Browser::new(app);
    bea.sign_up_verified("bea@example.com", PASSWORD, "Bea")
        .await;
    bea.billing_details("NL").await;
    assert_eq!(api(&mut bea, "invoices").await, serde_json::json!([]));
    order(&mut bea, "starter", "bea-home", "eur").await;
    let sub = api(&mut bea, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, _) = manual::issue(
        &app.state.portal,
        &RequestMeta::default(),
        Actor::System,
        uuid::Uuid::parse_str(&sub).unwrap(),
    )
    .await
    .unwrap();
    (bea, id.to_string())
}

/// What a browser with no session gets for `path`: status, headers, body.
async fn anonymous(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::new()
        .get(app.url(path))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn invoice_links_open_the_invoice_alone_until_revoked(backend: Backend) {
    let mut args = SELLER.to_vec();
    args.extend(["--invoice-link-opens-per-minute", "8"]);
    let app = common::spawn_app_args(backend, None, &args).await;
    let (mut bea, id) = customer_with_an_invoice(&app).await;

    // "Create a link": the answer shows it once.
    let response = bea
        .post(&format!("/billing/invoices/{id}/links"), &[])
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let start = page.find("/i/").expect("the new link is shown") + 3;
    let token = page[start..start + 43].to_string();
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
    assert_eq!(page.as_bytes()[start + 43], b'"', "43 characters");
    assert_eq!(
        common::browser::database_mentions(&app.state.portal.db, &token).await,
        Vec::<String>::new(),
        "only the token's hash is stored"
    );

    // Anyone with the link: the invoice and nothing else, no cookie, private headers.
    let (status, headers, body) = anonymous(&app, &format!("/i/{token}")).await;
    assert_eq!(status, 200);
    assert!(body.contains("Invoice M-000001") && body.contains("Example Hosting Oy"));
    assert!(
        !body.contains("Sign out") && !body.contains("/dashboard") && !body.contains("<script")
    );
    assert!(headers.get("set-cookie").is_none());
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow, noarchive");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store, private");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("http"),
        "{csp}"
    );

    // The owner sees the link's access record.
    let links = invoice(&mut bea, &id).await["links"].clone();
    assert_eq!(links.as_array().unwrap().len(), 2, "{links}");
    assert_eq!(
        links[1]["created_by"], "The portal",
        "the invoice email's link"
    );
    assert_eq!(links[0]["opened"], 1);
    assert_eq!(links[0]["created_by"], "Bea");
    assert_eq!(links[0]["state"], "Active");

    // Another customer can neither make nor revoke links to it.
    let mut cleo = Browser::new(&app);
    cleo.sign_up_verified("cleo@example.com", PASSWORD, "Cleo")
        .await;
    let link = links[0]["id"].as_str().unwrap().to_string();
    let revoke = format!("/billing/invoices/{id}/links/{link}/revoke");
    assert_eq!(
        cleo.post(&format!("/billing/invoices/{id}/links"), &[])
            .await
            .status(),
        404
    );
    assert_eq!(cleo.post(&revoke, &[]).await.status(), 404);

    // Revoked, it answers exactly as a token that never existed, or a malformed one.
    bea.post(&revoke, &[]).await;
    assert_eq!(
        bea.flash().await["notice"],
        "The link was revoked: it opens nothing any more."
    );
    let revoked = anonymous(&app, &format!("/i/{token}")).await;
    let unknown = anonymous(&app, &format!("/i/{}", "A".repeat(43))).await;
    let malformed = anonymous(&app, "/i/not-a-token").await;
    for answer in [&revoked, &unknown, &malformed] {
        assert_eq!(answer.0, 404);
        assert_eq!(answer.2, revoked.2, "the same page, byte for byte");
        let mut names: Vec<_> = answer.1.keys().filter(|k| *k != "date").collect();
        names.sort_by_key(|k| k.as_str().to_string());
        let mut expected: Vec<_> = revoked.1.keys().filter(|k| *k != "date").collect();
        expected.sort_by_key(|k| k.as_str().to_string());
        assert_eq!(names, expected);
        // Every header the same, but the two that differ for every request.
        for name in names.into_iter().filter(|n| *n != "x-request-id") {
            assert_eq!(answer.1[name], revoked.1[name], "{name}");
        }
    }
    assert_eq!(
        invoice(&mut bea, &id).await["links"][0]["opened"],
        1,
        "a revoked link records nothing"
    );

    // Past the limit of opens per client address: 429.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(anonymous(&app, &format!("/i/{token}")).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(!common::logs().contains(&token), "no token in the log");
    app.cleanup().await;
}

both_backends!(
    invoice_links_open_the_invoice_alone_until_revoked,
    manual_invoices_are_frozen_documents_their_owner_sees,
    stripe_invoices_are_frozen_when_finalised_and_their_totals_checked,
);
