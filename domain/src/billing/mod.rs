//! Billing: billing details, tax, and (coming) subscriptions through Stripe.

pub mod details;
pub mod tax;
pub mod vat_number;
