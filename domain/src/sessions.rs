//! Session rows. The HTTP layer (tower-sessions) stores its opaque data here; the extra columns
//! (account, times, client IP, user agent) let an account's sessions be listed and revoked.

use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::{Db, Tx},
    on_db, on_tx, Portal,
};
use uuid::Uuid;

/// The database key of a session id: its SHA-256, so that a copy of the database does not hand
/// out live session cookies.
pub fn storage_key(session_id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(session_id.as_bytes()))
}

/// "Firefox 128 on Linux", from a user agent string, for the list of sessions.
pub fn describe_device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "Unknown device".to_string();
    };
    match woothee::parser::Parser::new().parse(ua) {
        Some(found) if found.name != "UNKNOWN" => {
            let major = found.version.split('.').next().unwrap_or("");
            let browser = if major.is_empty() || major == "UNKNOWN" {
                found.name.to_string()
            } else {
                format!("{} {major}", found.name)
            };
            if found.os == "UNKNOWN" {
                browser
            } else {
                format!("{browser} on {}", found.os)
            }
        }
        _ => ua.chars().take(60).collect(),
    }
}

/// An address as shown to people: the network part only (IPv4 /24, IPv6 /48). The full
/// address stays in the database for the security log.
pub fn truncate_ip(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.x")
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => String::new(),
    }
}

/// The session data entry that says who is signed in (written at sign-in, after the session id
/// was renewed). The session store copies it into the `account_id` and `signed_in_at` columns.
pub const AUTH_KEY: &str = "auth";
/// The entry of a sign-in whose password was right and whose second factor is still to come.
pub const PENDING_SECOND_FACTOR_KEY: &str = "pending_second_factor";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthState {
    pub user_id: Uuid,
    pub signed_in_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingSecondFactor {
    pub user_id: Uuid,
    /// Milliseconds; the second step must follow within a few minutes.
    pub started_at: i64,
}

impl AuthState {
    pub fn owner(&self) -> SessionOwner {
        SessionOwner {
            account_id: self.user_id,
            signed_in_at: self.signed_in_at,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub data: Vec<u8>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SessionInfo {
    pub id: String,
    pub account_id: Option<Uuid>,
    pub signed_in_at: Option<i64>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Who holds a signed-in session, and since when (the absolute lifetime counts from then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOwner {
    pub account_id: Uuid,
    pub signed_in_at: i64,
}

/// Inserts a session; false when the id is taken (the caller then draws another id).
pub async fn create(
    db: &Db,
    id: &str,
    data: &[u8],
    expires_at: i64,
    owner: Option<SessionOwner>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = on_db!(db, pool => sqlx::query(
        "INSERT INTO sessions (id, data, expires_at, account_id, signed_in_at, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .bind(owner.map(|o| o.account_id))
    .bind(owner.map(|o| o.signed_in_at))
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Writes the session's data and owner. Only an existing row is updated: a session revoked
/// while one of its requests was running stays revoked. Returns false when there was no row.
pub async fn save(
    db: &Db,
    id: &str,
    data: &[u8],
    expires_at: i64,
    owner: Option<SessionOwner>,
) -> Result<bool, sqlx::Error> {
    let updated = on_db!(db, pool => sqlx::query(
        "UPDATE sessions SET data = $2, expires_at = $3, account_id = $4, signed_in_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .bind(owner.map(|o| o.account_id))
    .bind(owner.map(|o| o.signed_in_at))
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(updated == 1)
}

/// The session's data, unless it is missing, idle too long (`expires_at`), or signed in at or
/// before `signed_in_after` (the absolute lifetime).
pub async fn load(
    db: &Db,
    id: &str,
    now: i64,
    signed_in_after: i64,
) -> Result<Option<SessionRow>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT id, data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2 \
         AND (signed_in_at IS NULL OR signed_in_at > $3)",
    )
    .bind(id)
    .bind(now)
    .bind(signed_in_after)
    .fetch_optional(pool)
    .await)
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records that the session was used and extends its idle expiry to `expires_at`, at most
/// once a minute per session so that a busy browser does not write on every request. Returns
/// true when a row was updated.
pub async fn touch(
    db: &Db,
    id: &str,
    client_ip: Option<&str>,
    user_agent: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let user_agent = user_agent.map(|ua| ua.chars().take(512).collect::<String>());
    let result = on_db!(db, pool => sqlx::query(
        "UPDATE sessions SET last_seen_at = $2, client_ip = $3, user_agent = $4, expires_at = $6 \
         WHERE id = $1 AND expires_at > $2 AND (last_seen_at <= $5 OR client_ip IS NULL)",
    )
    .bind(id)
    .bind(now)
    .bind(client_ip)
    .bind(user_agent)
    .bind(now - 60_000)
    .bind(expires_at)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// The account's live sessions, most recently used first.
pub async fn list_for_account(
    db: &Db,
    account_id: Uuid,
    now: i64,
    signed_in_after: i64,
) -> Result<Vec<SessionInfo>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, SessionInfo>(
        "SELECT id, account_id, signed_in_at, created_at, last_seen_at, client_ip, user_agent FROM sessions \
         WHERE account_id = $1 AND expires_at > $2 AND (signed_in_at IS NULL OR signed_in_at > $3) \
         ORDER BY last_seen_at DESC, id",
    )
    .bind(account_id)
    .bind(now)
    .bind(signed_in_after)
    .fetch_all(pool)
    .await)
}

/// Ends one of the account's sessions, in the caller's transaction. Scoped by account: another
/// account's id does nothing.
pub async fn revoke(tx: &mut Tx, account_id: Uuid, id: &str) -> Result<bool, sqlx::Error> {
    let result = on_tx!(tx, conn => sqlx::query("DELETE FROM sessions WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Ends every session of the account except `keep`; returns how many ended.
pub async fn revoke_others(tx: &mut Tx, account_id: Uuid, keep: &str) -> Result<u64, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
        .bind(account_id)
        .bind(keep)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
}

/// Ends every session of the account (after a password reset, or at account deletion).
pub async fn revoke_all(tx: &mut Tx, account_id: Uuid) -> Result<u64, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM sessions WHERE account_id = $1")
        .bind(account_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
}

/// The account owner ends one of their sessions from the sessions list; audited with it.
/// Returns false for an id that is not one of the account's sessions.
pub async fn end_one(
    portal: &Portal,
    meta: &RequestMeta,
    account_id: Uuid,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    if !revoke(&mut tx, account_id, id).await? {
        return tx.rollback().await.map(|_| false);
    }
    record(&mut tx, portal, meta, account_id, "session.revoked").await?;
    tx.commit().await.map(|_| true)
}

/// The account owner ends every session but the one in use (`keep`); returns how many ended.
pub async fn end_others(
    portal: &Portal,
    meta: &RequestMeta,
    account_id: Uuid,
    keep: &str,
) -> Result<u64, sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    let ended = revoke_others(&mut tx, account_id, keep).await?;
    if ended > 0 {
        record(&mut tx, portal, meta, account_id, "session.revoked_others").await?;
    }
    tx.commit().await.map(|_| ended)
}

/// Signing out: the session's row goes (its cookie is worthless from then on, wherever a copy
/// of it is) and the sign-out is audited, together.
pub async fn sign_out(
    portal: &Portal,
    meta: &RequestMeta,
    account_id: Uuid,
    id: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    revoke(&mut tx, account_id, id).await?;
    record(&mut tx, portal, meta, account_id, "sign_out").await?;
    tx.commit().await
}

async fn record(
    tx: &mut Tx,
    portal: &Portal,
    meta: &RequestMeta,
    account_id: Uuid,
    action: &'static str,
) -> Result<(), sqlx::Error> {
    let event = AuditEvent::new(Actor::User(account_id), action).target("user", account_id);
    audit::record(tx, &event, meta, &*portal.clock, &*portal.random)
        .await
        .map(|_| ())
}

/// Removes sessions idle too long or signed in at or before `signed_in_after`; run by the
/// `sessions.purge` job.
pub async fn purge_expired(db: &Db, now: i64, signed_in_after: i64) -> Result<u64, sqlx::Error> {
    let result = on_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR signed_in_at <= $2")
        .bind(now)
        .bind(signed_in_after)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shown_truncated() {
        assert_eq!(truncate_ip("203.0.113.77"), "203.0.113.x");
        assert_eq!(truncate_ip("2001:db8:abcd:12::1"), "2001:db8:abcd::/48");
        assert_eq!(truncate_ip("garbage"), "");
    }

    #[test]
    fn devices_are_described_from_the_user_agent() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_device(Some(firefox)), "Firefox 128 on Linux");
        assert_eq!(describe_device(None), "Unknown device");
        assert_eq!(storage_key("abc").len(), 64);
    }
}
