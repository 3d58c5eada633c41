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
    // Islands: only the interactive parts (`#[island]`) run in the browser; every other part of
    // a page is server-rendered HTML whose forms and links work without JavaScript. The boot
    // script in `shell.rs` hydrates each island after this.
    leptos::mount::hydrate_islands();
}
