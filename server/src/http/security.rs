//! Security headers on every response (errors included) and the Origin check on every
//! state-changing request.

use crate::state::AppState;
use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

/// The per-request CSP nonce; the Leptos shell puts it on its inline scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The two pages that load Stripe.js (card entry, and payment confirmation): its script,
/// Stripe's frames (the card field, 3-D Secure) and its API are allowed there and on no other
/// page.
pub const STRIPE_PAGES: [&str; 2] = ["/billing/card", "/billing/confirm-payment"];

pub fn stripe_page_policy(nonce: &str, js_url: &str, api_base: &str) -> String {
    let js = origin(js_url);
    let api = origin(api_base);
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval' {js}; \
         style-src 'self'; img-src 'self' data: {js}; font-src 'self'; connect-src 'self' {api} {js}; \
         frame-src {js} https://hooks.stripe.com; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// `https://js.stripe.com/v3/` → `https://js.stripe.com`.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

/// A fresh nonce for one response.
pub fn new_nonce(state: &AppState) -> String {
    let mut bytes = [0u8; 16];
    state.portal.random.fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sets the security headers; `csp` replaces the default policy (the Stripe page's).
pub fn apply(response: &mut Response, nonce: &str, https: bool, csp: Option<String>) {
    let h = response.headers_mut();
    // A handler that chose a stricter policy (an invoice link: no-referrer) keeps it.
    let referrer = if h.contains_key(header::REFERRER_POLICY) {
        None
    } else {
        Some("strict-origin-when-cross-origin")
    };
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            h.insert(name, value);
        }
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        &csp.unwrap_or_else(|| content_security_policy(nonce)),
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    if let Some(policy) = referrer {
        set(header::REFERRER_POLICY, policy);
    }
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if https {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
}

/// Paths that authenticate by other means (a signature) and take cross-site POSTs.
const ORIGIN_CHECK_EXEMPT: &[&str] = &["/webhooks/stripe"];

/// The refusal for a state-changing request that a browser marks as coming from another site,
/// or None when the request may go on. Browsers send `Sec-Fetch-Site` and `Origin` on such
/// requests; clients that send neither are not browsers and cannot carry a victim's cookies
/// across sites.
pub fn refuse_cross_origin(state: &AppState, request: &Request) -> Option<Response> {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || ORIGIN_CHECK_EXEMPT.contains(&request.uri().path()) {
        return None;
    }
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if is_same_origin(fetch_site, origin, &state.public_url) {
        return None;
    }
    tracing::warn!(
        method = %request.method(),
        route = %super::route_label(request),
        origin = origin.unwrap_or("-"),
        sec_fetch_site = fetch_site.unwrap_or("-"),
        "refused cross-origin request"
    );
    Some(forbidden())
}

pub fn is_same_origin(fetch_site: Option<&str>, origin: Option<&str>, public_url: &str) -> bool {
    if let Some(site) = fetch_site {
        // "none" is a user-initiated navigation (typed URL, bookmark): no other site involved.
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match origin {
        Some(origin) => {
            origin == "null" && fetch_site == Some("same-origin") || origin == public_url
        }
        None => true,
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from("This request came from another site and was refused."),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let url = "https://portal.example";
        assert!(is_same_origin(Some("same-origin"), Some(url), url));
        assert!(is_same_origin(None, Some(url), url));
        assert!(is_same_origin(None, None, url), "non-browser clients");
        assert!(!is_same_origin(Some("cross-site"), Some(url), url));
        assert!(!is_same_origin(
            Some("same-site"),
            Some("https://evil.portal.example"),
            url
        ));
        assert!(!is_same_origin(None, Some("https://evil.example"), url));
        assert!(
            !is_same_origin(None, Some("http://portal.example"), url),
            "scheme matters"
        );
    }

    #[test]
    fn only_the_stripe_page_policy_names_stripe() {
        let csp = stripe_page_policy("n", "https://js.stripe.com/v3/", "https://api.stripe.com");
        assert!(
            csp.contains("script-src 'self' 'nonce-n' 'wasm-unsafe-eval' https://js.stripe.com;")
        );
        assert!(csp.contains("connect-src 'self' https://api.stripe.com https://js.stripe.com;"));
        assert!(csp.contains("frame-src https://js.stripe.com https://hooks.stripe.com;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!content_security_policy("n").contains("stripe"));
    }

    #[test]
    fn csp_carries_the_nonce_and_forbids_framing() {
        let csp = content_security_policy("abc");
        assert!(csp.contains("'nonce-abc'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
