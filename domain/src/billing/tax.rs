//! Tax on a subscription (P9), decided when it is created and again when billing details
//! change, from the seller's country and the customer's country and VAT number:
//! - same country as the seller: that country's VAT (domestic), VAT number or not;
//! - another EU member state with a VAT number (a business): reverse charge at 0 %, with the
//!   legal note on the invoice;
//! - another EU member state without one (a consumer): the customer's country's VAT;
//! - outside the EU: no VAT (an export of services).
//!
//! Rates come from a data file with effective dates (`config/vat_rates.toml`); each decision
//! names the tax rate it needs in Stripe (`key`), so Stripe's invoices and the portal agree.

use super::vat_number;
use serde::Deserialize;
use std::collections::BTreeMap;
use time::{macros::format_description, Date};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    from: Date,
    bp: u32,
}

/// The standard VAT rates of the EU member states over time.
#[derive(Debug, Clone)]
pub struct VatRates {
    rates: BTreeMap<String, Vec<Period>>,
}

#[derive(Deserialize)]
struct RatesFile {
    rates: BTreeMap<String, Vec<RawPeriod>>,
}

#[derive(Deserialize)]
struct RawPeriod {
    from: String,
    bp: u32,
}

pub const SAMPLE_RATES: &str = include_str!("../../../config/vat_rates.toml");

impl VatRates {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: RatesFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let format = format_description!("[year]-[month]-[day]");
        let mut rates = BTreeMap::new();
        for (country, periods) in file.rates {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!("{country:?} is not an ISO 3166 alpha-2 code"));
            }
            let mut parsed = periods
                .into_iter()
                .map(|p| {
                    let from = Date::parse(&p.from, format)
                        .map_err(|e| format!("{country}: date {:?}: {e}", p.from))?;
                    if p.bp > 10_000 {
                        return Err(format!("{country}: rate {} bp is over 100 %", p.bp));
                    }
                    Ok(Period { from, bp: p.bp })
                })
                .collect::<Result<Vec<_>, String>>()?;
            if parsed.is_empty() {
                return Err(format!("{country}: no rate"));
            }
            parsed.sort_by_key(|p| p.from);
            rates.insert(country, parsed);
        }
        Ok(Self { rates })
    }

    /// The shipped rates (`config/vat_rates.toml`).
    pub fn sample() -> Self {
        Self::from_toml(SAMPLE_RATES).expect("the shipped VAT rates parse")
    }

    pub fn is_eu(&self, country: &str) -> bool {
        self.rates.contains_key(country)
    }

    /// The standard rate of `country` in force on `on`, in basis points.
    pub fn rate_on(&self, country: &str, on: Date) -> Option<u32> {
        self.rates
            .get(country)?
            .iter()
            .rev()
            .find(|p| p.from <= on)
            .map(|p| p.bp)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party<'a> {
    /// ISO 3166 alpha-2, upper case.
    pub country: &'a str,
    /// A VAT number whose format was checked (see [`vat_number`]), if any.
    pub vat_number: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// The seller's own country's VAT.
    Domestic,
    /// An EU consumer: the VAT of the customer's country.
    EuConsumer,
    /// An EU business in another member state: 0 %, the customer accounts for the VAT.
    ReverseCharge,
    /// Outside the EU: no VAT.
    OutsideEu,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxDecision {
    pub treatment: Treatment,
    /// Basis points: 2100 = 21 %.
    pub rate_bp: u32,
    /// Whose rate it is (None without VAT).
    pub rate_country: Option<String>,
    /// The invoice's legal note, a message key of the translation layer.
    pub note_key: Option<&'static str>,
    /// The Stripe tax rate this decision needs, e.g. `vat-FI-2550` (None without tax).
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    #[error("no VAT rate for {0} on {1}")]
    NoRate(String, Date),
    #[error("the VAT number {0} does not have the format of {1}")]
    BadVatNumber(String, String),
    #[error("the seller's country {0} is not an EU member state in the rates file")]
    SellerOutsideRates(String),
}

/// VAT on `amount` at `rate_bp` basis points, rounded half up to the minor unit (a credit,
/// negative, rounds away from zero alike).
pub fn tax_of(amount: i64, rate_bp: u32) -> i64 {
    let raw = amount * i64::from(rate_bp);
    if raw >= 0 {
        (raw + 5_000) / 10_000
    } else {
        -((-raw + 5_000) / 10_000)
    }
}

/// The tax on a sale from `seller` to `buyer` on `on`.
pub fn decide(
    rates: &VatRates,
    seller: &Party,
    buyer: &Party,
    on: Date,
) -> Result<TaxDecision, TaxError> {
    if !rates.is_eu(seller.country) {
        return Err(TaxError::SellerOutsideRates(seller.country.to_string()));
    }
    let taxed = |country: &str, treatment| {
        let rate_bp = rates
            .rate_on(country, on)
            .ok_or_else(|| TaxError::NoRate(country.to_string(), on))?;
        Ok(TaxDecision {
            treatment,
            rate_bp,
            rate_country: Some(country.to_string()),
            note_key: None,
            key: Some(format!("vat-{country}-{rate_bp}")),
        })
    };
    if buyer.country == seller.country {
        return taxed(seller.country, Treatment::Domestic);
    }
    if !rates.is_eu(buyer.country) {
        return Ok(TaxDecision {
            treatment: Treatment::OutsideEu,
            rate_bp: 0,
            rate_country: None,
            note_key: Some("tax.outside_eu_note"),
            key: None,
        });
    }
    match buyer.vat_number {
        Some(number) => {
            let normalized = vat_number::normalize(buyer.country, number);
            if !vat_number::is_valid_format(buyer.country, &normalized) {
                return Err(TaxError::BadVatNumber(
                    number.to_string(),
                    buyer.country.to_string(),
                ));
            }
            Ok(TaxDecision {
                treatment: Treatment::ReverseCharge,
                rate_bp: 0,
                rate_country: None,
                note_key: Some("tax.reverse_charge_note"),
                key: Some("vat-reverse-charge".to_string()),
            })
        }
        None => taxed(buyer.country, Treatment::EuConsumer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_shipped_rates_cover_the_27_member_states() {
        let rates = VatRates::sample();
        assert_eq!(rates.rates.len(), 27);
        assert!(rates.is_eu("GR") && !rates.is_eu("GB") && !rates.is_eu("CH"));
    }

    #[test]
    fn rates_follow_their_effective_dates() {
        let rates = VatRates::sample();
        assert_eq!(rates.rate_on("FI", date!(2024 - 08 - 31)), Some(2400));
        assert_eq!(rates.rate_on("FI", date!(2024 - 09 - 01)), Some(2550));
        assert_eq!(rates.rate_on("EE", date!(2025 - 06 - 30)), Some(2200));
        assert_eq!(rates.rate_on("EE", date!(2025 - 07 - 01)), Some(2400));
        assert_eq!(rates.rate_on("LU", date!(2023 - 06 - 01)), Some(1600));
        assert_eq!(
            rates.rate_on("DE", date!(2015 - 01 - 01)),
            None,
            "before the file"
        );
        assert!(VatRates::from_toml("[rates]\nXX1 = [{ from = \"2020-01-01\", bp = 1 }]").is_err());
        assert!(
            VatRates::from_toml("[rates]\nDE = [{ from = \"2020-13-01\", bp = 1900 }]").is_err()
        );
    }

    /// (seller country, buyer country, buyer VAT number, date) → (treatment, rate, Stripe key).
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Date,
        Treatment,
        u32,
        Option<&'a str>,
    );

    #[test]
    fn decisions() {
        use Treatment::*;
        let rates = VatRates::sample();
        let today = date!(2026 - 11 - 22);
        let cases: &[Case] = &[
            // Seller in Germany.
            ("DE", "DE", None, today, Domestic, 1900, Some("vat-DE-1900")),
            (
                "DE",
                "DE",
                Some("DE123456789"),
                today,
                Domestic,
                1900,
                Some("vat-DE-1900"),
            ),
            (
                "DE",
                "FR",
                None,
                today,
                EuConsumer,
                2000,
                Some("vat-FR-2000"),
            ),
            (
                "DE",
                "FR",
                Some("FRXX123456789"),
                today,
                ReverseCharge,
                0,
                Some("vat-reverse-charge"),
            ),
            (
                "DE",
                "NL",
                Some("nl 123456789 b01"),
                today,
                ReverseCharge,
                0,
                Some("vat-reverse-charge"),
            ),
            (
                "DE",
                "GR",
                Some("123456789"),
                today,
                ReverseCharge,
                0,
                Some("vat-reverse-charge"),
            ),
            (
                "DE",
                "HU",
                None,
                today,
                EuConsumer,
                2700,
                Some("vat-HU-2700"),
            ),
            ("DE", "US", None, today, OutsideEu, 0, None),
            ("DE", "GB", Some("GB123456789"), today, OutsideEu, 0, None),
            ("DE", "CH", None, today, OutsideEu, 0, None),
            // Rates change with the date of the sale.
            (
                "DE",
                "FI",
                None,
                date!(2024 - 08 - 31),
                EuConsumer,
                2400,
                Some("vat-FI-2400"),
            ),
            (
                "DE",
                "FI",
                None,
                today,
                EuConsumer,
                2550,
                Some("vat-FI-2550"),
            ),
            (
                "DE",
                "SK",
                None,
                date!(2024 - 12 - 31),
                EuConsumer,
                2000,
                Some("vat-SK-2000"),
            ),
            (
                "DE",
                "SK",
                None,
                today,
                EuConsumer,
                2300,
                Some("vat-SK-2300"),
            ),
            (
                "DE",
                "RO",
                None,
                today,
                EuConsumer,
                2100,
                Some("vat-RO-2100"),
            ),
            // Seller in Finland.
            ("FI", "FI", None, today, Domestic, 2550, Some("vat-FI-2550")),
            (
                "FI",
                "FI",
                Some("FI12345678"),
                today,
                Domestic,
                2550,
                Some("vat-FI-2550"),
            ),
            (
                "FI",
                "DE",
                None,
                today,
                EuConsumer,
                1900,
                Some("vat-DE-1900"),
            ),
            (
                "FI",
                "LU",
                None,
                date!(2023 - 06 - 01),
                EuConsumer,
                1600,
                Some("vat-LU-1600"),
            ),
        ];
        for (seller, buyer, number, on, treatment, rate, key) in cases {
            let decision = decide(
                &rates,
                &Party {
                    country: seller,
                    vat_number: None,
                },
                &Party {
                    country: buyer,
                    vat_number: *number,
                },
                *on,
            )
            .unwrap_or_else(|e| panic!("{seller}→{buyer} {number:?}: {e}"));
            assert_eq!(
                decision.treatment, *treatment,
                "{seller}→{buyer} {number:?} {on}"
            );
            assert_eq!(decision.rate_bp, *rate, "{seller}→{buyer} {number:?} {on}");
            assert_eq!(
                decision.key.as_deref(),
                *key,
                "{seller}→{buyer} {number:?} {on}"
            );
        }
        let reverse = decide(
            &rates,
            &Party {
                country: "DE",
                vat_number: None,
            },
            &Party {
                country: "FR",
                vat_number: Some("FRXX123456789"),
            },
            today,
        )
        .unwrap();
        assert_eq!(reverse.note_key, Some("tax.reverse_charge_note"));
        for key in ["tax.reverse_charge_note", "tax.outside_eu_note"] {
            let text = crate::i18n::t(crate::i18n::Locale::En, key);
            assert_ne!(text, key, "the note {key} has a message");
        }
        assert_eq!(
            decide(
                &rates,
                &Party {
                    country: "DE",
                    vat_number: None
                },
                &Party {
                    country: "FR",
                    vat_number: Some("FR123")
                },
                today,
            ),
            Err(TaxError::BadVatNumber("FR123".into(), "FR".into()))
        );
        assert!(matches!(
            decide(
                &rates,
                &Party {
                    country: "US",
                    vat_number: None
                },
                &Party {
                    country: "DE",
                    vat_number: None
                },
                today
            ),
            Err(TaxError::SellerOutsideRates(_))
        ));
    }
}
