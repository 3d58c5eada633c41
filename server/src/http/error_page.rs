//! The 500 page, rendered without the app so that it works when the app is what failed.

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use domain::i18n::{t, Locale};

pub fn internal_error_response() -> Response {
    let locale = Locale::En;
    let body = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/pkg/{css}\"></head><body>\
         <main id=\"content\" class=\"container narrow message-page\">\
         <p class=\"status-code\" aria-hidden=\"true\">500</p><h1>{title}</h1><p>{text}</p>\
         <p><a class=\"button\" href=\"/\">{home}</a></p></main></body></html>",
        lang = locale.code(),
        title = t(locale, "error.title"),
        text = t(locale, "error.text"),
        home = t(locale, "not_found.home"),
        css = crate::state::stylesheet_name(),
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// For tower-http's panic catcher: log the panic (without its payload, which could hold data)
/// and show the error page.
pub fn from_panic(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    internal_error_response()
}
