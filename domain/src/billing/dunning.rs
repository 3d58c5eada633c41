//! Dunning. For card subscriptions Stripe's status is authoritative (past due, paid again);
//! bank-transfer subscriptions fall past due when an invoice passes its due date unpaid. For both,
//! the portal's own timers, counted from the first failed payment on the injected clock, mark
//! the homeserver for suspension and later end the subscription (through Stripe for a card
//! subscription). Each step
//! tells the customer's owner by email.

use super::{accounts::Method, subscriptions};
use crate::{
    accounts::emails::{self, Kind},
    audit::{self, Actor, AuditEvent},
    db::Tx,
    i18n::Locale,
    mail, on_db, on_tx,
    portal::Portal,
};
use uuid::Uuid;

/// The periodic job that applies the timers.
pub const JOB: &str = "billing.dunning";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub suspend_after_days: i64,
    pub cancel_after_days: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            suspend_after_days: 14,
            cancel_after_days: 30,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub marked: usize,
    pub canceled: usize,
}

#[derive(sqlx::FromRow)]
struct Overdue {
    id: Uuid,
    customer_id: Uuid,
    homeserver_id: Uuid,
    server_name: String,
    stripe_subscription_id: Option<String>,
    method: Method,
}

/// Queues the email of a dunning step about the subscription to the customer's owner, in the
/// caller's transaction. A step about an unpaid invoice carries a link to that invoice (its
/// oldest open one), made for this email.
pub async fn notify(
    tx: &mut Tx,
    portal: &Portal,
    subscription_id: Uuid,
    customer_id: Uuid,
    kind: Kind,
    server_name: &str,
) -> Result<(), sqlx::Error> {
    let policy = portal.dunning;
    let Some((user_id, email, name)) = emails::owner_recipient(tx, customer_id).await? else {
        return Ok(());
    };
    // Where the customer acts: the card page, or the dashboard's "Confirm the payment" button
    // (a link opens a page; the button there POSTs).
    let action = match kind {
        Kind::PaymentFailed | Kind::SuspensionMarked => {
            Some(format!("{}/billing/card", portal.public_url))
        }
        Kind::PaymentActionRequired => Some(format!("{}/dashboard", portal.public_url)),
        _ => None,
    };
    let unpaid = match kind {
        Kind::PaymentFailed | Kind::SuspensionMarked | Kind::SuspensionMarkedManual => {
            unpaid_invoice(tx, subscription_id).await?
        }
        _ => None,
    };
    let invoice_link = match unpaid {
        Some(invoice) => Some(super::links::for_email(tx, portal, invoice).await?),
        None => None,
    };
    let mut buttons = Vec::new();
    if let Some(action) = &action {
        buttons.push(("button", action.as_str()));
    }
    if let Some(link) = &invoice_link {
        buttons.push(("invoice_button", link.as_str()));
    }
    let (suspend, cancel, retention) = (
        policy.suspend_after_days.to_string(),
        policy.cancel_after_days.to_string(),
        portal.hosting.retention_days.to_string(),
    );
    let message = emails::compose_with_buttons(
        kind,
        Locale::En,
        &email,
        user_id,
        &name,
        &buttons,
        &[
            ("server", server_name),
            ("suspend_days", &suspend),
            ("cancel_days", &cancel),
            ("retention_days", &retention),
        ],
    );
    mail::enqueue(tx, &message, &*portal.clock, &*portal.random).await?;
    Ok(())
}

/// The subscription's oldest open invoice that has its document.
async fn unpaid_invoice(tx: &mut Tx, subscription_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM invoices WHERE subscription_id = $1 AND status = 'open' AND document IS NOT NULL \
         ORDER BY created_at, id LIMIT 1",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await)
}

/// Applies the timers once. Safe to run on every replica: each step is recorded in the same
/// statement that checks it was not taken yet.
pub async fn run(portal: &Portal) -> Result<Report, super::sync::SyncError> {
    let policy = portal.dunning;
    let now = portal.clock.now_ms();
    let day = 86_400_000;
    let mut report = Report::default();
    // Bank-transfer subscriptions fall due by their invoices' due dates.
    super::manual::mark_overdue(portal).await?;
    let select = "SELECT s.id, s.customer_id, s.homeserver_id, h.name AS server_name, s.stripe_subscription_id, s.method \
         FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id \
         WHERE s.status IN ('past_due', 'unpaid') AND s.past_due_since <= $1";

    let due: Vec<Overdue> = on_db!(&portal.db, pool => sqlx::query_as(
        &format!("{select} AND h.suspension_marked_at IS NULL")
    )
    .bind(now - policy.suspend_after_days * day)
    .fetch_all(pool)
    .await)?;
    for o in due {
        let mut tx = portal.db.begin().await?;
        let marked = on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE homeservers SET suspension_marked_at = $2, updated_at = $2 WHERE id = $1 AND suspension_marked_at IS NULL",
        )
        .bind(o.homeserver_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if marked == 1 {
            let event = AuditEvent::new(Actor::System, "homeserver.suspension_marked")
                .customer(o.customer_id)
                .target("homeserver", o.homeserver_id)
                .details(serde_json::json!({ "subscription": o.id, "reason": "payment overdue" }));
            audit::record_system(&mut tx, &event, portal).await?;
            notify(
                &mut tx,
                portal,
                o.id,
                o.customer_id,
                if o.method == Method::Stripe {
                    Kind::SuspensionMarked
                } else {
                    Kind::SuspensionMarkedManual
                },
                &o.server_name,
            )
            .await?;
            report.marked += 1;
            crate::homeservers::lifecycle::enqueue_follow_billing(&mut tx, portal).await?;
        }
        tx.commit().await?;
    }

    let due: Vec<Overdue> = on_db!(&portal.db, pool => sqlx::query_as(select)
        .bind(now - policy.cancel_after_days * day)
        .fetch_all(pool)
        .await)?;
    for o in due {
        let mut tx = if o.method == Method::Stripe {
            let (Some(gateway), Some(stripe_id)) = (
                portal.payments.as_ref(),
                o.stripe_subscription_id.as_deref(),
            ) else {
                continue;
            };
            let state = gateway.cancel_now(stripe_id).await?;
            subscriptions::record_state(portal, o.id, &state).await?;
            portal.db.begin().await?
        } else {
            // Paid by bank transfer: nothing to end at Stripe.
            let mut tx = portal.db.begin().await?;
            on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE subscriptions SET status = 'canceled', canceled_at = $2, updated_at = $2 WHERE id = $1",
            )
            .bind(o.id)
            .bind(now)
            .execute(conn)
            .await
            .map(|_| ()))?;
            tx
        };
        let event = AuditEvent::new(Actor::System, "subscription.canceled_for_non_payment")
            .customer(o.customer_id)
            .target("subscription", o.id);
        audit::record_system(&mut tx, &event, portal).await?;
        notify(
            &mut tx,
            portal,
            o.id,
            o.customer_id,
            Kind::CanceledForNonPayment,
            &o.server_name,
        )
        .await?;
        crate::homeservers::lifecycle::enqueue_follow_billing(&mut tx, portal).await?;
        tx.commit().await?;
        report.canceled += 1;
    }
    Ok(report)
}
