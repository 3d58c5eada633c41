//! The account emails (verification, reset, notices), one layout for all: askama templates
//! with an HTML and a text part (`domain/templates/email.*`), every sentence from the
//! translation layer under `email.<kind>.*`.

use crate::{
    i18n::{t, Locale},
    mail::OutgoingEmail,
};
use askama::Template;
use uuid::Uuid;

pub struct Button {
    pub label: String,
    pub link: String,
}

/// One layout, two renderings: askama escapes the HTML one and leaves the text one alone.
#[derive(Template)]
#[template(path = "email.html")]
struct HtmlEmail<'a> {
    lang: &'a str,
    site_name: &'a str,
    subject: &'a str,
    greeting: &'a str,
    paragraphs: &'a [String],
    buttons: &'a [Button],
    footer: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "email.txt")]
struct TextEmail<'a> {
    site_name: &'a str,
    greeting: &'a str,
    paragraphs: &'a [String],
    buttons: &'a [Button],
    footer: &'a Option<String>,
}

/// The kinds of account email; each has `subject`, `greeting` and `body` messages (paragraphs
/// separated by blank lines), and optionally `button` and `footer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Verify,
    AddressTaken,
    Reset,
    PasswordChanged,
    TwoFactorEnabled,
    TwoFactorDisabled,
    ConfirmNewAddress,
    EmailChanged,
    PaymentFailed,
    SuspensionMarked,
    SuspensionMarkedManual,
    CanceledForNonPayment,
    UnprovenMethodsRemoved,
    ReauthLink,
    PaymentActionRequired,
    InvoiceIssued,
    PaymentReceived,
    HomeserverDown,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Verify => "verify",
            Kind::AddressTaken => "address_taken",
            Kind::Reset => "reset",
            Kind::PasswordChanged => "password_changed",
            Kind::TwoFactorEnabled => "two_factor_enabled",
            Kind::TwoFactorDisabled => "two_factor_disabled",
            Kind::ConfirmNewAddress => "confirm_new_address",
            Kind::EmailChanged => "email_changed",
            Kind::PaymentFailed => "payment_failed",
            Kind::SuspensionMarked => "suspension_marked",
            Kind::SuspensionMarkedManual => "suspension_marked_manual",
            Kind::CanceledForNonPayment => "canceled_for_non_payment",
            Kind::UnprovenMethodsRemoved => "unproven_methods_removed",
            Kind::ReauthLink => "reauth_link",
            Kind::PaymentActionRequired => "payment_action_required",
            Kind::InvoiceIssued => "invoice_issued",
            Kind::PaymentReceived => "payment_received",
            Kind::HomeserverDown => "homeserver_down",
        }
    }
}

/// The message `key` if it exists (rust-i18n answers a missing key with the key itself).
fn optional(locale: Locale, key: &str) -> Option<String> {
    let text = t(locale, key);
    (text != key).then_some(text)
}

/// Composes an account email to `to` for the person named `name`; `link` goes on the button.
pub fn compose(
    kind: Kind,
    locale: Locale,
    to: &str,
    user_id: Uuid,
    name: &str,
    link: Option<&str>,
) -> OutgoingEmail {
    compose_with(kind, locale, to, user_id, name, link, &[])
}

/// As [`compose`], with more `%{placeholder}` values for the messages.
pub fn compose_with(
    kind: Kind,
    locale: Locale,
    to: &str,
    user_id: Uuid,
    name: &str,
    link: Option<&str>,
    vars: &[(&str, &str)],
) -> OutgoingEmail {
    let buttons: Vec<(&str, &str)> = link.map(|link| ("button", link)).into_iter().collect();
    compose_with_buttons(kind, locale, to, user_id, name, &buttons, vars)
}

/// As [`compose_with`], with several buttons: each is `(message, link)`, the label being the
/// message `email.<kind>.<message>` (the first falls back to "Open the link").
pub fn compose_with_buttons(
    kind: Kind,
    locale: Locale,
    to: &str,
    user_id: Uuid,
    name: &str,
    buttons: &[(&str, &str)],
    vars: &[(&str, &str)],
) -> OutgoingEmail {
    let base = format!("email.{}", kind.key());
    let message = |part: &str| {
        vars.iter().fold(
            t(locale, &format!("{base}.{part}")).replace("%{name}", name),
            |text, (key, value)| text.replace(&format!("%{{{key}}}"), value),
        )
    };
    let subject = message("subject");
    let greeting = message("greeting");
    let paragraphs: Vec<String> = message("body")
        .split("\n\n")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let buttons: Vec<Button> = buttons
        .iter()
        .map(|(part, link)| Button {
            label: optional(locale, &format!("{base}.{part}"))
                .unwrap_or_else(|| t(locale, "email.open_link")),
            link: link.to_string(),
        })
        .collect();
    let footer = optional(locale, &format!("{base}.footer"));
    let site_name = t(locale, "site.name");
    let html = HtmlEmail {
        lang: locale.code(),
        site_name: &site_name,
        subject: &subject,
        greeting: &greeting,
        paragraphs: &paragraphs,
        buttons: &buttons,
        footer: &footer,
    }
    .render()
    .expect("the email template renders");
    let text = TextEmail {
        site_name: &site_name,
        greeting: &greeting,
        paragraphs: &paragraphs,
        buttons: &buttons,
        footer: &footer,
    }
    .render()
    .expect("the email template renders");
    OutgoingEmail {
        to: to.to_string(),
        user_id: Some(user_id),
        subject,
        text,
        html,
    }
}

/// The customer's owner as a recipient: user id, email address and name (None when the owner
/// has no address, or there is no owner).
pub async fn owner_recipient(
    tx: &mut crate::db::Tx,
    customer_id: Uuid,
) -> Result<Option<(Uuid, String, String)>, sqlx::Error> {
    let owner: Option<(Uuid, Option<String>, String)> = crate::on_tx!(tx, conn => sqlx::query_as(
        "SELECT u.id, u.email, u.display_name FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.customer_id = $1 AND m.role = 'owner' ORDER BY m.created_at LIMIT 1",
    )
    .bind(customer_id)
    .fetch_optional(conn)
    .await)?;
    Ok(owner.and_then(|(id, email, name)| Some((id, email?, name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [Kind; 18] = [
        Kind::HomeserverDown,
        Kind::InvoiceIssued,
        Kind::PaymentReceived,
        Kind::PaymentActionRequired,
        Kind::ReauthLink,
        Kind::UnprovenMethodsRemoved,
        Kind::SuspensionMarkedManual,
        Kind::PaymentFailed,
        Kind::SuspensionMarked,
        Kind::CanceledForNonPayment,
        Kind::ConfirmNewAddress,
        Kind::EmailChanged,
        Kind::Verify,
        Kind::AddressTaken,
        Kind::Reset,
        Kind::PasswordChanged,
        Kind::TwoFactorEnabled,
        Kind::TwoFactorDisabled,
    ];

    #[test]
    fn every_kind_has_its_messages() {
        for kind in KINDS {
            for part in ["subject", "greeting", "body"] {
                let key = format!("email.{}.{part}", kind.key());
                assert!(optional(Locale::En, &key).is_some(), "missing {key}");
            }
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let email = compose(
            Kind::Verify,
            Locale::En,
            "a@example.com",
            Uuid::nil(),
            "<Tom & Jerry>",
            Some("https://portal.example/verify-email/abc?x=1&y=2"),
        );
        // askama escapes with numeric character references.
        assert!(
            email.html.contains("&#60;Tom &#38; Jerry&#62;"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<Tom"));
        assert!(email.text.contains("<Tom & Jerry>"));
        assert!(email
            .text
            .contains("https://portal.example/verify-email/abc?x=1&y=2"));
        assert!(email.html.contains("verify-email/abc?x=1&#38;y=2"));
        assert_eq!(email.subject, "Verify your email address");
    }
}
