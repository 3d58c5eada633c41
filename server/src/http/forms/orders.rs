//! Card, order and billing-method forms.

use super::{
    failure, outliving_the_request, return_path, see_other, signed_in_customer, tr, FormContext,
};
use app::forms::{CardSetup, Flash, PlanPreview, CARD_SETUP_KEY, PLAN_PREVIEW_KEY};
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};
use domain::{
    audit::Actor,
    billing::{
        accounts::Method,
        cards::{self, CardError, RemoveOutcome},
        changes::{self, ChangeError, ChangeRefusal},
        manual,
        stripe::PaymentError,
        subscriptions::{self, OrderForm, OrderRefusal, SubscriptionStatus},
    },
    i18n::Locale,
    money::format,
};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct CardFields {
    setup_intent: String,
    next: String,
}

/// The browser confirmed a SetupIntent with Stripe.js: read the card from Stripe and keep it.
pub async fn save_card(ctx: FormContext, Form(fields): Form<CardFields>) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    let next = return_path(&fields.next, "/dashboard");
    let mut flash = Flash::for_form("card");
    let setup_intent = fields.setup_intent.trim();
    if !setup_intent.starts_with("seti_") {
        flash.alert = Some(tr("card.not_confirmed"));
        return ctx.back("/billing/card", flash).await;
    }
    let (task_portal, meta, setup_intent) =
        (portal.clone(), ctx.meta.clone(), setup_intent.to_string());
    let outcome = match outliving_the_request(async move {
        cards::complete(
            &task_portal,
            &meta,
            Actor::User(account.user_id),
            customer_id,
            &setup_intent,
        )
        .await
    })
    .await
    {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    match outcome {
        Ok(_) => {
            let _ = ctx.session.remove_value(CARD_SETUP_KEY).await;
            ctx.back(next, Flash::notice(tr("card.saved"))).await
        }
        Err(CardError::NotConfirmed) => {
            flash.alert = Some(tr("card.not_confirmed"));
            ctx.back("/billing/card", flash).await
        }
        Err(CardError::Db(error)) => failure(&error.to_string()),
        Err(other) => {
            let error = PaymentError::from(other);
            flash.alert = Some(tr(error.message_key()));
            ctx.back("/billing/card", flash).await
        }
    }
}

/// "Add a card": makes the Stripe customer (once) and a SetupIntent (or reuses the open one),
/// keeps its client secret in the session and sends the browser to the card page, which
/// mounts Stripe's field with it.
pub async fn start_card_setup(ctx: FormContext, Form(fields): Form<CardFields>) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let back = card_page_path(&fields.next);
    let email = account.email.clone().unwrap_or_default();
    let secret = match cards::begin(
        &ctx.state.portal,
        customer_id,
        &email,
        &account.display_name,
    )
    .await
    {
        Ok(secret) => secret,
        Err(CardError::Db(error)) => return failure(&error.to_string()),
        Err(other) => {
            let error = PaymentError::from(other);
            tracing::warn!(%error, "could not start a card setup");
            let mut flash = Flash::for_form("card");
            flash.alert = Some(tr(error.message_key()));
            return ctx.back(&back, flash).await;
        }
    };
    let setup = CardSetup {
        client_secret: secret,
        at: ctx.now(),
    };
    if let Err(error) = ctx.session.insert(CARD_SETUP_KEY, setup).await {
        return failure(&error.to_string());
    }
    see_other(&back)
}

/// The card page, keeping where to go once the card is saved.
fn card_page_path(next: &str) -> String {
    match return_path(next, "") {
        "" => "/billing/card".to_string(),
        next => format!("/billing/card?next={next}"),
    }
}

pub async fn remove_card(ctx: FormContext) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let mut flash = Flash::for_form("card");
    match cards::remove(
        &ctx.state.portal,
        &ctx.meta,
        Actor::User(account.user_id),
        customer_id,
    )
    .await
    {
        Ok(RemoveOutcome::Removed | RemoveOutcome::NoCard) => {
            flash.notice = Some(tr("card.removed"))
        }
        Ok(RemoveOutcome::InUse) => flash.alert = Some(tr("card.cannot_remove")),
        Err(CardError::Db(error)) => return failure(&error.to_string()),
        Err(other) => flash.alert = Some(tr(PaymentError::from(other).message_key())),
    }
    ctx.back("/billing/card", flash).await
}

/// A customer without JavaScript asks to pay by bank transfer; staff act on the audit entry.
pub async fn request_manual_billing(ctx: FormContext) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    let recorded =
        manual::request_manual(portal, &ctx.meta, Actor::User(account.user_id), customer_id);
    if let Err(error) = recorded.await {
        return failure(&error.to_string());
    }
    ctx.back("/billing/card", Flash::notice(tr("card.manual_requested")))
        .await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct OrderFields {
    plan: String,
    interval: String,
    region: String,
    name: String,
    currency: String,
}

pub async fn order(ctx: FormContext, Form(fields): Form<OrderFields>) -> Response {
    let (account, _) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let form = OrderForm {
        plan: fields.plan,
        interval: fields.interval,
        region: fields.region,
        name: fields.name,
        currency: fields.currency,
    };
    let mut flash = Flash::for_form("order");
    let keep = |flash: &mut Flash| {
        for (field, value) in [
            ("plan", &form.plan),
            ("interval", &form.interval),
            ("region", &form.region),
            ("name", &form.name),
            ("currency", &form.currency),
        ] {
            flash.values.insert(field.into(), value.clone());
        }
    };
    let placed = match subscriptions::place(&ctx.state.portal, &ctx.meta, &account, &form).await {
        Ok(Ok(placed)) => placed,
        Ok(Err(refusal)) => {
            match refusal {
                OrderRefusal::Fields(problems) => {
                    for (field, key) in problems {
                        flash.errors.insert(field.into(), tr(key));
                    }
                }
                OrderRefusal::EmailNotVerified => flash.alert = Some(tr("order.refused_email")),
                OrderRefusal::NoBillingDetails => flash.alert = Some(tr("order.refused_billing")),
                OrderRefusal::NoCard => flash.alert = Some(tr("order.refused_card")),
                OrderRefusal::Tax(reason) => {
                    tracing::warn!(%reason, "no tax decision for an order");
                    flash.alert = Some(tr("order.refused_tax"));
                }
            }
            keep(&mut flash);
            return ctx.back("/order", flash).await;
        }
        Err(error) => return failure(&error.to_string()),
    };
    let name = subscriptions::get(
        &ctx.state.portal.db,
        account.customer_id.unwrap_or_default(),
        placed.subscription_id,
    )
    .await
    .ok()
    .flatten();
    let Some(subscription) = name else {
        return failure("the order just placed is missing");
    };
    if placed.payment.is_ok() && subscription.payment_action_invoice.is_some() {
        // The first payment waits for the customer: Stripe.js confirms it (3-D Secure).
        let customer_id = account.customer_id.unwrap_or_default();
        return super::payments::confirm_now(&ctx, customer_id, placed.subscription_id).await;
    }
    let message = match (&placed.payment, subscription.method, subscription.status) {
        (Err(error), _, _) => {
            // The order is kept (its name stays reserved); the dashboard says the payment failed.
            let mut flash = Flash::for_form("dashboard");
            flash.alert = Some(tr(error.message_key()));
            return ctx.back("/dashboard", flash).await;
        }
        (Ok(()), Method::Manual, _) => "order.placed_manual",
        (Ok(()), _, SubscriptionStatus::Pending) => "order.placed_pending",
        (Ok(()), _, SubscriptionStatus::Trialing) => "order.placed_trial",
        (Ok(()), _, _) => "order.placed",
    };
    let text = tr(message).replace("%{name}", &subscription.server_name);
    ctx.back("/dashboard", Flash::notice(text)).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct PlanFields {
    plan: String,
}

/// The customer's subscription id from the path; another customer's id is "not found".
fn subscription_id(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id).ok()
}

async fn change_answer(
    ctx: &FormContext,
    (customer_id, sub): (uuid::Uuid, uuid::Uuid),
    outcome: Result<Result<domain::billing::stripe::SubscriptionState, ChangeRefusal>, ChangeError>,
    done: &str,
) -> Response {
    let back = format!("/homeservers/{sub}");
    match outcome {
        Ok(Ok(_)) => {
            let _ = ctx.session.remove_value(PLAN_PREVIEW_KEY).await;
            ctx.back(&back, Flash::notice(tr(done))).await
        }
        Ok(Err(ChangeRefusal::PaymentNeedsConfirmation)) => {
            let _ = ctx.session.remove_value(PLAN_PREVIEW_KEY).await;
            super::payments::confirm_now(ctx, customer_id, sub).await
        }
        Ok(Err(ChangeRefusal::NotFound)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(refusal)) => {
            let mut flash = Flash::for_form("manage");
            flash.alert = Some(tr(refusal.message_key()));
            ctx.back(&back, flash).await
        }
        Err(ChangeError::Db(error)) => failure(&error.to_string()),
        Err(ChangeError::Payment(error)) => {
            let mut flash = Flash::for_form("manage");
            flash.alert = Some(tr(error.message_key()));
            ctx.back(&back, flash).await
        }
    }
}

/// "See the price": asks Stripe what moving to `plan` invoices now and leaves the answer in
/// the session for the homeserver page.
pub async fn preview_plan(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<PlanFields>,
) -> Response {
    let (_, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some(sub) = subscription_id(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let back = format!("/homeservers/{id}");
    let mut flash = Flash::for_form("manage");
    match changes::preview(&ctx.state.portal, customer_id, sub, &fields.plan).await {
        Ok(Ok(preview)) => {
            let entry = PlanPreview {
                subscription: id.clone(),
                plan: fields.plan.clone(),
                amount: format(preview.amount_due, &preview.currency, Locale::En),
                at: ctx.now(),
            };
            if let Err(error) = ctx.session.insert(PLAN_PREVIEW_KEY, entry).await {
                return failure(&error.to_string());
            }
            return see_other(&back);
        }
        Ok(Err(ChangeRefusal::NotFound)) => return StatusCode::NOT_FOUND.into_response(),
        Ok(Err(refusal)) => flash.alert = Some(tr(refusal.message_key())),
        Err(ChangeError::Db(error)) => return failure(&error.to_string()),
        Err(ChangeError::Payment(error)) => {
            tracing::warn!(%error, "no preview of a plan change");
            flash.alert = Some(tr(error.message_key()));
        }
    }
    ctx.back(&back, flash).await
}

pub async fn change_plan(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<PlanFields>,
) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some(sub) = subscription_id(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (portal, meta, plan) = (ctx.state.portal.clone(), ctx.meta.clone(), fields.plan);
    let outcome = match outliving_the_request(async move {
        changes::change_plan(
            &portal,
            &meta,
            Actor::User(account.user_id),
            customer_id,
            sub,
            &plan,
        )
        .await
    })
    .await
    {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    change_answer(&ctx, (customer_id, sub), outcome, "manage.changed").await
}

async fn set_cancel(ctx: FormContext, id: String, cancel: bool) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some(sub) = subscription_id(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (portal, meta) = (ctx.state.portal.clone(), ctx.meta.clone());
    let outcome = match outliving_the_request(async move {
        changes::set_cancel_at_period_end(
            &portal,
            &meta,
            Actor::User(account.user_id),
            customer_id,
            sub,
            cancel,
        )
        .await
    })
    .await
    {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    let done = if cancel {
        "manage.canceled"
    } else {
        "manage.resumed"
    };
    change_answer(&ctx, (customer_id, sub), outcome, done).await
}

pub async fn cancel(ctx: FormContext, Path(id): Path<String>) -> Response {
    set_cancel(ctx, id, true).await
}

pub async fn resume(ctx: FormContext, Path(id): Path<String>) -> Response {
    set_cancel(ctx, id, false).await
}
