//! An address proves nothing until its owner follows a link sent to it (DESIGN: "an unverified
//! address reserves and grants nothing").
//!
//! - Reserves nothing: when someone proves an address (a link sent to it was followed, or a
//!   provider vouched for it at sign-up), any *other* account that holds the same address without
//!   having proved it is deleted, with the customer it alone owns, so the address is free.
//! - Grants nothing: when an account's address becomes verified, every sign-in method added
//!   while it was unverified goes, except — for the sign-up's own confirmation link or an address
//!   change confirmed by the signed-in owner — the method the account was created with (the link
//!   confirms that sign-up). After a password reset nothing of that time stays: the person who
//!   reset holds the inbox and the new password; a stranger who pre-registered the address with
//!   their own X login loses it. The account's sessions end and the owner is told by email.

use super::emails::{self, Kind};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    clock::Clock,
    db::Tx,
    i18n::Locale,
    mail, on_tx,
    random::Random,
};
use uuid::Uuid;

/// How the address was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The confirmation link sent at sign-up (it names the account being confirmed).
    SignUpLink,
    /// A confirmed change of address, requested by the signed-in, re-authenticated owner.
    ChangeLink,
    /// A password-reset link: proves the inbox, endorses nothing that was there before.
    ResetLink,
}

/// Applies the rules above after `user_id`'s address became verified in `tx` (call it only when
/// it was unverified before). Returns the providers whose sign-in was removed.
#[allow(clippy::too_many_arguments)]
pub async fn address_verified(
    tx: &mut Tx,
    user_id: Uuid,
    proof: Proof,
    public_url: &str,
    meta: &RequestMeta,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<Vec<String>, sqlx::Error> {
    let account: Option<(Option<String>, Option<String>, String, i64)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT email, email_normalized, display_name, created_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await)?;
    let Some((Some(email), Some(normalized), name, created_at)) = account else {
        return Ok(Vec::new());
    };
    release_address(tx, &normalized, user_id, meta, clock, random).await?;

    // The sign-up's own identity was inserted in the sign-up's transaction, at the account's
    // creation time; anything later was added while the address was unproven.
    let keep_before = match proof {
        Proof::SignUpLink | Proof::ChangeLink => created_at + 1,
        Proof::ResetLink => i64::MIN,
    };
    let removed: Vec<String> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT provider FROM identities WHERE user_id = $1 AND created_at >= $2 ORDER BY created_at",
    )
    .bind(user_id)
    .bind(keep_before)
    .fetch_all(conn)
    .await)?;
    if removed.is_empty() {
        return Ok(removed);
    }
    on_tx!(tx, conn => sqlx::query("DELETE FROM identities WHERE user_id = $1 AND created_at >= $2")
        .bind(user_id)
        .bind(keep_before)
        .execute(conn)
        .await
        .map(|_| ()))?;
    crate::sessions::revoke_all(tx, user_id).await?;
    let providers = removed.join(", ");
    let notice = emails::compose_with(
        Kind::UnprovenMethodsRemoved,
        Locale::En,
        &email,
        user_id,
        &name,
        Some(&format!("{}/account", public_url.trim_end_matches('/'))),
        &[("providers", &providers)],
    );
    mail::enqueue(tx, &notice, clock, random).await?;
    let event = AuditEvent::new(Actor::System, "identity.removed_unproven")
        .target("user", user_id)
        .details(serde_json::json!({ "providers": removed, "proof": format!("{proof:?}") }));
    audit::record(tx, &event, meta, clock, random).await?;
    Ok(removed)
}

/// Frees `email_normalized` from every account other than `except` that holds it without having
/// proved it: such an account is deleted with the customer it alone owns (it could not buy
/// anything: ordering needs a verified address). Returns how many accounts went.
pub async fn release_address(
    tx: &mut Tx,
    email_normalized: &str,
    except: Uuid,
    meta: &RequestMeta,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<u64, sqlx::Error> {
    let holders: Vec<Uuid> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM users WHERE email_normalized = $1 AND email_verified_at IS NULL \
         AND staff_role IS NULL AND id <> $2",
    )
    .bind(email_normalized)
    .bind(except)
    .fetch_all(conn)
    .await)?;
    for holder in &holders {
        delete_unverified_account(tx, *holder).await?;
        let event = AuditEvent::new(Actor::System, "account.deleted_unverified")
            .target("user", holder)
            .details(serde_json::json!({ "reason": "address proven by another account" }));
        audit::record(tx, &event, meta, clock, random).await?;
    }
    Ok(holders.len() as u64)
}

/// Deletes an account whose address was never verified, with the customers it alone owns and
/// its queued mail, in the caller's transaction.
pub async fn delete_unverified_account(tx: &mut Tx, user_id: Uuid) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "DELETE FROM customers WHERE id IN (SELECT customer_id FROM memberships WHERE user_id = $1 AND role = 'owner') \
         AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.customer_id = customers.id AND m.user_id <> $1)",
    )
    .bind(user_id)
    .execute(conn)
    .await
    .map(|_| ()))?;
    crate::sessions::revoke_all(tx, user_id).await?;
    on_tx!(tx, conn => sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(conn).await.map(|_| ()))?;
    on_tx!(tx, conn => sqlx::query("DELETE FROM outbox_emails WHERE user_id = $1").bind(user_id).execute(conn).await.map(|_| ()))?;
    Ok(())
}
