//! A cache of rendered anonymous pages. The landing page is the same for every visitor who is
//! not signed in, except for the CSP nonce; it is rendered once with a placeholder nonce, and
//! each response gets the placeholder replaced by its own. The 404 page is cached the same way,
//! once for every path no route matches, so that a crawler's burst of unknown URLs costs no
//! more than the landing page. Signed-in visitors (a session cookie) are never served from or
//! stored into the cache.

use super::{gzip_splice::SplicedGzip, security::CspNonce};
use crate::state::AppState;
use axum::{
    body::{to_bytes, Body},
    extract::Request,
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::Response,
};
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

const PLACEHOLDER: &str = "PortalNoncePlaceholder0";
const MAX_ENTRIES: usize = 32;
const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Clone)]
struct CachedPage {
    status: StatusCode,
    headers: HeaderMap,
    body: Arc<str>,
    /// The same page gzipped once, with holes for the nonce.
    gzip: Arc<SplicedGzip>,
}

#[derive(Default)]
pub struct PageCache(RwLock<HashMap<String, CachedPage>>);

/// The one entry every unmatched path shares.
const NOT_FOUND_KEY: &str = "404";

/// Only pages whose content depends on nothing but the URL, and only the query strings they
/// understand, so that random query strings cannot fill the cache; and the 404 page, whose
/// content depends on nothing at all (`route_matched` is false when no route took the path).
pub fn cache_key(request: &Request, session_cookie: &str, route_matched: bool) -> Option<String> {
    if request.method() != Method::GET || has_session_cookie(request, session_cookie) {
        return None;
    }
    let path = request.uri().path();
    if !route_matched && !path.starts_with("/pkg/") && !path.starts_with("/api/") {
        return Some(NOT_FOUND_KEY.to_string());
    }
    if path != "/" {
        return None;
    }
    match request.uri().query() {
        None | Some("billing=monthly") | Some("billing=annual") => Some(
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string(),
        ),
        _ => None,
    }
}

pub fn has_session_cookie(request: &Request, session_cookie: &str) -> bool {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|cookies| {
            cookies.split(';').any(|c| {
                c.trim_start()
                    .strip_prefix(session_cookie)
                    .is_some_and(|rest| rest.starts_with('='))
            })
        })
}

pub(super) fn accepts_gzip(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// The cached page with `nonce` put in: gzip assembled around the nonce when the client takes
/// gzip (so nothing is compressed per request), plain text otherwise.
fn respond(page: &CachedPage, nonce: &str, gzip: bool) -> Response {
    let mut response = if gzip {
        let mut r = Response::new(Body::from(page.gzip.render(nonce)));
        r.headers_mut().extend(page.headers.clone());
        r.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
        r
    } else {
        let mut r = Response::new(Body::from(page.body.replace(PLACEHOLDER, nonce)));
        r.headers_mut().extend(page.headers.clone());
        r
    };
    *response.status_mut() = page.status;
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response.headers_mut().insert(
        header::VARY,
        header::HeaderValue::from_static("accept-encoding"),
    );
    response
}

/// Answers a cacheable request (see [`cache_key`]) from the cache, or renders it once with the
/// placeholder nonce, stores it, and answers with `nonce` put in. Called from the edge
/// middleware, so a hit skips everything behind it.
pub async fn serve(
    state: &AppState,
    key: String,
    mut request: Request,
    next: Next,
    nonce: &str,
) -> Response {
    let gzip = accepts_gzip(&request);
    let hit = state
        .page_cache
        .0
        .read()
        .ok()
        .and_then(|c| c.get(&key).cloned());
    if let Some(page) = hit {
        return respond(&page, nonce, gzip);
    }
    request
        .extensions_mut()
        .insert(CspNonce(PLACEHOLDER.to_string()));
    // The page is stored uncompressed; compression happens per response, above.
    request.headers_mut().remove(header::ACCEPT_ENCODING);
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return super::error_page::internal_error_response();
    };
    let body: Arc<str> = String::from_utf8_lossy(&bytes).into();
    let page = CachedPage {
        status: parts.status,
        headers: parts.headers,
        gzip: Arc::new(SplicedGzip::new(&body, PLACEHOLDER)),
        body,
    };
    let expected = if key == NOT_FOUND_KEY {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    if page.status == expected {
        if let Ok(mut cache) = state.page_cache.0.write() {
            if cache.len() < MAX_ENTRIES {
                cache.insert(key, page.clone());
            }
        }
    }
    respond(&page, nonce, gzip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, cookie: Option<&str>) -> Request {
        let mut builder = axum::http::Request::builder().uri(uri);
        if let Some(c) = cookie {
            builder = builder.header(header::COOKIE, c);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn gzip_acceptance() {
        let with = |value: &str| {
            let r = axum::http::Request::builder()
                .header(header::ACCEPT_ENCODING, value)
                .body(Body::empty())
                .unwrap();
            accepts_gzip(&r)
        };
        assert!(with("gzip"));
        assert!(with("br, gzip"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(with("*"));
        assert!(!with("br"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&request("/", None)));
    }

    #[test]
    fn only_anonymous_known_urls_are_cached() {
        let key = |uri, cookie| cache_key(&request(uri, cookie), "portal_session", true);
        assert_eq!(key("/", None).as_deref(), Some("/"));
        assert_eq!(
            key("/?billing=annual", None).as_deref(),
            Some("/?billing=annual")
        );
        assert_eq!(
            key("/?billing=annual", Some("theme=dark")).as_deref(),
            Some("/?billing=annual")
        );
        assert_eq!(
            key("/", Some("theme=dark; portal_session=abc")),
            None,
            "signed-in visitors"
        );
        assert_eq!(
            key("/?utm_source=x", None),
            None,
            "arbitrary query strings cannot fill the cache"
        );
        assert_eq!(key("/account", None), None);
        let post = axum::http::Request::builder()
            .method("POST")
            .uri("/")
            .body(Body::empty())
            .unwrap();
        assert_eq!(cache_key(&post, "portal_session", true), None);
    }

    #[test]
    fn every_unmatched_path_shares_the_404_entry() {
        let unmatched = |uri, cookie| cache_key(&request(uri, cookie), "portal_session", false);
        assert_eq!(unmatched("/no/such/page", None).as_deref(), Some("404"));
        assert_eq!(
            unmatched("/another?x=1", None).as_deref(),
            Some("404"),
            "the query string makes no new entry"
        );
        assert_eq!(
            unmatched("/no/such/page", Some("portal_session=abc")),
            None,
            "signed-in visitors get their own page"
        );
        assert_eq!(
            unmatched("/pkg/missing.js", None),
            None,
            "a missing asset is not a page"
        );
        assert_eq!(unmatched("/api/unknown", None), None);
    }
}
