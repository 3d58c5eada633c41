//! External identities (Google, X, any OpenID Connect provider), keyed by (provider, subject)
//! and never by email. An identity is never merged silently into an existing account: a new one
//! either signs up (with the same age and terms confirmations as everyone) or is linked from the
//! account page after re-authentication.

use super::{
    profile,
    signup::{email_is_valid, normalize_email, user_id_by_email, AccountError, TERMS_VERSION},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    on_db, on_tx,
    random::new_id,
    Portal,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a provider told us about the person, after its token was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    /// Only when the provider says the address is verified.
    pub email_verified: bool,
    pub name: Option<String>,
    /// When the person last signed in at the provider (seconds since the epoch), if it says
    /// (OpenID Connect's `auth_time`; X has no such claim).
    #[serde(default)]
    pub auth_time: Option<i64>,
}

/// The session entry of an identity whose owner is still to fill in the sign-up form.
pub const PENDING_IDENTITY_KEY: &str = "pending_identity";
/// The sign-up form must be sent within this time of the provider's answer.
pub const PENDING_LIFETIME_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingIdentity {
    pub identity: ExternalIdentity,
    pub at: i64,
}

impl PendingIdentity {
    pub fn is_fresh(&self, now_ms: i64) -> bool {
        now_ms - self.at < PENDING_LIFETIME_MS
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: i64,
}

pub async fn find_user(
    db: &Db,
    provider: &str,
    subject: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_scalar(
        "SELECT user_id FROM identities WHERE provider = $1 AND subject = $2",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(pool)
    .await)
}

pub async fn list(db: &Db, user_id: Uuid) -> Result<Vec<LinkedIdentity>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, LinkedIdentity>(
        "SELECT provider, subject, email, created_at FROM identities WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await)
}

async fn insert(
    tx: &mut crate::db::Tx,
    user_id: Uuid,
    identity: &ExternalIdentity,
    now: i64,
) -> Result<u64, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO identities (provider, subject, user_id, email, email_verified, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (provider, subject) DO NOTHING",
    )
    .bind(&identity.provider)
    .bind(&identity.subject)
    .bind(user_id)
    .bind(&identity.email)
    .bind(identity.email_verified)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// The identity already belongs to another account.
    UsedByAnother,
}

/// Links an identity to the signed-in account (the caller has re-authenticated the person).
pub async fn link(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    identity: &ExternalIdentity,
) -> Result<Result<(), LinkRefusal>, AccountError> {
    match find_user(&portal.db, &identity.provider, &identity.subject).await? {
        Some(owner) if owner == user_id => return Ok(Ok(())),
        Some(_) => return Ok(Err(LinkRefusal::UsedByAnother)),
        None => {}
    }
    let mut tx = portal.db.begin().await?;
    if insert(&mut tx, user_id, identity, portal.clock.now_ms()).await? == 0 {
        tx.rollback().await?;
        return Ok(Err(LinkRefusal::UsedByAnother));
    }
    let event = AuditEvent::new(Actor::User(user_id), "identity.linked")
        .target("user", user_id)
        .details(serde_json::json!({ "provider": identity.provider }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkRefusal {
    /// Without it the account would have no way to sign in.
    LastWayIn,
    NotFound,
}

/// Unlinks one of the account's identities, keeping at least one way to sign in. Scoped by
/// account: another account's identity is "not found".
pub async fn unlink(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    provider: &str,
    subject: &str,
) -> Result<Result<(), UnlinkRefusal>, AccountError> {
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let linked = list(&portal.db, user_id).await?;
    if !linked
        .iter()
        .any(|i| i.provider == provider && i.subject == subject)
    {
        return Ok(Err(UnlinkRefusal::NotFound));
    }
    if !account.has_password && linked.len() == 1 {
        return Ok(Err(UnlinkRefusal::LastWayIn));
    }
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM identities WHERE user_id = $1 AND provider = $2 AND subject = $3",
    )
    .bind(user_id)
    .bind(provider)
    .bind(subject)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let event = AuditEvent::new(Actor::User(user_id), "identity.unlinked")
        .target("user", user_id)
        .details(serde_json::json!({ "provider": provider }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// A sign-up through a provider, after the person confirmed age and terms and chose a name and
/// an address.
#[derive(Debug, Clone)]
pub struct ExternalSignUp {
    pub identity: ExternalIdentity,
    pub email: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalSignUpOutcome {
    /// Signed up; `verified` when the provider vouched for the chosen address.
    Created { user_id: Uuid, verified: bool },
    /// The address has an account already: never merged; link from that account instead.
    EmailTaken,
    /// The identity signed up a moment ago (a double submit).
    IdentityTaken,
}

pub async fn sign_up(
    portal: &Portal,
    meta: &RequestMeta,
    signup: &ExternalSignUp,
) -> Result<ExternalSignUpOutcome, AccountError> {
    let email = signup.email.trim();
    debug_assert!(email_is_valid(email));
    let normalized = normalize_email(email);
    // The provider's word counts only for the address it vouched for.
    let verified = signup.identity.email_verified
        && signup.identity.email.as_deref().map(normalize_email) == Some(normalized.clone());
    // An address that is taken stays taken, unless its holder never proved it and the
    // provider vouches for it now (an unproven address reserves nothing).
    if !verified && user_id_by_email(&portal.db, &normalized).await?.is_some() {
        return Ok(ExternalSignUpOutcome::EmailTaken);
    }
    let now = portal.clock.now_ms();
    let user_id = new_id(now, &*portal.random);
    let customer_id = new_id(now, &*portal.random);
    let mut tx = portal.db.begin().await?;
    if verified {
        super::address_proof::release_address(
            &mut tx,
            &normalized,
            user_id,
            meta,
            &*portal.clock,
            &*portal.random,
        )
        .await?;
    }
    super::signup::insert_customer(&mut tx, customer_id, &signup.display_name, now).await?;
    let inserted = on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO users (id, email, email_normalized, email_verified_at, display_name, \
         age_confirmed_at, terms_version, terms_accepted_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $6) ON CONFLICT (email_normalized) DO NOTHING",
    )
    .bind(user_id)
    .bind(email)
    .bind(&normalized)
    .bind(verified.then_some(now))
    .bind(&signup.display_name)
    .bind(now)
    .bind(TERMS_VERSION)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(ExternalSignUpOutcome::EmailTaken);
    }
    super::signup::add_owner(&mut tx, customer_id, user_id, now).await?;
    if insert(&mut tx, user_id, &signup.identity, now).await? == 0 {
        tx.rollback().await?;
        return Ok(ExternalSignUpOutcome::IdentityTaken);
    }
    let event = AuditEvent::new(Actor::User(user_id), "account.created")
        .customer(customer_id)
        .target("user", user_id)
        .details(serde_json::json!({ "method": signup.identity.provider, "terms_version": TERMS_VERSION }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    if !verified {
        super::verification::send(
            &mut tx,
            user_id,
            email,
            &signup.display_name,
            &portal.public_url,
            &*portal.clock,
            &*portal.random,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ExternalSignUpOutcome::Created { user_id, verified })
}

/// Records that the external sign-in flow with `state` has come back. False when it already
/// had: a replayed answer, refused.
pub async fn first_use_of_state(
    db: &Db,
    state: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(state.as_bytes()));
    on_db!(db, pool => sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
    let inserted = on_db!(db, pool => sqlx::query(
        "INSERT INTO oauth_states (state_hash, expires_at) VALUES ($1, $2) ON CONFLICT (state_hash) DO NOTHING",
    )
    .bind(hash)
    .bind(expires_at)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}
