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
    Ok(BillingView {
        values,
        saved: saved.is_some(),
        countries: details::countries()
            .into_iter()
            .map(|(code, name)| (code.to_string(), name.to_string()))
            .collect(),
        history,
    })
}
