use crate::{
    components::price_switch::PriceSwitch,
    i18n::{tr, tr_count},
    server_fns::plans::{landing_plans, PlanCard},
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

#[component]
pub fn LandingPage() -> impl IntoView {
    let query = use_query_map();
    let annual = Signal::derive(move || query.read().get("billing").as_deref() == Some("annual"));
    let plans = Resource::new_blocking(|| (), |_| landing_plans());

    view! {
        <Title text=tr("landing.title")/>
        <Meta name="description" content=tr("site.tagline")/>
        <section class="hero">
            <div class="container">
                <h1>{tr("landing.hero_title")}</h1>
                <p class="lead">{tr("landing.hero_text")}</p>
                <p><a class="button primary" href="#pricing">{tr("landing.cta")}</a></p>
            </div>
        </section>
        <section class="points container" aria-label=tr("site.tagline")>
            <Point title="landing.point_region_title" text="landing.point_region_text"/>
            <Point title="landing.point_open_title" text="landing.point_open_text"/>
            <Point title="landing.point_managed_title" text="landing.point_managed_text"/>
        </section>
        <section id="pricing" class="pricing container" aria-labelledby="pricing-title">
            <h2 id="pricing-title">{tr("landing.pricing_title")}</h2>
            <PriceSwitch annual/>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match plans.await {
                        Ok(plans) => view! {
                            <ul class="plan-grid">
                                {plans.into_iter().map(|plan| view! { <PlanItem plan annual/> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(_) => view! { <p class="error">{tr("error.text")}</p> }.into_any(),
                    }
                })}
            </Suspense>
            <p class="fine-print">{tr("landing.prices_note")}</p>
        </section>
    }
}

#[component]
fn Point(title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <div class="point">
            <h2>{tr(title)}</h2>
            <p>{tr(text)}</p>
        </div>
    }
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
