//! Homeserver orders and their subscriptions: one subscription per homeserver, as at EMS.
//!
//! Placing an order validates it, reserves the name, records the homeserver (waiting for
//! payment) and its subscription (pending) with a fresh idempotency key, and enqueues the
//! recovery job, all in one transaction; only then is Stripe called, in a task that outlives the
//! request. When the request or the process dies before Stripe answered, the recovery job
//! ([`START_JOB`], a minute later by default) does the Stripe step: it sends the same key and
//! first looks the subscription up by its metadata, and one runner at a time holds the order
//! (`start_claimed_until`), so it never makes two.

use super::{
    accounts::{self, Method},
    confirmation, details,
    stripe::{InvoicePayment, NewSubscription, PaymentError, PaymentStage, SubscriptionState},
    tax::{self, Party},
};
use crate::{
    accounts::{emails::Kind, profile::Account},
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    homeservers::names,
    jobs, on_db, on_tx,
    plans::Interval,
    portal::Portal,
    random::{new_id, token},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The order form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderForm {
    pub plan: String,
    pub interval: String,
    pub region: String,
    pub name: String,
    /// Asked only before the first purchase; afterwards the fixed one is used.
    #[serde(default)]
    pub currency: String,
}

pub type FieldProblem = (&'static str, &'static str);

/// Why an order cannot be placed (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRefusal {
    EmailNotVerified,
    NoBillingDetails,
    /// Card payments need a card first.
    NoCard,
    Fields(Vec<FieldProblem>),
    Tax(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Customer(#[from] accounts::StripeCustomerError),
}

crate::text_enum! {
    /// A subscription's state: Stripe's subscription statuses, which manual subscriptions
    /// follow too, and `pending` for an order whose Stripe subscription is not made yet.
    pub enum SubscriptionStatus {
        Pending = "pending",
        Incomplete = "incomplete",
        IncompleteExpired = "incomplete_expired",
        Trialing = "trialing",
        Active = "active",
        PastDue = "past_due",
        Unpaid = "unpaid",
        Paused = "paused",
        Canceled = "canceled",
    }
}

impl SubscriptionStatus {
    /// Paid for now (or in its free trial): the homeserver may run.
    pub fn in_good_standing(self) -> bool {
        matches!(self, Self::Active | Self::Trialing)
    }

    /// A payment failed and dunning runs.
    pub fn overdue(self) -> bool {
        matches!(self, Self::PastDue | Self::Unpaid)
    }

    /// Started and not ended: its plan can be changed, its homeserver provisioned.
    pub fn live(self) -> bool {
        matches!(self, Self::Active | Self::Trialing | Self::PastDue)
    }

    /// No first payment yet.
    pub fn awaiting_first_payment(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Incomplete | Self::IncompleteExpired
        )
    }
}

crate::text_enum! {
    /// Where a homeserver is in its life (see `homeservers::lifecycle`).
    pub enum HomeserverState {
        WaitingForPayment = "waiting_for_payment",
        WaitingForProvisioning = "waiting_for_provisioning",
        Provisioning = "provisioning",
        Running = "running",
        Suspended = "suspended",
        /// A backup is being put back; then it runs again.
        Restoring = "restoring",
        Terminating = "terminating",
        Terminated = "terminated",
    }
}

/// An order that was recorded; `payment` says how paying for it went.
#[derive(Debug)]
pub struct Placed {
    pub subscription_id: Uuid,
    pub payment: Result<(), PaymentError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Subscription {
    pub id: Uuid,
    pub homeserver_id: Uuid,
    pub server_name: String,
    pub region: String,
    pub homeserver_state: HomeserverState,
    pub plan_id: String,
    pub billing_interval: String,
    pub currency: String,
    pub method: Method,
    pub status: SubscriptionStatus,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub stripe_subscription_id: Option<String>,
    pub created_at: i64,
    /// The Stripe invoice whose payment waits for the customer's confirmation (3-D Secure).
    pub payment_action_invoice: Option<String>,
}

const SELECT: &str = "SELECT s.id, s.homeserver_id, h.name AS server_name, h.region, h.state AS homeserver_state, \
     s.plan_id, s.billing_interval, s.currency, s.method, s.status, s.cancel_at_period_end, s.current_period_end, \
     s.trial_end, s.stripe_subscription_id, s.created_at, s.payment_action_invoice FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id";

/// The customer's homeserver subscriptions, newest first.
pub async fn list(db: &Db, customer_id: Uuid) -> Result<Vec<Subscription>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE s.customer_id = $1 ORDER BY s.created_at DESC");
    on_db!(db, pool => sqlx::query_as(&sql).bind(customer_id).fetch_all(pool).await)
}

/// One subscription of the customer (None for another customer's id).
pub async fn get(
    db: &Db,
    customer_id: Uuid,
    id: Uuid,
) -> Result<Option<Subscription>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE s.customer_id = $1 AND s.id = $2");
    on_db!(db, pool => sqlx::query_as(&sql).bind(customer_id).bind(id).fetch_optional(pool).await)
}

/// Checks the form against the catalogue; returns the normalised name, plan, interval, region
/// and currency.
fn validate(
    portal: &Portal,
    form: &OrderForm,
    fixed_currency: Option<&str>,
) -> Result<(String, Interval, String), Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let plan = portal.plans.plans.iter().find(|p| p.id == form.plan);
    if plan.is_none() {
        problems.push(("plan", "order.plan_required"));
    }
    let interval = Interval::parse(&form.interval);
    if interval.is_none() {
        problems.push(("interval", "order.interval_required"));
    }
    match portal.regions.regions.iter().find(|r| r.id == form.region) {
        Some(r) if r.available => {}
        Some(_) => problems.push(("region", "order.region_unavailable")),
        None => problems.push(("region", "order.region_required")),
    }
    let typed = form.currency.trim().to_ascii_lowercase();
    if fixed_currency.is_some_and(|fixed| !typed.is_empty() && typed != fixed) {
        problems.push(("currency", "order.currency_fixed"));
    }
    let currency = fixed_currency.map(str::to_string).unwrap_or_else(|| {
        if typed.is_empty() {
            portal.plans.default_currency.clone()
        } else {
            typed.clone()
        }
    });
    if let (Some(plan), Some(interval)) = (plan, interval) {
        match plan.prices.get(&currency) {
            None => problems.push(("currency", "order.currency_unavailable")),
            Some(price) if portal.payments.is_some() && price.stripe_price(interval).is_none() => {
                problems.push(("plan", "order.plan_not_for_sale"))
            }
            Some(_) => {}
        }
    }
    let name = match names::validate(&form.name) {
        Ok(n) => Some(n),
        Err(p) => {
            problems.push(("name", p.message_key()));
            None
        }
    };
    if problems.is_empty() {
        Ok((
            name.unwrap_or_default(),
            interval.unwrap_or_default(),
            currency,
        ))
    } else {
        Err(problems)
    }
}

/// Places an order for the account's customer and, when the customer pays by card, starts the
/// Stripe subscription. `Ok(Err(refusal))` when it cannot be placed; nothing was written then.
pub async fn place(
    portal: &Portal,
    meta: &RequestMeta,
    account: &Account,
    form: &OrderForm,
) -> Result<Result<Placed, OrderRefusal>, OrderError> {
    let customer_id = account.customer_id.expect("orders are placed by customers");
    if !account.email_verified() {
        return Ok(Err(OrderRefusal::EmailNotVerified));
    }
    let Some(billing) = details::load(&portal.db, customer_id).await? else {
        return Ok(Err(OrderRefusal::NoBillingDetails));
    };
    let billing_account = accounts::load_or_create(portal, customer_id).await?;
    if billing_account.method == Method::Stripe
        && super::cards::load(&portal.db, customer_id).await?.is_none()
    {
        return Ok(Err(OrderRefusal::NoCard));
    }
    let (name, interval, currency) =
        match validate(portal, form, billing_account.currency.as_deref()) {
            Ok(v) => v,
            Err(problems) => return Ok(Err(OrderRefusal::Fields(problems))),
        };
    // Reverse charge only for a number VIES confirmed; until then VAT is charged, and the tax
    // is decided again when the check answers.
    let confirmed = details::confirmed_vat_number(&portal.db, customer_id).await?;
    let today = crate::clock::from_millis(portal.clock.now_ms()).date();
    let decision = match tax::decide(
        &portal.rates,
        &Party {
            country: &portal.seller.country,
            vat_number: portal.seller.vat_number.as_deref(),
        },
        &Party {
            country: &billing.country,
            vat_number: confirmed.as_deref(),
        },
        today,
    ) {
        Ok(d) => d,
        Err(e) => return Ok(Err(OrderRefusal::Tax(e.to_string()))),
    };

    let now = portal.clock.now_ms();
    let homeserver_id = new_id(now, &*portal.random);
    let subscription_id = new_id(now, &*portal.random);
    let actor = Actor::User(account.user_id);
    let mut tx = portal.db.begin().await?;
    if let Err(problem) = names::reserve(&mut tx, &name, customer_id, now).await? {
        tx.rollback().await?;
        // The same order sent again (a double click, a browser's retry): it is the first one,
        // whose payment its own request (or the recovery job) takes care of.
        if let Some(subscription_id) = same_order(portal, customer_id, &name, form, now).await? {
            let payment = wait_for_payment_step(portal, subscription_id).await;
            return Ok(Ok(Placed {
                subscription_id,
                payment,
            }));
        }
        return Ok(Err(OrderRefusal::Fields(vec![(
            "name",
            problem.message_key(),
        )])));
    }
    if !accounts::fix_currency(&mut tx, customer_id, &currency, now).await? {
        tx.rollback().await?;
        return Ok(Err(OrderRefusal::Fields(vec![(
            "currency",
            "order.currency_fixed",
        )])));
    }
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO homeservers (id, customer_id, name, region, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(homeserver_id)
    .bind(customer_id)
    .bind(&name)
    .bind(&form.region)
    .bind(HomeserverState::WaitingForPayment)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let status = match billing_account.method {
        Method::Stripe => SubscriptionStatus::Pending,
        // Paid by bank transfer: incomplete until its invoice is marked paid.
        Method::Manual => SubscriptionStatus::Incomplete,
    };
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO subscriptions (id, customer_id, homeserver_id, plan_id, billing_interval, currency, method, \
         status, tax_key, tax_rate_bp, idempotency_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(subscription_id)
    .bind(customer_id)
    .bind(homeserver_id)
    .bind(&form.plan)
    .bind(interval.as_str())
    .bind(&currency)
    .bind(billing_account.method)
    .bind(status)
    .bind(&decision.key)
    .bind(decision.rate_bp as i32)
    .bind(format!("subscription-{}", token(&*portal.random, 16)))
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let event = AuditEvent::new(actor, "order.placed")
        .customer(customer_id)
        .target("subscription", subscription_id)
        .details(serde_json::json!({
            "plan": form.plan, "interval": interval.as_str(), "region": form.region,
            "name": name, "currency": currency, "tax": decision.key,
        }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    if let (Method::Stripe, Some(gateway)) = (billing_account.method, portal.payments.as_ref()) {
        // Durable: if this request dies before Stripe answered (a client that went away, a
        // killed process), the recovery job creates the subscription a little later.
        let job = jobs::NewJob {
            run_at_ms: now + gateway.config.recover_orders_after.as_millis() as i64,
            ..jobs::NewJob::now(
                START_JOB,
                serde_json::json!({ "subscription": subscription_id }),
                &*portal.clock,
            )
        }
        .dedupe(format!("{START_JOB}:{subscription_id}"));
        jobs::enqueue(&mut tx, job, &*portal.clock, &*portal.random).await?;
    }
    tx.commit().await?;

    let payment = match billing_account.method {
        Method::Stripe => {
            // In a task of its own: hyper drops a handler's future when its client goes away,
            // which must not cancel a payment half-way.
            let (task_portal, task_account) = (portal.clone(), account.clone());
            tokio::spawn(async move {
                start(&task_portal, customer_id, subscription_id, &task_account).await
            })
            .await
            .unwrap_or_else(|e| Err(PaymentError::Unexpected(format!("order task: {e}"))))
        }
        Method::Manual => {
            // Its first invoice, emailed now. Should this fail, the order stands and the
            // invoicing job issues it within the hour.
            if let Err(error) =
                super::manual::issue_first(portal, meta, actor, subscription_id).await
            {
                tracing::error!(subscription = %subscription_id, %error, "issuing an order's first invoice failed; the invoicing job retries");
            }
            Ok(())
        }
    };
    Ok(Ok(Placed {
        subscription_id,
        payment,
    }))
}

/// The job that creates the Stripe subscription of an order whose request died first.
pub const START_JOB: &str = "billing.start_subscription";

/// How long an order's Stripe step is reserved for the one running it: every attempt of the
/// calls it makes (customer, tax rate, subscription), with room to spare.
fn start_lease(portal: &Portal) -> i64 {
    let per_call = portal
        .payments
        .as_ref()
        .map(|g| g.config.timeout.as_millis() as i64)
        .unwrap_or(20_000);
    per_call * 3 * 3 + 30_000
}

/// An order of this customer for the same name, plan and region placed in the last ten
/// minutes: a second submission of the same form.
async fn same_order(
    portal: &Portal,
    customer_id: Uuid,
    name: &str,
    form: &OrderForm,
    now: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT s.id FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id \
         WHERE h.customer_id = $1 AND h.name = $2 AND h.region = $3 AND s.plan_id = $4 AND s.created_at > $5",
    )
    .bind(customer_id)
    .bind(name)
    .bind(&form.region)
    .bind(&form.plan)
    .bind(now - 10 * 60_000)
    .fetch_optional(pool)
    .await)
}

/// For a second submission of an order: waits (a few seconds at most) while the first one's
/// Stripe step runs, so both answer alike. It never starts a payment itself: a declined card
/// is not charged again by a double click.
async fn wait_for_payment_step(portal: &Portal, subscription_id: Uuid) -> Result<(), PaymentError> {
    for _ in 0..50 {
        let found: Option<(SubscriptionStatus, Method, Option<String>)> =
            on_db!(&portal.db, pool => sqlx::query_as(
            "SELECT status, method, payment_action_invoice FROM subscriptions WHERE id = $1",
        )
        .bind(subscription_id)
        .fetch_optional(pool)
        .await)
            .map_err(|e| PaymentError::Unexpected(format!("database: {e}")))?;
        match found {
            Some((SubscriptionStatus::Pending, Method::Stripe, _)) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            // Waiting for the customer's confirmation is no failure.
            Some((SubscriptionStatus::Incomplete, Method::Stripe, None)) => {
                return Err(PaymentError::Declined(String::new()))
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// The recovery job's work: creates the Stripe subscription of an order still pending (its
/// request died before Stripe answered). An order in any other state is left alone: it was
/// created, or declined (a declined card is charged again only when the customer asks).
pub async fn recover(portal: &Portal, subscription_id: Uuid) -> Result<(), PaymentError> {
    let fail = |e: sqlx::Error| PaymentError::Unexpected(format!("database: {e}"));
    let found: Option<(Uuid, SubscriptionStatus)> = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT customer_id, status FROM subscriptions WHERE id = $1",
    )
    .bind(subscription_id)
    .fetch_optional(pool)
    .await)
    .map_err(fail)?;
    let Some((customer_id, SubscriptionStatus::Pending)) = found else {
        return Ok(());
    };
    let owner: Option<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT user_id FROM memberships WHERE customer_id = $1 AND role = 'owner'",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)
    .map_err(fail)?;
    let account = match owner {
        Some(user) => crate::accounts::profile::load(&portal.db, user)
            .await
            .map_err(fail)?,
        None => None,
    };
    let Some(account) = account else {
        return Ok(());
    };
    tracing::info!(subscription = %subscription_id, "creating the Stripe subscription of an order whose request did not finish");
    start(portal, customer_id, subscription_id, &account).await
}

/// What creating an order's Stripe subscription needs from its row.
#[derive(sqlx::FromRow)]
struct Pending {
    plan_id: String,
    billing_interval: String,
    currency: String,
    tax_key: Option<String>,
    tax_rate_bp: i32,
    idempotency_key: String,
    status: SubscriptionStatus,
}

/// Creates (or finds) the Stripe subscription of a pending order and records what Stripe says.
/// Safe to call again: the stored key and the metadata lookup make one subscription, and one
/// caller at a time does the work (a second one is told to try again later).
pub async fn start(
    portal: &Portal,
    customer_id: Uuid,
    subscription_id: Uuid,
    account: &Account,
) -> Result<(), PaymentError> {
    let fail = |e: sqlx::Error| PaymentError::Unexpected(format!("database: {e}"));
    let now = portal.clock.now_ms();
    let claimed = on_db!(&portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET start_claimed_until = $3 WHERE id = $1 AND customer_id = $2 \
         AND status IN ('pending', 'incomplete') AND (start_claimed_until IS NULL OR start_claimed_until < $4)",
    )
    .bind(subscription_id)
    .bind(customer_id)
    .bind(now + start_lease(portal))
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(fail)?;
    if claimed == 0 {
        let status: Option<SubscriptionStatus> = on_db!(&portal.db, pool => sqlx::query_scalar(
            "SELECT status FROM subscriptions WHERE id = $1",
        )
        .bind(subscription_id)
        .fetch_optional(pool)
        .await)
        .map_err(fail)?;
        return match status {
            // Another runner holds it (a request still waiting for Stripe, or one that died
            // while holding it, until its lease ends): try again later.
            Some(SubscriptionStatus::Pending | SubscriptionStatus::Incomplete) => Err(
                PaymentError::Unavailable("another runner is creating this subscription".into()),
            ),
            _ => Ok(()),
        };
    }
    let outcome = start_claimed(portal, customer_id, subscription_id, account).await;
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET start_claimed_until = NULL WHERE id = $1",
    )
    .bind(subscription_id)
    .execute(pool)
    .await
    .map(|_| ()))
    .map_err(fail)?;
    outcome
}

async fn start_claimed(
    portal: &Portal,
    customer_id: Uuid,
    subscription_id: Uuid,
    account: &Account,
) -> Result<(), PaymentError> {
    let fail = |e: sqlx::Error| PaymentError::Unexpected(format!("database: {e}"));
    let gateway = portal
        .payments
        .as_ref()
        .ok_or_else(|| PaymentError::Unexpected("no Stripe keys".into()))?;
    gateway.admit(customer_id)?;
    let row: Option<Pending> = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT plan_id, billing_interval, currency, tax_key, tax_rate_bp, idempotency_key, status \
         FROM subscriptions WHERE id = $1 AND customer_id = $2",
    )
    .bind(subscription_id)
    .bind(customer_id)
    .fetch_optional(pool)
    .await)
    .map_err(fail)?;
    let Some(Pending {
        plan_id,
        billing_interval: interval,
        currency,
        tax_key,
        tax_rate_bp: rate_bp,
        idempotency_key: key,
        status,
    }) = row
    else {
        return Err(PaymentError::Unexpected("no such subscription".into()));
    };
    if !matches!(
        status,
        SubscriptionStatus::Pending | SubscriptionStatus::Incomplete
    ) {
        return Ok(());
    }
    let plan = portal.plans.plans.iter().find(|p| p.id == plan_id);
    let price = plan
        .and_then(|p| p.prices.get(&currency))
        .and_then(|p| p.stripe_price(Interval::parse(&interval).unwrap_or_default()))
        .ok_or_else(|| {
            PaymentError::Unexpected(format!(
                "no Stripe price for {plan_id} {interval} {currency}"
            ))
        })?;
    let billing_account = accounts::load_or_create(portal, customer_id)
        .await
        .map_err(fail)?;
    let email = account.email.clone().unwrap_or_default();
    let stripe_customer =
        accounts::stripe_customer(portal, &billing_account, &email, &account.display_name)
            .await
            .map_err(|e| match e {
                accounts::StripeCustomerError::Payment(p) => p,
                other => PaymentError::Unexpected(other.to_string()),
            })?;
    let tax_rate = match &tax_key {
        Some(k) => Some(stripe_tax_rate(portal, k, rate_bp).await?),
        None => None,
    };
    let result = gateway
        .create_subscription(&NewSubscription {
            customer: &stripe_customer,
            price,
            tax_rate: tax_rate.as_deref(),
            trial_days: plan.and_then(|p| p.trial_days),
            portal_id: &subscription_id.to_string(),
            idempotency_key: &key,
        })
        .await;
    let declined = match result {
        // The first payment waits for the customer's confirmation in the browser (always, at
        // Stripe, with default_incomplete; 3-D Secure), or was declined (a Stripe-compatible
        // test server that attempts it at once). Stripe's PaymentIntent says which.
        Ok(state) if state.status.awaiting_first_payment() => {
            record_state(portal, subscription_id, &state)
                .await
                .map_err(fail)?;
            let stage = match &state.latest_invoice {
                Some(invoice) => Some(gateway.invoice_payment(invoice).await?),
                None => None,
            };
            match stage {
                Some(payment)
                    if matches!(
                        payment.stage,
                        PaymentStage::NeedsConfirmation | PaymentStage::Processing
                    ) =>
                {
                    return confirmation::mark_needed(
                        portal,
                        subscription_id,
                        &payment.invoice,
                        confirmation::Told::InBrowser,
                    )
                    .await
                    .map_err(fail);
                }
                Some(InvoicePayment {
                    stage: PaymentStage::Declined(message),
                    ..
                }) => PaymentError::Declined(message),
                _ => PaymentError::Declined(String::new()),
            }
        }
        Ok(state) => {
            return record_state(portal, subscription_id, &state)
                .await
                .map_err(fail)
        }
        // Stripe made nothing.
        Err(PaymentError::Declined(message)) => PaymentError::Declined(message),
        Err(e) => return Err(e),
    };
    // The order waits for another card; the next attempt needs a new key (Stripe replays
    // the decline for the old one).
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET status = $4, idempotency_key = $2, updated_at = $3 WHERE id = $1",
    )
    .bind(subscription_id)
    .bind(format!("subscription-{}", token(&*portal.random, 16)))
    .bind(portal.clock.now_ms())
    .bind(SubscriptionStatus::Incomplete)
    .execute(pool)
    .await
    .map(|_| ()))
    .map_err(fail)?;
    Err(declined)
}

/// The Stripe tax rate for a decision key, created once per portal.
pub(crate) async fn stripe_tax_rate(
    portal: &Portal,
    key: &str,
    rate_bp: i32,
) -> Result<String, PaymentError> {
    let fail = |e: sqlx::Error| PaymentError::Unexpected(format!("database: {e}"));
    let known: Option<String> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT stripe_id FROM stripe_tax_rates WHERE decision_key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await)
    .map_err(fail)?;
    if let Some(id) = known {
        return Ok(id);
    }
    let gateway = portal
        .payments
        .as_ref()
        .ok_or_else(|| PaymentError::Unexpected("no Stripe keys".into()))?;
    // `vat-FI-2550` names its country; the reverse charge has none.
    let country = key
        .strip_prefix("vat-")
        .and_then(|rest| rest.split('-').next())
        .filter(|c| c.len() == 2);
    let display = if country.is_some() {
        "VAT"
    } else {
        "VAT reverse charge"
    };
    let id = gateway
        .tax_rate(key, f64::from(rate_bp) / 100.0, country, display)
        .await?;
    on_db!(&portal.db, pool => sqlx::query(
        "INSERT INTO stripe_tax_rates (decision_key, stripe_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (decision_key) DO NOTHING",
    )
    .bind(key)
    .bind(&id)
    .bind(portal.clock.now_ms())
    .execute(pool)
    .await
    .map(|_| ()))
    .map_err(fail)?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct Before {
    status: SubscriptionStatus,
    customer_id: Uuid,
    server_name: String,
    plan_id: String,
    billing_interval: String,
    currency: String,
}

/// How many subscriptions carry a Stripe price that maps to no plan (a metric for staff).
pub async fn unknown_price_count(db: &crate::db::Db) -> Result<i64, sqlx::Error> {
    on_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM subscriptions WHERE unknown_stripe_price IS NOT NULL",
    )
    .fetch_one(pool)
    .await)
}

/// Mirrors Stripe's view of a subscription. A paid (or trialing) subscription moves its
/// homeserver from "waiting for payment" to "waiting for provisioning".
pub async fn record_state(
    portal: &Portal,
    subscription_id: Uuid,
    state: &SubscriptionState,
) -> Result<(), sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let before: Option<Before> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT s.status, s.customer_id, h.name AS server_name, s.plan_id, s.billing_interval, s.currency \
         FROM subscriptions s JOIN homeservers h ON h.id = s.homeserver_id WHERE s.id = $1",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await)?;
    let Some(before) = before else {
        return Ok(());
    };
    // The plan and interval are Stripe's: its price maps back to them (a change made in
    // Stripe's dashboard is followed). A price of no plan is recorded and flagged, not guessed.
    let mut plan = (before.plan_id.clone(), before.billing_interval.clone());
    let mut unknown_price = None;
    if let Some(price) = &state.price_id {
        match portal.plans.by_stripe_price(price) {
            Some((found, currency, interval)) if currency == before.currency => {
                plan = (found.id.clone(), interval.as_str().to_string());
            }
            _ => {
                tracing::error!(
                    subscription = %subscription_id,
                    price = %price,
                    "the Stripe subscription has a price that is no plan of the catalogue in its currency; \
                     its plan is left as it was and the subscription flagged"
                );
                unknown_price = Some(price.clone());
            }
        }
    }
    if plan != (before.plan_id.clone(), before.billing_interval.clone()) {
        let event = AuditEvent::new(Actor::System, "subscription.plan_changed")
            .customer(before.customer_id)
            .target("subscription", subscription_id)
            .details(serde_json::json!({
                "from": before.plan_id, "to": plan.0,
                "interval_from": before.billing_interval, "interval_to": plan.1,
                "price": state.price_id,
            }));
        audit::record_system(&mut tx, &event, portal).await?;
    }
    if state.status.overdue() && !before.status.overdue() {
        super::dunning::notify(
            &mut tx,
            portal,
            subscription_id,
            before.customer_id,
            Kind::PaymentFailed,
            &before.server_name,
        )
        .await?;
    }
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE subscriptions SET stripe_subscription_id = $2, status = $3, cancel_at_period_end = $4, \
         current_period_end = $5, trial_end = $6, updated_at = $7, \
         past_due_since = CASE WHEN $3 IN ('past_due', 'unpaid') THEN COALESCE(past_due_since, $7) ELSE NULL END, \
         canceled_at = CASE WHEN $3 = 'canceled' THEN COALESCE(canceled_at, $7) ELSE NULL END, \
         plan_id = $8, billing_interval = $9, unknown_stripe_price = $10 \
         WHERE id = $1",
    )
    .bind(subscription_id)
    .bind(&state.id)
    .bind(state.status)
    .bind(state.cancel_at_period_end)
    .bind(state.current_period_end.map(|s| s * 1000))
    .bind(state.trial_end.map(|s| s * 1000))
    .bind(now)
    .bind(&plan.0)
    .bind(&plan.1)
    .bind(unknown_price)
    .execute(conn)
    .await
    .map(|_| ()))?;
    if state.status.in_good_standing() {
        // Paid again: a suspension mark from dunning is lifted.
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE homeservers SET suspension_marked_at = NULL, updated_at = $2 \
             WHERE id = (SELECT homeserver_id FROM subscriptions WHERE id = $1) AND suspension_marked_at IS NOT NULL",
        )
        .bind(subscription_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
    }
    if state.status.live() {
        let paid: Option<Uuid> = on_tx!(&mut tx, conn => sqlx::query_scalar(
            "UPDATE homeservers SET state = $3, updated_at = $2 \
             WHERE id = (SELECT homeserver_id FROM subscriptions WHERE id = $1) AND state = $4 \
             RETURNING id",
        )
        .bind(subscription_id)
        .bind(now)
        .bind(HomeserverState::WaitingForProvisioning)
        .bind(HomeserverState::WaitingForPayment)
        .fetch_optional(conn)
        .await)?;
        if let Some(homeserver) = paid {
            crate::homeservers::lifecycle::enqueue_provision(&mut tx, portal, homeserver).await?;
        }
    }
    // Suspension lifted, or the subscription ended: the homeserver follows.
    crate::homeservers::lifecycle::enqueue_follow_billing(&mut tx, portal).await?;
    tx.commit().await
}
