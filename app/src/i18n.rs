//! Pages translate through the same message files as emails (`locales/`); the locale of the
//! request is provided as context at the root of the app.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiLocale(pub &'static str);

impl Default for UiLocale {
    fn default() -> Self {
        UiLocale("en")
    }
}

pub fn locale() -> &'static str {
    use_context::<UiLocale>().unwrap_or_default().0
}

/// The message `key` in the current locale.
pub fn tr(key: &str) -> String {
    rust_i18n::t!(key, locale = locale()).into_owned()
}

/// The message `key` with `%{count}` replaced.
pub fn tr_count(key: &str, count: impl std::fmt::Display) -> String {
    tr(key).replace("%{count}", &count.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_message_exists_in_english() {
        let keys = crate::_rust_i18n_available_locales();
        assert!(keys.contains(&"en"));
        for key in [
            "site.name",
            "landing.hero_title",
            "not_found.title",
            "error.title",
        ] {
            let text = rust_i18n::t!(key, locale = "en");
            assert_ne!(text, key, "missing message {key}");
        }
    }
}
