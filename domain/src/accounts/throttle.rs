//! Limits on guessing passwords: per client IP in memory (each replica counts its own, which is
//! enough to slow a single source down), and per account in the database (shared by all
//! replicas), where each failure past the fifth doubles the wait before the next attempt, up to
//! 15 minutes. There is no hard lockout: a stranger can slow an account down but never lock its
//! owner out for good.

use crate::{clock::Clock, db::Db, on_db};
use governor::{
    clock::{Clock as GovernorClock, DefaultClock},
    middleware::NoOpMiddleware,
    state::keyed::DefaultKeyedStateStore,
    Quota, RateLimiter,
};
use std::{net::IpAddr, num::NonZeroU32, time::Duration};
use uuid::Uuid;

pub const FREE_FAILURES: i32 = 5;
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// The wait required after `failures` consecutive failed sign-ins.
pub fn delay_after(failures: i32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exponent = (failures - FREE_FAILURES).min(20) as u32;
    Duration::from_secs(1u64 << exponent).min(MAX_DELAY)
}

/// Whether the account may try now; `Err(wait)` says how long until it may.
pub async fn account_may_try(
    db: &Db,
    user_id: Uuid,
    clock: &dyn Clock,
) -> Result<Result<(), Duration>, sqlx::Error> {
    let row: Option<(i32, Option<i64>)> = on_db!(db, pool => sqlx::query_as(
        "SELECT sign_in_failures, last_sign_in_failure_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?;
    let Some((failures, Some(last))) = row else {
        return Ok(Ok(()));
    };
    let allowed_at = last + delay_after(failures).as_millis() as i64;
    let now = clock.now_ms();
    Ok(if now >= allowed_at {
        Ok(())
    } else {
        Err(Duration::from_millis((allowed_at - now) as u64))
    })
}

pub async fn record_failure(db: &Db, user_id: Uuid, clock: &dyn Clock) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query(
        "UPDATE users SET sign_in_failures = sign_in_failures + 1, last_sign_in_failure_at = $2 WHERE id = $1",
    )
    .bind(user_id)
    .bind(clock.now_ms())
    .execute(pool)
    .await
    .map(|_| ()))
}

/// A successful sign-in forgets the failures.
pub async fn clear_failures(db: &Db, user_id: Uuid) -> Result<(), sqlx::Error> {
    on_db!(db, pool => sqlx::query(
        "UPDATE users SET sign_in_failures = 0, last_sign_in_failure_at = NULL WHERE id = $1",
    )
    .bind(user_id)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// Attempts per client IP: a burst of `per_minute`, refilled evenly over a minute.
pub struct IpLimiter<C: GovernorClock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
}

impl IpLimiter<DefaultClock> {
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: GovernorClock + Clone> IpLimiter<C> {
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Counts one attempt from `ip`; `Err(wait)` when it is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets idle addresses; call now and then so the table does not grow without bound.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn waits_grow_after_five_failures_and_are_capped() {
        assert_eq!(delay_after(0), Duration::ZERO);
        assert_eq!(delay_after(4), Duration::ZERO);
        assert_eq!(delay_after(5), Duration::from_secs(1));
        assert_eq!(delay_after(6), Duration::from_secs(2));
        assert_eq!(delay_after(10), Duration::from_secs(32));
        assert_eq!(delay_after(15), MAX_DELAY);
        assert_eq!(delay_after(1000), MAX_DELAY, "capped, never a lockout");
    }

    #[test]
    fn each_ip_has_its_own_budget() {
        let clock = FakeRelativeClock::default();
        let limiter = IpLimiter::with_clock(3, clock.clone());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limiter.check(b).is_ok(), "another address is not affected");
        clock.advance(Duration::from_secs(20));
        assert!(limiter.check(a).is_ok(), "refilled over time");
    }
}
