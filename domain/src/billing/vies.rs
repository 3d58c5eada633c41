//! VAT numbers checked with the EU's VIES service (its REST API), the proof a tax office asks
//! for before a sale is invoiced without VAT (reverse charge). A number counts only once VIES
//! said it is valid: until then (being checked, VIES unavailable) and when VIES says it is not,
//! VAT is charged. The check names the seller as the requester, so VIES answers with a request
//! identifier, kept with the result and its date.
//!
//! The check runs as a job ([`CHECK_JOB`]), enqueued with the change of the number and retried
//! with backoff while VIES or a member state's service is down; numbers of customers whose
//! subscription renews soon are checked again ([`RECHECK_JOB`]). A changed result decides the
//! tax again.

use super::{details, vat_number, Seller};
use crate::{db::Tx, jobs, on_db, on_tx, portal::Portal};
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

pub const CHECK_JOB: &str = "billing.check_vat_number";
pub const RECHECK_JOB: &str = "billing.recheck_vat_numbers";
/// Attempts of a check while VIES is down: backoff doubles to an hour, so about a day.
const CHECK_ATTEMPTS: i32 = 30;

crate::text_enum! {
    /// Where a customer's VAT number stands with VIES.
    pub enum VatStatus {
        /// No VAT number.
        None = "none",
        /// Not checked yet, or VIES could not answer so far (VAT is charged meanwhile).
        Checking = "checking",
        Valid = "valid",
        Invalid = "invalid",
    }
}

#[derive(Debug, Clone)]
pub struct ViesConfig {
    /// The REST API's base, e.g. `https://ec.europa.eu/taxation_customs/vies/rest-api`.
    pub base_url: String,
    pub timeout: Duration,
}

/// What VIES said about a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViesAnswer {
    pub valid: bool,
    /// `YYYY-MM-DD`.
    pub request_date: String,
    /// The consultation number (only when the request names a requester).
    pub request_identifier: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViesError {
    /// VIES or the member state's service did not answer (MS_UNAVAILABLE, TIMEOUT,
    /// MS_MAX_CONCURRENT_REQ, SERVICE_UNAVAILABLE, a network error, …): try again later.
    #[error("VIES could not answer: {0}")]
    Unavailable(String),
    /// VIES refused the number itself (INVALID_INPUT): it is not a valid number.
    #[error("VIES refused the number as input")]
    InvalidInput,
}

#[derive(Clone)]
pub struct Vies {
    client: reqwest::Client,
    config: ViesConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckResponse {
    action_succeed: Option<bool>,
    #[serde(default)]
    error_wrappers: Vec<ErrorWrapper>,
    valid: Option<bool>,
    request_date: Option<String>,
    request_identifier: Option<String>,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct ErrorWrapper {
    error: Option<String>,
}

/// VIES writes "---" where it has nothing to say.
fn given(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v != "---")
}

impl Vies {
    pub fn new(config: ViesConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("VIES client: {e}"))?;
        Ok(Self { client, config })
    }

    /// Asks VIES whether `number` (normalised, with its prefix) of `country` is valid, naming
    /// the seller as the requester when the seller has a VAT number.
    pub async fn check(
        &self,
        country: &str,
        number: &str,
        seller: &Seller,
    ) -> Result<ViesAnswer, ViesError> {
        let prefix = vat_number::prefix(country);
        let mut body = serde_json::json!({
            "countryCode": prefix,
            "vatNumber": number.strip_prefix(prefix).unwrap_or(number),
        });
        if let Some(own) = &seller.vat_number {
            let own_prefix = vat_number::prefix(&seller.country);
            body["requesterMemberStateCode"] = own_prefix.into();
            body["requesterNumber"] = own.strip_prefix(own_prefix).unwrap_or(own).into();
        }
        let url = format!(
            "{}/check-vat-number",
            self.config.base_url.trim_end_matches('/')
        );
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                ViesError::Unavailable(if e.is_timeout() {
                    "no answer in time".into()
                } else {
                    "unreachable".into()
                })
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            ViesError::Unavailable(if e.is_timeout() {
                "no answer in time".into()
            } else {
                "answer cut off".into()
            })
        })?;
        parse_answer(status.as_u16(), &bytes)
    }
}

/// VIES's answer, whatever the HTTP status: its errors come as `actionSucceed: false` with
/// codes, on 200 as well as on 4xx/5xx.
fn parse_answer(status: u16, bytes: &[u8]) -> Result<ViesAnswer, ViesError> {
    let parsed: CheckResponse = serde_json::from_slice(bytes)
        .map_err(|_| ViesError::Unavailable(format!("HTTP {status} without VIES's JSON")))?;
    if parsed.action_succeed == Some(false) || !parsed.error_wrappers.is_empty() {
        let code = parsed
            .error_wrappers
            .into_iter()
            .find_map(|e| e.error)
            .unwrap_or_else(|| "unknown error".into());
        return Err(if code == "INVALID_INPUT" {
            ViesError::InvalidInput
        } else {
            ViesError::Unavailable(code)
        });
    }
    let (Some(valid), true) = (parsed.valid, (200..300).contains(&status)) else {
        return Err(ViesError::Unavailable(format!(
            "HTTP {status} without a result"
        )));
    };
    Ok(ViesAnswer {
        valid,
        request_date: parsed
            .request_date
            .map(|d| d.chars().take(10).collect())
            .unwrap_or_default(),
        request_identifier: given(parsed.request_identifier),
        name: given(parsed.name),
        address: given(parsed.address),
    })
}

/// Enqueues the check of the customer's VAT number, inside the transaction that changed it.
pub async fn enqueue_check(
    tx: &mut Tx,
    portal: &Portal,
    customer_id: Uuid,
) -> Result<(), sqlx::Error> {
    let job = jobs::NewJob {
        max_attempts: CHECK_ATTEMPTS,
        ..jobs::NewJob::now(
            CHECK_JOB,
            serde_json::json!({ "customer": customer_id }),
            &*portal.clock,
        )
    }
    .dedupe(format!("{CHECK_JOB}:{customer_id}"));
    jobs::enqueue(tx, job, &*portal.clock, &*portal.random)
        .await
        .map(|_| ())
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Vies(#[from] ViesError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The check job: asks VIES about the customer's current number and stores the answer with
/// its date and identifier; a changed result decides the tax again (the tax job is enqueued in
/// the same transaction). While VIES cannot answer, the number stays "being checked" (VAT is
/// charged) and the job is retried.
pub async fn run_check(portal: &Portal, customer_id: Uuid) -> Result<VatStatus, CheckError> {
    let Some(billing) = details::load(&portal.db, customer_id).await? else {
        return Ok(VatStatus::None);
    };
    let Some(number) = billing.vat_number.clone() else {
        return Ok(VatStatus::None);
    };
    let Some(vies) = portal.vies.as_ref() else {
        tracing::warn!("no VIES service is configured (PORTAL_VIES_URL): VAT numbers stay unconfirmed and VAT is charged");
        return Ok(VatStatus::Checking);
    };
    let now = portal.clock.now_ms();
    let answer = match vies.check(&billing.country, &number, &portal.seller).await {
        Ok(answer) => answer,
        Err(ViesError::InvalidInput) => ViesAnswer {
            valid: false,
            request_date: crate::clock::from_millis(now).date().to_string(),
            request_identifier: None,
            name: None,
            address: None,
        },
        Err(error) => {
            // Kept for the customer's page ("VIES does not answer yet") and staff.
            on_db!(&portal.db, pool => sqlx::query(
                "UPDATE billing_details SET vat_check_error = $3 WHERE customer_id = $1 AND vat_number = $2",
            )
            .bind(customer_id)
            .bind(&number)
            .bind(error.to_string())
            .execute(pool)
            .await
            .map(|_| ()))?;
            return Err(error.into());
        }
    };
    let status = if answer.valid {
        VatStatus::Valid
    } else {
        VatStatus::Invalid
    };
    let mut tx = portal.db.begin().await?;
    let before: Option<VatStatus> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT vat_status FROM billing_details WHERE customer_id = $1 AND vat_number = $2",
    )
    .bind(customer_id)
    .bind(&number)
    .fetch_optional(conn)
    .await)?;
    // The number changed meanwhile: its own check decides.
    let Some(before) = before else {
        tx.rollback().await?;
        return Ok(VatStatus::Checking);
    };
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE billing_details SET vat_status = $3, vat_checked_at = $4, vat_request_date = $5, \
         vat_request_id = $6, vat_registered_name = $7, vat_registered_address = $8, vat_check_error = NULL \
         WHERE customer_id = $1 AND vat_number = $2",
    )
    .bind(customer_id)
    .bind(&number)
    .bind(status)
    .bind(now)
    .bind(&answer.request_date)
    .bind(&answer.request_identifier)
    .bind(&answer.name)
    .bind(&answer.address)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let event =
        crate::audit::AuditEvent::new(crate::audit::Actor::System, "billing.vat_number_checked")
            .customer(customer_id)
            .target("customer", customer_id)
            .details(serde_json::json!({
                "valid": answer.valid,
                "request_date": answer.request_date,
                "request_identifier": answer.request_identifier,
            }));
    crate::audit::record_system(&mut tx, &event, portal).await?;
    if before != status {
        details::enqueue_retax(&mut tx, portal, customer_id).await?;
    }
    tx.commit().await?;
    Ok(status)
}

/// Days before a renewal within which a number is checked again, and how old a check may be
/// then.
const RECHECK_WITHIN_DAYS: i64 = 3;
const RECHECK_OLDER_THAN_DAYS: i64 = 7;

/// The periodic pass: numbers not answered yet (VIES was down longer than a check's retries)
/// are checked again, and so are numbers of customers with a subscription that renews within
/// three days, last checked more than a week ago, before the renewal invoices them. Returns how
/// many checks it enqueued (a check already queued counts once).
pub async fn recheck_before_renewals(portal: &Portal) -> Result<usize, sqlx::Error> {
    let now = portal.clock.now_ms();
    let day = 86_400_000;
    let customers: Vec<Uuid> = on_db!(&portal.db, pool => sqlx::query_scalar(
        "SELECT d.customer_id FROM billing_details d WHERE d.vat_number IS NOT NULL \
         AND (d.vat_status = 'checking' OR (d.vat_checked_at < $1 \
              AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = d.customer_id \
                     AND s.status IN ('trialing', 'active', 'past_due') AND s.current_period_end <= $2)))",
    )
    .bind(now - RECHECK_OLDER_THAN_DAYS * day)
    .bind(now + RECHECK_WITHIN_DAYS * day)
    .fetch_all(pool)
    .await)?;
    let mut tx = portal.db.begin().await?;
    for customer in &customers {
        enqueue_check(&mut tx, portal, *customer).await?;
    }
    tx.commit().await?;
    Ok(customers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vies_answers_are_read_whatever_their_status() {
        let valid = br#"{"countryCode":"DE","vatNumber":"811907980","requestDate":"2026-12-02T10:00:00.000Z",
            "valid":true,"requestIdentifier":"WAPIAAAAXYZ","name":"Beispiel GmbH","address":"Musterstrasse 1"}"#;
        assert_eq!(
            parse_answer(200, valid),
            Ok(ViesAnswer {
                valid: true,
                request_date: "2026-12-02".into(),
                request_identifier: Some("WAPIAAAAXYZ".into()),
                name: Some("Beispiel GmbH".into()),
                address: Some("Musterstrasse 1".into()),
            })
        );
        let invalid = br#"{"valid":false,"requestDate":"2026-12-02","requestIdentifier":"","name":"---","address":"---"}"#;
        let answer = parse_answer(200, invalid).unwrap();
        assert!(!answer.valid);
        assert_eq!((answer.name, answer.request_identifier), (None, None));
        for (status, code) in [
            (200, "MS_UNAVAILABLE"),
            (500, "TIMEOUT"),
            (200, "MS_MAX_CONCURRENT_REQ"),
        ] {
            let body = format!(
                r#"{{"actionSucceed":false,"errorWrappers":[{{"error":"{code}","message":null}}]}}"#
            );
            assert_eq!(
                parse_answer(status, body.as_bytes()),
                Err(ViesError::Unavailable(code.into()))
            );
        }
        assert_eq!(
            parse_answer(
                400,
                br#"{"actionSucceed":false,"errorWrappers":[{"error":"INVALID_INPUT"}]}"#
            ),
            Err(ViesError::InvalidInput)
        );
        assert!(matches!(
            parse_answer(502, b"<html>Bad gateway</html>"),
            Err(ViesError::Unavailable(_))
        ));
        assert!(matches!(
            parse_answer(503, br#"{"valid":true}"#),
            Err(ViesError::Unavailable(_))
        ));
    }
}
