use crate::i18n::tr;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text=tr("not_found.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container narrow message-page">
            <p class="status-code" aria-hidden="true">"404"</p>
            <h1>{tr("not_found.title")}</h1>
            <p>{tr("not_found.text")}</p>
            <p><a class="button" href="/">{tr("not_found.home")}</a></p>
        </section>
    }
}
