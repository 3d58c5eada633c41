//! Homeserver names (`name` in name.<hosting domain>): a DNS label of 3 to 63 characters, not a
//! reserved word, reserved at order time and never given to anyone else afterwards, even when
//! the homeserver is gone (so nobody can take over a name others still trust).

use crate::{db::Tx, on_tx};
use uuid::Uuid;

pub const MIN_LENGTH: usize = 3;
pub const MAX_LENGTH: usize = 63;

/// Names that belong to the service itself or that people would mistake for it.
pub const RESERVED: &[&str] = &[
    "abuse",
    "account",
    "accounts",
    "admin",
    "administrator",
    "api",
    "app",
    "apps",
    "auth",
    "billing",
    "blog",
    "cdn",
    "chat",
    "client",
    "dashboard",
    "dev",
    "dns",
    "docs",
    "element",
    "email",
    "ftp",
    "help",
    "hostmaster",
    "identity",
    "imap",
    "info",
    "internal",
    "login",
    "mail",
    "matrix",
    "media",
    "metrics",
    "mx",
    "noc",
    "noreply",
    "ns1",
    "ns2",
    "portal",
    "postmaster",
    "root",
    "security",
    "server",
    "smtp",
    "staff",
    "staging",
    "static",
    "status",
    "support",
    "synapse",
    "sysadmin",
    "test",
    "webmaster",
    "www",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    TooShort,
    TooLong,
    /// Only a–z, 0–9 and -.
    Characters,
    /// A label cannot start or end with -.
    Hyphen,
    Reserved,
    Taken,
}

impl NameProblem {
    pub fn message_key(self) -> &'static str {
        match self {
            NameProblem::TooShort => "server_name.too_short",
            NameProblem::TooLong => "server_name.too_long",
            NameProblem::Characters => "server_name.characters",
            NameProblem::Hyphen => "server_name.hyphen",
            NameProblem::Reserved => "server_name.reserved",
            NameProblem::Taken => "server_name.taken",
        }
    }
}

/// The name in its normal form (trimmed, lower case), or why it cannot be used.
pub fn validate(name: &str) -> Result<String, NameProblem> {
    let name = name.trim().to_ascii_lowercase();
    if name.len() < MIN_LENGTH {
        return Err(NameProblem::TooShort);
    }
    if name.len() > MAX_LENGTH {
        return Err(NameProblem::TooLong);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(NameProblem::Characters);
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameProblem::Hyphen);
    }
    // "xn--" labels are punycode: they would display as another name.
    if RESERVED.contains(&name.as_str()) || name.starts_with("xn--") {
        return Err(NameProblem::Reserved);
    }
    Ok(name)
}

/// Reserves a validated name for the customer, in the caller's transaction (the order's).
/// `Err(Taken)` when anyone ever had it.
pub async fn reserve(
    tx: &mut Tx,
    name: &str,
    customer_id: Uuid,
    now: i64,
) -> Result<Result<(), NameProblem>, sqlx::Error> {
    let inserted = on_tx!(tx, conn => sqlx::query(
        "INSERT INTO server_names (name, customer_id, reserved_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(customer_id)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(if inserted == 1 {
        Ok(())
    } else {
        Err(NameProblem::Taken)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_not_reserved() {
        assert_eq!(validate("  Acme-Chat "), Ok("acme-chat".into()));
        assert_eq!(validate("ab"), Err(NameProblem::TooShort));
        assert_eq!(validate(&"a".repeat(64)), Err(NameProblem::TooLong));
        assert_eq!(validate(&"a".repeat(63)), Ok("a".repeat(63)));
        assert_eq!(validate("acme_chat"), Err(NameProblem::Characters));
        assert_eq!(validate("acme.chat"), Err(NameProblem::Characters));
        assert_eq!(validate("ächat"), Err(NameProblem::Characters));
        assert_eq!(validate("-acme"), Err(NameProblem::Hyphen));
        assert_eq!(validate("acme-"), Err(NameProblem::Hyphen));
        assert_eq!(validate("Admin"), Err(NameProblem::Reserved));
        assert_eq!(validate("xn--80ak6aa92e"), Err(NameProblem::Reserved));
        for problem in [
            NameProblem::TooShort,
            NameProblem::TooLong,
            NameProblem::Characters,
            NameProblem::Hyphen,
            NameProblem::Reserved,
            NameProblem::Taken,
        ] {
            let key = problem.message_key();
            assert_ne!(crate::i18n::t(crate::i18n::Locale::En, key), key);
        }
    }
}
