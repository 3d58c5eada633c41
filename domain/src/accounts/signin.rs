//! Sign-in with email and password. One answer for an unknown address and a wrong password,
//! with the same bcrypt work done in both cases; failures slow the account down (see
//! [`super::throttle`]); a hash of an older scheme or cost is replaced on success.

use super::{
    password::{PasswordHasher, StoredPassword},
    signup::{normalize_email, AccountError},
    throttle,
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    clock::Clock,
    db::Db,
    on_db,
    random::Random,
    Portal,
};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    /// The password is right. `customer_id` is the customer the user owns or belongs to (None
    /// for staff); `needs_second_factor` when two-factor authentication is on.
    SignedIn {
        user_id: Uuid,
        customer_id: Option<Uuid>,
        needs_second_factor: bool,
    },
    /// Unknown address or wrong password: the caller shows one message for both.
    Refused,
    /// Too many recent failures for this account: try again after the wait.
    Throttled(Duration),
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: Uuid,
    password_hash: Option<String>,
    password_scheme: Option<i32>,
    customer_id: Option<Uuid>,
    two_factor: bool,
}

pub async fn sign_in(
    db: &Db,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    random: &dyn Random,
    meta: &RequestMeta,
    email: &str,
    password: &str,
) -> Result<SignInOutcome, AccountError> {
    let candidate: Option<Candidate> = on_db!(db, pool => sqlx::query_as(
        "SELECT u.id, u.password_hash, u.password_scheme, (u.totp_enabled_at IS NOT NULL) AS two_factor, \
                (SELECT m.customer_id FROM memberships m WHERE m.user_id = u.id ORDER BY m.created_at LIMIT 1) AS customer_id \
         FROM users u WHERE u.email_normalized = $1",
    )
    .bind(normalize_email(email))
    .fetch_optional(pool)
    .await)?;
    let stored = candidate
        .as_ref()
        .and_then(|c| match (&c.password_hash, c.password_scheme) {
            (Some(hash), Some(scheme)) => Some((
                c,
                StoredPassword {
                    scheme,
                    hash: hash.clone(),
                },
            )),
            _ => None,
        });
    let Some((user, stored)) = stored else {
        // Unknown address, or an account without a password (external sign-in only).
        hasher.verify_nobody(password).await?;
        let event = AuditEvent::new(Actor::Anonymous, "sign_in.failed")
            .details(serde_json::json!({ "reason": "refused" }))
            .personal(serde_json::json!({ "email": email.trim() }));
        audit::record_alone(db, &event, meta, clock, random).await?;
        return Ok(SignInOutcome::Refused);
    };
    if let Err(wait) = throttle::account_may_try(db, user.id, clock).await? {
        return Ok(SignInOutcome::Throttled(wait));
    }
    let verification = hasher.verify(password, &stored).await?;
    let mut tx = db.begin().await?;
    if !verification.matches {
        throttle::record_failure(&mut tx, user.id, clock).await?;
        let mut event = AuditEvent::new(Actor::Anonymous, "sign_in.failed").target("user", user.id);
        if let Some(customer) = user.customer_id {
            event = event.customer(customer);
        }
        audit::record(&mut tx, &event, meta, clock, random).await?;
        tx.commit().await?;
        return Ok(SignInOutcome::Refused);
    }
    if verification.needs_rehash {
        let fresh = hasher.hash(password).await?;
        crate::on_tx!(&mut tx, conn => sqlx::query("UPDATE users SET password_hash = $2, password_scheme = $3 WHERE id = $1")
            .bind(user.id)
            .bind(&fresh.hash)
            .bind(fresh.scheme)
            .execute(conn)
            .await
            .map(|_| ()))?;
    }
    // With two-factor on, the sign-in is complete (and audited) only after the second step.
    let action = if user.two_factor {
        "sign_in.password_ok_second_factor_next"
    } else {
        "sign_in.password"
    };
    let mut event = AuditEvent::new(Actor::User(user.id), action).target("user", user.id);
    if let Some(customer) = user.customer_id {
        event = event.customer(customer);
    }
    throttle::clear_failures(&mut tx, user.id).await?;
    audit::record(&mut tx, &event, meta, clock, random).await?;
    tx.commit().await?;
    Ok(SignInOutcome::SignedIn {
        user_id: user.id,
        customer_id: user.customer_id,
        needs_second_factor: user.two_factor,
    })
}

/// Records the outcome of a sign-in's second step (a code from the authenticator app or a
/// recovery code): a wrong code counts as a failed sign-in, a right one forgets the failures;
/// both are audited in the same transaction.
pub async fn second_factor_checked(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    right: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    let action = if right {
        throttle::clear_failures(&mut tx, user_id).await?;
        "sign_in.two_factor"
    } else {
        throttle::record_failure(&mut tx, user_id, &*portal.clock).await?;
        "sign_in.second_factor_failed"
    };
    let event = AuditEvent::new(Actor::User(user_id), action).target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await
}

/// Records a sign-in through an external provider (the session is the caller's).
pub async fn signed_in_externally(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    customer_id: Option<Uuid>,
    provider: &str,
) -> Result<(), sqlx::Error> {
    let mut event = AuditEvent::new(Actor::User(user_id), "sign_in.external")
        .target("user", user_id)
        .details(serde_json::json!({ "provider": provider }));
    if let Some(customer) = customer_id {
        event = event.customer(customer);
    }
    audit::record_alone(&portal.db, &event, meta, &*portal.clock, &*portal.random)
        .await
        .map(|_| ())
}
