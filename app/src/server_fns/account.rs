//! What the account pages show. Changes go through the form handlers (server crate,
//! `http::forms`), which work without JavaScript; these only read.

use crate::forms::Flash;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in person, for the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub display_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// A card subscription of the customer is past due: the header shows "update card".
    #[serde(default)]
    pub past_due: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The handle the revoke form posts (the stored key, not the cookie's id).
    pub id: String,
    pub device: String,
    pub signed_in: String,
    pub last_seen: String,
    pub ip: String,
    pub current: bool,
}

/// How this account confirms a sensitive change: "password", "code" or "provider".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reauth {
    Password,
    Code,
    Provider,
}

/// An external identity linked to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    pub provider: String,
    pub provider_name: String,
    pub subject: String,
    pub email: Option<String>,
    pub linked: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOverview {
    pub viewer: Viewer,
    pub identities: Vec<IdentityView>,
    /// Configured providers not linked yet: (id, name).
    pub linkable: Vec<(String, String)>,
    pub created: String,
    pub has_password: bool,
    pub two_factor: bool,
    pub reauth: Reauth,
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorView {
    pub enabled: bool,
    /// While enrolling: the QR code (SVG markup made by the server) and the key as text.
    pub qr_svg: String,
    pub key_text: String,
    pub codes_left: i64,
    pub reauth: Reauth,
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use domain::{
        accounts::{profile, reauth},
        sessions::{AuthState, AUTH_KEY},
    };
    use tower_sessions::Session;

    pub async fn session() -> Result<Session, ServerFnError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| ServerFnError::new("no session"))
    }

    pub async fn signed_in(session: &Session) -> Option<AuthState> {
        session.get::<AuthState>(AUTH_KEY).await.ok().flatten()
    }

    /// The account signed in to `session`, if any: read once per request (see
    /// [`crate::server_fns::RequestAccount`]).
    pub async fn signed_in_account(
        session: &Session,
    ) -> Result<Option<profile::Account>, ServerFnError> {
        let Some(auth) = signed_in(session).await else {
            return Ok(None);
        };
        let portal = crate::server_fns::portal()?;
        let load = || async {
            profile::load(&portal.db, auth.user_id)
                .await
                .map_err(ServerFnError::new)
        };
        let account = match use_context::<crate::server_fns::RequestAccount>() {
            Some(cache) => cache.0.get_or_try_init(load).await?.clone(),
            None => load().await?,
        };
        // The session's user cannot change within a request; checked all the same.
        let account = account.filter(|a| a.user_id == auth.user_id);
        Ok(account)
    }

    /// The signed-in account, or a redirect to the sign-in page.
    pub async fn require_account() -> Result<(Session, profile::Account), ServerFnError> {
        let session = session().await?;
        if let Some(account) = signed_in_account(&session).await? {
            return Ok((session, account));
        }
        leptos_axum::redirect("/sign-in");
        Err(ServerFnError::new("not signed in"))
    }

    /// The signed-in account and its customer (always from the session, never from the
    /// request), or a redirect to the sign-in page.
    pub async fn require_customer() -> Result<(Session, profile::Account, uuid::Uuid), ServerFnError>
    {
        let (session, account) = require_account().await?;
        let customer_id = account
            .customer_id
            .ok_or_else(|| ServerFnError::new("no customer"))?;
        Ok((session, account, customer_id))
    }

    pub fn viewer(account: &profile::Account) -> Viewer {
        Viewer {
            display_name: account.display_name.clone(),
            email: account.email.clone(),
            email_verified: account.email_verified(),
            past_due: account.card_payment_overdue,
        }
    }

    pub fn reauth_of(account: &profile::Account) -> Reauth {
        match reauth::method(account) {
            reauth::ReauthMethod::Password => Reauth::Password,
            reauth::ReauthMethod::Code => Reauth::Code,
            reauth::ReauthMethod::Provider => Reauth::Provider,
        }
    }

    /// "22 Nov 2026, 14:05 UTC".
    pub fn when(ms: i64) -> String {
        let format = time::macros::format_description!(
            "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
        );
        time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_default()
    }
}

#[cfg(feature = "ssr")]
pub use server::{require_account, require_customer, session, signed_in, when};

/// The flash left by the last form post, removed as it is read.
#[server(endpoint = "flash")]
pub async fn take_flash() -> Result<Option<Flash>, ServerFnError> {
    let session = server::session().await?;
    // Looked at first: `remove` marks the session changed even when there is nothing to take,
    // which would write the session back (and send its cookie again) on every page load.
    let flash = session
        .get::<Flash>(crate::forms::FLASH_KEY)
        .await
        .ok()
        .flatten();
    if flash.is_some() {
        let _ = session.remove_value(crate::forms::FLASH_KEY).await;
    }
    Ok(flash)
}

/// The signed-in person, if any.
#[server(endpoint = "viewer")]
pub async fn current_viewer() -> Result<Option<Viewer>, ServerFnError> {
    let session = server::session().await?;
    let Some(account) = server::signed_in_account(&session).await? else {
        return Ok(None);
    };
    Ok(Some(server::viewer(&account)))
}

#[server(endpoint = "account")]
pub async fn load_account_overview() -> Result<AccountOverview, ServerFnError> {
    let (session, account) = server::require_account().await?;
    let portal = crate::server_fns::portal()?;
    let now = portal.clock.now_ms();
    let absolute = use_context::<crate::server_fns::SessionPolicy>()
        .map(|p| p.absolute_ms)
        .unwrap_or(7 * 24 * 3_600_000);
    let current = session
        .id()
        .map(|id| domain::sessions::storage_key(&id.to_string()));
    let sessions =
        domain::sessions::list_for_account(&portal.db, account.user_id, now, now - absolute)
            .await
            .map_err(ServerFnError::new)?
            .into_iter()
            .map(|s| SessionView {
                current: current.as_deref() == Some(s.id.as_str()),
                device: domain::sessions::describe_device(s.user_agent.as_deref()),
                signed_in: server::when(s.signed_in_at.unwrap_or(s.created_at)),
                last_seen: server::when(s.last_seen_at),
                ip: s
                    .client_ip
                    .as_deref()
                    .map(domain::sessions::truncate_ip)
                    .unwrap_or_default(),
                id: s.id,
            })
            .collect();
    let providers = use_context::<crate::server_fns::AuthProviders>()
        .unwrap_or_default()
        .0;
    let name_of = |id: &str| {
        providers
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let identities: Vec<IdentityView> =
        domain::accounts::identities::list(&portal.db, account.user_id)
            .await
            .map_err(ServerFnError::new)?
            .into_iter()
            .map(|i| IdentityView {
                provider_name: name_of(&i.provider),
                linked: server::when(i.created_at),
                provider: i.provider,
                subject: i.subject,
                email: i.email,
            })
            .collect();
    let linkable = providers
        .iter()
        .filter(|(id, _)| !identities.iter().any(|i| &i.provider == id))
        .cloned()
        .collect();
    Ok(AccountOverview {
        identities,
        linkable,
        viewer: server::viewer(&account),
        created: server::when(account.created_at),
        has_password: account.has_password,
        two_factor: account.two_factor_enabled(),
        reauth: server::reauth_of(&account),
        sessions,
    })
}

#[server(endpoint = "two_factor")]
pub async fn load_two_factor() -> Result<TwoFactorView, ServerFnError> {
    use domain::accounts::two_factor;
    let (_, account) = server::require_account().await?;
    let portal = crate::server_fns::portal()?;
    let reauth = server::reauth_of(&account);
    if account.two_factor_enabled() {
        let codes_left = two_factor::recovery_codes_left(&portal.db, account.user_id)
            .await
            .map_err(ServerFnError::new)?;
        return Ok(TwoFactorView {
            enabled: true,
            qr_svg: String::new(),
            key_text: String::new(),
            codes_left,
            reauth,
        });
    }
    // Only an enrolment that "Set up" (a POST) started: loading the page creates no secret.
    let enrolment = two_factor::enrolment(&portal, account.user_id)
        .await
        .map_err(ServerFnError::new)?;
    let (qr_svg, key_text) = enrolment
        .map(|e| (e.qr_svg, e.key_text))
        .unwrap_or_default();
    Ok(TwoFactorView {
        enabled: false,
        qr_svg,
        key_text,
        codes_left: 0,
        reauth,
    })
}

/// Whether a password-reset link can still be used (the page shows the form only then).
#[server(endpoint = "reset_link")]
pub async fn reset_link_state(token: String) -> Result<Option<String>, ServerFnError> {
    let portal = crate::server_fns::portal()?;
    Ok(
        match domain::accounts::reset::link_is_live(&portal, &token)
            .await
            .map_err(ServerFnError::new)?
        {
            Ok(()) => None,
            Err(domain::accounts::email_tokens::TokenError::Expired) => {
                Some(crate::i18n::tr("reset.link_expired"))
            }
            Err(domain::accounts::email_tokens::TokenError::Invalid) => {
                Some(crate::i18n::tr("reset.link_invalid"))
            }
        },
    )
}

/// What the sign-up form of a person coming from a provider starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalSignUpView {
    pub provider_name: String,
    pub email: String,
    pub display_name: String,
    pub email_verified: bool,
}

#[server(endpoint = "external_sign_up")]
pub async fn load_external_sign_up() -> Result<Option<ExternalSignUpView>, ServerFnError> {
    use domain::accounts::identities::{PendingIdentity, PENDING_IDENTITY_KEY};
    let session = server::session().await?;
    let portal = crate::server_fns::portal()?;
    let Some(pending) = session
        .get::<PendingIdentity>(PENDING_IDENTITY_KEY)
        .await
        .ok()
        .flatten()
        .filter(|p| p.is_fresh(portal.clock.now_ms()))
    else {
        return Ok(None);
    };
    let providers = use_context::<crate::server_fns::AuthProviders>()
        .unwrap_or_default()
        .0;
    let identity = pending.identity;
    Ok(Some(ExternalSignUpView {
        provider_name: providers
            .iter()
            .find(|(id, _)| *id == identity.provider)
            .map(|(_, name)| name.clone())
            .unwrap_or(identity.provider.clone()),
        email: identity.email.unwrap_or_default(),
        display_name: identity.name.unwrap_or_default(),
        email_verified: identity.email_verified,
    }))
}
