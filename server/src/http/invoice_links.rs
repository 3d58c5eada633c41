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

pub async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let ip = super::client_ip::from_request(&request, &state.config.trusted_proxies);
    if let Some(ip) = ip {
        if state.link_limiter.check(ip).is_err() {
            let locale = Locale::En;
            let main = format!("<h1>{}</h1>", escape(&t(locale, "invoice.link_too_many")));
            return html(
                StatusCode::TOO_MANY_REQUESTS,
                page(&t(locale, "invoice.link_too_many"), PAGE_CLASS, &main),
            );
        }
    }
    let invoice = match domain::billing::links::open(&state.portal, &token).await {
        Ok(Some(invoice)) => invoice,
        Ok(None) => return not_found(),
        Err(error) => {
            tracing::error!(%error, "an invoice link could not be looked up");
            return private(super::error_page::internal_error_response());
        }
    };
    let view = app::server_fns::invoices::server::view(&invoice);
    let title = t(Locale::En, "invoice.heading").replace("%{number}", &view.number);
    let main = leptos::prelude::Owner::new().with(|| {
        use leptos::prelude::*;
        view! { <app::pages::invoices::InvoiceDocument invoice=view/> }.to_html()
    });
    html(StatusCode::OK, page(&title, PAGE_CLASS, &main))
}
