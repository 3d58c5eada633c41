//! Manual billing: customers who pay by bank transfer (every customer when the portal has no
//! Stripe keys, or one switched by staff). An order's first invoice is issued when it is
//! placed, and the invoice for each next period a configurable lead time before the period
//! ends ([`RENEW_JOB`]); staff mark an invoice paid when the money arrives, void it, or issue
//! one by hand. The subscription follows the same states a card subscription goes through,
//! and never stays active past a period that was not paid. The staff console will call
//! these; until then the `server billing …` commands do.

use super::{
    accounts::{self, Method},
    details,
    numbering::{self, Series},
    subscriptions::SubscriptionStatus,
    tax::tax_of,
    InvoiceStatus,
};
use crate::{
    accounts::emails::Kind,
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    on_db, on_tx,
    plans::Interval,
    portal::Portal,
    random::new_id,
};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("no customer whose owner has the address {0}")]
    NoSuchCustomer(String),
    #[error("no subscription {0}")]
    NoSuchSubscription(Uuid),
    #[error("subscription {0} is paid by card; switch its customer to manual billing first")]
    NotManual(Uuid),
    #[error("no invoice {0}")]
    NoSuchInvoice(Uuid),
    #[error("invoice {0} is {1}; only open invoices can be marked paid or voided")]
    NotOpen(Uuid, InvoiceStatus),
    #[error("the plan {0} has no price in {1}")]
    NoPrice(String, String),
    #[error("invoice {0} of this subscription is still open; mark it paid or void it first")]
    AlreadyOpen(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The customer whose owner signs in with `email`.
pub async fn customer_by_owner_email(db: &Db, email: &str) -> Result<Uuid, ManualError> {
    let found: Option<Uuid> = on_db!(db, pool => sqlx::query_scalar(
        "SELECT m.customer_id FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE u.email_normalized = $1 AND m.role = 'owner'",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(pool)
    .await)?;
    found.ok_or_else(|| ManualError::NoSuchCustomer(email.to_string()))
}

/// From now on the customer's new orders are invoiced for bank transfer.
pub async fn switch_to_manual(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
) -> Result<(), ManualError> {
    accounts::load_or_create(portal, customer_id).await?;
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE billing_accounts SET method = $2, updated_at = $3 WHERE customer_id = $1",
    )
    .bind(customer_id)
    .bind(Method::Manual)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let event = AuditEvent::new(actor, "billing.switched_to_manual")
        .customer(customer_id)
        .target("customer", customer_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(())
}

/// A customer asks to pay by bank transfer instead of by card. Staff decide, acting on this
/// audit entry (and switch the customer with [`switch_to_manual`]); nothing else changes yet.
pub async fn request_manual(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = AuditEvent::new(actor, "billing.manual_requested")
        .customer(customer_id)
        .target("customer", customer_id);
    audit::record_alone(&portal.db, &event, meta, &*portal.clock, &*portal.random)
        .await
        .map(|_| ())
}

/// Days a manual invoice gives for the bank transfer.
pub const PAYMENT_TERM_DAYS: i64 = 14;

/// Manual subscriptions with an open invoice past its due date become past due from that
/// date, and those whose paid period ended without a paid next one from that end, so the
/// dunning timers apply to them as to card subscriptions. Returns how many.
pub async fn mark_overdue(portal: &Portal) -> Result<u64, sqlx::Error> {
    let now = portal.clock.now_ms();
    let unpaid_invoice = on_db!(&portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET status = 'past_due', updated_at = $1, past_due_since = COALESCE(past_due_since, \
         (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.method = 'manual' \
          AND i.status = 'open' AND i.due_at <= $1)) \
         WHERE method = 'manual' AND status = 'active' AND EXISTS (SELECT 1 FROM invoices i \
         WHERE i.subscription_id = subscriptions.id AND i.method = 'manual' AND i.status = 'open' AND i.due_at <= $1)",
    )
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    let period_ended = on_db!(&portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET status = 'past_due', updated_at = $1, \
         past_due_since = COALESCE(past_due_since, current_period_end) \
         WHERE method = 'manual' AND status = 'active' AND current_period_end <= $1",
    )
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(unpaid_invoice + period_ended)
}

/// The periodic job that issues manual subscriptions' invoices that are due.
pub const RENEW_JOB: &str = "billing.issue_manual_invoices";

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    current_period_end: Option<i64>,
}

/// Issues every manual invoice that is due: an order's first when it has none (its request
/// died before issuing it), and each next period's once its current one ends within the lead
/// time. Exactly one per period, however often it runs and on however many replicas: a
/// period with an invoice (even a voided one: staff withdrew it, and issue a new one by hand
/// if they want one) gets no other. Returns how many it issued.
pub async fn issue_due(portal: &Portal) -> Result<usize, ManualError> {
    let horizon = portal.clock.now_ms() + i64::from(portal.manual_invoice_lead_days) * 86_400_000;
    let due: Vec<Due> = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT s.id, s.current_period_end FROM subscriptions s WHERE s.method = 'manual' \
         AND s.cancel_at_period_end = FALSE AND ( \
           (s.status IN ('active', 'past_due') AND s.current_period_end <= $1 AND NOT EXISTS \
             (SELECT 1 FROM invoices i WHERE i.subscription_id = s.id AND i.period_start = s.current_period_end)) \
           OR (s.status = 'incomplete' AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.subscription_id = s.id)))",
    )
    .bind(horizon)
    .fetch_all(pool)
    .await)?;
    let mut issued = 0;
    for sub in due {
        let occasion = match sub.current_period_end {
            Some(start) => Occasion::Renewal { start },
            None => Occasion::First,
        };
        let meta = RequestMeta::default();
        if issue_for(portal, &meta, Actor::System, sub.id, occasion)
            .await?
            .is_some()
        {
            issued += 1;
        }
    }
    Ok(issued)
}

/// Why an invoice is issued, which decides its period and what makes it unnecessary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occasion {
    /// By staff: the next period (from the paid period's end, or now); refused while an
    /// invoice of the subscription is open.
    ByHand,
    /// An order's first: none when the subscription has any invoice.
    First,
    /// The period from `start` (the paid period's end): none when that period has an invoice.
    Renewal { start: i64 },
}

#[derive(sqlx::FromRow)]
struct Billable {
    customer_id: Uuid,
    plan_id: String,
    billing_interval: String,
    currency: String,
    method: Method,
    status: SubscriptionStatus,
    tax_rate_bp: i32,
    current_period_end: Option<i64>,
}

/// The end of a period of `interval` that starts at `start` (milliseconds, UTC).
fn period_end(start: i64, interval: Interval) -> i64 {
    let start_at = crate::clock::from_millis(start);
    let months = match interval {
        Interval::Monthly => 1,
        Interval::Annual => 12,
    };
    let (mut year, mut month) = (start_at.year(), start_at.month() as i32 + months);
    while month > 12 {
        month -= 12;
        year += 1;
    }
    let month = time::Month::try_from(month as u8).unwrap_or(time::Month::January);
    let day = start_at.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).unwrap_or(start_at.date());
    crate::clock::to_millis(start_at.replace_date(date))
}

/// Issues the invoice for the subscription's next period (its first, for a new order), by
/// hand: numbered `M-000001`, … in one series without gaps, with the tax of the
/// subscription's decision and the buyer as the billing details say now. Refused while an
/// invoice of the subscription is open.
pub async fn issue(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    subscription_id: Uuid,
) -> Result<(Uuid, String), ManualError> {
    issue_for(portal, meta, actor, subscription_id, Occasion::ByHand)
        .await
        .map(|issued| issued.expect("an invoice by hand is issued or refused"))
}

/// Issues a new order's first invoice, unless it has one already.
pub async fn issue_first(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    subscription_id: Uuid,
) -> Result<Option<(Uuid, String)>, ManualError> {
    issue_for(portal, meta, actor, subscription_id, Occasion::First).await
}

async fn issue_for(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    subscription_id: Uuid,
    occasion: Occasion,
) -> Result<Option<(Uuid, String)>, ManualError> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    // The subscription's row is locked (SQLite: the database's write lock) first, so that of
    // two replicas issuing at once the second sees the first's invoice.
    let sub: Option<Billable> = on_tx!(&mut tx, conn => sqlx::query_as(
        "UPDATE subscriptions SET updated_at = updated_at WHERE id = $1 \
         RETURNING customer_id, plan_id, billing_interval, currency, method, status, tax_rate_bp, current_period_end",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await)?;
    let sub = sub.ok_or(ManualError::NoSuchSubscription(subscription_id))?;
    if sub.method != Method::Manual {
        return Err(ManualError::NotManual(subscription_id));
    }
    let start = match occasion {
        Occasion::ByHand => {
            let open: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
                "SELECT number FROM invoices WHERE subscription_id = $1 AND status = 'open' \
                 ORDER BY created_at LIMIT 1",
            )
            .bind(subscription_id)
            .fetch_optional(conn)
            .await)?;
            if let Some(number) = open {
                return Err(ManualError::AlreadyOpen(number));
            }
            sub.current_period_end
                .filter(|end| *end > now)
                .unwrap_or(now)
        }
        Occasion::First => {
            let invoiced: bool = on_tx!(&mut tx, conn => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM invoices WHERE subscription_id = $1)",
            )
            .bind(subscription_id)
            .fetch_one(conn)
            .await)?;
            if invoiced || sub.status != SubscriptionStatus::Incomplete {
                return Ok(None);
            }
            now
        }
        Occasion::Renewal { start } => {
            let invoiced: bool = on_tx!(&mut tx, conn => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM invoices WHERE subscription_id = $1 AND period_start = $2)",
            )
            .bind(subscription_id)
            .bind(start)
            .fetch_one(conn)
            .await)?;
            // Paid or ended since it was found due: nothing to issue.
            let renews = sub.current_period_end == Some(start)
                && matches!(
                    sub.status,
                    SubscriptionStatus::Active | SubscriptionStatus::PastDue
                );
            if invoiced || !renews {
                return Ok(None);
            }
            start
        }
    };
    let interval = Interval::parse(&sub.billing_interval).unwrap_or_default();
    let amount = portal
        .plans
        .plans
        .iter()
        .find(|p| p.id == sub.plan_id)
        .and_then(|p| p.prices.get(&sub.currency))
        .map(|p| p.amount(interval))
        .ok_or_else(|| ManualError::NoPrice(sub.plan_id.clone(), sub.currency.clone()))?;
    let tax = tax_of(amount, sub.tax_rate_bp.max(0) as u32);
    let end = period_end(start, interval);
    let id = new_id(now, &*portal.random);
    let number = numbering::next(&mut tx, Series::Manual).await?;
    let buyer = details::buyer_snapshot(&mut tx, sub.customer_id).await?;
    let lines = serde_json::json!([{ "rate_bp": sub.tax_rate_bp, "amount": tax }]).to_string();
    let due = now + PAYMENT_TERM_DAYS * 86_400_000;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO invoices (id, customer_id, subscription_id, method, number, status, currency, subtotal, tax, \
         total, amount_due, amount_paid, tax_lines, period_start, period_end, due_at, created_at, updated_at, buyer) \
         VALUES ($1, $2, $3, 'manual', $4, 'open', $5, $6, $7, $8, $8, 0, $9, $10, $11, $13, $12, $12, $14)",
    )
    .bind(id)
    .bind(sub.customer_id)
    .bind(subscription_id)
    .bind(&number)
    .bind(&sub.currency)
    .bind(amount)
    .bind(tax)
    .bind(amount + tax)
    .bind(lines)
    .bind(start)
    .bind(end)
    .bind(now)
    .bind(due)
    .bind(buyer)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let event = AuditEvent::new(actor, "invoice.issued")
        .customer(sub.customer_id)
        .target("invoice", id)
        .details(serde_json::json!({
            "number": number, "total": amount + tax, "currency": sub.currency,
            "occasion": match occasion {
                Occasion::ByHand => "by hand",
                Occasion::First => "order",
                Occasion::Renewal { .. } => "renewal",
            },
        }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    super::documents::freeze_manual(&mut tx, portal, id).await?;
    super::invoice_emails::send(&mut tx, portal, id, Kind::InvoiceIssued).await?;
    tx.commit().await?;
    Ok(Some((id, number)))
}

#[derive(sqlx::FromRow)]
struct ManualInvoice {
    /// None once the customer's account is gone (the invoice stays as a billing record).
    customer_id: Option<Uuid>,
    subscription_id: Option<Uuid>,
    status: InvoiceStatus,
    total: i64,
    period_end: Option<i64>,
}

/// Moves a manual invoice from open to `to`, inside `tx`, only if it is still open: of two
/// staff marking the same invoice paid at once, one changes it and the other is told it is
/// paid already. The update is the guard; what was read before it is not.
async fn close(
    tx: &mut crate::db::Tx,
    id: Uuid,
    to: InvoiceStatus,
    now: i64,
) -> Result<ManualInvoice, ManualError> {
    let changed = on_tx!(tx, conn => sqlx::query(
        "UPDATE invoices SET status = $2, \
         amount_paid = CASE WHEN $2 = 'paid' THEN total ELSE amount_paid END, \
         amount_due = CASE WHEN $2 = 'void' THEN 0 ELSE amount_due END, \
         paid_at = CASE WHEN $2 = 'paid' THEN $3 ELSE paid_at END, updated_at = $3 \
         WHERE id = $1 AND method = 'manual' AND status = 'open'",
    )
    .bind(id)
    .bind(to)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    let invoice: Option<ManualInvoice> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT customer_id, subscription_id, status, total, period_end FROM invoices WHERE id = $1 AND method = 'manual'",
    )
    .bind(id)
    .fetch_optional(conn)
    .await)?;
    let invoice = invoice.ok_or(ManualError::NoSuchInvoice(id))?;
    if changed == 0 {
        return Err(ManualError::NotOpen(id, invoice.status));
    }
    Ok(invoice)
}

/// The money arrived: the invoice is paid, its subscription active until the invoice's period
/// ends, and a new homeserver goes on to wait for provisioning.
pub async fn mark_paid(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    id: Uuid,
) -> Result<(), ManualError> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let invoice = close(&mut tx, id, InvoiceStatus::Paid, now).await?;
    if let Some(sub) = invoice.subscription_id {
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE subscriptions SET status = 'active', current_period_end = $2, past_due_since = NULL, \
             updated_at = $3 WHERE id = $1",
        )
        .bind(sub)
        .bind(invoice.period_end)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
        let homeserver: (Uuid, String) = on_tx!(&mut tx, conn => sqlx::query_as(
            "UPDATE homeservers SET state = CASE WHEN state = 'waiting_for_payment' THEN 'waiting_for_provisioning' \
             ELSE state END, suspension_marked_at = NULL, updated_at = $2 \
             WHERE id = (SELECT homeserver_id FROM subscriptions WHERE id = $1) RETURNING id, state",
        )
        .bind(sub)
        .bind(now)
        .fetch_one(conn)
        .await)?;
        if homeserver.1 == "waiting_for_provisioning" {
            crate::homeservers::lifecycle::enqueue_provision(&mut tx, portal, homeserver.0).await?;
        }
        crate::homeservers::lifecycle::enqueue_follow_billing(&mut tx, portal).await?;
    }
    let mut event = AuditEvent::new(actor, "invoice.marked_paid")
        .target("invoice", id)
        .details(serde_json::json!({ "total": invoice.total }));
    if let Some(customer) = invoice.customer_id {
        event = event.customer(customer);
    }
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    super::invoice_emails::send(&mut tx, portal, id, Kind::PaymentReceived).await?;
    tx.commit().await?;
    portal.link_lookups.forget_all();
    Ok(())
}

/// The invoice is withdrawn; its subscription keeps the state it had.
pub async fn void(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    id: Uuid,
) -> Result<(), ManualError> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let invoice = close(&mut tx, id, InvoiceStatus::Void, now).await?;
    let mut event = AuditEvent::new(actor, "invoice.voided").target("invoice", id);
    if let Some(customer) = invoice.customer_id {
        event = event.customer(customer);
    }
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    portal.link_lookups.forget_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tax_is_rounded_half_up_to_the_cent() {
        assert_eq!(tax_of(1000, 2400), 240);
        assert_eq!(tax_of(999, 2550), 255); // 254.745
        assert_eq!(tax_of(1001, 1950), 195); // 195.195
        assert_eq!(tax_of(5000, 0), 0);
    }

    #[test]
    fn periods_end_a_month_or_a_year_later_on_the_same_day_or_the_months_last() {
        let ms = |t| crate::clock::to_millis(t);
        assert_eq!(
            period_end(ms(datetime!(2026-01-31 10:00 UTC)), Interval::Monthly),
            ms(datetime!(2026-02-28 10:00 UTC))
        );
        assert_eq!(
            period_end(ms(datetime!(2026-12-15 00:00 UTC)), Interval::Monthly),
            ms(datetime!(2027-01-15 00:00 UTC))
        );
        assert_eq!(
            period_end(ms(datetime!(2028-02-29 00:00 UTC)), Interval::Annual),
            ms(datetime!(2029-02-28 00:00 UTC))
        );
    }
}
