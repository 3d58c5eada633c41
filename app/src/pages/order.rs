//! Ordering a homeserver: plan, monthly or annual, region (fixed for its life) and name.

use crate::{
    components::form::{Field, FlashMessages},
    forms::Flash,
    i18n::tr,
    pages::card::brand_name,
    server_fns::{
        account::take_flash,
        orders::{load_order_page, OrderPageView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

#[component]
pub fn OrderPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(|| (), |_| load_order_page());
    view! {
        <Title text=tr("order.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href="/dashboard">{tr("dashboard.back")}</a></p>
            <h1>{tr("order.title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! { <OrderForm view flash/> }.into_any(),
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
fn OrderForm(view: OrderPageView, flash: Flash) -> impl IntoView {
    let entered = |field: &str, default: &str| {
        let v = flash.value("order", field);
        if v.is_empty() {
            default.to_string()
        } else {
            v
        }
    };
    let chosen_plan = entered("plan", "");
    let chosen_interval = entered("interval", "monthly");
    let chosen_region = entered("region", "");
    let chosen_currency = entered("currency", &view.currency);
    let missing: Vec<AnyView> = [
        (!view.email_verified).then(|| view! {
            <li>{tr("order.needs_verified_email")}" "<a href="/account">{tr("order.go_account")}</a></li>
        }.into_any()),
        (!view.has_billing_details).then(|| view! {
            <li>{tr("order.needs_billing_details")}" "<a href="/billing">{tr("order.go_billing")}</a></li>
        }.into_any()),
        (view.by_card && view.card.is_none()).then(|| view! {
            <li>{tr("order.needs_card")}" "<a href="/billing/card?next=/order" rel="external">{tr("order.go_card")}</a></li>
        }.into_any()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let ready = missing.is_empty();
    let error = |field: &str| flash.error("order", field);
    let plan_error = error("plan");
    let region_error = error("region");
    let currency_error = error("currency");
    let (plan_invalid, region_invalid, currency_invalid) = (
        plan_error.is_some(),
        region_error.is_some(),
        currency_error.is_some(),
    );
    view! {
        <FlashMessages flash=flash.clone() form="order"/>
        {(!ready).then(|| view! {
            <section class="card" aria-labelledby="before-ordering">
                <h2 id="before-ordering">{tr("order.before")}</h2>
                <ul>{missing}</ul>
            </section>
        })}
        <form method="post" action="/order" class="card form" novalidate>
            <fieldset class="field" class:has-error=plan_invalid>
                <legend>{tr("order.plan")}</legend>
                {view.plans.iter().map(|p| {
                    let id = format!("plan-{}", p.id);
                    let price = tr("order.plan_price")
                        .replace("%{monthly}", &p.monthly)
                        .replace("%{annual}", &p.annual);
                    let trial = p.trial_days.map(|d| tr("order.trial").replace("%{days}", &d.to_string()));
                    view! {
                        <div class="choice">
                            <input type="radio" name="plan" id=id.clone() value=p.id.clone()
                                checked=p.id == chosen_plan required=true/>
                            <label for=id>
                                <strong>{p.name.clone()}</strong>" · "{price}
                                {trial.map(|t| view! { " · "<span>{t}</span> })}
                            </label>
                        </div>
                    }
                }).collect_view()}
                {plan_error.map(|e| view! { <p class="field-error">{e}</p> })}
            </fieldset>
            <fieldset class="field">
                <legend>{tr("order.interval")}</legend>
                {["monthly", "annual"].into_iter().map(|i| {
                    let id = format!("interval-{i}");
                    view! {
                        <div class="choice">
                            <input type="radio" name="interval" id=id.clone() value=i checked=i == chosen_interval/>
                            <label for=id>{tr(&format!("order.interval_{i}"))}</label>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            {if view.currency_fixed {
                view! {
                    <input type="hidden" name="currency" value=view.currency.clone()/>
                    <p class="hint">{tr("order.currency_fixed_note").replace("%{currency}", &view.currency.to_uppercase())}</p>
                }.into_any()
            } else {
                view! {
                    <div class="field" class:has-error=currency_invalid>
                        <label for="order-currency">{tr("order.currency")}</label>
                        <select id="order-currency" name="currency">
                            {view.currencies.iter().map(|c| view! {
                                <option value=c.clone() selected=*c == chosen_currency>{c.to_uppercase()}</option>
                            }).collect_view()}
                        </select>
                        <p class="hint">{tr("order.currency_hint")}</p>
                        {currency_error.map(|e| view! { <p class="field-error">{e}</p> })}
                    </div>
                }.into_any()
            }}
            <div class="field" class:has-error=region_invalid>
                <label for="order-region">{tr("order.region")}</label>
                <select id="order-region" name="region" required=true
                    aria-describedby="order-region-hint">
                    <option value="" selected=chosen_region.is_empty()>{tr("order.choose_region")}</option>
                    {view.regions.iter().map(|(id, label)| view! {
                        <option value=id.clone() selected=*id == chosen_region>{label.clone()}</option>
                    }).collect_view()}
                </select>
                <p class="hint" id="order-region-hint">{tr("order.region_hint")}
                    {view.regions_local.then(|| view! { " "{tr("order.regions_local")} })}
                </p>
                {region_error.map(|e| view! { <p class="field-error">{e}</p> })}
            </div>
            <Field flash=flash.clone() form="order" name="name" label=tr("order.name")
                hint=tr("order.name_hint") value=flash.value("order", "name")/>
            {view.card.clone().map(|c| view! {
                <p class="hint">{tr("order.charged_to")
                    .replace("%{brand}", &brand_name(&c.brand))
                    .replace("%{last4}", &c.last4)}</p>
            })}
            {(!view.by_card).then(|| view! { <p class="hint">{tr("order.manual_note")}</p> })}
            <button class="button primary" type="submit" disabled=!ready>{tr("order.submit")}</button>
        </form>
    }
}
