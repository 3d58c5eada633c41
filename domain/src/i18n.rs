//! The translation layer shared by pages and emails. Messages live in `locales/*.yml` at the
//! workspace root (rust-i18n), English now and Russian to come; the `app` crate compiles the
//! same files for the browser.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Ru,
}

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Ru => "ru",
        }
    }
}

/// The message `key` in `locale`.
pub fn t(locale: Locale, key: &str) -> String {
    rust_i18n::t!(key, locale = locale.code()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_known_keys_and_shows_missing_ones() {
        assert_eq!(t(Locale::En, "site.name"), "Matrix Hosting");
        // rust-i18n returns the key itself when a message is missing.
        assert_eq!(t(Locale::En, "no.such.key"), "no.such.key");
    }
}
