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
    // The link's page shows the payment state as it is now, though the page is kept rendered.
    let status = |html: &str| {
        let start = html.find("<span class=\"status\">").expect("a status") + 21;
        html[start..start + html[start..].find('<').unwrap()].to_string()
    };
    assert_eq!(status(&opened), "Open");
    let (_, _, reopened) = anonymous(&app, &format!("/i/{token}")).await;
    assert_eq!(status(&reopened), "Paid");
    assert!(
        reopened.contains(&format!("href=\"/i/{token}/pdf\"")),
        "the PDF by the same link"
    );
    // Compressed as plain, with the token in the same place.
    let gzipped = reqwest::Client::new()
        .get(app.url(&format!("/i/{token}")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&gzipped.bytes().await.unwrap()[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, reopened);
    let opens = |page: &serde_json::Value| -> i64 {
        let links = page["links"].as_array().unwrap();
        links.iter().map(|l| l["opened"].as_i64().unwrap()).sum()
    };
    assert_eq!(
        opens(&page),
        1,
        "the owner's page counts the open just before"
    );
    let page = invoice(&mut bea, &id).await;
    assert_eq!(opens(&page), 3);

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
    // Paid by card: a receipt, once, however often Stripe's invoice is synced again.
    let receipt = format!(
        "Receipt: invoice {} is paid",
        page["number"].as_str().unwrap()
    );
    let receipts = || async {
        app.mail_subjects("ada@example.com")
            .await
            .iter()
            .filter(|s| **s == receipt)
            .count()
    };
    assert_eq!(receipts().await, 1);
    let stripe_id: String = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT stripe_invoice_id FROM invoices WHERE id = $1"
    )
    .bind(uuid::Uuid::parse_str(&first).unwrap())
    .fetch_one(pool)
    .await
    .unwrap());
    for _ in 0..2 {
        domain::billing::sync::sync(&app.state.portal, "invoice", &stripe_id)
            .await
            .unwrap();
    }
    assert_eq!(receipts().await, 1, "one receipt per invoice");
    assert_eq!(
        invoice(&mut ada, &first).await["links"][0]["created_by"],
        "The portal",
        "the receipt's link"
    );

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
    let number = page["number"].as_str().unwrap();
    assert!(
        app.mail_subjects("ada@example.com")
            .await
            .contains(&format!("Receipt: invoice {number} is paid")),
        "the upgrade's invoice has its receipt"
    );
    app.cleanup().await;
}

/// A buyer whose billing name is `company` (in its own script), in `country`, with a bank
/// transfer order and its first invoice.
async fn buyer_with_an_invoice<'a>(
    app: &'a TestApp,
    email: &str,
    company: &str,
    country: &str,
) -> (Browser<'a>, String) {
    let mut browser = Browser::new(app);
    browser.sign_up_verified(email, PASSWORD, "Buyer").await;
    browser
        .post(
            "/billing",
            &[
                ("name", company),
                ("address_line1", "1 Main Street"),
                ("postal_code", "12345"),
                ("city", "Town"),
                ("country", country),
                ("billing_email", email),
            ],
        )
        .await;
    assert_eq!(
        browser.flash().await["notice"],
        "Your billing details were saved."
    );
    let name = format!("{}-home", email.split('@').next().unwrap());
    order(&mut browser, "business", &name, "eur").await;
    let id = api(&mut browser, "invoices").await[0]["id"]
        .as_str()
        .expect("the order's invoice")
        .to_string();
    (browser, id)
}

/// What a poppler-utils tool (installed by scripts/setup.sh --test) prints about a PDF:
/// `pdftotext` its text, `pdfinfo` its page size and more.
fn poppler(tool: &str, pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("invoice-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let mut command = std::process::Command::new(tool);
    if tool == "pdftotext" {
        command.args(["-enc", "UTF-8"]);
    }
    command.arg(&path);
    if tool == "pdftotext" {
        command.arg("-"); // to standard output
    }
    let out = command.output();
    std::fs::remove_file(&path).ok();
    let out = out.unwrap_or_else(|e| panic!("{tool} (poppler-utils): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pdf_text(pdf: &[u8]) -> String {
    poppler("pdftotext", pdf)
}

async fn stored_pdf(app: &TestApp, id: &str) -> Option<(Vec<u8>, String)> {
    domain::billing::pdfs::stored(&app.state.portal.db, uuid::Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
}

async fn invoice_pdfs_are_rendered_once_and_hold_the_document(backend: Backend) {
    let app = common::spawn_app_args(backend, None, &SELLER).await;
    let (mut ru, ru_invoice) =
        buyer_with_an_invoice(&app, "ru@example.com", "ООО Ромашка", "RU").await;
    let (mut gr, gr_invoice) =
        buyer_with_an_invoice(&app, "gr@example.com", "Ελληνική Εταιρεία", "GR").await;

    // Before the render job: served all the same, rendered for the request, nothing stored.
    assert_eq!(stored_pdf(&app, &ru_invoice).await, None);
    let early = ru.get(&format!("/billing/invoices/{ru_invoice}/pdf")).await;
    assert_eq!(early.status(), 200);
    let early = early.bytes().await.unwrap().to_vec();
    assert_eq!(
        stored_pdf(&app, &ru_invoice).await,
        None,
        "a GET stores nothing"
    );

    // The job renders each once and keeps it with its SHA-256.
    app.run_jobs().await;
    let (pdf, sha256) = stored_pdf(&app, &ru_invoice)
        .await
        .expect("rendered by the job");
    assert_eq!(sha256, domain::billing::pdfs::sha256_hex(&pdf));
    assert_eq!(pdf, early, "the same document makes the same bytes");

    let response = ru.get(&format!("/billing/invoices/{ru_invoice}/pdf")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"invoice-M-000001.pdf\""
    );
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("no-store"));
    assert_eq!(response.bytes().await.unwrap().to_vec(), pdf);

    // What it says, read back as text: number, seller, buyer in Cyrillic, the export note,
    // bank details and reference; A4; no payment state.
    let text = pdf_text(&pdf);
    for expected in [
        "Invoice M-000001",
        "Example Hosting Oy",
        "ООО Ромашка",
        "Russia",
        "FI21 1234 5600 0007 85",
        "€50",
        "Page 1 of 1",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let page = common::browser::api_with(&mut ru, "invoice", &[("id", &ru_invoice)]).await;
    assert!(
        text.contains(page["payment_reference"].as_str().unwrap()),
        "{text}"
    );
    assert!(
        text.contains(
            page["tax_note"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
        ),
        "{text}"
    );
    assert!(
        !text.contains("Open") && !text.contains("Paid"),
        "no status: {text}"
    );
    let info = poppler("pdfinfo", &pdf);
    assert!(info.contains("(A4)"), "{info}");

    let (gr_pdf, _) = stored_pdf(&app, &gr_invoice).await.unwrap();
    let text = pdf_text(&gr_pdf);
    for expected in [
        "Invoice M-000002",
        "Ελληνική Εταιρεία",
        "Greece",
        "VAT 24 % (GR)",
        "€62",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }

    // Paid later: the PDF stays as it was (its state lives beside it).
    domain::billing::manual::mark_paid(
        &app.state.portal,
        &domain::audit::RequestMeta::default(),
        domain::audit::Actor::System,
        uuid::Uuid::parse_str(&ru_invoice).unwrap(),
    )
    .await
    .unwrap();
    app.run_jobs().await;
    assert_eq!(stored_pdf(&app, &ru_invoice).await.unwrap().0, pdf);

    // Another customer gets nothing; the invoice's link gets the same PDF.
    assert_eq!(
        gr.get(&format!("/billing/invoices/{ru_invoice}/pdf"))
            .await
            .status(),
        404
    );
    let link = new_link(&mut ru, &ru_invoice).await;
    let token = link["/i/".len()..].to_string();
    let response = reqwest::Client::new()
        .get(app.url(&format!("{link}/pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(
        response.headers()["x-robots-tag"],
        "noindex, nofollow, noarchive"
    );
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(response.bytes().await.unwrap().to_vec(), pdf);
    let unknown = anonymous(&app, &format!("/i/{}/pdf", "A".repeat(43))).await;
    assert_eq!(unknown.0, 404);
    assert_eq!(
        unknown.2,
        anonymous(&app, &format!("/i/{}", "A".repeat(43))).await.2
    );
    assert!(!common::logs().contains(&token), "no token in the log");
    app.cleanup().await;
}

/// The number, status and period start of the subscription's invoices, oldest first.
async fn invoices_of(app: &TestApp, sub: uuid::Uuid) -> Vec<(String, String, i64)> {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT number, status, period_start FROM invoices WHERE subscription_id = $1 ORDER BY number"
    )
    .bind(sub)
    .fetch_all(pool)
    .await
    .unwrap())
}

async fn manual_subscriptions_are_invoiced_once_per_period_and_unpaid_ones_walk_into_dunning(
    backend: Backend,
) {
    use domain::{
        audit::{Actor, RequestMeta},
        billing::{dunning, manual},
    };
    let app = common::spawn_app_args(backend, None, &SELLER).await;
    let portal = &app.state.portal;
    let day = time::Duration::days(1);
    let (mut bea, _) = customer_with_an_invoice(&app).await;
    let sub = uuid::Uuid::parse_str(
        api(&mut bea, "dashboard").await["rows"][0]["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let status = || {
        let db = portal.db.clone();
        async move {
            let status: String = domain::on_db!(&db, pool => sqlx::query_scalar(
                "SELECT status FROM subscriptions WHERE id = $1"
            )
            .bind(sub)
            .fetch_one(pool)
            .await
            .unwrap());
            status
        }
    };
    let paid = |number: &'static str| async move {
        let id: uuid::Uuid = domain::on_db!(&portal.db, pool => sqlx::query_scalar(
            "SELECT id FROM invoices WHERE number = $1"
        )
        .bind(number)
        .fetch_one(pool)
        .await
        .unwrap());
        manual::mark_paid(portal, &RequestMeta::default(), Actor::System, id)
            .await
            .unwrap();
    };
    // Paid on 22 November: the period runs to 22 December, 12:00.
    paid("M-000001").await;
    let period_end = portal.clock.now_ms() + 30 * 86_400_000;
    app.run_jobs().await;
    assert_eq!(invoices_of(&app, sub).await.len(), 1, "not due yet");

    // 14 days before the period ends, less a minute: nothing. At 14 days: the next period's
    // invoice, from the period's end, due at it, emailed.
    app.clock
        .advance(time::Duration::days(16) - time::Duration::minutes(1));
    assert_eq!(manual::issue_due(portal).await.unwrap(), 0);
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(manual::issue_due(portal).await.unwrap(), 1);
    let mail = app
        .queued_mail("bea@example.com", "Invoice M-000002 for bea-home")
        .await
        .expect("the renewal invoice is emailed");
    assert!(mail.contains("due on 22 December 2026"), "{mail}");
    assert!(mail.contains("/i/"), "{mail}");
    // Run again, at once on two replicas, and by the scheduled job: still one.
    let (a, b) = tokio::join!(manual::issue_due(portal), manual::issue_due(portal));
    assert_eq!((a.unwrap(), b.unwrap()), (0, 0));
    app.run_jobs().await;
    assert_eq!(
        invoices_of(&app, sub).await[1..],
        [("M-000002".to_string(), "open".to_string(), period_end)]
    );

    // Paid: the period after it is invoiced 14 days before it begins, once.
    paid("M-000002").await;
    assert_eq!(status().await, "active");
    app.clock.advance(day * 31);
    app.run_jobs().await;
    assert_eq!(manual::issue_due(portal).await.unwrap(), 0);
    let invoices = invoices_of(&app, sub).await;
    assert_eq!(invoices.len(), 3, "{invoices:?}");
    assert_eq!(invoices[2].0, "M-000003");

    // Unpaid: past due when it falls due (when the paid period ends, 22 January), then marked
    // for suspension, by an email that carries a link to the invoice; no other invoice.
    app.clock.advance(day * 14);
    app.run_jobs().await;
    assert_eq!(status().await, "past_due");
    app.clock.advance(day * 14);
    assert_eq!(dunning::run(portal).await.unwrap().marked, 1);
    let mail = app
        .queued_mail("bea@example.com", "bea-home will be suspended")
        .await
        .expect("the suspension is emailed");
    assert!(mail.contains("Open the invoice:"), "{mail}");
    let start = mail.find("/i/").expect("a link to the invoice") + 3;
    let (status_code, _, opened) =
        anonymous(&app, &format!("/i/{}", &mail[start..start + 43])).await;
    assert_eq!(status_code, 200);
    assert!(opened.contains("Invoice M-000003"), "{opened}");
    app.clock.advance(day * 10);
    app.run_jobs().await;
    assert_eq!(
        invoices_of(&app, sub).await.len(),
        3,
        "one invoice per period"
    );

    // Paid late: active to the end of the period it paid for, and the next one invoiced.
    paid("M-000003").await;
    assert_eq!(status().await, "active");
    app.clock.advance(time::Duration::hours(1));
    app.run_jobs().await;
    let invoices = invoices_of(&app, sub).await;
    assert_eq!(invoices.len(), 4, "{invoices:?}");

    // Staff withdraw that invoice: nobody invoiced the next period, so when the paid one ends
    // the subscription falls past due; it is not issued again by itself.
    let id: uuid::Uuid = domain::on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM invoices WHERE number = $1"
    )
    .bind(&invoices[3].0)
    .fetch_one(pool)
    .await
    .unwrap());
    manual::void(portal, &RequestMeta::default(), Actor::System, id)
        .await
        .unwrap();
    app.clock.advance(day * 20);
    app.run_jobs().await;
    assert_eq!(status().await, "past_due");
    assert_eq!(invoices_of(&app, sub).await.len(), 4);
    app.cleanup().await;
}

/// A bank-transfer customer (Bea, in the Netherlands) with one manual invoice issued.
async fn customer_with_an_invoice(app: &TestApp) -> (Browser<'_>, String) {
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
    // Its first invoice was issued with the order.
    let id: uuid::Uuid = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM invoices WHERE subscription_id = $1"
    )
    .bind(uuid::Uuid::parse_str(&sub).unwrap())
    .fetch_one(pool)
    .await
    .unwrap());
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
    app.clock.advance(time::Duration::seconds(1));

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

/// Makes a link to invoice `id` as its owner; returns its path, `/i/{token}`.
async fn new_link(owner: &mut Browser<'_>, id: &str) -> String {
    let page = owner
        .post(&format!("/billing/invoices/{id}/links"), &[])
        .await
        .text()
        .await
        .unwrap();
    let start = page.find("/i/").expect("the new link is shown");
    page[start..start + 46].to_string()
}

/// The payment state an invoice page shows.
fn status_of(body: &str) -> String {
    let start = body.find("<span class=\"status\">").expect("a status") + 21;
    body[start..].split('<').next().unwrap().to_string()
}

/// A link a replica looked up is kept for a second: a payment or a revocation made on this
/// replica shows at once, one made elsewhere (here: straight in the database, as another
/// replica would) within the second, and an expiry is exact.
async fn invoice_link_lookups_are_kept_a_second_and_forgotten_on_every_change(backend: Backend) {
    use domain::audit::{Actor, RequestMeta};
    let mut args = SELLER.to_vec();
    args.extend(["--invoice-link-days", "1"]);
    let app = common::spawn_app_args(backend, None, &args).await;
    let (mut bea, id) = customer_with_an_invoice(&app).await;
    // Opened, then paid on this replica: the next open shows it, with no time passing.
    let link = new_link(&mut bea, &id).await;
    let (status, _, body) = anonymous(&app, &link).await;
    assert_eq!((status, status_of(&body)), (200, "Open".to_string()));
    let invoice = uuid::Uuid::parse_str(&id).unwrap();
    domain::billing::manual::mark_paid(
        &app.state.portal,
        &RequestMeta::default(),
        Actor::System,
        invoice,
    )
    .await
    .unwrap();
    let (status, _, body) = anonymous(&app, &link).await;
    assert_eq!((status, status_of(&body)), (200, "Paid".to_string()));

    // Revoked by another replica: this one still opens it for the rest of the second, then not.
    app.clock.advance(time::Duration::milliseconds(100));
    domain::on_db!(&app.state.portal.db, pool => sqlx::query(
        "UPDATE invoice_links SET revoked_at = $1 WHERE invoice_id = $2"
    )
    .bind(domain::clock::Clock::now_ms(&app.clock))
    .bind(invoice)
    .execute(pool)
    .await
    .map(|_| ())
    .unwrap());
    assert_eq!(anonymous(&app, &link).await.0, 200, "kept for a second");
    app.clock.advance(time::Duration::milliseconds(900));
    assert_eq!(anonymous(&app, &link).await.0, 404, "read again after it");

    // A link of one day, opened a moment before it expires: it expires on time all the same.
    let link = new_link(&mut bea, &id).await;
    app.clock
        .advance(time::Duration::days(1) - time::Duration::milliseconds(300));
    assert_eq!(anonymous(&app, &link).await.0, 200);
    app.clock.advance(time::Duration::milliseconds(300));
    assert_eq!(anonymous(&app, &link).await.0, 404, "expired");
    app.cleanup().await;
}

both_backends!(
    invoice_links_open_the_invoice_alone_until_revoked,
    invoice_link_lookups_are_kept_a_second_and_forgotten_on_every_change,
    invoice_pdfs_are_rendered_once_and_hold_the_document,
    manual_subscriptions_are_invoiced_once_per_period_and_unpaid_ones_walk_into_dunning,
    manual_invoices_are_frozen_documents_their_owner_sees,
    stripe_invoices_are_frozen_when_finalised_and_their_totals_checked,
);
