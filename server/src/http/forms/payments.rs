//! Payments the customer confirms in the browser (3-D Secure): "Confirm the payment" asks
//! Stripe for the payment's client secret and opens the payment-confirmation page; that page's
//! form comes back here once Stripe.js is done, and the portal reads the outcome from Stripe.

use super::{failure, see_other, signed_in_customer, tr, FormContext};
use app::forms::{Flash, PaymentConfirmation, PAYMENT_CONFIRMATION_KEY};
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use domain::{
    billing::{
        cards,
        confirmation::{self, Begin, Outcome},
        subscriptions,
    },
    i18n::Locale,
    money::format,
};
use uuid::Uuid;

/// The dashboard, with an alert.
async fn dashboard_alert(ctx: &FormContext, key: &str) -> Response {
    let mut flash = Flash::for_form("dashboard");
    flash.alert = Some(tr(key));
    ctx.back("/dashboard", flash).await
}

/// Starts the confirmation of the payment that waits on `subscription` and answers with the
/// payment-confirmation page (or the dashboard, saying why there is nothing to confirm).
/// Used by "Confirm the payment", and by an order or a plan change whose payment waits.
pub async fn confirm_now(ctx: &FormContext, customer_id: Uuid, subscription: Uuid) -> Response {
    let portal = &ctx.state.portal;
    let payment = match confirmation::begin(portal, customer_id, subscription).await {
        Ok(Begin::Confirm(payment)) => payment,
        Ok(Begin::Nothing) => {
            return ctx
                .back(
                    "/dashboard",
                    Flash::notice(tr("payment.nothing_to_confirm")),
                )
                .await
        }
        Ok(Begin::Declined(_)) => return dashboard_alert(ctx, "payment.declined").await,
        Err(error) => {
            tracing::warn!(%error, "could not start a payment confirmation");
            return dashboard_alert(ctx, error.message_key()).await;
        }
    };
    let found = subscriptions::get(&portal.db, customer_id, subscription).await;
    let card = cards::load(&portal.db, customer_id).await;
    let (Ok(Some(sub)), Ok(card)) = (found, card) else {
        return failure("the subscription or card of a payment confirmation could not be read");
    };
    let entry = PaymentConfirmation {
        subscription: subscription.to_string(),
        server_name: sub.server_name,
        client_secret: payment.client_secret.unwrap_or_default(),
        payment_method: card.map(|c| c.payment_method_id).unwrap_or_default(),
        amount: format(payment.amount_due, &payment.currency, Locale::En),
        at: ctx.now(),
    };
    if let Err(error) = ctx.session.insert(PAYMENT_CONFIRMATION_KEY, entry).await {
        return failure(&error.to_string());
    }
    see_other("/billing/confirm-payment")
}

/// "Confirm the payment" on the dashboard.
pub async fn start_confirmation(ctx: FormContext, Path(id): Path<String>) -> Response {
    let (_, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Ok(subscription) = Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    confirm_now(&ctx, customer_id, subscription).await
}

/// The payment-confirmation page's form, sent once Stripe.js is done (whatever it said: the
/// outcome is read from Stripe).
pub async fn finish_confirmation(ctx: FormContext, Path(id): Path<String>) -> Response {
    let (_, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Ok(subscription) = Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let portal = &ctx.state.portal;
    let Ok(Some(sub)) = subscriptions::get(&portal.db, customer_id, subscription).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let outcome = confirmation::finish(portal, customer_id, subscription).await;
    let _ = ctx.session.remove_value(PAYMENT_CONFIRMATION_KEY).await;
    match outcome {
        Ok(Outcome::Paid) => {
            let text = tr("payment.confirmed").replace("%{server}", &sub.server_name);
            ctx.back("/dashboard", Flash::notice(text)).await
        }
        Ok(Outcome::NothingWaiting) => {
            ctx.back(
                "/dashboard",
                Flash::notice(tr("payment.nothing_to_confirm")),
            )
            .await
        }
        Ok(Outcome::StillWaiting) => dashboard_alert(&ctx, "payment.not_confirmed").await,
        Ok(Outcome::Declined(_)) => dashboard_alert(&ctx, "payment.declined").await,
        Err(error) => {
            tracing::warn!(%error, "could not read a confirmed payment");
            dashboard_alert(&ctx, error.message_key()).await
        }
    }
}
