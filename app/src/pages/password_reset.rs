use crate::{
    components::form::{with_flash, Field, FlashMessages},
    i18n::tr,
    server_fns::account::{reset_link_state, take_flash},
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    view! {
        <Title text=tr("reset.title")/>
        <section class="container narrow auth-page">
            <h1>{tr("reset.title")}</h1>
            <p>{tr("reset.intro")}</p>
            {with_flash(flash, |flash| view! {
                <FlashMessages flash=flash.clone() form="forgot"/>
                <form method="post" action="/forgot-password" class="card form" novalidate>
                    <Field flash=flash.clone() form="forgot" name="email" label=tr("field.email")
                        kind="email" autocomplete="email"/>
                    <button class="button primary" type="submit">{tr("reset.submit")}</button>
                </form>
                <p class="aside"><a href="/sign-in">{tr("signin.title")}</a></p>
            })}
        </section>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    let link = Resource::new_blocking(token, reset_link_state);
    view! {
        <Title text=tr("reset.new_title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow auth-page">
            <h1>{tr("reset.new_title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let problem = link.await.unwrap_or_else(|_| Some(tr("error.text")));
                    let token = token();
                    match problem {
                        Some(problem) => view! {
                            <p class="alert" role="alert">{problem}</p>
                            <p><a class="button" href="/forgot-password">{tr("reset.ask_again")}</a></p>
                        }.into_any(),
                        None => with_flash(flash, move |flash| view! {
                            <FlashMessages flash=flash.clone() form="reset"/>
                            <form method="post" action=format!("/reset-password/{token}") class="card form" novalidate>
                                <Field flash=flash.clone() form="reset" name="password" label=tr("field.new_password")
                                    kind="password" autocomplete="new-password" hint=tr("password.hint")/>
                                <button class="button primary" type="submit">{tr("reset.save")}</button>
                            </form>
                        }).into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
