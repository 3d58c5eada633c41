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

    /// A key written twice in the YAML keeps only one of its texts, silently: a page would then
    /// say the other sentence.
    #[test]
    fn the_locale_file_names_each_key_once() {
        let text = include_str!("../../locales/en.yml");
        let mut path: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            let Some((key, _)) = trimmed.split_once(':') else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            path.truncate((line.len() - trimmed.len()) / 2);
            path.push(key);
            let full = path.join(".");
            assert!(
                seen.insert(full.clone()),
                "{full} appears twice in locales/en.yml"
            );
        }
        assert!(seen.contains("billing.vat_not_valid"));
    }
}
