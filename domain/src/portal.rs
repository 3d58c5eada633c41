//! The services' shared handles, built once at start-up by the server and handed to every
//! request (as Leptos context and axum state) and to the job runner.

use crate::{
    accounts::{password::PasswordHasher, totp::SecretBox},
    billing::{dunning, stripe::Gateway, tax::VatRates, Seller},
    clock::Clock,
    db::Db,
    homeservers::regions::RegionCatalog,
    plans::PlanCatalog,
    random::Random,
};
use std::sync::Arc;

#[derive(Clone)]
pub struct Portal {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub plans: Arc<PlanCatalog>,
    /// Where homeservers can run.
    pub regions: Arc<RegionCatalog>,
    /// The public base URL (no trailing slash), used in links that leave the portal.
    pub public_url: Arc<str>,
    pub passwords: PasswordHasher,
    /// Encrypts two-factor secrets at rest.
    pub secret_box: Arc<SecretBox>,
    /// EU VAT rates with their effective dates.
    pub rates: Arc<VatRates>,
    pub seller: Arc<Seller>,
    /// Stripe, when the portal has its keys; without them customers pay manual invoices.
    pub payments: Option<Arc<Gateway>>,
    /// The EU's VIES service, which confirms VAT numbers (none: no number is ever confirmed,
    /// so VAT is always charged).
    pub vies: Option<Arc<crate::billing::vies::Vies>>,
    /// When an overdue card subscription's homeserver is marked for suspension, and ended.
    pub dunning: dunning::Policy,
    /// Days an invoice link lives (None: until it is revoked).
    pub invoice_link_days: Option<u32>,
    /// Days before a bank-transfer subscription's period ends when its next invoice is issued.
    pub manual_invoice_lead_days: u32,
    /// Where homeservers run: each region's provisioner, server names, ports.
    pub hosting: Arc<crate::homeservers::lifecycle::Hosting>,
    /// Opens of invoice links this replica has not written yet.
    pub link_opens: Arc<crate::billing::links::OpenLog>,
    /// Invoice links this replica looked up in the last second.
    pub link_lookups: Arc<crate::billing::links::Lookups>,
}
