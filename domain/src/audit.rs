//! The one audit/event writer. Entries are written in the caller's transaction, so an action
//! and its record commit together. Rows name people by id; personal values (an email typed at a
//! failed sign-in, say) go only into `personal`, which erasure pseudonymises.

use crate::{clock::Clock, db::Tx, on_tx, random::new_id, random::Random};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Someone not signed in (a failed sign-in, a webhook).
    Anonymous,
    User(Uuid),
    Staff(Uuid),
    /// The portal itself: jobs, timers.
    System,
}

impl Actor {
    pub fn parts(self) -> (&'static str, Option<Uuid>) {
        match self {
            Actor::Anonymous => ("anonymous", None),
            Actor::User(id) => ("user", Some(id)),
            Actor::Staff(id) => ("staff", Some(id)),
            Actor::System => ("system", None),
        }
    }
}

/// Where a request came from; carried from the HTTP layer into services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: Actor,
    pub customer_id: Option<Uuid>,
    /// Dotted name, e.g. `session.revoked`.
    pub action: &'static str,
    pub target: Option<(&'static str, String)>,
    /// Non-personal facts about the event.
    pub details: Value,
    /// Personal values, kept apart so that erasure can pseudonymise them.
    pub personal: Option<Value>,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: &'static str) -> Self {
        Self {
            actor,
            customer_id: None,
            action,
            target: None,
            details: Value::Object(Default::default()),
            personal: None,
        }
    }

    pub fn customer(mut self, id: Uuid) -> Self {
        self.customer_id = Some(id);
        self
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target = Some((kind, id.to_string()));
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn personal(mut self, personal: Value) -> Self {
        self.personal = Some(personal);
        self
    }
}

/// Records an event of the portal's own background work (a job, a Stripe sync, dunning): the
/// system acts, with no request behind it.
pub async fn record_system(
    tx: &mut Tx,
    event: &AuditEvent,
    portal: &crate::Portal,
) -> Result<Uuid, sqlx::Error> {
    record(
        tx,
        event,
        &RequestMeta::default(),
        &*portal.clock,
        &*portal.random,
    )
    .await
}

pub async fn record(
    tx: &mut Tx,
    event: &AuditEvent,
    meta: &RequestMeta,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<Uuid, sqlx::Error> {
    let now = clock.now_ms();
    let id = new_id(now, random);
    let (actor_kind, actor_id) = event.actor.parts();
    let (target_kind, target_id) = match &event.target {
        Some((kind, id)) => (Some(*kind), Some(id.as_str())),
        None => (None, None),
    };
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO audit_log (id, occurred_at, actor_kind, actor_id, customer_id, action, \
         target_kind, target_id, request_id, client_ip, details, personal) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id)
    .bind(now)
    .bind(actor_kind)
    .bind(actor_id)
    .bind(event.customer_id)
    .bind(event.action)
    .bind(target_kind)
    .bind(target_id)
    .bind(&meta.request_id)
    .bind(&meta.client_ip)
    .bind(Json(&event.details))
    .bind(event.personal.as_ref().map(Json))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(id)
}

/// Records an event that changes nothing else (a sign-in, a request to staff) in a
/// transaction of its own.
pub async fn record_alone(
    db: &crate::db::Db,
    event: &AuditEvent,
    meta: &RequestMeta,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<Uuid, sqlx::Error> {
    let mut tx = db.begin().await?;
    let id = record(&mut tx, event, meta, clock, random).await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub details: Json<Value>,
    pub personal: Option<Json<Value>>,
}

/// A customer's audit trail, newest first.
pub async fn for_customer(
    db: &crate::db::Db,
    customer_id: Uuid,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    crate::on_db!(db, pool => sqlx::query_as::<_, AuditEntry>(
        "SELECT id, occurred_at, actor_kind, actor_id, customer_id, action, target_kind, \
         target_id, request_id, client_ip, details, personal FROM audit_log \
         WHERE customer_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
    )
    .bind(customer_id)
    .bind(limit)
    .fetch_all(pool)
    .await)
}
