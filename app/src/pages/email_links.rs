//! Pages that links in emails open. Opening one changes nothing (mail scanners fetch links
//! before people do); the button on the page sends the POST that uses the link up.

use crate::i18n::tr;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;

/// A page with a title, an explanation and one button that POSTs to `action_prefix/{token}`.
#[component]
fn ConfirmLinkPage(
    title: &'static str,
    intro: &'static str,
    button: &'static str,
    action_prefix: &'static str,
) -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    view! {
        <Title text=tr(title)/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow auth-page">
            <h1>{tr(title)}</h1>
            <p>{tr(intro)}</p>
            <form method="post" action=move || format!("{action_prefix}/{}", token()) class="card form">
                <button class="button primary" type="submit">{tr(button)}</button>
            </form>
        </section>
    }
}

#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    view! {
        <ConfirmLinkPage title="verify.title" intro="verify.intro" button="verify.button"
            action_prefix="/verify-email"/>
    }
}

#[component]
pub fn ConfirmEmailPage() -> impl IntoView {
    view! {
        <ConfirmLinkPage title="email_change.confirm_title" intro="email_change.confirm_intro"
            button="email_change.confirm_button" action_prefix="/confirm-email"/>
    }
}

#[component]
pub fn ReauthLinkPage() -> impl IntoView {
    view! {
        <ConfirmLinkPage title="reauth.title" intro="reauth.intro" button="reauth.button"
            action_prefix="/reauth"/>
    }
}
