//! `/i/{token}`: an invoice opened by its capability link, by anyone who has the link and
//! without a session. The page is the invoice document and nothing else of the account: no
//! navigation, no script, no cookie. Whatever is wrong with the token (malformed, unknown,
//! revoked, expired), the answer is the same 404 page, byte for byte, with the same headers.
//! The token never reaches a log line, a metrics label (the route is `/i/{token}`) or an
//! error report.

use super::{
    gzip_splice::SplicedGzip,
    plain_page::{escape, page},
};
use crate::state::AppState;
use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use domain::i18n::{t, Locale};
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

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
    ip: Option<std::net::IpAddr>,
) -> Result<domain::billing::links::Opened, Response> {
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
        Ok(Some(opened)) => Ok(opened),
        Ok(None) => Err(not_found()),
        Err(error) => Err(lookup_failed(&error)),
    }
}

fn lookup_failed(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "an invoice link could not be looked up");
    private(super::error_page::internal_error_response())
}

/// The frozen document a link opened, with its payment state as the link's lookup read it.
async fn invoice(
    state: &AppState,
    opened: &domain::billing::links::Opened,
) -> Result<domain::billing::documents::CustomerInvoice, Response> {
    match domain::billing::documents::by_id(&state.portal.db, opened.invoice_id).await {
        Ok(Some(mut invoice)) => {
            invoice.status = opened.status;
            invoice.amount_paid = opened.amount_paid;
            invoice.paid_at = opened.paid_at;
            invoice.card_last4 = opened.card_last4.clone();
            Ok(invoice)
        }
        Ok(None) => Err(not_found()),
        Err(error) => Err(lookup_failed(&error)),
    }
}

/// Where the token goes in a cached page (the link to the PDF): pages are cached per invoice,
/// never with a token in them.
const TOKEN_HOLE: &str = "PortalLinkTokenHole0";
/// Pages kept; past it the cache starts again (a page is about 10 KB, twice).
const MAX_PAGES: usize = 1024;

/// Link pages rendered once per invoice and payment state. The document is frozen, so a page
/// changes only when the payment state does, which is part of the key.
#[derive(Default)]
pub struct LinkPages(RwLock<HashMap<PageKey, Arc<CachedPage>>>);

#[derive(Clone, PartialEq, Eq, Hash)]
struct PageKey {
    invoice_id: uuid::Uuid,
    status: domain::billing::InvoiceStatus,
    amount_paid: i64,
    paid_at: Option<i64>,
    card_last4: Option<String>,
}

struct CachedPage {
    body: String,
    gzip: SplicedGzip,
}

impl LinkPages {
    fn get(&self, key: &PageKey) -> Option<Arc<CachedPage>> {
        self.0.read().ok()?.get(key).cloned()
    }

    fn put(&self, key: PageKey, page: Arc<CachedPage>) {
        if let Ok(mut pages) = self.0.write() {
            if pages.len() >= MAX_PAGES {
                pages.clear();
            }
            pages.insert(key, page);
        }
    }
}

fn render_page(invoice: &domain::billing::documents::CustomerInvoice) -> CachedPage {
    let view = app::server_fns::invoices::server::view(invoice);
    let title = t(Locale::En, "invoice.heading").replace("%{number}", &view.number);
    let pdf = format!("/i/{TOKEN_HOLE}/pdf");
    let main = leptos::prelude::Owner::new().with(|| {
        use leptos::prelude::*;
        view! { <app::pages::invoices::InvoiceDocument invoice=view pdf/> }.to_html()
    });
    let body = page(&title, PAGE_CLASS, &main);
    CachedPage {
        gzip: SplicedGzip::new(&body, TOKEN_HOLE),
        body,
    }
}

pub async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let ip = super::client_ip::from_request(&request, &state.config.trusted_proxies);
    let gzip = super::page_cache::accepts_gzip(&request);
    drop(request);
    let opened = match opened(&state, &token, ip).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let key = PageKey {
        invoice_id: opened.invoice_id,
        status: opened.status,
        amount_paid: opened.amount_paid,
        paid_at: opened.paid_at,
        card_last4: opened.card_last4.clone(),
    };
    let cached = match state.link_pages.get(&key) {
        Some(cached) => cached,
        None => {
            let invoice = match invoice(&state, &opened).await {
                Ok(invoice) => invoice,
                Err(response) => return response,
            };
            let cached = Arc::new(render_page(&invoice));
            state.link_pages.put(key, cached.clone());
            cached
        }
    };
    // The token is well formed (base64url), so it goes into the page as it is.
    let mut response = if gzip {
        let mut response = html(StatusCode::OK, String::new());
        *response.body_mut() = Body::from(cached.gzip.render(&token));
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        html(StatusCode::OK, cached.body.replace(TOKEN_HOLE, &token))
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// `/i/{token}/pdf`: the invoice's PDF, by the same link and on the same terms.
pub async fn open_pdf(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let ip = super::client_ip::from_request(&request, &state.config.trusted_proxies);
    drop(request);
    let invoice = match opened(&state, &token, ip).await {
        Ok(opened) => match invoice(&state, &opened).await {
            Ok(invoice) => invoice,
            Err(response) => return response,
        },
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
