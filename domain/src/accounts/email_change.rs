//! Changing the account's email address: the person re-authenticates (the caller's job), a
//! single-use link goes to the new address (24 hours), and following it switches the address,
//! marks it verified and tells the old address.

use super::{
    address_proof::{self, Proof},
    email_tokens::{self, Purpose, TokenError, MAX_PER_HOUR},
    emails::{self, Kind},
    profile,
    signup::{email_is_valid, normalize_email, user_id_by_email, AccountError},
    throttle,
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    i18n::Locale,
    mail, on_tx, Portal,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRefusal {
    Invalid,
    SameAsNow,
    TooManyRequests,
}

impl ChangeRefusal {
    pub fn message_key(self) -> &'static str {
        match self {
            ChangeRefusal::Invalid => "signup.email_invalid",
            ChangeRefusal::SameAsNow => "email_change.same",
            ChangeRefusal::TooManyRequests => "verify.resend_limit",
        }
    }
}

/// Sends a confirmation link to `new_email`. An address that belongs to another account gets a
/// notice instead, and the caller answers the same, so this does not reveal who has an account.
pub async fn request(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    new_email: &str,
) -> Result<Result<(), ChangeRefusal>, AccountError> {
    let new_email = new_email.trim();
    if !email_is_valid(new_email) {
        return Ok(Err(ChangeRefusal::Invalid));
    }
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let normalized = normalize_email(new_email);
    if account.email.as_deref().map(normalize_email) == Some(normalized.clone()) {
        return Ok(Err(ChangeRefusal::SameAsNow));
    }
    if email_tokens::recent_count(&portal.db, user_id, Purpose::Change, &*portal.clock).await?
        >= MAX_PER_HOUR
    {
        return Ok(Err(ChangeRefusal::TooManyRequests));
    }
    let mut tx = portal.db.begin().await?;
    let raw = email_tokens::create(
        &mut tx,
        user_id,
        Purpose::Change,
        new_email,
        &*portal.clock,
        &*portal.random,
    )
    .await?;
    // An account that never proved the address holds nothing: the confirmation link goes out
    // and, once followed, frees the address (see `address_proof`).
    let owner = match user_id_by_email(&portal.db, &normalized).await? {
        Some(owner) => profile::load(&portal.db, owner)
            .await?
            .filter(|owner| owner.email_verified()),
        None => None,
    };
    let (clock, random) = (&*portal.clock, &*portal.random);
    let message = match owner {
        // As for sign-up, a few of these a day at most (the answer is the same either way).
        Some(owner) => throttle::address_taken_notice(&mut tx, meta, owner.user_id, clock, random)
            .await?
            .then(|| {
                emails::compose(
                    Kind::AddressTaken,
                    Locale::En,
                    new_email,
                    owner.user_id,
                    &owner.display_name,
                    Some(&format!("{}/forgot-password", portal.public_url)),
                )
            }),
        None => Some(emails::compose(
            Kind::ConfirmNewAddress,
            Locale::En,
            new_email,
            user_id,
            &account.display_name,
            Some(&format!("{}/confirm-email/{raw}", portal.public_url)),
        )),
    };
    if let Some(message) = message {
        mail::enqueue(&mut tx, &message, clock, random).await?;
    }
    let event = AuditEvent::new(Actor::User(user_id), "email.change_requested")
        .target("user", user_id)
        .personal(serde_json::json!({ "new_email": new_email }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmRefusal {
    Link(TokenError),
    /// Someone else took the address in the meantime.
    Taken,
}

/// Follows a confirmation link: the account's address becomes the new one, verified.
pub async fn confirm(
    portal: &Portal,
    meta: &RequestMeta,
    raw: &str,
) -> Result<Result<Uuid, ConfirmRefusal>, AccountError> {
    let mut tx = portal.db.begin().await?;
    let (user_id, new_email) =
        match email_tokens::consume(&mut tx, raw, Purpose::Change, &*portal.clock).await? {
            Ok(found) => found,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(ConfirmRefusal::Link(e)));
            }
        };
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let normalized = normalize_email(&new_email);
    // Following the link proves the address: an account holding it unproven lets it go.
    address_proof::release_address(
        &mut tx,
        &normalized,
        user_id,
        meta,
        &*portal.clock,
        &*portal.random,
    )
    .await?;
    let holder: Option<Uuid> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT id FROM users WHERE email_normalized = $1",
    )
    .bind(&normalized)
    .fetch_optional(conn)
    .await)?;
    if holder.is_some_and(|owner| owner != user_id) {
        tx.rollback().await?;
        return Ok(Err(ConfirmRefusal::Taken));
    }
    let updated = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET email = $2, email_normalized = $3, email_verified_at = $4 WHERE id = $1",
    )
    .bind(user_id)
    .bind(&new_email)
    .bind(&normalized)
    .bind(portal.clock.now_ms())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()));
    match updated {
        Ok(_) if account.email_verified() => {}
        Ok(_) => {
            address_proof::address_verified(
                &mut tx,
                user_id,
                Proof::ChangeLink,
                &portal.public_url,
                meta,
                &*portal.clock,
                &*portal.random,
            )
            .await?;
        }
        // The unique index: taken between the check and the update.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            tx.rollback().await?;
            return Ok(Err(ConfirmRefusal::Taken));
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(old) = account.email.as_deref() {
        let notice = emails::compose(
            Kind::EmailChanged,
            Locale::En,
            old,
            user_id,
            &account.display_name,
            Some(&format!("{}/forgot-password", portal.public_url)),
        );
        mail::enqueue(&mut tx, &notice, &*portal.clock, &*portal.random).await?;
    }
    let mut event = AuditEvent::new(Actor::User(user_id), "email.changed")
        .target("user", user_id)
        .personal(serde_json::json!({ "old_email": account.email, "new_email": new_email }));
    if let Some(customer) = account.customer_id {
        event = event.customer(customer);
    }
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(user_id))
}
