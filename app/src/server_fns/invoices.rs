//! What the billing history and the invoice page show: the frozen document, in words, with
//! the payment state beside it. Only the customer's owner sees them (later also members with
//! the billing role).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    /// The invoice's random id (its page's address), never its sequential number.
    pub id: String,
    pub number: String,
    pub issued: String,
    pub period: String,
    pub total: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLineView {
    pub description: String,
    pub period: String,
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub id: String,
    pub number: String,
    pub issued: String,
    pub due: Option<String>,
    pub period: Option<String>,
    /// The seller block, line by line.
    pub seller: Vec<String>,
    pub buyer: Vec<String>,
    /// Bank details and the payment reference of a manual invoice.
    pub bank: Vec<String>,
    pub payment_reference: Option<String>,
    pub lines: Vec<InvoiceLineView>,
    pub subtotal: String,
    /// (label, amount)
    pub taxes: Vec<(String, String)>,
    pub tax_note: Option<String>,
    pub total: String,
    /// The payment state, in words (beside the document, not part of it).
    pub status: String,
    pub paid: Option<String>,
    /// The invoice's links, for its owner's page (never on the page a link opens).
    pub links: Vec<LinkView>,
}

/// A capability link as the invoice's page lists it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub id: String,
    pub created: String,
    pub created_by: String,
    pub last_opened: String,
    pub opened: i64,
    /// "Active", "Revoked on …", "Expires on …", "Expired on …".
    pub state: String,
    pub active: bool,
}

#[cfg(feature = "ssr")]
pub mod server {
    use super::*;
    use crate::i18n::tr;
    use domain::{
        accounts::profile::MemberRole,
        billing::{documents::CustomerInvoice, InvoiceStatus},
        i18n::Locale,
        money::format,
    };

    /// The signed-in account's customer, if the account may see its invoices.
    pub async fn invoice_reader() -> Result<uuid::Uuid, ServerFnError> {
        let (_, account, customer_id) = crate::server_fns::account::require_customer().await?;
        if account.role.is_some_and(MemberRole::reads_invoices) {
            Ok(customer_id)
        } else {
            Err(ServerFnError::new("only the owner sees invoices"))
        }
    }

    pub fn day(ms: i64) -> String {
        domain::clock::long_date(ms)
    }

    pub fn period(start: i64, end: i64) -> String {
        tr("invoice.period_range")
            .replace("%{from}", &day(start))
            .replace("%{to}", &day(end))
    }

    pub fn status(invoice: &CustomerInvoice) -> String {
        tr(match invoice.status {
            InvoiceStatus::Draft => "invoice.status_draft",
            InvoiceStatus::Open => "invoice.status_open",
            InvoiceStatus::Paid => "invoice.status_paid",
            InvoiceStatus::Void => "invoice.status_void",
            InvoiceStatus::Uncollectible => "invoice.status_uncollectible",
        })
    }

    pub fn row(invoice: &CustomerInvoice) -> InvoiceRow {
        let d = &invoice.document;
        InvoiceRow {
            id: invoice.id.to_string(),
            number: d.number.clone(),
            issued: day(d.issued_at),
            period: match (d.period_start, d.period_end) {
                (Some(start), Some(end)) => period(start, end),
                _ => String::new(),
            },
            total: format(d.total, &d.currency, Locale::En),
            status: status(invoice),
        }
    }

    pub fn view(invoice: &CustomerInvoice) -> InvoiceView {
        let d = &invoice.document;
        let money = |amount: i64| format(amount, &d.currency, Locale::En);
        let mut seller = vec![d.seller.legal_name.clone()];
        seller.extend(d.seller.address.iter().cloned());
        if let Some(vat) = &d.seller.vat_number {
            seller.push(tr("invoice.vat_number").replace("%{number}", vat));
        }
        if let Some(company) = &d.seller.company_number {
            seller.push(tr("invoice.company_number").replace("%{number}", company));
        }
        let buyer = d
            .buyer
            .as_ref()
            .map(|b| {
                let mut lines = vec![b.name.clone()];
                lines.extend(b.company.clone());
                lines.push(b.address_line1.clone());
                lines.extend(b.address_line2.clone());
                lines.push(format!("{} {}", b.postal_code, b.city));
                lines.push(
                    domain::billing::details::countries()
                        .into_iter()
                        .find(|(code, _)| *code == b.country)
                        .map(|(_, name)| name.to_string())
                        .unwrap_or_else(|| b.country.clone()),
                );
                if let Some(vat) = &b.vat_number {
                    lines.push(tr("invoice.vat_number").replace("%{number}", vat));
                }
                lines
            })
            .unwrap_or_default();
        let mut bank = Vec::new();
        if d.payment_reference.is_some() {
            if let Some(iban) = &d.seller.iban {
                bank.push(tr("invoice.iban").replace("%{iban}", iban));
            }
            if let Some(bic) = &d.seller.bic {
                bank.push(tr("invoice.bic").replace("%{bic}", bic));
            }
        }
        let tax_note = d.tax_note.as_ref().map(|key| {
            let mut note = tr(key);
            if key == "tax.reverse_charge_note" {
                let buyer_vat = d
                    .buyer
                    .as_ref()
                    .and_then(|b| b.vat_number.clone())
                    .unwrap_or_default();
                let seller_vat = d.seller.vat_number.clone().unwrap_or_default();
                note = format!(
                    "{note} {}",
                    tr("invoice.vat_numbers")
                        .replace("%{seller}", &seller_vat)
                        .replace("%{buyer}", &buyer_vat)
                );
            }
            note
        });
        InvoiceView {
            id: invoice.id.to_string(),
            number: d.number.clone(),
            issued: day(d.issued_at),
            due: d.due_at.map(day),
            period: match (d.period_start, d.period_end) {
                (Some(start), Some(end)) => Some(period(start, end)),
                _ => None,
            },
            seller,
            buyer,
            bank,
            payment_reference: d.payment_reference.clone(),
            lines: d
                .lines
                .iter()
                .map(|line| InvoiceLineView {
                    description: {
                        let mut text = line.description.clone();
                        if let Some(interval) = &line.interval {
                            text =
                                format!("{text} · {}", tr(&format!("order.interval_{interval}")));
                        }
                        if line.proration {
                            text = format!("{text} ({})", tr("invoice.proration"));
                        }
                        text
                    },
                    period: period(line.period_start, line.period_end),
                    amount: money(line.amount),
                })
                .collect(),
            subtotal: money(d.subtotal),
            taxes: d
                .taxes
                .iter()
                .map(|t| {
                    let percent = format!("{}", f64::from(t.rate_bp) / 100.0);
                    let label = match &t.country {
                        Some(country) => tr("invoice.tax_line")
                            .replace("%{rate}", &percent)
                            .replace("%{country}", country),
                        None => tr("invoice.tax_line_zero").replace("%{rate}", &percent),
                    };
                    (label, money(t.amount))
                })
                .collect(),
            tax_note,
            total: money(d.total),
            status: status(invoice),
            paid: match (invoice.status, invoice.paid_at) {
                (InvoiceStatus::Paid, Some(at)) => Some(match &invoice.card_last4 {
                    Some(last4) => tr("invoice.paid_by_card")
                        .replace("%{date}", &day(at))
                        .replace("%{last4}", last4),
                    None => tr("invoice.paid_on").replace("%{date}", &day(at)),
                }),
                _ => None,
            },
            links: Vec::new(),
        }
    }

    pub fn link(link: &domain::billing::links::LinkRecord, now: i64) -> LinkView {
        let when = crate::server_fns::account::when;
        let (state, active) = match (link.revoked_at, link.expires_at) {
            (Some(at), _) => (
                tr("invoice.link_revoked_on").replace("%{date}", &when(at)),
                false,
            ),
            (None, Some(at)) if at <= now => (
                tr("invoice.link_expired_on").replace("%{date}", &when(at)),
                false,
            ),
            (None, Some(at)) => (
                tr("invoice.link_expires_on").replace("%{date}", &when(at)),
                true,
            ),
            (None, None) => (tr("invoice.link_active"), true),
        };
        LinkView {
            id: link.id.to_string(),
            created: when(link.created_at),
            created_by: link
                .created_by
                .clone()
                .unwrap_or_else(|| tr("invoice.link_by_portal")),
            last_opened: link
                .last_opened_at
                .map(when)
                .unwrap_or_else(|| tr("invoice.link_never_opened")),
            opened: link.open_count,
            state,
            active,
        }
    }
}

#[server(endpoint = "invoices")]
pub async fn load_invoices() -> Result<Vec<InvoiceRow>, ServerFnError> {
    let customer_id = server::invoice_reader().await?;
    let portal = super::portal()?;
    let invoices = domain::billing::documents::list(&portal.db, customer_id)
        .await
        .map_err(ServerFnError::new)?;
    Ok(invoices.iter().map(server::row).collect())
}

/// One invoice of the signed-in customer; None for an id that is not one of theirs (the page
/// then says it was not found, the same for another customer's invoice and a made-up id).
#[server(endpoint = "invoice")]
pub async fn load_invoice(id: String) -> Result<Option<InvoiceView>, ServerFnError> {
    let customer_id = server::invoice_reader().await?;
    let portal = super::portal()?;
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return Ok(None);
    };
    let Some(invoice) = domain::billing::documents::get(&portal.db, customer_id, id)
        .await
        .map_err(ServerFnError::new)?
    else {
        return Ok(None);
    };
    let mut view = server::view(&invoice);
    let now = portal.clock.now_ms();
    view.links = domain::billing::links::list(&portal, customer_id, id)
        .await
        .map_err(ServerFnError::new)?
        .iter()
        .map(|link| server::link(link, now))
        .collect();
    Ok(Some(view))
}
