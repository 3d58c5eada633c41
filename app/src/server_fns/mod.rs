//! Server functions, one concern per file.
pub mod plans;

#[cfg(feature = "ssr")]
pub(crate) fn portal() -> Result<domain::Portal, leptos::prelude::ServerFnError> {
    leptos::prelude::use_context::<domain::Portal>()
        .ok_or_else(|| leptos::prelude::ServerFnError::new("portal context missing"))
}

pub mod account;
pub mod billing;
pub mod homeservers;
pub mod invoices;
pub mod orders;

/// The signed-in account, loaded at most once per request however many loaders ask for it (on
/// a page the layout's viewer and the page's own loader both do, at the same time: the second
/// waits for the first's answer). A fresh one is provided as context for each request by the
/// server.
#[cfg(feature = "ssr")]
#[derive(Clone, Default)]
pub struct RequestAccount(
    std::sync::Arc<tokio::sync::OnceCell<Option<domain::accounts::profile::Account>>>,
);

/// Session lifetimes from configuration, provided as context by the server.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub absolute_ms: i64,
}

/// The configured external sign-in providers, (id, name), provided as context by the server.
#[derive(Debug, Clone, Default)]
pub struct AuthProviders(pub Vec<(String, String)>);

/// The operator's address for data requests, shown by the privacy policy and the terms.
#[derive(Clone, Debug)]
pub struct PrivacyContact(pub String);
