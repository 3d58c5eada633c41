//! The site icon: browsers ask for /favicon.ico on a first visit whatever the page links, and
//! the shell links the SVG. Both are built into the binary and cached for a day.

use axum::{http::header, response::IntoResponse};

const ICO: &[u8] = include_bytes!("../../assets/favicon.ico");
const SVG: &[u8] = include_bytes!("../../assets/favicon.svg");
const CACHE: &str = "public, max-age=86400";

pub async fn favicon_ico() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/x-icon"),
            (header::CACHE_CONTROL, CACHE),
        ],
        ICO,
    )
}

pub async fn favicon_svg() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, CACHE),
        ],
        SVG,
    )
}
