//! The job kinds this server runs, and their schedules.

use domain::{homeservers::lifecycle, jobs::Runner, mail::Mailer, Portal};

pub const PURGE_SESSIONS: &str = "sessions.purge";
pub const PURGE_UNVERIFIED: &str = "accounts.purge_unverified";

/// `session_absolute_hours`: signed-in sessions older than this are purged too.
pub fn runner(portal: &Portal, mailer: Mailer, session_absolute_hours: i64) -> Runner {
    let purge_portal = portal.clone();
    let mail_db = portal.db.clone();
    let unverified_portal = portal.clone();
    let sync_portal = portal.clone();
    let dunning_portal = portal.clone();
    let retax_portal = portal.clone();
    let order_portal = portal.clone();
    let vat_portal = portal.clone();
    let recheck_portal = portal.clone();
    let documents_portal = portal.clone();
    let renew_portal = portal.clone();
    let pdf_portal = portal.clone();
    let provision_portal = portal.clone();
    let sweep_portal = portal.clone();
    let follow_portal = portal.clone();
    let health_portal = portal.clone();
    let backup_portal = portal.clone();
    Runner::new(
        portal.db.clone(),
        portal.clock.clone(),
        portal.random.clone(),
    )
    .handle(domain::mail::SEND_JOB, move |payload| {
        let (mailer, db) = (mailer.clone(), mail_db.clone());
        async move {
            mailer
                .deliver(&db, domain::mail::outbox_id(&payload)?)
                .await
        }
    })
    .handle(PURGE_SESSIONS, move |_| {
        let portal = purge_portal.clone();
        async move {
            let now = portal.clock.now_ms();
            let removed = domain::sessions::purge_expired(
                &portal.db,
                now,
                now - session_absolute_hours * 3_600_000,
            )
            .await
            .map_err(|e| e.to_string())?;
            if removed > 0 {
                tracing::info!(removed, "purged expired sessions");
            }
            Ok(())
        }
    })
    .handle(PURGE_UNVERIFIED, move |_| {
        let portal = unverified_portal.clone();
        async move {
            let removed = domain::accounts::verification::purge_unverified(
                &portal.db,
                &*portal.clock,
                &*portal.random,
            )
            .await
            .map_err(|e| e.to_string())?;
            if removed > 0 {
                tracing::info!(removed, "deleted accounts never verified");
            }
            Ok(())
        }
    })
    .handle(domain::billing::webhooks::SYNC_JOB, move |payload| {
        let portal = sync_portal.clone();
        async move {
            let object = payload["object"].as_str().unwrap_or_default().to_string();
            let id = payload["id"].as_str().unwrap_or_default().to_string();
            domain::billing::sync::sync(&portal, &object, &id)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .handle(domain::billing::dunning::JOB, move |_| {
        let portal = dunning_portal.clone();
        async move {
            let report = domain::billing::dunning::run(&portal)
                .await
                .map_err(|e| e.to_string())?;
            if report.marked + report.canceled > 0 {
                tracing::info!(
                    marked = report.marked,
                    canceled = report.canceled,
                    "dunning"
                );
            }
            Ok(())
        }
    })
    .handle(domain::billing::changes::RETAX_JOB, move |payload| {
        let portal = retax_portal.clone();
        async move {
            let customer = id_in(&payload, "customer")?;
            domain::billing::changes::redecide_tax(&portal, customer)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .handle(domain::billing::subscriptions::START_JOB, move |payload| {
        let portal = order_portal.clone();
        async move {
            let subscription = id_in(&payload, "subscription")?;
            match domain::billing::subscriptions::recover(&portal, subscription).await {
                // A declined card is the order's outcome (the dashboard says so), not a failure
                // of the job.
                Ok(()) | Err(domain::billing::stripe::PaymentError::Declined(_)) => Ok(()),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .handle(domain::billing::vies::CHECK_JOB, move |payload| {
        let portal = vat_portal.clone();
        async move {
            let customer = id_in(&payload, "customer")?;
            domain::billing::vies::run_check(&portal, customer)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .handle(domain::billing::vies::RECHECK_JOB, move |_| {
        let portal = recheck_portal.clone();
        async move {
            domain::billing::vies::recheck_before_renewals(&portal)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .handle(domain::billing::documents::BACKFILL_JOB, move |_| {
        let portal = documents_portal.clone();
        async move {
            let frozen = domain::billing::documents::backfill(&portal)
                .await
                .map_err(|e| e.to_string())?;
            if frozen > 0 {
                tracing::info!(frozen, "invoice documents frozen for earlier invoices");
            }
            Ok(())
        }
    })
    .handle(domain::billing::manual::RENEW_JOB, move |_| {
        let portal = renew_portal.clone();
        async move {
            let issued = domain::billing::manual::issue_due(&portal)
                .await
                .map_err(|e| e.to_string())?;
            if issued > 0 {
                tracing::info!(issued, "bank-transfer invoices issued");
            }
            Ok(())
        }
    })
    .handle(domain::billing::pdfs::RENDER_JOB, move |_| {
        let portal = pdf_portal.clone();
        async move {
            let rendered = crate::invoice_pdf::render_missing(&portal).await?;
            if rendered > 0 {
                tracing::info!(rendered, "invoice PDFs rendered");
            }
            Ok(())
        }
    })
    .handle(lifecycle::PROVISION_JOB, move |payload| {
        let portal = provision_portal.clone();
        async move {
            let id = payload["homeserver"]
                .as_str()
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .ok_or("the job names no homeserver")?;
            lifecycle::provision(&portal, id)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .handle(lifecycle::SWEEP_JOB, move |_| {
        let portal = sweep_portal.clone();
        async move {
            lifecycle::sweep(&portal)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .handle(lifecycle::FOLLOW_BILLING_JOB, move |_| {
        let portal = follow_portal.clone();
        async move {
            let followed = lifecycle::follow_billing(&portal)
                .await
                .map_err(|e| e.to_string())?;
            if followed != lifecycle::Followed::default() {
                tracing::info!(?followed, "homeservers followed billing");
            }
            Ok(())
        }
    })
    .handle(domain::homeservers::health::CHECK_JOB, move |_| {
        let portal = health_portal.clone();
        async move {
            let checked = domain::homeservers::health::check(&portal)
                .await
                .map_err(|e| e.to_string())?;
            if checked.down > 0 {
                tracing::warn!(?checked, "homeservers did not answer their health check");
            }
            Ok(())
        }
    })
    .handle(domain::homeservers::backups::BACKUP_JOB, move |_| {
        let portal = backup_portal.clone();
        async move {
            let made = domain::homeservers::backups::run(&portal)
                .await
                .map_err(|e| e.to_string())?;
            if made > 0 {
                tracing::info!(made, "homeservers backed up");
            }
            Ok(())
        }
    })
    .every(
        domain::homeservers::health::CHECK_JOB,
        time::Duration::minutes(1),
    )
    .every(
        domain::homeservers::backups::BACKUP_JOB,
        time::Duration::hours(1),
    )
    .every(lifecycle::SWEEP_JOB, time::Duration::minutes(1))
    .every(lifecycle::FOLLOW_BILLING_JOB, time::Duration::minutes(1))
    .every(domain::billing::pdfs::RENDER_JOB, time::Duration::hours(1))
    .every(domain::billing::manual::RENEW_JOB, time::Duration::hours(1))
    .every(domain::billing::vies::RECHECK_JOB, time::Duration::hours(1))
    .every(
        domain::billing::documents::BACKFILL_JOB,
        time::Duration::hours(1),
    )
    .every(PURGE_SESSIONS, time::Duration::minutes(15))
    .every(domain::billing::dunning::JOB, time::Duration::hours(1))
    .every(PURGE_UNVERIFIED, time::Duration::hours(1))
}

/// The id a job's payload names under `field`.
fn id_in(payload: &serde_json::Value, field: &str) -> Result<uuid::Uuid, String> {
    payload[field]
        .as_str()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| format!("a job payload without its {field}"))
}
