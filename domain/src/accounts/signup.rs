//! Sign-up with email and password: validation of every field (P4 age, P5 minimal data), and
//! the creation of the user, their customer and the owner membership in one transaction.

use super::{
    emails::{self, Kind},
    password::{check_new_password, PasswordError, PasswordHasher},
    profile, throttle,
};
use crate::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    clock::Clock,
    db::Db,
    i18n::Locale,
    mail, on_db, on_tx,
    random::{new_id, Random},
    Portal,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of the terms of service and privacy policy a new account accepts.
pub const TERMS_VERSION: &str = "2026-11-01";
pub const MAX_EMAIL_LENGTH: usize = 254;
pub const MAX_NAME_LENGTH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Email,
    Password,
    DisplayName,
    Age,
    Terms,
}

/// A problem with one field; the message is a key of the translation layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: Field,
    pub message_key: String,
}

fn problem(field: Field, key: &str) -> FieldError {
    FieldError {
        field,
        message_key: key.to_string(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct SignUpForm {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub age_confirmed: bool,
    pub terms_accepted: bool,
}

/// A sign-up that passed validation.
#[derive(Debug, Clone)]
pub struct ValidSignUp {
    pub email: String,
    pub email_normalized: String,
    pub display_name: String,
    password: String,
}

/// Addresses are compared without regard to case or surrounding spaces.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether `email` (trimmed) looks like an address we can send to.
pub fn email_is_valid(email: &str) -> bool {
    let email = email.trim();
    !email.is_empty()
        && email.len() <= MAX_EMAIL_LENGTH
        && email_address::EmailAddress::is_valid(email)
}

pub fn validate(form: &SignUpForm) -> Result<ValidSignUp, Vec<FieldError>> {
    let mut errors = Vec::new();
    let email = form.email.trim();
    if email.is_empty() {
        errors.push(problem(Field::Email, "signup.email_required"));
    } else if !email_is_valid(email) {
        errors.push(problem(Field::Email, "signup.email_invalid"));
    }
    let display_name = form.display_name.trim();
    if display_name.is_empty() {
        errors.push(problem(Field::DisplayName, "signup.name_required"));
    } else if display_name.chars().count() > MAX_NAME_LENGTH {
        errors.push(problem(Field::DisplayName, "signup.name_too_long"));
    } else if display_name.chars().any(char::is_control) {
        errors.push(problem(Field::DisplayName, "signup.name_invalid"));
    }
    if let Err(p) = check_new_password(&form.password, &[email, display_name]) {
        errors.push(problem(Field::Password, p.message_key()));
    }
    if !form.age_confirmed {
        errors.push(problem(Field::Age, "signup.age_required"));
    }
    if !form.terms_accepted {
        errors.push(problem(Field::Terms, "signup.terms_required"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidSignUp {
        email: email.to_string(),
        email_normalized: normalize_email(email),
        display_name: display_name.to_string(),
        password: form.password.clone(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpOutcome {
    Created {
        user_id: Uuid,
        customer_id: Uuid,
    },
    /// The address already has an account. Callers answer exactly as for a new account (and
    /// tell the address's owner by email), so sign-up does not reveal who has an account.
    EmailTaken {
        user_id: Uuid,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A two-factor secret opens with no key of the ring (a key was removed too early).
    #[error("a two-factor secret cannot be opened: {0}")]
    SealedSecret(String),
    #[error("two-factor authentication is already on")]
    TwoFactorAlreadyOn,
}

pub async fn user_id_by_email(
    db: &Db,
    email_normalized: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_scalar("SELECT id FROM users WHERE email_normalized = $1")
        .bind(email_normalized)
        .fetch_optional(pool)
        .await)
}

/// A new customer, in the caller's transaction (sign-up, by password or through a provider).
pub(super) async fn insert_customer(
    tx: &mut crate::db::Tx,
    customer_id: Uuid,
    name: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("INSERT INTO customers (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(customer_id)
        .bind(name)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))
}

/// Makes `user_id` the owner of `customer_id`, in the caller's transaction.
pub(super) async fn add_owner(
    tx: &mut crate::db::Tx,
    customer_id: Uuid,
    user_id: Uuid,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO memberships (customer_id, user_id, role, created_at) VALUES ($1, $2, $4, $3)",
    )
    .bind(customer_id)
    .bind(user_id)
    .bind(now)
    .bind(super::profile::MemberRole::Owner)
    .execute(conn)
    .await
    .map(|_| ()))
}

/// Creates the user, a customer named after them and their owner membership, with an audit
/// entry and the verification email, in one transaction. The password is hashed first in every case, so that an address
/// that is taken answers in the same time as a new one.
#[allow(clippy::too_many_arguments)]
pub async fn create_account(
    db: &Db,
    hasher: &PasswordHasher,
    public_url: &str,
    clock: &dyn Clock,
    random: &dyn Random,
    meta: &RequestMeta,
    signup: &ValidSignUp,
) -> Result<SignUpOutcome, AccountError> {
    let stored = hasher.hash(&signup.password).await?;
    if let Some(user_id) = user_id_by_email(db, &signup.email_normalized).await? {
        return Ok(SignUpOutcome::EmailTaken { user_id });
    }
    let now = clock.now_ms();
    let user_id = new_id(now, random);
    let customer_id = new_id(now, random);
    let mut tx = db.begin().await?;
    insert_customer(&mut tx, customer_id, &signup.display_name, now).await?;
    let inserted = on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO users (id, email, email_normalized, display_name, password_hash, password_scheme, \
         age_confirmed_at, terms_version, terms_accepted_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $7) ON CONFLICT (email_normalized) DO NOTHING",
    )
    .bind(user_id)
    .bind(&signup.email)
    .bind(&signup.email_normalized)
    .bind(&signup.display_name)
    .bind(&stored.hash)
    .bind(stored.scheme)
    .bind(now)
    .bind(TERMS_VERSION)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if inserted == 0 {
        // Someone signed up with the same address a moment ago.
        tx.rollback().await?;
        let user_id = user_id_by_email(db, &signup.email_normalized)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok(SignUpOutcome::EmailTaken { user_id });
    }
    add_owner(&mut tx, customer_id, user_id, now).await?;
    let event = AuditEvent::new(Actor::User(user_id), "account.created")
        .customer(customer_id)
        .target("user", user_id)
        .details(serde_json::json!({ "method": "password", "terms_version": TERMS_VERSION }));
    audit::record(&mut tx, &event, meta, clock, random).await?;
    super::verification::send(
        &mut tx,
        user_id,
        &signup.email,
        &signup.display_name,
        public_url,
        clock,
        random,
    )
    .await?;
    tx.commit().await?;
    Ok(SignUpOutcome::Created {
        user_id,
        customer_id,
    })
}

/// Tells the owner of an address that someone tried to sign up with it (the sign-up is answered
/// as for a new account, so the form reveals nothing). At most a few such emails a day per
/// address: see [`throttle::address_taken_notice`], which records each one sent.
pub async fn notify_address_taken(
    portal: &Portal,
    meta: &RequestMeta,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    let Some(account) = profile::load(&portal.db, user_id).await? else {
        return Ok(());
    };
    let Some(to) = account.email.as_deref() else {
        return Ok(());
    };
    let link = format!("{}/forgot-password", portal.public_url);
    let email = emails::compose(
        Kind::AddressTaken,
        Locale::En,
        to,
        user_id,
        &account.display_name,
        Some(&link),
    );
    let mut tx = portal.db.begin().await?;
    let (clock, random) = (&*portal.clock, &*portal.random);
    if !throttle::address_taken_notice(&mut tx, meta, user_id, clock, random).await? {
        // Enough of these today; the sign-up is answered the same either way.
        return tx.rollback().await;
    }
    mail::enqueue(&mut tx, &email, clock, random).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> SignUpForm {
        SignUpForm {
            email: "  Alice@Example.COM ".into(),
            password: "plum tractor seventeen orbit".into(),
            display_name: " Alice Liddell ".into(),
            age_confirmed: true,
            terms_accepted: true,
        }
    }

    fn fields(form: &SignUpForm) -> Vec<(Field, String)> {
        validate(form)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.message_key))
            .collect()
    }

    #[test]
    fn a_good_form_is_trimmed_and_normalised() {
        let valid = validate(&form()).unwrap();
        assert_eq!(valid.email, "Alice@Example.COM");
        assert_eq!(valid.email_normalized, "alice@example.com");
        assert_eq!(valid.display_name, "Alice Liddell");
    }

    #[test]
    fn every_field_is_checked_with_its_own_message() {
        let empty = SignUpForm::default();
        let problems = fields(&empty);
        for f in [
            Field::Email,
            Field::Password,
            Field::DisplayName,
            Field::Age,
            Field::Terms,
        ] {
            assert!(
                problems.iter().any(|(field, _)| *field == f),
                "{f:?} in {problems:?}"
            );
        }
        let mut bad = form();
        bad.email = "not an email".into();
        bad.display_name = "x".repeat(101);
        let problems = fields(&bad);
        assert!(problems.contains(&(Field::Email, "signup.email_invalid".into())));
        assert!(problems.contains(&(Field::DisplayName, "signup.name_too_long".into())));
        let mut own_name = form();
        own_name.password = "Alice Liddell!!".into();
        assert_eq!(
            fields(&own_name),
            vec![(Field::Password, "password.too_common".to_string())],
            "a password made of the user's own name"
        );
        let mut minor = form();
        minor.age_confirmed = false;
        assert_eq!(
            fields(&minor),
            vec![(Field::Age, "signup.age_required".to_string())]
        );
    }

    #[test]
    fn every_message_exists() {
        for key in [
            "signup.email_required",
            "signup.email_invalid",
            "signup.name_required",
            "signup.name_too_long",
            "signup.name_invalid",
            "signup.age_required",
            "signup.terms_required",
        ] {
            assert_ne!(
                crate::i18n::t(crate::i18n::Locale::En, key),
                key,
                "missing message {key}"
            );
        }
    }
}
