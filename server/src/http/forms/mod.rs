//! The handlers of the account forms. Every form is a plain HTML form that posts here and is
//! answered with a redirect (POST/redirect/GET), so it works the same with and without
//! JavaScript; what the next page shows travels in the session's one-time flash
//! ([`app::forms::Flash`]). The Origin check in the edge middleware guards every post.

pub mod account;
pub mod auth;
pub mod billing;
pub mod external;
pub mod homeservers;
pub mod invoices;
pub mod orders;
pub mod payments;

use crate::state::AppState;
use app::forms::{Flash, FLASH_KEY};
use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use domain::{
    audit::RequestMeta,
    i18n::{t, Locale},
    sessions::{AuthState, AUTH_KEY},
};
use std::{net::IpAddr, time::Duration};
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-up", post(auth::sign_up))
        .route("/sign-in", post(auth::sign_in))
        .route("/sign-in/two-factor", post(auth::second_factor))
        .route("/sign-out", post(auth::sign_out))
        .route("/verify-email/{token}", post(auth::verify_email))
        .route("/verify-email/resend", post(auth::resend_verification))
        .route("/forgot-password", post(auth::forgot_password))
        .route("/reset-password/{token}", post(auth::reset_password))
        .route("/auth/{provider}/start", get(external::start))
        .route("/auth/{provider}/callback", get(external::callback))
        .route("/sign-up/external", post(external::sign_up))
        .route("/account/identities/link", post(external::link))
        .route("/account/identities/unlink", post(external::unlink))
        .route("/billing", post(billing::save))
        .route("/billing/card", post(orders::save_card))
        .route("/billing/card/remove", post(orders::remove_card))
        .route("/billing/card/setup", post(orders::start_card_setup))
        .route(
            "/billing/manual-request",
            post(orders::request_manual_billing),
        )
        .route("/order", post(orders::order))
        .route("/billing/invoices/{id}/links", post(invoices::create_link))
        .route("/billing/invoices/{id}/pdf", get(invoices::pdf))
        .route(
            "/billing/invoices/{id}/links/{link}/revoke",
            post(invoices::revoke_link),
        )
        .route(
            "/billing/confirm-payment/{id}/start",
            post(payments::start_confirmation),
        )
        .route(
            "/billing/confirm-payment/{id}",
            post(payments::finish_confirmation),
        )
        .route("/homeservers/{id}/plan", post(orders::change_plan))
        .route("/homeservers/{id}/preview", post(orders::preview_plan))
        .route("/homeservers/{id}/cancel", post(orders::cancel))
        .route("/homeservers/{id}/resume", post(orders::resume))
        .route(
            "/homeservers/{id}/reveal-password",
            post(homeservers::reveal_password),
        )
        .route(
            "/homeservers/{id}/settings",
            post(homeservers::save_settings),
        )
        .route(
            "/homeservers/{id}/registration-tokens",
            post(homeservers::create_token),
        )
        .route(
            "/homeservers/{id}/registration-tokens/delete",
            post(homeservers::delete_token),
        )
        .route(
            "/homeservers/{id}/backups/restore",
            post(homeservers::restore_backup),
        )
        .route("/homeservers/{id}/users", post(homeservers::add_user))
        .route(
            "/homeservers/{id}/users/reset-password",
            post(homeservers::reset_user_password),
        )
        .route(
            "/homeservers/{id}/users/deactivate",
            post(homeservers::deactivate_user),
        )
        .route("/account/name", post(account::rename))
        .route("/account/password", post(account::change_password))
        .route("/account/email", post(account::change_email))
        .route("/confirm-email/{token}", post(account::confirm_email))
        .route("/account/sessions/revoke", post(account::revoke_session))
        .route(
            "/account/sessions/revoke-others",
            post(account::revoke_other_sessions),
        )
        .route("/account/two-factor/start", post(account::start_two_factor))
        .route("/account/reauth/email", post(account::send_reauth_link))
        .route("/reauth/{token}", post(account::confirm_reauth_link))
        .route(
            "/account/two-factor/confirm",
            post(account::confirm_two_factor),
        )
        .route(
            "/account/two-factor/disable",
            post(account::disable_two_factor),
        )
        .route(
            "/account/two-factor/recovery-codes",
            post(account::new_recovery_codes),
        )
}

/// What every form handler needs from the request: the state, the session, the client IP and
/// the request id (for the audit log).
pub struct FormContext {
    pub state: AppState,
    pub session: Session,
    pub ip: Option<IpAddr>,
    pub meta: RequestMeta,
}

impl FromRequestParts<AppState> for FormContext {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| failure("the session layer is missing"))?;
        let ip = super::client_ip::from_parts(
            &parts.extensions,
            &parts.headers,
            &state.config.trusted_proxies,
        );
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Self {
            state: state.clone(),
            session,
            ip,
            meta: RequestMeta {
                request_id,
                client_ip: ip.map(|ip| ip.to_string()),
            },
        })
    }
}

impl FormContext {
    pub async fn auth(&self) -> Option<AuthState> {
        self.session.get::<AuthState>(AUTH_KEY).await.ok().flatten()
    }

    /// Leaves `flash` for the next page and sends the browser there.
    pub async fn back(&self, to: &str, flash: Flash) -> Response {
        if let Err(error) = self.session.insert(FLASH_KEY, flash).await {
            return failure(&error.to_string());
        }
        see_other(to)
    }

    /// The per-IP limit on guessing (sign-in, sign-up, reset, second factor).
    pub fn over_ip_limit(&self) -> Option<Duration> {
        let ip = self.ip?;
        self.state.auth_limiter.check(ip).err()
    }

    pub fn now(&self) -> i64 {
        self.state.portal.clock.now_ms()
    }
}

/// The signed-in account's session, or the response that sends a visitor to sign in.
pub async fn require_auth(ctx: &FormContext) -> Result<AuthState, Response> {
    ctx.auth().await.ok_or_else(|| see_other("/sign-in"))
}

/// The signed-in account and the customer it belongs to, or the response that ends the
/// request. The customer always comes from the session's account, never from the request.
pub async fn signed_in_customer(
    ctx: &FormContext,
) -> Result<(domain::accounts::profile::Account, uuid::Uuid), Response> {
    let auth = require_auth(ctx).await?;
    match domain::accounts::profile::load(&ctx.state.portal.db, auth.user_id).await {
        Ok(Some(account)) => match account.customer_id {
            Some(id) => Ok((account, id)),
            None => Err(StatusCode::NOT_FOUND.into_response()),
        },
        Ok(None) => Err(see_other("/sign-in")),
        Err(error) => Err(failure(&error.to_string())),
    }
}

pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// A failure the person cannot fix: logged, and answered with the error page.
/// Runs a step that calls Stripe and records its answer in a task of its own: hyper drops a
/// handler's future when its client goes away, which must not stop a payment step between
/// Stripe's answer and the portal's record of it. The handler still waits for the outcome.
pub async fn outliving_the_request<T: Send + 'static>(
    step: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Response> {
    tokio::spawn(step)
        .await
        .map_err(|e| failure(&format!("payment step: {e}")))
}

pub fn failure(error: &str) -> Response {
    tracing::error!(%error, "form handler failed");
    super::error_page::internal_error_response()
}

pub fn tr(key: &str) -> String {
    t(Locale::En, key)
}

/// "Too many attempts: try again in 3 minutes."
pub fn wait_message(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    tr("signin.throttled").replace("%{minutes}", &minutes.to_string())
}

pub use app::forms::{local_path, return_path};

/// A page that shows a secret once (a new invoice link, a generated password), in the answer
/// to the POST that made or released it: never stored by a cache.
pub fn shown_once(title: &str, main: &str) -> Response {
    let body = crate::http::plain_page::page(title, "container narrow account-page", main);
    (
        axum::http::StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store, private"),
        ],
        body,
    )
        .into_response()
}
