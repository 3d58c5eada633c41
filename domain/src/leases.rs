//! Named leases in the database: one holder at a time for a duty (the homeserver supervisor,
//! one homeserver's provisioning), until it lets go or stops renewing. Times are wall-clock:
//! a lease is about live processes, not business time.

use crate::{db::Db, on_db};

pub fn wall_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Takes `name` for `holder` for `seconds`, or renews it when `holder` has it; false when
/// another holder's lease has not lapsed.
pub async fn take(db: &Db, name: &str, holder: &str, seconds: i64) -> Result<bool, sqlx::Error> {
    let now = wall_ms();
    on_db!(db, pool => sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(now + seconds * 1000)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Lets `name` go, if `holder` has it.
pub async fn release(db: &Db, name: &str, holder: &str) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await
        .map(|_| ()))
}
