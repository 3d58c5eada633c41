//! One homeserver's subscription: its state, a plan change with Stripe's preview of what is
//! invoiced now, and cancelling at the end of the period or resuming before it.

use crate::{
    components::{form::FlashMessages, host_watch::HostWatch},
    i18n::tr,
    server_fns::{
        account::take_flash,
        orders::{load_manage, HostView, ManageView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;

#[component]
pub fn HomeserverPage() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id").unwrap_or_default());
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(move || id.clone(), load_manage);
    view! {
        <Title text=tr("manage.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href="/dashboard">{tr("dashboard.back")}</a></p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! {
                            <FlashMessages flash=flash.clone()/>
                            <Manage view/>
                        }.into_any(),
                        Err(_) => view! {
                            <h1>{tr("manage.title")}</h1>
                            <p class="alert" role="alert">{tr("change.not_found")}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The homeserver itself: state and steps (while it is being set up, the page reloads itself
/// when the state changes, or offers "Refresh" without JavaScript), server name, URL, health,
/// and the first admin's password to reveal.
#[component]
fn Host(host: HostView, base: String, subscription: String) -> impl IntoView {
    let settling = host.steps.iter().any(|(_, mark)| mark == "current")
        && !host.state_key.ends_with("waiting_for_payment");
    view! {
        <section class="card host" aria-labelledby="host-title">
            {settling.then(|| view! { <HostWatch subscription=subscription.clone() state_key=host.state_key.clone()/> })}
            <h2 id="host-title">{tr("homeserver.title")}</h2>
            <dl class="facts">
                <dt>{tr("homeserver.col_state")}</dt>
                <dd class="host-state">{tr(&host.state_key)}</dd>
                <dt>{tr("homeserver.col_server_name")}</dt>
                <dd class="server-name">{host.server_name.clone()}</dd>
                {host.url.clone().map(|url| view! {
                    <dt>{tr("homeserver.col_url")}</dt>
                    <dd class="homeserver-url"><code>{url}</code></dd>
                })}
                {host.version.clone().map(|version| view! {
                    <dt>{tr("homeserver.col_version")}</dt>
                    <dd class="version">{version}</dd>
                })}
                {host.url.is_some().then(|| {
                    let health = match (&host.down_since, &host.last_check) {
                        (Some(since), _) => tr("homeserver.down_since").replace("%{time}", since),
                        (None, Some(at)) => tr("homeserver.healthy_since_check").replace("%{time}", at),
                        (None, None) => tr("homeserver.not_checked"),
                    };
                    view! {
                        <dt>{tr("homeserver.col_health")}</dt>
                        <dd class="health">{health}</dd>
                        <dt>{tr("homeserver.col_uptime")}</dt>
                        <dd class="uptime">{host.uptime.clone().unwrap_or_else(|| "—".to_string())}</dd>
                    }
                })}
                {host.admin_user.clone().filter(|_| host.url.is_some()).map(|user| view! {
                    <dt>{tr("homeserver.col_admin")}</dt>
                    <dd class="admin-user"><code>{format!("@{user}:{}", host.server_name)}</code></dd>
                })}
            </dl>
            {settling.then(|| view! {
                <ol class="steps" aria-label=tr("homeserver.steps_label")>
                    {host.steps.iter().map(|(key, mark)| {
                        let current = (mark == "current").then_some("step");
                        view! { <li class=format!("step-{mark}") aria-current=current>{tr(key)}</li> }
                    }).collect_view()}
                </ol>
                <p><a href="">{tr("homeserver.refresh")}</a></p>
            })}
            {host.retrying.then(|| view! { <p class="alert retrying">{tr("homeserver.retrying")}</p> })}
            {(host.state_key == "homeserver.state_running").then(|| view! {
                <p class="host-links">
                    <a class="button" href=format!("{base}/settings")>{tr("homeserver.settings_link")}</a>
                    " "
                    <a class="button" href=format!("{base}/users")>{tr("homeserver.users_link")}</a>
                </p>
            })}
            <Backups host=host.clone() base=base.clone()/>
            {host.password_to_reveal.then(|| view! {
                <h3>{tr("homeserver.password_title")}</h3>
                <p>{tr("homeserver.password_note")}</p>
                <form method="post" action=format!("{base}/reveal-password")>
                    <button class="button primary" type="submit">{tr("homeserver.reveal")}</button>
                </form>
            })}
        </section>
    }
}

/// The homeserver's backups, each with "Restore" (behind a confirmation box).
#[component]
fn Backups(host: HostView, base: String) -> impl IntoView {
    let running = host.state_key == "homeserver.state_running";
    (host.url.is_some() || !host.backups.is_empty()).then(|| view! {
        <h3 id="backups-title">{tr("backups.title")}</h3>
        <p>{tr("backups.intro")}</p>
        {if host.backups.is_empty() {
            view! { <p class="backups-empty">{tr("backups.none")}</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll"><table class="admin-table backups" aria-labelledby="backups-title">
                    <thead><tr>
                        <th scope="col">{tr("backups.col_made")}</th>
                        <th scope="col">{tr("backups.col_size")}</th>
                        <th scope="col">{tr("backups.col_state")}</th>
                        <th scope="col">{tr("backups.col_actions")}</th>
                    </tr></thead>
                    <tbody>
                        {host.backups.iter().map(|backup| {
                            let confirm = format!("restore-{}", backup.id);
                            view! {
                                <tr>
                                    <td>{backup.created.clone()}</td>
                                    <td>{backup.size.clone().unwrap_or_default()}</td>
                                    <td>{tr(&backup.state_key)}</td>
                                    <td>
                                        {(running && backup.restorable).then(|| view! {
                                            <form method="post" action=format!("{base}/backups/restore") class="inline-confirm">
                                                <input type="hidden" name="backup" value=backup.id.clone()/>
                                                <input type="checkbox" name="confirm" id=confirm.clone() value="yes" required=true/>
                                                <label for=confirm>{tr("backups.confirm")}</label>
                                                <button class="button small" type="submit"
                                                    aria-label=tr("backups.restore_label").replace("%{time}", &backup.created)>
                                                    {tr("backups.restore")}
                                                </button>
                                            </form>
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table></div>
            }.into_any()
        }}
    })
}

#[component]
fn Manage(view: ManageView) -> impl IntoView {
    let row = view.row.clone();
    let base = format!("/homeservers/{}", row.id);
    let next = match (&row.next_payment, row.cancel_at_period_end) {
        (_, true) => tr("dashboard.ends_at_period_end"),
        (Some(date), false) => date.clone(),
        (None, false) => "—".to_string(),
    };
    let host = view.host.clone();
    view! {
        <h1>{row.server_name.clone()}</h1>
        <Host host base=base.clone() subscription=row.id.clone()/>
        <dl class="facts">
            <dt>{tr("dashboard.col_plan")}</dt>
            <dd class="plan">{row.plan.clone()}" · "{tr(&format!("order.interval_{}", row.interval))}</dd>
            <dt>{tr("dashboard.col_region")}</dt>
            <dd>{row.region.clone()}</dd>
            <dt>{tr("dashboard.col_status")}</dt>
            <dd class="status">{tr(&row.status_key)}</dd>
            <dt>{tr("dashboard.col_next_payment")}</dt>
            <dd class="next-payment">{next}</dd>
        </dl>
        {view.changeable.then(|| {
            let preview = view.preview.clone();
            view! {
                <section class="card" aria-labelledby="change-plan">
                    <h2 id="change-plan">{tr("manage.change_plan")}</h2>
                    <form method="post" action=format!("{base}/preview") class="form">
                        <fieldset class="field">
                            <legend>{tr("manage.new_plan")}</legend>
                            {view.plans.iter().map(|p| {
                                let id = format!("plan-{}", p.id);
                                let checked = preview.as_ref().is_some_and(|(plan, _)| *plan == p.id);
                                view! {
                                    <div class="choice">
                                        <input type="radio" name="plan" id=id.clone() value=p.id.clone() checked=checked required=true/>
                                        <label for=id><strong>{p.name.clone()}</strong>" · "{p.monthly.clone()}</label>
                                    </div>
                                }
                            }).collect_view()}
                        </fieldset>
                        <button class="button" type="submit">{tr("manage.preview")}</button>
                    </form>
                    {preview.map(|(plan, amount)| view! {
                        <form method="post" action=format!("{base}/plan") class="form">
                            <input type="hidden" name="plan" value=plan/>
                            <p class="preview">{tr("manage.preview_amount").replace("%{amount}", &amount)}</p>
                            <button class="button primary" type="submit">{tr("manage.confirm_change")}</button>
                        </form>
                    })}
                </section>
                <section class="card" aria-labelledby="end-subscription">
                    <h2 id="end-subscription">{tr("manage.end_title")}</h2>
                    {if row.cancel_at_period_end {
                        view! {
                            <p>{tr("manage.ends_note")}</p>
                            <form method="post" action=format!("{base}/resume")>
                                <button class="button primary" type="submit">{tr("manage.resume")}</button>
                            </form>
                        }.into_any()
                    } else {
                        view! {
                            <p>{tr("manage.cancel_note")}</p>
                            <form method="post" action=format!("{base}/cancel")>
                                <button class="button" type="submit">{tr("manage.cancel")}</button>
                            </form>
                        }.into_any()
                    }}
                </section>
            }
        })}
    }
}
