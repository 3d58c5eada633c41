use crate::{
    components::form::{with_flash, Field, FlashMessages, ProviderButtons},
    i18n::tr,
    server_fns::account::take_flash,
};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SignInPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    view! {
        <Title text=tr("signin.title")/>
        <section class="container narrow auth-page">
            <h1>{tr("signin.title")}</h1>
            {with_flash(flash, |flash| view! {
                <FlashMessages flash=flash.clone() form="sign_in"/>
                <form method="post" action="/sign-in" class="card form" novalidate>
                    <Field flash=flash.clone() form="sign_in" name="email" label=tr("field.email")
                        kind="email" autocomplete="username"/>
                    <Field flash=flash.clone() form="sign_in" name="password" label=tr("field.password")
                        kind="password" autocomplete="current-password"/>
                    <button class="button primary" type="submit">{tr("signin.submit")}</button>
                    <p class="aside"><a href="/forgot-password">{tr("signin.forgot")}</a></p>
                </form>
                <ProviderButtons/>
                <p class="aside">{tr("signin.no_account")}" "<a href="/sign-up">{tr("signup.title")}</a></p>
            })}
        </section>
    }
}

#[component]
pub fn SecondFactorPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    view! {
        <Title text=tr("signin.second_factor_title")/>
        <section class="container narrow auth-page">
            <h1>{tr("signin.second_factor_title")}</h1>
            <p>{tr("signin.second_factor_intro")}</p>
            {with_flash(flash, |flash| view! {
                <FlashMessages flash=flash.clone() form="second_factor"/>
                <form method="post" action="/sign-in/two-factor" class="card form" novalidate>
                    <Field flash=flash.clone() form="second_factor" name="code" label=tr("field.code")
                        autocomplete="one-time-code" hint=tr("signin.second_factor_hint")/>
                    <button class="button primary" type="submit">{tr("signin.second_factor_submit")}</button>
                </form>
            })}
        </section>
    }
}
