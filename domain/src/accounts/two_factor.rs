//! Two-factor authentication for an account: enrolment (a pending secret until a code
//! confirms it), the ten recovery codes, checking a code at sign-in or re-authentication
//! (each TOTP step and each recovery code works once), and turning it off.

use super::{
    emails::{self, Kind},
    profile,
    signup::AccountError,
    totp::{self, Enrolment},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    i18n::{t, Locale},
    mail, on_db, on_tx, Portal,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorError {
    /// The code is wrong, used already, or from too long ago.
    WrongCode,
    /// Confirmation without an enrolment in progress.
    NotStarted,
    AlreadyEnabled,
}

fn unix_seconds(portal: &Portal) -> u64 {
    (portal.clock.now_ms() / 1000).max(0) as u64
}

fn open(portal: &Portal, sealed: &str) -> Result<Vec<u8>, AccountError> {
    portal
        .secret_box
        .open(sealed)
        .map(|(secret, _)| secret)
        .map_err(|e| AccountError::SealedSecret(e.to_string()))
}

/// The enrolment waiting to be confirmed, if "Set up" started one (reads only: the page that
/// shows it is a GET).
pub async fn enrolment(portal: &Portal, user_id: Uuid) -> Result<Option<Enrolment>, AccountError> {
    let Some(account) = profile::load(&portal.db, user_id).await? else {
        return Err(sqlx::Error::RowNotFound.into());
    };
    if account.two_factor_enabled() {
        return Err(AccountError::TwoFactorAlreadyOn);
    }
    let label = account
        .email
        .clone()
        .unwrap_or_else(|| account.display_name.clone());
    let issuer = t(Locale::En, "site.name");
    let pending: Option<Option<String>> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT totp_pending_secret FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?;
    if let Some(Some(sealed)) = pending {
        if let Ok(secret) = open(portal, &sealed) {
            return Ok(Some(totp::enrolment_for(secret, &label, &issuer)));
        }
    }
    Ok(None)
}

/// Starts an enrolment (the POST of "Set up"): a new pending secret unless one is waiting.
pub async fn start_enrolment(portal: &Portal, user_id: Uuid) -> Result<Enrolment, AccountError> {
    if let Some(enrolment) = enrolment(portal, user_id).await? {
        return Ok(enrolment);
    }
    let Some(account) = profile::load(&portal.db, user_id).await? else {
        return Err(sqlx::Error::RowNotFound.into());
    };
    let label = account
        .email
        .clone()
        .unwrap_or_else(|| account.display_name.clone());
    let issuer = t(Locale::En, "site.name");
    let enrolment = totp::new_enrolment(&*portal.random, &label, &issuer);
    let sealed = portal.secret_box.seal(&enrolment.secret, &*portal.random);
    on_db!(&portal.db, pool => sqlx::query("UPDATE users SET totp_pending_secret = $2 WHERE id = $1")
        .bind(user_id)
        .bind(&sealed)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(enrolment)
}

/// Confirms the enrolment with a code from the app: two-factor is on, and the ten recovery
/// codes (to show once) are returned.
pub async fn confirm(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    code: &str,
) -> Result<Result<Vec<String>, TwoFactorError>, AccountError> {
    let row: Option<(Option<String>, Option<i64>)> = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT totp_pending_secret, totp_enabled_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?;
    let sealed = match row {
        Some((_, Some(_))) => return Ok(Err(TwoFactorError::AlreadyEnabled)),
        Some((Some(sealed), None)) => sealed,
        _ => return Ok(Err(TwoFactorError::NotStarted)),
    };
    let secret = open(portal, &sealed)?;
    let Some(step) = totp::verify_code(&secret, code, unix_seconds(portal), None) else {
        return Ok(Err(TwoFactorError::WrongCode));
    };
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let now = portal.clock.now_ms();
    let (codes, hashes) = totp::new_recovery_codes(&*portal.random);
    let mut tx = portal.db.begin().await?;
    let updated = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET totp_secret = $2, totp_pending_secret = NULL, totp_enabled_at = $3, totp_last_step = $4 \
         WHERE id = $1 AND totp_enabled_at IS NULL AND totp_pending_secret = $2",
    )
    .bind(user_id)
    .bind(&sealed)
    .bind(now)
    .bind(step as i64)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if updated != 1 {
        tx.rollback().await?;
        return Ok(Err(TwoFactorError::AlreadyEnabled));
    }
    replace_recovery_codes(&mut tx, user_id, &hashes, now).await?;
    notify(
        portal,
        &mut tx,
        meta,
        &account,
        "two_factor.enabled",
        Kind::TwoFactorEnabled,
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(codes))
}

async fn replace_recovery_codes(
    tx: &mut crate::db::Tx,
    user_id: Uuid,
    hashes: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ()))?;
    for hash in hashes {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

/// Audit entry and notice email for a two-factor change, in the caller's transaction.
async fn notify(
    portal: &Portal,
    tx: &mut crate::db::Tx,
    meta: &RequestMeta,
    account: &profile::Account,
    action: &'static str,
    kind: Kind,
) -> Result<(), AccountError> {
    let user_id = account.user_id;
    let mut event = AuditEvent::new(Actor::User(user_id), action).target("user", user_id);
    if let Some(customer) = account.customer_id {
        event = event.customer(customer);
    }
    audit::record(tx, &event, meta, &*portal.clock, &*portal.random).await?;
    if let Some(to) = &account.email {
        let link = format!("{}/forgot-password", portal.public_url);
        let email = emails::compose(
            kind,
            Locale::En,
            to,
            user_id,
            &account.display_name,
            Some(link.as_str()).filter(|_| kind == Kind::TwoFactorDisabled),
        );
        mail::enqueue(tx, &email, &*portal.clock, &*portal.random).await?;
    }
    Ok(())
}

/// Checks a second factor: a current TOTP code (each time step once) or an unused recovery
/// code (used up by this call). Returns whether it was right.
pub async fn check_code(portal: &Portal, user_id: Uuid, code: &str) -> Result<bool, AccountError> {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() == 6 && compact.chars().all(|c| c.is_ascii_digit()) {
        let row: Option<(Option<String>, Option<i64>)> = on_db!(&portal.db, pool => sqlx::query_as(
            "SELECT totp_secret, totp_last_step FROM users WHERE id = $1 AND totp_enabled_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        let Some((Some(sealed), last_step)) = row else {
            return Ok(false);
        };
        let (secret, old_key) = portal
            .secret_box
            .open(&sealed)
            .map_err(|e| AccountError::SealedSecret(e.to_string()))?;
        if old_key {
            // Key rotation: sealed under a key that is no longer current, so seal it again.
            let resealed = portal.secret_box.seal(&secret, &*portal.random);
            on_db!(&portal.db, pool => sqlx::query(
                "UPDATE users SET totp_secret = $3 WHERE id = $1 AND totp_secret = $2",
            )
            .bind(user_id)
            .bind(&sealed)
            .bind(&resealed)
            .execute(pool)
            .await
            .map(|_| ()))?;
        }
        let last = last_step.map(|s| s.max(0) as u64);
        let Some(step) = totp::verify_code(&secret, &compact, unix_seconds(portal), last) else {
            return Ok(false);
        };
        // Compare-and-set, so that two requests with the same code succeed once.
        let updated = on_db!(&portal.db, pool => sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step as i64)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        return Ok(updated == 1);
    }
    let hash = totp::hash_recovery_code(code);
    let used = on_db!(&portal.db, pool => sqlx::query(
        "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL \
         AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND totp_enabled_at IS NOT NULL)",
    )
    .bind(user_id)
    .bind(&hash)
    .bind(portal.clock.now_ms())
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(used == 1)
}

/// How many recovery codes are left unused.
pub async fn recovery_codes_left(db: &Db, user_id: Uuid) -> Result<i64, sqlx::Error> {
    on_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await)
}

/// New recovery codes replace the old ones (the caller has re-authenticated the person).
pub async fn regenerate_recovery_codes(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
) -> Result<Vec<String>, AccountError> {
    let (codes, hashes) = totp::new_recovery_codes(&*portal.random);
    let mut tx = portal.db.begin().await?;
    replace_recovery_codes(&mut tx, user_id, &hashes, portal.clock.now_ms()).await?;
    let event = AuditEvent::new(Actor::User(user_id), "two_factor.recovery_codes_replaced")
        .target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Turns two-factor authentication off (the caller has re-authenticated the person).
pub async fn disable(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
) -> Result<(), AccountError> {
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let mut tx = portal.db.begin().await?;
    let updated = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL \
         WHERE id = $1 AND totp_enabled_at IS NOT NULL",
    )
    .bind(user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if updated == 0 {
        tx.rollback().await?;
        return Ok(());
    }
    replace_recovery_codes(&mut tx, user_id, &[], portal.clock.now_ms()).await?;
    notify(
        portal,
        &mut tx,
        meta,
        &account,
        "two_factor.disabled",
        Kind::TwoFactorDisabled,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
