//! A customer's billing account: how they pay (card through Stripe, or bank transfer against
//! manual invoices), the currency fixed at their first purchase, and their Stripe customer.

use super::stripe::PaymentError;
use crate::{db::Db, on_db, on_tx, portal::Portal, random::token};
use uuid::Uuid;

crate::text_enum! {
    /// How a customer pays: by card through Stripe, or by bank transfer against the portal's
    /// own invoices.
    pub enum Method {
        Stripe = "stripe",
        Manual = "manual",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccount {
    pub customer_id: Uuid,
    pub method: Method,
    /// Lower-case ISO code, set by the first purchase.
    pub currency: Option<String>,
    pub stripe_customer_id: Option<String>,
    stripe_customer_key: String,
}

/// The customer's billing account, made on first use: card payments when the portal has Stripe
/// keys, manual invoices otherwise.
pub async fn load_or_create(
    portal: &Portal,
    customer_id: Uuid,
) -> Result<BillingAccount, sqlx::Error> {
    let method = if portal.payments.is_some() {
        Method::Stripe
    } else {
        Method::Manual
    };
    let now = portal.clock.now_ms();
    let key = format!("customer-{}", token(&*portal.random, 16));
    on_db!(&portal.db, pool => sqlx::query(
        "INSERT INTO billing_accounts (customer_id, method, stripe_customer_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer_id)
    .bind(method)
    .bind(&key)
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ()))?;
    load(&portal.db, customer_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// How the customer pays and in which currency, without writing anything: what
/// [`load_or_create`] would make when the account does not exist yet (pages call this).
pub async fn peek(
    portal: &Portal,
    customer_id: Uuid,
) -> Result<(Method, Option<String>), sqlx::Error> {
    Ok(match load(&portal.db, customer_id).await? {
        Some(account) => (account.method, account.currency),
        None if portal.payments.is_some() => (Method::Stripe, None),
        None => (Method::Manual, None),
    })
}

/// The SetupIntent "Add a card" made last, if it has not been used up.
pub async fn open_setup_intent(db: &Db, customer_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let id: Option<Option<String>> = on_db!(db, pool => sqlx::query_scalar(
        "SELECT open_setup_intent_id FROM billing_accounts WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)?;
    Ok(id.flatten())
}

pub async fn set_open_setup_intent(
    db: &Db,
    customer_id: Uuid,
    id: Option<&str>,
) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query(
        "UPDATE billing_accounts SET open_setup_intent_id = $2 WHERE customer_id = $1",
    )
    .bind(customer_id)
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ()))
}

pub async fn load(db: &Db, customer_id: Uuid) -> Result<Option<BillingAccount>, sqlx::Error> {
    let row: Option<(Method, Option<String>, Option<String>, String)> = on_db!(db, pool => sqlx::query_as(
        "SELECT method, currency, stripe_customer_id, stripe_customer_key FROM billing_accounts WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(
        |(method, currency, stripe_customer_id, stripe_customer_key)| BillingAccount {
            customer_id,
            method,
            currency,
            stripe_customer_id,
            stripe_customer_key,
        },
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum StripeCustomerError {
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("this portal has no Stripe keys")]
    NoStripe,
}

/// The customer's Stripe customer id, creating the Stripe customer once (the stored key makes a
/// retried create return the same customer; a lookup by metadata finds one an earlier attempt
/// made before it could be recorded).
pub async fn stripe_customer(
    portal: &Portal,
    account: &BillingAccount,
    email: &str,
    name: &str,
) -> Result<String, StripeCustomerError> {
    if let Some(id) = &account.stripe_customer_id {
        return Ok(id.clone());
    }
    let gateway = portal
        .payments
        .as_ref()
        .ok_or(StripeCustomerError::NoStripe)?;
    let id = gateway
        .create_customer(
            &account.customer_id.to_string(),
            email,
            name,
            &account.stripe_customer_key,
        )
        .await?;
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE billing_accounts SET stripe_customer_id = $2, updated_at = $3 WHERE customer_id = $1",
    )
    .bind(account.customer_id)
    .bind(&id)
    .bind(portal.clock.now_ms())
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(id)
}

/// Fixes the currency at the first purchase, in the order's transaction. Returns false when
/// another currency is already fixed.
pub async fn fix_currency(
    tx: &mut crate::db::Tx,
    customer_id: Uuid,
    currency: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let updated = on_tx!(tx, conn => sqlx::query(
        "UPDATE billing_accounts SET currency = $2, updated_at = $3 \
         WHERE customer_id = $1 AND (currency IS NULL OR currency = $2)",
    )
    .bind(customer_id)
    .bind(currency)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(updated == 1)
}
