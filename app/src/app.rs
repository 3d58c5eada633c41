use crate::{
    components::layout::Layout,
    i18n::{tr, UiLocale},
    pages::{landing::LandingPage, not_found::NotFound},
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    SsrMode, StaticSegment,
};

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(UiLocale::default());
    view! {
        <Title formatter=|page: String| format!("{page} · {}", tr("site.name"))/>
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    // Async: the whole page is rendered before it is sent, so it is complete
                    // without JavaScript (out-of-order streaming needs a script to fill in).
                    <Route path=StaticSegment("") view=LandingPage ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}
