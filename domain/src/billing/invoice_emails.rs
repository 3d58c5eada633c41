//! Emails about a manual invoice to the customer's owner: the invoice issued (with the bank
//! details, its payment reference and due date) and the receipt once it is paid. (Card
//! invoices' emails come with the Stripe side of this work.) Each
//! carries a link to the invoice (`/i/…`) made for that email, which the customer can revoke.
//! Queued in the caller's transaction, so an email goes out exactly when its change commits.

use super::documents::InvoiceDocument;
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
/// customer's owner, with a new link to it. Nothing when the invoice has no document or its
/// customer no owner with an address.
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
