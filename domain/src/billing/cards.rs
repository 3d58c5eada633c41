//! The card invoices are charged to. The number goes from the browser to Stripe (Stripe.js and
//! a SetupIntent); the portal then reads the PaymentMethod from Stripe and keeps its brand, last
//! four digits and expiry.

use super::{
    accounts::{self, StripeCustomerError},
    stripe::{CardSummary, PaymentError},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    on_db, on_tx,
    portal::Portal,
};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Card {
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
    pub added_at: i64,
    #[sqlx(rename = "stripe_payment_method_id")]
    pub payment_method_id: String,
}

pub async fn load(db: &Db, customer_id: Uuid) -> Result<Option<Card>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as(
        "SELECT brand, last4, exp_month, exp_year, added_at, stripe_payment_method_id FROM cards WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)
}

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error(transparent)]
    Customer(#[from] StripeCustomerError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The SetupIntent is not this customer's, or did not succeed.
    #[error("the card setup did not complete")]
    NotConfirmed,
}

impl From<CardError> for PaymentError {
    fn from(e: CardError) -> Self {
        match e {
            CardError::Payment(p) | CardError::Customer(StripeCustomerError::Payment(p)) => p,
            other => PaymentError::Unexpected(other.to_string()),
        }
    }
}

/// Starts entering a card: the SetupIntent's client secret for Stripe.js.
pub async fn begin(
    portal: &Portal,
    customer_id: Uuid,
    email: &str,
    name: &str,
) -> Result<String, CardError> {
    let gateway = portal
        .payments
        .as_ref()
        .ok_or(StripeCustomerError::NoStripe)?;
    gateway.admit(customer_id)?;
    let account = accounts::load_or_create(portal, customer_id).await?;
    let stripe_customer = accounts::stripe_customer(portal, &account, email, name).await?;
    // Reuse the intent an earlier press made while it still waits for a card.
    if let Some(open) = accounts::open_setup_intent(&portal.db, customer_id).await? {
        if let Some(secret) = gateway.open_setup_intent(&stripe_customer, &open).await? {
            return Ok(secret);
        }
    }
    let (id, secret) = gateway.create_setup_intent(&stripe_customer).await?;
    accounts::set_open_setup_intent(&portal.db, customer_id, Some(&id)).await?;
    Ok(secret)
}

/// Finishes entering a card: reads the confirmed SetupIntent from Stripe (never trusting the
/// browser's word), makes its card the default for invoices, records it and lets go of the
/// card it replaces.
pub async fn complete(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    setup_intent: &str,
) -> Result<CardSummary, CardError> {
    let account = accounts::load(&portal.db, customer_id)
        .await?
        .ok_or(CardError::NotConfirmed)?;
    let stripe_customer = account
        .stripe_customer_id
        .as_deref()
        .ok_or(CardError::NotConfirmed)?;
    let gateway = portal
        .payments
        .as_ref()
        .ok_or(StripeCustomerError::NoStripe)?;
    gateway.admit(customer_id)?;
    let card = gateway
        .card_of_setup_intent(stripe_customer, setup_intent)
        .await?
        .ok_or(CardError::NotConfirmed)?;
    gateway
        .set_default_card(stripe_customer, &card.payment_method_id)
        .await?;
    store(portal, meta, actor, customer_id, &card).await?;
    Ok(card)
}

/// Records `card` as the customer's card and lets go of the one it replaces (at Stripe too).
pub async fn store(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    card: &CardSummary,
) -> Result<(), sqlx::Error> {
    let previous = load(&portal.db, customer_id).await?;
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO cards (customer_id, stripe_payment_method_id, brand, last4, exp_month, exp_year, added_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id) DO UPDATE SET \
         stripe_payment_method_id = excluded.stripe_payment_method_id, brand = excluded.brand, \
         last4 = excluded.last4, exp_month = excluded.exp_month, exp_year = excluded.exp_year, \
         added_at = excluded.added_at",
    )
    .bind(customer_id)
    .bind(&card.payment_method_id)
    .bind(&card.brand)
    .bind(&card.last4)
    .bind(card.exp_month as i32)
    .bind(card.exp_year as i32)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    // The intent that made this card (or any other) is used up: the next "Add a card" makes one.
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE billing_accounts SET open_setup_intent_id = NULL WHERE customer_id = $1",
    )
    .bind(customer_id)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let action = if previous.is_some() {
        "card.replaced"
    } else {
        "card.added"
    };
    let event = AuditEvent::new(actor, action)
        .customer(customer_id)
        .target("customer", customer_id)
        .details(serde_json::json!({ "brand": card.brand, "last4": card.last4 }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    if let Some(old) = previous.filter(|o| o.payment_method_id != card.payment_method_id) {
        // The old card stays usable at Stripe only as long as it must; failing to detach it
        // is logged, not shown: the new card is already in place.
        if let Some(gateway) = portal.payments.as_ref() {
            if let Err(e) = gateway.detach_card(&old.payment_method_id).await {
                tracing::warn!(error = %e, "could not detach the replaced card");
            }
        }
    }
    Ok(())
}

/// Removes the card. Refused while a paid subscription would be left without one.
pub async fn remove(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
) -> Result<RemoveOutcome, CardError> {
    let Some(card) = load(&portal.db, customer_id).await? else {
        return Ok(RemoveOutcome::NoCard);
    };
    let running: i64 = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM subscriptions WHERE customer_id = $1 AND method = 'stripe' \
         AND status IN ('trialing', 'active', 'past_due', 'incomplete', 'pending') AND cancel_at_period_end = FALSE",
    )
    .bind(customer_id)
    .fetch_one(pool)
    .await)?;
    if running > 0 {
        return Ok(RemoveOutcome::InUse);
    }
    if let Some(gateway) = portal.payments.as_ref() {
        gateway.detach_card(&card.payment_method_id).await?;
    }
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query("DELETE FROM cards WHERE customer_id = $1")
        .bind(customer_id)
        .execute(conn)
        .await
        .map(|_| ()))?;
    let event = AuditEvent::new(actor, "card.removed")
        .customer(customer_id)
        .target("customer", customer_id)
        .details(serde_json::json!({ "brand": card.brand, "last4": card.last4 }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(RemoveOutcome::Removed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    Removed,
    NoCard,
    /// A subscription that renews is charged to it: replace it instead.
    InUse,
}
