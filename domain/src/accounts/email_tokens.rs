//! Single-use, expiring links sent by email: verification (24 hours), password reset (1 hour),
//! email change (24 hours), re-authentication (15 minutes). The link carries 256 random bits; the database keeps only their SHA-256.

use crate::{
    clock::Clock,
    db::{Db, Tx},
    on_db, on_tx,
    random::{token, Random},
};
use sha2::{Digest, Sha256};
use time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
    Change,
    /// Confirms a sensitive change for an account whose provider cannot prove a fresh sign-in.
    Reauth,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
            Purpose::Change => "change",
            Purpose::Reauth => "reauth",
        }
    }

    pub fn lifetime(self) -> Duration {
        match self {
            Purpose::Verify | Purpose::Change => Duration::hours(24),
            Purpose::Reset => Duration::hours(1),
            Purpose::Reauth => Duration::minutes(15),
        }
    }
}

/// At most this many links of one purpose per account per hour (resend is rate limited).
pub const MAX_PER_HOUR: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this link is not valid: it may have been used already, or mistyped")]
    Invalid,
    #[error("this link has expired")]
    Expired,
}

fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.trim().as_bytes()))
}

/// How many links of `purpose` the account was sent in the last hour.
pub async fn recent_count(
    db: &Db,
    user_id: Uuid,
    purpose: Purpose,
    clock: &dyn Clock,
) -> Result<i64, sqlx::Error> {
    let since = clock.now_ms() - 3_600_000;
    on_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM email_tokens WHERE user_id = $1 AND purpose = $2 AND created_at > $3",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(since)
    .fetch_one(pool)
    .await)
}

/// Creates a link token inside the caller's transaction and returns it (to put in the email).
pub async fn create(
    tx: &mut Tx,
    user_id: Uuid,
    purpose: Purpose,
    email: &str,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<String, sqlx::Error> {
    let raw = token(random, 32);
    let now = clock.now_ms();
    let expires = now + purpose.lifetime().whole_milliseconds() as i64;
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash(&raw))
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(email)
    .bind(expires)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    Ok(raw)
}

/// Uses up a token: returns the account and the address the link was sent to. Atomic, so two
/// clicks on the same link succeed once.
pub async fn consume(
    tx: &mut Tx,
    raw: &str,
    purpose: Purpose,
    clock: &dyn Clock,
) -> Result<Result<(Uuid, String), TokenError>, sqlx::Error> {
    let now = clock.now_ms();
    let token_hash = hash(raw);
    let used: Option<(Uuid, String)> = on_tx!(tx, conn => sqlx::query_as(
        "UPDATE email_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id, email",
    )
    .bind(&token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(conn)
    .await)?;
    if let Some(found) = used {
        return Ok(Ok(found));
    }
    let expired: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT expires_at FROM email_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(&token_hash)
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await)?;
    Ok(Err(if expired.is_some() {
        TokenError::Expired
    } else {
        TokenError::Invalid
    }))
}
