use crate::{
    components::form::{with_flash, Checkbox, Field, FlashMessages},
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
                    <Checkbox flash=flash.clone() form="sign_up" name="terms">
                        {tr("signup.terms_before")}
                        <a href="/terms">{tr("signup.terms_link")}</a>
                        {tr("signup.terms_and")}
                        <a href="/privacy">{tr("signup.privacy_link")}</a>
                    </Checkbox>
                    <button class="button primary" type="submit">{tr("signup.submit")}</button>
                </form>
                <p class="aside">{tr("signup.have_account")}" "<a href="/sign-in">{tr("signin.title")}</a></p>
            })}
        </section>
    }
}
