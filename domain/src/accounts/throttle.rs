//! Limits on guessing passwords: per client IP in memory (each replica counts its own, which is
//! enough to slow a single source down), and per account in the database (shared by all
//! replicas), where each failure past the fifth doubles the wait before the next attempt, up to
//! 15 minutes. There is no hard lockout: a stranger can slow an account down but never lock its
//! owner out for good.

use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    clock::Clock,
    db::{Db, Tx},
    on_db, on_tx,
    random::Random,
};
use governor::{
    clock::{Clock as GovernorClock, DefaultClock},
    middleware::NoOpMiddleware,
    nanos::Nanos,
    state::{
        keyed::{DashMapStateStore, ShrinkableKeyedStateStore},
        StateStore,
    },
    Quota, RateLimiter,
};
use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};
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

/// Counts a failed attempt, in the caller's transaction (which records the audit entry).
pub async fn record_failure(
    tx: &mut Tx,
    user_id: Uuid,
    clock: &dyn Clock,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE users SET sign_in_failures = sign_in_failures + 1, last_sign_in_failure_at = $2 WHERE id = $1",
    )
    .bind(user_id)
    .bind(clock.now_ms())
    .execute(conn)
    .await
    .map(|_| ()))
}

/// A successful sign-in forgets the failures, in the caller's transaction.
pub async fn clear_failures(tx: &mut Tx, user_id: Uuid) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE users SET sign_in_failures = 0, last_sign_in_failure_at = NULL WHERE id = $1",
    )
    .bind(user_id)
    .execute(conn)
    .await
    .map(|_| ()))
}

/// At most this many "someone tried to sign up with your address" emails go to an address per
/// day, however often sign-up is tried with it: each is a message its owner did not ask for.
pub const ADDRESS_TAKEN_NOTICES_PER_DAY: i64 = 3;
/// The audit action recorded with each of those emails (and counted).
pub const ADDRESS_TAKEN_NOTICE: &str = "sign_up.address_taken_notified";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether the owner of the address, account `user_id`, gets another address-taken email now:
/// counts those of the last 24 hours (by the injected clock) in the audit log, so every replica
/// sees the same count, and when one more may go, records it, in the caller's transaction
/// (which sends the email). The account's row is written first: concurrent sign-ups with the
/// same address take their turn instead of all reading the same count.
pub async fn address_taken_notice(
    tx: &mut Tx,
    meta: &RequestMeta,
    user_id: Uuid,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<bool, sqlx::Error> {
    on_tx!(&mut *tx, conn => sqlx::query(
        "UPDATE users SET email_normalized = email_normalized WHERE id = $1",
    )
    .bind(user_id)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let since = clock.now_ms() - DAY_MS;
    let sent: i64 = on_tx!(&mut *tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND target_kind = 'user' \
         AND target_id = $2 AND occurred_at > $3",
    )
    .bind(ADDRESS_TAKEN_NOTICE)
    .bind(user_id.to_string())
    .bind(since)
    .fetch_one(conn)
    .await)?;
    if sent >= ADDRESS_TAKEN_NOTICES_PER_DAY {
        return Ok(false);
    }
    let event = AuditEvent::new(Actor::Anonymous, ADDRESS_TAKEN_NOTICE).target("user", user_id);
    audit::record(tx, &event, meta, clock, random).await?;
    Ok(true)
}

/// What the per-IP limit counts by: an IPv4 address, or an IPv6 /64 (one subscriber's network:
/// its owner can use any of its 2^64 addresses, so counting them one by one would give each
/// network unlimited tries). IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    V4(std::net::Ipv4Addr),
    /// The upper 64 bits of the address.
    V6Net(u64),
    /// Addresses seen while the table was full share this one budget.
    Overflow,
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(v4),
                None => IpKey::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// How many keys a limiter tracks at most (tens of bytes each).
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Idle keys are forgotten every this many checks.
const PRUNE_EVERY: u64 = 1024;

/// governor's DashMap store with a cap: once it holds `max_keys` keys, a key it does not know
/// is counted under [`IpKey::Overflow`] instead of getting a budget of its own, so a flood of
/// fresh addresses neither grows memory nor escapes the limit. (Concurrent first checks may
/// overshoot the cap by the number of threads.)
struct BoundedStore {
    map: DashMapStateStore<IpKey>,
    max_keys: usize,
}

impl StateStore for BoundedStore {
    type Key = IpKey;

    fn measure_and_replace<T, F, E>(&self, key: &IpKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // One place is kept for the overflow key.
        if self.map.len() + 1 >= self.max_keys && !self.map.contains_key(key) {
            return self.map.measure_and_replace(&IpKey::Overflow, f);
        }
        self.map.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<IpKey> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&self.map, drop_below)
    }

    fn shrink_to_fit(&self) {
        self.map.shrink_to_fit()
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Attempts per client IP (IPv6: per /64): a burst of `per_minute`, refilled evenly over a
/// minute. Keys idle long enough to have their whole burst back (at most two minutes) are
/// forgotten every [`PRUNE_EVERY`] checks, and the table never holds more than `max_keys` keys.
pub struct IpLimiter<C: GovernorClock = DefaultClock> {
    limiter: RateLimiter<IpKey, BoundedStore, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    checks: AtomicU64,
    /// The table's size after the last shrink.
    shrunk_at: AtomicUsize,
}

impl IpLimiter<DefaultClock> {
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: GovernorClock + Clone> IpLimiter<C> {
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        Self::with_capacity(per_minute, DEFAULT_MAX_KEYS, clock)
    }

    pub fn with_capacity(per_minute: u32, max_keys: usize, clock: C) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        let store = BoundedStore {
            map: DashMapStateStore::default(),
            max_keys: max_keys.max(2),
        };
        Self {
            limiter: RateLimiter::new(quota, store, clock.clone()),
            clock,
            checks: AtomicU64::new(0),
            shrunk_at: AtomicUsize::new(0),
        }
    }

    /// Counts one attempt from `ip`; `Err(wait)` when it (its /64) is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.forget_idle();
        }
        self.limiter
            .check_key(&IpKey::from(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the keys whose budget is full again, and gives memory back once the table has
    /// shrunk to half its size.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        let len = self.limiter.len();
        let before = self.shrunk_at.load(Ordering::Relaxed);
        if len * 2 <= before {
            self.limiter.shrink_to_fit();
        }
        if len * 2 <= before || len > before {
            self.shrunk_at.store(len, Ordering::Relaxed);
        }
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let clock = FakeRelativeClock::default();
        let limiter = IpLimiter::with_clock(3, clock.clone());
        for host in [
            "2001:db8:1:2::1",
            "2001:db8:1:2::2",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
        ] {
            assert!(limiter.check(ip(host)).is_ok(), "{host}");
        }
        assert!(
            limiter.check(ip("2001:db8:1:2:1234::9")).is_err(),
            "another address of the same /64 shares its budget"
        );
        assert!(
            limiter.check(ip("2001:db8:1:3::1")).is_ok(),
            "the next /64 has its own"
        );
        assert!(
            limiter.check(ip("2001:db8:1:1::1")).is_ok(),
            "the previous one too"
        );

        for _ in 0..3 {
            assert!(limiter.check(ip("192.0.2.7")).is_ok());
        }
        assert!(
            limiter.check(ip("::ffff:192.0.2.7")).is_err(),
            "mapped: the same IPv4"
        );
        assert!(
            limiter.check(ip("192.0.2.8")).is_ok(),
            "IPv4 counts by address"
        );
        assert_eq!(
            IpKey::from(ip("::ffff:192.0.2.7")),
            IpKey::from(ip("192.0.2.7"))
        );
    }

    #[test]
    fn a_million_networks_leave_the_table_bounded() {
        let clock = FakeRelativeClock::default();
        let cap = 1_000;
        let limiter = IpLimiter::with_capacity(3, cap, clock.clone());
        let base = u128::from("2001:db8::".parse::<std::net::Ipv6Addr>().unwrap());
        for i in 0..1_000_000u128 {
            // A distinct /64 each time, any host part.
            let address = std::net::Ipv6Addr::from(base | (i << 64) | (i * 7919));
            let _ = limiter.check(IpAddr::V6(address));
            assert!(limiter.len() <= cap, "{} keys after {i}", limiter.len());
        }
        assert!(limiter.len() <= cap);
        // The networks seen once the table was full share one budget: the flood is limited.
        let late = |i: u128| IpAddr::V6(std::net::Ipv6Addr::from(base | ((2_000_000 + i) << 64)));
        assert!((0..3).any(|i| limiter.check(late(i)).is_err()));
        // Addresses known before it filled keep their own budget.
        let first = IpAddr::V6(std::net::Ipv6Addr::from(base | (1u128 << 64)));
        assert!(limiter.check(first).is_ok());

        // Once idle for two minutes, everything is forgotten and the memory given back.
        clock.advance(Duration::from_secs(121));
        limiter.forget_idle();
        assert!(limiter.is_empty(), "{} keys left", limiter.len());
        assert!(limiter.check(late(0)).is_ok(), "a fresh start");
    }

    #[test]
    fn idle_keys_are_forgotten_while_checking() {
        let clock = FakeRelativeClock::default();
        let limiter = IpLimiter::with_clock(3, clock.clone());
        for i in 0..500u32 {
            let _ = limiter.check(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert_eq!(limiter.len(), 500);
        clock.advance(Duration::from_secs(61));
        for _ in 0..PRUNE_EVERY {
            let _ = limiter.check(ip("192.0.2.1"));
        }
        assert!(limiter.len() <= 2, "{} keys", limiter.len());
    }
}
