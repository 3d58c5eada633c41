use crate::i18n::tr;
use leptos::prelude::*;

/// Monthly / annual switch. Plain links, so it works without JavaScript (a full page load of
/// `?billing=annual`); once hydrated the router handles the click and the prices change in place.
#[component]
pub fn PriceSwitch(annual: Signal<bool>) -> impl IntoView {
    let current = move |is_annual: bool| (annual.get() == is_annual).then_some("true");
    view! {
        <div class="price-switch" role="group" aria-label=tr("landing.billing_label")>
            <a href="?billing=monthly#pricing" aria-current=move || current(false) data-interval="monthly">
                {tr("landing.monthly")}
            </a>
            <a href="?billing=annual#pricing" aria-current=move || current(true) data-interval="annual">
                {tr("landing.annual")}
                <span class="saving">{tr("landing.annual_saving")}</span>
            </a>
        </div>
    }
}
