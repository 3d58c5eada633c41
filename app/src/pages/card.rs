//! The card page: the one page that loads Stripe.js (it gets its own CSP from the server).
//! The card number goes from Stripe's field straight to Stripe; the page posts back only the
//! SetupIntent's id, and the server reads the card from Stripe.

use crate::{
    components::form::FlashMessages,
    i18n::tr,
    server_fns::{
        account::take_flash,
        orders::{load_card_page, CardPageView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

/// Mounts Stripe's Card Element and confirms the SetupIntent (`confirmCardSetup`), then posts
/// the SetupIntent's id to the portal. Runs only on this page.
const CARD_SCRIPT: &str = r#"
(function () {
  var form = document.getElementById('card-form');
  if (!form || typeof Stripe !== 'function') { return; }
  var stripe = Stripe(form.dataset.publishableKey);
  var card = stripe.elements().create('card');
  card.mount('#card-element');
  var errors = document.getElementById('card-errors');
  var button = form.querySelector('button[type=submit]');
  document.getElementById('card-no-script').hidden = true;
  form.hidden = false;
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    button.disabled = true;
    errors.textContent = '';
    stripe.confirmCardSetup(form.dataset.clientSecret, {
      payment_method: { card: card, billing_details: { name: form.elements.cardholder.value } }
    }).then(function (result) {
      if (result.error) {
        errors.textContent = result.error.message || form.dataset.failed;
        button.disabled = false;
        return;
      }
      form.elements.setup_intent.value = result.setupIntent.id;
      form.submit();
    });
  });
})();
"#;

/// With JavaScript on, swaps the notice for the "Enter a card" button.
const START_SCRIPT: &str = "document.getElementById('card-no-script').hidden=true;\
document.getElementById('card-start').hidden=false;";

#[component]
pub fn CardPage() -> impl IntoView {
    let query = use_query_map();
    let next = query.with_untracked(|q| q.get("next").unwrap_or_default());
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(move || next.clone(), load_card_page);
    view! {
        <Title text=tr("card.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href="/billing">{tr("card.back")}</a></p>
            <h1>{tr("card.title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! {
                            <FlashMessages flash=flash.clone() form="card"/>
                            <CardBody view/>
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
fn CardBody(view: CardPageView) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let current = view.card.clone().map(|card| {
        view! {
            <section class="card" aria-labelledby="current-card">
                <h2 id="current-card">{tr("card.current")}</h2>
                <p class="card-summary">
                    {tr("card.summary")
                        .replace("%{brand}", &brand_name(&card.brand))
                        .replace("%{last4}", &card.last4)
                        .replace("%{expires}", &card.expires)}
                </p>
                <form method="post" action="/billing/card/remove">
                    <button class="button" type="submit">{tr("card.remove")}</button>
                </form>
            </section>
        }
    });
    if !view.by_card {
        return view! {
            {current}
            <p>{tr("card.manual_billing")}</p>
        }
        .into_any();
    }
    let heading = if view.card.is_some() {
        tr("card.replace")
    } else {
        tr("card.add")
    };
    if view.client_secret.is_empty() {
        // Step one: "Enter a card" POSTs and starts the card entry at Stripe (loading this page
        // creates nothing there). Without JavaScript the card field cannot work, so the button
        // stays hidden and the page offers invoices by bank transfer.
        return view! {
            {current}
            <section class="card" aria-labelledby="card-entry">
                <h2 id="card-entry">{heading}</h2>
                <NoScriptNotice/>
                <form id="card-start" class="form" method="post" action="/billing/card/setup" hidden=true>
                    <input type="hidden" name="next" value=view.next.clone()/>
                    <p class="hint">{tr("card.start_hint")}</p>
                    <button class="button primary" type="submit">{tr("card.start")}</button>
                </form>
            </section>
            <script nonce=nonce inner_html=START_SCRIPT></script>
        }
        .into_any();
    }
    view! {
        {current}
        <section class="card" aria-labelledby="card-entry">
            <h2 id="card-entry">{heading}</h2>
            <NoScriptNotice/>
            <form id="card-form" class="form" method="post" action="/billing/card" hidden=true
                data-publishable-key=view.publishable_key.clone()
                data-client-secret=view.client_secret.clone()
                data-failed=tr("payment.failed")>
                <input type="hidden" name="setup_intent" value=""/>
                <input type="hidden" name="next" value=view.next.clone()/>
                <div class="field">
                    <label for="cardholder">{tr("card.cardholder")}</label>
                    <input id="cardholder" name="cardholder" type="text" autocomplete="cc-name"/>
                </div>
                <div class="field">
                    <label for="card-element">{tr("card.number")}</label>
                    <div id="card-element" class="card-element"></div>
                    <p id="card-errors" class="field-error" role="alert"></p>
                </div>
                <p class="hint">{tr("card.stripe_note")}</p>
                <button class="button primary" type="submit">{tr("card.save")}</button>
            </form>
        </section>
        <script src=view.js_url.clone() nonce=nonce.clone()></script>
        <script nonce=nonce inner_html=CARD_SCRIPT></script>
    }
    .into_any()
}

/// Shown until a script hides it: card entry needs JavaScript; invoices by bank transfer do not.
#[component]
fn NoScriptNotice() -> impl IntoView {
    view! {
        <div id="card-no-script">
            <p class="notice">{tr("card.needs_javascript")}</p>
            <form method="post" action="/billing/manual-request">
                <button class="button" type="submit">{tr("card.request_manual")}</button>
            </form>
        </div>
    }
}

/// "visa" → "Visa", as card brands are written.
pub fn brand_name(brand: &str) -> String {
    match brand {
        "amex" => "American Express".into(),
        "diners" => "Diners Club".into(),
        "jcb" => "JCB".into(),
        "unionpay" => "UnionPay".into(),
        "mastercard" => "Mastercard".into(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}
