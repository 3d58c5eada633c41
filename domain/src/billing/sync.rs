//! Brings the portal's records in line with one Stripe object, read again from Stripe: the work
//! of a webhook event. Reading the object (not trusting the event's copy) makes the result the
//! same whatever order events arrive in, and however often.

use super::{
    cards, confirmation, details,
    stripe::{InvoiceState, PaymentError},
    subscriptions,
};
use crate::{
    audit::{Actor, RequestMeta},
    on_db,
    portal::Portal,
    random::new_id,
};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The portal customer behind a Stripe customer id.
async fn customer_of(portal: &Portal, stripe_customer: &str) -> Result<Option<Uuid>, sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT customer_id FROM billing_accounts WHERE stripe_customer_id = $1",
    )
    .bind(stripe_customer)
    .fetch_optional(pool)
    .await)
}

/// Runs the sync for one object. Objects the portal does not know (another application's, on
/// a shared Stripe account) are left alone.
pub async fn sync(portal: &Portal, object_type: &str, id: &str) -> Result<(), SyncError> {
    let Some(gateway) = portal.payments.as_ref() else {
        return Ok(());
    };
    match object_type {
        "subscription" => sync_subscription(portal, id).await,
        "invoice" => {
            let invoice = gateway.invoice(id).await?;
            record_invoice(portal, &invoice).await?;
            if let Some(sub) = &invoice.subscription {
                sync_subscription(portal, sub).await?;
                follow_payment(portal, gateway, &invoice, sub).await?;
            }
            Ok(())
        }
        "payment_method" => {
            // Detached at Stripe (by staff in Stripe's dashboard, say): the portal forgets it.
            if gateway.owner_of_card(id).await?.is_none() {
                on_db!(&portal.db, pool => sqlx::query("DELETE FROM cards WHERE stripe_payment_method_id = $1")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|_| ()))?;
            }
            Ok(())
        }
        "setup_intent" => {
            // A card confirmed in a browser that closed before it came back to the portal.
            if let Some(stripe_customer) = gateway.succeeded_setup_intent(id).await? {
                if let Some(customer_id) = customer_of(portal, &stripe_customer).await? {
                    adopt_setup(portal, customer_id, id).await?;
                }
            }
            Ok(())
        }
        "customer" => {
            let Some(customer_id) = customer_of(portal, id).await? else {
                return Ok(());
            };
            let current = cards::load(&portal.db, customer_id)
                .await?
                .map(|c| c.payment_method_id);
            if let Some(pm) = gateway.default_card_of(id).await? {
                if current.as_deref() != Some(pm.as_str()) {
                    let card = gateway.card(&pm).await?;
                    cards::store(
                        portal,
                        &RequestMeta::default(),
                        Actor::System,
                        customer_id,
                        &card,
                    )
                    .await?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the invoice's payment waits for the customer (3-D Secure): marked on its
/// subscription, and the customer told for a later invoice; cleared once it is paid or closed.
async fn follow_payment(
    portal: &Portal,
    gateway: &super::stripe::Gateway,
    invoice: &InvoiceState,
    stripe_subscription: &str,
) -> Result<(), SyncError> {
    if invoice.status != super::InvoiceStatus::Open {
        confirmation::clear(portal, &invoice.id).await?;
        return Ok(());
    }
    let local: Option<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM subscriptions WHERE stripe_subscription_id = $1",
    )
    .bind(stripe_subscription)
    .fetch_optional(pool)
    .await)?;
    let Some(local) = local else {
        return Ok(());
    };
    let payment = gateway.invoice_payment(&invoice.id).await?;
    confirmation::follow(portal, local, &payment).await?;
    Ok(())
}

async fn adopt_setup(
    portal: &Portal,
    customer_id: Uuid,
    setup_intent: &str,
) -> Result<(), SyncError> {
    match cards::complete(
        portal,
        &RequestMeta::default(),
        Actor::System,
        customer_id,
        setup_intent,
    )
    .await
    {
        Ok(_) | Err(cards::CardError::NotConfirmed) => Ok(()),
        Err(cards::CardError::Db(e)) => Err(e.into()),
        Err(other) => Err(PaymentError::from(other).into()),
    }
}

async fn sync_subscription(portal: &Portal, id: &str) -> Result<(), SyncError> {
    let gateway = portal.payments.as_ref().expect("checked by sync");
    let state = gateway.subscription(id).await?;
    // Fallen overdue: the unpaid invoice is recorded first, so that the "payment failed" email
    // can carry its link whichever of the two events arrives first.
    if state.status.overdue() {
        if let Some(latest) = &state.latest_invoice {
            record_invoice(portal, &gateway.invoice(latest).await?).await?;
        }
    }
    let by_stripe_id: Option<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM subscriptions WHERE stripe_subscription_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    // Created but not yet recorded (the request that made it is still running, or died):
    // the portal's id is in the metadata.
    let local = match by_stripe_id {
        Some(local) => Some(local),
        None => match state
            .metadata
            .get("portal_subscription")
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            Some(portal_id) => on_db!(&portal.db, pool => sqlx::query_scalar(
                "SELECT s.id FROM subscriptions s JOIN billing_accounts b ON b.customer_id = s.customer_id \
                 WHERE s.id = $1 AND b.stripe_customer_id = $2",
            )
            .bind(portal_id)
            .bind(&state.customer)
            .fetch_optional(pool)
            .await)?,
            None => None,
        },
    };
    if let Some(local) = local {
        subscriptions::record_state(portal, local, &state).await?;
    }
    Ok(())
}

/// Keeps (or updates) the billing record of a Stripe invoice of one of the portal's customers.
pub async fn record_invoice(portal: &Portal, invoice: &InvoiceState) -> Result<(), sqlx::Error> {
    let Some(stripe_customer) = &invoice.customer else {
        return Ok(());
    };
    let Some(customer_id) = customer_of(portal, stripe_customer).await? else {
        return Ok(());
    };
    let subscription_id: Option<Uuid> = match &invoice.subscription {
        Some(sub) => on_db!(&portal.db, pool => sqlx::query_scalar(
            "SELECT id FROM subscriptions WHERE stripe_subscription_id = $1 AND customer_id = $2",
        )
        .bind(sub)
        .bind(customer_id)
        .fetch_optional(pool)
        .await)?,
        None => None,
    };
    let last4 = cards::load(&portal.db, customer_id).await?.map(|c| c.last4);
    let tax_lines = serde_json::to_string(
        &invoice
            .tax_lines
            .iter()
            .map(|(rate, amount)| serde_json::json!({ "tax_rate": rate, "amount": amount }))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into());
    // The buyer as the billing details say while the invoice is a draft; fixed once Stripe
    // finalised it.
    let buyer = details::load(&portal.db, customer_id)
        .await?
        .and_then(|d| serde_json::to_string(&d).ok());
    let now = portal.clock.now_ms();
    on_db!(&portal.db, pool => sqlx::query(
        "INSERT INTO invoices (id, customer_id, subscription_id, method, stripe_invoice_id, number, status, currency, \
         subtotal, tax, total, amount_due, amount_paid, tax_lines, period_start, period_end, card_last4, paid_at, \
         created_at, updated_at, buyer) \
         VALUES ($1, $2, $3, 'stripe', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
         ON CONFLICT (stripe_invoice_id) DO UPDATE SET subscription_id = excluded.subscription_id, \
         number = excluded.number, status = excluded.status, subtotal = excluded.subtotal, tax = excluded.tax, \
         total = excluded.total, amount_due = excluded.amount_due, amount_paid = excluded.amount_paid, \
         tax_lines = excluded.tax_lines, period_start = excluded.period_start, period_end = excluded.period_end, \
         card_last4 = COALESCE(invoices.card_last4, excluded.card_last4), paid_at = excluded.paid_at, \
         buyer = CASE WHEN invoices.status = 'draft' OR invoices.buyer IS NULL THEN excluded.buyer ELSE invoices.buyer END, \
         updated_at = excluded.updated_at",
    )
    .bind(new_id(now, &*portal.random))
    .bind(customer_id)
    .bind(subscription_id)
    .bind(&invoice.id)
    .bind(&invoice.number)
    .bind(invoice.status)
    .bind(&invoice.currency)
    .bind(invoice.subtotal)
    .bind(invoice.tax)
    .bind(invoice.total)
    .bind(invoice.amount_due)
    .bind(invoice.amount_paid)
    .bind(tax_lines)
    .bind(invoice.period_start * 1000)
    .bind(invoice.period_end * 1000)
    .bind(last4)
    .bind(invoice.paid_at.map(|t| t * 1000))
    .bind(invoice.created * 1000)
    .bind(now)
    .bind(buyer)
    .execute(pool)
    .await
    .map(|_| ()))?;
    // Its payment state may have changed: links opened before show it at once.
    portal.link_lookups.forget_all();
    // Finalised at Stripe: the document is frozen now, once; paid: the receipt goes out, once.
    super::documents::freeze_stripe(portal, invoice).await?;
    super::invoice_emails::after_stripe_sync(portal, &invoice.id).await
}
