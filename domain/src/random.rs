//! The random source is injected like the clock: production uses the OS generator, tests a
//! seeded one so that ids and tokens are reproducible.

use rand::{rngs::StdRng, RngCore, SeedableRng};
use std::sync::Mutex;
use uuid::Uuid;

pub trait Random: Send + Sync + 'static {
    fn fill(&self, dest: &mut [u8]);

    fn bytes<const N: usize>(&self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// A value in `0..bound` (bound > 0); slight modulo bias is irrelevant for jitter.
    fn below(&self, bound: u64) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b) % bound.max(1)
    }
}

/// The production source: rand's thread-local CSPRNG (ChaCha, seeded and periodically
/// reseeded from the operating system), so that a per-request nonce costs no system call.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        rand::thread_rng().fill_bytes(dest);
    }
}

/// Deterministic; for tests only.
pub struct SeededRandom(Mutex<StdRng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl Random for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(dest);
    }
}

/// A UUIDv7 from the injected clock and random source: time-ordered (good for indexes),
/// and not guessable from a neighbour, so safe to show in URLs.
pub fn new_id(now_ms: i64, random: &dyn Random) -> Uuid {
    let mut tail = [0u8; 10];
    random.fill(&mut tail);
    uuid::Builder::from_unix_timestamp_millis(now_ms.max(0) as u64, &tail).into_uuid()
}

/// A URL-safe token of `bytes` random bytes, hex encoded.
pub fn token(random: &dyn Random, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    random.fill(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_reproducible() {
        let a = SeededRandom::new(7);
        let b = SeededRandom::new(7);
        assert_eq!(a.bytes::<16>(), b.bytes::<16>());
        assert_ne!(a.bytes::<16>(), SeededRandom::new(8).bytes::<16>());
    }

    #[test]
    fn ids_are_v7_and_time_ordered() {
        let r = SeededRandom::new(1);
        let first = new_id(1_000, &r);
        let second = new_id(2_000, &r);
        assert_eq!(first.get_version_num(), 7);
        assert!(first < second);
        assert_ne!(new_id(1_000, &r), first, "same millisecond still differs");
    }

    #[test]
    fn tokens_have_requested_entropy() {
        let t = token(&OsRandom, 32);
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
