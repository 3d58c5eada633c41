//! Stripe's webhook events: verified, recorded once by their id, and answered at once; the
//! work is a job that reads the object again from Stripe (so the order in which events arrive
//! does not matter, and many events about one object make one run).

use crate::{
    db::Tx,
    jobs::{self, NewJob},
    on_tx,
    portal::Portal,
};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How old (or how far in the future) a signature's timestamp may be, in seconds.
pub const TOLERANCE_SECONDS: i64 = 300;
/// The job that brings the portal's records in line with one Stripe object.
pub const SYNC_JOB: &str = "stripe.sync";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header, or one without t= and v1=")]
    Malformed,
    #[error("no v1 signature matches")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
}

/// Checks `Stripe-Signature: t=…,v1=…[,v1=…]` over `t.payload` with the endpoint's secret.
/// Any one matching v1 signature is enough (Stripe sends several while a secret is rolled).
/// `now` is the wall clock in seconds: replay protection is about real time.
pub fn verify(payload: &[u8], header: &str, secret: &str, now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    // verify_slice compares in constant time.
    let matched = signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// The `Stripe-Signature` header Stripe would send (for tests and load scripts).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What routing an event needs: the object is read again from Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub id: String,
    pub kind: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: RawObject,
}

#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    object: Option<String>,
}

pub fn parse(payload: &[u8]) -> Result<EventSummary, serde_json::Error> {
    let raw: RawEvent = serde_json::from_slice(payload)?;
    Ok(EventSummary {
        id: raw.id,
        kind: raw.kind,
        object_type: raw.data.object.object,
        object_id: raw.data.object.id,
    })
}

/// The events the portal acts on, and the kind of object each one's job reads again.
pub fn handled(kind: &str) -> bool {
    matches!(
        kind,
        "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted"
            | "invoice.created"
            | "invoice.finalized"
            | "invoice.paid"
            | "invoice.payment_succeeded"
            | "invoice.payment_failed"
            | "invoice.payment_action_required"
            | "payment_method.attached"
            | "payment_method.detached"
            | "setup_intent.succeeded"
            | "customer.updated"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First delivery: recorded, and its job queued when the portal acts on it.
    New { queued: bool },
    /// Seen before: nothing to do.
    Duplicate,
}

/// Records the event by its id and queues its job, in one transaction.
pub async fn receive(portal: &Portal, event: &EventSummary) -> Result<Receipt, sqlx::Error> {
    let now = portal.clock.now_ms();
    let mut tx: Tx = portal.db.begin().await?;
    let inserted = on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO stripe_events (id, event_type, object_id, received_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(&event.object_id)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(Receipt::Duplicate);
    }
    let queued = match (&event.object_type, &event.object_id) {
        (Some(object_type), Some(object_id)) if handled(&event.kind) => {
            let job = NewJob::now(
                SYNC_JOB,
                serde_json::json!({ "object": object_type, "id": object_id }),
                &*portal.clock,
            )
            .dedupe(format!("{SYNC_JOB}:{object_id}"));
            jobs::enqueue(&mut tx, job, &*portal.clock, &*portal.random).await?;
            true
        }
        _ => false,
    };
    tx.commit().await?;
    Ok(Receipt::New { queued })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1","object":"invoice"}}}"#;

    #[test]
    fn a_signature_is_checked_against_every_v1_and_the_clock() {
        let good = sign(BODY, SECRET, 1_000_000);
        assert_eq!(verify(BODY, &good, SECRET, 1_000_000), Ok(()));
        assert_eq!(verify(BODY, &good, SECRET, 1_000_300), Ok(()));
        assert_eq!(
            verify(BODY, &good, SECRET, 1_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(BODY, &good, SECRET, 999_699),
            Err(SignatureError::Stale)
        );
        let sig = good.split("v1=").nth(1).unwrap();
        let several = format!("t=1000000,v1={},v1={sig},v0=abc", "00".repeat(32));
        assert_eq!(verify(BODY, &several, SECRET, 1_000_000), Ok(()));
        assert_eq!(
            verify(BODY, &good, "whsec_other", 1_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"{}", &good, SECRET, 1_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(BODY, "t=1000000", SECRET, 1_000_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(BODY, "", SECRET, 1_000_000),
            Err(SignatureError::Malformed)
        );
        // A timestamp changed after signing does not verify.
        let moved = good.replace("t=1000000", "t=1000001");
        assert_eq!(
            verify(BODY, &moved, SECRET, 1_000_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_event_is_reduced_to_what_routing_needs() {
        let event = parse(BODY).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.kind, "invoice.paid");
        assert_eq!(event.object_type.as_deref(), Some("invoice"));
        assert_eq!(event.object_id.as_deref(), Some("in_1"));
        assert!(handled("invoice.paid") && !handled("charge.refunded"));
    }
}
