//! The terms of service and the privacy policy, in the version new accounts accept.

use crate::i18n::tr;
use leptos::prelude::*;
use leptos_meta::Title;

/// The version accepted at sign-up; the domain records the same string with each account.
pub const TERMS_VERSION: &str = "2026-11-01";

/// The message `key` in paragraphs, with the operator's contact for data requests put in.
fn paragraphs(key: &str) -> impl IntoView {
    let contact = use_context::<crate::server_fns::PrivacyContact>()
        .map(|c| c.0)
        .unwrap_or_default();
    tr(key)
        .replace("%{contact}", &contact)
        .split("\n\n")
        .map(|p| view! { <p>{p.trim().to_string()}</p> })
        .collect_view()
}

#[component]
pub fn TermsPage() -> impl IntoView {
    view! {
        <Title text=tr("legal.terms_title")/>
        <section class="container narrow legal">
            <h1>{tr("legal.terms_title")}</h1>
            <p class="hint">{tr("legal.version")}" "{TERMS_VERSION}</p>
            {paragraphs("legal.terms_text")}
        </section>
    }
}

#[component]
pub fn PrivacyPage() -> impl IntoView {
    view! {
        <Title text=tr("legal.privacy_title")/>
        <section class="container narrow legal">
            <h1>{tr("legal.privacy_title")}</h1>
            <p class="hint">{tr("legal.version")}" "{TERMS_VERSION}</p>
            {paragraphs("legal.privacy_text")}
        </section>
    }
}
