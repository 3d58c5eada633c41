//! Email verification: sign-up sends a single-use link (24 hours); until it is followed the
//! account can sign in but not buy; accounts never verified are deleted after 7 days so that
//! nobody can squat an address.

use super::{
    address_proof::{self, Proof},
    email_tokens::{self, Purpose, TokenError, MAX_PER_HOUR},
    emails::{self, Kind},
    signup::normalize_email,
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    clock::Clock,
    db::{Db, Tx},
    i18n::Locale,
    mail, on_db, on_tx,
    random::Random,
};
use uuid::Uuid;

pub const UNVERIFIED_LIFETIME: time::Duration = time::Duration::days(7);

/// Creates a verification link and queues its email, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    tx: &mut Tx,
    user_id: Uuid,
    email: &str,
    name: &str,
    public_url: &str,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<(), sqlx::Error> {
    let raw = email_tokens::create(tx, user_id, Purpose::Verify, email, clock, random).await?;
    let link = format!("{}/verify-email/{raw}", public_url.trim_end_matches('/'));
    mail::enqueue(
        tx,
        &emails::compose(Kind::Verify, Locale::En, email, user_id, name, Some(&link)),
        clock,
        random,
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendError {
    AlreadyVerified,
    TooManyRequests,
}

/// Sends a new link, at most [`MAX_PER_HOUR`] an hour.
pub async fn resend(
    db: &Db,
    user_id: Uuid,
    public_url: &str,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<Result<(), ResendError>, sqlx::Error> {
    let row: Option<(Option<String>, String, Option<i64>)> = on_db!(db, pool => sqlx::query_as(
        "SELECT email, display_name, email_verified_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?;
    let Some((Some(email), name, verified)) = row else {
        return Err(sqlx::Error::RowNotFound);
    };
    if verified.is_some() {
        return Ok(Err(ResendError::AlreadyVerified));
    }
    if email_tokens::recent_count(db, user_id, Purpose::Verify, clock).await? >= MAX_PER_HOUR {
        return Ok(Err(ResendError::TooManyRequests));
    }
    let mut tx = db.begin().await?;
    send(&mut tx, user_id, &email, &name, public_url, clock, random).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Follows a verification link (the POST of its page): marks the address verified if it is
/// still the account's, then applies [`address_proof::address_verified`].
pub async fn verify(
    db: &Db,
    raw: &str,
    public_url: &str,
    meta: &RequestMeta,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<Result<Uuid, TokenError>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let (user_id, email) = match email_tokens::consume(&mut tx, raw, Purpose::Verify, clock).await?
    {
        Ok(found) => found,
        Err(e) => {
            tx.rollback().await?;
            return Ok(Err(e));
        }
    };
    let updated = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET email_verified_at = $3 WHERE id = $1 AND email_normalized = $2 AND email_verified_at IS NULL",
    )
    .bind(user_id)
    .bind(normalize_email(&email))
    .bind(clock.now_ms())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if updated == 1 {
        let event = AuditEvent::new(Actor::User(user_id), "email.verified").target("user", user_id);
        audit::record(&mut tx, &event, meta, clock, random).await?;
        address_proof::address_verified(
            &mut tx,
            user_id,
            Proof::SignUpLink,
            public_url,
            meta,
            clock,
            random,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Ok(user_id))
}

/// Deletes accounts whose address was never verified within [`UNVERIFIED_LIFETIME`], with the
/// customers they alone own. Returns how many accounts went.
pub async fn purge_unverified(
    db: &Db,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<u64, sqlx::Error> {
    let cutoff = clock.now_ms() - UNVERIFIED_LIFETIME.whole_milliseconds() as i64;
    let stale: Vec<Uuid> = on_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM users WHERE email_verified_at IS NULL AND staff_role IS NULL AND created_at < $1",
    )
    .bind(cutoff)
    .fetch_all(pool)
    .await)?;
    for user_id in &stale {
        let mut tx = db.begin().await?;
        address_proof::delete_unverified_account(&mut tx, *user_id).await?;
        let event =
            AuditEvent::new(Actor::System, "account.deleted_unverified").target("user", user_id);
        audit::record(&mut tx, &event, &RequestMeta::default(), clock, random).await?;
        tx.commit().await?;
    }
    Ok(stale.len() as u64)
}
