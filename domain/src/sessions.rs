//! Session rows. The HTTP layer (tower-sessions) stores its opaque data here; the extra columns
//! (account, times, client IP, user agent) let an account's sessions be listed and revoked.

use crate::{db::Db, on_db};
use uuid::Uuid;

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
    pub created_at: i64,
    pub last_seen_at: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Inserts a session; false when the id is taken (the caller then draws another id).
pub async fn create(
    db: &Db,
    id: &str,
    data: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = on_db!(db, pool => sqlx::query(
        "INSERT INTO sessions (id, data, expires_at, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Writes the session's data, creating the row if needed.
pub async fn save(
    db: &Db,
    id: &str,
    data: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query(
        "INSERT INTO sessions (id, data, expires_at, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The session's data, unless it is missing or expired.
pub async fn load(db: &Db, id: &str, now: i64) -> Result<Option<SessionRow>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT id, data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(pool)
    .await)
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records that the session was used, at most once a minute per session so that a busy
/// browser does not write on every request. Returns true when a row was updated.
pub async fn touch(
    db: &Db,
    id: &str,
    client_ip: Option<&str>,
    user_agent: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let user_agent = user_agent.map(|ua| ua.chars().take(512).collect::<String>());
    let result = on_db!(db, pool => sqlx::query(
        "UPDATE sessions SET last_seen_at = $2, client_ip = $3, user_agent = $4 \
         WHERE id = $1 AND (last_seen_at <= $5 OR client_ip IS NULL)",
    )
    .bind(id)
    .bind(now)
    .bind(client_ip)
    .bind(user_agent)
    .bind(now - 60_000)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Ties the session to the signed-in account (or unties it at sign-out).
pub async fn set_account(db: &Db, id: &str, account_id: Option<Uuid>) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query("UPDATE sessions SET account_id = $2 WHERE id = $1")
        .bind(id)
        .bind(account_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The account's live sessions, most recently used first.
pub async fn list_for_account(
    db: &Db,
    account_id: Uuid,
    now: i64,
) -> Result<Vec<SessionInfo>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, SessionInfo>(
        "SELECT id, account_id, created_at, last_seen_at, client_ip, user_agent FROM sessions \
         WHERE account_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC",
    )
    .bind(account_id)
    .bind(now)
    .fetch_all(pool)
    .await)
}

/// Ends one of the account's sessions. Scoped by account: another account's id does nothing.
pub async fn revoke(db: &Db, account_id: Uuid, id: &str) -> Result<bool, sqlx::Error> {
    let result = on_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Ends every session of the account except `keep`; returns how many ended.
pub async fn revoke_others(db: &Db, account_id: Uuid, keep: &str) -> Result<u64, sqlx::Error> {
    let result = on_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
        .bind(account_id)
        .bind(keep)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(result)
}

/// Removes expired sessions; run by the `sessions.purge` job.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let result = on_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(result)
}
