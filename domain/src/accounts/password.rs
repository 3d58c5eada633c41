//! Passwords (P1): bcrypt over base64(HMAC-SHA384(password, pepper)).
//!
//! - The HMAC with a server-side pepper means a stolen database alone cannot be attacked, and
//!   its 64-character base64 output stays under bcrypt's 72-byte limit, so long passwords are
//!   not silently truncated.
//! - The scheme version is stored beside each hash so that cost and pepper can change:
//!   [`Verification::needs_rehash`] tells the caller to store a new hash after a sign-in.
//! - Hashing runs on blocking threads, at most one less than the cores at a time, so a burst of
//!   sign-ins cannot starve the async workers.
//! - New passwords: at least 12 characters, any Unicode, no composition rules; refused when
//!   zxcvbn (which ships a list of 30,000 common passwords, and knows keyboard patterns,
//!   repeats and sequences) estimates fewer than a million guesses.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha384;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The scheme this build writes: 1 = bcrypt(base64(HMAC-SHA384(password, pepper))).
pub const CURRENT_SCHEME: i32 = 1;
pub const MIN_COST: u32 = 12;
pub const MIN_LENGTH: usize = 12;
/// Bytes, not characters: bounds the work an attacker can ask for, far above any real password.
pub const MAX_BYTES: usize = 4096;
/// Fewer estimated guesses than this and a new password is refused.
pub const MIN_GUESSES: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassword {
    pub scheme: i32,
    /// The bcrypt string, `$2b$12$…`.
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The password matched but was stored under an older scheme or a lower cost.
    pub needs_rehash: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the stored password uses unknown scheme {0}")]
    UnknownScheme(i32),
}

/// Why a new password is refused. Messages are keys of the translation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    TooCommon,
}

impl PasswordProblem {
    pub fn message_key(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "password.too_short",
            PasswordProblem::TooLong => "password.too_long",
            PasswordProblem::TooCommon => "password.too_common",
        }
    }
}

/// How hard a password is to guess, 0 (trivial) to 4 (very hard), for the strength hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strength(pub u8);

/// Checks a password someone wants to set. `context` holds words the password should not be
/// built from (the user's email, name).
pub fn check_new_password(password: &str, context: &[&str]) -> Result<Strength, PasswordProblem> {
    if password.len() > MAX_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordProblem::TooShort);
    }
    // zxcvbn's matching grows with length; what it finds in the first 100 characters is the
    // part that matters for guessability.
    let head: String = password.chars().take(100).collect();
    let estimate = zxcvbn::zxcvbn(&head, context);
    if estimate.guesses() < MIN_GUESSES {
        return Err(PasswordProblem::TooCommon);
    }
    Ok(Strength(u8::from(estimate.score())))
}

#[derive(Clone)]
pub struct PasswordHasher {
    pepper: Arc<[u8]>,
    cost: u32,
    permits: Arc<Semaphore>,
    /// A real hash at the current cost, verified against when the account does not exist, so
    /// unknown emails cost the same time as wrong passwords.
    dummy: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

/// Hashing threads: one less than the cores, at least one.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .saturating_sub(1)
        .max(1)
}

impl PasswordHasher {
    pub fn new(pepper: &[u8], cost: u32, concurrency: usize) -> Self {
        Self {
            pepper: pepper.into(),
            cost: cost.max(MIN_COST),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::default(),
        }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    fn prehash(pepper: &[u8], password: &str) -> String {
        let mut mac =
            <Hmac<Sha384> as Mac>::new_from_slice(pepper).expect("HMAC takes a key of any length");
        mac.update(password.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<StoredPassword, PasswordError> {
        let prehash = Self::prehash(&self.pepper, password);
        let cost = self.cost;
        let hash = self
            .blocking(move || bcrypt::hash(prehash, cost))
            .await?
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(StoredPassword {
            scheme: CURRENT_SCHEME,
            hash,
        })
    }

    pub async fn verify(
        &self,
        password: &str,
        stored: &StoredPassword,
    ) -> Result<Verification, PasswordError> {
        if stored.scheme != CURRENT_SCHEME {
            return Err(PasswordError::UnknownScheme(stored.scheme));
        }
        let prehash = Self::prehash(&self.pepper, password);
        let hash = stored.hash.clone();
        let matches = self
            .blocking(move || bcrypt::verify(prehash, &hash).unwrap_or(false))
            .await?;
        let stored_cost = stored
            .hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(0);
        Ok(Verification {
            matches,
            needs_rehash: matches && stored_cost < self.cost,
        })
    }

    /// The work of one verification, for an account that does not exist.
    pub async fn verify_nobody(&self, password: &str) -> Result<(), PasswordError> {
        let this = self.clone();
        let dummy = self
            .dummy
            .get_or_try_init(|| async move {
                this.hash("no account has this password")
                    .await
                    .map(|s| s.hash)
            })
            .await?
            .clone();
        self.verify(
            password,
            &StoredPassword {
                scheme: CURRENT_SCHEME,
                hash: dummy,
            },
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(pepper: &[u8]) -> PasswordHasher {
        PasswordHasher::new(pepper, MIN_COST, 1)
    }

    #[tokio::test]
    async fn hashes_are_bcrypt_cost_12_salted_and_verify() {
        let h = hasher(b"pepper one");
        let a = h.hash("correct horse battery staple").await.unwrap();
        let b = h.hash("correct horse battery staple").await.unwrap();
        assert!(a.hash.starts_with("$2b$12$"), "{}", a.hash);
        assert_eq!(a.scheme, CURRENT_SCHEME);
        assert_ne!(a.hash, b.hash, "a salt per hash");
        let ok = h.verify("correct horse battery staple", &a).await.unwrap();
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        assert!(
            !h.verify("correct horse battery stapl", &a)
                .await
                .unwrap()
                .matches
        );
    }

    #[tokio::test]
    async fn long_passwords_are_not_truncated_at_72_bytes() {
        let h = hasher(b"pepper");
        let long = "x".repeat(100);
        let stored = h.hash(&long).await.unwrap();
        assert!(h.verify(&long, &stored).await.unwrap().matches);
        assert!(
            !h.verify(&long[..72], &stored).await.unwrap().matches,
            "the 72-byte prefix is not the password"
        );
        let unicode = "пароль-из-кириллицы-и-🔑-эмодзи";
        let stored = h.hash(unicode).await.unwrap();
        assert!(h.verify(unicode, &stored).await.unwrap().matches);
    }

    #[tokio::test]
    async fn another_pepper_refuses_every_password() {
        let stored = hasher(b"the real pepper")
            .hash("a fine long passphrase")
            .await
            .unwrap();
        assert!(
            !hasher(b"another pepper")
                .verify("a fine long passphrase", &stored)
                .await
                .unwrap()
                .matches
        );
    }

    #[tokio::test]
    async fn older_costs_ask_for_a_rehash_and_unknown_schemes_are_errors() {
        let stored = StoredPassword {
            scheme: CURRENT_SCHEME,
            hash: bcrypt::hash(PasswordHasher::prehash(b"p", "a fine long passphrase"), 4).unwrap(),
        };
        let v = hasher(b"p")
            .verify("a fine long passphrase", &stored)
            .await
            .unwrap();
        assert_eq!(
            v,
            Verification {
                matches: true,
                needs_rehash: true
            }
        );
        let odd = StoredPassword {
            scheme: 99,
            hash: stored.hash,
        };
        assert!(matches!(
            hasher(b"p").verify("x", &odd).await,
            Err(PasswordError::UnknownScheme(99))
        ));
        hasher(b"p").verify_nobody("anything at all").await.unwrap();
    }

    #[test]
    fn every_problem_has_a_message() {
        for p in [
            PasswordProblem::TooShort,
            PasswordProblem::TooLong,
            PasswordProblem::TooCommon,
        ] {
            let text = crate::i18n::t(crate::i18n::Locale::En, p.message_key());
            assert_ne!(text, p.message_key(), "missing message for {p:?}");
        }
    }

    #[test]
    fn new_password_rules() {
        use PasswordProblem::*;
        assert_eq!(check_new_password("short pass", &[]), Err(TooShort));
        assert_eq!(
            check_new_password("ёжикёжикёж", &[]),
            Err(TooShort),
            "characters, not bytes"
        );
        assert_eq!(
            check_new_password(&"a".repeat(MAX_BYTES + 1), &[]),
            Err(TooLong)
        );
        for common in [
            "passwordpassword",
            "123456789012",
            "qwertyuiopasdf",
            "1q2w3e4r5t6y",
            "aaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(check_new_password(common, &[]), Err(TooCommon), "{common}");
        }
        assert_eq!(
            check_new_password("alice@example.com1", &["alice@example.com"]),
            Err(TooCommon),
            "built from the user's own email"
        );
        let strong = check_new_password("plum tractor seventeen orbit", &[]).unwrap();
        assert!(strong.0 >= 3, "{strong:?}");
        assert!(
            check_new_password("Übergrößenträger-Straße 9", &[]).is_ok(),
            "any Unicode"
        );
        let sentence = "the ferry to Vestmannaeyjar leaves at seven, unless the fog over Heimaey rolls in before the harbour master wakes up";
        assert!(sentence.len() > 100);
        assert!(
            check_new_password(sentence, &[]).is_ok(),
            "long passphrases are welcome"
        );
    }
}
