//! Payments that wait for the customer (SCA, P7): 3-D Secure on a renewal or an upgrade, and
//! the first payment of an order, which Stripe leaves to the browser (`default_incomplete`).
//! The subscription row names the Stripe invoice that waits (`payment_action_invoice`); the
//! dashboard asks for it; the payment-confirmation page confirms it with Stripe.js
//! `confirmCardPayment`; the invoice's sync clears it once the invoice is paid or closed.
//! Everything here is read again from Stripe, never taken from what the browser said.

use super::stripe::{InvoicePayment, PaymentError, PaymentStage};
use crate::{
    accounts::emails::Kind,
    audit::{self, Actor, AuditEvent},
    on_db, on_tx,
    portal::Portal,
};
use uuid::Uuid;

fn db(e: sqlx::Error) -> PaymentError {
    PaymentError::Unexpected(format!("database: {e}"))
}

/// How the customer learns that a payment waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// In the browser that placed the order or asked for the change: it goes to the
    /// payment-confirmation page at once.
    InBrowser,
    /// By email (a renewal, or a payment Stripe announced by webhook), once per invoice.
    ByEmail,
}

/// Records that `invoice`'s payment waits for the customer, and tells them once per invoice.
pub async fn mark_needed(
    portal: &Portal,
    subscription_id: Uuid,
    invoice: &str,
    told: Told,
) -> Result<(), sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    let row: Option<(Uuid, String, Option<String>, Option<String>)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT s.customer_id, h.name, s.payment_action_invoice, s.payment_action_notified \
         FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id WHERE s.id = $1",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await)?;
    let Some((customer_id, server_name, current, notified)) = row else {
        return Ok(());
    };
    let now = portal.clock.now_ms();
    if current.as_deref() != Some(invoice) {
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE subscriptions SET payment_action_invoice = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(subscription_id)
        .bind(invoice)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
        let event = AuditEvent::new(Actor::System, "subscription.payment_action_required")
            .customer(customer_id)
            .target("subscription", subscription_id)
            .details(serde_json::json!({ "invoice": invoice }));
        audit::record_system(&mut tx, &event, portal).await?;
    }
    if notified.as_deref() != Some(invoice) {
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE subscriptions SET payment_action_notified = $2 WHERE id = $1",
        )
        .bind(subscription_id)
        .bind(invoice)
        .execute(conn)
        .await
        .map(|_| ()))?;
        if told == Told::ByEmail {
            super::dunning::notify(
                &mut tx,
                portal,
                subscription_id,
                customer_id,
                Kind::PaymentActionRequired,
                &server_name,
            )
            .await?;
        }
    }
    tx.commit().await
}

/// The invoice no longer waits for the customer (paid, void, or a payment that failed).
pub async fn clear(portal: &Portal, invoice: &str) -> Result<(), sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET payment_action_invoice = NULL WHERE payment_action_invoice = $1",
    )
    .bind(invoice)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// Brings the mark in line with Stripe's state of one of the subscription's invoices (the
/// sync job's part, for every invoice event: `invoice.payment_action_required` among them).
pub async fn follow(
    portal: &Portal,
    subscription_id: Uuid,
    payment: &InvoicePayment,
) -> Result<(), sqlx::Error> {
    match payment.stage {
        PaymentStage::NeedsConfirmation => {
            mark_needed(portal, subscription_id, &payment.invoice, Told::ByEmail).await
        }
        PaymentStage::Processing => Ok(()),
        PaymentStage::Declined(_) | PaymentStage::Paid | PaymentStage::Closed => {
            clear(portal, &payment.invoice).await
        }
    }
}

/// The invoice of this customer's subscription that waits for the customer, if any.
pub async fn waiting_invoice(
    portal: &Portal,
    customer_id: Uuid,
    subscription_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT payment_action_invoice FROM subscriptions WHERE id = $1 AND customer_id = $2",
    )
    .bind(subscription_id)
    .bind(customer_id)
    .fetch_optional(pool)
    .await)
    .map(Option::flatten)
}

/// The invoice that waits on the customer's subscription and its payment as Stripe has it now
/// (a payment action of the customer's), or None when nothing waits.
async fn waiting_payment(
    portal: &Portal,
    customer_id: Uuid,
    subscription_id: Uuid,
) -> Result<Option<(String, InvoicePayment)>, PaymentError> {
    let gateway = portal
        .payments
        .as_ref()
        .ok_or_else(|| PaymentError::Unexpected("no Stripe keys".into()))?;
    let Some(invoice) = waiting_invoice(portal, customer_id, subscription_id)
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    gateway.admit(customer_id)?;
    let payment = gateway.invoice_payment(&invoice).await?;
    Ok(Some((invoice, payment)))
}

/// What the payment-confirmation page needs to start, or why there is nothing to confirm.
#[derive(Debug)]
pub enum Begin {
    /// Stripe.js confirms this payment (the client secret is inside).
    Confirm(InvoicePayment),
    /// Nothing waits any more (paid, or closed): the records were brought in line.
    Nothing,
    /// The card was declined: another card is needed (Stripe's message).
    Declined(String),
}

/// "Confirm the payment" (a POST): reads the waiting invoice's payment from Stripe. Counted
/// against the customer's payment actions.
pub async fn begin(
    portal: &Portal,
    customer_id: Uuid,
    subscription_id: Uuid,
) -> Result<Begin, PaymentError> {
    let Some((invoice, payment)) = waiting_payment(portal, customer_id, subscription_id).await?
    else {
        return Ok(Begin::Nothing);
    };
    Ok(match payment.stage {
        PaymentStage::NeedsConfirmation if payment.client_secret.is_some() => {
            Begin::Confirm(payment)
        }
        PaymentStage::Declined(ref message) => Begin::Declined(message.clone()),
        _ => {
            settle(portal, &invoice).await?;
            Begin::Nothing
        }
    })
}

/// How a confirmation ended, as Stripe says (not as the browser said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    /// No payment of this subscription waits (the form sent twice, say).
    NothingWaiting,
    /// Still waiting (the customer cancelled the bank's check, or it failed).
    StillWaiting,
    Declined(String),
}

/// After the browser's `confirmCardPayment`: reads the invoice again from Stripe and brings
/// the invoice, the subscription and the mark in line with it. Counted against the customer's
/// payment actions.
pub async fn finish(
    portal: &Portal,
    customer_id: Uuid,
    subscription_id: Uuid,
) -> Result<Outcome, PaymentError> {
    let Some((invoice, payment)) = waiting_payment(portal, customer_id, subscription_id).await?
    else {
        return Ok(Outcome::NothingWaiting);
    };
    let outcome = match &payment.stage {
        PaymentStage::Paid => Outcome::Paid,
        PaymentStage::Declined(message) => Outcome::Declined(message.clone()),
        _ => Outcome::StillWaiting,
    };
    if outcome != Outcome::StillWaiting {
        settle(portal, &invoice).await?;
    }
    Ok(outcome)
}

/// Syncs the invoice (its record, its subscription, the mark) from Stripe.
async fn settle(portal: &Portal, invoice: &str) -> Result<(), PaymentError> {
    match super::sync::sync(portal, "invoice", invoice).await {
        Ok(()) => Ok(()),
        Err(super::sync::SyncError::Payment(e)) => Err(e),
        Err(super::sync::SyncError::Db(e)) => Err(db(e)),
    }
}
