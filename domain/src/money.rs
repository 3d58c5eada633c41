//! Money is kept in integer minor units with an ISO 4217 currency; this module formats it for a
//! user's locale (through rusty-money, which knows each currency's exponent and symbol).

use crate::i18n::Locale;
use rusty_money::{iso, Formatter, Money, Params, Position};

/// True when `code` (e.g. "EUR", case-insensitive) is an ISO 4217 currency.
pub fn is_currency(code: &str) -> bool {
    iso::find(&code.to_ascii_uppercase()).is_some()
}

/// Formats `minor` units of `currency` for `locale`, e.g. `€1,234.50` in English and
/// `1 234,50 €` in Russian. Whole amounts drop the minor digits (`€10`).
pub fn format(minor: i64, currency: &str, locale: Locale) -> String {
    let code = currency.to_ascii_uppercase();
    let Some(currency) = iso::find(&code) else {
        return format!("{minor} {code}");
    };
    let money = Money::from_minor(minor, currency);
    let whole = minor % 10i64.pow(currency.exponent) == 0;
    let rounding = Some(if whole { 0 } else { currency.exponent });
    let params = match locale {
        Locale::En => Params {
            digit_separator: ',',
            exponent_separator: '.',
            separator_pattern: &[3, 3, 3],
            positions: &[Position::Sign, Position::Symbol, Position::Amount],
            rounding,
            symbol: Some(currency.symbol),
            code: None,
        },
        Locale::Ru => Params {
            digit_separator: '\u{a0}',
            exponent_separator: ',',
            separator_pattern: &[3, 3, 3],
            positions: &[
                Position::Sign,
                Position::Amount,
                Position::Space,
                Position::Symbol,
            ],
            rounding,
            symbol: Some(currency.symbol),
            code: None,
        },
    };
    Formatter::money(&money, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_per_locale() {
        assert_eq!(format(1000, "eur", Locale::En), "€10");
        assert_eq!(format(123450, "EUR", Locale::En), "€1,234.50");
        assert_eq!(format(123450, "EUR", Locale::Ru), "1\u{a0}234,50 €");
        assert_eq!(format(999, "usd", Locale::En), "$9.99");
        assert_eq!(format(500, "JPY", Locale::En), "¥500");
    }

    #[test]
    fn knows_currencies() {
        assert!(is_currency("eur"));
        assert!(!is_currency("XYZ1"));
    }
}
