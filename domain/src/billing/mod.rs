//! Billing: billing details, tax, cards, homeserver orders and their subscriptions (through
//! Stripe, or manual invoices).

pub mod accounts;
pub mod cards;
pub mod changes;
pub mod confirmation;
pub mod details;
pub mod documents;
pub mod dunning;
pub mod invoice_emails;
pub mod links;
pub mod manual;
pub mod numbering;
pub mod pdfs;
pub mod stripe;
pub mod subscriptions;
pub mod sync;
pub mod tax;
pub mod vat_number;
pub mod vies;
pub mod webhooks;

crate::text_enum! {
    /// An invoice's state, Stripe's for card invoices and the same for manual ones.
    pub enum InvoiceStatus {
        Draft = "draft",
        Open = "open",
        Paid = "paid",
        Void = "void",
        Uncollectible = "uncollectible",
    }
}

/// Who sells: the seller's country and VAT number decide the tax (P9); the rest is printed on
/// invoices as the seller block.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Seller {
    /// ISO 3166 alpha-2, an EU member state.
    pub country: String,
    pub vat_number: Option<String>,
    /// The legal name, as registered.
    pub legal_name: String,
    /// The postal address, one line per element.
    pub address: Vec<String>,
    /// The company registration number (trade register), if any.
    pub company_number: Option<String>,
    /// The bank account manual invoices are paid to.
    pub iban: Option<String>,
    pub bic: Option<String>,
}
