//! Daily backups of each running homeserver (its database through SQLite's online backup, its
//! media store and its signing key), the newest few kept, and the customer's restore into the
//! same homeserver.
//!
//! A backup is made by the periodic [`BACKUP_JOB`] while the homeserver runs. A restore is asked
//! for by the customer: the homeserver goes to "restoring", the supervisor (which owns the
//! processes) stops it, has its provisioner put the backup's data in place, and starts it again.
//! Each step checks the state it changes, so a restore is carried out once.

use super::{
    lifecycle::{self, Homeserver},
    provisioner::{ProvisionError, Provisioner},
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    billing::subscriptions::HomeserverState,
    on_db, on_tx,
    portal::Portal,
    random::new_id,
    text_enum,
};
use uuid::Uuid;

pub const BACKUP_JOB: &str = "homeservers.backup";
/// A homeserver is backed up again once its newest backup is this old (a little under a day,
/// so the hourly job does not drift a backup later each day).
const AGAIN_AFTER_MS: i64 = 23 * 3_600_000;

text_enum! {
    pub enum BackupState {
        Making = "making",
        Done = "done",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Backup {
    pub id: Uuid,
    pub homeserver_id: Uuid,
    pub created_at: i64,
    pub state: BackupState,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("region {0} has no provisioner")]
    NoProvisioner(String),
}

/// The homeserver's backups, newest first.
pub async fn list(portal: &Portal, homeserver_id: Uuid) -> Result<Vec<Backup>, sqlx::Error> {
    on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT id, homeserver_id, created_at, state, size_bytes, error FROM homeserver_backups \
         WHERE homeserver_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(homeserver_id)
    .fetch_all(pool)
    .await)
}

/// The periodic job: backs up each running homeserver whose newest backup is about a day old
/// (or that has none). One that fails is recorded and does not stop the others.
pub async fn run(portal: &Portal) -> Result<usize, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut made = 0;
    for homeserver in lifecycle::in_states(&portal.db, &[HomeserverState::Running]).await? {
        // A backup still being made (by a cluster, or cut short by a restart) is asked for
        // again first; none other starts while it is.
        let making: Option<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
            "SELECT id FROM homeserver_backups WHERE homeserver_id = $1 AND state = $2 \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(homeserver.id)
        .bind(BackupState::Making)
        .fetch_optional(pool)
        .await)?;
        if let Some(id) = making {
            let provisioner = portal.hosting.provisioners.for_region(&homeserver.region);
            if let Some(provisioner) = provisioner {
                if let Err(error) = finish(portal, provisioner.as_ref(), &homeserver, id).await {
                    tracing::warn!(homeserver = %homeserver.id, %error, "a backup failed");
                }
            }
            continue;
        }
        let newest: Option<i64> = on_db!(&portal.db, pool => sqlx::query_scalar(
            "SELECT MAX(created_at) FROM homeserver_backups WHERE homeserver_id = $1 AND state = $2",
        )
        .bind(homeserver.id)
        .bind(BackupState::Done)
        .fetch_one(pool)
        .await)?;
        if newest.is_some_and(|at| now - at < AGAIN_AFTER_MS) {
            continue;
        }
        match make(portal, &homeserver).await {
            Ok(_) => made += 1,
            Err(error) => {
                tracing::warn!(homeserver = %homeserver.id, %error, "a backup failed");
            }
        }
    }
    Ok(made)
}

/// Makes one backup of the homeserver now, then keeps only the newest ones.
pub async fn make(portal: &Portal, homeserver: &Homeserver) -> Result<Uuid, BackupError> {
    let provisioner = portal
        .hosting
        .provisioners
        .for_region(&homeserver.region)
        .ok_or_else(|| BackupError::NoProvisioner(homeserver.region.clone()))?;
    let now = portal.clock.now_ms();
    let id = new_id(now, &*portal.random);
    on_db!(&portal.db, pool => sqlx::query(
        "INSERT INTO homeserver_backups (id, homeserver_id, created_at, state) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(homeserver.id)
    .bind(now)
    .bind(BackupState::Making)
    .execute(pool)
    .await
    .map(|_| ()))?;
    finish(portal, provisioner.as_ref(), homeserver, id).await?;
    Ok(id)
}

/// Asks the provisioner for backup `id` (again, while it is being made) and records the
/// outcome: done with its size, failed with the reason, or still being made.
async fn finish(
    portal: &Portal,
    provisioner: &dyn Provisioner,
    homeserver: &Homeserver,
    id: Uuid,
) -> Result<(), BackupError> {
    let outcome = provisioner.backup(&homeserver.deployment(portal), id).await;
    let (state, size, error) = match &outcome {
        Ok(None) => return Ok(()),
        Ok(Some(size)) => (BackupState::Done, Some(*size as i64), None),
        Err(error) => (BackupState::Failed, None, Some(error.to_string())),
    };
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE homeserver_backups SET state = $2, size_bytes = $3, error = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(size)
    .bind(&error)
    .execute(pool)
    .await
    .map(|_| ()))?;
    match &error {
        Some(error) => {
            lifecycle::record_event(portal, homeserver.id, "backup_failed", Some(error.as_str()))
                .await?
        }
        None => lifecycle::record_event(portal, homeserver.id, "backed_up", None).await?,
    }
    prune(portal, provisioner, homeserver).await?;
    outcome?;
    Ok(())
}

/// Keeps the newest `backups_kept` finished backups, and as many of the newest failed ones
/// (they tell the customer what went wrong); the others are deleted.
async fn prune(
    portal: &Portal,
    provisioner: &dyn Provisioner,
    homeserver: &Homeserver,
) -> Result<(), BackupError> {
    let kept = portal.hosting.backups_kept as usize;
    let backups = list(portal, homeserver.id).await?;
    let surplus = |state: BackupState| backups.iter().filter(move |b| b.state == state).skip(kept);
    let deployment = homeserver.deployment(portal);
    for backup in surplus(BackupState::Done).chain(surplus(BackupState::Failed)) {
        provisioner.delete_backup(&deployment, backup.id).await?;
        on_db!(&portal.db, pool => sqlx::query("DELETE FROM homeserver_backups WHERE id = $1")
            .bind(backup.id)
            .execute(pool)
            .await
            .map(|_| ()))?;
    }
    Ok(())
}

/// The customer asks to restore `backup_id` into their running homeserver. False when the
/// homeserver is not theirs or not running, or the backup is not one of its finished ones.
pub async fn request_restore(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    homeserver_id: Uuid,
    backup_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let created_at: Option<i64> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT b.created_at FROM homeserver_backups b JOIN homeservers h ON h.id = b.homeserver_id \
         WHERE b.id = $1 AND b.homeserver_id = $2 AND h.customer_id = $3 AND b.state = $4",
    )
    .bind(backup_id)
    .bind(homeserver_id)
    .bind(customer_id)
    .bind(BackupState::Done)
    .fetch_optional(conn)
    .await)?;
    let Some(created_at) = created_at else {
        return Ok(false);
    };
    let moved = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET state = $3, restore_backup_id = $4, updated_at = $5 \
         WHERE id = $1 AND customer_id = $2 AND state = $6",
    )
    .bind(homeserver_id)
    .bind(customer_id)
    .bind(HomeserverState::Restoring)
    .bind(backup_id)
    .bind(now)
    .bind(HomeserverState::Running)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if !moved {
        return Ok(false);
    }
    let event = AuditEvent::new(actor, "homeserver.restore_requested")
        .customer(customer_id)
        .target("homeserver", homeserver_id)
        .details(serde_json::json!({ "backup": backup_id, "backup_created_at": created_at }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    lifecycle::record_event(portal, homeserver_id, "restoring", None).await?;
    portal.hosting.wake.notify_one();
    Ok(true)
}

/// The supervisor's part of a restore (it holds the processes): the homeserver stopped, its
/// data replaced by the backup's, and back to running (the supervisor then starts it).
pub async fn restore(
    portal: &Portal,
    provisioner: &dyn Provisioner,
    homeserver: &Homeserver,
) -> Result<(), BackupError> {
    let deployment = homeserver.deployment(portal);
    let backup: Option<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT restore_backup_id FROM homeservers WHERE id = $1 AND state = $2",
    )
    .bind(homeserver.id)
    .bind(HomeserverState::Restoring)
    .fetch_optional(pool)
    .await)?
    .flatten();
    let Some(backup) = backup else {
        return Ok(());
    };
    provisioner.stop(&deployment).await?;
    if !provisioner.restore(&deployment, backup).await? {
        return Ok(()); // under way: the next tick asks again
    }
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET state = $2, restore_backup_id = NULL, updated_at = $3 \
         WHERE id = $1 AND state = $4 AND restore_backup_id = $5",
    )
    .bind(homeserver.id)
    .bind(HomeserverState::Running)
    .bind(now)
    .bind(HomeserverState::Restoring)
    .bind(backup)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if done {
        let event = AuditEvent::new(Actor::System, "homeserver.restored")
            .customer(homeserver.customer_id)
            .target("homeserver", homeserver.id)
            .details(serde_json::json!({ "backup": backup }));
        audit::record_system(&mut tx, &event, portal).await?;
    }
    tx.commit().await?;
    if done {
        lifecycle::record_event(portal, homeserver.id, "restored", None).await?;
        portal.hosting.wake.notify_one();
    }
    Ok(())
}
