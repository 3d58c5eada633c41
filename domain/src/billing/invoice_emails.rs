//! Emails about an invoice to the customer's owner: a manual invoice issued (with the bank
//! details, its payment reference and due date), and the receipt once an invoice is paid (by
//! bank transfer, or by card as Stripe reports it). A card invoice is charged when it is
//! issued, so, as Stripe does, its customer gets the receipt, or dunning's "payment failed".
//! Each carries a link to the invoice (`/i/…`) made for that email, which the customer can
//! revoke. Queued in the caller's transaction, so an email goes out exactly when its change
//! commits, and once per invoice (a column marks it sent).

use super::{documents::InvoiceDocument, InvoiceStatus};
use crate::{
    accounts::emails::{self, Kind},
    db::Tx,
    i18n::Locale,
    mail,
    money::format,
    on_tx,
    portal::Portal,
};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Addressee {
    user_id: Uuid,
    email: Option<String>,
    display_name: String,
    document: Option<String>,
    server_name: Option<String>,
}

/// Queues the email of `kind` (InvoiceIssued or PaymentReceived) about the invoice to its
/// customer's owner, with a new link to it. Nothing when the invoice has no document, its
/// customer no owner with an address, or this email went out already.
pub async fn send(
    tx: &mut Tx,
    portal: &Portal,
    invoice_id: Uuid,
    kind: Kind,
) -> Result<(), sqlx::Error> {
    let found: Option<Addressee> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.display_name, i.document, h.name AS server_name \
         FROM invoices i JOIN memberships m ON m.customer_id = i.customer_id AND m.role = 'owner' \
         JOIN users u ON u.id = m.user_id \
         LEFT JOIN subscriptions s ON s.id = i.subscription_id \
         LEFT JOIN homeservers h ON h.id = s.homeserver_id \
         WHERE i.id = $1 ORDER BY m.created_at LIMIT 1",
    )
    .bind(invoice_id)
    .fetch_optional(conn)
    .await)?;
    let Some(Addressee {
        user_id,
        email: Some(email),
        display_name,
        document: Some(document),
        server_name,
    }) = found
    else {
        return Ok(());
    };
    let Ok(document) = serde_json::from_str::<InvoiceDocument>(&document) else {
        return Ok(());
    };
    let marker = match kind {
        Kind::PaymentReceived => "receipt_email_at",
        _ => "issued_email_at",
    };
    let first = on_tx!(tx, conn => sqlx::query(&format!(
        "UPDATE invoices SET {marker} = $2 WHERE id = $1 AND {marker} IS NULL"
    ))
    .bind(invoice_id)
    .bind(portal.clock.now_ms())
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if !first {
        return Ok(());
    }
    let link = super::links::for_email(tx, portal, invoice_id).await?;
    let locale = Locale::En;
    let total = format(document.total, &document.currency, locale);
    let bic = document
        .seller
        .bic
        .as_ref()
        .map(|bic| format!(" (BIC {bic})"))
        .unwrap_or_default();
    let due = document
        .due_at
        .map(crate::clock::long_date)
        .unwrap_or_default();
    let today = crate::clock::long_date(portal.clock.now_ms());
    let server = server_name.unwrap_or_default();
    let vars = [
        ("number", document.number.as_str()),
        ("server", server.as_str()),
        ("total", total.as_str()),
        ("due", due.as_str()),
        ("seller", document.seller.legal_name.as_str()),
        ("iban", document.seller.iban.as_deref().unwrap_or_default()),
        ("bic", bic.as_str()),
        (
            "reference",
            document.payment_reference.as_deref().unwrap_or_default(),
        ),
        ("date", today.as_str()),
    ];
    let message = emails::compose_with(
        kind,
        locale,
        &email,
        user_id,
        &display_name,
        Some(&link),
        &vars,
    );
    mail::enqueue(tx, &message, &*portal.clock, &*portal.random).await?;
    Ok(())
}

/// After a Stripe invoice was synced: its receipt, once, when it is paid and charged something
/// (a free trial's invoice for nothing gets none).
pub async fn after_stripe_sync(portal: &Portal, stripe_invoice: &str) -> Result<(), sqlx::Error> {
    let found: Option<(Uuid, InvoiceStatus, i64)> = crate::on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT id, status, amount_paid FROM invoices WHERE stripe_invoice_id = $1 \
         AND document IS NOT NULL AND receipt_email_at IS NULL",
    )
    .bind(stripe_invoice)
    .fetch_optional(pool)
    .await)?;
    let Some((id, InvoiceStatus::Paid, paid)) = found else {
        return Ok(());
    };
    if paid <= 0 {
        return Ok(());
    }
    let mut tx = portal.db.begin().await?;
    send(&mut tx, portal, id, Kind::PaymentReceived).await?;
    tx.commit().await
}
