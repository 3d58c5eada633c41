//! Changes a customer makes to a running card subscription: another plan (with Stripe's
//! preview of what is invoiced now), cancellation at the end of the period, and resuming
//! before that end.

use super::{
    accounts::Method,
    confirmation,
    stripe::{Gateway, PaymentError, PaymentStage, SubscriptionState},
    subscriptions::{self, Subscription},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    on_db,
    plans::Interval,
    portal::Portal,
    random::token,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// No such subscription of this customer.
    NotFound,
    /// Paid by bank transfer: staff change it.
    NotByCard,
    /// Ended, or not started yet.
    NotRunning,
    SamePlan,
    UnknownPlan,
    /// The payment for the change did not go through: Stripe kept the old plan.
    PaymentDeclined,
    /// The payment for the change waits for the customer's confirmation (3-D Secure): the
    /// change applies once it is paid.
    PaymentNeedsConfirmation,
}

impl ChangeRefusal {
    pub fn message_key(self) -> &'static str {
        match self {
            ChangeRefusal::NotFound => "change.not_found",
            ChangeRefusal::NotByCard => "change.not_by_card",
            ChangeRefusal::NotRunning => "change.not_running",
            ChangeRefusal::SamePlan => "change.same_plan",
            ChangeRefusal::UnknownPlan => "order.plan_required",
            ChangeRefusal::PaymentDeclined => "change.declined",
            ChangeRefusal::PaymentNeedsConfirmation => "change.needs_confirmation",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a plan change costs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Invoiced at once (minor units), tax included; 0 when the change is credited instead.
    pub amount_due: i64,
    pub currency: String,
}

struct Running<'a> {
    sub: Subscription,
    stripe_id: String,
    gateway: &'a Gateway,
}

async fn running<'a>(
    portal: &'a Portal,
    customer_id: Uuid,
    id: Uuid,
) -> Result<Result<Running<'a>, ChangeRefusal>, sqlx::Error> {
    let Some(sub) = subscriptions::get(&portal.db, customer_id, id).await? else {
        return Ok(Err(ChangeRefusal::NotFound));
    };
    let (Some(gateway), Some(stripe_id)) =
        (portal.payments.as_ref(), sub.stripe_subscription_id.clone())
    else {
        return Ok(Err(ChangeRefusal::NotByCard));
    };
    if sub.method != Method::Stripe {
        return Ok(Err(ChangeRefusal::NotByCard));
    }
    if !sub.status.live() {
        return Ok(Err(ChangeRefusal::NotRunning));
    }
    Ok(Ok(Running {
        sub,
        stripe_id,
        gateway,
    }))
}

/// The Stripe price of `plan_id` in the subscription's currency and interval.
fn price_of<'p>(portal: &'p Portal, sub: &Subscription, plan_id: &str) -> Option<&'p str> {
    portal
        .plans
        .plans
        .iter()
        .find(|p| p.id == plan_id)?
        .prices
        .get(&sub.currency)?
        .stripe_price(Interval::parse(&sub.billing_interval).unwrap_or_default())
}

async fn tax_rate(portal: &Portal, sub_id: Uuid) -> Result<Option<String>, ChangeError> {
    let (key, rate_bp): (Option<String>, i32) = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT tax_key, tax_rate_bp FROM subscriptions WHERE id = $1",
    )
    .bind(sub_id)
    .fetch_one(pool)
    .await)?;
    Ok(match key {
        Some(key) => Some(subscriptions::stripe_tax_rate(portal, &key, rate_bp).await?),
        None => None,
    })
}

pub async fn preview(
    portal: &Portal,
    customer_id: Uuid,
    id: Uuid,
    plan_id: &str,
) -> Result<Result<Preview, ChangeRefusal>, ChangeError> {
    let run = match running(portal, customer_id, id).await? {
        Ok(run) => run,
        Err(refusal) => return Ok(Err(refusal)),
    };
    run.gateway.admit(customer_id)?;
    if run.sub.plan_id == plan_id {
        return Ok(Err(ChangeRefusal::SamePlan));
    }
    let Some(price) = price_of(portal, &run.sub, plan_id) else {
        return Ok(Err(ChangeRefusal::UnknownPlan));
    };
    let state = run.gateway.subscription(&run.stripe_id).await?;
    let item = state.item_id.unwrap_or_default();
    let tax = tax_rate(portal, id).await?;
    let invoice = run
        .gateway
        .preview_price_change(
            &state.customer,
            &run.stripe_id,
            &item,
            price,
            tax.as_deref(),
        )
        .await?;
    Ok(Ok(Preview {
        amount_due: invoice.amount_due.max(0),
        currency: invoice.currency,
    }))
}

/// Moves the subscription to another plan; the difference is invoiced at once.
pub async fn change_plan(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    id: Uuid,
    plan_id: &str,
) -> Result<Result<SubscriptionState, ChangeRefusal>, ChangeError> {
    let run = match running(portal, customer_id, id).await? {
        Ok(run) => run,
        Err(refusal) => return Ok(Err(refusal)),
    };
    run.gateway.admit(customer_id)?;
    if run.sub.plan_id == plan_id {
        return Ok(Err(ChangeRefusal::SamePlan));
    }
    let Some(price) = price_of(portal, &run.sub, plan_id) else {
        return Ok(Err(ChangeRefusal::UnknownPlan));
    };
    let current = run.gateway.subscription(&run.stripe_id).await?;
    let item = current.item_id.clone().unwrap_or_default();
    // The tax rate goes on first, in an update of its own: a change that waits for its payment
    // may carry only price and quantity.
    let tax = tax_rate(portal, id).await?;
    let wanted: Vec<String> = tax.into_iter().collect();
    if current.tax_rates != wanted {
        run.gateway
            .set_tax_rate(&run.stripe_id, &item, wanted.first().map(String::as_str))
            .await?;
    }
    let key = format!("change-{}", token(&*portal.random, 16));
    let state = run
        .gateway
        .change_price(&run.stripe_id, &item, price, &key)
        .await?;
    // The local plan follows Stripe's state only (record_state maps the price back to it):
    // a declined payment leaves Stripe, and so the portal, on the old plan.
    subscriptions::record_state(portal, id, &state).await?;
    let applied = state.price_id.as_deref() == Some(price) && !state.pending_update;
    let mut tx = portal.db.begin().await?;
    let event = AuditEvent::new(actor, "subscription.plan_change_requested")
        .customer(customer_id)
        .target("subscription", id)
        .details(serde_json::json!({ "from": run.sub.plan_id, "to": plan_id, "applied": applied }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    if !applied {
        // Declined, or waiting for 3-D Secure: Stripe's PaymentIntent says which.
        if let Some(invoice) = &state.latest_invoice {
            let payment = run.gateway.invoice_payment(invoice).await?;
            if payment.stage == PaymentStage::NeedsConfirmation {
                confirmation::mark_needed(portal, id, invoice, confirmation::Told::InBrowser)
                    .await?;
                return Ok(Err(ChangeRefusal::PaymentNeedsConfirmation));
            }
        }
        return Ok(Err(ChangeRefusal::PaymentDeclined));
    }
    Ok(Ok(state))
}

/// Cancels at the end of the paid period (`true`) or resumes before it (`false`).
pub async fn set_cancel_at_period_end(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    id: Uuid,
    cancel: bool,
) -> Result<Result<SubscriptionState, ChangeRefusal>, ChangeError> {
    let run = match running(portal, customer_id, id).await? {
        Ok(run) => run,
        Err(refusal) => return Ok(Err(refusal)),
    };
    run.gateway.admit(customer_id)?;
    let state = run
        .gateway
        .set_cancel_at_period_end(&run.stripe_id, cancel)
        .await?;
    subscriptions::record_state(portal, id, &state).await?;
    let mut tx = portal.db.begin().await?;
    let action = if cancel {
        "subscription.cancel_scheduled"
    } else {
        "subscription.resumed"
    };
    let event = AuditEvent::new(actor, action)
        .customer(customer_id)
        .target("subscription", id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(state))
}

/// The job that decides the tax again after a customer's billing details changed.
pub const RETAX_JOB: &str = "billing.redecide_tax";

/// Decides the tax again for the customer's running subscriptions (P9: when billing details
/// change) and, where the decision changed, puts the new Stripe tax rate on the subscription
/// from its next invoice on. Returns how many changed.
pub async fn redecide_tax(portal: &Portal, customer_id: Uuid) -> Result<usize, ChangeError> {
    use super::{details, tax};
    let Some(billing) = details::load(&portal.db, customer_id).await? else {
        return Ok(0);
    };
    let confirmed = details::confirmed_vat_number(&portal.db, customer_id).await?;
    let today = crate::clock::from_millis(portal.clock.now_ms()).date();
    let decision = match tax::decide(
        &portal.rates,
        &tax::Party {
            country: &portal.seller.country,
            vat_number: portal.seller.vat_number.as_deref(),
        },
        &tax::Party {
            country: &billing.country,
            vat_number: confirmed.as_deref(),
        },
        today,
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "no tax decision for changed billing details");
            return Ok(0);
        }
    };
    // Stripe prints the name and address on its invoices.
    if let (Some(gateway), Some(account)) = (
        portal.payments.as_ref(),
        super::accounts::load(&portal.db, customer_id).await?,
    ) {
        if let Some(stripe_customer) = &account.stripe_customer_id {
            let name = billing
                .company
                .clone()
                .unwrap_or_else(|| billing.name.clone());
            let address = super::stripe::CustomerAddress {
                line1: billing.address_line1.clone(),
                line2: billing.address_line2.clone(),
                postal_code: billing.postal_code.clone(),
                city: billing.city.clone(),
                country: billing.country.clone(),
            };
            gateway
                .update_customer(stripe_customer, &billing.billing_email, &name, address)
                .await?;
        }
    }
    let running: Vec<(Uuid, Option<String>, Option<String>, String)> = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT id, tax_key, stripe_subscription_id, method FROM subscriptions \
         WHERE customer_id = $1 AND status NOT IN ('canceled', 'incomplete_expired')",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await)?;
    let mut changed = 0;
    for (id, key, stripe_id, method) in running {
        if key == decision.key {
            continue;
        }
        if let (Some(gateway), Some(stripe_id), "stripe") =
            (portal.payments.as_ref(), stripe_id, method.as_str())
        {
            let rate = match &decision.key {
                Some(k) => {
                    Some(subscriptions::stripe_tax_rate(portal, k, decision.rate_bp as i32).await?)
                }
                None => None,
            };
            let current = gateway.subscription(&stripe_id).await?;
            gateway
                .set_tax_rate(
                    &stripe_id,
                    current.item_id.as_deref().unwrap_or_default(),
                    rate.as_deref(),
                )
                .await?;
        }
        let mut tx = portal.db.begin().await?;
        crate::on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE subscriptions SET tax_key = $2, tax_rate_bp = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(&decision.key)
        .bind(decision.rate_bp as i32)
        .bind(portal.clock.now_ms())
        .execute(conn)
        .await
        .map(|_| ()))?;
        let event = AuditEvent::new(Actor::System, "subscription.tax_changed")
            .customer(customer_id)
            .target("subscription", id)
            .details(serde_json::json!({ "from": key, "to": decision.key }));
        audit::record_system(&mut tx, &event, portal).await?;
        tx.commit().await?;
        changed += 1;
    }
    Ok(changed)
}
