//! Monitoring: every minute each running homeserver's `/health` is checked and the answer
//! kept for 30 days (uptime is the share of checks it answered). A homeserver that stays down
//! [`ALERT_AFTER_MINUTES`] gets its customer's owner one email per outage.

use super::lifecycle::{self, Homeserver};
use crate::{
    accounts::emails::{self, Kind},
    billing::subscriptions::HomeserverState,
    i18n::Locale,
    mail, on_db, on_tx,
    portal::Portal,
};
use uuid::Uuid;

pub const CHECK_JOB: &str = "homeservers.check_health";
pub const ALERT_AFTER_MINUTES: i64 = 10;
/// Checks kept, and the window uptime is measured over.
pub const KEPT_DAYS: i64 = 30;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub up: usize,
    pub down: usize,
    pub alerted: usize,
}

/// Checks every running homeserver once, records the answers, alerts, prunes old checks.
pub async fn check(portal: &Portal) -> Result<Checked, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut checked = Checked::default();
    for homeserver in lifecycle::in_states(&portal.db, &[HomeserverState::Running]).await? {
        let hosting = &portal.hosting;
        let url = hosting
            .provisioners
            .for_region(&homeserver.region)
            .and_then(|p| p.admin_url(&homeserver.deployment(portal)));
        let healthy = match &url {
            Some(url) => super::synapse::healthy(&hosting.http, url).await,
            None => false,
        };
        record(portal, &homeserver, now, healthy, &mut checked).await?;
    }
    on_db!(&portal.db, pool => sqlx::query("DELETE FROM homeserver_health WHERE checked_at < $1")
        .bind(now - KEPT_DAYS * 86_400_000)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(checked)
}

async fn record(
    portal: &Portal,
    homeserver: &Homeserver,
    now: i64,
    healthy: bool,
    checked: &mut Checked,
) -> Result<(), sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO homeserver_health (homeserver_id, checked_at, healthy) VALUES ($1, $2, $3) \
         ON CONFLICT (homeserver_id, checked_at) DO NOTHING",
    )
    .bind(homeserver.id)
    .bind(now)
    .bind(healthy)
    .execute(conn)
    .await
    .map(|_| ()))?;
    if healthy {
        checked.up += 1;
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE homeservers SET down_since = NULL, down_alerted_at = NULL \
             WHERE id = $1 AND down_since IS NOT NULL",
        )
        .bind(homeserver.id)
        .execute(conn)
        .await
        .map(|_| ()))?;
        return tx.commit().await;
    }
    checked.down += 1;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET down_since = $2 WHERE id = $1 AND down_since IS NULL",
    )
    .bind(homeserver.id)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    // Down long enough, and not told yet in this outage: the statement that marks the alert
    // decides, so replicas send it once.
    let alert = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET down_alerted_at = $2 \
         WHERE id = $1 AND down_alerted_at IS NULL AND down_since <= $3",
    )
    .bind(homeserver.id)
    .bind(now)
    .bind(now - ALERT_AFTER_MINUTES * 60_000)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if alert {
        checked.alerted += 1;
        if let Some((user_id, email, name)) =
            emails::owner_recipient(&mut tx, homeserver.customer_id).await?
        {
            let server = portal
                .hosting
                .server_name(&homeserver.name, &homeserver.region);
            let minutes = ALERT_AFTER_MINUTES.to_string();
            let message = emails::compose_with_buttons(
                Kind::HomeserverDown,
                Locale::En,
                &email,
                user_id,
                &name,
                &[],
                &[("server", server.as_str()), ("minutes", minutes.as_str())],
            );
            mail::enqueue(&mut tx, &message, &*portal.clock, &*portal.random).await?;
        }
    }
    tx.commit().await
}

/// Uptime over the last [`KEPT_DAYS`] days: the share of checks it answered, in per mille
/// (None before the first check), with the time of the last check.
pub async fn uptime(portal: &Portal, id: Uuid) -> Result<(Option<u32>, Option<i64>), sqlx::Error> {
    let since = portal.clock.now_ms() - KEPT_DAYS * 86_400_000;
    let (total, up, last): (i64, i64, Option<i64>) = on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN healthy THEN 1 ELSE 0 END), 0), MAX(checked_at) \
         FROM homeserver_health WHERE homeserver_id = $1 AND checked_at >= $2",
    )
    .bind(id)
    .bind(since)
    .fetch_one(pool)
    .await)?;
    let per_mille = (total > 0).then(|| (up * 1000 / total) as u32);
    Ok((per_mille, last))
}
