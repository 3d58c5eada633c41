//! The billing history and the invoice page. The invoice page prints as the document (the
//! stylesheet's print rules hide the navigation and set A4 margins).

use crate::{
    components::form::FlashMessages,
    i18n::tr,
    server_fns::{
        account::take_flash,
        invoices::{load_invoice, load_invoices, InvoiceRow, InvoiceView, LinkView},
    },
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;

/// What a page shows to a visitor who may not see invoices.
fn not_allowed() -> AnyView {
    view! {
        <p class="alert" role="alert">{tr("invoice.owner_only")}" "
            <a href="/sign-in">{tr("signin.title")}</a></p>
    }
    .into_any()
}

#[component]
pub fn InvoicesPage() -> impl IntoView {
    let data = Resource::new_blocking(|| (), |_| load_invoices());
    view! {
        <Title text=tr("invoice.history_title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container account-page">
            <p><a href="/billing">{tr("invoice.back_to_billing")}</a></p>
            <h1>{tr("invoice.history_title")}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(rows) if rows.is_empty() => view! {
                            <p>{tr("invoice.none_yet")}</p>
                        }.into_any(),
                        Ok(rows) => view! { <InvoiceTable rows/> }.into_any(),
                        Err(_) => not_allowed(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn InvoiceTable(rows: Vec<InvoiceRow>) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="invoices">
                <caption class="visually-hidden">{tr("invoice.history_title")}</caption>
                <thead><tr>
                    <th scope="col">{tr("invoice.col_number")}</th>
                    <th scope="col">{tr("invoice.col_date")}</th>
                    <th scope="col">{tr("invoice.col_period")}</th>
                    <th scope="col" class="amount">{tr("invoice.col_total")}</th>
                    <th scope="col">{tr("invoice.col_status")}</th>
                    <th scope="col">{tr("invoice.col_pdf")}</th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|row| {
                        let pdf = format!("/billing/invoices/{}/pdf", row.id);
                        let file = format!("invoice-{}.pdf", row.number);
                        let pdf_label = format!("{} {}", tr("invoice.col_pdf"), row.number);
                        view! {
                        <tr data-invoice=row.id.clone()>
                            <th scope="row"><a href=format!("/billing/invoices/{}", row.id)>{row.number}</a></th>
                            <td>{row.issued}</td>
                            <td>{row.period}</td>
                            <td class="amount">{row.total}</td>
                            <td class="status">{row.status}</td>
                            <td><a class="pdf" href=pdf download=file aria-label=pdf_label>{tr("invoice.col_pdf")}</a></td>
                        </tr>
                    }}).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
pub fn InvoicePage() -> impl IntoView {
    let params = use_params_map();
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let data = Resource::new_blocking(move || id.clone(), load_invoice);
    let flash = Resource::new_blocking(|| (), |_| take_flash());
    view! {
        <Title text=tr("invoice.title")/>
        <Meta name="robots" content="noindex"/>
        <section class="container invoice-page">
            <p class="no-print"><a href="/billing/invoices">{tr("invoice.back_to_history")}</a></p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    match data.await {
                        Ok(Some(invoice)) => {
                            let links = invoice.links.clone();
                            let id = invoice.id.clone();
                            view! {
                                <FlashMessages flash=flash form="links"/>
                                <InvoiceDocument pdf=format!("/billing/invoices/{id}/pdf") invoice/>
                                <InvoiceLinks id links/>
                            }.into_any()
                        }
                        Ok(None) => view! {
                            <h1>{tr("invoice.not_found_title")}</h1>
                            <p>{tr("invoice.not_found")}</p>
                        }.into_any(),
                        Err(_) => not_allowed(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The invoice's capability links: who made each, when it was last opened, how often; a new
/// one, and revoking any. Not part of the document (the print hides it).
#[component]
fn InvoiceLinks(id: String, links: Vec<LinkView>) -> impl IntoView {
    let create = format!("/billing/invoices/{id}/links");
    view! {
        <section class="card invoice-links no-print" aria-labelledby="links-heading">
            <h2 id="links-heading">{tr("invoice.links_title")}</h2>
            <p class="hint">{tr("invoice.links_intro")}</p>
            {(!links.is_empty()).then(|| view! {
                <div class="table-scroll">
                    <table class="links">
                        <thead><tr>
                            <th scope="col">{tr("invoice.link_col_created")}</th>
                            <th scope="col">{tr("invoice.link_col_by")}</th>
                            <th scope="col">{tr("invoice.link_col_last_opened")}</th>
                            <th scope="col">{tr("invoice.link_col_opened")}</th>
                            <th scope="col">{tr("invoice.link_col_state")}</th>
                            <th scope="col"><span class="visually-hidden">{tr("invoice.link_revoke")}</span></th>
                        </tr></thead>
                        <tbody>
                            {links.into_iter().map(|link| {
                                let revoke = format!("/billing/invoices/{id}/links/{}/revoke", link.id);
                                view! {
                                    <tr data-link=link.id.clone()>
                                        <td>{link.created}</td>
                                        <td>{link.created_by}</td>
                                        <td>{link.last_opened}</td>
                                        <td class="opened">{link.opened}</td>
                                        <td class="state">{link.state}</td>
                                        <td>{link.active.then(|| view! {
                                            <form method="post" action=revoke>
                                                <button class="button small" type="submit">{tr("invoice.link_revoke")}</button>
                                            </form>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
            <form method="post" action=create>
                <button class="button" type="submit">{tr("invoice.link_create")}</button>
            </form>
        </section>
    }
    .into_any()
}

/// The document as frozen, with the payment state beside it (not part of the document), and
/// a link to its PDF at `pdf`.
#[component]
pub fn InvoiceDocument(invoice: InvoiceView, pdf: String) -> impl IntoView {
    let line_list = |lines: Vec<String>| {
        lines
            .into_iter()
            .map(|line| view! { <span class="line">{line}</span> })
            .collect_view()
    };
    view! {
        <article class="invoice" aria-labelledby="invoice-title">
            <header class="invoice-head">
                <h1 id="invoice-title">{tr("invoice.heading").replace("%{number}", &invoice.number)}</h1>
                <p class="invoice-state">
                    <span class="status">{invoice.status.clone()}</span>
                    {invoice.paid.clone().map(|paid| view! { " · "<span class="paid">{paid}</span> })}
                </p>
                <p class="no-print"><a class="pdf" href=pdf download=format!("invoice-{}.pdf", invoice.number)>
                    {tr("invoice.download_pdf")}</a></p>
            </header>
            <div class="parties">
                <section aria-labelledby="seller-heading">
                    <h2 id="seller-heading">{tr("invoice.seller")}</h2>
                    <address class="seller">{line_list(invoice.seller.clone())}</address>
                </section>
                <section aria-labelledby="buyer-heading">
                    <h2 id="buyer-heading">{tr("invoice.buyer")}</h2>
                    <address class="buyer">{line_list(invoice.buyer.clone())}</address>
                </section>
            </div>
            <dl class="invoice-dates">
                <dt>{tr("invoice.number")}</dt><dd class="number">{invoice.number.clone()}</dd>
                <dt>{tr("invoice.issued")}</dt><dd>{invoice.issued.clone()}</dd>
                {invoice.due.clone().map(|due| view! { <dt>{tr("invoice.due")}</dt><dd>{due}</dd> })}
                {invoice.period.clone().map(|period| view! { <dt>{tr("invoice.service_period")}</dt><dd>{period}</dd> })}
            </dl>
            <table class="invoice-lines">
                <caption class="visually-hidden">{tr("invoice.lines")}</caption>
                <thead><tr>
                    <th scope="col">{tr("invoice.col_description")}</th>
                    <th scope="col">{tr("invoice.col_period")}</th>
                    <th scope="col" class="amount">{tr("invoice.col_amount")}</th>
                </tr></thead>
                <tbody>
                    {invoice.lines.clone().into_iter().map(|line| view! {
                        <tr>
                            <td>{line.description}</td>
                            <td>{line.period}</td>
                            <td class="amount">{line.amount}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
                <tfoot>
                    <tr><th scope="row" colspan="2">{tr("invoice.subtotal")}</th>
                        <td class="amount subtotal">{invoice.subtotal.clone()}</td></tr>
                    {invoice.taxes.clone().into_iter().map(|(label, amount)| view! {
                        <tr><th scope="row" colspan="2">{label}</th><td class="amount tax">{amount}</td></tr>
                    }).collect_view()}
                    <tr class="grand-total"><th scope="row" colspan="2">{tr("invoice.total")}</th>
                        <td class="amount total">{invoice.total.clone()}</td></tr>
                </tfoot>
            </table>
            {invoice.tax_note.clone().map(|note| view! { <p class="tax-note">{note}</p> })}
            {(!invoice.bank.is_empty()).then(|| view! {
                <section class="payment-details" aria-labelledby="pay-heading">
                    <h2 id="pay-heading">{tr("invoice.how_to_pay")}</h2>
                    <p>{line_list(invoice.bank.clone())}</p>
                    {invoice.payment_reference.clone().map(|reference| view! {
                        <p>{tr("invoice.reference")}" "<strong class="reference">{reference}</strong></p>
                    })}
                </section>
            })}
        </article>
    }
    .into_any()
}
