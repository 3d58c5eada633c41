//! Invoice PDFs: rendered once from the frozen document (by the server, which lays the
//! document out in words; see `server::invoice_pdf`), kept in the database with their SHA-256
//! so that every replica serves the same bytes. A job renders those not rendered yet: it is
//! queued when a document is frozen, and runs hourly for anything left behind.

use crate::{
    db::{Db, Tx},
    jobs::{self, NewJob},
    on_db,
    portal::Portal,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The job that renders the PDFs of frozen invoices that have none.
pub const RENDER_JOB: &str = "billing.render_invoice_pdfs";

/// Asks for a render soon, in the caller's transaction (one job for however many invoices).
pub async fn request_render(tx: &mut Tx, portal: &Portal) -> Result<(), sqlx::Error> {
    let job = NewJob::now(RENDER_JOB, serde_json::json!({}), &*portal.clock).dedupe(RENDER_JOB);
    jobs::enqueue(tx, job, &*portal.clock, &*portal.random)
        .await
        .map(|_| ())
}

/// A stored PDF and its SHA-256 (hex).
pub async fn stored(db: &Db, invoice_id: Uuid) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as(
        "SELECT pdf, sha256 FROM invoice_pdfs WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .fetch_optional(pool)
    .await)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Keeps the invoice's PDF unless one is kept already (the first one stays). Returns whether
/// this one was stored.
pub async fn store(db: &Db, invoice_id: Uuid, pdf: &[u8], now: i64) -> Result<bool, sqlx::Error> {
    on_db!(db, pool => sqlx::query(
        "INSERT INTO invoice_pdfs (invoice_id, pdf, sha256, rendered_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (invoice_id) DO NOTHING",
    )
    .bind(invoice_id)
    .bind(pdf)
    .bind(sha256_hex(pdf))
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Frozen invoices whose PDF is not rendered yet, oldest first, at most `limit`.
pub async fn missing(db: &Db, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_scalar(
        "SELECT i.id FROM invoices i WHERE i.document IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM invoice_pdfs p WHERE p.invoice_id = i.id) \
         ORDER BY i.frozen_at, i.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)
}
