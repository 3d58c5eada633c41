//! The HTML document around the app. The hydration scripts are written here rather than with
//! Leptos' `HydrationScripts`, because the asset names carry content hashes (so they can be
//! cached forever) and come from the manifest the build writes.

use crate::app::App;
use leptos::prelude::*;
use leptos_meta::MetaTags;

/// Paths of the hashed assets under `/pkg`, from `pkg/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AssetManifest {
    pub js: String,
    pub wasm: String,
    pub css: String,
}

pub fn shell(assets: AssetManifest) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    // Islands mode: nothing outside an island is hydrated.
    if let Some(context) = Owner::current_shared_context() {
        context.set_is_hydrating(false);
    }
    // Loads the WASM, then hydrates each island (`<leptos-island data-component=…>`), then marks
    // the page (`data-hydrated`, which browser tests wait for).
    let boot = format!(
        "import('/pkg/{js}').then(m=>m.default({{module_or_path:'/pkg/{wasm}'}}).then(()=>{{\
         m.hydrate();\
         for(const el of document.querySelectorAll('leptos-island')){{const f=m[el.dataset.component];if(f)f(el);}}\
         document.documentElement.dataset.hydrated='true';\
         }}));",
        js = assets.js,
        wasm = assets.wasm
    );
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.ico" sizes="32x32"/>
                <link rel="icon" href="/favicon.svg" r#type="image/svg+xml"/>
                <link rel="stylesheet" href=format!("/pkg/{}", assets.css)/>
                <link rel="modulepreload" href=format!("/pkg/{}", assets.js)/>
                <link rel="preload" href=format!("/pkg/{}", assets.wasm) r#as="fetch" r#type="application/wasm" crossorigin=""/>
                <script type="module" nonce=nonce>{boot}</script>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}
