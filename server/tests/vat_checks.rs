//! VAT numbers confirmed by VIES (its REST API, played by end2end/vies-server.py) before any
//! sale is invoiced without VAT; on both databases.

mod common;

use common::{
    browser::{api, Browser},
    stripe::order,
    vies::ViesServer,
    TestApp,
};
use domain::{
    audit::{Actor, RequestMeta},
    billing::{
        manual,
        vies::{Vies, ViesConfig, ViesError},
        Seller,
    },
    db::Backend,
};

const PASSWORD: &str = "correct horse battery staple";

/// A business in `country` with `vat_number` and a manual (bank transfer) homeserver order.
async fn business<'a>(
    app: &'a TestApp,
    email: &str,
    country: &str,
    vat_number: &str,
) -> Browser<'a> {
    let mut browser = Browser::new(app);
    browser.sign_up_verified(email, PASSWORD, "Buyer").await;
    browser
        .post(
            "/billing",
            &[
                ("name", "Buyer"),
                ("company", "Buyer Ltd"),
                ("address_line1", "1 Main Street"),
                ("postal_code", "12345"),
                ("city", "Town"),
                ("country", country),
                ("billing_email", email),
                ("vat_number", vat_number),
            ],
        )
        .await;
    let flash = browser.flash().await;
    assert_eq!(
        flash["notice"], "Your billing details were saved.",
        "{email}: {flash}"
    );
    browser
}

async fn subscription_tax(app: &TestApp, email: &str) -> (Option<String>, i32) {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT s.tax_key, s.tax_rate_bp FROM subscriptions s JOIN memberships m ON m.customer_id = s.customer_id \
         JOIN users u ON u.id = m.user_id WHERE u.email_normalized = $1"
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap())
}

async fn billing_page(browser: &mut Browser<'_>) -> serde_json::Value {
    api(browser, "billing").await
}

/// The invoice the portal issues now for the customer's subscription: (tax, total).
async fn invoice_now(app: &TestApp, browser: &mut Browser<'_>) -> (i64, i64) {
    let id = uuid::Uuid::parse_str(
        api(browser, "dashboard").await["rows"][0]["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let portal = &app.state.portal;
    // The one issued before (the order's first, say) is withdrawn first.
    let open: Vec<uuid::Uuid> = domain::on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM invoices WHERE subscription_id = $1 AND status = 'open'"
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap());
    for invoice in open {
        manual::void(portal, &RequestMeta::default(), Actor::System, invoice)
            .await
            .unwrap();
    }
    let (invoice, _) = manual::issue(portal, &RequestMeta::default(), Actor::System, id)
        .await
        .unwrap();
    domain::on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT tax, total FROM invoices WHERE id = $1"
    )
    .bind(invoice)
    .fetch_one(pool)
    .await
    .unwrap())
}

/// A portal whose seller is Finnish (VAT number FI12345671), asking the VIES stand-in.
async fn finnish_seller_with_vies(backend: Backend) -> (ViesServer, TestApp) {
    let vies = ViesServer::start();
    let app = common::spawn_app_args(
        backend,
        None,
        &[
            "--vies-url",
            &vies.base,
            "--seller-vat-number",
            "FI12345671",
            // Eleven customers sign up and in from one address within a minute.
            "--auth-attempts-per-minute",
            "1000",
        ],
    )
    .await;
    (vies, app)
}

async fn a_vat_number_counts_only_once_vies_confirms_it(backend: Backend) {
    let (vies, app) = finnish_seller_with_vies(backend).await;

    // A French business: until VIES confirms its number, French VAT (20 %) is charged.
    let mut fr = business(&app, "fr@example.com", "FR", "FR 40 303 265 045").await;
    assert_eq!(
        billing_page(&mut fr).await["vat_state"],
        "We are checking this VAT number with the EU's VIES service. Until it is confirmed, VAT is charged."
    );
    order(&mut fr, "starter", "fr-home", "eur").await;
    assert_eq!(
        subscription_tax(&app, "fr@example.com").await,
        (Some("vat-FR-2000".into()), 2000)
    );
    assert_eq!(invoice_now(&app, &mut fr).await, (200, 1200));

    // The check job asks VIES (naming the seller, so VIES gives a consultation number), keeps
    // the answer, and decides the tax again: reverse charge from then on.
    app.run_jobs().await;
    let sent = vies.requests().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["countryCode"], "FR");
    assert_eq!(sent[0]["vatNumber"], "40303265045");
    assert_eq!(sent[0]["requesterMemberStateCode"], "FI");
    assert_eq!(sent[0]["requesterNumber"], "12345671");
    let (request_id, request_date): (Option<String>, Option<String>) = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT vat_request_id, vat_request_date FROM billing_details WHERE vat_status = 'valid'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    let request_id = request_id.expect("VIES's consultation number is kept");
    assert!(request_id.starts_with("WAPI"), "{request_id}");
    assert_eq!(request_date.unwrap().len(), 10);
    let state = billing_page(&mut fr).await["vat_state"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        state.starts_with("VAT number confirmed by the EU's VIES service on ")
            && state.contains(&request_id),
        "{state}"
    );
    assert_eq!(
        subscription_tax(&app, "fr@example.com").await,
        (Some("vat-reverse-charge".into()), 0)
    );
    assert_eq!(invoice_now(&app, &mut fr).await, (0, 1000));

    // A made-up number: VIES says it is not valid, and German VAT stays.
    let mut de = business(&app, "de@example.com", "DE", "DE123456788").await;
    order(&mut de, "starter", "de-home", "eur").await;
    app.run_jobs().await;
    assert_eq!(
        billing_page(&mut de).await["vat_state"],
        "The EU's VIES service says this VAT number is not valid, so VAT is charged. Please check the number."
    );
    assert_eq!(
        subscription_tax(&app, "de@example.com").await,
        (Some("vat-DE-1900".into()), 1900)
    );

    // VIES down for Belgium: the number stays unconfirmed (VAT charged) and the check is
    // tried again later; once VIES answers, the tax follows.
    let mut be = business(&app, "be@example.com", "BE", "BE0000000196").await;
    order(&mut be, "starter", "be-home", "eur").await;
    app.run_jobs().await;
    assert_eq!(
        billing_page(&mut be).await["vat_state"],
        "The EU's VIES service has not answered about this VAT number yet; we keep trying. Until it is confirmed, VAT is charged."
    );
    assert_eq!(
        subscription_tax(&app, "be@example.com").await,
        (Some("vat-BE-2100".into()), 2100)
    );
    vies.answer("BE0000000196", "valid").await;
    app.clock.advance(time::Duration::minutes(1));
    app.run_jobs().await;
    assert_eq!(
        subscription_tax(&app, "be@example.com").await,
        (Some("vat-reverse-charge".into()), 0)
    );

    // A confirmed number is checked again before a renewal: VIES now says it is gone, and VAT
    // is charged from the next invoice on.
    let fr_sub = uuid::Uuid::parse_str(
        api(&mut fr, "dashboard").await["rows"][0]["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    vies.answer("FR40303265045", "invalid").await;
    app.clock.advance(time::Duration::days(8));
    let renews = app.state.portal.clock.now_ms() + 86_400_000;
    domain::on_db!(&app.state.portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET status = 'active', current_period_end = $2 WHERE id = $1"
    )
    .bind(fr_sub)
    .bind(renews)
    .execute(pool)
    .await
    .map(|_| ())
    .unwrap());
    app.run_jobs().await;
    assert_eq!(
        subscription_tax(&app, "fr@example.com").await,
        (Some("vat-FR-2000".into()), 2000)
    );
    app.cleanup().await;
}

/// One sale of the tax table: who buys, what, and the tax the invoice must carry.
struct Sale {
    email: &'static str,
    country: &'static str,
    vat_number: Option<&'static str>,
    plan: &'static str,
    currency: &'static str,
    /// (rate in basis points, whose VAT), or None for no VAT line.
    tax: Option<(u32, Option<&'static str>)>,
    note: Option<&'static str>,
}

/// Every invoice adds up: the lines make the subtotal, each tax line is its rate of its base
/// rounded half up, and subtotal plus taxes make the total, for sales across the tax table
/// (the seller is Finnish). Proration lines are Stripe's, checked the same way in
/// `invoices.rs` (an upgrade's invoice).
async fn invoices_add_up_for_every_kind_of_sale(backend: Backend) {
    let (_vies, app) = finnish_seller_with_vies(backend).await;
    let sales = [
        // Domestic: Finnish VAT, 25.5 % of 11.00 USD is 2.805, rounded half up to 2.81.
        Sale {
            email: "fi@example.com",
            country: "FI",
            vat_number: None,
            plan: "starter",
            currency: "usd",
            tax: Some((2550, Some("FI"))),
            note: None,
        },
        Sale {
            email: "fi2@example.com",
            country: "FI",
            vat_number: None,
            plan: "enterprise",
            currency: "eur",
            tax: Some((2550, Some("FI"))),
            note: None,
        },
        // EU consumers pay their own country's VAT.
        Sale {
            email: "de@example.com",
            country: "DE",
            vat_number: None,
            plan: "starter",
            currency: "eur",
            tax: Some((1900, Some("DE"))),
            note: None,
        },
        Sale {
            email: "fr@example.com",
            country: "FR",
            vat_number: None,
            plan: "business",
            currency: "eur",
            tax: Some((2000, Some("FR"))),
            note: None,
        },
        Sale {
            email: "nl@example.com",
            country: "NL",
            vat_number: None,
            plan: "starter",
            currency: "usd",
            tax: Some((2100, Some("NL"))),
            note: None,
        },
        Sale {
            email: "hu@example.com",
            country: "HU",
            vat_number: None,
            plan: "business",
            currency: "eur",
            tax: Some((2700, Some("HU"))),
            note: None,
        },
        Sale {
            email: "lu@example.com",
            country: "LU",
            vat_number: None,
            plan: "starter",
            currency: "eur",
            tax: Some((1700, Some("LU"))),
            note: None,
        },
        // EU businesses with a confirmed VAT number: reverse charge, both numbers on the invoice.
        Sale {
            email: "debiz@example.com",
            country: "DE",
            vat_number: Some("DE811907980"),
            plan: "business",
            currency: "eur",
            tax: Some((0, None)),
            note: Some("tax.reverse_charge_note"),
        },
        Sale {
            email: "nlbiz@example.com",
            country: "NL",
            vat_number: Some("NL004495445B01"),
            plan: "starter",
            currency: "usd",
            tax: Some((0, None)),
            note: Some("tax.reverse_charge_note"),
        },
        // Outside the EU: no VAT, the export note.
        Sale {
            email: "us@example.com",
            country: "US",
            vat_number: None,
            plan: "starter",
            currency: "usd",
            tax: None,
            note: Some("tax.outside_eu_note"),
        },
        Sale {
            email: "ch@example.com",
            country: "CH",
            vat_number: None,
            plan: "enterprise",
            currency: "eur",
            tax: None,
            note: Some("tax.outside_eu_note"),
        },
    ];
    let mut buyers = Vec::new();
    for sale in &sales {
        let mut buyer = business(
            &app,
            sale.email,
            sale.country,
            sale.vat_number.unwrap_or(""),
        )
        .await;
        let name = format!("{}-home", sale.email.split('@').next().unwrap());
        order(&mut buyer, sale.plan, &name, sale.currency).await;
        buyers.push(buyer);
    }
    // VIES confirms the numbers; their invoices are issued again with the reverse charge.
    app.run_jobs().await;
    for (sale, buyer) in sales.iter().zip(buyers.iter_mut()) {
        if sale.vat_number.is_some() {
            invoice_now(&app, buyer).await;
        }
    }

    let documents: Vec<(String, String, Option<String>, i64)> = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT u.email_normalized, i.document, i.totals_mismatch, i.tax FROM invoices i \
         JOIN memberships m ON m.customer_id = i.customer_id JOIN users u ON u.id = m.user_id \
         WHERE i.status = 'open'"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(documents.len(), sales.len());
    for sale in &sales {
        let (_, document, mismatch, stated_tax) = documents
            .iter()
            .find(|d| d.0 == sale.email)
            .unwrap_or_else(|| panic!("an invoice for {}", sale.email));
        let doc: serde_json::Value = serde_json::from_str(document).unwrap();
        let who = sale.email;
        assert_eq!(*mismatch, None, "{who}");
        let lines: i64 = doc["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_i64().unwrap())
            .sum();
        let subtotal = doc["subtotal"].as_i64().unwrap();
        assert_eq!(lines, subtotal, "{who}");
        let taxes = doc["taxes"].as_array().unwrap();
        match sale.tax {
            Some((rate, country)) => {
                assert_eq!(taxes.len(), 1, "{who}: {doc}");
                assert_eq!(taxes[0]["rate_bp"], rate, "{who}");
                assert_eq!(taxes[0]["country"].as_str(), country, "{who}");
                assert_eq!(taxes[0]["taxable"], subtotal, "{who}");
                // Half up, computed here on its own.
                let expected = (subtotal * i64::from(rate) + 5_000) / 10_000;
                assert_eq!(taxes[0]["amount"], expected, "{who}");
                assert_eq!(*stated_tax, expected, "{who}");
            }
            None => assert!(taxes.is_empty(), "{who}: {doc}"),
        }
        let tax: i64 = taxes.iter().map(|t| t["amount"].as_i64().unwrap()).sum();
        assert_eq!(doc["total"].as_i64().unwrap(), subtotal + tax, "{who}");
        assert_eq!(doc["tax_note"].as_str(), sale.note, "{who}");
        if let Some(number) = sale.vat_number {
            assert_eq!(doc["seller"]["vat_number"], "FI12345671", "{who}");
            assert_eq!(doc["buyer"]["vat_number"], number, "{who}");
        }
    }
    let fi = documents.iter().find(|d| d.0 == "fi@example.com").unwrap();
    assert_eq!(fi.3, 281, "2.805 rounds half up");
    app.cleanup().await;
}

/// The client meets each answer VIES gives: valid, invalid, each error, and a service slower
/// than the timeout.
#[tokio::test]
async fn the_vies_client_reads_every_answer() {
    let server = ViesServer::start();
    let vies = Vies::new(ViesConfig {
        base_url: server.base.clone(),
        timeout: std::time::Duration::from_secs(2),
    })
    .unwrap();
    let seller = Seller {
        country: "FI".into(),
        vat_number: Some("FI12345671".into()),
        ..Seller::default()
    };
    let valid = vies.check("DE", "DE811907980", &seller).await.unwrap();
    assert!(valid.valid);
    assert_eq!(valid.name.as_deref(), Some("Beispiel GmbH"));
    assert!(valid.request_identifier.is_some());
    let anonymous = Seller {
        country: "FI".into(),
        vat_number: None,
        ..Seller::default()
    };
    let without_requester = vies.check("DE", "DE811907980", &anonymous).await.unwrap();
    assert_eq!(without_requester.request_identifier, None);
    let invalid = vies.check("DE", "DE123456788", &seller).await.unwrap();
    assert!(!invalid.valid);
    for (country, number, code) in [
        ("BE", "BE0000000196", "MS_UNAVAILABLE"),
        ("ES", "ES00000000T", "MS_MAX_CONCURRENT_REQ"),
        ("IT", "IT00000000000", "TIMEOUT"),
        ("SE", "SE000000000001", "SERVICE_UNAVAILABLE"),
    ] {
        assert_eq!(
            vies.check(country, number, &seller).await,
            Err(ViesError::Unavailable(code.into()))
        );
    }
    assert_eq!(
        vies.check("PL", "PL0000000000", &seller).await,
        Err(ViesError::InvalidInput)
    );
    let started = std::time::Instant::now();
    assert!(matches!(
        vies.check("DK", "DK00000000", &seller).await,
        Err(ViesError::Unavailable(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Greece's numbers carry EL, not GR.
    vies.check("GR", "EL123456789", &seller).await.unwrap();
    let sent = server.requests().await;
    assert_eq!(sent.last().unwrap()["countryCode"], "EL");
    assert_eq!(sent.last().unwrap()["vatNumber"], "123456789");
}

both_backends!(
    a_vat_number_counts_only_once_vies_confirms_it,
    invoices_add_up_for_every_kind_of_sale,
);
