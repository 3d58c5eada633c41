//! Billing details (P7): name, company, address, country (ISO 3166), billing email and VAT
//! number, required before the first purchase. Every change, by the customer or by staff, is
//! appended to a history with who, when, and the old and new value of each field; the customer
//! can read it.

use super::{tax::VatRates, vat_number, vies::VatStatus};
use crate::{
    accounts::signup::email_is_valid,
    audit::{self, Actor, AuditEvent, RequestMeta},
    db::Db,
    on_db, on_tx,
    random::new_id,
    Portal,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct BillingDetails {
    pub name: String,
    pub company: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    pub billing_email: String,
    /// Normalised, with the country prefix; only for EU member states.
    pub vat_number: Option<String>,
}

/// The form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingForm {
    pub name: String,
    pub company: String,
    pub address_line1: String,
    pub address_line2: String,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub billing_email: String,
    pub vat_number: String,
}

impl BillingForm {
    /// Each field by name, as typed.
    pub fn fields(&self) -> [(&'static str, &str); 9] {
        [
            ("name", &self.name),
            ("company", &self.company),
            ("address_line1", &self.address_line1),
            ("address_line2", &self.address_line2),
            ("postal_code", &self.postal_code),
            ("city", &self.city),
            ("country", &self.country),
            ("billing_email", &self.billing_email),
            ("vat_number", &self.vat_number),
        ]
    }
}

/// A problem with one field: (field name, message key).
pub type FieldProblem = (&'static str, &'static str);

fn text(
    value: &str,
    field: &'static str,
    max: usize,
    required: bool,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        if required {
            problems.push((field, "billing.required"));
        }
        return None;
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        problems.push((field, "billing.too_long"));
        return None;
    }
    Some(value.to_string())
}

/// (alpha-2, English name) of every ISO 3166 country, by name, for the country list.
pub fn countries() -> Vec<(&'static str, &'static str)> {
    let mut list: Vec<_> = celes::Country::get_countries()
        .iter()
        .map(|c| (c.alpha2, c.long_name))
        .collect();
    list.sort_by_key(|(_, name)| *name);
    list
}

pub fn validate(form: &BillingForm, rates: &VatRates) -> Result<BillingDetails, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let name = text(&form.name, "name", 100, true, &mut problems);
    let company = text(&form.company, "company", 100, false, &mut problems);
    let address_line1 = text(
        &form.address_line1,
        "address_line1",
        200,
        true,
        &mut problems,
    );
    let address_line2 = text(
        &form.address_line2,
        "address_line2",
        200,
        false,
        &mut problems,
    );
    let postal_code = text(&form.postal_code, "postal_code", 20, true, &mut problems);
    let city = text(&form.city, "city", 100, true, &mut problems);
    let country = form.country.trim().to_ascii_uppercase();
    let country_known = celes::Country::from_alpha2(&country).is_ok();
    if !country_known {
        problems.push(("country", "billing.country_invalid"));
    }
    let billing_email = form.billing_email.trim().to_string();
    if !email_is_valid(&billing_email) {
        problems.push(("billing_email", "signup.email_invalid"));
    }
    let vat_number = match form.vat_number.trim() {
        "" => None,
        _ if country_known && !rates.is_eu(&country) => {
            problems.push(("vat_number", "billing.vat_outside_eu"));
            None
        }
        typed if country_known => {
            let normalized = vat_number::normalize(&country, typed);
            if vat_number::is_valid_format(&country, &normalized) {
                Some(normalized)
            } else {
                problems.push(("vat_number", "billing.vat_invalid"));
                None
            }
        }
        _ => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(BillingDetails {
        name: name.unwrap_or_default(),
        company,
        address_line1: address_line1.unwrap_or_default(),
        address_line2,
        postal_code: postal_code.unwrap_or_default(),
        city: city.unwrap_or_default(),
        country,
        billing_email,
        vat_number,
    })
}

/// The customer's billing details, if given. Scoped by customer.
pub async fn load(db: &Db, customer_id: Uuid) -> Result<Option<BillingDetails>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, BillingDetails>(
        "SELECT name, company, address_line1, address_line2, postal_code, city, country, billing_email, vat_number \
         FROM billing_details WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)
}

/// The billing details as an invoice records its buyer (JSON), read inside `tx` so the record
/// and the details it names belong to the same moment.
pub async fn buyer_snapshot(
    tx: &mut crate::db::Tx,
    customer_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let details: Option<BillingDetails> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT name, company, address_line1, address_line2, postal_code, city, country, billing_email, vat_number \
         FROM billing_details WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(conn)
    .await)?;
    Ok(details.and_then(|d| serde_json::to_string(&d).ok()))
}

/// Each field by name, as stored (the history and the form use these names).
pub fn fields(d: &BillingDetails) -> [(&'static str, Option<String>); 9] {
    [
        ("name", Some(d.name.clone())),
        ("company", d.company.clone()),
        ("address_line1", Some(d.address_line1.clone())),
        ("address_line2", d.address_line2.clone()),
        ("postal_code", Some(d.postal_code.clone())),
        ("city", Some(d.city.clone())),
        ("country", Some(d.country.clone())),
        ("billing_email", Some(d.billing_email.clone())),
        ("vat_number", d.vat_number.clone()),
    ]
}

/// Saves the details and appends one history entry per changed field, in one transaction.
/// Returns the names of the fields that changed (none: nothing written).
pub async fn save(
    portal: &Portal,
    meta: &RequestMeta,
    actor: Actor,
    customer_id: Uuid,
    details: &BillingDetails,
) -> Result<Vec<&'static str>, sqlx::Error> {
    let before = load(&portal.db, customer_id).await?;
    let old = before.as_ref().map(fields);
    let new = fields(details);
    let changed: Vec<(&'static str, Option<String>, Option<String>)> = new
        .iter()
        .enumerate()
        .filter_map(|(i, (field, value))| {
            let previous = old.as_ref().and_then(|o| o[i].1.clone());
            (previous != *value).then(|| (*field, previous, value.clone()))
        })
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let now = portal.clock.now_ms();
    let (actor_kind, actor_id) = actor.parts();
    let mut tx = portal.db.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO billing_details (customer_id, name, company, address_line1, address_line2, postal_code, city, \
         country, billing_email, vat_number, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name, company = excluded.company, \
         address_line1 = excluded.address_line1, address_line2 = excluded.address_line2, \
         postal_code = excluded.postal_code, city = excluded.city, country = excluded.country, \
         billing_email = excluded.billing_email, vat_number = excluded.vat_number, updated_at = excluded.updated_at",
    )
    .bind(customer_id)
    .bind(&details.name)
    .bind(&details.company)
    .bind(&details.address_line1)
    .bind(&details.address_line2)
    .bind(&details.postal_code)
    .bind(&details.city)
    .bind(&details.country)
    .bind(&details.billing_email)
    .bind(&details.vat_number)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    for (field, old_value, new_value) in &changed {
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO billing_details_history (id, customer_id, changed_at, actor_kind, actor_id, field, old_value, new_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id(now, &*portal.random))
        .bind(customer_id)
        .bind(now)
        .bind(actor_kind)
        .bind(actor_id)
        .bind(*field)
        .bind(old_value)
        .bind(new_value)
        .execute(conn)
        .await
        .map(|_| ()))?;
    }
    let names: Vec<&'static str> = changed.iter().map(|(f, _, _)| *f).collect();
    let event = AuditEvent::new(actor, "billing_details.changed")
        .customer(customer_id)
        .target("customer", customer_id)
        .details(serde_json::json!({ "fields": names }));
    audit::record(&mut tx, &event, meta, &*portal.clock, &*portal.random).await?;
    // A new VAT number (or the same one for another country) counts only once VIES says it is
    // valid: until then it is being checked, and VAT is charged.
    let number_changed = changed
        .iter()
        .any(|(f, _, _)| *f == "vat_number" || *f == "country");
    if number_changed {
        let status = if details.vat_number.is_some() {
            VatStatus::Checking
        } else {
            VatStatus::None
        };
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE billing_details SET vat_status = $2, vat_checked_at = NULL, vat_request_date = NULL, \
             vat_request_id = NULL, vat_registered_name = NULL, vat_registered_address = NULL, \
             vat_check_error = NULL WHERE customer_id = $1",
        )
        .bind(customer_id)
        .bind(status)
        .execute(conn)
        .await
        .map(|_| ()))?;
        if details.vat_number.is_some() {
            super::vies::enqueue_check(&mut tx, portal, customer_id).await?;
        }
    }
    enqueue_retax(&mut tx, portal, customer_id).await?;
    tx.commit().await?;
    Ok(names)
}

/// The tax follows the country and the VAT number's check (P9), and Stripe's invoices print
/// the name and address: a job brings both up to date (retrying while Stripe cannot be
/// reached), enqueued in the transaction of the change so that neither exists without the
/// other.
pub async fn enqueue_retax(
    tx: &mut crate::db::Tx,
    portal: &Portal,
    customer_id: Uuid,
) -> Result<(), sqlx::Error> {
    let retax = crate::jobs::NewJob::now(
        super::changes::RETAX_JOB,
        serde_json::json!({ "customer": customer_id }),
        &*portal.clock,
    )
    .dedupe(format!("{}:{customer_id}", super::changes::RETAX_JOB));
    crate::jobs::enqueue(tx, retax, &*portal.clock, &*portal.random)
        .await
        .map(|_| ())
}

/// The customer's VAT number as far as tax goes: only a number VIES said is valid.
pub async fn confirmed_vat_number(
    db: &Db,
    customer_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let found: Option<Option<String>> = on_db!(db, pool => sqlx::query_scalar(
        "SELECT vat_number FROM billing_details WHERE customer_id = $1 AND vat_status = 'valid'",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)?;
    Ok(found.flatten())
}

/// Where the customer's VAT number stands with VIES, for the billing page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct VatCheck {
    pub vat_status: VatStatus,
    /// `YYYY-MM-DD`, VIES's date of the check.
    pub vat_request_date: Option<String>,
    pub vat_request_id: Option<String>,
    /// Why the last try did not get an answer, while the number is being checked.
    pub vat_check_error: Option<String>,
}

pub async fn vat_check(db: &Db, customer_id: Uuid) -> Result<Option<VatCheck>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, VatCheck>(
        "SELECT vat_status, vat_request_date, vat_request_id, vat_check_error FROM billing_details \
         WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct HistoryEntry {
    pub changed_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// Every change to the customer's billing details, newest first. Scoped by customer.
pub async fn history(db: &Db, customer_id: Uuid) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    on_db!(db, pool => sqlx::query_as::<_, HistoryEntry>(
        "SELECT changed_at, actor_kind, actor_id, field, old_value, new_value FROM billing_details_history \
         WHERE customer_id = $1 ORDER BY changed_at DESC, id DESC",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> BillingForm {
        BillingForm {
            name: " Ada Lovelace ".into(),
            company: "".into(),
            address_line1: "Unter den Linden 1".into(),
            address_line2: "".into(),
            postal_code: "10117".into(),
            city: "Berlin".into(),
            country: "de".into(),
            billing_email: "billing@example.com".into(),
            vat_number: "de 123 456 789".into(),
        }
    }

    #[test]
    fn a_good_form_is_trimmed_and_normalised() {
        let details = validate(&form(), &VatRates::sample()).unwrap();
        assert_eq!(details.name, "Ada Lovelace");
        assert_eq!(details.company, None);
        assert_eq!(details.country, "DE");
        assert_eq!(details.vat_number.as_deref(), Some("DE123456789"));
    }

    #[test]
    fn every_field_is_checked() {
        let rates = VatRates::sample();
        let problems = validate(&BillingForm::default(), &rates).unwrap_err();
        for field in [
            "name",
            "address_line1",
            "postal_code",
            "city",
            "country",
            "billing_email",
        ] {
            assert!(
                problems.iter().any(|(f, _)| *f == field),
                "{field}: {problems:?}"
            );
        }
        let mut bad_vat = form();
        bad_vat.vat_number = "DE12".into();
        assert_eq!(
            validate(&bad_vat, &rates).unwrap_err(),
            vec![("vat_number", "billing.vat_invalid")]
        );
        let mut outside = form();
        outside.country = "US".into();
        assert_eq!(
            validate(&outside, &rates).unwrap_err(),
            vec![("vat_number", "billing.vat_outside_eu")]
        );
        outside.vat_number.clear();
        assert!(validate(&outside, &rates).is_ok());
        let mut unknown = form();
        unknown.country = "XX".into();
        assert!(validate(&unknown, &rates)
            .unwrap_err()
            .contains(&("country", "billing.country_invalid")));
    }

    #[test]
    fn the_country_list_is_iso_3166() {
        let list = countries();
        assert!(list.len() >= 249);
        assert!(list.iter().any(|(code, _)| *code == "FI"));
        for key in [
            "billing.required",
            "billing.too_long",
            "billing.country_invalid",
            "billing.vat_invalid",
            "billing.vat_outside_eu",
        ] {
            assert_ne!(crate::i18n::t(crate::i18n::Locale::En, key), key);
        }
    }
}
