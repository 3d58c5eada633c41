//! Re-authentication, the one step every sensitive change asks for (password, email, two-factor,
//! linking an identity): the current password, or else a two-factor code. Accounts with
//! neither (external sign-in only) re-authenticate at their provider (the OAuth work).
//! Wrong answers count as failed sign-ins, so this cannot be used to guess a password faster.

use super::{profile, signup::AccountError, throttle, two_factor};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    Portal,
};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReauthRefusal {
    /// The password or code is wrong.
    Wrong,
    /// Too many recent failures: wait this long.
    Throttled(Duration),
    /// The account has no password and no second factor: confirm at the provider instead.
    NeedsProvider,
}

/// What the re-authentication form asks for this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReauthMethod {
    Password,
    Code,
    Provider,
}

pub fn method(account: &profile::Account) -> ReauthMethod {
    if account.has_password {
        ReauthMethod::Password
    } else if account.two_factor_enabled() {
        ReauthMethod::Code
    } else {
        ReauthMethod::Provider
    }
}

/// Checks `answer` (the password, or a two-factor code for accounts without one).
pub async fn confirm(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    answer: &str,
) -> Result<Result<(), ReauthRefusal>, AccountError> {
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if let Err(wait) = throttle::account_may_try(&portal.db, user_id, &*portal.clock).await? {
        return Ok(Err(ReauthRefusal::Throttled(wait)));
    }
    let right = match method(&account) {
        ReauthMethod::Password => {
            let stored = profile::stored_password(&portal.db, user_id)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            portal.passwords.verify(answer, &stored).await?.matches
        }
        ReauthMethod::Code => two_factor::check_code(portal, user_id, answer).await?,
        ReauthMethod::Provider => return Ok(Err(ReauthRefusal::NeedsProvider)),
    };
    let mut tx = portal.db.begin().await?;
    if right {
        throttle::clear_failures(&mut tx, user_id).await?;
        tx.commit().await?;
        return Ok(Ok(()));
    }
    throttle::record_failure(&mut tx, user_id, &*portal.clock).await?;
    let event = AuditEvent::new(Actor::User(user_id), "reauth.failed").target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Err(ReauthRefusal::Wrong))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// A link to an address nobody has confirmed proves nothing.
    Unverified,
    TooManyRequests,
}

/// For accounts that confirm at their provider when the provider cannot prove a fresh sign-in
/// (X has no such claim; some OpenID providers ignore `prompt=login`): a single-use link to the
/// account's confirmed address, valid 15 minutes, at most three an hour.
pub async fn send_link(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
) -> Result<Result<String, LinkRefusal>, AccountError> {
    use super::{
        email_tokens::{self, Purpose, MAX_PER_HOUR},
        emails::{self, Kind},
    };
    let account = profile::load(&portal.db, user_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let (Some(email), true) = (account.email.clone(), account.email_verified()) else {
        return Ok(Err(LinkRefusal::Unverified));
    };
    if email_tokens::recent_count(&portal.db, user_id, Purpose::Reauth, &*portal.clock).await?
        >= MAX_PER_HOUR
    {
        return Ok(Err(LinkRefusal::TooManyRequests));
    }
    let mut tx = portal.db.begin().await?;
    let raw = email_tokens::create(
        &mut tx,
        user_id,
        Purpose::Reauth,
        &email,
        &*portal.clock,
        &*portal.random,
    )
    .await?;
    let message = emails::compose(
        Kind::ReauthLink,
        crate::i18n::Locale::En,
        &email,
        user_id,
        &account.display_name,
        Some(&format!("{}/reauth/{raw}", portal.public_url)),
    );
    crate::mail::enqueue(&mut tx, &message, &*portal.clock, &*portal.random).await?;
    let event = AuditEvent::new(Actor::User(user_id), "reauth.link_sent").target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(email))
}

/// Uses up a re-authentication link for the signed-in `user_id` (the POST of its page). A link
/// of another account is refused and stays unused.
pub async fn confirm_link(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
    raw: &str,
) -> Result<Result<(), super::email_tokens::TokenError>, AccountError> {
    use super::email_tokens::{self, Purpose, TokenError};
    let mut tx = portal.db.begin().await?;
    match email_tokens::consume(&mut tx, raw, Purpose::Reauth, &*portal.clock).await? {
        Ok((owner, _)) if owner == user_id => {}
        Ok(_) => {
            tx.rollback().await?;
            return Ok(Err(TokenError::Invalid));
        }
        Err(e) => {
            tx.rollback().await?;
            return Ok(Err(e));
        }
    }
    let event = AuditEvent::new(Actor::User(user_id), "reauth.link_used").target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Ok(()))
}
