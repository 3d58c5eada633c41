//! The pricing table with its monthly / annual switch: the landing page's one island, the only
//! part of the page that runs in the browser. The switch is made of plain links, so it works
//! without JavaScript (a full page load of `?billing=annual`); once the island is hydrated a
//! click changes the prices in place and updates the address.

use crate::{
    i18n::{tr, tr_count},
    server_fns::plans::PlanCard,
};
use leptos::prelude::*;

#[island]
pub fn Pricing(plans: Vec<PlanCard>, annual: bool) -> impl IntoView {
    let annual = RwSignal::new(annual);
    let current = move |is_annual: bool| (annual.get() == is_annual).then_some("true");
    let choose = move |is_annual: bool| {
        move |event: leptos::ev::MouseEvent| {
            event.prevent_default();
            annual.set(is_annual);
            show_in_address_bar(is_annual);
        }
    };
    view! {
        <div class="price-switch" role="group" aria-label=tr("landing.billing_label")>
            <a href="?billing=monthly#pricing" aria-current=move || current(false) data-interval="monthly"
                on:click=choose(false)>
                {tr("landing.monthly")}
            </a>
            <a href="?billing=annual#pricing" aria-current=move || current(true) data-interval="annual"
                on:click=choose(true)>
                {tr("landing.annual")}
                <span class="saving">{tr("landing.annual_saving")}</span>
            </a>
        </div>
        <ul class="plan-grid">
            {plans.into_iter().map(|plan| view! { <PlanItem plan annual=annual.into()/> }).collect_view()}
        </ul>
    }
}

/// Keeps the address shareable: `?billing=annual` shows annual prices when opened.
fn show_in_address_bar(annual: bool) {
    #[cfg(feature = "hydrate")]
    {
        let url = if annual {
            "?billing=annual#pricing"
        } else {
            "?billing=monthly#pricing"
        };
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = annual;
}

#[component]
fn PlanItem(plan: PlanCard, annual: Signal<bool>) -> impl IntoView {
    let monthly_price = plan.monthly_price.clone();
    let annual_price = plan.annual_price.clone();
    let price = move || {
        if annual.get() {
            annual_price.clone()
        } else {
            monthly_price.clone()
        }
    };
    let period = move || {
        tr(if annual.get() {
            "landing.per_year"
        } else {
            "landing.per_month"
        })
    };
    let heading_id = format!("plan-{}", plan.id);
    let labelled_by = heading_id.clone();
    view! {
        <li class="plan" class:highlighted=plan.highlighted aria-labelledby=labelled_by data-plan=plan.id.clone()>
            {plan.highlighted.then(|| view! { <p class="badge">{tr("landing.popular")}</p> })}
            <h3 id=heading_id>{plan.name.clone()}</h3>
            <p class="plan-description">{plan.description.clone()}</p>
            <p class="price">
                <span class="amount" data-testid="price">{price}</span>
                " "
                <span class="period">{period}</span>
            </p>
            <ul class="limits">
                <li>{tr_count("landing.users", plan.monthly_active_users)}</li>
                <li>{tr_count("landing.storage", plan.storage_gb)}</li>
                {(plan.bridges > 0).then(|| view! { <li>{tr_count("landing.bridges", plan.bridges)}</li> })}
                {plan.features.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}
            </ul>
            {plan.trial_days.map(|days| view! {
                <p class="trial">{tr("landing.trial").replace("%{days}", &days.to_string())}</p>
            })}
        </li>
    }
}
