//! Password reset: a request form that answers the same whether or not the address has an
//! account, a single-use link valid for one hour, and after the reset every session of the
//! account ends and a notice goes to the address.

use super::{
    address_proof::{self, Proof},
    email_tokens::{self, Purpose, TokenError, MAX_PER_HOUR},
    emails::{self, Kind},
    password::PasswordProblem,
    profile,
    signup::{normalize_email, AccountError},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    i18n::Locale,
    mail, on_db, on_tx, Portal,
};
use uuid::Uuid;

/// Sends a reset link if `email` belongs to an account (at most three an hour); otherwise does
/// nothing. The caller shows the same answer either way.
pub async fn request(portal: &Portal, meta: &RequestMeta, email: &str) -> Result<(), AccountError> {
    let row: Option<(Uuid, Option<String>, String)> = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT id, email, display_name FROM users WHERE email_normalized = $1",
    )
    .bind(normalize_email(email))
    .fetch_optional(pool)
    .await)?;
    let Some((user_id, Some(address), name)) = row else {
        return Ok(());
    };
    if email_tokens::recent_count(&portal.db, user_id, Purpose::Reset, &*portal.clock).await?
        >= MAX_PER_HOUR
    {
        return Ok(());
    }
    let mut tx = portal.db.begin().await?;
    let raw = email_tokens::create(
        &mut tx,
        user_id,
        Purpose::Reset,
        &address,
        &*portal.clock,
        &*portal.random,
    )
    .await?;
    let link = format!("{}/reset-password/{raw}", portal.public_url);
    let message = emails::compose(
        Kind::Reset,
        Locale::En,
        &address,
        user_id,
        &name,
        Some(&link),
    );
    mail::enqueue(&mut tx, &message, &*portal.clock, &*portal.random).await?;
    let event =
        AuditEvent::new(Actor::Anonymous, "password.reset_requested").target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetRefusal {
    Link(TokenError),
    Password(PasswordProblem),
}

/// Whether a reset link is still usable (the page shows the form only for a live link).
pub async fn link_is_live(
    portal: &Portal,
    raw: &str,
) -> Result<Result<(), TokenError>, AccountError> {
    let mut tx = portal.db.begin().await?;
    let result = email_tokens::consume(&mut tx, raw, Purpose::Reset, &*portal.clock).await?;
    tx.rollback().await?;
    Ok(result.map(|_| ()))
}

/// Sets a new password through a reset link. The link is used up only when the password is
/// accepted; the address counts as verified (the link reached it, see [`address_proof`]);
/// every session ends.
pub async fn complete(
    portal: &Portal,
    meta: &RequestMeta,
    raw: &str,
    new_password: &str,
) -> Result<Result<Uuid, ResetRefusal>, AccountError> {
    let mut tx = portal.db.begin().await?;
    let (user_id, address) =
        match email_tokens::consume(&mut tx, raw, Purpose::Reset, &*portal.clock).await? {
            Ok(found) => found,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(ResetRefusal::Link(e)));
            }
        };
    // Check the password before using the link up, so a refused password leaves it usable.
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if let Err(problem) =
        super::password::check_new_password(new_password, &[&address, &account.display_name])
    {
        tx.rollback().await?;
        return Ok(Err(ResetRefusal::Password(problem)));
    }
    let newly_verified = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET email_verified_at = $3 WHERE id = $1 AND email_normalized = $2 AND email_verified_at IS NULL",
    )
    .bind(user_id)
    .bind(normalize_email(&address))
    .bind(portal.clock.now_ms())
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if newly_verified {
        // Whoever set up this account before the address was proven keeps nothing of it.
        address_proof::address_verified(
            &mut tx,
            user_id,
            Proof::ResetLink,
            &portal.public_url,
            meta,
            &*portal.clock,
            &*portal.random,
        )
        .await?;
    }
    tx.commit().await?;
    match profile::set_password(portal, meta, user_id, new_password, None, "password.reset").await?
    {
        Ok(()) => Ok(Ok(user_id)),
        Err(problem) => Ok(Err(ResetRefusal::Password(problem))),
    }
}
