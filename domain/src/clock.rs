//! Time comes from an injected clock so that expiries, retention and dunning can be tested by
//! moving time instead of sleeping.

use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    /// Milliseconds since the Unix epoch: the form in which times are stored.
    fn now_ms(&self) -> i64 {
        to_millis(self.now())
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Times are stored as UTC milliseconds since the epoch on both backends, so comparisons and
/// ordering behave the same in SQLite and PostgreSQL.
pub fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// "3 December 2026": a day as pages and emails write it (UTC).
pub fn long_date(ms: i64) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:long] [year]");
    from_millis(ms).format(&format).unwrap_or_default()
}

/// "3 December 2026, 14:05 UTC": a moment as pages write it.
pub fn long_date_time(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
    );
    from_millis(ms).format(&format).unwrap_or_default()
}

pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00 UTC));
        clock.advance(Duration::days(30));
        assert_eq!(clock.now(), datetime!(2026-01-31 00:00 UTC));
    }

    #[test]
    fn millis_round_trip() {
        let t = datetime!(2026-11-22 05:51:32.123 UTC);
        assert_eq!(from_millis(to_millis(t)), t);
        assert_eq!(to_millis(datetime!(1970-01-01 00:00:01 UTC)), 1000);
    }
}
