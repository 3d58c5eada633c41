//! The portal's user interface: Leptos pages and components, and the server functions they
//! call. Server functions only parse, authorise and call `domain` services.

pub mod app;
pub mod components;
pub mod forms;
pub mod i18n;
pub mod pages;
pub mod server_fns;
pub mod shell;

rust_i18n::i18n!("../locales", fallback = "en");

pub use app::App;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // Lets browser tests (and curious people) tell a hydrated page from a server-rendered one.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
