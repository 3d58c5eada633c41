use crate::{
    components::form::{with_flash, Checkbox, Field, FlashMessages, ProviderButtons},
    i18n::tr,
    server_fns::account::take_flash,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SignUpPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    view! {
        <Title text=tr("signup.title")/>
        <section class="container narrow auth-page">
            <h1>{tr("signup.title")}</h1>
            <p class="lead">{tr("signup.intro")}</p>
            {with_flash(flash, |flash| view! {
                <FlashMessages flash=flash.clone() form="sign_up"/>
                <form method="post" action="/sign-up" class="card form" novalidate>
                    <Field flash=flash.clone() form="sign_up" name="email" label=tr("field.email")
                        kind="email" autocomplete="email"/>
                    <Field flash=flash.clone() form="sign_up" name="password" label=tr("field.password")
                        kind="password" autocomplete="new-password" hint=tr("password.hint")/>
                    <Field flash=flash.clone() form="sign_up" name="display_name" label=tr("field.display_name")
                        autocomplete="name"/>
                    <Checkbox flash=flash.clone() form="sign_up" name="age">{tr("signup.age_label")}</Checkbox>
                    <TermsCheckbox flash=flash.clone() form="sign_up"/>
                    <button class="button primary" type="submit">{tr("signup.submit")}</button>
                </form>
                <ProviderButtons/>
                <p class="aside">{tr("signup.have_account")}" "<a href="/sign-in">{tr("signin.title")}</a></p>
            })}
        </section>
    }
}

/// The sign-up form for a person coming from an external provider: the same confirmations as
/// everyone, a name, and the address (the provider's, if it gave one).
#[component]
pub fn ExternalSignUpPage() -> impl IntoView {
    use crate::server_fns::account::load_external_sign_up;
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let pending = Resource::new_blocking(|| (), |_| load_external_sign_up());
    view! {
        <Title text=tr("external.sign_up_title")/>
        <section class="container narrow auth-page">
            <h1>{tr("external.sign_up_title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match pending.await.ok().flatten() {
                        None => view! {
                            <p class="alert" role="alert">{tr("external.expired")}</p>
                            <p><a class="button" href="/sign-in">{tr("signin.title")}</a></p>
                        }.into_any(),
                        Some(pending) => with_flash(flash, move |flash| {
                            let pending = pending.clone();
                            view! {
                                <p>{tr("external.sign_up_intro").replace("%{provider}", &pending.provider_name)}</p>
                                <FlashMessages flash=flash.clone() form="external_sign_up"/>
                                <form method="post" action="/sign-up/external" class="card form" novalidate>
                                    <Field flash=flash.clone() form="external_sign_up" name="email" label=tr("field.email")
                                        kind="email" autocomplete="email" value=pending.email.clone()
                                        hint=tr(if pending.email_verified { "external.email_verified_hint" } else { "external.email_hint" })
                                            .replace("%{provider}", &pending.provider_name)/>
                                    <Field flash=flash.clone() form="external_sign_up" name="display_name" label=tr("field.display_name")
                                        autocomplete="name" value=pending.display_name.clone()/>
                                    <Checkbox flash=flash.clone() form="external_sign_up" name="age">{tr("signup.age_label")}</Checkbox>
                                    <TermsCheckbox flash=flash.clone() form="external_sign_up"/>
                                    <button class="button primary" type="submit">{tr("signup.submit")}</button>
                                </form>
                            }
                        }).into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The acceptance of the terms of service and privacy policy, with links to both.
#[component]
fn TermsCheckbox(flash: crate::forms::Flash, form: &'static str) -> impl IntoView {
    view! {
        <Checkbox flash form name="terms">
            {tr("signup.terms_before")}
            <a href="/terms">{tr("signup.terms_link")}</a>
            {tr("signup.terms_and")}
            <a href="/privacy">{tr("signup.privacy_link")}</a>
        </Checkbox>
    }
}
