use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A plan as the landing page shows it, prices already formatted for the visitor's locale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub features: Vec<String>,
    pub highlighted: bool,
    pub trial_days: Option<u32>,
    pub monthly_active_users: u32,
    pub storage_gb: u32,
    pub bridges: u32,
    pub monthly_price: String,
    pub annual_price: String,
}

#[server(endpoint = "plans")]
pub async fn landing_plans() -> Result<Vec<PlanCard>, ServerFnError> {
    use domain::{i18n::Locale, money::format};
    let portal = super::portal()?;
    let catalog = &portal.plans;
    let currency = catalog.default_currency.to_ascii_lowercase();
    Ok(catalog
        .plans
        .iter()
        .filter_map(|plan| {
            let price = plan.prices.get(&currency)?;
            Some(PlanCard {
                id: plan.id.clone(),
                name: plan.name.clone(),
                description: plan.description.clone(),
                features: plan.features.clone(),
                highlighted: plan.highlighted,
                trial_days: plan.trial_days,
                monthly_active_users: plan.limits.monthly_active_users,
                storage_gb: plan.limits.storage_gb,
                bridges: plan.limits.bridges,
                monthly_price: format(price.monthly, &currency, Locale::En),
                annual_price: format(price.annual, &currency, Locale::En),
            })
        })
        .collect())
}
