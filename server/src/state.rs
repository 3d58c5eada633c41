use crate::{
    config::Config,
    http::{metrics::Metrics, page_cache::PageCache},
};
use app::shell::AssetManifest;
use axum::extract::FromRef;
use domain::Portal;
use leptos::config::LeptosOptions;
use std::sync::{Arc, OnceLock};

/// What every request handler and middleware shares. Cloned per middleware per request, so it
/// is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub portal: Portal,
    pub config: Config,
    /// `config.public_url()`, computed once.
    pub public_url: String,
    /// Served over https (the public URL says so): Secure cookies, HSTS.
    pub https: bool,
    pub leptos_options: LeptosOptions,
    pub assets: AssetManifest,
    pub metrics: Metrics,
    pub page_cache: PageCache,
    /// Invoice pages opened by link, rendered once per invoice and payment state.
    pub link_pages: crate::http::invoice_links::LinkPages,
    /// Sessions whose use this replica recorded within the last minute.
    pub recently_touched: crate::http::sessions::RecentlyTouched,
    pub secrets_session_key: Vec<u8>,
    /// When set, /metrics answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
    /// Sign-in, sign-up, second-factor and reset attempts per client IP (this replica).
    pub auth_limiter: domain::accounts::throttle::IpLimiter,
    /// Invoice links opened per client IP (this replica).
    pub link_limiter: domain::accounts::throttle::IpLimiter,
    /// External sign-in providers (OpenID Connect).
    pub providers: crate::oidc::Providers,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// `__Host-` cookies must be Secure, which plain-http local runs cannot send.
    pub fn session_cookie_name(&self) -> &'static str {
        if self.https {
            "__Host-portal_session"
        } else {
            "portal_session"
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

static STYLESHEET: OnceLock<String> = OnceLock::new();

/// The hashed stylesheet name, for pages rendered outside the app (the 500 page).
pub fn stylesheet_name() -> &'static str {
    STYLESHEET.get().map(String::as_str).unwrap_or("portal.css")
}

/// Reads `pkg/manifest.json` written by `scripts/build-site.sh`.
pub fn load_assets(site_root: &std::path::Path) -> Result<AssetManifest, String> {
    let path = site_root.join("pkg").join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}. Build the site first (scripts/build-site.sh) or set LEPTOS_SITE_ROOT",
            path.display()
        )
    })?;
    let manifest: AssetManifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = STYLESHEET.set(manifest.css.clone());
    Ok(manifest)
}
