//! What a homeserver's settings page and users page show. Both read the running homeserver's
//! admin API with the portal's service user; loading them changes nothing.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub token: String,
    /// "1 of 10" or "3, no limit".
    pub used: String,
    pub pending: u32,
    /// "31 Dec 2026, 00:00 UTC", or None (never expires).
    pub expires: Option<String>,
    /// Still accepted: not expired, uses left.
    pub usable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSettingsView {
    pub subscription: String,
    pub server_name: String,
    /// A translation key of the homeserver's state.
    pub state_key: String,
    pub running: bool,
    /// Terminating or terminated: nothing to change.
    pub ended: bool,
    /// "closed", "token" or "open".
    pub registration: String,
    pub federation: bool,
    pub guest_access: bool,
    /// The plan's monthly-active-user limit.
    pub max_monthly_active_users: Option<u32>,
    /// The last change is saved and not in effect yet (the homeserver restarts to apply it).
    pub applying: bool,
    /// The registration tokens (None: the homeserver could not be asked).
    pub tokens: Option<Vec<TokenView>>,
    /// Why the tokens could not be read: a translation key.
    pub tokens_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub display_name: Option<String>,
    pub admin: bool,
    pub deactivated: bool,
    pub created: Option<String>,
    /// The portal's own user: listed, not changeable.
    pub portal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostUsersView {
    pub subscription: String,
    pub server_name: String,
    pub running: bool,
    pub users: Vec<UserView>,
    pub total: u64,
    /// "Users 26–50 of 73".
    pub showing: String,
    pub previous: Option<u64>,
    pub next: Option<u64>,
    /// Why the users could not be read: a translation key.
    pub error: Option<String>,
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use domain::{
        billing::subscriptions::{self, HomeserverState},
        homeservers::{
            lifecycle,
            manage::{self, ManageError},
        },
    };

    /// The customer's homeserver of subscription `id`, for an owner or technical member.
    pub async fn homeserver(
        portal: &domain::Portal,
        id: &str,
    ) -> Result<(uuid::Uuid, lifecycle::Homeserver), ServerFnError> {
        let (_, account, customer_id) = crate::server_fns::account::require_customer().await?;
        if !account
            .role
            .is_some_and(domain::accounts::profile::MemberRole::manages_homeservers)
        {
            return Err(ServerFnError::new("not found"));
        }
        let id = uuid::Uuid::parse_str(id).map_err(|_| ServerFnError::new("not found"))?;
        let sub = subscriptions::get(&portal.db, customer_id, id)
            .await
            .map_err(ServerFnError::new)?
            .ok_or_else(|| ServerFnError::new("not found"))?;
        let homeserver = lifecycle::load(&portal.db, sub.homeserver_id)
            .await
            .map_err(ServerFnError::new)?
            .filter(|h| h.customer_id == customer_id)
            .ok_or_else(|| ServerFnError::new("not found"))?;
        Ok((customer_id, homeserver))
    }

    /// Why the admin API could not be asked, as a translation key.
    pub fn unavailable(error: &ManageError) -> String {
        match error {
            ManageError::NotRunning | ManageError::NotFound => "manage_host.not_running",
            ManageError::Synapse(_) => "manage_host.unreachable",
            _ => "manage_host.refused",
        }
        .to_string()
    }

    pub fn token_view(token: domain::homeservers::synapse::RegistrationToken) -> TokenView {
        let now = manage::wall_clock_ms();
        let used = match token.uses_allowed {
            Some(allowed) => crate::i18n::tr("tokens.used_of")
                .replace("%{used}", &token.completed.to_string())
                .replace("%{allowed}", &allowed.to_string()),
            None => crate::i18n::tr("tokens.used_unlimited")
                .replace("%{used}", &token.completed.to_string()),
        };
        let expired = token.expiry_time.is_some_and(|at| at <= now);
        let used_up = token
            .uses_allowed
            .is_some_and(|allowed| token.completed + token.pending >= allowed);
        TokenView {
            used,
            pending: token.pending,
            expires: token.expiry_time.map(crate::server_fns::account::when),
            usable: !expired && !used_up,
            token: token.token,
        }
    }

    pub fn ended(state: HomeserverState) -> bool {
        matches!(
            state,
            HomeserverState::Terminating | HomeserverState::Terminated
        )
    }
}

#[server(endpoint = "host_settings")]
pub async fn load_host_settings(id: String) -> Result<HostSettingsView, ServerFnError> {
    use domain::{billing::subscriptions::HomeserverState, homeservers::manage};
    let portal = super::portal()?;
    let (customer_id, homeserver) = server::homeserver(&portal, &id).await?;
    let settings = domain::homeservers::settings::of(&portal, &homeserver);
    let running = homeserver.state == HomeserverState::Running;
    let (tokens, tokens_error) = if running {
        let listed = match manage::access(&portal, customer_id, homeserver.id).await {
            Ok(admin) => manage::tokens(&portal, &admin).await,
            Err(error) => Err(error),
        };
        match listed {
            Ok(tokens) => (
                Some(tokens.into_iter().map(server::token_view).collect()),
                None,
            ),
            Err(error) => (None, Some(server::unavailable(&error))),
        }
    } else {
        (None, Some("manage_host.not_running".to_string()))
    };
    Ok(HostSettingsView {
        subscription: id,
        server_name: portal
            .hosting
            .server_name(&homeserver.name, &homeserver.region),
        state_key: format!("homeserver.state_{}", homeserver.state.as_str()),
        running,
        ended: server::ended(homeserver.state),
        registration: settings.registration.as_str().to_string(),
        federation: settings.federation,
        guest_access: settings.guest_access,
        max_monthly_active_users: settings.max_monthly_active_users,
        applying: homeserver.settings_applied < homeserver.settings_version
            && homeserver.state == HomeserverState::Running,
        tokens,
        tokens_error,
    })
}

#[server(endpoint = "host_users")]
pub async fn load_host_users(id: String, from: u64) -> Result<HostUsersView, ServerFnError> {
    use domain::{billing::subscriptions::HomeserverState, homeservers::manage};
    let portal = super::portal()?;
    let (customer_id, homeserver) = server::homeserver(&portal, &id).await?;
    let server_name = portal
        .hosting
        .server_name(&homeserver.name, &homeserver.region);
    let running = homeserver.state == HomeserverState::Running;
    let listed = match manage::access(&portal, customer_id, homeserver.id).await {
        Ok(admin) => manage::users(&portal, &admin, from)
            .await
            .map(|page| (page, admin.service_user())),
        Err(error) => Err(error),
    };
    let mut view = HostUsersView {
        subscription: id,
        server_name,
        running,
        users: Vec::new(),
        total: 0,
        showing: String::new(),
        previous: None,
        next: None,
        error: None,
    };
    match listed {
        Ok((page, service_user)) => {
            let per_page = u64::from(manage::USERS_PER_PAGE);
            view.showing = if page.users.is_empty() {
                String::new()
            } else {
                crate::i18n::tr("users.showing")
                    .replace("%{first}", &(from + 1).to_string())
                    .replace("%{last}", &(from + page.users.len() as u64).to_string())
                    .replace("%{total}", &page.total.to_string())
            };
            view.total = page.total;
            view.previous = (from > 0).then(|| from.saturating_sub(per_page));
            view.next = page.next;
            view.users = page
                .users
                .into_iter()
                .map(|user| UserView {
                    portal: user.name == service_user,
                    created: user.creation_ts.map(crate::server_fns::account::when),
                    id: user.name,
                    display_name: user.displayname,
                    admin: user.admin,
                    deactivated: user.deactivated,
                })
                .collect();
        }
        Err(error) => view.error = Some(server::unavailable(&error)),
    }
    Ok(view)
}
