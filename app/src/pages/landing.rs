use crate::{components::price_switch::Pricing, i18n::tr, server_fns::plans::landing_plans};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

#[component]
pub fn LandingPage() -> impl IntoView {
    let query = use_query_map();
    let annual = query.read_untracked().get("billing").as_deref() == Some("annual");
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
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match plans.await {
                        Ok(plans) => view! { <Pricing plans annual/> }.into_any(),
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
