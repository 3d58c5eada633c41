//! Settings the customer manages on a homeserver: who may register, federation, guest access,
//! and the plan's limit of monthly active users. They are kept on the homeserver's row; the
//! supervisor brings the running homeserver to them (its provisioner rewrites the portal's part
//! of the configuration and restarts it where they changed) and records which change is in
//! effect.

use super::lifecycle;
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    billing::subscriptions::HomeserverState,
    on_db, on_tx,
    portal::Portal,
    text_enum,
};
use uuid::Uuid;

text_enum! {
    /// Who may create an account on the homeserver.
    pub enum Registration {
        /// Only the users the customer adds through the portal.
        Closed = "closed",
        /// Anyone with a registration token the customer made.
        Token = "token",
        /// Anyone (no email or captcha check).
        Open = "open",
    }
}

/// What the running homeserver should be configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub registration: Registration,
    pub federation: bool,
    pub guest_access: bool,
    /// The plan's monthly-active-user limit (None: no limit is configured).
    pub max_monthly_active_users: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            registration: Registration::Closed,
            federation: true,
            guest_access: false,
            max_monthly_active_users: None,
        }
    }
}

/// What the customer chooses (the plan's limit follows the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub registration: Registration,
    pub federation: bool,
    pub guest_access: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The homeserver has ended (or does not exist): nothing to configure.
    #[error("the homeserver has ended")]
    Ended,
}

/// Saves the customer's choice and wakes the supervisor to apply it. Returns whether anything
/// changed (saving the same choice again restarts nothing).
pub async fn save(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    homeserver_id: Uuid,
    choice: Choice,
) -> Result<bool, SettingsError> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let current: Option<(HomeserverState, Registration, bool, bool)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT state, registration, federation, guest_access FROM homeservers \
         WHERE id = $1 AND customer_id = $2",
    )
    .bind(homeserver_id)
    .bind(customer_id)
    .fetch_optional(conn)
    .await)?;
    let Some((state, registration, federation, guest_access)) = current else {
        return Err(SettingsError::Ended);
    };
    if matches!(
        state,
        HomeserverState::Terminating | HomeserverState::Terminated
    ) {
        return Err(SettingsError::Ended);
    }
    let before = Choice {
        registration,
        federation,
        guest_access,
    };
    if before == choice {
        return Ok(false);
    }
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET registration = $2, federation = $3, guest_access = $4, \
         settings_version = settings_version + 1, updated_at = $5 WHERE id = $1",
    )
    .bind(homeserver_id)
    .bind(choice.registration)
    .bind(choice.federation)
    .bind(choice.guest_access)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let event = AuditEvent::new(actor, "homeserver.settings_changed")
        .customer(customer_id)
        .target("homeserver", homeserver_id)
        .details(serde_json::json!({
            "registration": choice.registration.as_str(),
            "federation": choice.federation,
            "guest_access": choice.guest_access,
        }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    portal.hosting.wake.notify_one();
    Ok(true)
}

/// Records that the homeserver's process runs with the settings of `version` (the supervisor,
/// after it started or reconfigured it). Never moves backwards.
pub async fn mark_applied(portal: &Portal, id: Uuid, version: i64) -> Result<(), sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE homeservers SET settings_applied = $2 WHERE id = $1 AND settings_applied < $2",
    )
    .bind(id)
    .bind(version)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// The settings of a loaded homeserver, with its plan's limit.
pub fn of(portal: &Portal, homeserver: &lifecycle::Homeserver) -> Settings {
    let max_monthly_active_users = homeserver
        .plan(portal)
        .map(|plan| plan.limits.monthly_active_users);
    Settings {
        registration: homeserver.registration,
        federation: homeserver.federation,
        guest_access: homeserver.guest_access,
        max_monthly_active_users,
    }
}
