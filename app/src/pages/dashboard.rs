//! The customer's homeservers: per order the plan, region, status and next payment date.

use crate::{
    components::form::FlashMessages,
    i18n::tr,
    pages::card::brand_name,
    server_fns::{
        account::take_flash,
        orders::{load_dashboard, DashboardView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

#[component]
pub fn DashboardPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(|| (), |_| load_dashboard());
    view! {
        <Title text=tr("dashboard.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container account-page">
            <h1>{tr("dashboard.title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! {
                            <FlashMessages flash=flash.clone()/>
                            <Dashboard view/>
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
fn Dashboard(view: DashboardView) -> impl IntoView {
    let card = view.card.clone();
    view! {
        <p class="hint">{tr("dashboard.account_created").replace("%{date}", &view.account_created)}</p>
        <p><a class="button primary" href="/order">{tr("dashboard.order")}</a></p>
        {if view.rows.is_empty() {
            view! { <p>{tr("dashboard.empty")}</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="sessions homeservers">
                        <thead><tr>
                            <th scope="col">{tr("dashboard.col_name")}</th>
                            <th scope="col">{tr("dashboard.col_plan")}</th>
                            <th scope="col">{tr("dashboard.col_region")}</th>
                            <th scope="col">{tr("dashboard.col_status")}</th>
                            <th scope="col">{tr("dashboard.col_next_payment")}</th>
                            <th scope="col">{tr("dashboard.col_payment")}</th>
                        </tr></thead>
                        <tbody>
                            {view.rows.into_iter().map(|row| {
                                let payment = if row.by_card {
                                    card.as_ref().map(|c| tr("dashboard.card")
                                        .replace("%{brand}", &brand_name(&c.brand))
                                        .replace("%{last4}", &c.last4))
                                        .unwrap_or_default()
                                } else {
                                    tr("dashboard.bank_transfer")
                                };
                                let next = match (&row.next_payment, row.cancel_at_period_end) {
                                    (_, true) => tr("dashboard.ends_at_period_end"),
                                    (Some(date), false) => date.clone(),
                                    (None, false) => "—".to_string(),
                                };
                                view! {
                                    <tr data-subscription=row.id.clone()>
                                        <th scope="row"><a href=format!("/homeservers/{}", row.id)>{row.server_name.clone()}</a></th>
                                        <td>{row.plan.clone()}" · "{tr(&format!("order.interval_{}", row.interval))}</td>
                                        <td>{row.region.clone()}</td>
                                        <td class="status">{tr(&row.status_key)}
                                            {row.trial_end.clone().map(|d| view! {
                                                <br/><span class="hint">{tr("dashboard.trial_until").replace("%{date}", &d)}</span>
                                            })}
                                            {row.needs_confirmation.then(|| view! {
                                                <form method="post" action=format!("/billing/confirm-payment/{}/start", row.id)>
                                                    <button class="button small primary" type="submit">{tr("dashboard.confirm_payment")}</button>
                                                </form>
                                            })}
                                        </td>
                                        <td class="next-payment">{next}</td>
                                        <td class="payment">{payment}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
        <p><a href="/billing/card" rel="external">{tr("dashboard.manage_card")}</a></p>
    }
}
