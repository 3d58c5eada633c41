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
    if right {
        throttle::clear_failures(&portal.db, user_id).await?;
        return Ok(Ok(()));
    }
    throttle::record_failure(&portal.db, user_id, &*portal.clock).await?;
    let mut tx = portal.db.begin().await?;
    let event = AuditEvent::new(Actor::User(user_id), "reauth.failed").target("user", user_id);
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    tx.commit().await?;
    Ok(Err(ReauthRefusal::Wrong))
}
