use crate::{
    components::form::{Field, FlashMessages},
    forms::Flash,
    i18n::tr,
    server_fns::{
        account::take_flash,
        billing::{load_billing, BillingView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

/// Billing details (required before the first purchase) and the history of their changes.
#[component]
pub fn BillingPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(|| (), |_| load_billing());
    view! {
        <Title text=tr("billing.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href="/account">{tr("account.back")}</a></p>
            <h1>{tr("billing.title")}</h1>
            <p>{tr("billing.intro")}</p>
            <p><a href="/billing/invoices">{tr("invoice.history_link")}</a></p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(data) => view! { <BillingForm data flash/> }.into_any(),
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
fn BillingForm(data: BillingView, flash: Flash) -> impl IntoView {
    let value = |field: &str| data.values.get(field).cloned().unwrap_or_default();
    let entered = flash.value("billing", "country");
    let country = if entered.is_empty() {
        value("country")
    } else {
        entered
    };
    let country_error = flash.error("billing", "country");
    let has_country_error = country_error.is_some();
    let text = |name: &'static str,
                kind: &'static str,
                autocomplete: &'static str,
                required: bool| {
        view! {
            <Field flash=flash.clone() form="billing" name label=tr(&format!("billing.field_{name}"))
                kind autocomplete required value=value(name)/>
        }
    };
    view! {
        <FlashMessages flash=flash.clone() form="billing"/>
        <form method="post" action="/billing" class="card form" novalidate>
            {text("name", "text", "name", true)}
            {text("company", "text", "organization", false)}
            {text("address_line1", "text", "address-line1", true)}
            {text("address_line2", "text", "address-line2", false)}
            {text("postal_code", "text", "postal-code", true)}
            {text("city", "text", "address-level2", true)}
            <div class="field" class:has-error=has_country_error>
                <label for="billing-country">{tr("billing.field_country")}</label>
                <select id="billing-country" name="country" autocomplete="country" required=true
                    aria-invalid=country_error.as_ref().map(|_| "true")
                    aria-describedby=country_error.as_ref().map(|_| "billing-country-error")>
                    <option value="" selected=country.is_empty()>{tr("billing.choose_country")}</option>
                    {data.countries.iter().map(|(code, name)| view! {
                        <option value=code.clone() selected=*code == country>{name.clone()}</option>
                    }).collect_view()}
                </select>
                {country_error.map(|e| view! { <p class="field-error" id="billing-country-error">{e}</p> })}
            </div>
            {text("billing_email", "email", "email", true)}
            <Field flash=flash.clone() form="billing" name="vat_number" label=tr("billing.field_vat_number")
                autocomplete="off" required=false value=value("vat_number") hint=tr("billing.vat_hint")/>
            {data.vat_state.clone().map(|state| view! { <p class="hint vat-state" id="billing-vat-state">{state}</p> })}
            <button class="button primary" type="submit">{tr("billing.save")}</button>
        </form>
        {(!data.history.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="history-title">
                <h2 id="history-title">{tr("billing.history")}</h2>
                <div class="table-scroll">
                    <table class="sessions">
                        <thead><tr>
                            <th scope="col">{tr("billing.history_when")}</th>
                            <th scope="col">{tr("billing.history_who")}</th>
                            <th scope="col">{tr("billing.history_field")}</th>
                            <th scope="col">{tr("billing.history_old")}</th>
                            <th scope="col">{tr("billing.history_new")}</th>
                        </tr></thead>
                        <tbody>
                            {data.history.into_iter().map(|h| view! {
                                <tr>
                                    <td>{h.when}</td>
                                    <td>{tr(if h.by_staff { "billing.by_staff" } else { "billing.by_you" })}</td>
                                    <td>{h.field}</td>
                                    <td>{h.old_value}</td>
                                    <td>{h.new_value}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </section>
        })}
    }
}
