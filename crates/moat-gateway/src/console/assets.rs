//! The console's page, script, style sheet and icon, compiled into the binary (no separate server,
//! no CDN, no build step), served with a Content-Security-Policy that allows scripts and styles from
//! this origin only: the page has no inline script or style.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const PAGES: &str = include_str!("ui/pages.js");
const CHART: &str = include_str!("ui/chart.js");
const STYLE: &str = include_str!("ui/app.css");
const ICON: &str = include_str!("ui/icon.svg");

/// Locks the page to its own origin: scripts, styles, fetches, images, forms; no framing.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every console response carries.
pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    secure_headers(resp.headers_mut());
    resp
}

pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(crate) async fn pages() -> Response {
    asset("text/javascript; charset=utf-8", PAGES)
}

pub(crate) async fn chart() -> Response {
    asset("text/javascript; charset=utf-8", CHART)
}

pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

pub(crate) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}
