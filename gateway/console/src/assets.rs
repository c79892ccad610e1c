//! The console's embedded assets (a stylesheet and an icon; no script), served under `/assets/` with a year
//! of caching: their names carry the crate version, so a new build is a new name.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// The stylesheet's path.
pub const CSS_PATH: &str = concat!("/assets/console-", env!("CARGO_PKG_VERSION"), ".css");
/// The icon's path.
pub const ICON_PATH: &str = concat!("/assets/icon-", env!("CARGO_PKG_VERSION"), ".svg");

const CSS: &str = include_str!("../assets/console.css");
const ICON: &str = include_str!("../assets/icon.svg");

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let path = format!("/assets/{file}");
    let (content_type, body) = if path == CSS_PATH {
        ("text/css; charset=utf-8", CSS)
    } else if path == ICON_PATH {
        ("image/svg+xml", ICON)
    } else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}
