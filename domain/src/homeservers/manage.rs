//! What a customer administers on their running homeserver through the portal, by Synapse's
//! admin API with the portal's own service user: registration tokens and user accounts.
//!
//! Every function starts from the customer (from the signed-in session) and the homeserver,
//! and finds nothing when the homeserver is not that customer's. Reads change nothing; every
//! change is recorded in the audit log. Generated passwords are returned once and never kept.

use super::{
    lifecycle::{self, SERVICE_USER},
    synapse::{self, RegistrationToken, SynapseError, UserPage},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    billing::subscriptions::HomeserverState,
    portal::Portal,
};
use uuid::Uuid;

/// Users shown per page.
pub const USERS_PER_PAGE: u32 = 25;
/// The most registrations one token can allow.
pub const MAX_TOKEN_USES: u32 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Not this customer's homeserver (or none at all).
    #[error("no such homeserver")]
    NotFound,
    /// It is not running, so its admin API cannot be reached.
    #[error("the homeserver is not running")]
    NotRunning,
    /// Input the person can correct: a translation key.
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Synapse(#[from] SynapseError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the portal's access to the homeserver could not be opened: {0}")]
    Secret(String),
}

/// The way into one running homeserver's admin API.
pub struct Admin {
    pub homeserver_id: Uuid,
    pub customer_id: Uuid,
    pub base: String,
    pub token: String,
    /// `<name>.<domain>`: the part after the colon in its user ids.
    pub server_name: String,
}

/// The admin API of the customer's running homeserver.
pub async fn access(
    portal: &Portal,
    customer_id: Uuid,
    homeserver_id: Uuid,
) -> Result<Admin, ManageError> {
    let homeserver = lifecycle::load(&portal.db, homeserver_id)
        .await?
        .filter(|h| h.customer_id == customer_id)
        .ok_or(ManageError::NotFound)?;
    if homeserver.state != HomeserverState::Running {
        return Err(ManageError::NotRunning);
    }
    let deployment = homeserver.deployment(portal);
    let base = portal
        .hosting
        .provisioners
        .for_region(&homeserver.region)
        .and_then(|p| p.admin_url(&deployment))
        .ok_or(ManageError::NotRunning)?;
    let sealed = homeserver
        .service_token
        .as_deref()
        .ok_or(ManageError::NotRunning)?;
    let (token, _) = portal
        .secret_box
        .open(sealed)
        .map_err(|e| ManageError::Secret(e.to_string()))?;
    let token = String::from_utf8(token).map_err(|e| ManageError::Secret(e.to_string()))?;
    Ok(Admin {
        homeserver_id,
        customer_id,
        base,
        token,
        server_name: deployment.server_name,
    })
}

impl Admin {
    fn audit(&self, actor: Actor, action: &'static str, details: serde_json::Value) -> AuditEvent {
        AuditEvent::new(actor, action)
            .customer(self.customer_id)
            .target("homeserver", self.homeserver_id)
            .details(details)
    }

    /// The portal's own admin user: listed, never changed by the customer.
    pub fn service_user(&self) -> String {
        format!("@{SERVICE_USER}:{}", self.server_name)
    }

    /// A user id of this homeserver that the customer may change.
    fn changeable(&self, user_id: &str) -> Result<(), ManageError> {
        let localpart = user_id
            .strip_prefix('@')
            .and_then(|rest| rest.strip_suffix(&format!(":{}", self.server_name)))
            .ok_or(ManageError::Invalid("users.not_ours"))?;
        if localpart.is_empty() || localpart.contains(':') {
            return Err(ManageError::Invalid("users.not_ours"));
        }
        if localpart == SERVICE_USER {
            return Err(ManageError::Invalid("users.service_user"));
        }
        Ok(())
    }
}

async fn record(
    portal: &Portal,
    meta: &RequestMeta,
    event: &AuditEvent,
) -> Result<(), ManageError> {
    let mut tx = portal.db.begin().await?;
    audit::record(&mut tx, event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn tokens(portal: &Portal, admin: &Admin) -> Result<Vec<RegistrationToken>, ManageError> {
    Ok(synapse::registration_tokens(&portal.hosting.http, &admin.base, &admin.token).await?)
}

/// Makes a registration token that allows `uses` registrations (None: any number) until
/// `expires_at` (ms since the epoch, wall clock: Synapse checks it by its own clock).
pub async fn create_token(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    admin: &Admin,
    uses: Option<u32>,
    expires_at: Option<i64>,
) -> Result<RegistrationToken, ManageError> {
    if uses.is_some_and(|n| n == 0 || n > MAX_TOKEN_USES) {
        return Err(ManageError::Invalid("tokens.uses_invalid"));
    }
    if expires_at.is_some_and(|at| at <= wall_clock_ms()) {
        return Err(ManageError::Invalid("tokens.expiry_past"));
    }
    let token = synapse::create_registration_token(
        &portal.hosting.http,
        &admin.base,
        &admin.token,
        uses,
        expires_at,
    )
    .await?;
    // The token is not secret from the customer, but the audit log names it only by its start.
    let event = admin.audit(
        actor,
        "homeserver.registration_token_created",
        serde_json::json!({ "token_prefix": prefix(&token.token), "uses_allowed": uses, "expiry_time": expires_at }),
    );
    record(portal, meta, &event).await?;
    Ok(token)
}

pub async fn delete_token(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    admin: &Admin,
    token: &str,
) -> Result<(), ManageError> {
    // Synapse's tokens are made of these characters; anything else is no token of ours.
    if token.is_empty()
        || token.len() > 64
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
    {
        return Err(ManageError::Invalid("tokens.unknown"));
    }
    match synapse::delete_registration_token(&portal.hosting.http, &admin.base, &admin.token, token)
        .await
    {
        Ok(()) => {}
        Err(SynapseError::Refused(why)) if why.starts_with("404") => {
            return Err(ManageError::Invalid("tokens.unknown"))
        }
        Err(error) => return Err(error.into()),
    }
    let event = admin.audit(
        actor,
        "homeserver.registration_token_deleted",
        serde_json::json!({ "token_prefix": prefix(token) }),
    );
    record(portal, meta, &event).await
}

fn prefix(token: &str) -> String {
    token.chars().take(4).collect()
}

pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One page of the homeserver's users, starting at `from`.
pub async fn users(portal: &Portal, admin: &Admin, from: u64) -> Result<UserPage, ManageError> {
    Ok(synapse::users(
        &portal.hosting.http,
        &admin.base,
        &admin.token,
        from,
        USERS_PER_PAGE,
    )
    .await?)
}

/// Checks a new user's name: Matrix's historical user id grammar narrowed to what every
/// client shows well (lower-case letters, digits, `.`, `_`, `=`, `-`), at most 64 characters,
/// not starting with `_` (kept for bridges).
pub fn valid_localpart(localpart: &str) -> Result<(), &'static str> {
    if localpart.is_empty() {
        return Err("users.name_missing");
    }
    if localpart.len() > 64 {
        return Err("users.name_too_long");
    }
    if !localpart
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._=-".contains(c))
    {
        return Err("users.name_characters");
    }
    if localpart.starts_with('_') || localpart == SERVICE_USER {
        return Err("users.name_reserved");
    }
    Ok(())
}

/// Adds a user with a generated password, returned once: (user id, password).
pub async fn add_user(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    admin: &Admin,
    localpart: &str,
    is_admin: bool,
) -> Result<(String, String), ManageError> {
    valid_localpart(localpart).map_err(ManageError::Invalid)?;
    let user_id = format!("@{localpart}:{}", admin.server_name);
    let http = &portal.hosting.http;
    if synapse::user(http, &admin.base, &admin.token, &user_id)
        .await?
        .is_some()
    {
        return Err(ManageError::Invalid("users.name_taken"));
    }
    let password = crate::random::token(&*portal.random, 18);
    synapse::create_user(
        http,
        &admin.base,
        &admin.token,
        &user_id,
        &password,
        is_admin,
    )
    .await?;
    let event = admin.audit(
        actor,
        "homeserver.user_added",
        serde_json::json!({ "user": user_id, "admin": is_admin }),
    );
    record(portal, meta, &event).await?;
    Ok((user_id, password))
}

/// Checks that `user_id` is an active user of this homeserver that the customer may change.
async fn active_user(
    http: &reqwest::Client,
    admin: &Admin,
    user_id: &str,
) -> Result<(), ManageError> {
    admin.changeable(user_id)?;
    match synapse::user(http, &admin.base, &admin.token, user_id).await? {
        None => Err(ManageError::Invalid("users.not_ours")),
        Some(user) if user.deactivated => Err(ManageError::Invalid("users.deactivated")),
        Some(_) => Ok(()),
    }
}

/// Gives a user a new generated password, returned once; all their devices are signed out.
pub async fn reset_password(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    admin: &Admin,
    user_id: &str,
) -> Result<String, ManageError> {
    let http = &portal.hosting.http;
    active_user(http, admin, user_id).await?;
    let password = crate::random::token(&*portal.random, 18);
    synapse::reset_password(http, &admin.base, &admin.token, user_id, &password).await?;
    let event = admin.audit(
        actor,
        "homeserver.user_password_reset",
        serde_json::json!({ "user": user_id }),
    );
    record(portal, meta, &event).await?;
    Ok(password)
}

/// Deactivates a user: they can no longer sign in; what they wrote stays.
pub async fn deactivate(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    admin: &Admin,
    user_id: &str,
) -> Result<(), ManageError> {
    let http = &portal.hosting.http;
    active_user(http, admin, user_id).await?;
    synapse::deactivate(http, &admin.base, &admin.token, user_id).await?;
    let event = admin.audit(
        actor,
        "homeserver.user_deactivated",
        serde_json::json!({ "user": user_id }),
    );
    record(portal, meta, &event).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_user_names_are_checked() {
        assert_eq!(valid_localpart("alice.b-2"), Ok(()));
        assert_eq!(valid_localpart(""), Err("users.name_missing"));
        assert_eq!(valid_localpart("Alice"), Err("users.name_characters"));
        assert_eq!(valid_localpart("a/b"), Err("users.name_characters"));
        assert_eq!(valid_localpart("a:b"), Err("users.name_characters"));
        assert_eq!(valid_localpart("_bridge"), Err("users.name_reserved"));
        assert_eq!(valid_localpart(SERVICE_USER), Err("users.name_reserved"));
        assert_eq!(valid_localpart(&"a".repeat(65)), Err("users.name_too_long"));
    }

    fn admin() -> Admin {
        Admin {
            homeserver_id: Uuid::nil(),
            customer_id: Uuid::nil(),
            base: String::new(),
            token: String::new(),
            server_name: "alpha.localhost".into(),
        }
    }

    #[test]
    fn only_this_homeservers_users_other_than_the_portals_can_be_changed() {
        let admin = admin();
        assert!(admin.changeable("@bob:alpha.localhost").is_ok());
        assert!(admin.changeable("@bob:beta.localhost").is_err());
        assert!(admin.changeable("@bob:evil:alpha.localhost").is_err());
        assert!(admin.changeable("bob:alpha.localhost").is_err());
        assert!(admin
            .changeable("@customer-portal:alpha.localhost")
            .is_err());
    }
}
