//! The plan catalogue, read from a TOML file (`config/plans.toml` ships sample plans). Billing
//! uses the same format as is: limits, monthly and annual price per currency in minor units,
//! the payment provider's price ids, and an optional trial.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    #[default]
    Monthly,
    Annual,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        match s {
            "monthly" => Some(Interval::Monthly),
            "annual" => Some(Interval::Annual),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Monthly => "monthly",
            Interval::Annual => "annual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Monthly active users the homeserver is sized for.
    pub monthly_active_users: u32,
    pub storage_gb: u32,
    /// Bridges to other networks included.
    #[serde(default)]
    pub bridges: u32,
}

/// The compute a homeserver of a plan is given (its storage is `limits.storage_gb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU it is guaranteed, in thousandths of a core.
    pub cpu_millicores: u32,
    /// Memory it is guaranteed and may not exceed, in MiB.
    pub memory_mib: u32,
}

impl Default for Resources {
    /// An idle Synapse uses about 120 MiB; a small team's stays well under 1 GiB.
    fn default() -> Self {
        Self {
            cpu_millicores: 500,
            memory_mib: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Minor units (cents) per month when billed monthly.
    pub monthly: i64,
    /// Minor units per year when billed annually.
    pub annual: i64,
    #[serde(default)]
    pub stripe_monthly: Option<String>,
    #[serde(default)]
    pub stripe_annual: Option<String>,
}

impl Price {
    pub fn amount(&self, interval: Interval) -> i64 {
        match interval {
            Interval::Monthly => self.monthly,
            Interval::Annual => self.annual,
        }
    }

    pub fn stripe_price(&self, interval: Interval) -> Option<&str> {
        match interval {
            Interval::Monthly => self.stripe_monthly.as_deref(),
            Interval::Annual => self.stripe_annual.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub highlighted: bool,
    #[serde(default)]
    pub trial_days: Option<u32>,
    pub limits: Limits,
    /// What one homeserver of the plan may use, where its driver enforces it (Kubernetes).
    #[serde(default)]
    pub resources: Resources,
    /// Keyed by lower-case ISO currency code.
    pub prices: BTreeMap<String, Price>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCatalog {
    /// The currency shown to visitors who have not chosen one.
    pub default_currency: String,
    #[serde(rename = "plan")]
    pub plans: Vec<Plan>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("plans file: {0}")]
    Syntax(String),
    #[error("plans file: {0}")]
    Invalid(String),
}

pub const SAMPLE_PLANS: &str = include_str!("../../config/plans.toml");

impl PlanCatalog {
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let catalog: PlanCatalog =
            toml::from_str(text).map_err(|e| PlanError::Syntax(e.message().to_string()))?;
        catalog.validate()?;
        Ok(catalog)
    }

    pub fn sample() -> Self {
        Self::from_toml(SAMPLE_PLANS).expect("the shipped sample plans are valid")
    }

    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The plan, currency and interval a payment provider's price id stands for.
    pub fn by_stripe_price(&self, price_id: &str) -> Option<(&Plan, &str, Interval)> {
        self.plans.iter().find_map(|plan| {
            plan.prices.iter().find_map(|(currency, price)| {
                [Interval::Monthly, Interval::Annual]
                    .into_iter()
                    .find(|i| price.stripe_price(*i) == Some(price_id))
                    .map(|i| (plan, currency.as_str(), i))
            })
        })
    }

    fn validate(&self) -> Result<(), PlanError> {
        let invalid = |m: String| Err(PlanError::Invalid(m));
        if self.plans.is_empty() {
            return invalid("at least one [[plan]] is required".into());
        }
        if !crate::money::is_currency(&self.default_currency) {
            return invalid(format!(
                "default_currency {:?} is not an ISO 4217 code",
                self.default_currency
            ));
        }
        // A Stripe price stands for one plan, currency and interval: the sync maps it back.
        let mut stripe_ids = std::collections::BTreeSet::new();
        for price in self.plans.iter().flat_map(|p| p.prices.values()) {
            for id in [&price.stripe_monthly, &price.stripe_annual]
                .into_iter()
                .flatten()
            {
                if !stripe_ids.insert(id.as_str()) {
                    return invalid(format!("the Stripe price {id} is named twice"));
                }
            }
        }
        for (i, plan) in self.plans.iter().enumerate() {
            let id_ok = !plan.id.is_empty()
                && plan.id.len() <= 40
                && plan
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return invalid(format!("plan id {:?}: use 1–40 of a-z, 0-9 and -", plan.id));
            }
            if self.plans[..i].iter().any(|p| p.id == plan.id) {
                return invalid(format!("plan id {:?} appears twice", plan.id));
            }
            if plan.name.trim().is_empty() {
                return invalid(format!("plan {}: name is empty", plan.id));
            }
            if plan.resources.cpu_millicores == 0
                || plan.resources.memory_mib < 256
                || plan.limits.storage_gb == 0
            {
                return invalid(format!(
                    "plan {}: resources need some CPU, at least 256 MiB of memory, and storage_gb at least 1",
                    plan.id
                ));
            }
            if !plan
                .prices
                .contains_key(&self.default_currency.to_ascii_lowercase())
            {
                return invalid(format!(
                    "plan {}: no price in the default currency {}",
                    plan.id, self.default_currency
                ));
            }
            for (currency, price) in &plan.prices {
                if currency != &currency.to_ascii_lowercase()
                    || !crate::money::is_currency(currency)
                {
                    return invalid(format!(
                        "plan {}: {currency:?} is not a lower-case ISO 4217 code",
                        plan.id
                    ));
                }
                if price.monthly <= 0 || price.annual <= 0 {
                    return invalid(format!(
                        "plan {}: prices in {currency} must be positive",
                        plan.id
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_plans_load() {
        let catalog = PlanCatalog::sample();
        assert!(catalog.plans.len() >= 3);
        let plan = &catalog.plans[0];
        assert!(
            plan.prices["eur"].annual < plan.prices["eur"].monthly * 12,
            "annual is a discount"
        );
    }

    #[test]
    fn a_stripe_price_maps_back_to_its_plan_currency_and_interval() {
        let mut catalog = PlanCatalog::sample();
        let price = catalog.plans[1].prices.get_mut("eur").unwrap();
        price.stripe_monthly = Some("price_b_eur_m".into());
        price.stripe_annual = Some("price_b_eur_y".into());
        let second = catalog.plans[1].id.clone();
        let found = |id| {
            catalog
                .by_stripe_price(id)
                .map(|(p, c, i)| (p.id.clone(), c.to_string(), i))
        };
        assert_eq!(
            found("price_b_eur_y"),
            Some((second.clone(), "eur".into(), Interval::Annual))
        );
        assert_eq!(
            found("price_b_eur_m"),
            Some((second, "eur".into(), Interval::Monthly))
        );
        assert_eq!(found("price_unknown"), None);
    }

    #[test]
    fn rejects_bad_catalogues() {
        let base = |plan: &str| format!("default_currency = \"eur\"\n{plan}");
        let ok_plan = "[[plan]]\nid = \"a\"\nname = \"A\"\ndescription = \"\"\nlimits = { monthly_active_users = 1, storage_gb = 1 }\nprices.eur = { monthly = 100, annual = 1000 }\n";
        assert!(PlanCatalog::from_toml(&base(ok_plan)).is_ok());
        let twice = format!("{ok_plan}{ok_plan}");
        assert!(
            matches!(PlanCatalog::from_toml(&base(&twice)), Err(PlanError::Invalid(m)) if m.contains("twice"))
        );
        let bad_id = ok_plan.replace("id = \"a\"", "id = \"A B\"");
        assert!(PlanCatalog::from_toml(&base(&bad_id)).is_err());
        let free = ok_plan.replace("monthly = 100", "monthly = 0");
        assert!(PlanCatalog::from_toml(&base(&free)).is_err());
        let typo = ok_plan.replace("storage_gb", "storage_gib");
        assert!(matches!(
            PlanCatalog::from_toml(&base(&typo)),
            Err(PlanError::Syntax(_))
        ));
        assert!(PlanCatalog::from_toml("default_currency = \"eur\"\nplan = []").is_err());
        let same_price = ok_plan.replace(
            "annual = 1000 }",
            "annual = 1000, stripe_monthly = \"price_x\", stripe_annual = \"price_x\" }",
        );
        assert!(
            matches!(PlanCatalog::from_toml(&base(&same_price)), Err(PlanError::Invalid(m)) if m.contains("price_x"))
        );
    }
}
