//! A running homeserver's administration: its settings with the registration tokens, and its
//! users. Plain forms that post to the server (they work without JavaScript); generated
//! passwords are shown once, in the answer to the post.

use crate::{
    components::form::{Field, FlashMessages},
    forms::Flash,
    i18n::tr,
    server_fns::{
        account::take_flash,
        homeservers::{load_host_settings, load_host_users, HostSettingsView, HostUsersView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

/// The page frame both share: title, the way back, the flash, and the body once loaded.
#[component]
fn AdminFrame(title_key: &'static str, id: String, children: Children) -> impl IntoView {
    view! {
        <Title text=tr(title_key)/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href=format!("/homeservers/{id}")>{tr("homeserver.back")}</a></p>
            {children()}
        </section>
    }
}

#[component]
pub fn HomeserverSettingsPage() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id").unwrap_or_default());
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(
        {
            let id = id.clone();
            move || id.clone()
        },
        load_host_settings,
    );
    view! {
        <AdminFrame title_key="host_settings.title" id=id>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! {
                            <FlashMessages flash=flash.clone()/>
                            <Settings view=view.clone() flash=flash.clone()/>
                            <Tokens view flash/>
                        }.into_any(),
                        Err(_) => view! {
                            <h1>{tr("host_settings.title")}</h1>
                            <p class="alert" role="alert">{tr("change.not_found")}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

#[component]
fn Settings(view: HostSettingsView, flash: Flash) -> impl IntoView {
    let base = format!("/homeservers/{}", view.subscription);
    let error = flash.error("settings", "registration");
    let has_error = error.is_some();
    let choices = ["closed", "token", "open"].into_iter().map(|value| {
        let id = format!("registration-{value}");
        let checked = view.registration == value;
        view! {
            <div class="choice">
                <input type="radio" name="registration" id=id.clone() value=value checked=checked required=true/>
                <label for=id>
                    <strong>{tr(&format!("host_settings.registration_{value}"))}</strong>
                    " · "{tr(&format!("host_settings.registration_{value}_note"))}
                </label>
            </div>
        }
    }).collect_view();
    view! {
        <h1>{tr("host_settings.title")}</h1>
        <p class="server-name"><code>{view.server_name.clone()}</code>" · "{tr(&view.state_key)}</p>
        {view.applying.then(|| view! {
            <p class="notice applying" role="status">{tr("host_settings.applying")}</p>
        })}
        <section class="card" aria-labelledby="settings-title">
            <h2 id="settings-title">{tr("host_settings.section")}</h2>
            {if view.ended {
                view! { <p>{tr("host_settings.ended")}</p> }.into_any()
            } else {
                view! {
                    <form method="post" action=format!("{base}/settings") class="form">
                        <fieldset class="field" class:has-error=has_error>
                            <legend>{tr("host_settings.registration")}</legend>
                            {choices}
                            {error.map(|e| view! { <p class="field-error">{e}</p> })}
                        </fieldset>
                        <div class="choice">
                            <input type="checkbox" name="federation" id="federation" value="on" checked=view.federation/>
                            <label for="federation">
                                <strong>{tr("host_settings.federation")}</strong>" · "{tr("host_settings.federation_note")}
                            </label>
                        </div>
                        <div class="choice">
                            <input type="checkbox" name="guest_access" id="guest_access" value="on" checked=view.guest_access/>
                            <label for="guest_access">
                                <strong>{tr("host_settings.guest_access")}</strong>" · "{tr("host_settings.guest_access_note")}
                            </label>
                        </div>
                        <p class="hint">{tr("host_settings.restart_note")}</p>
                        <button class="button primary" type="submit">{tr("host_settings.save")}</button>
                    </form>
                }.into_any()
            }}
            <dl class="facts plan-limit">
                <dt>{tr("host_settings.mau_limit")}</dt>
                <dd class="mau-limit">{match view.max_monthly_active_users {
                    Some(limit) => tr("host_settings.mau_value").replace("%{limit}", &limit.to_string()),
                    None => "—".to_string(),
                }}</dd>
            </dl>
        </section>
    }
}

#[component]
fn Tokens(view: HostSettingsView, flash: Flash) -> impl IntoView {
    let base = format!("/homeservers/{}", view.subscription);
    view! {
        <section class="card" aria-labelledby="tokens-title">
            <h2 id="tokens-title">{tr("tokens.title")}</h2>
            <p>{tr("tokens.intro")}</p>
            {view.tokens_error.clone().map(|key| view! { <p class="alert">{tr(&key)}</p> })}
            {view.tokens.clone().map(|tokens| {
                if tokens.is_empty() {
                    view! { <p class="tokens-empty">{tr("tokens.none")}</p> }.into_any()
                } else {
                    view! {
                        <div class="table-scroll"><table class="admin-table tokens">
                            <thead><tr>
                                <th scope="col">{tr("tokens.col_token")}</th>
                                <th scope="col">{tr("tokens.col_used")}</th>
                                <th scope="col">{tr("tokens.col_expires")}</th>
                                <th scope="col">{tr("tokens.col_state")}</th>
                                <th scope="col"><span class="visually-hidden">{tr("tokens.col_actions")}</span></th>
                            </tr></thead>
                            <tbody>
                                {tokens.into_iter().map(|token| view! {
                                    <tr>
                                        <td><code class="token">{token.token.clone()}</code></td>
                                        <td>{token.used.clone()}</td>
                                        <td>{token.expires.clone().unwrap_or_else(|| tr("tokens.never"))}</td>
                                        <td>{if token.usable { tr("tokens.usable") } else { tr("tokens.spent") }}</td>
                                        <td>
                                            <form method="post" action=format!("{base}/registration-tokens/delete")>
                                                <input type="hidden" name="token" value=token.token.clone()/>
                                                <button class="button small" type="submit"
                                                    aria-label=tr("tokens.delete_label").replace("%{token}", &token.token)>
                                                    {tr("tokens.delete")}
                                                </button>
                                            </form>
                                        </td>
                                    </tr>
                                }.into_any()).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }
            })}
            {view.running.then(|| view! {
                <h3>{tr("tokens.create_title")}</h3>
                <form method="post" action=format!("{base}/registration-tokens") class="form">
                    <Field flash=flash.clone() form="token" name="uses" label=tr("tokens.uses")
                        hint=tr("tokens.uses_hint") kind="number" required=false/>
                    <Field flash=flash.clone() form="token" name="valid_until" label=tr("tokens.valid_until")
                        hint=tr("tokens.valid_until_hint") kind="date" required=false/>
                    <button class="button" type="submit">{tr("tokens.create")}</button>
                </form>
            }.into_any())}
        </section>
    }
}

#[component]
pub fn HomeserverUsersPage() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id").unwrap_or_default());
    let from = use_query_map().with_untracked(|q| {
        q.get("from")
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    });
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let data = Resource::new_blocking(
        {
            let id = id.clone();
            move || (id.clone(), from)
        },
        |(id, from)| load_host_users(id, from),
    );
    view! {
        <AdminFrame title_key="users.title" id=id>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(view) => view! {
                            <FlashMessages flash=flash.clone()/>
                            <Users view flash/>
                        }.into_any(),
                        Err(_) => view! {
                            <h1>{tr("users.title")}</h1>
                            <p class="alert" role="alert">{tr("change.not_found")}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AdminFrame>
    }
}

#[component]
fn Users(view: HostUsersView, flash: Flash) -> impl IntoView {
    let base = format!("/homeservers/{}", view.subscription);
    let page = |from: u64| format!("{base}/users?from={from}");
    view! {
        <h1>{tr("users.title")}</h1>
        <p class="server-name"><code>{view.server_name.clone()}</code></p>
        {view.error.clone().map(|key| view! { <p class="alert">{tr(&key)}</p> })}
        {(view.error.is_none()).then(|| view! {
            <section class="card" aria-labelledby="users-list">
                <h2 id="users-list">{tr("users.list_title")}</h2>
                <p class="users-showing">{view.showing.clone()}</p>
                <div class="table-scroll"><table class="admin-table users">
                    <thead><tr>
                        <th scope="col">{tr("users.col_user")}</th>
                        <th scope="col">{tr("users.col_role")}</th>
                        <th scope="col">{tr("users.col_created")}</th>
                        <th scope="col">{tr("users.col_actions")}</th>
                    </tr></thead>
                    <tbody>
                        {view.users.iter().map(|user| {
                            let role = if user.portal {
                                tr("users.role_portal")
                            } else if user.deactivated {
                                tr("users.role_deactivated")
                            } else if user.admin {
                                tr("users.role_admin")
                            } else {
                                tr("users.role_user")
                            };
                            let changeable = !user.portal && !user.deactivated;
                            let confirm_id = format!("confirm-{}", user.id);
                            view! {
                                <tr>
                                    <td>
                                        <code class="user-id">{user.id.clone()}</code>
                                        {user.display_name.clone().map(|name| view! { <br/><span class="hint">{name}</span> })}
                                    </td>
                                    <td class="role">{role}</td>
                                    <td>{user.created.clone().unwrap_or_default()}</td>
                                    <td><div class="row-actions">
                                        {changeable.then(|| view! {
                                            <form method="post" action=format!("{base}/users/reset-password")>
                                                <input type="hidden" name="user" value=user.id.clone()/>
                                                <button class="button small" type="submit"
                                                    aria-label=tr("users.reset_label").replace("%{user}", &user.id)>
                                                    {tr("users.reset")}
                                                </button>
                                            </form>
                                            <form method="post" action=format!("{base}/users/deactivate") class="inline-confirm">
                                                <input type="hidden" name="user" value=user.id.clone()/>
                                                <input type="checkbox" name="confirm" id=confirm_id.clone() value="yes" required=true/>
                                                <label for=confirm_id>{tr("users.confirm")}</label>
                                                <button class="button small" type="submit"
                                                    aria-label=tr("users.deactivate_label").replace("%{user}", &user.id)>
                                                    {tr("users.deactivate")}
                                                </button>
                                            </form>
                                        })}
                                    </div></td>
                                </tr>
                            }.into_any()
                        }).collect_view()}
                    </tbody>
                </table></div>
                <p class="hint">{tr("users.portal_note")}</p>
                <nav class="pager" aria-label=tr("users.pages")>
                    {view.previous.map(|from| view! { <a href=page(from) rel="prev">{tr("users.previous")}</a> })}
                    " "
                    {view.next.map(|from| view! { <a href=page(from) rel="next">{tr("users.next")}</a> })}
                </nav>
            </section>
        }.into_any())}
        {view.running.then(|| view! {
            <section class="card" aria-labelledby="add-user">
                <h2 id="add-user">{tr("users.add_title")}</h2>
                <form method="post" action=format!("{base}/users") class="form">
                    <Field flash=flash.clone() form="add-user" name="name" label=tr("users.name")
                        hint=tr("users.name_hint").replace("%{server}", &view.server_name)/>
                    <div class="choice">
                        <input type="checkbox" name="admin" id="new-user-admin" value="on"/>
                        <label for="new-user-admin">{tr("users.make_admin")}</label>
                    </div>
                    <button class="button primary" type="submit">{tr("users.add")}</button>
                </form>
            </section>
        }.into_any())}
    }
}
