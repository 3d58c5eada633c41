//! Invoice PDFs: the frozen document in words (the same words as the invoice page, without its
//! payment state) laid out by the `invoice-pdf` crate; rendered once, kept in the database
//! with its SHA-256, and served to the invoice's owner and through its links.

use ::invoice_pdf::Sheet;
use app::server_fns::invoices::server::view;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use domain::{
    billing::{documents::CustomerInvoice, pdfs},
    i18n::{t, Locale},
    Portal,
};

fn tr(key: &str) -> String {
    t(Locale::En, key)
}

/// The invoice's document as the PDF shows it.
pub fn sheet(invoice: &CustomerInvoice) -> Sheet {
    let words = view(invoice);
    let document = &invoice.document;
    let issued = domain::clock::from_millis(document.issued_at);
    let mut facts = vec![
        (tr("invoice.number"), words.number.clone()),
        (tr("invoice.issued"), words.issued.clone()),
    ];
    if let Some(due) = &words.due {
        facts.push((tr("invoice.due"), due.clone()));
    }
    if let Some(period) = &words.period {
        facts.push((tr("invoice.service_period"), period.clone()));
    }
    let mut totals = vec![(tr("invoice.subtotal"), words.subtotal.clone())];
    totals.extend(words.taxes.iter().cloned());
    totals.push((tr("invoice.total"), words.total.clone()));
    let mut payment = words.bank.clone();
    if let Some(reference) = &words.payment_reference {
        payment.push(format!("{} {reference}", tr("invoice.reference")));
    }
    let seller = &document.seller;
    let mut footer = vec![seller.legal_name.clone()];
    if let Some(vat) = &seller.vat_number {
        footer.push(tr("invoice.vat_number").replace("%{number}", vat));
    }
    if let Some(company) = &seller.company_number {
        footer.push(tr("invoice.company_number").replace("%{number}", company));
    }
    Sheet {
        title: tr("invoice.heading").replace("%{number}", &words.number),
        language: Locale::En.code().to_string(),
        issued: (issued.year(), issued.month() as u8, issued.day()),
        seller_label: tr("invoice.seller"),
        seller: words.seller.clone(),
        buyer_label: tr("invoice.buyer"),
        buyer: words.buyer.clone(),
        facts,
        columns: [
            tr("invoice.col_description"),
            tr("invoice.col_period"),
            tr("invoice.col_amount"),
        ],
        lines: words
            .lines
            .iter()
            .map(|l| [l.description.clone(), l.period.clone(), l.amount.clone()])
            .collect(),
        totals,
        notes: words.tax_note.iter().cloned().collect(),
        payment_label: (!payment.is_empty()).then(|| tr("invoice.how_to_pay")),
        payment,
        footer: footer.join(" · "),
        page_label: tr("invoice.page_of"),
    }
}

/// Renders the invoice's PDF (on a blocking thread: layout and font subsetting are CPU work).
pub async fn render(invoice: &CustomerInvoice) -> Result<Vec<u8>, String> {
    let sheet = sheet(invoice);
    tokio::task::spawn_blocking(move || ::invoice_pdf::render(&sheet))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The invoice's PDF: the stored one, or (before the render job got to it) one rendered now.
/// Reading never stores: a page load changes nothing.
pub async fn bytes(portal: &Portal, invoice: &CustomerInvoice) -> Result<Vec<u8>, String> {
    match pdfs::stored(&portal.db, invoice.id).await {
        Ok(Some((pdf, _))) => Ok(pdf),
        Ok(None) => render(invoice).await,
        Err(error) => Err(error.to_string()),
    }
}

/// The render job: PDFs for the frozen invoices that have none yet, a batch at a time.
pub async fn render_missing(portal: &Portal) -> Result<usize, String> {
    let mut rendered = 0;
    for id in pdfs::missing(&portal.db, 50)
        .await
        .map_err(|e| e.to_string())?
    {
        let Some(invoice) = domain::billing::documents::by_id(&portal.db, id)
            .await
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        let pdf = render(&invoice).await?;
        if pdfs::store(&portal.db, id, &pdf, portal.clock.now_ms())
            .await
            .map_err(|e| e.to_string())?
        {
            rendered += 1;
        }
    }
    Ok(rendered)
}

/// The answer carrying a PDF: its stable file name, never cached or indexed.
pub fn response(number: &str, pdf: Vec<u8>) -> Response {
    let name: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let mut response = (StatusCode::OK, pdf).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"invoice-{name}.pdf\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow, noarchive"),
    );
    response
}
