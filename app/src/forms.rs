//! Forms post to plain HTTP handlers (they work the same with and without JavaScript) and
//! answer with a redirect (POST/redirect/GET). What the next page needs to show, the entered
//! values, a message per field or a notice, travels in a one-time "flash" in the session.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The session entry holding the flash.
pub const FLASH_KEY: &str = "flash";

/// The session entry of the card entry "Add a card" started: the card page (a GET, which
/// creates nothing at Stripe) mounts Stripe's field with this client secret.
pub const CARD_SETUP_KEY: &str = "card_setup";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSetup {
    pub client_secret: String,
    /// Milliseconds; an entry older than [`CardSetup::LIFETIME_MS`] is not shown.
    pub at: i64,
}

impl CardSetup {
    pub const LIFETIME_MS: i64 = 60 * 60 * 1000;
}

/// The session entry of a payment the customer confirms with Stripe.js ("Confirm the
/// payment", an order or a plan change POSTs and asks Stripe; the payment-confirmation page, a
/// GET, shows it).
pub const PAYMENT_CONFIRMATION_KEY: &str = "payment_confirmation";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentConfirmation {
    /// The portal's subscription id.
    pub subscription: String,
    pub server_name: String,
    /// The PaymentIntent's client secret, for `confirmCardPayment`.
    pub client_secret: String,
    /// The card it is charged to (Stripe's payment method id), empty when none is known.
    pub payment_method: String,
    /// Formatted ("€12.34").
    pub amount: String,
    pub at: i64,
}

impl PaymentConfirmation {
    pub const LIFETIME_MS: i64 = 60 * 60 * 1000;
}

impl std::fmt::Debug for PaymentConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentConfirmation")
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

/// The session entry of the last plan-change preview ("See the price" POSTs and asks Stripe;
/// the homeserver page shows the answer).
pub const PLAN_PREVIEW_KEY: &str = "plan_preview";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPreview {
    pub subscription: String,
    pub plan: String,
    /// What moving to the plan invoices now, formatted ("€12.34").
    pub amount: String,
    pub at: i64,
}

impl PlanPreview {
    pub const LIFETIME_MS: i64 = 10 * 60 * 1000;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// Which form the values and errors belong to (a page may have several).
    pub form: String,
    /// Entered values to show again (never passwords or codes).
    pub values: BTreeMap<String, String>,
    /// A message per field, already translated.
    pub errors: BTreeMap<String, String>,
    /// A message about the whole form (e.g. wrong email or password), already translated.
    pub alert: Option<String>,
    /// A confirmation (e.g. "Your name was changed"), already translated.
    pub notice: Option<String>,
    /// Recovery codes, shown once after two-factor authentication is turned on.
    pub recovery_codes: Vec<String>,
}

impl Flash {
    pub fn for_form(form: &str) -> Self {
        Self {
            form: form.to_string(),
            ..Self::default()
        }
    }

    pub fn notice(text: String) -> Self {
        Self {
            notice: Some(text),
            ..Self::default()
        }
    }

    pub fn value(&self, form: &str, field: &str) -> String {
        if self.form != form {
            return String::new();
        }
        self.values.get(field).cloned().unwrap_or_default()
    }

    pub fn error(&self, form: &str, field: &str) -> Option<String> {
        if self.form != form {
            return None;
        }
        self.errors.get(field).cloned()
    }

    pub fn alert_for(&self, form: &str) -> Option<String> {
        (self.form == form).then(|| self.alert.clone()).flatten()
    }
}

/// The pages a form may send the browser back to after it is done (`next=`): the portal's
/// own paths, compared whole. Anything else, however it is spelled or encoded, is not a path
/// we wrote, so it gets the default.
pub const RETURN_PATHS: &[&str] = &["/account", "/billing", "/dashboard", "/order"];

/// `next` when it is one of [`RETURN_PATHS`], else `default`.
pub fn return_path(next: &str, default: &'static str) -> &'static str {
    RETURN_PATHS
        .iter()
        .copied()
        .find(|path| *path == next)
        .unwrap_or(default)
}

/// `next` when it is one of [`RETURN_PATHS`], else the account page (never another site).
pub fn local_path(next: &str) -> &'static str {
    return_path(next, "/account")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portals_own_return_paths_are_kept() {
        for path in RETURN_PATHS {
            assert_eq!(local_path(path), *path);
            assert_eq!(return_path(path, "/dashboard"), *path);
        }
    }

    #[test]
    fn anything_else_falls_back_to_the_default() {
        for next in [
            "",
            " ",
            "/",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " /account",
            "\t/account",
            "\n/account",
            "/account ",
            "/account\n",
            "/account\r\nLocation: https://evil.example",
            "/%2F%2Fevil.example",
            "/%2f%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "%09/evil.example",
            "/%0a/evil.example",
            "/%0d/evil.example",
            "%2Faccount",
            "/%61ccount",
            "https://evil.example",
            "https:evil.example",
            "http://evil.example/account",
            "//evil.example/account",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "evil.example",
            "/account/../../evil.example",
            "/account/../order",
            "/./account",
            "/account?x=//evil.example",
            "/account#//evil.example",
            "/Account",
            "/sign-out",
            "/auth/google/start?intent=link",
            "/\u{3000}/evil.example",
            "/\u{a0}/evil.example",
            "\u{feff}/account",
        ] {
            assert_eq!(local_path(next), "/account", "{next:?}");
            assert_eq!(return_path(next, "/dashboard"), "/dashboard", "{next:?}");
        }
    }
}
