//! A durable job queue in the database.
//!
//! - [`enqueue`] takes the caller's transaction, so a job exists exactly when the state change
//!   that caused it committed (a transactional outbox).
//! - Any replica may run jobs: [`claim`] takes one due job under a lease (`FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL; SQLite serialises writers), and a job whose runner died is claimed
//!   again once its lease expires.
//! - A failed job is retried with exponential backoff and jitter until `max_attempts`, then kept
//!   with status `failed` and its last error for operators.
//! - Periodic work is enqueued once per time slot, however many replicas tick.

use crate::{clock::Clock, db::Db, db::Tx, on_db, on_tx, random::new_id, random::Random};
use serde_json::Value;
use sqlx::types::Json;
use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};
use uuid::Uuid;

pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;
/// How long a claimed job is reserved for its runner before another may take it.
pub const LEASE: time::Duration = time::Duration::minutes(5);

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    /// At most one job that has not started exists per key; enqueueing again is a no-op.
    pub dedupe_key: Option<String>,
    pub run_at_ms: i64,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn now(kind: &'static str, payload: Value, clock: &dyn Clock) -> Self {
        Self {
            kind,
            payload,
            dedupe_key: None,
            run_at_ms: clock.now_ms(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub payload: Json<Value>,
    pub attempts: i32,
    pub max_attempts: i32,
}

/// Adds a job inside the caller's transaction. Returns false when a job with the same dedupe
/// key is already queued.
pub async fn enqueue(
    tx: &mut Tx,
    job: NewJob,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<bool, sqlx::Error> {
    let now = clock.now_ms();
    let id = new_id(now, random);
    let result = on_tx!(tx, conn => sqlx::query(
        "INSERT INTO jobs (id, kind, payload, dedupe_key, max_attempts, run_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(id)
    .bind(job.kind)
    .bind(Json(&job.payload))
    .bind(&job.dedupe_key)
    .bind(job.max_attempts)
    .bind(job.run_at_ms)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())?);
    Ok(result == 1)
}

/// Claims the oldest due job for `worker`, or None when nothing is due. A started job lets go
/// of its dedupe key: a change that happens while it runs enqueues another run, so the last
/// change is always seen (coalescing only merges jobs that have not started).
pub async fn claim(db: &Db, worker: &str, clock: &dyn Clock) -> Result<Option<Job>, sqlx::Error> {
    let now = clock.now_ms();
    let lease_until = now + LEASE.whole_milliseconds() as i64;
    let lock = match db {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => "FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE jobs SET locked_by = $1, locked_until = $2, attempts = attempts + 1, dedupe_key = NULL \
         WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $3 \
                     AND (locked_until IS NULL OR locked_until < $3) \
                     ORDER BY run_at LIMIT 1 {lock}) \
         RETURNING id, kind, payload, attempts, max_attempts"
    );
    on_db!(db, pool => sqlx::query_as::<_, Job>(&sql)
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(pool)
        .await)
}

/// The job succeeded: it leaves the queue (and frees its dedupe key).
pub async fn complete(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query("DELETE FROM jobs WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Backoff before attempt `attempts + 1`: 10 s doubling per attempt, capped at one hour, plus up
/// to 20 % jitter so that many failures do not retry in lockstep.
pub fn backoff(attempts: i32, random: &dyn Random) -> time::Duration {
    let base_secs = 10u64
        .saturating_mul(1u64 << attempts.clamp(0, 20).saturating_sub(1))
        .min(3600);
    let jitter_ms = random.below(base_secs * 200 + 1);
    time::Duration::milliseconds((base_secs * 1000 + jitter_ms) as i64)
}

/// The job failed: schedule a retry, or mark it failed for good after its last attempt.
pub async fn fail(
    db: &Db,
    job: &Job,
    error: &str,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<(), sqlx::Error> {
    let error: String = error.chars().take(2000).collect();
    if job.attempts >= job.max_attempts {
        on_db!(db, pool => sqlx::query(
            "UPDATE jobs SET status = 'failed', locked_by = NULL, locked_until = NULL, \
             last_error = $2, dedupe_key = NULL WHERE id = $1",
        )
        .bind(job.id)
        .bind(&error)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    } else {
        let retry_at = clock.now_ms() + backoff(job.attempts, random).whole_milliseconds() as i64;
        on_db!(db, pool => sqlx::query(
            "UPDATE jobs SET locked_by = NULL, locked_until = NULL, last_error = $2, run_at = $3 \
             WHERE id = $1",
        )
        .bind(job.id)
        .bind(&error)
        .bind(retry_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: i64,
    pub failed: i64,
}

pub async fn counts(db: &Db) -> Result<QueueCounts, sqlx::Error> {
    let (queued, failed): (i64, i64) = on_db!(db, pool => sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) FROM jobs",
    )
    .fetch_one(pool)
    .await)?;
    Ok(QueueCounts { queued, failed })
}

pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Handler = Arc<dyn Fn(Value) -> JobFuture + Send + Sync>;

/// Work that recurs: enqueued once per `every` slot.
#[derive(Clone)]
pub struct Periodic {
    pub kind: &'static str,
    pub every: time::Duration,
}

/// Runs jobs: one loop per process, claiming due jobs until none is left, then waiting.
#[derive(Clone)]
pub struct Runner {
    db: Db,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    worker: String,
    handlers: HashMap<&'static str, Handler>,
    periodic: Vec<Periodic>,
}

impl Runner {
    pub fn new(db: Db, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        let worker = format!(
            "{}-{}",
            std::process::id(),
            crate::random::token(&*random, 4)
        );
        Self {
            db,
            clock,
            random,
            worker,
            handlers: HashMap::new(),
            periodic: Vec::new(),
        }
    }

    pub fn handle<F, Fut>(mut self, kind: &'static str, handler: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.handlers
            .insert(kind, Arc::new(move |payload| Box::pin(handler(payload))));
        self
    }

    /// Registers `kind` to be enqueued every `every` (its handler must be registered too).
    pub fn every(mut self, kind: &'static str, every: time::Duration) -> Self {
        self.periodic.push(Periodic { kind, every });
        self
    }

    /// Enqueues each periodic job for the current slot, once across all replicas: the slot is
    /// claimed in `job_schedule` in the same transaction as the enqueue.
    pub async fn schedule_periodic(&self) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        for p in &self.periodic {
            let slot = now / p.every.whole_milliseconds().max(1) as i64;
            let mut tx = self.db.begin().await?;
            let claimed = on_tx!(&mut tx, conn => sqlx::query(
                "INSERT INTO job_schedule (kind, slot) VALUES ($1, $2) \
                 ON CONFLICT (kind) DO UPDATE SET slot = excluded.slot WHERE job_schedule.slot < excluded.slot",
            )
            .bind(p.kind)
            .bind(slot)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
            if claimed == 1 {
                let job = NewJob::now(p.kind, Value::Null, &*self.clock);
                enqueue(&mut tx, job, &*self.clock, &*self.random).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Runs every due job once; returns how many ran (successfully or not).
    pub async fn run_due(&self) -> Result<usize, sqlx::Error> {
        let mut ran = 0;
        while let Some(job) = claim(&self.db, &self.worker, &*self.clock).await? {
            ran += 1;
            let outcome = match self.handlers.get(job.kind.as_str()) {
                Some(handler) => handler(job.payload.0.clone()).await,
                None => Err(format!("no handler for job kind {}", job.kind)),
            };
            match outcome {
                Ok(()) => complete(&self.db, job.id).await?,
                Err(error) => {
                    tracing::warn!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, %error, "job failed");
                    fail(&self.db, &job, &error, &*self.clock, &*self.random).await?;
                }
            }
        }
        Ok(ran)
    }

    /// The background loop: schedule periodic work, run what is due, sleep `poll`, until
    /// `shutdown` resolves.
    pub async fn run_until(self, poll: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.schedule_periodic().await {
                tracing::warn!(%error, "could not schedule periodic jobs");
            }
            if let Err(error) = self.run_due().await {
                tracing::warn!(%error, "job runner could not reach the database");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let r = SeededRandom::new(3);
        let secs = |a| backoff(a, &r).whole_seconds();
        assert!((10..=12).contains(&secs(1)));
        assert!((20..=24).contains(&secs(2)));
        assert!((40..=48).contains(&secs(3)));
        assert!((3600..=4320).contains(&secs(30)));
    }
}
