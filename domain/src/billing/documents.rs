//! Invoice documents (P7, P9): what an invoice says, frozen when it is finalised (a manual
//! invoice issued, Stripe's invoice finalised) and never changed after. Number, dates, service
//! period, the seller block from configuration, the buyer block as the billing details were,
//! the lines, the taxes with their legal note, and the totals. Labels are translation keys, so
//! the page (and later the PDF) reads in the customer's language; amounts and names are
//! frozen as they were. The payment state (open, paid, …) lives in the invoice's own columns.

use super::{details::BillingDetails, tax::tax_of, Seller};
use crate::{db::Tx, on_db, on_tx, portal::Portal};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the invoice document says. `version` lets later code read earlier documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDocument {
    pub version: u32,
    pub number: String,
    /// Milliseconds since the epoch (UTC).
    pub issued_at: i64,
    pub due_at: Option<i64>,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub currency: String,
    pub seller: Seller,
    /// None for an invoice recorded before the buyer was (an early record).
    pub buyer: Option<BillingDetails>,
    /// ISO 11649 creditor reference a bank transfer quotes (manual invoices).
    pub payment_reference: Option<String>,
    pub lines: Vec<DocumentLine>,
    pub subtotal: i64,
    pub taxes: Vec<DocumentTax>,
    /// The legal note of the tax decision, a translation key (reverse charge, export).
    pub tax_note: Option<String>,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentLine {
    /// The plan's name as the catalogue said then (or the Stripe price for a price of no plan).
    pub description: String,
    /// "monthly" / "annual", when the line is a plan's period.
    pub interval: Option<String>,
    pub period_start: i64,
    pub period_end: i64,
    /// The unused or added time of a plan change.
    pub proration: bool,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentTax {
    /// Basis points: 2100 = 21 %.
    pub rate_bp: u32,
    /// Whose VAT (None for the reverse charge's 0 %).
    pub country: Option<String>,
    pub taxable: i64,
    pub amount: i64,
}

/// What a tax decision key (`vat-FI-2550`, `vat-reverse-charge`, none) means on a document:
/// the rate, its country, and the legal note.
pub fn tax_of_key(key: Option<&str>) -> (u32, Option<String>, Option<&'static str>) {
    match key {
        None => (0, None, Some("tax.outside_eu_note")),
        Some("vat-reverse-charge") => (0, None, Some("tax.reverse_charge_note")),
        Some(key) => {
            let mut parts = key.trim_start_matches("vat-").splitn(2, '-');
            let country = parts.next().map(str::to_string);
            let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            (rate, country, None)
        }
    }
}

/// The ISO 11649 structured creditor reference ("RF" + two check digits + the reference) of
/// an invoice number: what the customer quotes on a bank transfer so the payment finds its
/// invoice. `M-000042` → `RF…M000042`.
pub fn creditor_reference(number: &str) -> String {
    let reference: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    // The check digits make "reference + RF + digits", letters as numbers (A = 10 … Z = 35),
    // equal 1 modulo 97.
    let rearranged = format!("{reference}RF00");
    let remainder = rearranged.chars().fold(0u32, |acc, c| {
        let value = c.to_digit(36).unwrap_or(0);
        if value >= 10 {
            (acc * 100 + value) % 97
        } else {
            (acc * 10 + value) % 97
        }
    });
    format!("RF{:02}{reference}", 98 - remainder)
}

/// Where the totals do not add up: the lines against the subtotal, each tax line against its
/// rate (rounded half up), the taxes against the tax, and subtotal plus tax against the total.
/// `stated` is what the invoice says (Stripe's figures). None when everything adds up.
pub fn check_totals(document: &InvoiceDocument, stated_tax: i64) -> Option<String> {
    let mut problems = Vec::new();
    let lines: i64 = document.lines.iter().map(|l| l.amount).sum();
    if lines != document.subtotal {
        problems.push(format!(
            "lines add up to {lines}, the subtotal is {}",
            document.subtotal
        ));
    }
    for tax in &document.taxes {
        let expected = tax_of(tax.taxable, tax.rate_bp);
        if expected != tax.amount {
            problems.push(format!(
                "{} bp of {} is {expected}, the tax line says {}",
                tax.rate_bp, tax.taxable, tax.amount
            ));
        }
    }
    let taxes: i64 = document.taxes.iter().map(|t| t.amount).sum();
    if taxes != stated_tax {
        problems.push(format!(
            "tax lines add up to {taxes}, the tax is {stated_tax}"
        ));
    }
    if document.subtotal + stated_tax != document.total {
        problems.push(format!(
            "subtotal {} plus tax {stated_tax} is not the total {}",
            document.subtotal, document.total
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The plan's name and interval for a Stripe price (None for a price of no plan).
fn plan_of_price(portal: &Portal, price: &str) -> Option<(String, String)> {
    portal
        .plans
        .by_stripe_price(price)
        .map(|(plan, _, interval)| (plan.name.clone(), interval.as_str().to_string()))
}

/// Stores `document` for the invoice unless one is there already (a document never changes),
/// with what did not add up, and asks for its PDF. Returns whether it was stored.
async fn store(
    tx: &mut Tx,
    portal: &Portal,
    invoice_id: Uuid,
    document: &InvoiceDocument,
    stated_tax: i64,
) -> Result<bool, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mismatch = check_totals(document, stated_tax);
    if let Some(problem) = &mismatch {
        tracing::error!(invoice = %invoice_id, number = %document.number, %problem,
            "an invoice's totals do not add up from its lines");
    }
    let text = serde_json::to_string(document).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let stored = on_tx!(tx, conn => sqlx::query(
        "UPDATE invoices SET document = $2, frozen_at = $3, totals_mismatch = $4 WHERE id = $1 AND document IS NULL",
    )
    .bind(invoice_id)
    .bind(text)
    .bind(now)
    .bind(mismatch)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if stored {
        super::pdfs::request_render(tx, portal).await?;
    }
    Ok(stored)
}

#[derive(sqlx::FromRow)]
struct Recorded {
    id: Uuid,
    method: super::accounts::Method,
    number: Option<String>,
    currency: String,
    subtotal: i64,
    tax: i64,
    total: i64,
    period_start: Option<i64>,
    period_end: Option<i64>,
    due_at: Option<i64>,
    created_at: i64,
    buyer: Option<String>,
    plan_id: Option<String>,
    billing_interval: Option<String>,
    tax_key: Option<String>,
    tax_rate_bp: Option<i32>,
}

const RECORDED: &str = "SELECT i.id, i.method, i.number, i.currency, i.subtotal, i.tax, i.total, i.period_start, \
     i.period_end, i.due_at, i.created_at, i.buyer, s.plan_id, s.billing_interval, s.tax_key, s.tax_rate_bp \
     FROM invoices i LEFT JOIN subscriptions s ON s.id = i.subscription_id";

/// The taxes and note of a subscription's decision, on `taxable`.
fn taxes_of(
    key: Option<&str>,
    rate_bp: Option<i32>,
    taxable: i64,
    tax: i64,
) -> (Vec<DocumentTax>, Option<String>) {
    let (rate, country, note) = tax_of_key(key);
    let rate = rate_bp.map(|r| r.max(0) as u32).unwrap_or(rate);
    let taxes = if key.is_some() {
        vec![DocumentTax {
            rate_bp: rate,
            country,
            taxable,
            amount: tax,
        }]
    } else {
        Vec::new()
    };
    (taxes, note.map(str::to_string))
}

/// The document of a recorded invoice, from what the portal recorded of it: the one line of
/// a manual invoice (the plan's period), or Stripe's lines when they are given.
fn build(
    portal: &Portal,
    row: &Recorded,
    stripe_lines: Option<&[super::stripe::InvoiceLine]>,
    stripe_taxes: Option<Vec<DocumentTax>>,
) -> Option<InvoiceDocument> {
    let number = row.number.clone()?;
    let plan_name = row.plan_id.as_deref().map(|id| {
        portal
            .plans
            .plans
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    });
    let lines = match stripe_lines {
        Some(lines) if !lines.is_empty() => lines
            .iter()
            .map(|line| {
                let plan = line.price.as_deref().and_then(|p| plan_of_price(portal, p));
                DocumentLine {
                    description: plan
                        .as_ref()
                        .map(|(name, _)| name.clone())
                        .or_else(|| line.price.clone())
                        .unwrap_or_default(),
                    interval: plan.map(|(_, interval)| interval),
                    period_start: line.period_start * 1000,
                    period_end: line.period_end * 1000,
                    proration: line.proration,
                    amount: line.amount,
                }
            })
            .collect(),
        _ => vec![DocumentLine {
            description: plan_name.unwrap_or_default(),
            interval: row.billing_interval.clone(),
            period_start: row.period_start.unwrap_or(row.created_at),
            period_end: row.period_end.unwrap_or(row.created_at),
            proration: false,
            amount: row.subtotal,
        }],
    };
    let (mut taxes, tax_note) = taxes_of(
        row.tax_key.as_deref(),
        row.tax_rate_bp,
        row.subtotal,
        row.tax,
    );
    if let Some(stripe) = stripe_taxes {
        taxes = stripe;
    }
    let buyer: Option<BillingDetails> = row
        .buyer
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    Some(InvoiceDocument {
        version: 1,
        payment_reference: (row.method == super::accounts::Method::Manual)
            .then(|| creditor_reference(&number)),
        number,
        issued_at: row.created_at,
        due_at: row.due_at,
        period_start: row.period_start,
        period_end: row.period_end,
        currency: row.currency.clone(),
        seller: (*portal.seller).clone(),
        buyer,
        lines,
        subtotal: row.subtotal,
        taxes,
        tax_note,
        total: row.total,
    })
}

/// Freezes the document of a manual invoice just issued, in the issuing transaction.
pub async fn freeze_manual(
    tx: &mut Tx,
    portal: &Portal,
    invoice_id: Uuid,
) -> Result<(), sqlx::Error> {
    let sql = format!("{RECORDED} WHERE i.id = $1");
    let row: Option<Recorded> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(invoice_id).fetch_optional(conn).await)?;
    if let Some(document) = row.as_ref().and_then(|r| build(portal, r, None, None)) {
        let tax = row.as_ref().map(|r| r.tax).unwrap_or_default();
        store(tx, portal, invoice_id, &document, tax).await?;
    }
    Ok(())
}

/// The Stripe tax rates the portal made, by Stripe id: their decision keys.
async fn tax_keys(portal: &Portal) -> Result<Vec<(String, String)>, sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT stripe_id, decision_key FROM stripe_tax_rates",
    )
    .fetch_all(pool)
    .await)
}

/// Freezes the document of a Stripe invoice once Stripe finalised it (it has a number and is
/// no longer a draft), from Stripe's lines and taxes. Nothing happens to a document already
/// frozen.
pub async fn freeze_stripe(
    portal: &Portal,
    invoice: &super::stripe::InvoiceState,
) -> Result<(), sqlx::Error> {
    if invoice.number.is_none() || invoice.status == super::InvoiceStatus::Draft {
        return Ok(());
    }
    let sql = format!("{RECORDED} WHERE i.stripe_invoice_id = $1 AND i.document IS NULL");
    let row: Option<Recorded> = on_db!(&portal.db, pool =>
        sqlx::query_as(&sql).bind(&invoice.id).fetch_optional(pool).await)?;
    let Some(row) = row else {
        return Ok(());
    };
    let keys = tax_keys(portal).await?;
    let taxes = invoice
        .tax_lines
        .iter()
        .zip(&invoice.taxable)
        .map(|((rate, amount), taxable)| {
            let key = keys
                .iter()
                .find(|(id, _)| id == rate)
                .map(|(_, k)| k.as_str());
            let (rate_bp, country, _) = tax_of_key(key);
            DocumentTax {
                rate_bp,
                country,
                taxable: taxable.unwrap_or(invoice.subtotal),
                amount: *amount,
            }
        })
        .collect();
    if let Some(document) = build(portal, &row, Some(&invoice.lines), Some(taxes)) {
        let mut tx = portal.db.begin().await?;
        store(&mut tx, portal, row.id, &document, invoice.tax).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The periodic job that gives invoices recorded before documents existed theirs (from what
/// was recorded of them: one line for the plan's period).
pub const BACKFILL_JOB: &str = "billing.freeze_documents";

pub async fn backfill(portal: &Portal) -> Result<usize, sqlx::Error> {
    let sql = format!(
        "{RECORDED} WHERE i.document IS NULL AND i.number IS NOT NULL AND i.status <> 'draft' LIMIT 500"
    );
    let rows: Vec<Recorded> =
        on_db!(&portal.db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
    let mut frozen = 0;
    for row in rows {
        if let Some(document) = build(portal, &row, None, None) {
            let mut tx = portal.db.begin().await?;
            if store(&mut tx, portal, row.id, &document, row.tax).await? {
                frozen += 1;
            }
            tx.commit().await?;
        }
    }
    Ok(frozen)
}

/// Invoices whose totals do not add up (a gauge for operators).
pub async fn mismatch_count(db: &crate::db::Db) -> Result<i64, sqlx::Error> {
    on_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM invoices WHERE totals_mismatch IS NOT NULL",
    )
    .fetch_one(pool)
    .await)
}

/// One invoice as its customer sees it: the frozen document and the payment state beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerInvoice {
    pub id: Uuid,
    pub document: InvoiceDocument,
    pub status: super::InvoiceStatus,
    pub amount_paid: i64,
    pub paid_at: Option<i64>,
    pub card_last4: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    document: String,
    status: super::InvoiceStatus,
    amount_paid: i64,
    paid_at: Option<i64>,
    card_last4: Option<String>,
}

fn customer_invoice(row: Row) -> Option<CustomerInvoice> {
    Some(CustomerInvoice {
        id: row.id,
        document: serde_json::from_str(&row.document).ok()?,
        status: row.status,
        amount_paid: row.amount_paid,
        paid_at: row.paid_at,
        card_last4: row.card_last4,
    })
}

const CUSTOMER_ROW: &str =
    "SELECT id, document, status, amount_paid, paid_at, card_last4 FROM invoices";

/// The customer's invoices that have a document, newest first.
pub async fn list(
    db: &crate::db::Db,
    customer_id: Uuid,
) -> Result<Vec<CustomerInvoice>, sqlx::Error> {
    let sql = format!(
        "{CUSTOMER_ROW} WHERE customer_id = $1 AND document IS NOT NULL ORDER BY created_at DESC, id DESC"
    );
    let rows: Vec<Row> =
        on_db!(db, pool => sqlx::query_as(&sql).bind(customer_id).fetch_all(pool).await)?;
    Ok(rows.into_iter().filter_map(customer_invoice).collect())
}

/// One invoice by its id, whoever's it is: for a capability link, which is the permission.
pub async fn by_id(db: &crate::db::Db, id: Uuid) -> Result<Option<CustomerInvoice>, sqlx::Error> {
    let sql = format!("{CUSTOMER_ROW} WHERE id = $1 AND document IS NOT NULL");
    let row: Option<Row> =
        on_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.and_then(customer_invoice))
}

/// One invoice of the customer (None for another customer's, or one without a document).
pub async fn get(
    db: &crate::db::Db,
    customer_id: Uuid,
    id: Uuid,
) -> Result<Option<CustomerInvoice>, sqlx::Error> {
    let sql = format!("{CUSTOMER_ROW} WHERE customer_id = $1 AND id = $2 AND document IS NOT NULL");
    let row: Option<Row> = on_db!(db, pool =>
        sqlx::query_as(&sql).bind(customer_id).bind(id).fetch_optional(pool).await)?;
    Ok(row.and_then(customer_invoice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creditor_references_carry_iso_11649_check_digits() {
        // ISO 11649's own example.
        assert_eq!(creditor_reference("539007547034"), "RF18539007547034");
        let reference = creditor_reference("M-000042");
        assert!(reference.starts_with("RF") && reference.ends_with("M000042"));
        // Valid: moved to the end, letters as numbers, the whole is 1 modulo 97.
        let moved = format!("{}{}", &reference[4..], &reference[..4]);
        let remainder = moved.chars().fold(0u64, |acc, c| {
            let v = u64::from(c.to_digit(36).unwrap());
            if v >= 10 {
                (acc * 100 + v) % 97
            } else {
                (acc * 10 + v) % 97
            }
        });
        assert_eq!(remainder, 1, "{reference}");
    }

    #[test]
    fn tax_is_rounded_half_up() {
        assert_eq!(tax_of(1_000, 2_100), 210);
        assert_eq!(tax_of(4_950, 1_900), 941); // 940.5 → 941
        assert_eq!(tax_of(4_949, 1_900), 940); // 940.31 → 940
        assert_eq!(
            tax_of(-4_950, 1_900),
            -941,
            "credits round away from zero too"
        );
        assert_eq!(tax_of(12_345, 0), 0);
    }

    #[test]
    fn tax_keys_read_as_rate_country_and_note() {
        assert_eq!(
            tax_of_key(Some("vat-FI-2550")),
            (2550, Some("FI".into()), None)
        );
        assert_eq!(
            tax_of_key(Some("vat-reverse-charge")),
            (0, None, Some("tax.reverse_charge_note"))
        );
        assert_eq!(tax_of_key(None), (0, None, Some("tax.outside_eu_note")));
    }

    fn document(lines: &[i64], taxes: &[(u32, i64, i64)], total: i64) -> InvoiceDocument {
        InvoiceDocument {
            version: 1,
            number: "M-000001".into(),
            issued_at: 0,
            due_at: None,
            period_start: None,
            period_end: None,
            currency: "eur".into(),
            seller: Seller::default(),
            buyer: None,
            payment_reference: None,
            lines: lines
                .iter()
                .map(|amount| DocumentLine {
                    description: "Business".into(),
                    interval: None,
                    period_start: 0,
                    period_end: 0,
                    proration: false,
                    amount: *amount,
                })
                .collect(),
            subtotal: lines.iter().sum(),
            taxes: taxes
                .iter()
                .map(|(rate_bp, taxable, amount)| DocumentTax {
                    rate_bp: *rate_bp,
                    country: None,
                    taxable: *taxable,
                    amount: *amount,
                })
                .collect(),
            tax_note: None,
            total,
        }
    }

    #[test]
    fn totals_that_add_up_pass_and_others_are_named() {
        // A proration: unused time credited, new plan charged.
        let ok = document(&[-2_500, 9_900], &[(2_400, 7_400, 1_776)], 9_176);
        assert_eq!(check_totals(&ok, 1_776), None);
        let wrong_rate = document(&[5_000], &[(1_900, 5_000, 951)], 5_951);
        assert!(check_totals(&wrong_rate, 951)
            .unwrap()
            .contains("1900 bp of 5000 is 950"));
        let wrong_total = document(&[5_000], &[(1_900, 5_000, 950)], 6_000);
        assert!(check_totals(&wrong_total, 950)
            .unwrap()
            .contains("not the total 6000"));
    }
}
