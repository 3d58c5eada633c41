//! Capability links to invoices (P8): `/i/{token}`, 256 random bits in base64url (43
//! characters). Only the token's SHA-256 is stored, and a link is found by it; the token is
//! shown once, when the link is made. The customer sees each link's access record (made when,
//! by whom, last opened, how often) and revokes any; a revoked or expired link is the same as
//! one that never existed.

use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    on_db, on_tx,
    portal::Portal,
    random::new_id,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Characters of a token: 32 bytes in base64url without padding.
pub const TOKEN_LENGTH: usize = 43;

/// A new token: 256 bits from the portal's random source (the operating system's CSPRNG).
pub fn new_token(random: &dyn crate::random::Random) -> String {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` has a token's shape (anything else is looked up nowhere).
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LENGTH
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn digest(token: &str) -> String {
    hex::encode(raw_digest(token))
}

fn raw_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A link as its invoice's page lists it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkRecord {
    pub id: Uuid,
    pub created_at: i64,
    /// The display name of who made it (None: made by the portal, or the user is gone).
    pub created_by: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_opened_at: Option<i64>,
    pub open_count: i64,
}

/// Makes a link to one of the customer's invoices; returns its token (None when the invoice
/// is not the customer's, or has no document yet). `lifetime_days`: None, a link lives until
/// it is revoked.
pub async fn create(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    invoice_id: Uuid,
    lifetime_days: Option<u32>,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = portal.db.begin().await?;
    let found: Option<Uuid> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT id FROM invoices WHERE id = $1 AND customer_id = $2 AND document IS NOT NULL",
    )
    .bind(invoice_id)
    .bind(customer_id)
    .fetch_optional(conn)
    .await)?;
    if found.is_none() {
        return Ok(None);
    }
    let created_by = match actor {
        Actor::User(user) => Some(user),
        _ => None,
    };
    let (id, token) = insert(&mut tx, portal, invoice_id, created_by, lifetime_days).await?;
    let event = AuditEvent::new(actor, "invoice.link_created")
        .customer(customer_id)
        .target("invoice", invoice_id)
        .details(serde_json::json!({ "link": id }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Stores a new link to `invoice_id` in `tx`; returns its id and token.
async fn insert(
    tx: &mut crate::db::Tx,
    portal: &Portal,
    invoice_id: Uuid,
    created_by: Option<Uuid>,
    lifetime_days: Option<u32>,
) -> Result<(Uuid, String), sqlx::Error> {
    let now = portal.clock.now_ms();
    let token = new_token(&*portal.random);
    let id = new_id(now, &*portal.random);
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO invoice_links (id, invoice_id, token_sha256, created_at, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(invoice_id)
    .bind(digest(&token))
    .bind(now)
    .bind(created_by)
    .bind(lifetime_days.map(|days| now + i64::from(days) * 86_400_000))
    .execute(conn)
    .await
    .map(|_| ()))?;
    Ok((id, token))
}

/// The link an email about the invoice carries, made by the portal in the email's
/// transaction (a token can be shown only when it is made). Returns the link's full address.
pub async fn for_email(
    tx: &mut crate::db::Tx,
    portal: &Portal,
    invoice_id: Uuid,
) -> Result<String, sqlx::Error> {
    let (_, token) = insert(tx, portal, invoice_id, None, portal.invoice_link_days).await?;
    Ok(format!("{}/i/{token}", portal.public_url))
}

/// Revokes a link of one of the customer's invoices; false when there is no such link (or it
/// was revoked already).
pub async fn revoke(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    invoice_id: Uuid,
    link_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut tx = portal.db.begin().await?;
    let revoked = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE invoice_links SET revoked_at = $4 WHERE id = $1 AND invoice_id = $2 AND revoked_at IS NULL \
         AND invoice_id IN (SELECT id FROM invoices WHERE customer_id = $3)",
    )
    .bind(link_id)
    .bind(invoice_id)
    .bind(customer_id)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1))?;
    if revoked {
        let event = AuditEvent::new(actor, "invoice.link_revoked")
            .customer(customer_id)
            .target("invoice", invoice_id)
            .details(serde_json::json!({ "link": link_id }));
        audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    }
    tx.commit().await?;
    if revoked {
        portal.link_lookups.forget_all();
    }
    Ok(revoked)
}

/// The links of one of the customer's invoices, newest first. The opens this replica has
/// buffered are written first, so the owner sees every open of their own links so far.
pub async fn list(
    portal: &Portal,
    customer_id: Uuid,
    invoice_id: Uuid,
) -> Result<Vec<LinkRecord>, sqlx::Error> {
    portal.link_opens.flush(&portal.db).await?;
    on_db!(&portal.db, pool => sqlx::query_as(
        "SELECT l.id, l.created_at, u.display_name AS created_by, l.expires_at, l.revoked_at, \
         l.last_opened_at, l.open_count FROM invoice_links l JOIN invoices i ON i.id = l.invoice_id \
         LEFT JOIN users u ON u.id = l.created_by \
         WHERE l.invoice_id = $1 AND i.customer_id = $2 ORDER BY l.created_at DESC, l.id DESC",
    )
    .bind(invoice_id)
    .bind(customer_id)
    .fetch_all(pool)
    .await)
}

/// What a link opened: its invoice and the invoice's payment state (the document itself is
/// frozen, so a caller may keep it once read).
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct Opened {
    pub link_id: Uuid,
    pub invoice_id: Uuid,
    pub status: super::InvoiceStatus,
    pub amount_paid: i64,
    pub paid_at: Option<i64>,
    pub card_last4: Option<String>,
}

/// Opens a link: the invoice it leads to, with the visit recorded ("last opened", the count:
/// an access record a page load may write) in [`OpenLog`]. None for a malformed, unknown,
/// revoked or expired token, all alike. At most one read and no write: a link can be opened
/// as often as a cached page is served, and a lookup is kept for [`LOOKUP_FRESH_MS`]
/// ([`Lookups`]).
pub async fn open(portal: &Portal, token: &str) -> Result<Option<Opened>, sqlx::Error> {
    if !well_formed(token) {
        return Ok(None);
    }
    let now = portal.clock.now_ms();
    let key = raw_digest(token);
    let opened = match portal.link_lookups.get(&key, now) {
        Some(opened) => Some(opened),
        None => {
            let generation = portal.link_lookups.generation();
            let found: Option<Found> = on_db!(&portal.db, pool => sqlx::query_as(
                "SELECT l.id AS link_id, i.id AS invoice_id, i.status, i.amount_paid, i.paid_at, i.card_last4, \
                 l.expires_at FROM invoice_links l JOIN invoices i ON i.id = l.invoice_id \
                 WHERE l.token_sha256 = $1 AND l.revoked_at IS NULL AND (l.expires_at IS NULL OR l.expires_at > $2) \
                 AND i.document IS NOT NULL",
            )
            .bind(hex::encode(key))
            .bind(now)
            .fetch_optional(pool)
            .await)?;
            found.map(|found| {
                portal.link_lookups.put(generation, key, now, &found);
                found.opened
            })
        }
    };
    if let Some(opened) = &opened {
        portal.link_opens.record(opened.link_id, now);
    }
    Ok(opened)
}

#[derive(sqlx::FromRow)]
struct Found {
    #[sqlx(flatten)]
    opened: Opened,
    expires_at: Option<i64>,
}

/// How long a replica trusts a link it looked up without reading it again. A replica forgets
/// every lookup at once when it revokes a link or changes an invoice's payment state itself
/// ([`Lookups::forget_all`]); a change another replica makes (or another process, on the same
/// database) reaches it within this time. An expiry is exact: it is checked on every open.
pub const LOOKUP_FRESH_MS: i64 = 1_000;

/// Links kept; past it the cache starts again.
const LOOKUPS_KEPT: usize = 10_000;

/// Links this replica opened recently, by their token's SHA-256: what [`open`] found, so a
/// link opened again within [`LOOKUP_FRESH_MS`] costs no database read. Tokens that open
/// nothing are never kept (nobody fills it by guessing).
#[derive(Debug, Default)]
pub struct Lookups(std::sync::RwLock<LookupsInner>);

#[derive(Debug, Default)]
struct LookupsInner {
    /// Grows with every [`Lookups::forget_all`]: a read that began before a change is not kept
    /// after it.
    generation: u64,
    by_digest: std::collections::HashMap<[u8; 32], Lookup>,
}

#[derive(Debug)]
struct Lookup {
    opened: Opened,
    read_at: i64,
    expires_at: Option<i64>,
}

impl Lookups {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Opened> {
        let inner = self.0.read().unwrap_or_else(|e| e.into_inner());
        let lookup = inner.by_digest.get(key)?;
        let fresh = (lookup.read_at..lookup.read_at + LOOKUP_FRESH_MS).contains(&now);
        let live = lookup.expires_at.is_none_or(|at| now < at);
        (fresh && live).then(|| lookup.opened.clone())
    }

    fn generation(&self) -> u64 {
        self.0.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    fn put(&self, generation: u64, key: [u8; 32], now: i64, found: &Found) {
        let mut inner = self.0.write().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.by_digest.len() >= LOOKUPS_KEPT {
            inner.by_digest.clear();
        }
        inner.by_digest.insert(
            key,
            Lookup {
                opened: found.opened.clone(),
                read_at: now,
                expires_at: found.expires_at,
            },
        );
    }

    /// Forgets every lookup: called after a change to a link or to an invoice's payment state
    /// is committed, so this replica's next open reads it.
    pub fn forget_all(&self) {
        let mut inner = self.0.write().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        inner.by_digest.clear();
    }
}

/// Opens of links not yet written: each replica counts them in memory and writes them every
/// few seconds ([`OpenLog::flush`], from the server's loop, at shutdown, and before an owner
/// reads the links), so opening a link costs no database write. A replica that dies loses at
/// most the opens since its last flush.
#[derive(Debug, Default)]
pub struct OpenLog(std::sync::Mutex<std::collections::HashMap<Uuid, PendingOpens>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingOpens {
    count: i64,
    last_at: i64,
}

impl OpenLog {
    pub fn record(&self, link_id: Uuid, at: i64) {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = pending.entry(link_id).or_insert(PendingOpens {
            count: 0,
            last_at: at,
        });
        entry.count += 1;
        entry.last_at = entry.last_at.max(at);
    }

    /// Writes the buffered opens; returns how many links were updated. Opens that could not
    /// be written are kept for the next flush.
    pub async fn flush(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let pending: Vec<(Uuid, PendingOpens)> = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if map.is_empty() {
                return Ok(0);
            }
            std::mem::take(&mut *map).into_iter().collect()
        };
        let written = Self::write(db, &pending).await;
        if written.is_err() {
            for (link, opens) in pending {
                let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
                let entry = map.entry(link).or_insert(PendingOpens {
                    count: 0,
                    last_at: opens.last_at,
                });
                entry.count += opens.count;
                entry.last_at = entry.last_at.max(opens.last_at);
            }
        }
        written
    }

    async fn write(db: &Db, pending: &[(Uuid, PendingOpens)]) -> Result<usize, sqlx::Error> {
        let mut tx = db.begin().await?;
        for (link, opens) in pending {
            on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE invoice_links SET open_count = open_count + $2, \
                 last_opened_at = CASE WHEN last_opened_at IS NULL OR last_opened_at < $3 THEN $3 ELSE last_opened_at END \
                 WHERE id = $1",
            )
            .bind(link)
            .bind(opens.count)
            .bind(opens.last_at)
            .execute(conn)
            .await
            .map(|_| ()))?;
        }
        tx.commit().await?;
        Ok(pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_characters_of_base64url_and_differ() {
        let random = crate::random::OsRandom;
        let a = new_token(&random);
        let b = new_token(&random);
        assert_eq!(a.len(), TOKEN_LENGTH);
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert!(!well_formed(&a[1..]), "too short");
        assert!(
            !well_formed(&format!("{}=", &a[1..])),
            "padding is not base64url here"
        );
        assert!(!well_formed(&format!("{}/", &a[1..])), "standard base64");
        assert_eq!(digest(&a).len(), 64);
    }

    fn found(expires_at: Option<i64>) -> Found {
        Found {
            opened: Opened {
                link_id: Uuid::from_u128(1),
                invoice_id: Uuid::from_u128(2),
                status: super::super::InvoiceStatus::Open,
                amount_paid: 0,
                paid_at: None,
                card_last4: None,
            },
            expires_at,
        }
    }

    #[test]
    fn lookups_are_kept_a_second_until_expiry_and_not_past_a_change() {
        let lookups = Lookups::default();
        let key = raw_digest("token");
        lookups.put(lookups.generation(), key, 1_000, &found(Some(1_500)));
        assert!(lookups.get(&key, 999).is_none(), "not before it was read");
        assert!(lookups.get(&key, 1_000).is_some());
        assert!(lookups.get(&key, 1_499).is_some());
        assert!(lookups.get(&key, 1_500).is_none(), "expired");
        lookups.put(lookups.generation(), key, 1_000, &found(None));
        assert!(lookups.get(&key, 1_999).is_some());
        assert!(lookups.get(&key, 2_000).is_none(), "a second old");
        assert!(lookups.get(&raw_digest("other"), 1_000).is_none());

        // A read that began before a change is not kept after it.
        let generation = lookups.generation();
        lookups.forget_all();
        assert!(lookups.get(&key, 1_000).is_none(), "forgotten");
        lookups.put(generation, key, 1_000, &found(None));
        assert!(lookups.get(&key, 1_000).is_none(), "read before the change");
        lookups.put(lookups.generation(), key, 1_000, &found(None));
        assert!(lookups.get(&key, 1_000).is_some());
    }
}
