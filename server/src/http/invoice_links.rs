//! `/i/{token}`: an invoice opened by its capability link, by anyone who has the link and
//! without a session. The page is the invoice document and nothing else of the account: no
//! navigation, no script, no cookie. Whatever is wrong with the token (malformed, unknown,
//! revoked, expired), the answer is the same 404 page, byte for byte, with the same headers.
//! The token never reaches a log line, a metrics label (the route is `/i/{token}`) or an
//! error report.

use super::plain_page::{escape, page};
use crate::state::AppState;
use axum::{
    extract::{Path, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use domain::i18n::{t, Locale};

/// The CSP of every answer under /i/: the stylesheet and nothing else, no third party.
pub const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE_CLASS: &str = "container invoice-page";

/// Headers every answer under /i/ carries (besides the CSP).
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow, noarchive"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    headers.remove(header::SET_COOKIE);
    response
}

fn html(status: StatusCode, body: String) -> Response {
    private(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// The one answer for every token that opens nothing.
pub fn not_found() -> Response {
    let locale = Locale::En;
    let main = format!(
        "<h1>{title}</h1><p>{text}</p>",
        title = escape(&t(locale, "invoice.link_not_found_title")),
        text = escape(&t(locale, "invoice.link_not_found")),
    );
    html(
        StatusCode::NOT_FOUND,
        page(
            &t(locale, "invoice.link_not_found_title"),
            PAGE_CLASS,
            &main,
        ),
    )
}

/// The invoice a token opens (recording the open), or the answer to give instead: too many
/// requests from this address, or the one 404 for every token that opens nothing.
async fn opened(
    state: &AppState,
    token: &str,
    request: Request,
) -> Result<domain::billing::documents::CustomerInvoice, Response> {
    let ip = super::client_ip::from_request(&request, &state.config.trusted_proxies);
    drop(request);
    if let Some(ip) = ip {
        if state.link_limiter.check(ip).is_err() {
            let locale = Locale::En;
            let main = format!("<h1>{}</h1>", escape(&t(locale, "invoice.link_too_many")));
            return Err(html(
                StatusCode::TOO_MANY_REQUESTS,
                page(&t(locale, "invoice.link_too_many"), PAGE_CLASS, &main),
            ));
        }
    }
    match domain::billing::links::open(&state.portal, token).await {
        Ok(Some(invoice)) => Ok(invoice),
        Ok(None) => Err(not_found()),
        Err(error) => {
            tracing::error!(%error, "an invoice link could not be looked up");
            Err(private(super::error_page::internal_error_response()))
        }
    }
}

pub async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let invoice = match opened(&state, &token, request).await {
        Ok(invoice) => invoice,
        Err(response) => return response,
    };
    let view = app::server_fns::invoices::server::view(&invoice);
    let title = t(Locale::En, "invoice.heading").replace("%{number}", &view.number);
    let pdf = format!("/i/{token}/pdf");
    let main = leptos::prelude::Owner::new().with(|| {
        use leptos::prelude::*;
        view! { <app::pages::invoices::InvoiceDocument invoice=view pdf/> }.to_html()
    });
    html(StatusCode::OK, page(&title, PAGE_CLASS, &main))
}

/// `/i/{token}/pdf`: the invoice's PDF, by the same link and on the same terms.
pub async fn open_pdf(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let invoice = match opened(&state, &token, request).await {
        Ok(invoice) => invoice,
        Err(response) => return response,
    };
    match crate::invoice_pdf::bytes(&state.portal, &invoice).await {
        Ok(pdf) => private(crate::invoice_pdf::response(&invoice.document.number, pdf)),
        Err(error) => {
            tracing::error!(%error, "an invoice PDF could not be made");
            private(super::error_page::internal_error_response())
        }
    }
}
