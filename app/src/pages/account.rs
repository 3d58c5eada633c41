use crate::{
    components::form::{Field, FlashMessages},
    forms::Flash,
    i18n::tr,
    server_fns::account::{
        load_account_overview, load_two_factor, take_flash, AccountOverview, Reauth, SessionView,
        TwoFactorView,
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

/// The re-authentication field of a sensitive form.
#[component]
fn ReauthField(
    flash: Flash,
    form: &'static str,
    name: &'static str,
    reauth: Reauth,
    /// For accounts that confirm at their provider: (provider id, name).
    #[prop(default = None)]
    confirm_with: Option<(String, String)>,
) -> impl IntoView {
    match reauth {
        Reauth::Password => view! {
            <Field flash form name label=tr("field.current_password") kind="password"
                autocomplete="current-password"/>
        }
        .into_any(),
        Reauth::Code => view! {
            <Field flash form name label=tr("field.code") autocomplete="one-time-code"
                hint=tr("reauth.code_hint")/>
        }
        .into_any(),
        Reauth::Provider => view! {
            <p class="hint">{tr("reauth.needs_provider")}</p>
            {confirm_with.map(|(id, provider)| view! {
                <a class="button" href=format!("/auth/{id}/start?intent=reauth")>
                    {tr("external.confirm_with").replace("%{provider}", &provider)}
                </a>
            })}
            // Inside the change's own form: this button posts to another address.
            <button class="button" type="submit" formaction="/account/reauth/email"
                formmethod="post" formnovalidate=true>{tr("reauth.by_email")}</button>
        }
        .into_any(),
    }
}

/// The flash for the top of the page: without the alert of a form that shows it in its own
/// section.
fn page_level(flash: &Flash, sections: &[&str]) -> Flash {
    let mut top = flash.clone();
    if sections.contains(&flash.form.as_str()) {
        top.alert = None;
    }
    top
}

/// Loads the page's data and the flash together, then renders.
fn page<T, V>(
    data: Resource<Result<T, ServerFnError>>,
    flash: Resource<Result<Option<Flash>, ServerFnError>>,
    body: impl Fn(T, Flash) -> V + Send + Sync + Clone + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let body = body.clone();
                Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(data) => body(data, flash).into_any(),
                        Err(_) => view! {
                            <p class="alert" role="alert">{tr("account.sign_in_needed")}" "
                                <a href="/sign-in">{tr("signin.title")}</a></p>
                        }
                        .into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let overview = Resource::new_blocking(|| (), |_| load_account_overview());
    view! {
        <Title text=tr("account.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container account-page">
            <h1>{tr("account.title")}</h1>
            {page(overview, flash, |overview: AccountOverview, flash| {
                let confirm_with = overview
                    .identities
                    .first()
                    .map(|i| (i.provider.clone(), i.provider_name.clone()));
                view! {
                <FlashMessages flash=page_level(&flash, &["password", "email", "identities", "link_google", "link_oidc", "link_x"])/>
                {(!overview.viewer.email_verified).then(|| view! {
                    <div class="banner" role="region" aria-label=tr("account.verify_banner_label")>
                        <p>{tr("account.verify_banner")}</p>
                        <form method="post" action="/verify-email/resend">
                            <button class="button" type="submit">{tr("account.verify_resend")}</button>
                        </form>
                    </div>
                })}
                <div class="account-grid">
                    <section class="card" aria-labelledby="profile-title">
                        <h2 id="profile-title">{tr("account.profile")}</h2>
                        <dl class="facts">
                            <dt>{tr("field.email")}</dt>
                            <dd>{overview.viewer.email.clone().unwrap_or_default()}</dd>
                            <dt>{tr("account.created")}</dt>
                            <dd>{overview.created.clone()}</dd>
                        </dl>
                        <form method="post" action="/account/name" class="form">
                            <Field flash=flash.clone() form="name" name="display_name" label=tr("field.display_name")
                                autocomplete="name" value=overview.viewer.display_name.clone()/>
                            <button class="button" type="submit">{tr("account.save_name")}</button>
                        </form>
                    </section>
                    <section class="card" id="password" aria-labelledby="password-title">
                        <h2 id="password-title">{tr(if overview.has_password { "account.password_change" } else { "account.password_set" })}</h2>
                        <FlashMessages flash=Flash { notice: None, ..flash.clone() } form="password"/>
                        <form method="post" action="/account/password" class="form" novalidate>
                            <ReauthField flash=flash.clone() form="password" name="current" reauth=overview.reauth confirm_with=confirm_with.clone()/>
                            <Field flash=flash.clone() form="password" name="new_password" label=tr("field.new_password")
                                kind="password" autocomplete="new-password" hint=tr("password.hint")/>
                            <button class="button" type="submit">{tr("account.password_save")}</button>
                        </form>
                    </section>
                    <section class="card" id="email" aria-labelledby="email-title">
                        <h2 id="email-title">{tr("email_change.title")}</h2>
                        <FlashMessages flash=Flash { notice: None, ..flash.clone() } form="email"/>
                        <form method="post" action="/account/email" class="form" novalidate>
                            <Field flash=flash.clone() form="email" name="new_email" label=tr("email_change.new_email")
                                kind="email" autocomplete="email"/>
                            <ReauthField flash=flash.clone() form="email" name="answer" reauth=overview.reauth confirm_with=confirm_with.clone()/>
                            <button class="button" type="submit">{tr("email_change.submit")}</button>
                        </form>
                    </section>
                    <section class="card" aria-labelledby="two-factor-title">
                        <h2 id="two-factor-title">{tr("two_factor.title")}</h2>
                        <p>{tr(if overview.two_factor { "two_factor.status_on" } else { "two_factor.status_off" })}</p>
                        <a class="button" href="/account/two-factor">
                            {tr(if overview.two_factor { "two_factor.manage" } else { "two_factor.set_up" })}
                        </a>
                    </section>
                </div>
                {(!overview.identities.is_empty() || !overview.linkable.is_empty()).then(|| {
                    let reauth = overview.reauth;
                    let flash = flash.clone();
                    let confirm_with = confirm_with.clone();
                    view! {
                    <section class="card" id="identities" aria-labelledby="identities-title">
                        <h2 id="identities-title">{tr("external.title")}</h2>
                        <FlashMessages flash=Flash { notice: None, ..flash.clone() } form="identities"/>
                        <ul class="identities">
                            {overview.identities.iter().map(|i| view! {
                                <li>
                                    <span>{format!("{} · {}", i.provider_name, i.email.clone().unwrap_or_default())}</span>
                                    <form method="post" action="/account/identities/unlink" class="inline">
                                        <input type="hidden" name="provider" value=i.provider.clone()/>
                                        <input type="hidden" name="subject" value=i.subject.clone()/>
                                        <button class="button small" type="submit">{tr("external.unlink")}</button>
                                    </form>
                                </li>
                            }).collect_view()}
                        </ul>
                        {overview.linkable.iter().map(|(id, name)| {
                            let form: &'static str = match id.as_str() {
                                "google" => "link_google",
                                "x" => "link_x",
                                _ => "link_oidc",
                            };
                            view! {
                            <form method="post" action="/account/identities/link" class="form">
                                <input type="hidden" name="provider" value=id.clone()/>
                                <FlashMessages flash=Flash { notice: None, ..flash.clone() } form=form/>
                                <ReauthField flash=flash.clone() form=form name="answer" reauth=reauth confirm_with=confirm_with.clone()/>
                                <button class="button" type="submit">{tr("external.link").replace("%{provider}", name)}</button>
                            </form>
                        }}).collect_view()}
                    </section>
                }})}
                <section class="card" aria-labelledby="sessions-title">
                    <h2 id="sessions-title">{tr("account.sessions")}</h2>
                    <p class="hint">{tr("account.sessions_hint")}</p>
                    <div class="table-scroll">
                        <table class="sessions">
                            <thead><tr>
                                <th scope="col">{tr("account.session_device")}</th>
                                <th scope="col">{tr("account.session_signed_in")}</th>
                                <th scope="col">{tr("account.session_last_seen")}</th>
                                <th scope="col">{tr("account.session_ip")}</th>
                                <th scope="col"><span class="visually-hidden">{tr("account.session_actions")}</span></th>
                            </tr></thead>
                            <tbody>
                                {overview.sessions.into_iter().map(|s| view! { <SessionRow session=s/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <form method="post" action="/account/sessions/revoke-others">
                        <button class="button" type="submit">{tr("account.revoke_others")}</button>
                    </form>
                </section>
            }})}
        </section>
    }
}

#[component]
fn SessionRow(session: SessionView) -> impl IntoView {
    view! {
        <tr>
            <td>
                {session.device.clone()}
                {session.current.then(|| view! { " " <span class="tag">{tr("account.this_session")}</span> })}
            </td>
            <td>{session.signed_in.clone()}</td>
            <td>{session.last_seen.clone()}</td>
            <td>{session.ip.clone()}</td>
            <td>
                <form method="post" action="/account/sessions/revoke">
                    <input type="hidden" name="id" value=session.id.clone()/>
                    <button class="button small" type="submit"
                        aria-label=format!("{} {}", tr("account.revoke"), session.device)>
                        {tr(if session.current { "account.sign_out_here" } else { "account.revoke" })}
                    </button>
                </form>
            </td>
        </tr>
    }
}

#[component]
pub fn TwoFactorPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let view_data = Resource::new_blocking(|| (), |_| load_two_factor());
    view! {
        <Title text=tr("two_factor.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow account-page">
            <p><a href="/account">{tr("account.back")}</a></p>
            <h1>{tr("two_factor.title")}</h1>
            {page(view_data, flash, |data: TwoFactorView, flash| view! {
                <FlashMessages flash=page_level(&flash, &["recovery_codes", "two_factor_disable"])/>
                {(!flash.recovery_codes.is_empty()).then(|| view! {
                    <section class="card codes" aria-labelledby="codes-title">
                        <h2 id="codes-title">{tr("two_factor.codes_title")}</h2>
                        <p>{tr("two_factor.codes_intro")}</p>
                        <ul class="recovery-codes">
                            {flash.recovery_codes.iter().map(|c| view! { <li><code>{c.clone()}</code></li> }).collect_view()}
                        </ul>
                    </section>
                })}
                {if data.enabled {
                    view! {
                        <section class="card">
                            <p>{tr("two_factor.status_on")}</p>
                            <p>{tr("two_factor.codes_left").replace("%{count}", &data.codes_left.to_string())}</p>
                        </section>
                        <section class="card" aria-labelledby="new-codes-title">
                            <h2 id="new-codes-title">{tr("two_factor.new_codes")}</h2>
                            <FlashMessages flash=Flash { notice: None, ..flash.clone() } form="recovery_codes"/>
                            <form method="post" action="/account/two-factor/recovery-codes" class="form" novalidate>
                                <ReauthField flash=flash.clone() form="recovery_codes" name="answer" reauth=data.reauth/>
                                <button class="button" type="submit">{tr("two_factor.new_codes_submit")}</button>
                            </form>
                        </section>
                        <section class="card" aria-labelledby="disable-title">
                            <h2 id="disable-title">{tr("two_factor.disable")}</h2>
                            <FlashMessages flash=Flash { notice: None, ..flash.clone() } form="two_factor_disable"/>
                            <form method="post" action="/account/two-factor/disable" class="form" novalidate>
                                <ReauthField flash=flash.clone() form="two_factor_disable" name="answer" reauth=data.reauth/>
                                <button class="button danger" type="submit">{tr("two_factor.disable_submit")}</button>
                            </form>
                        </section>
                    }.into_any()
                } else if data.key_text.is_empty() {
                    view! {
                        <section class="card">
                            <p>{tr("two_factor.status_off")}</p>
                            <form method="post" action="/account/two-factor/start" class="form">
                                <button class="button primary" type="submit">{tr("two_factor.start")}</button>
                            </form>
                        </section>
                    }.into_any()
                } else {
                    view! {
                        <section class="card" aria-labelledby="enrol-title">
                            <h2 id="enrol-title">{tr("two_factor.step_scan")}</h2>
                            <p>{tr("two_factor.scan_intro")}</p>
                            <div class="qr" role="img" aria-label=tr("two_factor.qr_label") inner_html=data.qr_svg.clone()></div>
                            <p>{tr("two_factor.key_intro")}</p>
                            <p><code class="totp-key" data-testid="totp-key">{data.key_text.clone()}</code></p>
                            <h2>{tr("two_factor.step_confirm")}</h2>
                            <form method="post" action="/account/two-factor/confirm" class="form" novalidate>
                                <Field flash=flash.clone() form="two_factor" name="code" label=tr("field.code")
                                    autocomplete="one-time-code" inputmode="numeric"/>
                                <button class="button primary" type="submit">{tr("two_factor.confirm")}</button>
                            </form>
                        </section>
                    }.into_any()
                }}
            })}
        </section>
    }
}
