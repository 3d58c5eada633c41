//! What the billing pages show.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    pub when: String,
    pub by_staff: bool,
    pub field: String,
    pub old_value: String,
    pub new_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingView {
    /// The saved details as form values (empty strings when none yet).
    pub values: std::collections::BTreeMap<String, String>,
    pub saved: bool,
    pub countries: Vec<(String, String)>,
    pub history: Vec<HistoryView>,
    /// Where the VAT number stands with VIES, in words (None without a number).
    pub vat_state: Option<String>,
}

#[server(endpoint = "billing")]
pub async fn load_billing() -> Result<BillingView, ServerFnError> {
    use domain::billing::details;
    let (_, _, customer_id) = super::account::require_customer().await?;
    let portal = super::portal()?;
    let saved = details::load(&portal.db, customer_id)
        .await
        .map_err(ServerFnError::new)?;
    let mut values = std::collections::BTreeMap::new();
    if let Some(d) = &saved {
        for (field, value) in details::fields(d) {
            values.insert(field.to_string(), value.unwrap_or_default());
        }
    }
    let history = details::history(&portal.db, customer_id)
        .await
        .map_err(ServerFnError::new)?
        .into_iter()
        .map(|h| HistoryView {
            when: super::account::when(h.changed_at),
            by_staff: h.actor_kind == "staff",
            field: crate::i18n::tr(&format!("billing.field_{}", h.field)),
            old_value: h.old_value.unwrap_or_default(),
            new_value: h.new_value.unwrap_or_default(),
        })
        .collect();
    let vat_state = details::vat_check(&portal.db, customer_id)
        .await
        .map_err(ServerFnError::new)?
        .and_then(|check| vat_state(&check));
    Ok(BillingView {
        values,
        saved: saved.is_some(),
        vat_state,
        countries: details::countries()
            .into_iter()
            .map(|(code, name)| (code.to_string(), name.to_string()))
            .collect(),
        history,
    })
}

/// The VAT number's state as the customer reads it.
#[cfg(feature = "ssr")]
fn vat_state(check: &domain::billing::details::VatCheck) -> Option<String> {
    use crate::i18n::tr;
    use domain::billing::vies::VatStatus;
    Some(match check.vat_status {
        VatStatus::None => return None,
        VatStatus::Checking if check.vat_check_error.is_some() => tr("billing.vat_unanswered"),
        VatStatus::Checking => tr("billing.vat_checking"),
        VatStatus::Invalid => tr("billing.vat_not_valid"),
        VatStatus::Valid => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let long =
                time::macros::format_description!("[day padding:none] [month repr:long] [year]");
            let date = check
                .vat_request_date
                .as_deref()
                .and_then(|d| time::Date::parse(d, &format).ok())
                .and_then(|d| d.format(&long).ok())
                .unwrap_or_default();
            let confirmed = tr("billing.vat_confirmed").replace("%{date}", &date);
            match &check.vat_request_id {
                Some(id) => format!(
                    "{confirmed} {}",
                    tr("billing.vat_consultation").replace("%{id}", id)
                ),
                None => confirmed,
            }
        }
    })
}
