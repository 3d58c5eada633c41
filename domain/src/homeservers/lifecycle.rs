//! A homeserver's life after payment, as durable jobs whose steps are each safe to repeat:
//! waiting for provisioning → provisioning (configuration made, process started, ready, the
//! portal's service user and the customer's first admin registered) → running.
//!
//! Every step checks what is done already, so a job retried after a failure, or resumed by
//! another replica after a restart, finishes the work once: one data directory, one port, one
//! service user, one first admin. A failure is kept on the homeserver in words
//! (`last_error`) and the job retries with backoff.

use super::{
    provisioner::{Deployment, ProvisionError, Provisioner, Provisioners, Size},
    synapse::{self, SynapseError},
};
use crate::{
    audit::{self, Actor, AuditEvent},
    billing::subscriptions::HomeserverState,
    db::{Db, Tx},
    jobs::{self, NewJob},
    on_db, on_tx,
    portal::Portal,
    random::new_id,
};
use std::{ops::RangeInclusive, sync::Arc, time::Duration};
use uuid::Uuid;

pub const PROVISION_JOB: &str = "homeservers.provision";
/// Periodic: enqueues provisioning for every homeserver that waits for it and has not begun
/// (those paid before provisioning existed; a payment enqueues its own job). One that began
/// has its job, retried with backoff, so none piles up.
pub const SWEEP_JOB: &str = "homeservers.sweep";

/// The portal's own admin user on each homeserver.
pub const SERVICE_USER: &str = "customer-portal";
/// The customer's first admin.
pub const FIRST_ADMIN: &str = "admin";
/// How long provisioning waits for a started homeserver to answer `/health` before the
/// attempt fails (and is retried).
const READY_WITHIN: Duration = Duration::from_secs(90);
/// Longer than a provisioning run can take (the wait for readiness and two registrations).
const PROVISION_LEASE_SECONDS: i64 = 300;

/// Where homeservers run and how they are named.
pub struct Hosting {
    pub provisioners: Provisioners,
    /// Server names are `<name>.<domain>` (PORTAL_HOMESERVER_DOMAIN)...
    pub domain: String,
    /// ...or `<name>.<the region's base_domain>`, where the region sets one.
    pub region_domains: std::collections::HashMap<String, String>,
    /// Loopback ports for homeservers on the local driver (PORTAL_HOMESERVER_PORTS).
    pub ports: RangeInclusive<u16>,
    pub http: reqwest::Client,
    /// Wakes the supervisor (a homeserver is to start now).
    pub wake: Arc<tokio::sync::Notify>,
    /// Days a homeserver's data is kept after its subscription ended
    /// (PORTAL_HOMESERVER_RETENTION_DAYS).
    pub retention_days: u32,
    /// How many finished backups are kept per homeserver (PORTAL_HOMESERVER_BACKUPS_KEPT).
    pub backups_kept: u32,
    /// Where clients reach a homeserver behind a reverse proxy, with `{server_name}` in it
    /// (PORTAL_HOMESERVER_URL); None: the provisioner's own address.
    pub url_pattern: Option<String>,
    /// The file the supervisor keeps for the reverse proxy: each server name's loopback
    /// address (homeservers of drivers with ports).
    pub proxy_map: Option<std::path::PathBuf>,
}

impl Hosting {
    pub fn new(provisioners: Provisioners, domain: &str, ports: RangeInclusive<u16>) -> Self {
        Self {
            provisioners,
            domain: domain.to_string(),
            region_domains: std::collections::HashMap::new(),
            ports,
            http: synapse::client(),
            wake: Arc::new(tokio::sync::Notify::new()),
            retention_days: 30,
            backups_kept: 7,
            url_pattern: None,
            proxy_map: None,
        }
    }

    pub fn public_urls(mut self, pattern: Option<String>, proxy_map: std::path::PathBuf) -> Self {
        self.url_pattern = pattern;
        self.proxy_map = Some(proxy_map);
        self
    }

    /// Where Matrix clients reach the homeserver `server_name` (None: no pattern is set).
    pub fn public_url(&self, server_name: &str) -> Option<String> {
        self.url_pattern
            .as_ref()
            .map(|pattern| pattern.replace("{server_name}", server_name))
    }

    pub fn backups_kept(mut self, kept: u32) -> Self {
        self.backups_kept = kept.max(1);
        self
    }

    pub fn retention_days(mut self, days: u32) -> Self {
        self.retention_days = days;
        self
    }

    /// Server names of a region's homeservers end in `domain`, instead of
    /// PORTAL_HOMESERVER_DOMAIN (a region's `base_domain`).
    pub fn region_domain(mut self, region: &str, domain: &str) -> Self {
        self.region_domains
            .insert(region.to_string(), domain.to_string());
        self
    }

    /// The server name of homeserver `name` of `region`.
    pub fn server_name(&self, name: &str, region: &str) -> String {
        let domain = self.region_domains.get(region).unwrap_or(&self.domain);
        format!("{name}.{domain}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("region {0} has no provisioner")]
    NoProvisioner(String),
    #[error("no free port in the homeserver port range")]
    NoFreePort,
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("the homeserver did not answer its health check within {0} seconds")]
    NotReady(u64),
    #[error("registering {user}: {error}")]
    Register {
        user: &'static str,
        error: SynapseError,
    },
    #[error("another replica is provisioning it")]
    Busy,
    #[error("a stored secret could not be opened: {0}")]
    Secret(String),
}

/// A homeserver as the lifecycle reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Homeserver {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub name: String,
    pub region: String,
    pub state: HomeserverState,
    pub port: Option<i32>,
    pub service_password: Option<String>,
    pub service_token: Option<String>,
    pub admin_user: Option<String>,
    pub admin_password: Option<String>,
    pub last_error: Option<String>,
    pub running_since: Option<i64>,
    pub down_since: Option<i64>,
    pub registration: super::settings::Registration,
    pub federation: bool,
    pub guest_access: bool,
    pub settings_version: i64,
    pub settings_applied: i64,
    /// Its subscription's plan (the plan's limits apply to it).
    pub plan_id: Option<String>,
}

const SELECT: &str = "SELECT id, customer_id, name, region, state, port, service_password, \
     service_token, admin_user, admin_password, last_error, running_since, down_since, \
     registration, federation, guest_access, settings_version, settings_applied, \
     (SELECT plan_id FROM subscriptions s WHERE s.homeserver_id = homeservers.id) AS plan_id \
     FROM homeservers";

pub async fn load(db: &Db, id: Uuid) -> Result<Option<Homeserver>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE id = $1");
    on_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}

/// Every homeserver in one of `states`, in one query.
pub async fn in_states(
    db: &Db,
    states: &[HomeserverState],
) -> Result<Vec<Homeserver>, sqlx::Error> {
    let placeholders: Vec<String> = (1..=states.len()).map(|i| format!("${i}")).collect();
    let sql = format!("{SELECT} WHERE state IN ({})", placeholders.join(", "));
    on_db!(db, pool => {
        let mut query = sqlx::query_as(&sql);
        for state in states {
            query = query.bind(*state);
        }
        query.fetch_all(pool).await
    })
}

impl Homeserver {
    pub fn deployment(&self, portal: &Portal) -> Deployment {
        let server_name = portal.hosting.server_name(&self.name, &self.region);
        let size = self
            .plan(portal)
            .map(|plan| Size {
                resources: plan.resources,
                storage_gb: plan.limits.storage_gb,
            })
            .unwrap_or_default();
        Deployment {
            id: self.id,
            customer_id: self.customer_id,
            region: self.region.clone(),
            public_url: portal.hosting.public_url(&server_name),
            server_name,
            port: self.port.and_then(|p| u16::try_from(p).ok()),
            settings: super::settings::of(portal, self),
            size,
        }
    }

    /// Its subscription's plan, where the catalogue still has it.
    pub fn plan<'a>(&self, portal: &'a Portal) -> Option<&'a crate::plans::Plan> {
        let id = self.plan_id.as_deref()?;
        portal.plans.plans.iter().find(|p| p.id == id)
    }
}

/// Queues provisioning of a homeserver that was just paid for, in the payment's transaction.
pub async fn enqueue_provision(tx: &mut Tx, portal: &Portal, id: Uuid) -> Result<(), sqlx::Error> {
    let job = NewJob::now(
        PROVISION_JOB,
        serde_json::json!({ "homeserver": id }),
        &*portal.clock,
    )
    .dedupe(format!("provision:{id}"));
    // Retried for about a day (the backoff stops doubling at an hour) before it is left failed.
    let job = NewJob {
        max_attempts: 30,
        ..job
    };
    jobs::enqueue(tx, job, &*portal.clock, &*portal.random).await?;
    Ok(())
}

/// Queues provisioning for every homeserver that waits for it.
pub async fn sweep(portal: &Portal) -> Result<usize, sqlx::Error> {
    let ids: Vec<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM homeservers WHERE state = $1",
    )
    .bind(HomeserverState::WaitingForProvisioning)
    .fetch_all(pool)
    .await)?;
    let mut tx = portal.db.begin().await?;
    for id in &ids {
        enqueue_provision(&mut tx, portal, *id).await?;
    }
    tx.commit().await?;
    Ok(ids.len())
}

/// Records what happened to a homeserver (shown with its state; kept with the homeserver).
pub async fn record_event(
    portal: &Portal,
    id: Uuid,
    kind: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = portal.clock.now_ms();
    on_db!(&portal.db, pool => sqlx::query(
        "INSERT INTO homeserver_events (id, homeserver_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id(now, &*portal.random))
    .bind(id)
    .bind(now)
    .bind(kind)
    .bind(detail)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// The provisioning job: takes the homeserver from "waiting for provisioning" to "running".
pub async fn provision(portal: &Portal, id: Uuid) -> Result<(), LifecycleError> {
    let mut tx = portal.db.begin().await?;
    let began = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET state = $2, updated_at = $3 WHERE id = $1 AND state = $4",
    )
    .bind(id)
    .bind(HomeserverState::Provisioning)
    .bind(portal.clock.now_ms())
    .bind(HomeserverState::WaitingForProvisioning)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    tx.commit().await?;
    if began {
        record_event(portal, id, "provisioning", None).await?;
    }
    let Some(homeserver) = load(&portal.db, id).await? else {
        return Ok(());
    };
    if homeserver.state != HomeserverState::Provisioning {
        return Ok(());
    }
    let hosting = &portal.hosting;
    let Some(provisioner) = hosting.provisioners.for_region(&homeserver.region) else {
        return fail(portal, id, LifecycleError::NoProvisioner(homeserver.region)).await;
    };
    // One provisioning run at a time per homeserver, whichever replica runs the job.
    let lease = format!("provision:{id}");
    let holder = crate::random::token(&*portal.random, 8);
    if !crate::leases::take(&portal.db, &lease, &holder, PROVISION_LEASE_SECONDS).await? {
        return Err(LifecycleError::Busy);
    }
    let outcome = steps(portal, provisioner.as_ref(), homeserver).await;
    crate::leases::release(&portal.db, &lease, &holder).await?;
    match outcome {
        Ok(()) => Ok(()),
        Err(error) => fail(portal, id, error).await,
    }
}

/// Keeps the failure in words on the homeserver, and fails the job (it retries).
async fn fail(portal: &Portal, id: Uuid, error: LifecycleError) -> Result<(), LifecycleError> {
    let words = error.to_string();
    tracing::warn!(homeserver = %id, error = %words, "provisioning step failed; it will be retried");
    on_db!(&portal.db, pool => sqlx::query(
        "UPDATE homeservers SET last_error = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(&words)
    .execute(pool)
    .await
    .map(|_| ()))?;
    record_event(portal, id, "failed", Some(&words)).await?;
    Err(error)
}

async fn steps(
    portal: &Portal,
    provisioner: &dyn Provisioner,
    mut homeserver: Homeserver,
) -> Result<(), LifecycleError> {
    let hosting = &portal.hosting;
    if provisioner.needs_port() && homeserver.port.is_none() {
        homeserver.port = Some(i32::from(assign_port(portal, homeserver.id).await?));
    }
    let deployment = homeserver.deployment(portal);
    provisioner.create(&deployment).await?;
    // The supervisor starts homeservers that are provisioning; tell it not to wait.
    hosting.wake.notify_one();
    let base = provisioner
        .admin_url(&deployment)
        .ok_or(ProvisionError::NoPort)?;
    wait_ready(&hosting.http, &base).await?;
    let secret = provisioner.registration_secret(&deployment).await?;

    // The portal's service user: its password is stored before it is registered, so a retry
    // that finds the user registered signs in with it instead.
    if homeserver.service_token.is_none() {
        let password = stored_password(portal, &homeserver, Credential::Service).await?;
        let session =
            match synapse::register(&hosting.http, &base, &secret, SERVICE_USER, &password, true)
                .await
            {
                Ok(session) => session,
                Err(SynapseError::UserTaken) => {
                    synapse::login(&hosting.http, &base, SERVICE_USER, &password)
                        .await
                        .map_err(|error| LifecycleError::Register {
                            user: SERVICE_USER,
                            error,
                        })?
                }
                Err(error) => {
                    return Err(LifecycleError::Register {
                        user: SERVICE_USER,
                        error,
                    })
                }
            };
        let sealed = portal
            .secret_box
            .seal(session.access_token.as_bytes(), &*portal.random);
        on_db!(&portal.db, pool => sqlx::query(
            "UPDATE homeservers SET service_token = $2 WHERE id = $1",
        )
        .bind(homeserver.id)
        .bind(sealed)
        .execute(pool)
        .await
        .map(|_| ()))?;
    }

    // The customer's first admin, the same way; taken means an earlier attempt registered it
    // with this very password.
    let password = stored_password(portal, &homeserver, Credential::FirstAdmin).await?;
    match synapse::register(&hosting.http, &base, &secret, FIRST_ADMIN, &password, true).await {
        Ok(_) | Err(SynapseError::UserTaken) => {}
        Err(error) => {
            return Err(LifecycleError::Register {
                user: FIRST_ADMIN,
                error,
            })
        }
    }

    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET state = $2, running_since = $3, last_error = NULL, updated_at = $3 \
         WHERE id = $1 AND state = $4",
    )
    .bind(homeserver.id)
    .bind(HomeserverState::Running)
    .bind(now)
    .bind(HomeserverState::Provisioning)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if done {
        let event = AuditEvent::new(Actor::System, "homeserver.provisioned")
            .customer(homeserver.customer_id)
            .target("homeserver", homeserver.id)
            .details(serde_json::json!({ "server_name": deployment.server_name }));
        audit::record_system(&mut tx, &event, portal).await?;
    }
    tx.commit().await?;
    if done {
        record_event(portal, homeserver.id, "running", None).await?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Credential {
    Service,
    FirstAdmin,
}

/// The password of the service user or the first admin: made and stored sealed on first use,
/// read back on later ones.
async fn stored_password(
    portal: &Portal,
    homeserver: &Homeserver,
    credential: Credential,
) -> Result<String, LifecycleError> {
    let stored = match credential {
        Credential::Service => &homeserver.service_password,
        Credential::FirstAdmin => &homeserver.admin_password,
    };
    let open = |sealed: &str| -> Result<String, LifecycleError> {
        let (bytes, _) = portal
            .secret_box
            .open(sealed)
            .map_err(|e| LifecycleError::Secret(e.to_string()))?;
        String::from_utf8(bytes).map_err(|e| LifecycleError::Secret(e.to_string()))
    };
    if let Some(sealed) = stored {
        return open(sealed);
    }
    let password = crate::random::token(&*portal.random, 18);
    let sealed = portal.secret_box.seal(password.as_bytes(), &*portal.random);
    let stored_now = match credential {
        Credential::Service => on_db!(&portal.db, pool => sqlx::query(
            "UPDATE homeservers SET service_password = $2 WHERE id = $1 AND service_password IS NULL",
        )
        .bind(homeserver.id)
        .bind(&sealed)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))?,
        Credential::FirstAdmin => on_db!(&portal.db, pool => sqlx::query(
            "UPDATE homeservers SET admin_password = $2, admin_user = $3 WHERE id = $1 AND admin_user IS NULL",
        )
        .bind(homeserver.id)
        .bind(&sealed)
        .bind(FIRST_ADMIN)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))?,
    };
    if stored_now {
        return Ok(password);
    }
    // Another attempt stored one first: use that one.
    let again = load(&portal.db, homeserver.id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let sealed = match credential {
        Credential::Service => again.service_password,
        Credential::FirstAdmin => again.admin_password,
    };
    open(&sealed.ok_or_else(|| LifecycleError::Secret("the stored password is gone".into()))?)
}

/// Gives the homeserver a port of the range that no homeserver holds and nothing listens on.
/// Kept for the homeserver's life.
async fn assign_port(portal: &Portal, id: Uuid) -> Result<u16, LifecycleError> {
    let range = portal.hosting.ports.clone();
    let span = u64::from(range.end() - range.start()) + 1;
    for _ in 0..64 {
        let port = range.start() + portal.random.below(span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let assigned = on_db!(&portal.db, pool => sqlx::query(
            "UPDATE homeservers SET port = $2 WHERE id = $1 AND port IS NULL",
        )
        .bind(id)
        .bind(i32::from(port))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
        match assigned {
            Ok(1) => return Ok(port),
            Ok(_) => {
                let again = load(&portal.db, id).await?.and_then(|h| h.port);
                return again
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or(LifecycleError::NoFreePort);
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LifecycleError::NoFreePort)
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<(), LifecycleError> {
    let started = std::time::Instant::now();
    while started.elapsed() < READY_WITHIN {
        if synapse::healthy(http, base).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(LifecycleError::NotReady(READY_WITHIN.as_secs()))
}

/// The customer's first admin password, shown once: returned and erased (None when it was
/// revealed already, or the homeserver is not the customer's or not running).
pub async fn reveal_admin_password(
    portal: &Portal,
    meta: &crate::audit::RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    id: Uuid,
) -> Result<Option<(String, String)>, LifecycleError> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let found: Option<(String, String)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT admin_user, admin_password FROM homeservers \
         WHERE id = $1 AND customer_id = $2 AND state = $3 AND admin_password IS NOT NULL",
    )
    .bind(id)
    .bind(customer_id)
    .bind(HomeserverState::Running)
    .fetch_optional(conn)
    .await)?;
    let Some((user, sealed)) = found else {
        return Ok(None);
    };
    // Erased by the statement that checks it is still there: two presses show it once.
    let erased = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE homeservers SET admin_password = NULL, admin_password_revealed_at = $2 \
         WHERE id = $1 AND admin_password IS NOT NULL",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if !erased {
        return Ok(None);
    }
    let (bytes, _) = portal
        .secret_box
        .open(&sealed)
        .map_err(|e| LifecycleError::Secret(e.to_string()))?;
    let password = String::from_utf8(bytes).map_err(|e| LifecycleError::Secret(e.to_string()))?;
    let event = AuditEvent::new(actor, "homeserver.admin_password_revealed")
        .customer(customer_id)
        .target("homeserver", id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Some((user, password)))
}

/// A homeserver as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub state: HomeserverState,
    /// `<name>.<domain>`.
    pub server_name: String,
    /// Where Matrix clients reach it (once it has been provisioned).
    pub url: Option<String>,
    pub admin_user: Option<String>,
    /// The first admin's password waits to be revealed (once).
    pub password_to_reveal: bool,
    /// The last failure of its lifecycle, while it is not resolved.
    pub last_error: Option<String>,
    pub running_since: Option<i64>,
    /// Synapse's version, from its admin API (None when it does not answer).
    pub version: Option<String>,
    /// Uptime over the last 30 days in per mille, and the last health check.
    pub uptime_per_mille: Option<u32>,
    pub last_check: Option<i64>,
    pub down_since: Option<i64>,
}

/// The homeserver's page data (reads only).
pub async fn overview(portal: &Portal, id: Uuid) -> Result<Option<Overview>, sqlx::Error> {
    let Some(homeserver) = load(&portal.db, id).await? else {
        return Ok(None);
    };
    let hosting = &portal.hosting;
    let deployment = homeserver.deployment(portal);
    let provisioned = matches!(
        homeserver.state,
        HomeserverState::Running | HomeserverState::Suspended
    );
    let provisioner = provisioned
        .then(|| hosting.provisioners.for_region(&homeserver.region))
        .flatten();
    let admin_url = provisioner.and_then(|p| p.admin_url(&deployment));
    let client_url = provisioner.and_then(|p| {
        deployment
            .public_url
            .clone()
            .or_else(|| p.client_url(&deployment))
    });
    // Asked of the homeserver with the portal's own admin token (a read; nothing changes).
    let version = match (&admin_url, &homeserver.service_token) {
        (Some(url), Some(sealed)) if homeserver.state == HomeserverState::Running => {
            match portal.secret_box.open(sealed) {
                Ok((token, _)) => {
                    synapse::server_version(&hosting.http, url, &String::from_utf8_lossy(&token))
                        .await
                        .ok()
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    let (uptime_per_mille, last_check) = super::health::uptime(portal, id).await?;
    Ok(Some(Overview {
        version,
        uptime_per_mille,
        last_check,
        down_since: homeserver.down_since,
        state: homeserver.state,
        url: client_url,
        server_name: deployment.server_name,
        admin_user: homeserver.admin_user,
        password_to_reveal: homeserver.admin_password.is_some()
            && homeserver.state == HomeserverState::Running,
        last_error: homeserver.last_error,
        running_since: homeserver.running_since,
    }))
}

/// Applies billing to the homeservers: dunning's suspension mark stops a running homeserver,
/// payment (the mark lifted, the subscription in good standing) starts it again, and the end
/// of its subscription starts its retention period, after which its data is deleted. Each
/// change is made by a statement that checks the state it changes, so replicas may run this
/// at once.
pub const FOLLOW_BILLING_JOB: &str = "homeservers.follow_billing";

/// Queues [`follow_billing`] in the transaction of a billing change.
pub async fn enqueue_follow_billing(tx: &mut Tx, portal: &Portal) -> Result<(), sqlx::Error> {
    let job = NewJob::now(FOLLOW_BILLING_JOB, serde_json::Value::Null, &*portal.clock)
        .dedupe(FOLLOW_BILLING_JOB);
    jobs::enqueue(tx, job, &*portal.clock, &*portal.random).await?;
    Ok(())
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    pub suspended: usize,
    pub resumed: usize,
    pub ending: usize,
    pub deleted: usize,
}

/// Moves one homeserver from `from` to `to` (with `extra` SET clauses), recording the event and
/// an audit entry; false when it was not in `from` any more.
async fn transition(
    portal: &Portal,
    id: Uuid,
    customer_id: Uuid,
    from: HomeserverState,
    to: HomeserverState,
    extra: &str,
    action: &'static str,
) -> Result<bool, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let sql = format!(
        "UPDATE homeservers SET state = $2, updated_at = $3{extra} WHERE id = $1 AND state = $4"
    );
    let moved = on_tx!(&mut tx, conn => sqlx::query(&sql)
        .bind(id)
        .bind(to)
        .bind(now)
        .bind(from)
        .execute(conn)
        .await
        .map(|r| r.rows_affected() == 1))?;
    if moved {
        let event = AuditEvent::new(Actor::System, action)
            .customer(customer_id)
            .target("homeserver", id);
        audit::record_system(&mut tx, &event, portal).await?;
    }
    tx.commit().await?;
    if moved {
        record_event(portal, id, to.as_str(), None).await?;
        portal.hosting.wake.notify_one();
    }
    Ok(moved)
}

pub async fn follow_billing(portal: &Portal) -> Result<Followed, LifecycleError> {
    let now = portal.clock.now_ms();
    let mut followed = Followed::default();
    // Homeservers (id, customer) that `sql` picks; `at` binds its $1.
    let select = |sql: &'static str, at: Option<i64>| async move {
        let rows: Vec<(Uuid, Uuid)> = on_db!(&portal.db, pool => {
            let query = sqlx::query_as(sql);
            match at {
                Some(at) => query.bind(at).fetch_all(pool).await,
                None => query.fetch_all(pool).await,
            }
        })?;
        Ok::<_, sqlx::Error>(rows)
    };

    // Dunning's mark, or staff, stop a running homeserver.
    for (id, customer) in select(
        "SELECT id, customer_id FROM homeservers WHERE state = 'running' \
         AND ((suspension_marked_at IS NOT NULL AND suspension_marked_at <= $1) \
              OR staff_suspended_at IS NOT NULL)",
        Some(now),
    )
    .await?
    {
        if transition(
            portal,
            id,
            customer,
            HomeserverState::Running,
            HomeserverState::Suspended,
            "",
            "homeserver.suspended",
        )
        .await?
        {
            followed.suspended += 1;
        }
    }
    // Paid again: the mark is gone and the subscription is in good standing.
    for (id, customer) in select(
        "SELECT h.id, h.customer_id FROM homeservers h JOIN subscriptions s ON s.homeserver_id = h.id \
         WHERE h.state = 'suspended' AND h.suspension_marked_at IS NULL \
         AND h.staff_suspended_at IS NULL AND s.status IN ('active', 'trialing')",
        None,
    )
    .await?
    {
        if transition(portal, id, customer, HomeserverState::Suspended, HomeserverState::Running, "", "homeserver.resumed").await? {
            followed.resumed += 1;
        }
    }
    // The subscription ended: the data is kept for the retention period, then deleted. One
    // never paid for has nothing to keep.
    let retention_ms = i64::from(portal.hosting.retention_days) * 86_400_000;
    for (id, customer) in select(
        "SELECT h.id, h.customer_id FROM homeservers h JOIN subscriptions s ON s.homeserver_id = h.id \
         WHERE s.status IN ('canceled', 'incomplete_expired') \
         AND h.state NOT IN ('terminating', 'terminated')",
        None,
    )
    .await?
    {
        let Some(homeserver) = load(&portal.db, id).await? else { continue };
        let ended = if homeserver.state == HomeserverState::WaitingForPayment {
            transition(portal, id, customer, homeserver.state, HomeserverState::Terminated, "", "homeserver.terminated").await?
        } else {
            let extra = format!(", terminate_after = {}", now + retention_ms);
            transition(portal, id, customer, homeserver.state, HomeserverState::Terminating, &extra, "homeserver.ending").await?
        };
        if ended {
            followed.ending += 1;
        }
    }
    for (id, customer) in select(
        "SELECT id, customer_id FROM homeservers WHERE state = 'terminating' AND terminate_after <= $1",
        Some(now),
    )
    .await?
    {
        let Some(homeserver) = load(&portal.db, id).await? else { continue };
        if let Some(provisioner) = portal.hosting.provisioners.for_region(&homeserver.region) {
            provisioner
                .destroy(&homeserver.deployment(portal))
                .await?;
        }
        // Its data is gone: so are the credentials to it, and its port is free again.
        let extra = ", port = NULL, service_password = NULL, service_token = NULL, admin_password = NULL";
        if transition(portal, id, customer, HomeserverState::Terminating, HomeserverState::Terminated, extra, "homeserver.terminated").await? {
            followed.deleted += 1;
        }
    }
    Ok(followed)
}

/// What staff do to a homeserver (the operator's `server homeservers …` commands until the
/// staff console exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAction {
    /// Provisioning failed (its job gave up, or staff fixed the cause): try again now.
    RetryProvisioning,
    /// Stop it, whatever billing does, until staff resume it.
    Suspend,
    /// Lift staff's suspension; it runs again when billing allows.
    Resume,
}

/// Carries out a staff action; false when it does not apply to the homeserver's state.
pub async fn staff(
    portal: &Portal,
    meta: &crate::audit::RequestMeta,
    actor: Actor,
    id: Uuid,
    action: StaffAction,
) -> Result<bool, sqlx::Error> {
    let now = portal.clock.now_ms();
    let Some(homeserver) = load(&portal.db, id).await? else {
        return Ok(false);
    };
    let mut tx = portal.db.begin().await?;
    let (applies, name) = match action {
        StaffAction::RetryProvisioning => {
            let applies = matches!(
                homeserver.state,
                HomeserverState::WaitingForProvisioning | HomeserverState::Provisioning
            );
            if applies {
                enqueue_provision(&mut tx, portal, id).await?;
            }
            (applies, "homeserver.provisioning_retried")
        }
        StaffAction::Suspend | StaffAction::Resume => {
            // Suspending sets the time; resuming empties it. Each only where it changes.
            let (sql, at) = if action == StaffAction::Suspend {
                (
                    "UPDATE homeservers SET staff_suspended_at = $2 WHERE id = $1 \
                     AND staff_suspended_at IS NULL AND state NOT IN ('terminating', 'terminated')",
                    Some(now),
                )
            } else {
                (
                    "UPDATE homeservers SET staff_suspended_at = $2 WHERE id = $1 \
                     AND staff_suspended_at IS NOT NULL",
                    None,
                )
            };
            let applies = on_tx!(&mut tx, conn => sqlx::query(sql)
                .bind(id)
                .bind(at)
                .execute(conn)
                .await
                .map(|r| r.rows_affected() == 1))?;
            if applies {
                enqueue_follow_billing(&mut tx, portal).await?;
            }
            let name = if action == StaffAction::Suspend {
                "homeserver.staff_suspended"
            } else {
                "homeserver.staff_resumed"
            };
            (applies, name)
        }
    };
    if applies {
        let event = AuditEvent::new(actor, name)
            .customer(homeserver.customer_id)
            .target("homeserver", id);
        audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    }
    tx.commit().await?;
    Ok(applies)
}
