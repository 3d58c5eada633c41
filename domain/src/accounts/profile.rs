//! The signed-in person's own account: what the account page shows, renaming, and changing
//! the password (which ends the account's other sessions and sends a notice).

use super::{
    emails::{self, Kind},
    password::{check_new_password, PasswordProblem, StoredPassword},
    signup::{AccountError, MAX_NAME_LENGTH},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    i18n::Locale,
    mail, on_db, on_tx, sessions, Portal,
};
use uuid::Uuid;

crate::text_enum! {
    /// What a member may do for their customer (`memberships.role`).
    pub enum MemberRole {
        Owner = "owner",
        Billing = "billing",
        Technical = "technical",
    }
}

impl MemberRole {
    /// Who changes a homeserver's settings, registration tokens and users: the owner and the
    /// technical role.
    pub fn manages_homeservers(self) -> bool {
        matches!(self, MemberRole::Owner | MemberRole::Technical)
    }

    /// Who reads the customer's invoices and manages their links: the owner (later also the
    /// billing role).
    pub fn reads_invoices(self) -> bool {
        self == MemberRole::Owner
    }
}

/// A user as the portal shows them to themselves, with their (first) membership.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub user_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub role: Option<MemberRole>,
    pub email: Option<String>,
    pub email_verified_at: Option<i64>,
    pub display_name: String,
    pub has_password: bool,
    pub totp_enabled_at: Option<i64>,
    pub created_at: i64,
    /// A card subscription of the customer is past due or unpaid (the banner on every page):
    /// read with the account so that a page asks the database once for both.
    pub card_payment_overdue: bool,
}

impl Account {
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    pub fn two_factor_enabled(&self) -> bool {
        self.totp_enabled_at.is_some()
    }
}

pub async fn load(db: &Db, user_id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, Account>(
        "SELECT u.id AS user_id, m.customer_id, m.role, u.email, u.email_verified_at, u.display_name, \
                (u.password_hash IS NOT NULL) AS has_password, u.totp_enabled_at, u.created_at, \
                EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = m.customer_id \
                        AND s.method = 'stripe' AND s.status IN ('past_due', 'unpaid')) AS card_payment_overdue \
         FROM users u LEFT JOIN memberships m ON m.user_id = u.id \
         WHERE u.id = $1 ORDER BY m.created_at LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)
}

/// Why a new name was refused: a message key of the translation layer.
pub fn check_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.is_empty() {
        Err("signup.name_required")
    } else if name.chars().count() > MAX_NAME_LENGTH {
        Err("signup.name_too_long")
    } else if name.chars().any(char::is_control) {
        Err("signup.name_invalid")
    } else {
        Ok(name.to_string())
    }
}

pub async fn rename(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    name: &str,
) -> Result<Result<(), &'static str>, AccountError> {
    let name = match check_name(name) {
        Ok(name) => name,
        Err(key) => return Ok(Err(key)),
    };
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query("UPDATE users SET display_name = $2 WHERE id = $1")
        .bind(user_id)
        .bind(&name)
        .execute(conn)
        .await
        .map(|_| ()))?;
    let event = AuditEvent::new(Actor::User(user_id), "account.renamed").target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// The stored password hash, if the account has one.
pub async fn stored_password(
    db: &Db,
    user_id: Uuid,
) -> Result<Option<StoredPassword>, sqlx::Error> {
    let row: Option<(Option<String>, Option<i32>)> = on_db!(db, pool => sqlx::query_as(
        "SELECT password_hash, password_scheme FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?;
    Ok(match row {
        Some((Some(hash), Some(scheme))) => Some(StoredPassword { scheme, hash }),
        _ => None,
    })
}

/// Sets a new password (the caller has re-authenticated the person, or followed a reset link),
/// ends every session of the account except `keep`, and tells the account's address.
pub async fn set_password(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    new_password: &str,
    keep_session: Option<&str>,
    action: &'static str,
) -> Result<Result<(), PasswordProblem>, AccountError> {
    let Some(account) = load(&portal.db, user_id).await? else {
        return Err(sqlx::Error::RowNotFound.into());
    };
    let email = account.email.clone().unwrap_or_default();
    if let Err(problem) = check_new_password(new_password, &[&email, &account.display_name]) {
        return Ok(Err(problem));
    }
    let stored = portal.passwords.hash(new_password).await?;
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET password_hash = $2, password_scheme = $3, sign_in_failures = 0, \
         last_sign_in_failure_at = NULL WHERE id = $1",
    )
    .bind(user_id)
    .bind(&stored.hash)
    .bind(stored.scheme)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let mut event = AuditEvent::new(Actor::User(user_id), action).target("user", user_id);
    if let Some(customer) = account.customer_id {
        event = event.customer(customer);
    }
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    if let Some(to) = &account.email {
        let link = format!("{}/forgot-password", portal.public_url);
        let notice = emails::compose(
            Kind::PasswordChanged,
            Locale::En,
            to,
            user_id,
            &account.display_name,
            Some(&link),
        );
        mail::enqueue(&mut tx, &notice, &*portal.clock, &*portal.random).await?;
    }
    match keep_session {
        Some(keep) => sessions::revoke_others(&mut tx, user_id, keep).await?,
        None => sessions::revoke_all(&mut tx, user_id).await?,
    };
    tx.commit().await?;
    Ok(Ok(()))
}
