//! The payment-confirmation page: the second page that loads Stripe.js (it gets the card page's
//! CSP from the server). Stripe.js `confirmCardPayment` runs the bank's check (3-D Secure) for
//! a payment that waits for the customer; the page then posts back, and the portal reads the
//! outcome from Stripe, not from the browser.

use crate::{
    components::form::FlashMessages,
    i18n::tr,
    server_fns::{
        account::take_flash,
        orders::{load_confirm_page, ConfirmPageView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

/// Confirms the PaymentIntent with Stripe.js when the customer asks, then posts the form.
/// Runs only on this page.
const CONFIRM_SCRIPT: &str = r#"
(function () {
  var form = document.getElementById('confirm-form');
  if (!form || typeof Stripe !== 'function') { return; }
  var stripe = Stripe(form.dataset.publishableKey);
  var errors = document.getElementById('confirm-errors');
  var button = form.querySelector('button[type=submit]');
  document.getElementById('confirm-no-script').hidden = true;
  form.hidden = false;
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    button.disabled = true;
    errors.textContent = '';
    var data = form.dataset.paymentMethod ? { payment_method: form.dataset.paymentMethod } : {};
    stripe.confirmCardPayment(form.dataset.clientSecret, data).then(function (result) {
      if (result.error) {
        errors.textContent = result.error.message || form.dataset.failed;
        button.disabled = false;
        return;
      }
      form.submit();
    });
  });
})();
"#;

#[component]
pub fn ConfirmPaymentPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(|| (), |_| load_confirm_page());
    view! {
        <Title text=tr("payment.confirm_title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href="/dashboard">{tr("dashboard.back")}</a></p>
            <h1>{tr("payment.confirm_title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! {
                            <FlashMessages flash=flash.clone() form="confirm"/>
                            <ConfirmBody view/>
                        }.into_any(),
                        Err(_) => view! {
                            <p class="alert" role="alert">{tr("account.sign_in_needed")}" "
                                <a href="/sign-in">{tr("signin.title")}</a></p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn ConfirmBody(view: ConfirmPageView) -> impl IntoView {
    if view.client_secret.is_empty() {
        return view! {
            <p>{tr("payment.confirm_nothing")}</p>
            <p><a class="button" href="/dashboard">{tr("dashboard.back")}</a></p>
        }
        .into_any();
    }
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    view! {
        <section class="card" aria-labelledby="confirm-heading">
            <h2 id="confirm-heading">{view.server_name.clone()}</h2>
            <p>{tr("payment.confirm_intro")
                .replace("%{amount}", &view.amount)
                .replace("%{server}", &view.server_name)}</p>
            <p id="confirm-no-script" class="notice">{tr("payment.confirm_needs_javascript")}</p>
            <form id="confirm-form" class="form" method="post" hidden=true
                action=format!("/billing/confirm-payment/{}", view.subscription)
                data-publishable-key=view.publishable_key.clone()
                data-client-secret=view.client_secret.clone()
                data-payment-method=view.payment_method.clone()
                data-failed=tr("payment.failed")>
                <p id="confirm-errors" class="field-error" role="alert"></p>
                <p class="hint">{tr("payment.confirm_stripe_note")}</p>
                <button class="button primary" type="submit">{tr("payment.confirm_button")}</button>
            </form>
        </section>
        <script src=view.js_url.clone() nonce=nonce.clone()></script>
        <script nonce=nonce inner_html=CONFIRM_SCRIPT></script>
    }
    .into_any()
}
