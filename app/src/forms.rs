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

/// A path inside the portal to return to, or the account page (never another site).
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/account"
    }
}
